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

"""Two servers from a docker image: boot, console, ping and HTTP between
them, then every power operation, each followed by the same checks, and a
second port attached and detached.

"web" serves HTTP (busybox httpd); "probe" pings and fetches web's page
every two seconds and prints the outcome to its console, read back
through the console-log API. The host (which holds the subnet's gateway)
pings both and fetches the page as well.
"""

import time

from tempest.lib.common.utils import data_utils
from tempest.lib import decorators

from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin import workloads


class TwoServersTest(base.NovaDockerScenarioTest):

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.tag = data_utils.rand_name('tag')
        cls.body = workloads.hello(cls.tag)
        image_id = cls.create_workload_image()
        group = cls.create_security_group()
        web_port = cls.create_port(cls.network['id'], group)
        probe_port = cls.create_port(cls.network['id'], group)
        cls.web_ip = cls.ipv4_of(web_port)
        cls.probe_ip = cls.ipv4_of(probe_port)
        # A second network, for the attach/detach scenario: its ports are
        # made now so the prober knows the address to probe.
        net2 = cls.networks_client.create_network(
            name=data_utils.rand_name('nd-tempest-net2'))['network']
        cls.addClassResourceCleanup(cls.networks_client.delete_network,
                                    net2['id'])
        subnet2 = cls.subnets_client.create_subnet(
            network_id=net2['id'], ip_version=4, cidr='10.251.%d.0/24'
            % (hash(cls.tag) % 250), gateway_ip=None,
            enable_dhcp=False)['subnet']
        cls.addClassResourceCleanup(cls.subnets_client.delete_subnet,
                                    subnet2['id'])
        cls.web_port2 = cls.create_port(net2['id'], group)
        cls.probe_port2 = cls.create_port(net2['id'], group)
        cls.web_ip2 = cls.ipv4_of(cls.web_port2)
        cls.started = base.now()
        cls.web = cls.create_server(
            image_id, workloads.web_metadata(cls.tag), port=web_port,
            name='nd-web')
        cls.probe = cls.create_server(
            image_id, workloads.probe_metadata([cls.web_ip, cls.web_ip2]),
            port=probe_port, name='nd-probe')
        cls.servers = (cls.web['id'], cls.probe['id'])
        for server_id in cls.servers:
            cls.wait_for_server(server_id)

    def check_connectivity(self, since):
        """Ping and HTTP between the servers, and from the host to them."""
        self.wait_for_probe(self.probe['id'], self.web_ip, since, self.body)
        self.assert_host_ping(self.web_ip)
        self.assert_host_ping(self.probe_ip)
        self.assert_host_http(self.web_ip, self.body)

    def _power_cycle(self, action, state, reverse, restarts):
        """Apply *action* to both servers, then *reverse*; check it all."""
        before = base.now()
        for server_id in self.servers:
            getattr(self.servers_client, action)(server_id)
        for server_id in self.servers:
            self.wait_for_server(server_id, state)
        self.check_while_down(state)
        for server_id in self.servers:
            getattr(self.servers_client, reverse)(server_id)
        for server_id in self.servers:
            self.wait_for_server(server_id)
        active = base.now()
        if restarts:
            for server_id in self.servers:
                self.assert_booted_since(server_id, before)
        self.check_connectivity(active)

    def check_while_down(self, state):
        if state == 'SHUTOFF':
            # Stopped: the ports are unplugged, nothing answers.
            self.assert_host_ping(self.web_ip, reachable=False, timeout=20)
        else:
            # Frozen: the kernel still answers pings, the server does not.
            self.assert_host_http_fails(self.web_ip)

    @decorators.idempotent_id('6d1c3e0a-2b0e-4f51-9a57-4f0f5a2d7c01')
    def test_boot_console_ping_http(self):
        for server_id, name in zip(self.servers, ('nd-web', 'nd-probe')):
            server = self.wait_for_server(server_id)
            self.assertEqual('ACTIVE', server['status'])
            console = self.wait_for_console(
                server_id, lambda c: workloads.boots(c), 'ND-BOOT line')
            self.assertIn(name, [h for _, h in workloads.boots(console)])
        self.check_connectivity(self.started)

    @decorators.idempotent_id('6d1c3e0a-2b0e-4f51-9a57-4f0f5a2d7c02')
    def test_stop_start(self):
        self._power_cycle('stop_server', 'SHUTOFF', 'start_server', True)

    @decorators.idempotent_id('6d1c3e0a-2b0e-4f51-9a57-4f0f5a2d7c03')
    def test_pause_unpause(self):
        self._power_cycle('pause_server', 'PAUSED', 'unpause_server', False)

    @decorators.idempotent_id('6d1c3e0a-2b0e-4f51-9a57-4f0f5a2d7c04')
    def test_suspend_resume(self):
        self._power_cycle('suspend_server', 'SUSPENDED', 'resume_server',
                          False)

    def _reboot(self, kind):
        before = base.now()
        for server_id in self.servers:
            self.servers_client.reboot_server(server_id, type=kind)
        for server_id in self.servers:
            self.wait_for_server(server_id)
        active = base.now()
        for server_id in self.servers:
            self.assert_booted_since(server_id, before)
        self.check_connectivity(active)

    @decorators.idempotent_id('6d1c3e0a-2b0e-4f51-9a57-4f0f5a2d7c05')
    def test_reboot_soft(self):
        self._reboot('SOFT')

    @decorators.idempotent_id('6d1c3e0a-2b0e-4f51-9a57-4f0f5a2d7c06')
    def test_reboot_hard(self):
        self._reboot('HARD')

    @decorators.idempotent_id('6d1c3e0a-2b0e-4f51-9a57-4f0f5a2d7c07')
    def test_attach_detach_port(self):
        web, probe = self.servers
        before = base.now()
        self.wait_for_probe(probe, self.web_ip2, before, self.body,
                            reachable=False)
        self.interfaces_client.create_interface(
            web, port_id=self.web_port2['id'])
        self.interfaces_client.create_interface(
            probe, port_id=self.probe_port2['id'])
        attached = base.now()
        for server_id in self.servers:
            self.assertEqual(2, len(self._interfaces(server_id)))
        # eth1 is there inside, and carries ping and HTTP on the second
        # network (which has no gateway: nothing else could route it).
        self.wait_for_console(
            probe, lambda c: ['eth0', 'eth1', 'lo'] in
            workloads.interfaces(c, attached), 'eth1 in the interface list')
        self.wait_for_probe(probe, self.web_ip2, attached, self.body)
        self.interfaces_client.delete_interface(web, self.web_port2['id'])
        self.interfaces_client.delete_interface(probe,
                                                self.probe_port2['id'])
        for server_id in self.servers:
            self.wait_for_interfaces(server_id, 1)
        detached = base.now()
        self.wait_for_console(
            probe, lambda c: ['eth0', 'lo'] in
            workloads.interfaces(c, detached), 'eth1 gone from the list')
        self.wait_for_probe(probe, self.web_ip2, detached, self.body,
                            reachable=False)
        # The first port still works.
        self.check_connectivity(detached)

    def _interfaces(self, server_id):
        return self.interfaces_client.list_interfaces(
            server_id)['interfaceAttachments']

    def wait_for_interfaces(self, server_id, count):
        for _ in range(60):
            if len(self._interfaces(server_id)) == count:
                return
            time.sleep(1)
        self.fail('server %s does not have %d interfaces after 60 s'
                  % (server_id, count))
