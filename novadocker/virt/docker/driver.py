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

This module is the facade Nova calls. It decides the order of things and
what a failure means; the work is done by the modules beside it:
``engine`` (the Docker engine: listings, facts, sweeps), ``server`` (one
server's containers on it), ``spec`` (what the containers look like), the
``image`` package (Glance <-> engine), ``vifs``, ``ovsdb`` and ``netns``
(networking), ``configdrive``, ``console`` and ``diagnostics`` (what a
server's user sees of it) and ``hostinfo`` (resources). It never touches
docker SDK objects nor engine status strings.

The methods that change a server take a per-server lock (``_serialized``):
Nova's own instance lock does not cover every entry point (the start-up
resume, the engine watch). Readers (``get_console_output``, ``snapshot``)
and the port calls (which ``vifs`` serializes itself) do not.
"""

import functools
import inspect
import threading
import time

from nova.compute import power_state
from nova.compute import task_states
from nova.compute import vm_states
from nova.console import type as console_type
from nova import context as nova_context
from nova import exception as nova_exception
from nova import objects
from nova.objects import fields
from nova import utils as nova_utils
from nova.virt import driver
from nova.virt import hardware
import os_resource_classes as orc
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import excutils

import novadocker.conf
from novadocker.virt.docker import configdrive
from novadocker.virt.docker import console
from novadocker.virt.docker import diagnostics
from novadocker.virt.docker import engine as docker_engine
from novadocker.virt.docker import exception
from novadocker.virt.docker import hostinfo
from novadocker.virt.docker.image import cache as image_cache
from novadocker.virt.docker.image import load as image_load
from novadocker.virt.docker.image import sandbox
from novadocker.virt.docker.image import snapshot
from novadocker.virt.docker import migration as moves
from novadocker.virt.docker import netns
from novadocker.virt.docker import spec
from novadocker.virt.docker import vifs

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

_ENGINE_RETRY_SECONDS = 5


def _serialized(method):
    """Hold the server's lock for the whole call (not reentrant)."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        instance = signature.bind(self, *args, **kwargs).arguments['instance']
        with lockutils.lock('nova-docker-server-%s' % instance.uuid):
            return method(self, *args, **kwargs)
    return wrapper


def _network_info_of(instance):
    """The instance's cached ports, [] when it has none.

    The cache holds None for a server built without any port.
    """
    return instance.get_network_info() or []


def _quietly(what, instance, func, *args, **kwargs):
    """Run a cleanup step; log its failure instead of raising it.

    Cleanup runs while an earlier error is on its way to Nova: that first
    error is the one the operator must see.
    """
    try:
        func(*args, **kwargs)
    except Exception:
        LOG.exception('%s failed too (the first error is reported)', what,
                      instance=instance)


class DockerDriver(driver.ComputeDriver):
    """Docker containers as Nova servers."""

    capabilities = dict(driver.ComputeDriver.capabilities, **{
        'has_imagecache': True,
        'supports_attach_interface': True,
        # Evacuation rebuilds the server from its image on another host
        # (instance_on_disk is False): its writable layer stays behind.
        'supports_evacuate': True,
        'supports_image_type_raw': True,
    })

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi)
        # Replaced by the service's own host name in init_host. Every
        # container is labelled with it; it is also the node name.
        self._host = CONF.host
        self._disk_quota = False
        self._watch_stop = threading.Event()
        self._consoles = console.Consoles()

    @property
    def _engine(self):
        # Made on use: init_host replaces self._host with the service's.
        return docker_engine.Engine(self._host)

    def _server(self, instance):
        """The containers of *instance* on this host's engine."""
        return self._engine.server(instance.uuid)

    # -- start-up and host ------------------------------------------------

    def init_host(self, host):
        """Wait for the engine, then reconcile what is left on it.

        Only an engine that never answers, or an unusable configuration,
        stops the service; one server's trouble never does.
        """
        self._host = host
        self._wait_for_engine()
        self._check_runtime()
        sandbox.ensure_sandbox_image()
        self._disk_quota = self._detect_disk_quota()
        try:
            vifs.initialize()
        except Exception as e:
            # Plugging retries os-vif when a server needs it.
            LOG.error('Networking is not ready at start-up (%s); servers '
                      'are wired once it is. Start Open vSwitch or fix '
                      '[os_vif_ovs] ovsdb_connection.', e)
        self._remove_orphans()
        self._reopen_consoles()
        if CONF.docker.engine_watch_interval:
            self._watch_stop.clear()
            threading.Thread(target=self._watch_engine, daemon=True,
                             name='nova-docker-engine-watch').start()

    def cleanup_host(self, host):
        self._watch_stop.set()
        self._consoles.close_all()

    def _wait_for_engine(self):
        deadline = time.monotonic() + CONF.docker.engine_start_timeout
        while True:
            try:
                self._engine.ping()
                return
            except exception.DockerUnreachable as e:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                LOG.warning('The Docker engine does not answer yet (%(e)s); '
                            'retrying for %(left)d more seconds '
                            '([docker] engine_start_timeout)',
                            {'e': e, 'left': left})
                time.sleep(min(_ENGINE_RETRY_SECONDS, left))

    def _check_runtime(self):
        wanted = CONF.docker.runtime
        if not wanted:
            return
        known = sorted(self._engine.info().get('Runtimes') or {})
        if wanted not in known:
            raise exception.UnknownRuntime(runtime=wanted,
                                           known=', '.join(known))

    def _detect_disk_quota(self):
        if CONF.docker.root_disk_quota == 'off':
            return False
        supported, answer = self._engine.supports_disk_quota(
            CONF.docker.sandbox_image)
        if supported:
            LOG.info('Flavor root disks cap the containers\' writable layer')
        else:
            LOG.warning('Flavor root disks are NOT enforced: the engine '
                        'refuses a writable-layer size (%s)', answer)
        return supported

    def _instances_here(self):
        """Nova's instances on this host, or None if Nova cannot say."""
        try:
            return objects.InstanceList.get_by_host(
                nova_context.get_admin_context(), self._host,
                expected_attrs=[])
        except Exception:
            LOG.exception('Cannot list the instances Nova has on %s; '
                          'leftovers are kept until the next start',
                          self._host)
            return None

    def _remove_orphans(self):
        """Remove what this host has for servers Nova no longer has here."""
        instances = self._instances_here()
        if instances is None:
            return
        live = sorted({i.uuid for i in instances} |
                      set(self._servers_moving_away()))
        try:
            removed = self._engine.remove_orphans(live)
        except exception.DockerDriverError:
            LOG.exception('Removing leftover containers failed')
            removed = []
        if removed:
            LOG.info('Removed the containers of %d servers Nova no longer '
                     'has here', len(removed))
        _quietly('Removing leftover config drives', None,
                 configdrive.remove_orphans, live)
        _quietly('Forgetting console ports of servers gone', None,
                 console.forget_orphans, live)
        # Their namespace links go with the other orphan links and ports.
        _quietly('Removing leftover ports and namespace links', None,
                 vifs.remove_orphans, self._host, live)

    def _servers_moving_away(self):
        """Servers moved from here, kept for a revert: never orphans."""
        try:
            return moves.servers_moving_from(
                nova_context.get_admin_context(), self._host)
        except Exception:
            LOG.exception('Cannot list the moves from %s awaiting confirm '
                          'or revert', self._host)
            return []

    def _watch_engine(self):
        """Bring back servers whose sandbox the engine stopped.

        A dockerd restart without live-restore stops every container. A
        sandbox never exits on its own, so a stopped sandbox of a server
        Nova records as running and idle means the engine stopped it.
        """
        while not self._watch_stop.wait(CONF.docker.engine_watch_interval):
            try:
                stopped = self._engine.stopped_sandboxes(
                    CONF.docker.engine_watch_interval)
                if stopped:
                    self._restart_stopped(stopped)
            except Exception as e:
                LOG.warning('Engine watch failed, tries again: %s', e)

    def _restart_stopped(self, uuids):
        instances = self._instances_here() or []
        for instance in instances:
            if instance.uuid not in uuids:
                continue
            if (instance.vm_state != vm_states.ACTIVE or
                    instance.task_state is not None or
                    instance.power_state != power_state.RUNNING):
                continue
            LOG.warning('Its sandbox was stopped behind Nova\'s back (an '
                        'engine restart?): starting the server again',
                        instance=instance)
            try:
                self._restart_if_still_stopped(instance)
            except Exception:
                LOG.exception('Starting the server again failed',
                              instance=instance)

    @_serialized
    def _restart_if_still_stopped(self, instance):
        instance.refresh()
        if (instance.task_state is None and
                instance.vm_state == vm_states.ACTIVE and
                not self._server(instance).sandbox_pid()):
            self._start(instance, instance.get_network_info())

    def get_available_nodes(self, refresh=False):
        return [self._host]

    def get_host_uptime(self):
        return hostinfo.uptime()

    def _docker_root_dir(self):
        return self._engine.root_dir()

    def update_provider_tree(self, provider_tree, nodename, allocations=None):
        """Report the host's CPUs, memory and Docker disk to placement.

        DISK_GB is the size of the filesystem holding the engine's root
        directory: a total that does not move as servers write.
        """
        vcpus = hostinfo.cpu_count()
        memory_total, _ = hostinfo.memory_mb()
        disk_total, _ = hostinfo.disk_gb(self._docker_root_dir())
        disk_total = max(disk_total, 1)
        # Ratios set by operators through placement are kept unless
        # nova.conf overrides them.
        ratios = self._get_allocation_ratios(
            provider_tree.data(nodename).inventory)
        # A container may have more vCPUs than the host has CPUs: its quota
        # is clamped to the host (spec.cpu_limits_for).
        vcpu_max = max(int(vcpus * ratios.get(orc.VCPU, 1.0)), vcpus)
        inventory = {
            orc.VCPU: {
                'total': vcpus, 'min_unit': 1, 'max_unit': vcpu_max,
                'step_size': 1, 'reserved': CONF.reserved_host_cpus,
            },
            orc.MEMORY_MB: {
                'total': memory_total, 'min_unit': 1,
                'max_unit': memory_total, 'step_size': 1,
                'reserved': CONF.reserved_host_memory_mb,
            },
            orc.DISK_GB: {
                'total': disk_total, 'min_unit': 1,
                'max_unit': disk_total, 'step_size': 1,
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
            'local_gb': disk_total,
            'vcpus_used': 0,
            'memory_mb_used': memory_total - memory_free,
            'local_gb_used': disk_total - disk_free,
            'hypervisor_type': 'docker',
            'hypervisor_version': self._engine_version(),
            'hypervisor_hostname': nodename,
            'cpu_info': hostinfo.cpu_info(),
            'disk_available_least': disk_free,
            'numa_topology': None,
            'supported_instances': [
                (fields.Architecture.from_host(), 'docker',
                 fields.VMMode.EXE)],
        }

    def _engine_version(self):
        version = self._engine.version()
        digits = [int(part) for part in
                  version.split('+')[0].split('-')[0].split('.')[:3]
                  if part.isdigit()]
        digits += [0] * (3 - len(digits))
        return digits[0] * 1000000 + digits[1] * 1000 + digits[2]

    # -- what runs here -------------------------------------------------------

    def _workloads(self):
        # Periodic readers (the power-state sync starts with a count) share
        # one listing with get_info; the driver's own changes drop it.
        return self._engine.shared_workloads()

    def list_instances(self):
        return [c.instance_name for c in self._workloads()]

    def list_instance_uuids(self):
        """Every server with a container here, even only a sandbox.

        Nova's reaper of running deleted instances works from this list: a
        server deleted by the API alone (while this service was down) in the
        middle of its spawn may have left only its sandbox.
        """
        return self._engine.instance_uuids()

    def get_num_instances(self):
        return len(self._workloads())

    def instance_exists(self, instance):
        return self._server(instance).exists()

    def get_info(self, instance, use_cache=True):
        """The server's power state.

        With use_cache (the power-state sync) one shared listing serves
        every server; Nova asks with use_cache=False when it must be exact.
        """
        if use_cache:
            state = self._server(instance).power_state(cached=True)
        else:
            state = self._server(instance).power_state()
        # The engine has one frozen state; Nova's record tells whether
        # the server was paused or suspended into it.
        if state == power_state.PAUSED and (
                instance.vm_state == vm_states.SUSPENDED or
                instance.task_state == task_states.SUSPENDING):
            state = power_state.SUSPENDED
        return hardware.InstanceInfo(state=state)

    def get_console_output(self, context, instance):
        """The end of the workload's output, at most console_log_max_bytes."""
        return self._server(instance).console_tail(
            CONF.docker.console_log_max_bytes)

    # -- spawn ----------------------------------------------------------------

    @_serialized
    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        """Create the sandbox, wire the network, then start the workload.

        Nova hands *network_info* over while it is still binding the
        ports (an asynchronous wrapper): the first look at it waits for
        Neutron. The checks and the image (a Glance download on a first
        boot) come first, so that wait and this work overlap.
        """
        if network_info is None:
            network_info = []
        # Refuse bad metadata, commands and flavors before creating anything.
        spec.environment_for(instance)
        spec.command_for(instance)
        spec.tty_for(instance)
        spec.pids_limit_for(instance.flavor)
        ignored = spec.ignored_properties(instance)
        if ignored:
            LOG.warning('Ignoring image properties %s: the driver honours '
                        'only %s', ', '.join(ignored),
                        ', '.join(sorted(spec.HONOURED_PROPERTIES)),
                        instance=instance)
        image = image_load.ensure_image(context, image_meta, instance)
        sandbox.ensure_sandbox_image()
        # An evacuation spawns here while Nova still records the old host
        # (it moves instance.host once the rebuild is done); the ports are
        # this host's, and the privileged helper checks the sandbox's host.
        with nova_utils.temporary_mutation(instance, host=self._host):
            self._create_and_start(instance, image, network_info, power_on,
                                   injected_files, admin_password)

    def _create_and_start(self, instance, image, network_info, power_on,
                          injected_files, admin_password):
        try:
            if configdrive.wanted(instance):
                configdrive.build(instance, network_info, injected_files,
                                  admin_password)
            self._server(instance).create(
                instance, image, vifs.dns_servers(network_info),
                disk_quota=self._disk_quota)
            if power_on:
                self._start(instance, network_info)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('Spawn failed; removing what it created',
                          instance=instance)
                _quietly('Removing what the failed spawn created', instance,
                         self._remove, instance, network_info)

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
        box_id, pid = self._server(instance).start_sandbox()
        try:
            self._wire_network(instance, network_info, box_id, pid)
            self._server(instance).start_workload()
        except Exception:
            with excutils.save_and_reraise_exception():
                # Leave the server stopped, not half wired.
                LOG.error('Start failed; stopping the sandbox and '
                          'unplugging its ports', instance=instance)
                _quietly('Stopping after the failed start', instance,
                         self._stop, instance, network_info, 0)

    def _wire_network(self, instance, network_info, sandbox_id, pid):
        """Plug the ports, link the namespace, wait for Neutron's events.

        The link is made while Neutron's agent is still picking the new
        ports up: the wait for its events then costs nothing more.
        """
        events = self._neutron_events(network_info)
        try:
            with self.virtapi.wait_for_instance_event(
                    instance, events, timeout=CONF.vif_plugging_timeout,
                    error_callback=self._neutron_failed_callback):
                vifs.plug_vifs(instance, network_info, sandbox_id)
                netns.create_link(instance.uuid, pid)
        except nova_exception.InstanceEventTimeout:
            if CONF.vif_plugging_is_fatal:
                raise nova_exception.VirtualInterfaceCreateException()
            LOG.warning('Timed out waiting for network-vif-plugged; '
                        'continuing as vif_plugging_is_fatal is False',
                        instance=instance)

    # -- stop, start, reboot, pause ------------------------------------------

    def _stop(self, instance, network_info, timeout):
        """Stop the workload, then the sandbox, and unwire the network.

        The workload gets SIGTERM, then SIGKILL after *timeout* seconds.
        """
        self._consoles.close(instance.uuid)
        self._server(instance).stop(timeout)
        _quietly('Removing the namespace link', instance,
                 netns.remove_link, instance.uuid)
        vifs.unplug_vifs(instance, network_info or [])

    @_serialized
    def power_off(self, instance, timeout=0, retry_interval=0):
        self._server(instance).require()
        self._stop(instance, _network_info_of(instance),
                   self._clean_shutdown_timeout(instance, timeout))

    @_serialized
    def power_on(self, context, instance, network_info,
                 block_device_info=None, accel_info=None, share_info=None):
        self._start(instance, network_info)

    @_serialized
    def resume_state_on_host_boot(self, context, instance, network_info,
                                  share_info=None, block_device_info=None):
        """Start a server that was running before the host went down.

        As at spawn: the sandbox, its wiring, then the workload.

        The engine's restart policies are not used for this: they would
        start the workload before its network is wired.
        """
        self._start(instance, network_info)

    @_serialized
    def reboot(self, context, instance, network_info, reboot_type,
               block_device_info=None, bad_volumes_callback=None,
               accel_info=None, share_info=None):
        """Reboot the server.

        Soft: restart the workload in place. Hard: stop everything and start
        again, rewiring the network from scratch.
        """
        server = self._server(instance)
        pair = server.require()
        if reboot_type == 'SOFT' and server.running_sandbox(pair):
            if server.acts_on_sigterm() is not False:
                server.restart_workload(CONF.docker.reboot_timeout)
                return
            LOG.info('Soft reboot done as a hard one: the workload\'s PID 1 '
                     'has no SIGTERM handler, and as the first process of '
                     'its PID namespace it ignores SIGTERM; waiting '
                     'reboot_timeout (%ds) could only end in SIGKILL',
                     CONF.docker.reboot_timeout, instance=instance)
        self._stop(instance, network_info, timeout=0)
        self._start(instance, network_info)

    @_serialized
    def pause(self, instance):
        self._server(instance).freeze(True)

    @_serialized
    def unpause(self, instance):
        self._server(instance).freeze(False)

    @_serialized
    def suspend(self, context, instance):
        """Freeze the server's processes.

        The engine cannot save memory to disk, so a suspended server still
        holds its RAM.
        """
        self._server(instance).freeze(True)

    @_serialized
    def resume(self, context, instance, network_info, block_device_info=None,
               share_info=None):
        self._server(instance).freeze(False)

    def _clean_shutdown_timeout(self, instance, timeout):
        """*timeout*, or 0 when SIGTERM cannot stop the workload anyway."""
        if timeout and self._server(instance).acts_on_sigterm() is False:
            LOG.info('Stopping without waiting %ds for a clean shutdown: '
                     'the workload\'s PID 1 has no SIGTERM handler and, as '
                     'the first process of its PID namespace, ignores it',
                     timeout, instance=instance)
            return 0
        return timeout

    @_serialized
    def soft_delete(self, instance):
        self._server(instance).require()
        self._stop(instance, _network_info_of(instance),
                   self._clean_shutdown_timeout(instance,
                                                CONF.shutdown_timeout))

    @_serialized
    def restore(self, instance):
        """Start a soft-deleted server again.

        Nova gives no network information here: the instance's cache has
        it (and may have none: a server without ports).
        """
        self._server(instance).require()
        self._start(instance, _network_info_of(instance))

    # -- delete ---------------------------------------------------------------

    def _remove(self, instance, network_info, keep_workload=False):
        """Remove what the instance has on this host; tolerate gaps.

        With keep_workload the containers are only stopped (and unwired).
        """
        network_info = network_info or []
        if keep_workload:
            self._stop(instance, network_info, timeout=0)
            return
        self._consoles.close(instance.uuid)
        console.forget(instance.uuid)
        self._server(instance).remove()
        configdrive.remove(instance.uuid)
        netns.remove_link(instance.uuid)
        vifs.unplug_vifs(instance, network_info)

    @_serialized
    def destroy(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, destroy_secrets=True):
        """Remove the server's containers, ports and namespace link.

        With destroy_disks=False the stopped containers (their writable
        layers are the server's disk) are kept; everything else goes.
        """
        self._remove(instance, network_info, keep_workload=not destroy_disks)

    @_serialized
    def cleanup(self, context, instance, network_info, block_device_info=None,
                destroy_disks=True, migrate_data=None, destroy_vifs=True,
                destroy_secrets=True):
        self._remove(instance, network_info, keep_workload=not destroy_disks)

    # -- networking -----------------------------------------------------------

    def _running_sandbox(self, instance):
        """The sandbox container id if it runs, else None."""
        return self._server(instance).running_sandbox()

    def _sandbox_pid(self, instance):
        return self._server(instance).sandbox_pid()

    def plug_vifs(self, instance, network_info):
        """Re-check a running server's wiring (init_host); fill gaps only.

        Never raises: one server's vanished containers or an unreachable
        OVS must not keep nova-compute from starting.
        """
        pair = self._server(instance).find()
        if pair.workload is None or pair.sandbox is None:
            LOG.warning('Not wiring the ports of this server: its %(which)s '
                        'container is missing on this host (removed outside '
                        'Nova). Stop and start the server (openstack server '
                        'stop/start) to recreate its wiring, or rebuild or '
                        'delete it.',
                        {'which': 'workload' if pair.workload is None
                         else 'sandbox'}, instance=instance)
            return
        sandbox_id = self._server(instance).running_sandbox(pair)
        if sandbox_id is None:
            LOG.debug('Sandbox not running: the ports are wired at the next '
                      'start', instance=instance)
            return
        try:
            vifs.plug_vifs(instance, network_info, sandbox_id)
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
        self._server(instance).require()
        vifs.plug_vif(instance, vif, self._running_sandbox(instance))

    def detach_interface(self, context, instance, vif):
        vifs.unplug_vif(instance, vif, self._running_sandbox(instance))

    # -- images ---------------------------------------------------------------

    def snapshot(self, context, instance, image_id, update_task_state):
        """Commit the workload and upload it to Glance as *image_id*.

        A server that has no workload here (never ran, or gone) cannot be
        snapshotted: InstanceNotRunning, as Nova expects, so the API call
        fails cleanly and Nova deletes the empty image record.
        """
        try:
            workload_id = self._server(instance).workload_id()
        except nova_exception.InstanceNotFound as e:
            raise nova_exception.InstanceNotRunning(
                instance_id=instance.uuid) from e
        snapshot.snapshot(context, instance, image_id, workload_id,
                          update_task_state)

    def manage_image_cache(self, context, all_instances):
        image_cache.manage_image_cache(context, all_instances)

    # -- rescue ---------------------------------------------------------------

    @_serialized
    def rescue(self, context, instance, network_info, image_meta,
               rescue_password, block_device_info, share_info=None):
        """Run a rescue container beside the kept, stopped workload.

        Nova has stopped the server before this call. The rescue container
        runs the rescue image (Nova passes the server's own image when none
        is given) in the server's sandbox, so it has the server's ports and
        addresses, and sees the workload's writable layer read-write at
        spec.RESCUE_MOUNT. The workload container is not changed.
        The rescue container runs the rescue image's os_command_line (or
        its CMD) with the server's environment (its metadata). The rescue
        password is not used: a container has no console login.

        What can be refused (an image that is not a docker archive, a
        storage driver without a bindable writable layer) is checked before
        anything changes; the server is then started again as it was.
        """
        network_info = network_info or _network_info_of(instance)
        try:
            command = spec.rescue_command(image_meta)
            image = self._rescue_image(context, image_meta, instance)
            layer_dir = self._server(instance).writable_layer_dir()
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('Rescue refused; the server is put back as it '
                          'was', instance=instance)
                self._put_back(instance, network_info)
        # Idempotent: Nova has stopped it; a rescue never runs beside it.
        self._server(instance).stop(0)
        box_id, pid = self._server(instance).start_sandbox()
        try:
            self._wire_network(instance, network_info, box_id, pid)
            # A rescue container left by a failed unrescue is replaced.
            self._server(instance).remove_rescue()
            self._server(instance).start_rescue(instance, image, box_id,
                                                layer_dir, command)
        except Exception:
            with excutils.save_and_reraise_exception():
                LOG.error('Rescue failed; the server is put back as it '
                          'was', instance=instance)
                _quietly('Removing the rescue container', instance,
                         self._server(instance).remove_rescue)
                _quietly('Stopping the sandbox', instance, self._stop,
                         instance, network_info, 0)
                self._put_back(instance, network_info)
        LOG.info('Rescue container started; the server\'s writable layer '
                 'is at %s in it', spec.RESCUE_MOUNT,
                 instance=instance)

    def _rescue_image(self, context, image_meta, instance):
        """The engine tag of the rescue image (InvalidImageFormat if bad)."""
        if image_meta is None or not image_meta.obj_attr_is_set('id'):
            # No rescue image: the server's own, already in the engine.
            image_meta = objects.ImageMeta.from_dict(
                {'id': instance.image_ref})
        return image_load.ensure_image(context, image_meta, instance)

    def _put_back(self, instance, network_info):
        """Start again a server Nova stopped for a rescue that failed."""
        if instance.vm_state != vm_states.STOPPED:
            _quietly('Starting the server after the failed rescue',
                     instance, self._start, instance, network_info)

    def _restart(self, instance, network_info):
        self._stop(instance, network_info, timeout=0)
        self._start(instance, network_info)

    @_serialized
    def unrescue(self, context, instance):
        """Remove the rescue container and start the server as it was.

        The workload container was never changed: its writable layer holds
        what it held, plus what was written at the rescue mount.
        """
        self._server(instance).require()
        self._server(instance).remove_rescue()
        self._restart(instance, _network_info_of(instance))

    # -- resize and migration -------------------------------------------------

    def _move_of(self, context, instance, dest):
        """(the compute host a resize or migration goes to, its uuid).

        Nova passes the destination's address, which compute services
        sharing one address (and one engine) have in common; the migration
        record names the service, and its uuid names the transfer image.
        """
        try:
            record = objects.Migration.get_by_id(
                context, instance.migration_context.migration_id)
            return record.dest_compute, record.uuid
        except Exception:
            LOG.debug('No migration record to read the destination from; '
                      'using %s', dest, instance=instance)
            return dest, None

    def _check_resize(self, context, instance, target, move_uuid, flavor):
        """Refuse, before anything changes, what cannot be done."""
        if target != self._host and not move_uuid:
            raise exception.MigrationUnsupported(
                instance_uuid=instance.uuid, dest=target,
                reason='Nova gave no migration record to name the transfer '
                'image by')
        spec.pids_limit_for(flavor)
        old_gb = int(instance.flavor.root_gb or 0)
        # Another host creates new containers, with the new flavor's cap.
        if (target == self._host and self._disk_quota and
                int(flavor.root_gb or 0) != old_gb):
            raise exception.ResizeUnsupported(
                instance_uuid=instance.uuid, flavor=flavor.name,
                reason='the engine caps the writable layer at %d GB when '
                'the container is created and cannot change the cap in '
                'place; pick a flavor with the same root disk, or resize '
                'to another host' % old_gb)

    @_serialized
    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        """Stop the server; for another host, upload its writable layer.

        Anything refused is refused first, wrapped in InstanceFaultRollback
        so Nova puts the server back as it was and records the reason as
        the fault. The containers are kept: in place, finish_migration
        changes their limits; for another host they wait, stopped and
        renamed aside, for confirm (removed) or revert (started again). A
        failed upload starts the server again here, as it was.
        """
        target, move_uuid = self._move_of(context, instance, dest)
        try:
            self._check_resize(context, instance, target, move_uuid, flavor)
            workload_id = self._server(instance).workload_id()
            if target != self._host:
                moves.check_size(self._host, instance.uuid)
        except Exception as e:
            raise nova_exception.InstanceFaultRollback(inner_exception=e)
        self._stop(instance, network_info,
                   self._clean_shutdown_timeout(instance, timeout))
        if target == self._host:
            return ''
        try:
            disk_info = moves.send(context, instance, move_uuid, workload_id,
                                   self._host)
            moves.set_aside(self._host, instance.uuid)
        except Exception as e:
            LOG.error('Sending the server to %(target)s failed (%(err)s); '
                      'it stays here as it was',
                      {'target': target, 'err': e}, instance=instance)
            _quietly('Deleting the transfer image', instance, moves.discard,
                     context, moves.transfer_image_id(move_uuid), instance)
            _quietly('Renaming the containers back', instance,
                     moves.bring_back, self._host, instance.uuid)
            self._put_back(instance, network_info)
            raise nova_exception.InstanceFaultRollback(inner_exception=e)
        return disk_info

    @_serialized
    def finish_migration(self, context, migration, instance, disk_info,
                         network_info, image_meta, resize_instance,
                         allocations, block_device_info=None, power_on=True,
                         share_info=None):
        """In place: the new limits; from another host: load and create.

        Nova's resize_instance only says whether the disks changed: the
        limits are applied whatever it says (Nova has set the new flavor).
        """
        image_id = moves.transfer_in(disk_info)
        if image_id is None:
            self._server(instance).update_limits(instance.flavor)
            if power_on:
                self._start(instance, network_info)
            return
        self._arrive(context, instance, image_id, network_info, power_on)

    def _arrive(self, context, instance, image_id, network_info, power_on):
        """Create the server here from its transfer image, then delete it.

        A failure leaves nothing here (containers, wiring, the loaded
        image) and keeps the transfer image in Glance, the server's data.
        """
        try:
            image = moves.receive(context, instance, image_id)
            self._create_and_start(instance, image, network_info, power_on,
                                   [], None)
        except Exception as e:
            _quietly('Removing the loaded transfer image', instance,
                     moves.forget_loaded, image_id)
            raise exception.TransferImageUnavailable(
                instance_uuid=instance.uuid, image_id=image_id,
                reason=str(e)) from e
        moves.discard(context, image_id, instance)

    @staticmethod
    def _moved_away(migration):
        return migration.source_compute != migration.dest_compute

    @_serialized
    def confirm_migration(self, context, migration, instance, network_info):
        """On the source of a move: remove the containers kept for revert.

        Their wiring went when they stopped. An in-place resize kept the
        same containers: nothing to do.
        """
        if not self._moved_away(migration):
            return
        self._server(instance).remove()
        configdrive.remove(instance.uuid)
        moves.discard(context, moves.transfer_image_id(migration.uuid),
                      instance)

    @_serialized
    def finish_revert_migration(self, context, instance, network_info,
                                migration, block_device_info=None,
                                power_on=True, share_info=None):
        """Start the server here again with the old flavor's limits.

        In place, the limits are put back (Nova has restored the flavor).
        After a move, these are the source's own containers, unchanged
        since they stopped, old limits included; the target has removed
        what it made.
        """
        if self._moved_away(migration):
            moves.bring_back(self._host, instance.uuid)
            moves.discard(context, moves.transfer_image_id(migration.uuid),
                          instance)
        else:
            self._server(instance).update_limits(instance.flavor)
        if power_on:
            self._start(instance, network_info)

    def check_instance_shared_storage_local(self, context, instance):
        """Only the service labelled with a host sees its containers.

        Two compute services share a server's "disk" (its containers)
        exactly when they are the same host: a same-host resize revert
        keeps the containers, an evacuated server's source removes them.
        """
        return {'host': self._host}

    def check_instance_shared_storage_remote(self, context, data):
        return data.get('host') == self._host

    def check_can_live_migrate_destination(self, context, instance,
                                           src_compute_info, dst_compute_info,
                                           block_migration=False,
                                           disk_over_commit=False):
        """Refuse live migration in the pre-check, before anything moves.

        MigrationPreCheckError is what the conductor turns into a clean
        API error with the server left ACTIVE (NotImplementedError would
        put it in ERROR).
        """
        raise nova_exception.MigrationPreCheckError(
            reason='the Docker driver cannot live-migrate containers')

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data, block_device_info=None):
        raise nova_exception.MigrationPreCheckError(
            reason='the Docker driver cannot live-migrate containers')

    def get_host_ip_addr(self):
        return CONF.my_ip

    # -- diagnostics ----------------------------------------------------------

    def _figures(self, instance):
        return self._server(instance).figures()

    def get_instance_diagnostics(self, instance):
        """Diagnostics (API 2.48 and later) from the engine's figures."""
        state = self.get_info(instance, use_cache=False).state
        return diagnostics.instance_diagnostics(instance, state,
                                                self._figures(instance))

    def get_diagnostics(self, instance):
        """The legacy diagnostics dict (API before 2.48)."""
        return diagnostics.legacy_diagnostics(instance,
                                              self._figures(instance))

    # -- interactive serial console -----------------------------------------

    def _reopen_consoles(self):
        """Listen again for running servers that had a console.

        A console URL handed out before a nova-compute restart keeps
        working: the proxy finds the recorded port listening.
        """
        if not CONF.serial_console.enabled:
            return
        recorded = console.recorded_servers()
        for instance in self._instances_here() or []:
            if instance.uuid not in recorded:
                continue
            try:
                self.get_serial_console(None, instance)
            except Exception as e:
                LOG.info('Console not reopened: %s', e, instance=instance)

    @_serialized
    def get_serial_console(self, context, instance):
        """The server's console endpoint (nova-serialproxy connects to it).

        The same port every time (Nova asks again to validate it before
        connecting), opened on demand and closed when the server stops.
        Serialized with stop and delete, so a request racing a delete
        cannot leave a listener behind.
        """
        if not CONF.serial_console.enabled:
            raise nova_exception.ConsoleTypeUnavailable(console_type='serial')
        self._server(instance).check_console()
        attach = self._server(instance).console_socket
        host, port = self._consoles.endpoint(instance.uuid, attach)
        return console_type.ConsoleSerial(host=host, port=port)
