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

"""Refusals before anything changes; rescue, resize, restore, snapshot.

Every ComputeDriver method the driver leaves unimplemented is listed here
with the Nova path that turns its NotImplementedError into a clean error,
and called: it must raise before the engine hears of it.
"""

import copy
import inspect
from unittest import mock

import fixtures
from nova.compute import vm_states
from nova import exception as nova_exception
from nova import objects
from nova.virt import driver as nova_driver

from novadocker.virt.docker import driver
from novadocker.virt.docker import exception
from novadocker.virt.docker import spec
from tests.unit import test_driver

IMAGE_ID = '0b1f9d3c-6d1e-4d57-9a55-3c2f7f0f5e11'

# Method -> why its NotImplementedError is a clean refusal in Nova 34
# (what Nova does with it, the server's state afterwards).
UNSUPPORTED = {
    # Volumes: the driver reports no volume support; Nova rolls back.
    'attach_volume': 'compute manager _attach_volume: the BDM is deleted, '
                     'the Cinder attachment removed, the server stays '
                     'ACTIVE; the instance action records the error',
    'detach_volume': 'never reached: no volume is ever attached',
    'swap_volume': 'never reached: no volume is ever attached',
    'extend_volume': 'never reached: supports_extend_volume is False, the '
                     'API refuses first',
    'get_volume_connector': 'raised in the attach path above; rolled back '
                            'the same way',
    'volume_snapshot_create': 'never reached: no volume is ever attached',
    'volume_snapshot_delete': 'never reached: no volume is ever attached',
    'get_all_volume_usage': 'periodic _poll_volume_usage catches '
                            'NotImplementedError and stops polling',
    'block_stats': 'volume usage only, never reached without volumes',
    'quiesce': 'snapshot of a volume-backed server only; the API catches '
               'NotImplementedError and snapshots unquiesced',
    'unquiesce': 'as quiesce',
    # Device names: Nova falls back to its own naming.
    'default_root_device_name': 'compute manager falls back to '
                                'compute_utils naming',
    'default_device_names_for_instance': 'compute manager falls back to '
                                         'compute_utils naming',
    'get_device_name_for_instance': 'compute manager falls back to '
                                    'compute_utils naming',
    # Other consoles: the API answers 501 Not Implemented.
    'get_vnc_console': 'API: 501, server untouched',
    'get_spice_console': 'API: 501, server untouched',
    'get_mks_console': 'API: 501, server untouched',
    'set_admin_password': 'compute manager: task state reverted, API 501 '
                          '"not implemented by this driver"',
    # Hosts: the os-hosts API answers 501.
    'host_power_action': 'os-hosts API: 501',
    'host_maintenance_mode': 'os-hosts API: 501',
    'set_host_enabled': 'os-hosts API: 501; compute manager logs and '
                        'continues when it disables itself',
    'get_host_cpu_stats': 'os-hypervisors uptime/stats: not implemented',
    'poll_rebooting_instances': 'periodic task: NotImplementedError ends it',
    'trigger_crash_dump': 'a cast; the manager lists NotImplementedError '
                          'as expected: the action is recorded as failed, '
                          'the server keeps its state (a container has no '
                          'NMI to send)',
    'cache_image': 'image pre-caching: the manager reports each image as '
                   'unsupported; nothing changes',
    'power_update_event': 'Ironic only: the manager records NotImplemented '
                          'and leaves the power state',
    # Shares (virtio-fs): the API refuses for a host without the trait.
    'mount_share': 'never reached: the host lacks COMPUTE_STORAGE_VIRTIO_FS',
    'umount_share': 'never reached: no share is ever attached',
    'is_share_mounted': 'never reached: no share is ever attached',
    # Live migration: check_can_live_migrate_* refuse first with
    # MigrationPreCheckError (server ACTIVE); the rest is never reached.
    'pre_live_migration': 'never reached: the pre-check refused',
    'live_migration': 'never reached: the pre-check refused',
    'live_migration_force_complete': 'never reached: no live migration '
                                     'ever runs (API: 400, no migration '
                                     'in progress)',
    'live_migration_abort': 'never reached: no live migration ever runs',
    'rollback_live_migration_at_destination': 'never reached',
    'post_live_migration_at_source': 'never reached',
    'post_live_migration_at_destination': 'never reached',
    'cleanup_live_migration_destination_check': 'never reached',
    'get_instance_disk_info': 'live migration only, never reached',
    # Rebuild: NotImplementedError selects Nova's own rebuild (destroy and
    # spawn), which the driver supports: not a refusal at all.
    'rebuild': 'compute manager: _rebuild_default_impl',
}

