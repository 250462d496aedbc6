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

"""Servers on Neutron ports wired into real OVS (netdev datapath)."""

import os
import subprocess
import time

from novadocker.privsep import netdev
from novadocker.virt.docker import vifs
from tools.harness import base
from tools.harness import fixtures as nd_fixtures


class NetworkingTestCase(base.NetworkedTestBase):

    def action(self, server, body, expected):
        self.api.post_server_action(server['id'], body)
        return self._wait_for_server_parameter(
            server, {'status': expected, 'OS-EXT-STS:task_state': None})

    def test_two_servers_ping_through_power_operations(self):
        a = self.boot_on_net()
        b = self.boot_on_net()
        self.assertNotEqual(self.ip_of(a), self.ip_of(b))
        self.assertPings(a, b)
        self.assertPings(b, a)
        self.assertTcp(a, b)
        self.assertTcp(b, a)

        for body, state in (({'reboot': {'type': 'SOFT'}}, 'ACTIVE'),
                            ({'reboot': {'type': 'HARD'}}, 'ACTIVE')):
            b = self.action(b, body, state)
            self.assertPings(a, b)
            self.assertPings(b, a)

        b = self.action(b, {'os-stop': None}, 'SHUTOFF')
        self.assertEqual({}, base.ovs_ports_of(b['id']))
        self.assertFalse(os.path.lexists('/var/run/netns/nova-%s' % b['id']))
        b = self.action(b, {'os-start': None}, 'ACTIVE')
        self.assertPings(a, b)
        self.assertPings(b, a)
        self.assertTcp(a, b)

        # A paused server's processes are frozen, but its namespace still
        # answers pings: the host kernel replies, not the container.
        b = self.action(b, {'pause': None}, 'PAUSED')
        b = self.action(b, {'unpause': None}, 'ACTIVE')
        self.assertPings(a, b)

        b = self.action(b, {'suspend': None}, 'SUSPENDED')
        b = self.action(b, {'resume': None}, 'ACTIVE')
        self.assertPings(a, b)

        for server in (a, b):
            self._delete_server(server)
            self.assertNoLeftovers(server['id'])

    def test_inside_view_and_ovs_rows(self):
        server = self.boot_on_net()
        port_id = self.api.get_port_interfaces(server['id'])[0]['port_id']
        port = self.neutron.show_port(port_id)['port']
        ip = self.ip_of(server)

        _, addr = self.exec_in(server, 'ip', 'addr', 'show', 'eth0')
        self.assertIn('inet %s/24' % ip, addr)
        self.assertIn(port['mac_address'], addr)
        self.assertIn('mtu 1450', addr)
        _, route = self.exec_in(server, 'ip', 'route')
        self.assertIn('default via 192.168.1.1 dev eth0', route)
        _, lo = self.exec_in(server, 'ip', 'link', 'show', 'lo')
        self.assertIn('UP', lo.split('>')[0])

        rows = base.ovs_ports_of(server['id'])
        self.assertEqual(1, len(rows), rows)
        (name, ids), = rows.items()
        self.assertEqual(port['id'], ids['iface-id'])
        self.assertEqual(port['mac_address'], ids['attached-mac'])
        self.assertEqual('active', ids['iface-status'])
        bridge = subprocess.run(['ovs-vsctl', 'port-to-br', name],
                                capture_output=True, text=True, check=True)
        self.assertEqual('br-int', bridge.stdout.strip())

        # Operators debug a server with ip netns on the host.
        netns = subprocess.run(
            ['ip', 'netns', 'exec', 'nova-%s' % server['id'], 'ip', 'addr'],
            capture_output=True, text=True, check=True).stdout
        self.assertIn('inet %s/24' % ip, netns)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_resolv_conf_from_subnet_dns(self):
        subnet = nd_fixtures.OVSNeutronFixture.subnet_1
        self.neutron._subnets[subnet['id']] = dict(
            subnet, dns_nameservers=['192.168.1.53', '192.168.1.54'])
        server = self.boot_on_net()
        _, resolv = self.exec_in(server, 'cat', '/etc/resolv.conf')
        nameservers = [line for line in resolv.splitlines()
                       if line.startswith('nameserver')]
        self.assertEqual(['nameserver 192.168.1.53',
                          'nameserver 192.168.1.54'], nameservers)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_first_instruction_sees_network(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'ip-first',
            os_command_line="/bin/sh -c 'ip addr; ip route; exec sleep 3600'")
        server = self.boot_on_net(image_id=image)
        output = self.console(server, 'default via')
        self.assertIn('inet %s/24' % self.ip_of(server), output)
        self.assertIn('default via 192.168.1.1', output)
        self._delete_server(server)

    def test_attach_and_detach_interface(self):
        server = self.boot_on_net()
        before = set(base.ovs_ports_of(server['id']))
        attached = self.api.attach_interface(
            server['id'], {'interfaceAttachment': {'net_id': self.net}}
        ).body['interfaceAttachment']
        port_id = attached['port_id']
        ip = attached['fixed_ips'][0]['ip_address']
        _, addr = self.exec_in(server, 'ip', 'addr', 'show', 'eth1')
        self.assertIn('inet %s/24' % ip, addr)
        client = self.boot_on_net()
        self.assertTcp(client, server, address=ip)
        rows = base.ovs_ports_of(server['id'])
        self.assertEqual(2, len(rows))
        self.assertIn(port_id, [ids['iface-id'] for ids in rows.values()])

        self.api.detach_interface(server['id'], port_id)
        for _ in range(50):
            if set(base.ovs_ports_of(server['id'])) == before:
                break
            time.sleep(0.2)
        self.assertEqual(before, set(base.ovs_ports_of(server['id'])))
        code, _ = self.exec_in(server, 'ip', 'link', 'show', 'eth1')
        self.assertNotEqual(0, code)
        self.assertTcp(client, server)
        for each in (server, client):
            self._delete_server(each)
            self.assertNoLeftovers(each['id'])

    def test_boot_and_delete_ten_servers_leaves_nothing(self):
        servers = [self.boot_on_net() for _ in range(10)]
        self.assertEqual(10, len({self.ip_of(s) for s in servers}))
        # Other tests on this machine add and remove their own devices and
        # links meanwhile: look for this test's by name.
        devices = set()
        for server in servers:
            for attachment in self.api.get_port_interfaces(server['id']):
                devices.update(netdev.host_device_names(
                    attachment['port_id']).values())
        self.assertEqual(10 * len(netdev.HOST_PREFIXES), len(devices))
        for server in servers:
            self._delete_server(server)
        for server in servers:
            self.assertNoLeftovers(server['id'])
        self.assertEqual(set(), devices & set(os.listdir('/sys/class/net')))


