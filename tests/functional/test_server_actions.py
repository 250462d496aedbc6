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

"""Rescue, in-place resize and refused live moves through Nova's API.

Cold migration and resize to another host are test_migration's.

Real engine, OVS and rootwrap: what a user sees is checked on the engine
(containers, their limits, files written before and read after).
"""

import time

from tools.harness import base
from tools.harness import fixtures as nd_fixtures

MIB = 1024 * 1024
LABEL_ROLE = 'org.openstack.nova.role'


class _ActionsBase(base.NetworkedTestBase):

    def action(self, server, body, expected):
        self.api.post_server_action(server['id'], body)
        return self._wait_for_server_parameter(
            server, {'status': expected, 'OS-EXT-STS:task_state': None})

    def write(self, server, path, text):
        code, out = self.exec_in(server, 'sh', '-c',
                                 'echo %s > %s && sync' % (text, path))
        self.assertEqual(0, code, out)

    def read(self, server, path):
        code, out = self.exec_in(server, 'cat', path)
        self.assertEqual(0, code, out)
        return out.strip()

    def rescue_containers(self, server):
        return [c for c in self.containers_of(server)
                if c.labels.get(LABEL_ROLE) == 'rescue']

    def wait_for_action_error(self, server, action):
        """The details of the action's failed events, once recorded.

        A server left ACTIVE shows no fault: the reason is in the
        instance action's event details (microversion 2.84).
        """
        for _ in range(240):
            actions = self.api.get_instance_actions(server['id'])
            found = [a for a in actions if a['action'] == action]
            if found:
                detail = self.api.api_get(
                    '/servers/%s/os-instance-actions/%s' % (
                        server['id'], found[0]['request_id'])
                ).body['instanceAction']
                events = detail.get('events') or []
                failed = [e.get('details') or '' for e in events
                          if e.get('result') == 'Error']
                if failed:
                    return ' '.join(failed)
            time.sleep(0.5)
        self.fail('no failed %s action recorded for %s'
                  % (action, server['id']))


class RescueTestCase(_ActionsBase):

    def test_rescue_sees_the_disk_and_ports_unrescue_keeps_data(self):
        server = self.boot_on_net()
        self.write(server, '/before.txt', 'written-before-rescue')
        workload_id = self.workload(server).id

        server = self.action(server, {'rescue': {}}, 'RESCUE')
        self.assertEqual('exited', self.workload(server).status)
        self.assertEqual(workload_id, self.workload(server).id)
        [rescue] = self.rescue_containers(server)
        rescue.reload()
        self.assertEqual('running', rescue.status)
        self.assertEqual('container:%s' % self.sandbox(server).id,
                         rescue.attrs['HostConfig']['NetworkMode'])
        # The server's address, in the rescue container.
        code, out = rescue.exec_run(['ip', '-o', '-4', 'addr', 'show',
                                     'eth0'])
        self.assertEqual(0, code, out)
        self.assertIn('inet %s/' % self.ip_of(server), out.decode())
        # The server's disk at the documented path, writable.
        code, out = rescue.exec_run(['cat', '/mnt/rescue/before.txt'])
        self.assertEqual((0, 'written-before-rescue'),
                         (code, out.decode().strip()))
        code, out = rescue.exec_run(
            ['sh', '-c', 'echo repaired > /mnt/rescue/repaired.txt'])
        self.assertEqual(0, code, out)

        server = self.action(server, {'unrescue': None}, 'ACTIVE')
        self.assertEqual([], self.rescue_containers(server))
        self.assertEqual(workload_id, self.workload(server).id)
        self.assertEqual('running', self.workload(server).status)
        self.assertEqual('written-before-rescue',
                         self.read(server, '/before.txt'))
        self.assertEqual('repaired', self.read(server, '/repaired.txt'))
        self.assertWired(server)
        self.delete_all(server)

    def test_rescue_image_runs_its_own_command(self):
        rescuer = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'rescuer',
            os_command_line="/bin/sh -c 'echo found-$(cat "
                            "/mnt/rescue/before.txt); exec sleep 3600'")
        server = self.boot_on_net()
        self.write(server, '/before.txt', 'the-data')
        server = self.action(
            server, {'rescue': {'rescue_image_ref': rescuer}}, 'RESCUE')
        [rescue] = self.rescue_containers(server)
        for _ in range(40):
            if b'found-the-data' in rescue.logs():
                break
            time.sleep(0.25)
        self.assertIn(b'found-the-data', rescue.logs())
        server = self.action(server, {'unrescue': None}, 'ACTIVE')
        self.assertEqual('the-data', self.read(server, '/before.txt'))
        self.delete_all(server)

    def test_delete_while_rescued_leaves_nothing(self):
        server = self.boot_on_net()
        server = self.action(server, {'rescue': {}}, 'RESCUE')
        self.assertEqual(1, len(self.rescue_containers(server)))
        self.delete_all(server)

    def test_rescue_image_not_docker_is_refused_data_kept(self):
        image = self.glance.add_image(b'not a tarball', 'qcow',
                                      container_format='bare')
        server = self.boot_on_net()
        self.write(server, '/kept.txt', 'still-here')
        self.api.post_server_action(
            server['id'], {'rescue': {'rescue_image_ref': image}})
        # Nova marks any failed rescue ERROR; the fault says why, and the
        # driver has put the server's containers back, running.
        server = self._wait_for_server_parameter(
            server, {'status': 'ERROR', 'OS-EXT-STS:task_state': None})
        self.assertIn('container_format=bare', server['fault']['message'])
        self.assertEqual([], self.rescue_containers(server))
        self.assertEqual('running', self.workload(server).status)
        self.assertEqual('still-here', self.read(server, '/kept.txt'))
        self.assertWired(server)
        self.delete_all(server)


