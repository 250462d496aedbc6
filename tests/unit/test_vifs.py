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

"""How a Neutron VIF maps to the interface inside a sandbox (no root)."""

import ast
import contextlib
import os
import threading

from docker import errors as docker_errors
from docker.models import containers as docker_containers
import fixtures
from nova.network import model
from nova import objects
from nova import test
from os_vif import objects as osv_objects

from novadocker.privsep import netdev
from novadocker.virt.docker import exception
from novadocker.virt.docker import spec
from novadocker.virt.docker import vifs

objects.register_all()
osv_objects.register_all()

PORT = 'c0ffee00-1111-4222-8333-944455556666'
MAC = 'fa:16:3e:12:34:56'


def make_vif(port_id=PORT, vif_type='ovs', vnic_type='normal', hybrid=False,
             mtu=1400, v4=('10.20.30.40',), v6=('fd00:20::40',),
             host_routes=True, dns=('10.20.30.2', '8.8.8.8')):
    subnets = []
    if v4 is not None:
        routes = []
        if host_routes:
            routes.append(model.Route(
                cidr='192.168.50.0/24',
                gateway=model.IP('10.20.30.254', type='gateway')))
        subnets.append(model.Subnet(
            cidr='10.20.30.0/24',
            gateway=model.IP('10.20.30.1', type='gateway'),
            ips=[model.FixedIP(address=a) for a in v4],
            dns=[model.IP(d, type='dns') for d in dns], routes=routes))
    if v6 is not None:
        subnets.append(model.Subnet(
            cidr='fd00:20::/64',
            gateway=model.IP('fd00:20::1', type='gateway'),
            ips=[model.FixedIP(address=a, version=6) for a in v6],
            dns=[model.IP('8.8.8.8', type='dns')]))
    meta = {'mtu': mtu} if mtu else {}
    network = model.Network(id='5e1ec7ed-0000-4000-8000-000000000001',
                            bridge='br-int', label='private',
                            subnets=subnets, meta=meta)
    return model.VIF(id=port_id, address=MAC, network=network,
                     type=vif_type, vnic_type=vnic_type,
                     details={'datapath_type': 'netdev',
                              'port_filter': True,
                              'ovs_hybrid_plug': hybrid},
                     devname=('tap' + port_id)[:14], ovs_interfaceid=port_id)


class InterfaceConfigTestCase(test.NoDBTestCase):

    def test_fixed_ips_routes_mac_mtu_and_name(self):
        config = vifs.interface_config(make_vif(), 0)
        self.assertEqual('eth0', config.name)
        self.assertEqual(MAC, config.mac)
        self.assertEqual(1400, config.mtu)
        self.assertEqual([('10.20.30.40', 24), ('fd00:20::40', 64)],
                         config.addresses)
        self.assertEqual([('0.0.0.0/0', '10.20.30.1'),
                          ('192.168.50.0/24', '10.20.30.254'),
                          ('::/0', 'fd00:20::1')], config.routes)

    def test_index_names_the_device(self):
        self.assertEqual('eth3', vifs.interface_config(make_vif(), 3).name)

    def test_every_fixed_ip_of_a_subnet_is_configured(self):
        config = vifs.interface_config(
            make_vif(v4=('10.20.30.40', '10.20.30.41'), v6=None), 1)
        self.assertEqual([('10.20.30.40', 24), ('10.20.30.41', 24)],
                         config.addresses)

    def test_network_without_mtu_gets_the_default(self):
        config = vifs.interface_config(make_vif(mtu=None), 0,
                                       default_mtu=1450)
        self.assertEqual(1450, config.mtu)

    def test_subnet_without_gateway_has_no_default_route(self):
        vif = make_vif(v6=None, host_routes=False)
        vif['network']['subnets'][0]['gateway'] = None
        self.assertEqual([], vifs.interface_config(vif, 0).routes)

    def test_port_without_fixed_ip_is_refused(self):
        vif = make_vif(v4=(), v6=())
        err = self.assertRaises(exception.PortWithoutFixedIp,
                                vifs.interface_config, vif, 0)
        self.assertIn(PORT, str(err))
        self.assertIn('--fixed-ip', str(err))

    def test_port_without_subnets_is_refused(self):
        self.assertRaises(exception.PortWithoutFixedIp,
                          vifs.interface_config, make_vif(v4=None, v6=None),
                          0)


