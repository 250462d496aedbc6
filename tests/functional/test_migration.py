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

"""Cold migration and resize to another host, through Nova's own code.

Two compute services run in this process, both with the Docker driver on
the real engine, OVS and rootwrap; Nova's API, conductor and scheduler
choose the target. The writable layer travels as a transfer image through
the Glance stand-in, which keeps the bytes the source uploaded and serves
them to the target's load: the test checks bytes were served, so the data
read on the target came through Glance and not from the source's
containers (which share this engine, under other names and labels).
"""

import os

import fixtures

from novadocker.virt.docker import migration as moves
from tests.functional import test_server_actions
from tools.harness import base

LABEL_HOST = 'org.openstack.nova.host'
LABEL_ROLE = 'org.openstack.nova.role'
MIB = 1024 * 1024


class _TwoHostsBase(test_server_actions._ActionsBase):

    def setUp(self):
        super().setUp()
        self.start_compute('b')
        self.source, self.target = self.hosts

    def on_host(self, server, host, role='workload'):
        """The server's container of *role* on *host*, inspected, or None."""
        found = [c for c in self.containers_of(server)
                 if c.labels.get(LABEL_HOST) == host and
                 c.labels.get(LABEL_ROLE) == role]
        self.assertLessEqual(len(found), 1, found)
        if not found:
            return None
        found[0].reload()
        return found[0]

    def read_on(self, server, host, path):
        code, out = self.on_host(server, host).exec_run(['cat', path])
        return out.decode().strip() if code == 0 else None

    def write_on(self, server, host, path, text):
        code, out = self.on_host(server, host).exec_run(
            ['sh', '-c', 'echo %s > %s && sync' % (text, path)])
        self.assertEqual(0, code, out)

    def assertRunsOn(self, server, host):
        """Running on *host*, wired there, and Nova says so."""
        self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'])
        workload = self.on_host(server, host)
        self.assertEqual('running', workload.status)
        code, out = workload.exec_run(['ip', '-o', '-4', 'addr', 'show',
                                       'eth0'])
        self.assertEqual(0, code, out)
        self.assertIn('inet %s/' % self.ip_of(server), out.decode())
        link = '/var/run/netns/nova-%s' % server['id']
        self.assertEqual('/proc/%d/ns/net' % self.on_host(
            server, host, 'sandbox').attrs['State']['Pid'],
            os.readlink(link))
        self.assertEqual(1, len(base.ovs_ports_of(server['id'])))

    def migration_of(self, server):
        found = [m for m in self.admin_api.get_migrations()
                 if m['instance_uuid'] == server['id']]
        return max(found, key=lambda m: m['id'])

    def transfer_image_of(self, server):
        return moves.transfer_image_id(self.migration_of(server)['uuid'])

    def move(self, server, body, host):
        """A move that ends in VERIFY_RESIZE on *host*."""
        self.api.post_server_action(server['id'], body)
        return self._wait_for_server_parameter(
            server, {'status': 'VERIFY_RESIZE',
                     'OS-EXT-STS:task_state': None,
                     'OS-EXT-SRV-ATTR:host': host})


