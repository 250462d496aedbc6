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

"""Cold migration and resize to another host, on the fake engine.

Two drivers (hosts h1 and h2) share one fake engine, as two compute
services on one engine do; Glance is a dict. The real engine and Nova's
own code path are the functional tests' (test_server_actions).
"""

import json

import fixtures
from nova import exception as nova_exception
from nova import objects

from novadocker.virt.docker import driver
from novadocker.virt.docker import exception
from novadocker.virt.docker import migration as moves
from novadocker.virt.docker import spec
from tests.unit import test_driver

MOVE_UUID = '3f0c4a1e-9b7d-4e55-8a2c-6d1f0e9b8a77'


class _Glance:
    """Images by id; what the snapshot path would upload is a marker."""

    def __init__(self):
        self.images = {}

    def create(self, context, meta, data=None):
        self.images[meta['id']] = dict(meta)
        return dict(meta)

    def delete(self, context, image_id):
        if image_id not in self.images:
            raise nova_exception.ImageNotFound(image_id=image_id)
        del self.images[image_id]


class _MoveTestBase(test_driver.DriverTestBase):

    def setUp(self):
        super().setUp()
        self.glance = _Glance()
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.migration.glance.API',
            lambda: self.glance))
        self.uploaded = []
        self.upload_error = None
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.image.snapshot.snapshot', self._upload))
        self.load_error = None
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.migration.receive', self._receive))
        self.moving = []
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.migration.servers_moving_from',
            lambda context, host: list(self.moving)))
        self.target = driver.DockerDriver(test_driver._VirtAPI())
        self.target.init_host('h2')
        self.image_id = moves.transfer_image_id(MOVE_UUID)

    def _upload(self, context, instance, image_id, container_id,
                update_task_state):
        if self.upload_error:
            raise self.upload_error
        self.uploaded.append((image_id, container_id))

    def _receive(self, context, instance, image_id):
        if self.load_error:
            raise self.load_error
        self.assertIn(image_id, self.glance.images)
        return test_driver.BUSYBOX

    def on(self, host, instance):
        """role -> (name, status) of the server's containers on *host*."""
        return {c['Labels'][spec.LABEL_ROLE]: (c['Name'],
                                               c['State']['Status'])
                for c in self.engine.containers.values()
                if c['Labels'].get(spec.LABEL_UUID) == instance.uuid and
                c['Labels'].get(spec.LABEL_HOST) == host}

    def bigger(self):
        return objects.Flavor(name='bigger', vcpus=2, memory_mb=256,
                              root_gb=1, extra_specs={})

    def send(self, inst, flavor=None):
        self.useFixture(fixtures.MockPatchObject(
            self.driver, '_move_of', return_value=('h2', MOVE_UUID)))
        return self.driver.migrate_disk_and_power_off(
            None, inst, '10.0.0.2', flavor or self.bigger(), test_driver.PORTS)

    def record(self):
        return objects.Migration(uuid=MOVE_UUID, source_compute='h1',
                                 dest_compute='h2')

    def arrive(self, inst, disk_info):
        inst.flavor = self.bigger()
        inst.host = 'h2'
        self.target.finish_migration(None, self.record(), inst, disk_info,
                                     test_driver.PORTS, None, False, {})


class DiskInfoTestCase(test_driver.DriverTestBase):

    def test_in_place_has_no_transfer(self):
        self.assertIsNone(moves.transfer_in(''))
        self.assertIsNone(moves.transfer_in(None))

    def test_round_trip(self):
        image_id = moves.transfer_image_id(MOVE_UUID)
        info = moves.disk_info_for(image_id, 'h1')
        self.assertEqual(image_id, moves.transfer_in(info))
        self.assertEqual('h1', json.loads(info)['source_host'])

    def test_one_image_per_migration(self):
        self.assertEqual(moves.transfer_image_id(MOVE_UUID),
                         moves.transfer_image_id(MOVE_UUID))
        self.assertNotEqual(
            moves.transfer_image_id(MOVE_UUID),
            moves.transfer_image_id('0c3a9e52-1111-4c1e-9b6a-0e6a3c5d7f10'))

    def test_unreadable_disk_info_is_refused(self):
        for bad in ('not json', '{"transport": "rsync", "image_id": "a"}',
                    '{"transport": "glance"}', '[1]',
                    '{"transport": "glance", "image_id": "../etc"}'):
            self.assertRaises(exception.MigrationDataInvalid,
                              moves.transfer_in, bad)


