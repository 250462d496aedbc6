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

"""Docker servers on two compute hosts: what a user of a multi-node cloud
sees.

One server is placed on a host of [nova_docker] availability_zone, the
other on a host of [nova_docker] nodes_availability_zone (as admin, with
"zone:host"), so the traffic between them crosses the VXLAN tunnel
between the two hosts' Open vSwitch instances.

- CrossHostTest: HTTP and a 1 MB TCP transfer between the two servers,
  ICMP from one server's network stack to the other, and from the host
  to both.
- SecurityGroupTest: a server whose security group has no TCP ingress
  rule is unreachable over TCP from a server on the other host; a rule
  for one port opens exactly that port; deleting the rule closes it again
  on the running server. With firewall_driver = noop this test fails.
"""

import re
import subprocess

from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib import decorators

from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin import workloads

CONF = config.CONF

BIG_BYTES = 1024 * 1024
# The web server also serves a file of BIG_BYTES random bytes, and the same
# page on a second port (for "only the port of the rule opens").
BIG_WEB_INIT = (
    'mkdir -p /tmp/www && echo "ND-HELLO $ND_TAG" >/tmp/www/index.html && '
    'head -c %d /dev/urandom >/tmp/www/big && httpd -p %d -h /tmp/www && '
    'httpd -p %d -h /tmp/www' % (BIG_BYTES, workloads.HTTP_PORT,
                                 workloads.HTTP_PORT + 1))
# The client fetches the big file every round and prints how many bytes
# arrived (busybox wget: bounded by timeout(1), see workloads).
BIG_FETCH = ('n=$(timeout 20 wget -q -O- http://$ND_PEER:%d/big | wc -c); '
             'echo "ND-BIG $(date +%%s) $ND_PEER bytes=$n"'
             % workloads.HTTP_PORT)
# One HTTP fetch of each port of the peer per round.
PORTS_PROBE = ('for p in $ND_PORTS; do '
               'r=$(timeout 3 wget -q -O- http://$ND_PEER:$p/ 2>&1 '
               '| head -n 1); '
               'echo "ND-PORT $(date +%s) $ND_PEER $p $r"; done')

_BIG = re.compile(r'^ND-BIG (\d+) (\S+) bytes=(\d+)')
_PORT = re.compile(r'^ND-PORT (\d+) (\S+) (\d+) ?(.*)$')


def big_fetches(console, peer, since):
    out = []
    for line in console.splitlines():
        m = _BIG.match(line.strip())
        if m and m.group(2) == peer and int(m.group(1)) >= since:
            out.append(int(m.group(3)))
    return out


def port_probes(console, peer, since):
    """{port: [answer, ...]} of the probes of *peer* after *since*."""
    out = {}
    for line in console.splitlines():
        m = _PORT.match(line.strip())
        if m and m.group(2) == peer and int(m.group(1)) >= since:
            out.setdefault(int(m.group(3)), []).append(m.group(4).strip())
    return out


class MultiNodeTest(base.NovaDockerScenarioTest):
    """Servers placed on named hosts, as admin (zone:host)."""

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.nova_docker.nodes_availability_zone:
            raise cls.skipException('[nova_docker] nodes_availability_zone '
                                    'is not set: no second compute host')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        # Placing a server on a host is an admin's request; its port and
        # security group are made by the same project.
        admin = cls.os_admin
        cls.servers_client = admin.servers_client
        cls.ports_client = admin.ports_client
        cls.security_groups_client = admin.security_groups_client
        cls.security_group_rules_client = admin.security_group_rules_client
        cls.images_client = admin.image_client_v2
        cls.services_client = admin.services_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        zones = {}
        for svc in cls.services_client.list_services(
                binary='nova-compute')['services']:
            if svc['state'] == 'up' and svc['status'] == 'enabled':
                zones.setdefault(svc['zone'], []).append(svc['host'])
        first = zones.get(CONF.nova_docker.availability_zone)
        other = zones.get(CONF.nova_docker.nodes_availability_zone)
        if not first or not other:
            raise cls.skipException(
                'need an up nova-compute in zone %s and in zone %s; found %s'
                % (CONF.nova_docker.availability_zone,
                   CONF.nova_docker.nodes_availability_zone, zones))
        cls.hosts = (first[0], other[0])
        cls.zones = (CONF.nova_docker.availability_zone,
                     CONF.nova_docker.nodes_availability_zone)

    @classmethod
    def create_server_on(cls, index, image_id, metadata, port, name):
        server = cls.servers_client.create_server(
            name=data_utils.rand_name(name), imageRef=image_id,
            flavorRef=cls.flavor_id, networks=[{'port': port['id']}],
            metadata=metadata,
            availability_zone='%s:%s' % (cls.zones[index],
                                         cls.hosts[index]))['server']
        cls.addClassResourceCleanup(cls.delete_server, server['id'])
        return server

    def assert_on_host(self, server_id, host):
        server = self.servers_client.show_server(server_id)['server']
        self.assertEqual(host, server['OS-EXT-SRV-ATTR:host'])

    def wait_for_boot(self, server_id):
        self.wait_for_console(server_id, lambda c: workloads.boots(c),
                              'ND-BOOT line')