class ColdMigrationTestCase(_TwoHostsBase):

    def test_data_travels_revert_then_confirm(self):
        server = self.boot_on_net(host=self.source)
        self.write(server, '/data.txt', 'kept-across-migration')
        source_ids = {role: self.on_host(server, self.source, role).id
                      for role in ('workload', 'sandbox')}

        server = self.move(server, {'migrate': None}, self.target)
        image_id = self.transfer_image_of(server)
        # The layer came through Glance, which no longer holds it.
        self.assertGreater(self.glance.bytes_served[image_id], 0)
        self.assertNotIn(image_id, self.glance.images)
        self.assertRunsOn(server, self.target)
        self.assertEqual('kept-across-migration',
                         self.read_on(server, self.target, '/data.txt'))
        kept = self.on_host(server, self.source)
        self.assertEqual((source_ids['workload'], 'exited'),
                         (kept.id, kept.status))
        self.assertEqual('nova-%s%s' % (server['id'], moves.ASIDE_SUFFIX),
                         kept.name)
        self.write_on(server, self.target, '/target.txt', 'only-on-target')

        # Revert: the source's containers, unchanged, run again.
        self.api.post_server_action(server['id'], {'revertResize': None})
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
                     'OS-EXT-SRV-ATTR:host': self.source})
        self.assertIsNone(self.on_host(server, self.target))
        self.assertIsNone(self.on_host(server, self.target, 'sandbox'))
        self.assertEqual(source_ids, {
            role: self.on_host(server, self.source, role).id
            for role in ('workload', 'sandbox')})
        self.assertEqual('nova-%s' % server['id'],
                         self.on_host(server, self.source).name)
        self.assertRunsOn(server, self.source)
        self.assertEqual('kept-across-migration',
                         self.read_on(server, self.source, '/data.txt'))
        self.assertIsNone(self.read_on(server, self.source, '/target.txt'))

        # Again, and confirm: the source's containers go.
        server = self.move(server, {'migrate': None}, self.target)
        server = self.action(server, {'confirmResize': None}, 'ACTIVE')
        self.assertIsNone(self.on_host(server, self.source))
        self.assertIsNone(self.on_host(server, self.source, 'sandbox'))
        self.assertRunsOn(server, self.target)
        self.assertEqual('kept-across-migration',
                         self.read_on(server, self.target, '/data.txt'))
        self.assertNotIn(self.transfer_image_of(server),
                         self.glance.images)
        self.delete_all(server)

    def test_resize_to_the_other_host_applies_the_new_limits(self):
        bigger = self._create_flavor(memory_mb=192, vcpu=2, disk=1,
                                     ephemeral=0, extra_spec={
                                         'docker:pids_limit': '512'})
        server = self.boot_on_net(host=self.source)
        self.write(server, '/data.txt', 'kept-across-resize')
        # allow_resize_to_same_host is False: the scheduler must move it.
        server = self.move(server, {'resize': {'flavorRef': bigger}},
                           self.target)
        host_config = self.on_host(server, self.target).attrs['HostConfig']
        self.assertEqual((192 * MIB, 192 * MIB, 2 * 10 ** 9, 512),
                         (host_config['Memory'], host_config['MemorySwap'],
                          host_config['NanoCpus'], host_config['PidsLimit']))
        self.assertEqual('kept-across-resize',
                         self.read_on(server, self.target, '/data.txt'))
        self.assertRunsOn(server, self.target)
        server = self.action(server, {'confirmResize': None}, 'ACTIVE')
        self.assertEqual(192 * MIB, self.on_host(
            server, self.target).attrs['HostConfig']['Memory'])
        self.assertIsNone(self.on_host(server, self.source))
        self.delete_all(server)