# Raised by the driver itself, before anything is touched, as Nova needs.
EXPLICIT_REFUSALS = {
    'check_can_live_migrate_destination':
        nova_exception.MigrationPreCheckError,
    'check_can_live_migrate_source':
        nova_exception.MigrationPreCheckError,
}


def _left_to_base():
    """ComputeDriver methods the driver inherits that raise."""
    found = set()
    for name, func in inspect.getmembers(nova_driver.ComputeDriver,
                                         inspect.isfunction):
        if getattr(driver.DockerDriver, name) is not func:
            continue
        if 'raise NotImplementedError' in inspect.getsource(func):
            found.add(name)
    return found


def _arguments(func):
    """Mock arguments for every parameter without a default."""
    params = list(inspect.signature(func).parameters.values())[1:]
    return [mock.MagicMock(name=p.name) for p in params
            if p.default is inspect.Parameter.empty and
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


class UnsupportedMethodsTestCase(test_driver.DriverTestBase):

    def test_every_unsupported_method_is_classified(self):
        # A Nova upgrade adding a method makes this fail until someone
        # checks how Nova handles its NotImplementedError.
        self.assertEqual(sorted(UNSUPPORTED), sorted(_left_to_base()))

    def test_each_refuses_before_touching_the_engine(self):
        inst = self.spawn()
        before = copy.deepcopy(self.engine.containers)
        self.engine.events.clear()
        for name in sorted(UNSUPPORTED):
            method = getattr(self.driver, name)
            args = _arguments(getattr(driver.DockerDriver, name))
            self.assertRaises(NotImplementedError, method, *args)
        for name, expected in sorted(EXPLICIT_REFUSALS.items()):
            method = getattr(self.driver, name)
            args = [inst if a._mock_name == 'instance' else a
                    for a in _arguments(getattr(driver.DockerDriver, name))]
            self.assertRaises(expected, method, *args)
        self.assertEqual([], self.engine.events)
        self.assertEqual(before, self.engine.containers)
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(inst))


class RestoreAndSnapshotTestCase(test_driver.DriverTestBase):

    def test_restore_without_ports_in_the_cache(self):
        inst = self.spawn(network_info=[])
        inst.info_cache = objects.InstanceInfoCache(network_info=None)
        self.driver.soft_delete(inst)
        self.assertEqual('exited', self.states(inst)['workload'])
        self.driver.restore(inst)
        self.assertEqual('running', self.states(inst)['workload'])

    def test_restore_reads_the_cached_ports(self):
        inst = self.spawn()
        self.driver.soft_delete(inst)
        self.assertNotIn(inst.uuid, self.net.ports)
        self.driver.restore(inst)
        self.assertEqual(['port-1'], self.net.ports[inst.uuid][1])

    def test_snapshot_of_a_server_that_never_ran(self):
        inst = test_driver.make_instance()
        self.assertRaises(nova_exception.InstanceNotRunning,
                          self.driver.snapshot, None, inst, 'image-1',
                          lambda **kwargs: None)


class RefusedResizeTestCase(test_driver.DriverTestBase):
    """In place on this host; moves to another are test_migration's."""

    def flavor(self, **kwargs):
        values = dict(name='bigger', vcpus=2, memory_mb=256, root_gb=1,
                      extra_specs={})
        values.update(kwargs)
        return objects.Flavor(**values)

    def assertRefusedUntouched(self, inst, inner, **kwargs):
        before = copy.deepcopy(self.engine.containers)
        self.engine.events.clear()
        err = self.assertRaises(
            nova_exception.InstanceFaultRollback,
            self.driver.migrate_disk_and_power_off, None, inst,
            kwargs.pop('dest', '10.0.0.1'), kwargs.pop('flavor'), [])
        self.assertIsInstance(err.inner_exception, inner)
        self.assertEqual(before, self.engine.containers)
        self.assertEqual([], self.engine.events)
        return err.inner_exception

    def test_bad_flavor_is_refused_first(self):
        inst = self.spawn()
        with mock.patch.object(self.driver, '_move_of',
                               return_value=('h1', None)):
            self.assertRefusedUntouched(
                inst, exception.InvalidFlavorPidsLimit,
                flavor=self.flavor(extra_specs={'docker:pids_limit': '2'}))

    def test_root_disk_change_refused_where_the_engine_caps_it(self):
        inst = self.spawn()
        self.driver._disk_quota = True
        with mock.patch.object(self.driver, '_move_of',
                               return_value=('h1', None)):
            err = self.assertRefusedUntouched(
                inst, exception.ResizeUnsupported,
                flavor=self.flavor(root_gb=5))
        self.assertIn('same root disk', str(err))

    def test_same_host_stops_and_keeps_the_containers(self):
        inst = self.spawn()
        with mock.patch.object(self.driver, '_move_of',
                               return_value=('h1', None)):
            self.assertEqual('', self.driver.migrate_disk_and_power_off(
                None, inst, '10.0.0.1', self.flavor(), []))
        self.assertEqual({'sandbox': 'exited', 'workload': 'exited'},
                         self.states(inst))

    def test_shared_storage_means_the_same_host(self):
        data = self.driver.check_instance_shared_storage_local(None, None)
        self.assertTrue(
            self.driver.check_instance_shared_storage_remote(None, data))
        self.assertFalse(self.driver.check_instance_shared_storage_remote(
            None, {'host': 'h2'}))