class UnsupportedVifTestCase(test.NoDBTestCase):

    def _assert_refused(self, vif, shown):
        err = self.assertRaises(exception.UnsupportedVifType,
                                vifs.interface_config, vif, 0)
        message = str(err)
        self.assertIn(PORT, message)
        self.assertIn(shown, message)
        for supported in vifs.SUPPORTED_VIF_TYPES:
            self.assertIn(supported, message)
        self.assertIn('VIFOpenVSwitch', message)
        self.assertIn('VIFBridge', message)

    def test_linux_bridge_type(self):
        self._assert_refused(make_vif(vif_type='bridge'), 'type bridge')

    def test_vhostuser_type(self):
        self._assert_refused(make_vif(vif_type='vhostuser'),
                             'type vhostuser')

    def test_direct_vnic_on_ovs(self):
        self._assert_refused(make_vif(vnic_type='direct'),
                             'ovs (vnic_type direct)')

    def test_conversion_refuses_too(self):
        self.assertRaises(exception.UnsupportedVifType, vifs._to_osvif,
                          make_vif(vif_type='bridge'))


class OsVifConversionTestCase(test.NoDBTestCase):

    def test_plain_ovs_creates_its_port_on_the_netdev_bridge(self):
        obj = vifs._to_osvif(make_vif())
        self.assertIsInstance(obj, osv_objects.vif.VIFOpenVSwitch)
        self.assertEqual('ovs', obj.plugin)
        self.assertEqual(('tap' + PORT)[:14], obj.vif_name)
        self.assertEqual('br-int', obj.network.bridge)
        self.assertTrue(obj.port_profile.create_port)
        self.assertFalse(obj.port_profile.create_tap)
        self.assertEqual('netdev', obj.port_profile.datapath_type)
        self.assertEqual(PORT, obj.port_profile.interface_id)

    def test_hybrid_plug_is_a_vif_bridge(self):
        obj = vifs._to_osvif(make_vif(hybrid=True))
        self.assertIsInstance(obj, osv_objects.vif.VIFBridge)
        self.assertEqual(('qbr' + PORT)[:14], obj.bridge_name)
        self.assertEqual(('tap' + PORT)[:14], obj.vif_name)


class NamingAndDnsTestCase(test.NoDBTestCase):

    def test_host_device_names_derive_from_the_port_id(self):
        names = netdev.host_device_names(PORT)
        self.assertEqual({'tap': 'tapc0ffee00-11', 'qbr': 'qbrc0ffee00-11',
                          'qvb': 'qvbc0ffee00-11', 'qvo': 'qvoc0ffee00-11'},
                         names)
        for name in names.values():
            self.assertLessEqual(len(name), 15)
        self.assertEqual('tapc0ffee00-11', vifs.host_device_name(PORT))
        self.assertEqual('eth0', vifs.guest_device_name(0))

    def test_os_vif_name_is_the_derived_one_whatever_nova_says(self):
        vif = make_vif()
        vif['devname'] = 'nic-from-elsewhere'
        self.assertEqual('tapc0ffee00-11', vifs._to_osvif(vif).vif_name)

    def test_port_ids_that_are_not_uuids_name_nothing(self):
        for port_id in ('../../x', 'C0FFEE00-1111-4222-8333-944455556666',
                        PORT + '\n', PORT[:-1], '', None, 42):
            self.assertRaises(netdev.Refused, netdev.host_device_names,
                              port_id)

    def test_dns_servers_in_order_without_repeats(self):
        other = make_vif(port_id='aaaaaaaa-1111-4222-8333-944455556666',
                         dns=('10.99.0.2', '10.20.30.2'))
        self.assertEqual(['10.20.30.2', '8.8.8.8', '10.99.0.2'],
                         vifs.dns_servers(model.NetworkInfo([make_vif(),
                                                             other])))

    def test_no_network_no_dns(self):
        self.assertEqual([], vifs.dns_servers(model.NetworkInfo([])))


class PrivilegedLocksTestCase(test.NoDBTestCase):
    """The daemon serialises requests per sandbox and per port only."""

    def _blocked(self, held, wanted):
        """Whether taking *wanted* waits while *held* is held."""
        locks = netdev._NamedLocks()
        got = threading.Event()

        def take():
            with locks.hold(*wanted):
                got.set()
        with locks.hold(*held):
            worker = threading.Thread(target=take)
            worker.start()
            blocked = not got.wait(0.5)
        worker.join(5)
        self.assertTrue(got.is_set())
        self.assertEqual({}, locks._locks)
        return blocked

    def test_two_servers_are_wired_at_once(self):
        self.assertFalse(self._blocked(
            [('sandbox', 'a'), ('port', 'p1')],
            [('sandbox', 'b'), ('port', 'p2')]))

    def test_two_ports_of_one_sandbox_take_turns(self):
        self.assertTrue(self._blocked(
            [('sandbox', 'a'), ('port', 'p1')],
            [('sandbox', 'a'), ('port', 'p2')]))

    def test_one_port_takes_turns_whatever_the_sandbox(self):
        self.assertTrue(self._blocked(
            [('sandbox', 'a'), ('port', 'p1')], [('port', 'p1')]))