class FailedMoveTestCase(_TwoHostsBase):
    """A transfer that breaks midway: the data is never lost."""

    def _break_transfer_uploads(self):
        fixture_update = self.glance.update

        def update(context, image_id, metadata, data=None, **kwargs):
            record = self.glance.show(context, image_id)
            props = record.get('properties') or {}
            if data is not None and moves.PROP_TRANSFER_OF in props:
                data.read(64 * 1024)
                raise ConnectionResetError('connection reset by peer')
            return fixture_update(context, image_id, metadata, data=data,
                                  **kwargs)
        self.useFixture(fixtures.MockPatchObject(
            self.glance, 'update', side_effect=update))

    def test_failed_upload_leaves_the_server_running_here(self):
        self._break_transfer_uploads()
        server = self.boot_on_net(host=self.source)
        self.write(server, '/data.txt', 'still-here')
        self.api.post_server_action(server['id'], {'migrate': None})
        details = self.wait_for_action_error(server, 'migrate')
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertIn('connection reset by peer', details)
        self.assertRunsOn(server, self.source)
        self.assertEqual('nova-%s' % server['id'],
                         self.on_host(server, self.source).name)
        self.assertEqual('still-here',
                         self.read_on(server, self.source, '/data.txt'))
        self.assertIsNone(self.on_host(server, self.target))
        self.assertNotIn(self.transfer_image_of(server),
                         self.glance.images)
        self.delete_all(server)

    def test_failed_load_leaves_nothing_on_the_target(self):
        server = self.boot_on_net(host=self.source)
        self.write(server, '/data.txt', 'recoverable')
        # Every download of a transfer image breaks after 64 KiB.
        chunks = self.glance._chunks
        breaking = [True]

        def broken(image_id):
            props = self.glance.show(None, image_id).get('properties') or {}
            if breaking[0] and moves.PROP_TRANSFER_OF in props:
                self.glance.cuts[image_id] = (
                    64 * 1024, ConnectionResetError('connection reset'))
            return chunks(image_id)
        self.useFixture(fixtures.MockPatchObject(
            self.glance, '_chunks', side_effect=broken))
        self.api.post_server_action(server['id'], {'migrate': None})
        server = self._wait_for_server_parameter(
            server, {'status': 'ERROR', 'OS-EXT-STS:task_state': None})
        image_id = self.transfer_image_of(server)
        self.assertIn('openstack server create --image %s' % image_id,
                      server['fault']['message'])
        # Nothing of the target's, no wiring; the data is kept twice.
        self.assertIsNone(self.on_host(server, self.target))
        self.assertIsNone(self.on_host(server, self.target, 'sandbox'))
        self.assertEqual({}, base.ovs_ports_of(server['id']))
        self.assertFalse(os.path.lexists(
            '/var/run/netns/nova-%s' % server['id']))
        self.assertIn(image_id, self.glance.images)
        self.assertEqual('exited', self.on_host(server, self.source).status)

        # The advice in the fault works: a new server from the transfer
        # image has the data.
        breaking[0] = False
        self.glance.cuts.clear()
        rescued = self.boot_on_net(image_id=image_id, host=self.target)
        self.assertEqual('recoverable',
                         self.read_on(rescued, self.target, '/data.txt'))
        self.delete_all(rescued)
        # Nova deletes the ERROR server on the target only; the source's
        # kept containers go at its next start (no move in progress).
        self._delete_server(server)
        self.assertIsNotNone(self.on_host(server, self.source))
        self.restart_compute_service(self.computes[self.source],
                                     keep_hypervisor_state=False)
        self.assertNoLeftovers(server['id'])


class NoOtherHostTestCase(test_server_actions._ActionsBase):
    """One compute service: Nova refuses, the server stays as it was."""

    def assertLeftActive(self, server, started, details):
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertIn('No valid host', details)
        self.assertEqual(self.hosts[0], server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(started,
                         self.workload(server).attrs['State']['StartedAt'])
        self.assertEqual('still-here', self.read(server, '/kept.txt'))
        self.assertWired(server)

    def test_migration_with_no_other_host(self):
        server = self.boot_on_net()
        self.write(server, '/kept.txt', 'still-here')
        started = self.workload(server).attrs['State']['StartedAt']
        self.api.post_server_action(server['id'], {'migrate': None})
        details = self.wait_for_action_error(server, 'migrate')
        self.assertLeftActive(server, started, details)
        self.delete_all(server)

    def test_resize_to_a_flavor_no_host_fits(self):
        self.flags(allow_resize_to_same_host=True)
        # Quotas do not count disk: the scheduler is what refuses it.
        huge = self._create_flavor(memory_mb=self.FLAVOR_MEMORY_MB, vcpu=1,
                                   disk=1024 * 1024, ephemeral=0)
        server = self.boot_on_net()
        self.write(server, '/kept.txt', 'still-here')
        started = self.workload(server).attrs['State']['StartedAt']
        self.api.post_server_action(server['id'],
                                    {'resize': {'flavorRef': huge}})
        details = self.wait_for_action_error(server, 'resize')
        self.assertLeftActive(server, started, details)
        self.delete_all(server)
