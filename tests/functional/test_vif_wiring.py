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

"""VIF wiring on the real host: Docker sandboxes, OVS (netdev), rootwrap.

Sandbox containers are started here with the docker SDK, like the driver
starts them (network none, every capability dropped, a long sleep); Nova
network_info objects describe ports on a network of this test's own; the
ports are plugged with vifs.plug_vifs through the real os-vif, the real
privsep-helper and, for the namespace link, the real nova-rootwrap with
this repository's filter file. Every Docker, OVS and kernel object is named
after a per-test prefix or random port ids and is removed even on failure.
"""

import ipaddress
import json
import os
import random
import subprocess
import sys
import time

import docker
import fixtures
from nova.network import model
from nova import objects
from oslo_config import fixture as config_fixture
from oslo_utils import uuidutils
import testtools

from novadocker.cmd import inspect as inspect_cmd
import novadocker.conf
from novadocker.virt.docker import exception
from novadocker.virt.docker import netns
from novadocker.virt.docker import vifs
from tools.harness import base

CONF = novadocker.conf.CONF
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN_DIR = os.path.dirname(sys.executable)
BRIDGE = 'br-int'
IMAGE = 'nova-docker/busybox:latest'
LABEL_UUID = 'org.openstack.nova.instance-uuid'
LABEL_ROLE = 'org.openstack.nova.role'
LABEL_HOST = 'org.openstack.nova.host'
LABEL_TEST = 'org.openstack.nova-docker.test'
MTU = 1400
HOST = 'ndvif-host'

objects.register_all()


def run(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check,
                          timeout=60)


def ovs_interfaces(column, value):
    """OVS Interface rows whose external_ids[column] == value."""
    out = run('ovs-vsctl', '--timeout=10', '--format=json',
              '--columns=name,external_ids,mtu,ofport', 'find', 'Interface',
              'external_ids:%s=%s' % (column, value)).stdout
    table = json.loads(out)
    rows = []
    for name, ids, mtu, ofport in table['data']:
        rows.append({'name': name, 'external_ids': dict(ids[1]),
                     'mtu': mtu, 'ofport': ofport})
    return rows


def host_links():
    return {link['ifname']: link
            for link in json.loads(run('ip', '-j', 'link', 'show').stdout)}


def in_netns(uuid, *cmd, check=True):
    return run('ip', 'netns', 'exec', netns.link_name(uuid), *cmd,
               check=check)


class Network(object):
    """A network of this test: a random /24 and /64, one gateway each."""

    def __init__(self):
        self.id = uuidutils.generate_uuid()
        self.v4 = ipaddress.ip_network('10.%d.%d.0/24' % (
            random.randint(200, 250), random.randint(0, 255)))
        self.v6 = ipaddress.ip_network('fd00:%x:%x::/64' % (
            random.randint(1, 0xffff), random.randint(1, 0xffff)))
        self.next_host = 10

    def port(self, hybrid=False, route_gateway=None):
        """A nova VIF with the next free address of each family."""
        host = self.next_host
        self.next_host += 1
        port_id = uuidutils.generate_uuid()
        routes = [model.Route(
            cidr='192.0.2.0/24',
            gateway=model.IP(route_gateway or str(self.v4[254]),
                             type='gateway'))]
        subnets = [
            model.Subnet(cidr=str(self.v4),
                         gateway=model.IP(str(self.v4[1]), type='gateway'),
                         ips=[model.FixedIP(address=str(self.v4[host]))],
                         dns=[model.IP(str(self.v4[2]), type='dns')],
                         routes=routes),
            model.Subnet(cidr=str(self.v6),
                         gateway=model.IP(str(self.v6[1]), type='gateway'),
                         ips=[model.FixedIP(address=str(self.v6[host]),
                                            version=6)]),
        ]
        network = model.Network(id=self.id, bridge=BRIDGE,
                                label='ndvif', subnets=subnets,
                                meta={'mtu': MTU})
        mac = 'fa:16:3e:%02x:%02x:%02x' % (
            random.randint(0, 255), random.randint(0, 255), host)
        return model.VIF(
            id=port_id, address=mac, network=network, type='ovs',
            vnic_type='normal', ovs_interfaceid=port_id,
            devname=('tap' + port_id)[:14],
            details={'datapath_type': 'netdev', 'port_filter': True,
                     'ovs_hybrid_plug': hybrid})