class ResizeTestCase(_ActionsBase):

    def setUp(self):
        super().setUp()
        self.flags(allow_resize_to_same_host=True)
        self.bigger = self._create_flavor(memory_mb=192, vcpu=2, disk=1,
                                          ephemeral=0,
                                          extra_spec={'docker:pids_limit':
                                                      '512'})

    def assertLimits(self, server, memory_mb, vcpus, pids):
        host_config = self.workload(server).attrs['HostConfig']
        self.assertEqual(memory_mb * MIB, host_config['Memory'])
        self.assertEqual(memory_mb * MIB, host_config['MemorySwap'])
        self.assertEqual(vcpus * 10 ** 9, host_config['NanoCpus'])
        self.assertEqual(pids, host_config['PidsLimit'])

    def test_resize_revert_and_confirm_in_place(self):
        server = self.boot_on_net()
        self.assertLimits(server, self.FLAVOR_MEMORY_MB, 1, 4096)
        self.write(server, '/data.txt', 'kept-across-resize')
        workload_id = self.workload(server).id

        server = self.action(server, {'resize': {'flavorRef': self.bigger}},
                             'VERIFY_RESIZE')
        self.assertEqual(self.hosts[0],
                         server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(workload_id, self.workload(server).id)
        self.assertLimits(server, 192, 2, 512)
        self.assertEqual('kept-across-resize', self.read(server, '/data.txt'))
        self.write(server, '/during.txt', 'written-while-resized')
        self.assertWired(server)

        server = self.action(server, {'revertResize': None}, 'ACTIVE')
        self.assertLimits(server, self.FLAVOR_MEMORY_MB, 1, 4096)
        self.assertEqual('kept-across-resize', self.read(server, '/data.txt'))
        self.assertEqual('written-while-resized',
                         self.read(server, '/during.txt'))
        self.assertEqual(workload_id, self.workload(server).id)
        self.assertWired(server)

        server = self.action(server, {'resize': {'flavorRef': self.bigger}},
                             'VERIFY_RESIZE')
        server = self.action(server, {'confirmResize': None}, 'ACTIVE')
        self.assertLimits(server, 192, 2, 512)
        self.assertEqual('kept-across-resize', self.read(server, '/data.txt'))
        self.assertEqual('running', self.workload(server).status)
        self.assertWired(server)
        self.delete_all(server)

    def test_resize_with_a_bad_flavor_is_refused_server_untouched(self):
        bad = self._create_flavor(memory_mb=64, vcpu=1, disk=1, ephemeral=0,
                                  extra_spec={'docker:pids_limit': '3'})
        server = self.boot_on_net()
        started = self.workload(server).attrs['State']['StartedAt']
        self.api.post_server_action(server['id'],
                                    {'resize': {'flavorRef': bad}})
        details = self.wait_for_action_error(server, 'resize')
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertEqual(started,
                         self.workload(server).attrs['State']['StartedAt'])
        self.assertEqual('running', self.workload(server).status)
        self.assertLimits(server, self.FLAVOR_MEMORY_MB, 1, 4096)
        self.assertIn('docker:pids_limit', details)
        self.delete_all(server)


class RefusedMoveTestCase(_ActionsBase):
    """Moves the driver cannot do: refused, the server left ACTIVE."""

    def setUp(self):
        super().setUp()
        self.start_compute('b')

    def assertUntouched(self, server, started):
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertEqual(self.hosts[0], server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('running', self.workload(server).status)
        self.assertEqual(started,
                         self.workload(server).attrs['State']['StartedAt'])
        self.assertEqual('still-here', self.read(server, '/kept.txt'))
        self.assertWired(server)
        return server

    def test_live_migration_is_refused_in_the_precheck(self):
        server = self.boot_on_net(host=self.hosts[0])
        self.write(server, '/kept.txt', 'still-here')
        started = self.workload(server).attrs['State']['StartedAt']
        self.api.post_server_action(
            server['id'], {'os-migrateLive': {'host': self.hosts[1],
                                              'block_migration': 'auto'}})
        details = self.wait_for_action_error(server, 'live-migration')
        self.assertUntouched(server, started)
        self.assertIn('cannot live-migrate', details)
        self.delete_all(server)


class OtherHostTestCase(_ActionsBase):
    """Evacuation and unshelve onto another host (same engine, two hosts)."""

    def setUp(self):
        super().setUp()
        self.start_compute('b')
        self.source, self.target = self.hosts[0], self.hosts[1]

    def on_host(self, server, host, role='workload'):
        """The server's container of *role* labelled with *host*."""
        found = [c for c in self.containers_of(server)
                 if c.labels.get('org.openstack.nova.host') == host and
                 c.labels.get(LABEL_ROLE) == role]
        return found[0] if found else None

    def test_evacuate_rebuilds_from_the_image_source_cleans_up(self):
        server = self.boot(host=self.source, flavor_id=self.flavor)
        self.write(server, '/written.txt', 'lost-by-evacuation')
        self.computes[self.source].stop()
        service = self.admin_api.get_services(
            host=self.source, binary='nova-compute')[0]
        self.admin_api.put_service_force_down(service['id'], True)
        # Two hosts of one engine share container names, two real hosts do
        # not: the source's containers get names of their own, keeping
        # their labels (which is how their host finds them again).
        for role in ('workload', 'sandbox'):
            old = self.on_host(server, self.source, role)
            old.rename('%s-on-%s' % (old.name, self.source))

        server = self._evacuate_server(server, expected_host=self.target)
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        rebuilt = self.on_host(server, self.target)
        self.assertEqual('running', rebuilt.status)
        code, out = rebuilt.exec_run(['cat', '/written.txt'])
        self.assertNotEqual(0, code, out)  # rebuilt from the image
        # The source's containers wait for their host to come back...
        self.assertIsNotNone(self.on_host(server, self.source))

        self.restart_compute_service(self.computes[self.source],
                                     keep_hypervisor_state=False)
        # Nova lets the host up only once it has cleaned up.
        self.admin_api.put_service_force_down(service['id'], False)
        # ...which removes them, and leaves the target's alone.
        self.assertIsNone(self.on_host(server, self.source))
        self.assertIsNone(self.on_host(server, self.source, 'sandbox'))
        self.assertEqual('running', self.on_host(server, self.target).status)
        self.delete_all(server)

    def test_unshelve_onto_the_other_host_keeps_the_data(self):
        self.flags(shelved_offload_time=0)
        server = self.boot_on_net(host=self.source)
        self.write(server, '/kept.txt', 'travelled-through-glance')
        server = self._shelve_server(server)
        self.assertIsNone(self.on_host(server, self.source))
        self.api.post_server_action(
            server['id'], {'unshelve': {'host': self.target}})
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None,
                     'OS-EXT-SRV-ATTR:host': self.target})
        self.assertEqual('running', self.on_host(server, self.target).status)
        self.assertEqual('travelled-through-glance',
                         self.read(server, '/kept.txt'))
        self.assertWired(server)
        self.delete_all(server)