class _Link(dict):
    """A netlink link message as pyroute2 returns it, for the decisions."""

    def __init__(self, index, name, alias=None):
        super().__init__(index=index)
        self.attrs = {'IFLA_IFNAME': name, 'IFLA_IFALIAS': alias}

    def get_attr(self, name):
        return self.attrs.get(name)


class _Namespace(object):
    def __init__(self, *names):
        self.links = [_Link(i + 1, n) for i, n in enumerate(names)]

    def get_links(self):
        return self.links


class AttachNamingTestCase(test.NoDBTestCase):
    """Which ethN a port gets inside the sandbox (netdev._free_name)."""

    def test_boot_order_name_when_free(self):
        self.assertEqual('eth0', netdev._free_name(_Namespace('lo'), 'eth0'))
        self.assertEqual('eth2', netdev._free_name(
            _Namespace('lo', 'eth0', 'eth1'), 'eth2'))

    def test_attach_takes_the_lowest_free_name(self):
        self.assertEqual('eth1', netdev._free_name(
            _Namespace('lo', 'eth0'), None))

    def test_attach_after_a_middle_detach_reuses_the_hole_not_a_live_name(
            self):
        # eth0, eth1, eth2 attached; eth1 detached: the next is eth1, and
        # eth2 (live) is never reused.
        ns = _Namespace('lo', 'eth0', 'eth2')
        self.assertEqual('eth1', netdev._free_name(ns, None))
        # Asked for eth2 (VIF order says so) while eth2 is live: a free one.
        self.assertEqual('eth1', netdev._free_name(ns, 'eth2'))
        ns = _Namespace('lo', 'eth0', 'eth1', 'eth2')
        self.assertEqual('eth3', netdev._free_name(ns, None))

    def test_a_port_device_is_found_by_its_alias(self):
        ns = _Namespace('lo', 'eth0', 'eth1')
        ns.links[2].attrs['IFLA_IFALIAS'] = PORT
        self.assertEqual('eth1', netdev._guest_of(ns, PORT).get_attr(
            'IFLA_IFNAME'))
        self.assertIsNone(netdev._guest_of(
            ns, 'aaaaaaaa-1111-4222-8333-944455556666'))


