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

"""Servers through the Nova API, containers on the real engine."""

import time

from nova import context as nova_context

from tools.harness import base
from tools.harness import fixtures as nd_fixtures


class LifecycleTestCase(base.DockerFunctionalTestBase):

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                          ephemeral=0,
                                          name='docker.small')

    def action(self, server, body, expected):
        self.api.post_server_action(server['id'], body)
        return self._wait_for_server_parameter(
            server, {'status': expected, 'OS-EXT-STS:task_state': None})

    def test_shell_image_stays_up_with_limits(self):
        server = self.boot(flavor_id=self.flavor)
        time.sleep(10)
        workload = self.workload(server)
        self.assertEqual('running', workload.status)
        config = workload.attrs['Config']
        hostconfig = workload.attrs['HostConfig']
        self.assertTrue(config['Tty'])
        self.assertTrue(config['OpenStdin'])
        self.assertEqual(128 * 1024 * 1024, hostconfig['Memory'])
        self.assertEqual(128 * 1024 * 1024, hostconfig['MemorySwap'])
        self.assertEqual(10 ** 9, hostconfig['NanoCpus'])
        self.assertEqual(4096, hostconfig['PidsLimit'])
        self.assertFalse(hostconfig['Privileged'])
        self.assertIn('no-new-privileges', hostconfig['SecurityOpt'])
        labels = config['Labels']
        self.assertEqual(server['id'],
                         labels['org.openstack.nova.instance-uuid'])
        self.assertEqual(self.hosts[0], labels['org.openstack.nova.host'])
        self.assertEqual(server['tenant_id'],
                         labels['org.openstack.nova.project-id'])
        self.assertEqual('nova-%s' % server['id'], workload.name)
        self.assertEqual(server['OS-EXT-SRV-ATTR:hostname'],
                         config['Hostname'])
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_power_operations(self):
        server = self.boot(flavor_id=self.flavor)
        started = self.workload(server).attrs['State']['StartedAt']

        server = self.action(server, {'os-stop': None}, 'SHUTOFF')
        self.assertEqual('exited', self.workload(server).status)
        server = self.action(server, {'os-start': None}, 'ACTIVE')
        self.assertEqual('running', self.workload(server).status)

        server = self.action(server, {'reboot': {'type': 'SOFT'}}, 'ACTIVE')
        soft = self.workload(server).attrs['State']['StartedAt']
        self.assertNotEqual(started, soft)
        self.assertEqual('running', self.workload(server).status)
        server = self.action(server, {'reboot': {'type': 'HARD'}}, 'ACTIVE')
        self.assertNotEqual(soft,
                            self.workload(server).attrs['State']['StartedAt'])

        server = self.action(server, {'pause': None}, 'PAUSED')
        self.assertEqual('paused', self.workload(server).status)
        server = self.action(server, {'unpause': None}, 'ACTIVE')
        self.assertEqual('running', self.workload(server).status)

        server = self.action(server, {'suspend': None}, 'SUSPENDED')
        self.assertEqual('paused', self.workload(server).status)
        self.assertEqual(7, server['OS-EXT-STS:power_state'])  # SUSPENDED
        server = self.action(server, {'resume': None}, 'ACTIVE')
        self.assertEqual('running', self.workload(server).status)
        self.assertEqual(1, server['OS-EXT-STS:power_state'])  # RUNNING

        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_soft_delete_and_restore(self):
        self.flags(reclaim_instance_interval=3600)
        server = self.boot(flavor_id=self.flavor)
        self.api.delete_server(server['id'])
        server = self._wait_for_state_change(server, 'SOFT_DELETED')
        self.assertEqual('exited', self.workload(server).status)
        server = self.action(server, {'restore': None}, 'ACTIVE')
        self.assertEqual('running', self.workload(server).status)
        self.api.post_server_action(server['id'], {'forceDelete': None})
        self._wait_until_deleted(server)
        self.assertNoLeftovers(server['id'])

    def test_console_output(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'printer',
            os_command_line="/bin/sh -c 'echo hello-from-$HOSTNAME; "
                            "echo meta=$GREETING; exec sleep 3600'")
        server = self.boot(image_id=image, flavor_id=self.flavor,
                           metadata={'GREETING': 'bonjour'})
        output = self.console(server, 'meta=')
        self.assertIn('hello-from-' + server['OS-EXT-SRV-ATTR:hostname'],
                      output)
        self.assertIn('meta=bonjour', output)
        self._delete_server(server)

    def test_console_output_is_bounded(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'chatty',
            os_command_line="/bin/sh -c 'i=0; while [ $i -lt 3000 ]; do "
                            "echo line-$i-0123456789abcdef0123456789abcdef0123"
                            "456789abcdef; i=$((i+1)); done; echo END; "
                            "exec sleep 3600'")
        server = self.boot(image_id=image, flavor_id=self.flavor)
        output = self.console(server, 'END')
        self.assertIn('END', output)
        self.assertLessEqual(len(output.encode()), 100 * 1024)
        self.assertNotIn('line-0-', output)
        self._delete_server(server)

    def test_container_that_exits_becomes_shutoff(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'one-shot',
            os_command_line="/bin/sh -c 'echo done'")
        server = self.boot(image_id=image, flavor_id=self.flavor)
        for _ in range(50):
            if self.workload(server).status == 'exited':
                break
            time.sleep(0.2)
        self.assertEqual('exited', self.workload(server).status)
        compute = self.computes[self.hosts[0]]
        compute.manager._sync_power_states(nova_context.get_admin_context())
        server = self._wait_for_state_change(server, 'SHUTOFF')
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_container_removed_behind_novas_back(self):
        server = self.boot(flavor_id=self.flavor)
        for c in self.containers_of(server):
            c.remove(force=True)
        compute = self.computes[self.hosts[0]]
        # Must not raise: the instance is reported missing (NOSTATE). The
        # sync runs on Nova's worker pool, hence the wait.
        compute.manager._sync_power_states(nova_context.get_admin_context())
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-STS:power_state': 0})  # NOSTATE
        self.assertEqual('ACTIVE', server['status'])
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])