class VifWiringBase(testtools.TestCase):
    """Sandboxes, ports and cleanup of one test (no tests here)."""

    def setUp(self):
        super().setUp()
        problems = base.host_problems()
        if problems:
            # A missing daemon is a failure, never a skip.
            self.fail('VIF wiring tests need a prepared host:\n- ' +
                      '\n- '.join(problems))
        self.prefix = 'ndvif-%s' % uuidutils.generate_uuid()[:8]
        self.port_ids = []
        self.uuids = []
        self.docker = docker.from_env(timeout=60)
        self.addCleanup(self.docker.close)
        # Registered first, so it runs last: whatever a failed assertion
        # left behind goes, and only what carries this test's names.
        self.addCleanup(self._remove_everything)
        tmp = self.useFixture(fixtures.TempDir()).path
        rootwrap_conf = base.write_rootwrap_conf(tmp)
        vifs.load()
        conf = self.useFixture(config_fixture.Config(CONF))
        conf.config(group='docker', root_helper='%s %s' % (
            os.path.join(BIN_DIR, 'nova-rootwrap'), rootwrap_conf))
        conf.config(group='os_vif_ovs',
                    ovsdb_connection=vifs.DEFAULT_OVSDB_CONNECTION)
        # The real privsep-helper, run directly since we are root already
        # (production runs it through sudo nova-rootwrap). PYTHONPATH makes
        # it load this tree, the code under test, not the installed copy.
        helper = 'env PYTHONPATH=%s %s' % (
            REPO, os.path.join(BIN_DIR, 'privsep-helper'))
        for section in ('vif_plug_ovs_privileged', 'nova_docker_privileged'):
            conf.config(group=section, helper_command=helper)
        self.network = Network()

    # -- objects of this test ------------------------------------------------

    def sandbox(self, drop_caps=True, role='sandbox', host=HOST,
                network_mode='none'):
        """Start a sandbox like the driver's; return (instance, container).

        *role*, *host* and *network_mode* make look-alikes that are not.
        """
        uuid = uuidutils.generate_uuid()
        self.uuids.append(uuid)
        name = '%s-%d' % (self.prefix, len(self.uuids))
        container = self.docker.containers.run(
            IMAGE, ['sleep', '3600'], name=name,
            hostname=None if network_mode == 'host' else 'ndvif-%d' % len(
                self.uuids), network_mode=network_mode,
            cap_drop=['ALL'] if drop_caps else None, detach=True,
            labels={LABEL_UUID: uuid, LABEL_ROLE: role,
                    LABEL_HOST: host, LABEL_TEST: self.prefix})
        instance = objects.Instance(uuid=uuid, id=random.randint(1, 10 ** 6),
                                    project_id='ndvif', host=HOST)
        return instance, container

    def pid(self, container):
        container.reload()
        self.assertEqual('running', container.status)
        return container.attrs['State']['Pid']

    def port(self, **kwargs):
        vif = self.network.port(**kwargs)
        self.port_ids.append(vif['id'])
        return vif

    def plug(self, instance, container, network_info):
        pid = self.pid(container)
        vifs.plug_vifs(instance, network_info, container.id)
        netns.create_link(instance.uuid, pid)
        return pid

    def allow_bridged(self, bridge):
        """Let frames cross the hybrid bridge despite Docker's firewall.

        dockerd loads br_netfilter and sets the FORWARD policy to DROP, so
        frames bridged by qbr go through iptables and are dropped; in a
        cloud the Neutron agent's iptables_hybrid firewall adds the rules
        for each port. This rule stands in for it, for this bridge only.
        """
        rule = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT']
        run('iptables', '-w', '-I', *rule)
        self.addCleanup(run, 'iptables', '-w', '-D', *rule, check=False)

    def _device_names(self, port_id):
        return [(prefix + port_id)[:14]
                for prefix in ('tap', 'nsp', 'qbr', 'qvb', 'qvo')]

    def _remove_everything(self):
        for c in self.docker.containers.list(
                all=True, filters={'label': '%s=%s' % (LABEL_TEST,
                                                       self.prefix)}):
            c.remove(force=True)
        for port_id in self.port_ids:
            for dev in self._device_names(port_id):
                run('ovs-vsctl', '--timeout=10', '--if-exists', 'del-port',
                    dev, check=False)
                if os.path.exists('/sys/class/net/' + dev):
                    run('ip', 'link', 'del', dev, check=False)
        for uuid in self.uuids:
            link = netns.link_path(uuid)
            if os.path.lexists(link):
                os.unlink(link)

    # -- assertions ----------------------------------------------------------

    def leftovers(self):
        """This test's OVS ports, host devices and namespace links."""
        found = []
        for uuid in self.uuids:
            found += ['OVS interface %s' % row['name']
                      for row in ovs_interfaces('vm-uuid', uuid)]
            if os.path.lexists(netns.link_path(uuid)):
                found.append('link %s' % netns.link_path(uuid))
        ports = run('ovs-vsctl', '--timeout=10', 'list-ports',
                    BRIDGE).stdout.split()
        links = host_links()
        for port_id in self.port_ids:
            for dev in self._device_names(port_id):
                if dev in ports:
                    found.append('port %s on %s' % (dev, BRIDGE))
                if dev in links:
                    found.append('device %s' % dev)
        return found

    def assertOvsPort(self, instance, vif, name=None):
        rows = ovs_interfaces('iface-id', vif['id'])
        self.assertEqual(1, len(rows), rows)
        row = rows[0]
        self.assertEqual(name or vif['devname'], row['name'])
        self.assertEqual({'iface-id': vif['id'],
                          'attached-mac': vif['address'],
                          'vm-uuid': instance.uuid,
                          'iface-status': 'active',
                          'nova-docker-host': HOST}, row['external_ids'])
        bridge = run('ovs-vsctl', '--timeout=10', 'port-to-br', row['name'])
        self.assertEqual(BRIDGE, bridge.stdout.strip())
        self.assertGreater(row['ofport'], 0)
        self.assertEqual(MTU, row['mtu'])

    def assertInterface(self, instance, vif, name):
        """The device *name* inside the sandbox is configured like *vif*."""
        links = {link['ifname']: link for link in json.loads(
            in_netns(instance.uuid, 'ip', '-j', 'addr', 'show').stdout)}
        self.assertIn('UP', links['lo']['flags'])
        dev = links[name]
        self.assertEqual(vif['address'], dev['address'])
        self.assertEqual(MTU, dev['mtu'])
        self.assertIn('UP', dev['flags'])
        addresses = {'%s/%s' % (a['local'], a['prefixlen'])
                     for a in dev['addr_info'] if a['scope'] == 'global'}
        expected = set()
        for subnet in vif['network']['subnets']:
            prefix = ipaddress.ip_network(subnet['cidr']).prefixlen
            expected |= {'%s/%d' % (ip['address'], prefix)
                         for ip in subnet['ips']}
        self.assertEqual(expected, addresses)
        host = vif['devname']
        with open('/sys/class/net/%s/mtu' % host) as f:
            self.assertEqual(MTU, int(f.read()))

    def routes(self, instance, family='-4'):
        return json.loads(in_netns(instance.uuid, 'ip', '-j', family,
                                   'route', 'show').stdout)

    def assertPing(self, instance, address):
        result = in_netns(instance.uuid, 'ping', '-c', '2', '-W', '2',
                          address, check=False)
        self.assertEqual(0, result.returncode,
                         'ping %s from %s failed:\n%s%s' % (
                             address, instance.uuid, result.stdout,
                             result.stderr))

    def serve_http(self, box, port=8080):
        """Start busybox httpd inside *box*, serving one marker page."""
        code, out = box.exec_run(
            ['sh', '-c', 'mkdir -p /tmp/www && echo nd-tcp-%s > '
             '/tmp/www/index.html && (httpd -p %d -h /tmp/www || true)'
             % (box.id[:12], port)])
        self.assertEqual(0, code, out)
        return 'nd-tcp-%s' % box.id[:12]

    def assertTcp(self, server_inst, server_box, client_inst, client_box,
                  address, port=8080):
        """An HTTP fetch over TCP from the client sandbox to the server."""
        marker = self.serve_http(server_box, port)
        out = b''
        for _ in range(10):
            # busybox-static's wget crashes; nc speaks HTTP well enough.
            code, out = client_box.exec_run(
                ['sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | '
                 'nc -w 5 %s %d' % (address, port)])
            if code == 0 and marker.encode() in out:
                return
            time.sleep(0.5)
        self.fail('TCP (HTTP) from %s to %s port %d failed: %s'
                  % (client_inst.uuid, address, port, out))

    def assertTxChecksumOff(self, instance, name, host_dev):
        """TX checksum offload is off on both ends (read by ioctl)."""
        self.assertFalse(inspect_cmd.tx_checksumming(None, host_dev))
        pid = int(os.readlink(netns.link_path(instance.uuid)).split('/')[2])
        self.assertFalse(inspect_cmd.tx_checksumming(pid, name))

    def fixed_ip(self, vif, version=4):
        for subnet in vif['network']['subnets']:
            for ip in subnet['ips']:
                if ip['version'] == version:
                    return ip['address']