class RescueRefusalTestCase(test_driver.DriverTestBase):

    def test_non_docker_rescue_image_puts_the_server_back(self):
        inst = self.spawn()
        # Nova stops the server before asking for the rescue.
        self.driver.power_off(inst)
        refusal = exception.InvalidImageFormat(image_id=IMAGE_ID,
                                               container_format='bare')
        self.useFixture(fixtures_patch(
            'novadocker.virt.docker.image.load.ensure_image', refusal))
        image = objects.ImageMeta.from_dict({'id': IMAGE_ID,
                                             'container_format': 'bare'})
        self.assertRaises(exception.InvalidImageFormat, self.driver.rescue,
                          None, inst, test_driver.PORTS, image, '', None)
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(inst))

    def test_stopped_server_stays_stopped_after_a_refused_rescue(self):
        inst = self.spawn()
        self.driver.power_off(inst)
        inst.vm_state = vm_states.STOPPED
        refusal = exception.InvalidImageFormat(image_id=IMAGE_ID,
                                               container_format='bare')
        self.useFixture(fixtures_patch(
            'novadocker.virt.docker.image.load.ensure_image', refusal))
        image = objects.ImageMeta.from_dict({'id': IMAGE_ID})
        self.assertRaises(exception.InvalidImageFormat, self.driver.rescue,
                          None, inst, test_driver.PORTS, image, '', None)
        self.assertEqual({'sandbox': 'exited', 'workload': 'exited'},
                         self.states(inst))
        self.assertNotIn(spec.ROLE_RESCUE, self.states(inst))


def fixtures_patch(target, error):
    """Patch *target* with a function raising *error*."""
    def refuse(*args, **kwargs):
        raise error
    return fixtures.MonkeyPatch(target, refuse)


class RescueAndLimitsConfigTestCase(test_driver.DriverTestBase):

    def test_rescue_container_config(self):
        inst = test_driver.make_instance(
            metadata={'APP': 'x'},
            system_metadata={'image_os_command_line': '/bin/server'})
        config = spec.rescue_config(inst, 'h1', 'img:1', 'box-id',
                                          '/var/lib/docker/overlay2/l/diff')
        self.assertEqual('nova-%s-rescue' % inst.uuid, config['name'])
        self.assertEqual('rescue', config['labels'][spec.LABEL_ROLE])
        self.assertEqual('container:box-id', config['network_mode'])
        self.assertEqual([{'Type': 'bind',
                           'Source': '/var/lib/docker/overlay2/l/diff',
                           'Target': '/mnt/rescue', 'ReadOnly': False}],
                         config['mounts'])
        # The server's command is not the rescue image's.
        self.assertNotIn('command', config)
        self.assertEqual({'APP': 'x'}, config['environment'])
        self.assertEqual(128 * 1024 * 1024, config['mem_limit'])
        self.assertIn('no-new-privileges', config['security_opt'])

    def test_rescue_command_is_the_rescue_images(self):
        image = objects.ImageMeta.from_dict(
            {'id': IMAGE_ID,
             'properties': {'os_command_line': "sh -c 'echo hi'"}})
        self.assertEqual(['sh', '-c', 'echo hi'],
                         spec.rescue_command(image))
        self.assertIsNone(spec.rescue_command(
            objects.ImageMeta.from_dict({})))

    def test_limits_follow_the_flavor(self):
        flavor = objects.Flavor(name='f', vcpus=4, memory_mb=256, root_gb=1,
                                extra_specs={'docker:pids_limit': '100'})
        self.assertEqual({'Memory': 256 * 1024 * 1024,
                          'MemorySwap': 256 * 1024 * 1024,
                          'PidsLimit': 100, 'NanoCpus': 2 * 10 ** 9},
                         spec.limits_for(flavor, host_cpus=2))
        self.flags(cpu_limit_mode='shares', group='docker')
        self.assertEqual(4096,
                         spec.limits_for(flavor)['CpuShares'])
