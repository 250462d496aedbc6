# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""A Nova compute driver that runs each server as Docker containers.

This module is the facade Nova calls. It decides the order of things; the
work is done by the modules beside it: ``containers`` (what a server's
containers look like), ``client`` (the engine API), ``images`` (Glance <->
engine), ``vifs`` and ``netns`` (networking), ``hostinfo`` (resources).
"""

import collections

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova import exception as nova_exception
from nova.objects import fields
from nova.virt import driver
from nova.virt import hardware
import os_resource_classes as orc
from oslo_log import log as logging
from oslo_utils import excutils

import novadocker.conf
from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import containers
from novadocker.virt.docker import exception
from novadocker.virt.docker import hostinfo
from novadocker.virt.docker import images
from novadocker.virt.docker import netns
from novadocker.virt.docker import sandbox
from novadocker.virt.docker import vifs

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

_Pair = collections.namedtuple('_Pair', ['workload', 'sandbox'])


class DockerDriver(driver.ComputeDriver):
    """Docker containers as Nova servers."""

    capabilities = dict(driver.ComputeDriver.capabilities, **{
        'has_imagecache': True,
        'supports_attach_interface': True,
        'supports_image_type_raw': True,
    })

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        # Replaced by the service's own host name in init_host. Every
        # container is labelled with it; it is also the node name.
        self._host = CONF.host

    # -- start-up and host ------------------------------------------------

    def init_host(self, host):
        """Check the engine is reachable and prepare the sandbox image."""
        self._host = host
        with docker_client.docker_client('answer a ping') as client:
            client.ping()
        sandbox.ensure_sandbox_image()
        vifs.initialize()

    def get_available_nodes(self, refresh=False):
        return [self._host]

    def get_host_uptime(self):
        return hostinfo.uptime()

    def _docker_root_dir(self):
        with docker_client.docker_client('report engine info') as client:
            return client.info().get('DockerRootDir', '/var/lib/docker')

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        """Report the host's CPUs, memory and Docker disk to placement."""
        vcpus = hostinfo.cpu_count()
        memory_total, _ = hostinfo.memory_mb()
        _, disk_free = hostinfo.disk_gb(self._docker_root_dir())
        # Ratios set by operators through placement are kept unless
        # nova.conf overrides them.
        ratios = self._get_allocation_ratios(
            provider_tree.data(nodename).inventory)
        inventory = {
            orc.VCPU: {
                'total': vcpus, 'min_unit': 1, 'max_unit': vcpus,
                'step_size': 1, 'reserved': CONF.reserved_host_cpus,
            },
            orc.MEMORY_MB: {
                'total': memory_total, 'min_unit': 1,
                'max_unit': memory_total, 'step_size': 1,
                'reserved': CONF.reserved_host_memory_mb,
            },
            orc.DISK_GB: {
                'total': disk_free, 'min_unit': 1,
                'max_unit': max(disk_free, 1), 'step_size': 1,
                'reserved': self._get_reserved_host_disk_gb_from_config(),
            },
        }
        for rc, ratio in ratios.items():
            inventory[rc]['allocation_ratio'] = ratio
        provider_tree.update_inventory(nodename, inventory)

    def get_available_resource(self, nodename):
        vcpus = hostinfo.cpu_count()
        memory_total, memory_free = hostinfo.memory_mb()
        disk_total, disk_free = hostinfo.disk_gb(self._docker_root_dir())
        return {
            'vcpus': vcpus,
            'memory_mb': memory_total,
            'local_gb': disk_free,
            'vcpus_used': 0,
            'memory_mb_used': memory_total - memory_free,
            'local_gb_used': disk_total - disk_free,
            'hypervisor_type': 'docker',
            'hypervisor_version': self._engine_version(),
            'hypervisor_hostname': nodename,
            'cpu_info': '?',
            'disk_available_least': disk_free,
            'numa_topology': None,
            'supported_instances': [
                (fields.Architecture.from_host(), 'docker',
                 fields.VMMode.EXE)],
        }

    def _engine_version(self):
        with docker_client.docker_client('report engine version') as client:
            version = client.version().get('Version', '0')
        digits = [int(part) for part in
                  version.split('+')[0].split('-')[0].split('.')[:3]
                  if part.isdigit()]
        digits += [0] * (3 - len(digits))
        return digits[0] * 1000000 + digits[1] * 1000 + digits[2]

    # -- what runs here -------------------------------------------------------

    def _list(self, role=containers.ROLE_WORKLOAD, instance_uuid=None):
        with docker_client.docker_client('list containers') as client:
            return client.containers.list(
                all=True, filters=containers.host_filter(
                    self._host, role, instance_uuid))

    def list_instances(self):
        return [c.labels[containers.LABEL_NAME] for c in self._list()]

    def list_instance_uuids(self):
        return [c.labels[containers.LABEL_UUID] for c in self._list()]

    def get_num_instances(self):
        return len(self._list())

    def _find(self, instance):
        """The instance's workload and sandbox containers (None if absent)."""
        found = {containers.ROLE_WORKLOAD: None, containers.ROLE_SANDBOX: None}
        for c in self._list(role=None, instance_uuid=instance.uuid):
            found[c.labels.get(containers.LABEL_ROLE)] = c
        return _Pair(found[containers.ROLE_WORKLOAD],
                     found[containers.ROLE_SANDBOX])

    def _existing_pair(self, instance):
        """Like _find, but the workload must exist (InstanceNotFound)."""
        pair = self._find(instance)
        if pair.workload is None:
            raise nova_exception.InstanceNotFound(instance_id=instance.uuid)
        return pair

    def instance_exists(self, instance):
        return self._find(instance).workload is not None

    def get_info(self, instance, use_cache=True):
        workload = self._existing_pair(instance).workload
        state = containers.power_state_of(workload.status)
        # The engine has one frozen state; Nova's record tells whether
        # the server was paused or suspended into it.
        if state == power_state.PAUSED and (
                instance.vm_state == vm_states.SUSPENDED or
                instance.task_state == task_states.SUSPENDING):
            state = power_state.SUSPENDED
        return hardware.InstanceInfo(state=state)

    def get_console_output(self, context, instance):
        """The end of the workload's output, at most console_log_max_bytes."""
        workload = self._existing_pair(instance).workload
        limit = CONF.docker.console_log_max_bytes
        tail = bytearray()
        with docker_client.docker_client(
                'read logs of %s' % workload.name) as client:
            # follow=False: the SDK follows a streamed log unless told not to.
            for chunk in client.api.logs(workload.id, stdout=True,
                                         stderr=True, stream=True,
                                         follow=False):
                tail += chunk
                if len(tail) > 2 * limit:
                    del tail[:-limit]
        return bytes(tail[-limit:]).decode('utf-8', 'replace')

    # -- spawn ----------------------------------------------------------------

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        """Create the sandbox, wire the network, then start the workload."""
        network_info = network_info or []
        # Refuse bad metadata, commands and flavors before creating anything.
        containers.environment_for(instance)
        containers.command_for(instance)
        containers.pids_limit_for(instance.flavor)
        image = images.ensure_image(context, image_meta, instance)
        sandbox.ensure_sandbox_image()
        try:
            with docker_client.docker_client(
                    'create containers of %s' % instance.uuid) as client:
                box = client.containers.create(**containers.sandbox_config(
                    instance, self._host, vifs.dns_servers(network_info)))
                client.containers.create(**containers.workload_config(
                    instance, self._host, image, box.id))
            if power_on:
                self._start(instance, network_info)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('Spawn failed; removing what it created',
                          instance=instance)
                self._remove(instance, network_info)

    def _neutron_events(self, network_info):
        if not CONF.vif_plugging_timeout:
            return []
        return [('network-vif-plugged', vif['id'])
                for vif in network_info if vif.get('active', True) is False]

    def _neutron_failed_callback(self, event_name, instance):
        LOG.error('Neutron reported failure on event %(event)s',
                  {'event': event_name}, instance=instance)
        if CONF.vif_plugging_is_fatal:
            raise nova_exception.VirtualInterfaceCreateException()

    def _start(self, instance, network_info):
        """Start the sandbox, wire its namespace, start the workload."""
        pair = self._existing_pair(instance)
        with docker_client.docker_client(
                'start sandbox of %s' % instance.uuid) as client:
            box = client.containers.get(pair.sandbox.id)
            if box.status != 'running':
                box.start()
                box.reload()
            pid = box.attrs['State']['Pid']
        try:
            self._wire_network(instance, network_info, box.id, pid)
            self._start_workload(pair.workload)
        except Exception:
            with excutils.save_and_reraise_exception():
                # Leave the server stopped, not half wired.
                LOG.error('Start failed; stopping the sandbox and '
                          'unplugging its ports', instance=instance)
                self._stop_quietly(instance, network_info)

    def _start_workload(self, workload):
        try:
            with docker_client.docker_client(
                    'start container %s' % workload.name) as client:
                client.containers.get(workload.id).start()
        except exception.DockerError as e:
            config = workload.attrs['Config']
            command = ((config.get('Entrypoint') or []) +
                       (config.get('Cmd') or []))
            raise exception.ContainerStartFailed(
                command=' '.join(command),
                reason=e.kwargs.get('reason', e)) from e

    def _stop_quietly(self, instance, network_info):
        """Stop and unwire after a failure, keeping the first error."""
        try:
            self._stop(instance, network_info, timeout=0)
        except Exception:
            LOG.exception('Cleanup after a failed start also failed',
                          instance=instance)

    def _wire_network(self, instance, network_info, sandbox_id, pid):
        events = self._neutron_events(network_info)
        try:
            with self.virtapi.wait_for_instance_event(
                    instance, events, timeout=CONF.vif_plugging_timeout,
                    error_callback=self._neutron_failed_callback):
                vifs.plug_vifs(instance, network_info, sandbox_id)
        except nova_exception.InstanceEventTimeout:
            if CONF.vif_plugging_is_fatal:
                raise nova_exception.VirtualInterfaceCreateException()
            LOG.warning('Timed out waiting for network-vif-plugged; '
                        'continuing as vif_plugging_is_fatal is False',
                        instance=instance)
        netns.create_link(instance.uuid, pid)

    # -- stop, start, reboot, pause ------------------------------------------

    def _stop(self, instance, network_info, timeout):
        """Stop the workload, then the sandbox, and unwire the network.

        The workload gets SIGTERM, then SIGKILL after *timeout* seconds.
        """
        pair = self._find(instance)
        with docker_client.docker_client(
                'stop containers of %s' % instance.uuid) as client:
            if pair.workload is not None:
                workload = client.containers.get(pair.workload.id)
                if workload.status == 'paused':
                    workload.unpause()
                if workload.status in ('running', 'paused', 'restarting'):
                    workload.stop(timeout=timeout)
            if pair.sandbox is not None:
                client.containers.get(pair.sandbox.id).stop(timeout=5)
        netns.remove_link(instance.uuid)
        vifs.unplug_vifs(instance, network_info)

    def power_off(self, instance, timeout=0, retry_interval=0):
        self._existing_pair(instance)
        self._stop(instance, instance.get_network_info(), timeout)

    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        self._start(instance, network_info)

    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        """Reboot the server.

        Soft: restart the workload in place. Hard: stop everything and start
        again, rewiring the network from scratch.
        """
        pair = self._existing_pair(instance)
        if reboot_type == 'SOFT' and pair.sandbox is not None and \
                pair.sandbox.status == 'running':
            with docker_client.docker_client(
                    'restart container %s' % pair.workload.name) as client:
                client.containers.get(pair.workload.id).restart(
                    timeout=CONF.docker.reboot_timeout)
            return
        self._stop(instance, network_info, timeout=0)
        self._start(instance, network_info)

    def _freeze(self, instance, frozen):
        workload = self._existing_pair(instance).workload
        with docker_client.docker_client(
                '%s container %s' % ('pause' if frozen else 'unpause',
                                     workload.name)) as client:
            container = client.containers.get(workload.id)
            if frozen:
                container.pause()
            else:
                container.unpause()

    def pause(self, instance):
        self._freeze(instance, True)

    def unpause(self, instance):
        self._freeze(instance, False)

    def suspend(self, context, instance):
        """Freeze the server's processes.

        The engine cannot save memory to disk, so a suspended server still
        holds its RAM.
        """
        self._freeze(instance, True)

    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        self._freeze(instance, False)

    def soft_delete(self, instance):
        self.power_off(instance, timeout=CONF.shutdown_timeout)

    def restore(self, instance):
        self._start(instance, instance.get_network_info())

    # -- delete ---------------------------------------------------------------

    def _remove(self, instance, network_info, keep_workload=False):
        """Remove what the instance has on this host; tolerate gaps.

        With keep_workload the containers are only stopped (and unwired).
        """
        network_info = network_info or []
        if keep_workload:
            self._stop(instance, network_info, timeout=0)
            return
        pair = self._find(instance)
        with docker_client.docker_client(
                'remove containers of %s' % instance.uuid) as client:
            for container in pair:
                if container is not None:
                    client.api.remove_container(container.id, force=True)
        netns.remove_link(instance.uuid)
        vifs.unplug_vifs(instance, network_info)

    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        """Remove the server's containers, ports and namespace link.

        With destroy_disks=False the stopped containers (their writable
        layers are the server's disk) are kept; everything else goes.
        """
        self._remove(instance, network_info, keep_workload=not destroy_disks)

    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        self._remove(instance, network_info, keep_workload=not destroy_disks)

    # -- networking -----------------------------------------------------------

    def _running_sandbox(self, instance):
        """The sandbox container id if it runs, else None."""
        pair = self._find(instance)
        if pair.sandbox is None or pair.sandbox.status != 'running':
            return None
        return pair.sandbox.id

    def _sandbox_pid(self, instance):
        pair = self._existing_pair(instance)
        with docker_client.docker_client(
                'inspect sandbox of %s' % instance.uuid) as client:
            info = client.api.inspect_container(pair.sandbox.id)
        return info['State']['Pid']

    def plug_vifs(self, instance, network_info):
        """Re-check a running server's wiring (init_host); fill gaps only.

        Never raises: one server's vanished containers or an unreachable
        OVS must not keep nova-compute from starting.
        """
        pair = self._find(instance)
        if pair.workload is None or pair.sandbox is None:
            LOG.warning('Not wiring the ports of this server: its %(which)s '
                        'container is missing on this host (removed outside '
                        'Nova). Stop and start the server (openstack server '
                        'stop/start) to recreate its wiring, or rebuild or '
                        'delete it.',
                        {'which': 'workload' if pair.workload is None
                         else 'sandbox'}, instance=instance)
            return
        if pair.sandbox.status != 'running':
            LOG.debug('Sandbox not running: the ports are wired at the next '
                      'start', instance=instance)
            return
        try:
            vifs.plug_vifs(instance, network_info, pair.sandbox.id)
            pid = self._sandbox_pid(instance)
            if netns.link_target(instance.uuid) != netns.proc_path(pid):
                netns.create_link(instance.uuid, pid)
        except Exception as e:
            LOG.error('Could not check or restore the wiring of this '
                      'server: %(err)s. Fix the cause, then stop and start '
                      'the server (openstack server stop/start) to rewire '
                      'it.', {'err': e}, instance=instance)

    def unplug_vifs(self, instance, network_info):
        vifs.unplug_vifs(instance, network_info,
                         self._running_sandbox(instance))

    def attach_interface(self, context, instance, image_meta, vif):
        """Attach a port; a stopped server gets it wired at its next start."""
        self._existing_pair(instance)
        vifs.plug_vif(instance, vif, self._running_sandbox(instance))

    def detach_interface(self, context, instance, vif):
        vifs.unplug_vif(instance, vif, self._running_sandbox(instance))

    # -- images ---------------------------------------------------------------

    def snapshot(self, context, instance, image_id, update_task_state):
        workload = self._existing_pair(instance).workload
        images.snapshot(context, instance, image_id, workload.id,
                        update_task_state)

    def manage_image_cache(self, context, all_instances):
        images.manage_image_cache(context, all_instances)