class NetworkingBadInputTestCase(base.NetworkedTestBase):
    """Broken networking: ERROR, readable fault, nothing left behind."""

    def assertFailsCleanly(self, expected_in_fault, networks=None):
        return self.assertBootFailsCleanly(
            expected_in_fault, flavor_id=self.flavor,
            networks=networks or [{'uuid': self.net}])

    def test_bridge_missing(self):
        self.neutron.vif_details['bridge_name'] = 'br-nd-missing'
        self.assertFailsCleanly(['br-nd-missing'])

    def test_ovs_unreachable(self):
        dead = os.path.join(self.tmpdir, 'dead-ovsdb.sock')
        self.flags(ovsdb_connection='unix:' + dead, group='os_vif_ovs')
        self.assertFailsCleanly(['Open vSwitch'])

    def test_unsupported_vif_type(self):
        self.neutron.vif_type = 'tap'
        self.assertFailsCleanly(['tap', 'ovs'])

    def test_port_without_fixed_ips(self):
        port = self.neutron.create_port(
            {'port': {'network_id': self.net}})['port']
        self.neutron.drop_fixed_ips_on_bind.add(port['id'])
        self.assertFailsCleanly([port['id']], networks=[{'port': port['id']}])

    def test_failed_start_leaves_server_stopped_and_unwired(self):
        server = self.boot(flavor_id=self.flavor,
                           networks=[{'uuid': self.net}])
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_server_parameter(
            server, {'status': 'SHUTOFF', 'OS-EXT-STS:task_state': None})
        # OVS unreachable while starting: plugging fails after the
        # sandbox has started.
        dead = os.path.join(self.tmpdir, 'dead-ovsdb.sock')
        self.flags(ovsdb_connection='unix:' + dead, group='os_vif_ovs')
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_server_parameter(
            server, {'status': 'SHUTOFF', 'OS-EXT-STS:task_state': None})
        self.assertEqual([], [c.name for c in self.containers_of(server)
                              if c.status == 'running'])
        # Stopped containers stay (they are the server); nothing else does.
        self.assertEqual([], [found for found in self.leftovers(server['id'])
                              if not found.startswith('container ')])
        # With OVS back, the same server starts and is wired again.
        self.flags(ovsdb_connection=vifs.DEFAULT_OVSDB_CONNECTION,
                   group='os_vif_ovs')
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertTrue(os.path.lexists('/var/run/netns/nova-%s'
                                        % server['id']))
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_vif_plugged_timeout_fatal(self):
        port = self.neutron.create_port(
            {'port': {'network_id': self.net}})['port']
        self.neutron._ports[port['id']]['status'] = 'DOWN'
        self.flags(vif_plugging_timeout=2, vif_plugging_is_fatal=True)
        # Nova turns the driver's VirtualInterfaceCreateException into its
        # own fault for this case.
        self.assertFailsCleanly(['Failed to allocate the network(s)'],
                                networks=[{'port': port['id']}])
