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

"""Docker servers behind a Neutron router: what users of the cloud see.

These need the cloud of tools/cloud.sh (or one like it): an external
network ([network] public_network_id) whose outside is the host running
tempest, a router between it and [nova_docker] network_name, the DHCP
agent and the metadata service.

- FloatingIpTest: a server on the other compute host answers HTTP on its
  floating IP from the host; it reaches a TCP listener on the host's
  external address through the router, seen there from its floating IP;
  a server without one is seen from the router's address (SNAT).
- MetadataTest: a server reads its user_data and meta_data.json from
  169.254.169.254, and resolves a name through the name server it was
  given (its subnet's DHCP port).
- HeatSeedTest: a template in the shape of the seeds (network, subnet,
  router, security group with ICMP, TCP and UDP ingress rules, a port in
  it, a server with user_data, a floating IP) reaches CREATE_COMPLETE; the
  port its group allows answers on the floating IP, another one does not,
  and the server reads its user_data through its own router.
"""

import base64
import re
import socket
import threading

from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from nova_docker_tempest_plugin.services import orchestration_client
from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin.tests.scenario import test_multinode
from nova_docker_tempest_plugin import workloads

CONF = config.CONF

METADATA = 'http://169.254.169.254/openstack/latest'
# Every round: connect to the host's listener and send the tag.
CALL_HOST = ('timeout 3 sh -c "echo $ND_TAG | nc $ND_HOST $ND_HOST_PORT" '
             '>/dev/null 2>&1; echo "ND-CALLED $(date +%s)"')
# Every round: the user_data and the uuid of meta_data.json, as read from
# the metadata service.
# ($ND_MD is METADATA: a metadata value holds 255 characters at most.)
READ_METADATA = (
    'u=$(timeout 5 wget -q -O- $ND_MD/user_data 2>&1 | head -n 1); '
    'm=$(timeout 5 wget -q -O- $ND_MD/meta_data.json 2>&1 '
    '| grep -o "\\"uuid\\": \\"[^\\"]*\\"" | cut -d\\" -f4); '
    'echo "ND-META $(date +%s) ud=$u uuid=$m"')
# The name server of /etc/resolv.conf and what it answers for the DHCP
# agent's name of the server's own address.
RESOLVE = (
    'n=$(sed -n "s/^nameserver //p" /etc/resolv.conf | head -n 1); '
    'a=$(timeout 5 nslookup -type=a host-$(echo $ND_IP | tr . -) $n 2>&1 '
    '| sed -n "s/^Address: *//p" | tail -n 1); '
    'echo "ND-DNS $(date +%s) ns=$n answer=$a"')

_META = re.compile(r'^ND-META (\d+) ud=(\S*) uuid=(\S*)$')
_DNS = re.compile(r'^ND-DNS (\d+) ns=(\S*) answer=(\S*)$')

# The seeds' shape: everything a tenant makes for one reachable server.
SEED_TEMPLATE = """
heat_template_version: 2018-08-31
parameters:
  image: {type: string}
  flavor: {type: string}
  public_net: {type: string}
  cidr: {type: string}
  open_port: {type: number}
  user_data: {type: string}
  script: {type: string}
  init: {type: string}
  loop: {type: string}
  tag: {type: string}
resources:
  net:
    type: OS::Neutron::Net
  subnet:
    type: OS::Neutron::Subnet
    properties:
      network: {get_resource: net}
      cidr: {get_param: cidr}
  router:
    type: OS::Neutron::Router
    properties:
      external_gateway_info: {network: {get_param: public_net}}
  router_interface:
    type: OS::Neutron::RouterInterface
    properties:
      router: {get_resource: router}
      subnet: {get_resource: subnet}
  group:
    type: OS::Neutron::SecurityGroup
    properties:
      rules:
        - {direction: ingress, protocol: icmp}
        - direction: ingress
          protocol: tcp
          port_range_min: {get_param: open_port}
          port_range_max: {get_param: open_port}
        - {direction: ingress, protocol: udp, port_range_min: 5353,
           port_range_max: 5353}
  port:
    type: OS::Neutron::Port
    properties:
      network: {get_resource: net}
      fixed_ips: [{subnet: {get_resource: subnet}}]
      security_groups: [{get_resource: group}]
  server:
    type: OS::Nova::Server
    depends_on: router_interface
    properties:
      image: {get_param: image}
      flavor: {get_param: flavor}
      networks: [{port: {get_resource: port}}]
      user_data_format: RAW
      user_data: {get_param: user_data}
      metadata:
        ND_SCRIPT: {get_param: script}
        ND_INIT: {get_param: init}
        ND_LOOP: {get_param: loop}
        ND_TAG: {get_param: tag}
        ND_MD: %s
  floating_ip:
    type: OS::Neutron::FloatingIP
    depends_on: router_interface
    properties:
      floating_network: {get_param: public_net}
      port_id: {get_resource: port}
outputs:
  server_id: {value: {get_resource: server}}
  floating_ip: {value: {get_attr: [floating_ip, floating_ip_address]}}
""" % METADATA