class CrossHostTest(MultiNodeTest):

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.tag = data_utils.rand_name('tag')
        image_id = cls.create_workload_image()
        group = cls.create_security_group()
        web_port = cls.create_port(cls.network['id'], group)
        client_port = cls.create_port(cls.network['id'], group)
        cls.web_ip = cls.ipv4_of(web_port)
        cls.client_ip = cls.ipv4_of(client_port)
        cls.started = base.now()
        cls.web = cls.create_server_on(
            1, image_id, {'ND_SCRIPT': workloads.SCRIPT,
                          'ND_INIT': BIG_WEB_INIT, 'ND_TAG': cls.tag},
            web_port, 'nd-node-web')
        probe = workloads.probe_metadata([cls.web_ip])
        probe.update({'ND_LOOP': probe['ND_LOOP'] + '; eval "$ND_BIG"',
                      'ND_BIG': BIG_FETCH, 'ND_PEER': cls.web_ip})
        cls.client = cls.create_server_on(0, image_id, probe, client_port,
                                          'nd-node-client')
        for server in (cls.web, cls.client):
            cls.wait_for_server(server['id'])

    @decorators.idempotent_id('3b8f0c52-6f1e-4d0a-9a51-0d6f8e2a7c11')
    def test_cross_host_ping_tcp_1mb(self):
        self.assert_on_host(self.client['id'], self.hosts[0])
        self.assert_on_host(self.web['id'], self.hosts[1])
        self.assertNotEqual(self.hosts[0], self.hosts[1])
        body = workloads.hello(self.tag)
        # HTTP from the client on one host to the web server on the other.
        self.wait_for_probe(self.client['id'], self.web_ip, self.started,
                            body)
        # 1 MB over one TCP connection, whole.
        console = self.wait_for_console(
            self.client['id'],
            lambda c: BIG_BYTES in big_fetches(c, self.web_ip, self.started),
            'a fetch of all %d bytes of the big file' % BIG_BYTES)
        self.assertIn(BIG_BYTES,
                      big_fetches(console, self.web_ip, self.started))
        # The host reaches both, one of them through the tunnel.
        self.assert_host_ping(self.client_ip)
        self.assert_host_ping(self.web_ip)
        self.assert_host_http(self.web_ip, body)
        if CONF.nova_docker.host_checks:
            # ICMP between the servers: the busybox ping inside lacks
            # NET_RAW, so the host's ping runs in the client's network
            # namespace (the driver's link to it is on the host).
            out = subprocess.run(
                ['nsenter', '--net=/var/run/netns/nova-%s' % self.client['id'],
                 'ping', '-c', '2', '-W', '2', self.web_ip],
                capture_output=True, text=True)
            self.assertEqual(0, out.returncode,
                             'ping from the client to the web server on the '
                             'other host failed:\n%s%s' % (out.stdout,
                                                           out.stderr))


class SecurityGroupTest(MultiNodeTest):

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.tag = data_utils.rand_name('tag')
        cls.body = workloads.hello(cls.tag)
        cls.ports = (workloads.HTTP_PORT, workloads.HTTP_PORT + 1)
        image_id = cls.create_workload_image()
        # The web server's group lets ICMP in, and no TCP.
        cls.closed_group = cls.create_security_group(tcp_ports=())
        open_group = cls.create_security_group()
        web_port = cls.create_port(cls.network['id'], cls.closed_group)
        probe_port = cls.create_port(cls.network['id'], open_group)
        cls.web_ip = cls.ipv4_of(web_port)
        cls.web = cls.create_server_on(
            1, image_id, {'ND_SCRIPT': workloads.SCRIPT,
                          'ND_INIT': BIG_WEB_INIT, 'ND_TAG': cls.tag},
            web_port, 'nd-sg-web')
        cls.probe = cls.create_server_on(
            0, image_id, {'ND_SCRIPT': workloads.SCRIPT,
                          'ND_LOOP': PORTS_PROBE, 'ND_PEER': cls.web_ip,
                          'ND_PORTS': ' '.join(str(p) for p in cls.ports)},
            probe_port, 'nd-sg-probe')
        for server in (cls.web, cls.probe):
            cls.wait_for_server(server['id'])

    def wait_for_ports(self, since, expected):
        """A probe round after *since* where each port answers as expected.

        *expected* maps a port to True (the page comes back) or False
        (nothing does). Rule changes take a few seconds to reach the
        flows; the wait allows for it.
        """
        def found(console):
            probes = port_probes(console, self.web_ip, since)
            return all(probes.get(p) and (probes[p][-1] == self.body) == ok
                       for p, ok in expected.items())
        return self.wait_for_console(
            self.probe['id'], found,
            'a probe round after %d with %s' % (since, expected))

    @decorators.idempotent_id('3b8f0c52-6f1e-4d0a-9a51-0d6f8e2a7c12')
    def test_rule_opens_one_port_and_closes_it(self):
        self.assert_on_host(self.probe['id'], self.hosts[0])
        self.assert_on_host(self.web['id'], self.hosts[1])
        # The web server runs (its workload printed its start after
        # both httpd started), and answers ICMP, which its group allows.
        self.wait_for_boot(self.web['id'])
        self.assert_host_ping(self.web_ip)
        since = base.now() + 1
        # No TCP ingress rule: neither port answers, from the peer on the
        # other host nor from the host.
        console = self.wait_for_ports(since, {p: False for p in self.ports})
        probes = port_probes(console, self.web_ip, since)
        for port in self.ports:
            self.assertNotIn(self.body, probes[port],
                             'port %d answered with no rule' % port)
        self.assert_host_http_fails(self.web_ip)

        rule = self.security_group_rules_client.create_security_group_rule(
            security_group_id=self.closed_group, direction='ingress',
            ethertype='IPv4', protocol='tcp',
            port_range_min=self.ports[0],
            port_range_max=self.ports[0])['security_group_rule']
        opened = base.now()
        # Exactly the rule's port opens.
        self.wait_for_ports(opened, {self.ports[0]: True,
                                     self.ports[1]: False})
        self.assert_host_http(self.web_ip, self.body)

        self.security_group_rules_client.delete_security_group_rule(
            rule['id'])
        closed = base.now()
        # And closes again on the running server.
        self.wait_for_ports(closed, {p: False for p in self.ports})
        self.assert_host_http_fails(self.web_ip)