class TwoHostsTestCase(base.DockerFunctionalTestBase):
    """Two compute services on one engine never see each other's servers."""

    def test_hosts_are_isolated(self):
        host_a = self.hosts[0]
        self.start_compute('b')
        host_b = self.hosts[1]
        server_a = self.boot(host=host_a)
        server_b = self.boot(host=host_b)
        stranger = self.docker().containers.run(
            nd_fixtures.BUSYBOX_IMAGE, ['sleep', '600'], detach=True,
            name='nd-test-stranger-%s' % host_a, network_mode='none',
            labels={'org.openstack.nova.instance-uuid': 'not-nova'})
        self.addCleanup(stranger.remove, force=True)

        driver_a = self.computes[host_a].driver
        driver_b = self.computes[host_b].driver
        self.assertEqual([server_a['id']], driver_a.list_instance_uuids())
        self.assertEqual([server_b['id']], driver_b.list_instance_uuids())
        self.assertEqual(1, driver_a.get_num_instances())

        self._delete_server(server_a)
        self.assertNoLeftovers(server_a['id'])
        self.assertEqual(['running', 'running'],
                         [c.status for c in self.containers_of(server_b)])
        stranger.reload()
        self.assertEqual('running', stranger.status)
        self.assertEqual([], driver_a.list_instances())
        self._delete_server(server_b)
        self.assertNoLeftovers(server_b['id'])


class BadInputTestCase(base.DockerFunctionalTestBase):
    """Each bad request: ERROR, a fault saying what is wrong, no leftovers."""

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                          ephemeral=0)

    def assertFailsCleanly(self, expected_in_fault, **boot_kwargs):
        boot_kwargs.setdefault('flavor_id', self.flavor)
        return self.assertBootFailsCleanly(expected_in_fault, **boot_kwargs)

    def test_wrong_container_format(self):
        image = self.glance.add_image(b'not a tarball', 'qcow',
                                      container_format='bare')
        self.assertFailsCleanly([image, 'container_format=bare',
                                 'container_format=docker'], image_id=image)

    def test_image_without_data(self):
        image = self.glance.add_image(b'', 'empty')
        self.glance._imagedata.pop(image)
        self.assertFailsCleanly([image], image_id=image)

    def test_command_missing_in_image(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'typo',
            os_command_line='/bin/no-such-program --flag')
        self.assertFailsCleanly(['/bin/no-such-program', 'os_command_line'],
                                image_id=image)

    def test_bad_metadata_key(self):
        self.assertFailsCleanly(["'bad-key'", 'environment variable'],
                                metadata={'bad-key': 'x'})

    def test_engine_refuses_mid_spawn(self):
        # The sandbox is created, then the engine refuses the workload
        # (below its minimum memory limit): the sandbox must go too.
        tiny = self._create_flavor(memory_mb=4, vcpu=1, disk=1,
                                   ephemeral=0)
        self.assertFailsCleanly(['Minimum memory limit'], flavor_id=tiny)