class MoveTestCase(_MoveTestBase):

    def test_send_uploads_stops_and_sets_aside(self):
        inst = self.spawn()
        disk_info = self.send(inst)
        self.assertEqual(self.image_id, moves.transfer_in(disk_info))
        meta = self.glance.images[self.image_id]
        self.assertEqual(('private', 'docker'),
                         (meta['visibility'], meta['container_format']))
        self.assertEqual(inst.uuid,
                         meta['properties'][moves.PROP_TRANSFER_OF])
        workload = self.engine._get('nova-%s-moved-out' % inst.uuid)
        self.assertEqual([(self.image_id, workload['Id'])], self.uploaded)
        self.assertEqual(
            {'workload': ('nova-%s-moved-out' % inst.uuid, 'exited'),
             'sandbox': ('nova-%s-sandbox-moved-out' % inst.uuid, 'exited')},
            self.on('h1', inst))
        self.assertNotIn(inst.uuid, self.net.ports)

    def test_arrive_creates_with_the_new_limits_and_deletes_the_image(self):
        inst = self.spawn()
        self.arrive(inst, self.send(inst))
        self.assertEqual({'workload': ('nova-%s' % inst.uuid, 'running'),
                          'sandbox': ('nova-%s-sandbox' % inst.uuid,
                                      'running')},
                         self.on('h2', inst))
        config = self.engine._get('nova-%s' % inst.uuid)['Config']
        self.assertEqual(256 * 1024 * 1024, config['mem_limit'])
        self.assertEqual(test_driver.BUSYBOX, config['image'])
        self.assertEqual({}, self.glance.images)
        self.assertEqual(['port-1'], self.net.ports[inst.uuid][1])
        # The source still has its stopped containers for a revert.
        self.assertEqual({'workload', 'sandbox'}, set(self.on('h1', inst)))

    def test_revert_starts_the_source_unchanged(self):
        inst = self.spawn()
        before = {c['Id'] for c in self.engine.containers.values()}
        self.arrive(inst, self.send(inst))
        # Nova: destroy on the target, then finish_revert on the source.
        self.target.destroy(None, inst, test_driver.PORTS)
        self.assertEqual({}, self.on('h2', inst))
        inst.flavor = test_driver.make_instance().flavor
        inst.host = 'h1'
        self.driver.finish_revert_migration(None, inst, test_driver.PORTS,
                                            self.record())
        self.assertEqual({'workload': ('nova-%s' % inst.uuid, 'running'),
                          'sandbox': ('nova-%s-sandbox' % inst.uuid,
                                      'running')},
                         self.on('h1', inst))
        self.assertEqual(before,
                         {c['Id'] for c in self.engine.containers.values()})
        self.assertEqual(['port-1'], self.net.ports[inst.uuid][1])

    def test_confirm_removes_the_source_only(self):
        inst = self.spawn()
        self.arrive(inst, self.send(inst))
        self.driver.confirm_migration(None, self.record(), inst,
                                      test_driver.PORTS)
        self.assertEqual({}, self.on('h1', inst))
        self.assertEqual('running', self.on('h2', inst)['workload'][1])
        self.assertEqual(['port-1'], self.net.ports[inst.uuid][1])

    def test_confirm_in_place_keeps_the_containers(self):
        inst = self.spawn()
        same = objects.Migration(uuid=MOVE_UUID, source_compute='h1',
                                 dest_compute='h1')
        self.driver.confirm_migration(None, same, inst, test_driver.PORTS)
        self.assertEqual('running', self.on('h1', inst)['workload'][1])

    def test_failed_upload_puts_the_server_back(self):
        inst = self.spawn()
        self.upload_error = exception.SnapshotUploadFailed(
            image_id=self.image_id, size=10, reason='connection reset')
        err = self.assertRaises(nova_exception.InstanceFaultRollback,
                                self.send, inst)
        self.assertIsInstance(err.inner_exception,
                              exception.SnapshotUploadFailed)
        self.assertEqual({'workload': ('nova-%s' % inst.uuid, 'running'),
                          'sandbox': ('nova-%s-sandbox' % inst.uuid,
                                      'running')},
                         self.on('h1', inst))
        self.assertEqual({}, self.glance.images)
        self.assertEqual(['port-1'], self.net.ports[inst.uuid][1])

    def test_failed_load_leaves_nothing_on_the_target(self):
        inst = self.spawn()
        disk_info = self.send(inst)
        self.load_error = exception.ImageDownloadFailed(
            image_id=self.image_id, size=5, reason='connection reset')
        err = self.assertRaises(exception.TransferImageUnavailable,
                                self.arrive, inst, disk_info)
        self.assertIn('openstack server create --image %s' % self.image_id,
                      str(err))
        self.assertEqual({}, self.on('h2', inst))
        # The data is kept: in Glance and in the source's containers.
        self.assertIn(self.image_id, self.glance.images)
        self.assertEqual({'workload', 'sandbox'}, set(self.on('h1', inst)))

    def test_failed_start_on_the_target_leaves_nothing_there(self):
        inst = self.spawn()
        disk_info = self.send(inst)
        self.engine.fail('start', status=400, workload_only=True)
        self.assertRaises(exception.TransferImageUnavailable,
                          self.arrive, inst, disk_info)
        self.assertEqual({}, self.on('h2', inst))
        self.assertIn(self.image_id, self.glance.images)

    def test_root_disk_change_allowed_to_another_host(self):
        # The target creates new containers with the new cap.
        inst = self.spawn()
        self.driver._disk_quota = True
        disk_info = self.send(inst, objects.Flavor(
            name='disk', vcpus=1, memory_mb=128, root_gb=5, extra_specs={}))
        self.assertEqual(self.image_id, moves.transfer_in(disk_info))

    def test_too_large_to_load_is_refused_before_the_stop(self):
        inst = self.spawn()
        self.flags(image_max_bytes=10 * 1024 * 1024, group='docker')
        self.engine.root_sizes['nova-%s' % inst.uuid] = 11 * 1024 * 1024
        err = self.assertRaises(nova_exception.InstanceFaultRollback,
                                self.send, inst)
        self.assertIsInstance(err.inner_exception,
                              exception.MigrationUnsupported)
        self.assertIn('image_max_bytes', str(err.inner_exception))
        self.assertEqual('running', self.on('h1', inst)['workload'][1])
        self.assertEqual({}, self.glance.images)

    def test_no_migration_record_is_refused_first(self):
        inst = self.spawn()
        self.useFixture(fixtures.MockPatchObject(
            self.driver, '_move_of', return_value=('h2', None)))
        err = self.assertRaises(
            nova_exception.InstanceFaultRollback,
            self.driver.migrate_disk_and_power_off, None, inst, '10.0.0.2',
            self.bigger(), test_driver.PORTS)
        self.assertIsInstance(err.inner_exception,
                              exception.MigrationUnsupported)
        self.assertEqual('running', self.on('h1', inst)['workload'][1])

    def test_restart_during_the_move_keeps_the_source(self):
        inst = self.spawn()
        self.send(inst)
        # Nova records the server on h2 now: h1's listing lacks it.
        self.nova_instances.remove(inst)
        self.moving = [inst.uuid]
        self.driver.init_host('h1')
        self.assertEqual({'workload', 'sandbox'}, set(self.on('h1', inst)))
        self.moving = []
        self.driver.init_host('h1')
        self.assertEqual({}, self.on('h1', inst))