def metadata_reads(console, since):
    """(user_data, uuid) of every metadata read after *since*."""
    return [(m.group(2), m.group(3))
            for m in map(_META.match, workloads._lines(console))
            if m and int(m.group(1)) > since]


def dns_answers(console):
    """(name server, answer) of every lookup the server printed."""
    return [(m.group(2), m.group(3))
            for m in map(_DNS.match, workloads._lines(console)) if m]


class HostListener(object):
    """A TCP listener on one of the host's addresses, in a thread.

    Records (peer address, first line) of every connection.
    """

    def __init__(self, address):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen(8)
        self.sock.settimeout(1)
        self.port = self.sock.getsockname()[1]
        self.calls = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done.is_set():
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(3)
                try:
                    line = conn.recv(200).decode(errors='replace').strip()
                except OSError:
                    line = ''
            self.calls.append((peer[0], line))

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


class RoutedNetworkTest(test_multinode.MultiNodeTest):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.network.public_network_id:
            raise cls.skipException('no external network: '
                                    '[network] public_network_id')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        admin = cls.os_admin
        cls.floating_ips_client = admin.floating_ips_client
        cls.admin_subnets_client = admin.subnets_client
        cls.routers_client = admin.routers_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        public = CONF.network.public_network_id
        subnets = cls.admin_subnets_client.list_subnets(
            network_id=public)['subnets']
        # The external subnet's gateway is the host (the cloud's outside).
        cls.host_address = subnets[0]['gateway_ip']

    @classmethod
    def create_floating_ip(cls, port):
        fip = cls.floating_ips_client.create_floatingip(
            floating_network_id=CONF.network.public_network_id,
            port_id=port['id'])['floatingip']
        cls.addClassResourceCleanup(
            test_utils.call_and_ignore_notfound_exc,
            cls.floating_ips_client.delete_floatingip, fip['id'])
        return fip['floating_ip_address']

    def router_addresses(self):
        """The external addresses of the routers on the tested network."""
        found = set()
        ports = self.admin_ports_client.list_ports(
            network_id=CONF.network.public_network_id,
            device_owner='network:router_gateway')['ports']
        for port in ports:
            found.update(ip['ip_address'] for ip in port['fixed_ips'])
        return found


class FloatingIpTest(RoutedNetworkTest):

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.listener = HostListener(cls.host_address)
        cls.addClassResourceCleanup(cls.listener.close)
        cls.tag = data_utils.rand_name('tag')
        image_id = cls.create_workload_image()
        group = cls.create_security_group()
        far_port = cls.create_port(cls.network['id'], group)
        near_port = cls.create_port(cls.network['id'], group)
        cls.fip = cls.create_floating_ip(far_port)
        call = {'ND_SCRIPT': workloads.SCRIPT, 'ND_LOOP': CALL_HOST,
                'ND_HOST': cls.host_address,
                'ND_HOST_PORT': str(cls.listener.port)}
        # The far server (other host, through the tunnel) serves HTTP and
        # calls the host; the near one only calls.
        cls.far = cls.create_server_on(
            1, image_id, dict(call, ND_INIT=workloads.WEB_INIT,
                              ND_TAG=cls.tag + '-far'),
            far_port, 'nd-fip-far')
        cls.near = cls.create_server_on(
            0, image_id, dict(call, ND_TAG=cls.tag + '-near'),
            near_port, 'nd-fip-near')
        for server in (cls.far, cls.near):
            cls.wait_for_server(server['id'])

    def wait_for_call(self, tag):
        """The peer address of the host listener's first call with *tag*."""
        def called():
            return [peer for peer, line in self.listener.calls
                    if line == tag]
        self.wait_for_console(
            self.far['id'] if tag.endswith('-far') else self.near['id'],
            lambda c: called(), 'a call of the host at %s:%d with %s' % (
                self.host_address, self.listener.port, tag))
        return called()[0]

    @decorators.idempotent_id('6e0f5a41-8c2d-4b7e-9f13-2a5d7c9e4b01')
    def test_floating_ip_and_snat(self):
        self.assert_on_host(self.far['id'], self.hosts[1])
        self.assert_on_host(self.near['id'], self.hosts[0])
        # In: HTTP from the host to the far server's floating IP.
        self.assert_host_http(self.fip, workloads.hello(self.tag + '-far'))
        # Out: the server with a floating IP is seen from it; the one
        # without, from its router's external address (SNAT).
        self.assertEqual(self.fip, self.wait_for_call(self.tag + '-far'))
        self.assertIn(self.wait_for_call(self.tag + '-near'),
                      self.router_addresses())