class VifWiringTestCase(VifWiringBase):

    def test_two_sandboxes_wired_on_br_int_ping_each_other(self):
        inst1, box1 = self.sandbox()
        inst2, box2 = self.sandbox()
        vif1, vif2 = self.port(), self.port()
        pid1 = self.plug(inst1, box1, model.NetworkInfo([vif1]))
        self.plug(inst2, box2, model.NetworkInfo([vif2]))

        self.assertOvsPort(inst1, vif1)
        self.assertOvsPort(inst2, vif2)
        self.assertEqual('/proc/%d/ns/net' % pid1,
                         os.readlink(netns.link_path(inst1.uuid)))
        self.assertInterface(inst1, vif1, 'eth0')
        self.assertInterface(inst2, vif2, 'eth0')
        v4 = {r['dst']: r.get('gateway') for r in self.routes(inst1)}
        self.assertEqual(str(self.network.v4[1]), v4['default'])
        self.assertEqual(str(self.network.v4[254]), v4['192.0.2.0/24'])
        v6 = {r['dst']: r.get('gateway') for r in self.routes(inst1, '-6')}
        self.assertEqual(str(self.network.v6[1]), v6['default'])
        # The sandbox end was made inside the namespace; the host end is
        # the OVS port.
        self.assertNotIn('nsp' + vif1['id'][:11], host_links())

        self.assertPing(inst1, self.fixed_ip(vif2))
        self.assertPing(inst2, self.fixed_ip(vif1))
        self.assertPing(inst1, self.fixed_ip(vif2, version=6))
        self.assertTcp(inst1, box1, inst2, box2, self.fixed_ip(vif1))
        self.assertTcp(inst2, box2, inst1, box1, self.fixed_ip(vif2))
        self.assertTxChecksumOff(inst1, 'eth0', vif1['devname'])
        self.assertEqual([str(self.network.v4[2])],
                         vifs.dns_servers(model.NetworkInfo([vif1])))

    def test_plug_again_after_the_sandbox_restarted(self):
        inst1, box1 = self.sandbox()
        inst2, box2 = self.sandbox()
        vif1, vif2 = self.port(), self.port()
        old_pid = self.plug(inst1, box1, model.NetworkInfo([vif1]))
        self.plug(inst2, box2, model.NetworkInfo([vif2]))

        box1.restart(timeout=1)
        new_pid = self.pid(box1)
        self.assertNotEqual(old_pid, new_pid)
        # The old namespace died with the old process, and its veth too
        # (the kernel cleans namespaces up asynchronously).
        for _ in range(50):
            if vif1['devname'] not in host_links():
                break
            time.sleep(0.1)
        self.assertNotIn(vif1['devname'], host_links())

        self.plug(inst1, box1, model.NetworkInfo([vif1]))
        self.assertEqual('/proc/%d/ns/net' % new_pid,
                         os.readlink(netns.link_path(inst1.uuid)))
        self.assertOvsPort(inst1, vif1)
        self.assertInterface(inst1, vif1, 'eth0')
        self.assertPing(inst1, self.fixed_ip(vif2))
        self.assertPing(inst2, self.fixed_ip(vif1))

        # Plugging twice into the same running sandbox is harmless too.
        self.plug(inst1, box1, model.NetworkInfo([vif1]))
        self.assertOvsPort(inst1, vif1)
        self.assertPing(inst2, self.fixed_ip(vif1))

    def test_hybrid_plug(self):
        inst1, box1 = self.sandbox()
        inst2, box2 = self.sandbox()
        hybrid, plain = self.port(hybrid=True), self.port()
        self.plug(inst1, box1, model.NetworkInfo([hybrid]))
        self.plug(inst2, box2, model.NetworkInfo([plain]))

        qbr, qvb, qvo = self._device_names(hybrid['id'])[2:]
        self.allow_bridged(qbr)
        self.assertOvsPort(inst1, hybrid, name=qvo)
        links = host_links()
        self.assertEqual(qbr, links[hybrid['devname']].get('master'))
        self.assertEqual(qbr, links[qvb].get('master'))
        self.assertNotIn(hybrid['devname'], run(
            'ovs-vsctl', 'list-ports', BRIDGE).stdout.split())
        self.assertInterface(inst1, hybrid, 'eth0')
        self.assertPing(inst1, self.fixed_ip(plain))
        self.assertPing(inst2, self.fixed_ip(hybrid))

        self.assertTcp(inst1, box1, inst2, box2, self.fixed_ip(hybrid))
        vifs.unplug_vifs(inst1, model.NetworkInfo([hybrid]), box1.id)
        links = host_links()
        for dev in self._device_names(hybrid['id']):
            self.assertNotIn(dev, links)
        self.assertEqual([], ovs_interfaces('iface-id', hybrid['id']))

    def test_attach_and_detach_a_second_interface(self):
        inst1, box1 = self.sandbox()
        inst2, box2 = self.sandbox()
        first, second, peer = self.port(), self.port(), self.port()
        self.plug(inst1, box1, model.NetworkInfo([first]))
        self.plug(inst2, box2, model.NetworkInfo([peer]))

        vifs.plug_vif(inst1, second, box1.id)
        self.assertOvsPort(inst1, second)
        self.assertInterface(inst1, second, 'eth1')
        self.assertInterface(inst1, first, 'eth0')
        # The first interface keeps the default route.
        defaults = [r for r in self.routes(inst1) if r['dst'] == 'default']
        self.assertEqual([('eth0', str(self.network.v4[1]))],
                         [(r['dev'], r['gateway']) for r in defaults])
        self.assertPing(inst2, self.fixed_ip(second))

        vifs.unplug_vif(inst1, second, box1.id)
        self.assertEqual([], ovs_interfaces('iface-id', second['id']))
        names = [link['ifname'] for link in json.loads(
            in_netns(inst1.uuid, 'ip', '-j', 'link', 'show').stdout)]
        self.assertEqual(['lo', 'eth0'], names)
        self.assertNotIn(second['devname'], host_links())
        self.assertOvsPort(inst1, first)
        self.assertPing(inst2, self.fixed_ip(first))

    def test_unplug_and_remove_link_leave_nothing(self):
        instance, box = self.sandbox()
        network_info = model.NetworkInfo([self.port(),
                                          self.port(hybrid=True)])
        self.plug(instance, box, network_info)
        self.assertEqual(2, len(ovs_interfaces('vm-uuid', instance.uuid)))

        vifs.unplug_vifs(instance, network_info, box.id)
        netns.remove_link(instance.uuid)
        self.assertEqual([], self.leftovers())
        # Both are idempotent: a second call finds nothing and says nothing.
        vifs.unplug_vifs(instance, network_info, box.id)
        netns.remove_link(instance.uuid)
        self.assertEqual([], self.leftovers())

    def test_failure_on_the_second_port_undoes_the_first(self):
        instance, box = self.sandbox()
        good = self.port()
        # A host route via a gateway outside every subnet of the port
        # cannot be added: the kernel answers "network unreachable".
        bad = self.port(route_gateway='198.51.100.1')
        err = self.assertRaises(exception.VifPlugFailed, vifs.plug_vifs,
                                instance, model.NetworkInfo([good, bad]),
                                box.id)
        self.assertIn(bad['id'], str(err))
        self.assertIn('wiring %s' % bad['devname'], str(err))
        self.assertEqual([], self.leftovers())
        names = [link['ifname'] for link in json.loads(run(
            'nsenter', '-t', str(self.pid(box)), '-n', 'ip', '-j', 'link',
            'show').stdout)]
        self.assertEqual(['lo'], names)

    def test_sandbox_keeping_capabilities_is_refused_cleanly(self):
        instance, box = self.sandbox(drop_caps=False)
        vif = self.port()
        err = self.assertRaises(exception.VifPlugFailed, vifs.plug_vifs,
                                instance, model.NetworkInfo([vif]),
                                box.id)
        self.assertIn('cap_drop ALL', str(err))
        self.assertEqual([], self.leftovers())

    def test_missing_bridge_is_refused_before_anything_is_created(self):
        instance, box = self.sandbox()
        vif = self.port()
        bridge = 'br-nd%s' % self.prefix[-6:]
        vif['network']['bridge'] = bridge
        err = self.assertRaises(exception.OvsBridgeMissing, vifs.plug_vifs,
                                instance, model.NetworkInfo([vif]),
                                box.id)
        self.assertIn(bridge, str(err))
        self.assertNotEqual(0, run('ovs-vsctl', 'br-exists', bridge,
                                   check=False).returncode)
        self.assertEqual([], self.leftovers())

    def test_ovs_down_is_refused_before_anything_is_created(self):
        instance, box = self.sandbox()
        vif = self.port()
        # A socket nobody listens on stands for a stopped ovsdb-server,
        # without stopping the OVS that other engineers' tests use.
        dead = 'unix:/tmp/%s-no-ovsdb.sock' % self.prefix
        self.useFixture(config_fixture.Config(CONF)).config(
            group='os_vif_ovs', ovsdb_connection=dead)
        err = self.assertRaises(exception.OvsUnreachable, vifs.plug_vifs,
                                instance, model.NetworkInfo([vif]),
                                box.id)
        self.assertIn(dead, str(err))
        self.assertIn('Start it', str(err))
        self.assertEqual([], self.leftovers())

    def test_unplug_while_ovs_is_unreachable_does_not_hang(self):
        instance, box = self.sandbox()
        vif = self.port()
        network_info = model.NetworkInfo([vif])
        self.plug(instance, box, network_info)
        conf = self.useFixture(config_fixture.Config(CONF))
        conf.config(group='os_vif_ovs',
                    ovsdb_connection='unix:/tmp/%s-no-ovsdb.sock'
                    % self.prefix)
        # The driver's native connection is open to the real OVS: it is
        # not used for the OVSDB now configured, which does not answer.
        start = time.monotonic()
        vifs.unplug_vifs(instance, network_info, box.id)
        self.assertLess(time.monotonic() - start, 30)
        # The devices go; the OVS row waits for OVS to come back.
        self.assertNotIn(vif['devname'], host_links())
        self.assertEqual(1, len(ovs_interfaces('iface-id', vif['id'])))
        conf.config(group='os_vif_ovs',
                    ovsdb_connection=vifs.DEFAULT_OVSDB_CONNECTION)
        vifs.unplug_vifs(instance, network_info)
        netns.remove_link(instance.uuid)
        self.assertEqual([], self.leftovers())

    def test_server_without_ports_still_gets_lo_up(self):
        instance, box = self.sandbox()
        self.plug(instance, box, model.NetworkInfo([]))
        links = json.loads(in_netns(instance.uuid, 'ip', '-j', 'link',
                                    'show').stdout)
        self.assertEqual(['lo'], [link['ifname'] for link in links])
        self.assertIn('UP', links[0]['flags'])
        result = in_netns(instance.uuid, 'ping', '-c', '1', '-W', '2',
                          '127.0.0.1', check=False)
        self.assertEqual(0, result.returncode, result.stdout)

    def test_ten_sandboxes_plugged_and_unplugged_leave_nothing(self):
        plugged = []
        for _ in range(10):
            instance, box = self.sandbox()
            network_info = model.NetworkInfo([self.port()])
            self.plug(instance, box, network_info)
            plugged.append((instance, box, network_info))
        start = time.monotonic()
        for instance, box, network_info in plugged:
            vifs.unplug_vifs(instance, network_info, box.id)
            netns.remove_link(instance.uuid)
            box.remove(force=True)
        self.assertLess(time.monotonic() - start, 120)
        self.assertEqual([], self.leftovers())

    def inspect(self, *args):
        return subprocess.run(
            [sys.executable, '-m', 'novadocker.cmd.inspect',
             '--config-file', os.devnull] + list(args),
            capture_output=True, text=True, cwd=REPO, timeout=120)

    def test_inspect_prints_the_wiring(self):
        instance, box = self.sandbox()
        workload = self.docker.containers.run(
            IMAGE, ['sleep', '3600'], name=self.prefix + '-workload',
            network_mode='container:%s' % box.id, cap_drop=['ALL'],
            detach=True, labels={LABEL_UUID: instance.uuid,
                                 LABEL_ROLE: 'workload',
                                 LABEL_TEST: self.prefix})
        plain, hybrid = self.port(), self.port(hybrid=True)
        pid = self.plug(instance, box, model.NetworkInfo([plain, hybrid]))

        result = self.inspect(instance.uuid)
        self.assertEqual(0, result.returncode, result.stderr)
        out = result.stdout
        self.assertIn('sandbox   %s  id %s  running  pid %d' % (
            box.name, box.id[:12], pid), out)
        self.assertIn('workload  %s  id %s  running' % (
            workload.name, workload.id[:12]), out)
        self.assertIn('Namespace link: %s -> /proc/%d/ns/net (current)' % (
            netns.link_path(instance.uuid), pid), out)
        self.assertIn('ip netns exec nova-%s' % instance.uuid, out)
        eth0 = [line for line in out.splitlines()
                if line.strip().startswith('eth0 ')][0]
        for part in (plain['address'], 'mtu %d' % MTU, self.fixed_ip(plain),
                     'host end %s (mtu %d, tx-checksumming off)' % (
                         plain['devname'], MTU),
                     'tx-checksumming off  host end'):
            self.assertIn(part, eth0)
        eth1 = [line for line in out.splitlines()
                if line.strip().startswith('eth1 ')][0]
        self.assertIn('in Linux bridge %s' % ('qbr' + hybrid['id'])[:14],
                      eth1)
        for vif, port in ((plain, plain['devname']),
                          (hybrid, ('qvo' + hybrid['id'])[:14])):
            line = [line for line in out.splitlines()
                    if 'port %s ' % port in line][0]
            self.assertIn('bridge %s' % BRIDGE, line)
            self.assertIn('iface-id=%s' % vif['id'], line)
            self.assertIn('attached-mac=%s' % vif['address'], line)
            self.assertIn('vm-uuid=%s' % instance.uuid, line)
            self.assertRegex(line, r'ofport [1-9][0-9]*')

    def test_inspect_of_an_unknown_server_fails_clearly(self):
        unknown = uuidutils.generate_uuid()
        result = self.inspect(unknown)
        self.assertEqual(1, result.returncode)
        self.assertIn('no container of instance %s on this host' % unknown,
                      result.stderr)
        result = self.inspect('not-a-uuid')
        self.assertEqual(1, result.returncode)
        self.assertIn('is not an instance uuid', result.stderr)