class PlugDecisionsTestCase(test.NoDBTestCase):
    """What plug_vifs makes and keeps, with the privileged side faked."""

    def setUp(self):
        super().setUp()
        self.calls = []
        self.ovs = {}
        self.wired = {}
        # Loads os-vif's plugins (no root, no OVS needed for that).
        vifs.load()
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.vifs._check_bridge', lambda b, p: None))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.vifs._ovs_port_states',
            lambda ports, host=None: {
                port_id: self.ovs.get(port_id, 'missing')
                for _osvif, port_id in ports}))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.ovsdb.vsctl',
            lambda *args: self.calls.append(('vsctl',) + args[:2])))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.ovsdb._native', lambda: None))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.vifs.os_vif.plug',
            lambda osvif, info: self.calls.append(('plug', osvif.vif_name))))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.vifs.os_vif.unplug',
            lambda osvif, info: self.calls.append(
                ('unplug', osvif.vif_name))))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.privsep.netdev.wire_port', self._wire_port))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.privsep.netdev.unwire_port',
            lambda sandbox, host, port: self.calls.append(('unwire', port))))
        self.instance = objects.Instance(
            uuid='11111111-2222-4333-8444-555555555555', host='h1', id=7,
            project_id='p', vm_state='active')

    def _wire_port(self, sandbox_id, host, port_id, preferred, *args):
        self.calls.append(('wire', port_id, preferred, host))
        created = port_id not in self.wired
        self.wired[port_id] = preferred or 'eth9'
        return {'name': self.wired[port_id], 'created': created,
                'skipped_routes': []}

    def _plugs(self):
        return [c for c in self.calls if c[0] in ('plug', 'unplug')]

    def test_first_plug_makes_everything(self):
        vifs.plug_vifs(self.instance, model.NetworkInfo([make_vif()]),
                       'f' * 64)
        self.assertEqual([('plug', 'tapc0ffee00-11')], self._plugs())
        self.assertIn(('wire', PORT, 'eth0', 'h1'), self.calls)

    def test_restart_with_everything_present_plugs_nothing(self):
        self.ovs[PORT] = 'ok'
        self.wired[PORT] = 'eth0'
        vifs.plug_vifs(self.instance, model.NetworkInfo([make_vif()]),
                       'f' * 64)
        self.assertEqual([], self._plugs())
        # Only the host mark is (re)written on the existing row.
        self.assertNotIn('del-port', [c[1] for c in self.calls
                                      if c[0] == 'vsctl'])
        self.assertIn(('vsctl', 'set', 'Interface'), self.calls)

    def test_restart_with_a_marked_row_writes_nothing(self):
        self.ovs[PORT] = 'marked'
        self.wired[PORT] = 'eth0'
        vifs.plug_vifs(self.instance, model.NetworkInfo([make_vif()]),
                       'f' * 64)
        self.assertEqual([], self._plugs())
        self.assertEqual([], [c for c in self.calls if c[0] == 'vsctl'])
        self.assertIn(('wire', PORT, 'eth0', 'h1'), self.calls)

    def test_a_marked_row_of_a_new_namespace_is_replugged_and_marked(self):
        self.ovs[PORT] = 'marked'
        vifs.plug_vifs(self.instance, model.NetworkInfo([make_vif()]),
                       'f' * 64)
        self.assertEqual([('plug', 'tapc0ffee00-11')], self._plugs())
        self.assertIn(('vsctl', 'set', 'Interface'), self.calls)

    def test_new_namespace_replaces_the_stale_ovs_row(self):
        self.ovs[PORT] = 'stale'
        vifs.plug_vifs(self.instance, model.NetworkInfo([make_vif()]),
                       'f' * 64)
        self.assertIn(('vsctl', '--if-exists', 'del-port'), self.calls)
        self.assertEqual([('plug', 'tapc0ffee00-11')], self._plugs())

    def test_veth_present_but_ovs_row_missing_fills_the_row(self):
        self.wired[PORT] = 'eth0'
        vifs.plug_vifs(self.instance, model.NetworkInfo([make_vif()]),
                       'f' * 64)
        self.assertEqual([('plug', 'tapc0ffee00-11')], self._plugs())

    def test_failure_on_a_new_port_keeps_the_kept_one(self):
        other = 'aaaaaaaa-1111-4222-8333-944455556666'
        self.ovs[PORT] = 'ok'
        self.wired[PORT] = 'eth0'

        def fail(sandbox_id, host, port_id, *args):
            if port_id == other:
                raise netdev.Refused('boom')
            return self._wire_port(sandbox_id, host, port_id, *args)
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.privsep.netdev.wire_port', fail))
        self.assertRaises(exception.VifPlugFailed, vifs.plug_vifs,
                          self.instance, model.NetworkInfo(
                              [make_vif(), make_vif(port_id=other)]),
                          'f' * 64)
        unwired = [c[1] for c in self.calls if c[0] == 'unwire']
        self.assertEqual([other], unwired)

    def test_attach_asks_for_no_name_and_stopped_attach_wires_nothing(self):
        vifs.plug_vif(self.instance, make_vif(), None)
        self.assertEqual([], self.calls)
        vifs.plug_vif(self.instance, make_vif(), 'f' * 64)
        self.assertIn(('wire', PORT, None, 'h1'), self.calls)