class MetadataTest(RoutedNetworkTest):

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.user_data = data_utils.rand_name('nd-user-data')
        image_id = cls.create_workload_image()
        port = cls.create_port(cls.network['id'])
        cls.address = cls.ipv4_of(port)
        cls.since = base.now()
        server = cls.servers_client.create_server(
            name=data_utils.rand_name('nd-metadata'), imageRef=image_id,
            flavorRef=cls.flavor_id, networks=[{'port': port['id']}],
            user_data=base64.b64encode(cls.user_data.encode()).decode(),
            metadata={'ND_SCRIPT': workloads.SCRIPT,
                      'ND_LOOP': 'eval "$ND_META"; eval "$ND_DNS"',
                      'ND_META': READ_METADATA, 'ND_DNS': RESOLVE,
                      'ND_MD': METADATA,
                      'ND_IP': cls.address},
            availability_zone='%s:%s' % (cls.zones[1], cls.hosts[1]))
        cls.server = server['server']
        cls.addClassResourceCleanup(cls.delete_server, cls.server['id'])
        cls.wait_for_server(cls.server['id'])

    @decorators.idempotent_id('6e0f5a41-8c2d-4b7e-9f13-2a5d7c9e4b02')
    def test_user_data_meta_data_and_dns(self):
        expected = (self.user_data, self.server['id'])
        console = self.wait_for_console(
            self.server['id'],
            lambda c: expected in metadata_reads(c, self.since),
            'a metadata read of %s' % (expected,))
        self.assertIn(expected, metadata_reads(console, self.since))
        # The name server is the subnet's DHCP port, and it answers.
        subnet_id = self.admin_ports_client.list_ports(
            device_id=self.server['id'])['ports'][0]['fixed_ips'][0][
                'subnet_id']
        dns = self.admin_subnets_client.show_subnet(subnet_id)['subnet'][
            'dns_nameservers']
        self.assertTrue(dns, 'the subnet has no name server')
        console = self.wait_for_console(
            self.server['id'],
            lambda c: (dns[0], self.address) in dns_answers(c),
            'a lookup through %s answering %s' % (dns[0], self.address))


class HeatSeedTest(RoutedNetworkTest):

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        # The stack is the project's own, and so is the image it boots.
        cls.images_client = cls.os_primary.image_client_v2
        cls.heat = orchestration_client.OrchestrationClient.for_credentials(
            cls.os_primary, CONF)

    def _delete_stack(self, name, stack_id):
        try:
            self.heat.delete_stack(name, stack_id)
        except lib_exc.NotFound:
            return
        self.heat.wait_for_stack(name, stack_id, 'DELETE_COMPLETE',
                                 CONF.nova_docker.stack_timeout)

    @decorators.idempotent_id('6e0f5a41-8c2d-4b7e-9f13-2a5d7c9e4b03')
    def test_seed_template_rules_hold(self):
        tag = data_utils.rand_name('tag')
        user_data = data_utils.rand_name('nd-seed-data')
        open_port, closed_port = workloads.HTTP_PORT, workloads.HTTP_PORT + 1
        name = data_utils.rand_name('nd-seed')
        since = base.now()
        parameters = {
            'image': self.create_workload_image(),
            'flavor': self.flavor_id,
            'public_net': CONF.network.public_network_id,
            'cidr': '10.24.%d.0/24' % (hash(tag) % 250),
            'open_port': open_port, 'user_data': user_data,
            'script': workloads.SCRIPT,
            'init': test_multinode.BIG_WEB_INIT.replace(
                'head -c %d /dev/urandom >/tmp/www/big && '
                % test_multinode.BIG_BYTES, ''),
            'loop': READ_METADATA, 'tag': tag}
        timeout = CONF.nova_docker.stack_timeout
        stack_id = self.heat.create_stack(
            name, SEED_TEMPLATE, parameters,
            timeout_mins=max(1, timeout // 60))['stack']['id']
        self.addCleanup(self._delete_stack, name, stack_id)
        stack = self.heat.wait_for_stack(name, stack_id, 'CREATE_COMPLETE',
                                         timeout)
        outputs = {o['output_key']: o['output_value']
                   for o in stack.get('outputs', [])}
        fip, server_id = outputs['floating_ip'], outputs['server_id']
        body = workloads.hello(tag)
        # The rules hold: ICMP and the open port answer on the floating
        # IP, the other port does not (its web server runs: the server
        # printed its start after starting both).
        self.wait_for_console(server_id, workloads.boots, 'ND-BOOT line')
        self.assert_host_ping(fip)
        self.assert_host_http(fip, body)
        self.assertRaises(OSError, self._get, fip, closed_port)
        # user_data, through the stack's own router.
        self.wait_for_console(
            server_id,
            lambda c: (user_data, server_id) in metadata_reads(c, since),
            'a metadata read of its user_data')

    @staticmethod
    def _get(address, port):
        with socket.create_connection((address, port), timeout=3) as conn:
            conn.sendall(b'GET / HTTP/1.0\r\n\r\n')
            return conn.recv(100)
