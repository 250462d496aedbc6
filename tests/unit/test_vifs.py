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

import os

from nova.network import model
from nova import objects
from nova import test
from os_vif import objects as osv_objects

from novadocker.privsep import netdev
from novadocker.virt.docker import exception
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

    def test_device_names_fit_the_kernel_limit(self):
        self.assertEqual('nspc0ffee00-11', vifs.peer_device_name(make_vif()))
        self.assertLessEqual(len(vifs.peer_device_name(make_vif())), 15)
        self.assertEqual('eth0', vifs.guest_device_name(0))

    def test_dns_servers_in_order_without_repeats(self):
        other = make_vif(port_id='aaaaaaaa-1111-4222-8333-944455556666',
                         dns=('10.99.0.2', '10.20.30.2'))
        self.assertEqual(['10.20.30.2', '8.8.8.8', '10.99.0.2'],
                         vifs.dns_servers(model.NetworkInfo([make_vif(),
                                                             other])))

    def test_no_network_no_dns(self):
        self.assertEqual([], vifs.dns_servers(model.NetworkInfo([])))


class PrivilegedArgumentChecksTestCase(test.NoDBTestCase):
    """The privsep side refuses what nova-docker never asks for."""

    def test_host_devices_must_be_ours(self):
        for dev in ('tapc0ffee00-11', 'nspc0ffee00-11', 'qbrc0ffee00-11',
                    'qvoc0ffee00-11', 'nicc0ffee00-11'):
            netdev._check_host_dev(dev)
        for dev in ('eth0', 'br-int', 'lo', 'docker0', 'tap', '../tap1',
                    'tap1/x', 'tapc0ffee00-1111', 'tap1 x', 3):
            self.assertRaises(ValueError, netdev._check_host_dev, dev)

    def test_sandbox_devices_are_ethn(self):
        netdev._check_guest_dev('eth0')
        netdev._check_guest_dev('eth12')
        for name in ('lo', 'eth', 'eth0x', 'tap1', 'eth-1', None):
            self.assertRaises(ValueError, netdev._check_guest_dev, name)

    def test_pids_that_are_not_sandboxes_are_refused(self):
        for pid in (0, 1, -3, '42', True, None):
            self.assertRaises(ValueError, netdev._open_namespace, pid)

    def test_own_namespace_is_refused(self):
        # This process lives in whatever namespace the tests run in; a
        # sandbox never shares it with the privsep daemon.
        err = self.assertRaises((ValueError, PermissionError),
                                netdev._open_namespace, os.getpid())
        if isinstance(err, ValueError):
            self.assertIn('host network namespace', str(err))