class PrivilegedArgumentChecksTestCase(test.NoDBTestCase):
    """The privsep side refuses what nova-docker never asks for."""

    def test_sandbox_devices_are_ethn(self):
        netdev._check_guest_dev('eth0')
        netdev._check_guest_dev('eth12')
        for name in ('lo', 'eth', 'eth0x', 'tap1', 'eth-1', 'eth0\n', None):
            self.assertRaises(netdev.Refused, netdev._check_guest_dev, name)

    def test_container_ids_must_be_full(self):
        for cid in ('f' * 12, 'F' * 64, 'f' * 63 + '\n', '../' + 'f' * 61,
                    None, 4):
            self.assertRaises(netdev.Refused,
                              netdev._open_sandbox_namespace, cid, 'h')

    def _inspected(self, labels, pid=4242, running=True, cid='a' * 64):
        info = {'Id': cid, 'Config': {'Labels': labels},
                'State': {'Running': running, 'Pid': pid}}
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.privsep.netdev._Engine.inspect_container',
            lambda *args: info))

    def test_non_sandbox_or_other_host_containers_are_refused(self):
        for labels in ({}, {netdev.LABEL_ROLE: 'workload',
                            netdev.LABEL_HOST: 'h'},
                       {netdev.LABEL_ROLE: 'sandbox',
                        netdev.LABEL_HOST: 'other-host'}):
            self._inspected(labels)
            err = self.assertRaises(netdev.Refused, netdev._inspect_sandbox,
                                    'a' * 64, 'h')
            self.assertIn('not a nova-docker sandbox', str(err))

    def test_stopped_sandbox_and_pid_1_are_refused(self):
        labels = {netdev.LABEL_ROLE: 'sandbox', netdev.LABEL_HOST: 'h'}
        for pid, running in ((0, False), (1, True), (0, True)):
            self._inspected(labels, pid=pid, running=running)
            self.assertRaises(netdev.Refused, netdev._inspect_sandbox,
                              'a' * 64, 'h')
        self._inspected(labels)
        self.assertEqual(4242, netdev._inspect_sandbox('a' * 64, 'h'))

    def test_the_privileged_side_imports_no_driver_module(self):
        with open(netdev.__file__) as f:
            tree = ast.parse(f.read())
        imported = [n.module if isinstance(n, ast.ImportFrom) else a.name
                    for n in ast.walk(tree)
                    if isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in n.names]
        self.assertEqual([], [m for m in imported
                              if m and m.startswith('novadocker.virt')])

    def test_a_pid_outside_the_container_is_refused(self):
        # This test process is in no container of that id.
        self.assertFalse(netdev._in_container(os.getpid(), 'a' * 64))

    def test_bad_config_is_refused(self):
        good = ('fa:16:3e:00:00:01', 1500, [['10.0.0.5', 24]],
                [['0.0.0.0/0', '10.0.0.1']])
        netdev._check_config(*good)
        for mac in ('fa:16:3e:00:00', 'zz:16:3e:00:00:01', None):
            self.assertRaises(netdev.Refused, netdev._check_config,
                              mac, *good[1:])
        for mtu in (0, 67, 65536, '1500', True):
            self.assertRaises(netdev.Refused, netdev._check_config,
                              good[0], mtu, *good[2:])


class VanishingEngine(object):
    """A docker SDK client whose listing names a container then loses it.

    The listing is the real SDK's ``containers.list``; only the engine's
    answers are made up: the summaries list two containers, and the second
    is gone by the time it is inspected, as when a delete runs alongside.
    """

    def __init__(self, uuid, host='h1'):
        labels = {spec.LABEL_UUID: uuid, spec.LABEL_HOST: host,
                  'org.openstack.nova.role': 'sandbox'}
        self.summaries = [
            {'Id': 'a' * 64, 'Names': ['/nova-%s-sandbox' % uuid],
             'Labels': labels, 'State': 'running'},
            {'Id': 'b' * 64, 'Names': ['/nova-%s' % uuid],
             'Labels': dict(labels, **{'org.openstack.nova.role':
                                       'workload'}),
             'State': 'exited'}]
        self.inspected = []
        self.api = _ListingApi(self)
        self.containers = docker_containers.ContainerCollection(client=self)

    def fixture(self):
        @contextlib.contextmanager
        def client(what='Docker engine request'):
            yield self
        return fixtures.MonkeyPatch(
            'novadocker.virt.docker.client.docker_client', client)


class _ListingApi(object):
    """The low-level API calls the SDK's collection makes."""

    def __init__(self, engine):
        self.engine = engine

    def containers(self, all=False, filters=None, **kwargs):
        return [dict(s) for s in self.engine.summaries]

    def inspect_container(self, container_id):
        self.engine.inspected.append(container_id)
        if container_id == 'b' * 64:
            raise docker_errors.NotFound('No such container')
        summary = [s for s in self.engine.summaries
                   if s['Id'] == container_id][0]
        return {'Id': container_id, 'Name': summary['Names'][0],
                'Config': {'Labels': summary['Labels']},
                'State': {'Status': summary['State'], 'Pid': 4242}}


class ListingRaceTestCase(test.NoDBTestCase):
    """A container removed while the engine is listed is no error."""

    UUID = 'c0ffee00-1111-4222-8333-944455556666'

    def test_other_host_check_survives_a_vanished_container(self):
        engine = VanishingEngine(self.UUID, host='h2')
        self.useFixture(engine.fixture())
        self.assertTrue(vifs._link_of_other_host(self.UUID, 'h1'))
        engine = VanishingEngine(self.UUID, host='h1')
        self.useFixture(engine.fixture())
        self.assertFalse(vifs._link_of_other_host(self.UUID, 'h1'))
        # One listing, no inspect a container.
        self.assertEqual([], engine.inspected)
