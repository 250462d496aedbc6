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

"""OS::ODL::Cluster through Heat's engine: create, attributes, delete."""

import testtools

from heat_plugins import odl_member_stack
from tests.heat import base


class TestCreate(base.OdlClusterTestCase):

    def test_create_three_members_and_attributes(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        out = self.outputs(stack)
        self.assertEqual(base.MEMBER_IPS, out['member_ips'])
        self.assertEqual('10.0.0.11,10.0.0.12,10.0.0.13',
                         out['odl_ovs_managers'])
        self.assertEqual(['tcp:10.0.0.11:6640', 'tcp:10.0.0.12:6640',
                          'tcp:10.0.0.13:6640'], out['ovs_managers'])
        self.assertEqual(['tcp:10.0.0.11:6653', 'tcp:10.0.0.12:6653',
                          'tcp:10.0.0.13:6653'], out['controllers'])
        self.assertEqual(['http://10.0.0.11:8181/restconf',
                          'http://10.0.0.12:8181/restconf',
                          'http://10.0.0.13:8181/restconf'],
                         out['restconf_urls'])
        self.assertEqual('10.0.0.11', out['leader'])

    def test_members_told_role_address_and_seeds(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        servers = list(self.cloud.nova.servers.servers.values())
        self.assertEqual(3, len(servers))
        groups = list(self.cloud.nova.server_groups.groups.values())
        self.assertEqual(1, len(groups))
        self.assertEqual(['anti-affinity'], groups[0].policies)
        ports = self.cloud.neutron.ports
        by_member = self.cloud.server_metadata()
        for index, ip in enumerate(base.MEMBER_IPS, start=1):
            meta = by_member['member-%d' % index]
            for key, value in meta.items():
                # The driver refuses metadata that is not an env name.
                self.assertRegex(key, r'^[A-Za-z_][A-Za-z0-9_]*$')
                self.assertIsInstance(value, str)
            self.assertEqual({
                'ODL_MEMBER_NAME': 'member-%d' % index,
                'ODL_MEMBER_INDEX': str(index),
                'ODL_MEMBER_IP': ip,
                'ODL_SEED_IPS': '10.0.0.11,10.0.0.12,10.0.0.13',
                'ODL_CLUSTER_SIZE': '3',
                'ODL_AKKA_PORT': '2550',
                'ODL_AKKA_RPC_PORT': '2551',
                'ODL_RESTCONF_PORT': '8181',
                'ODL_OVSDB_PORT': '6640',
                'ODL_OPENFLOW_PORT': '6653',
                'ODL_KARAF_FEATURES': 'odl-netvirt-openstack',
            }, meta)
        for server in servers:
            self.assertEqual('docker', server.availability_zone)
            self.assertEqual({'group': groups[0].id}, server.scheduler_hints)
            self.assertEqual(self.cloud.glance.images.id_of('odl-image'),
                             server.image['id'])
            (nic,) = server.nics
            port = ports[nic['port-id']]
            self.assertEqual(server.id, port['device_id'])
            self.assertEqual(server.metadata['ODL_MEMBER_IP'],
                             port['fixed_ips'][0]['ip_address'])

    def test_neutron_allocated_addresses(self):
        self.cloud.neutron._next_ip = iter([21, 22, 23, 24, 25])
        self.odl.member_ips = ['10.0.0.21', '10.0.0.22', '10.0.0.23']
        self.odl.modes = {ip: 'ready' for ip in self.odl.member_ips}
        self.odl.leader = '10.0.0.22'
        stack = self.create_stack(fixed_ips='')
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        # Neutron chose the addresses; members are numbered in template
        # order whatever the order the ports were made in.
        meta = self.cloud.server_metadata()
        ips = [meta['member-%d' % i]['ODL_MEMBER_IP'] for i in (1, 2, 3)]
        self.assertEqual({'10.0.0.21', '10.0.0.22', '10.0.0.23'}, set(ips))
        out = self.outputs(stack)
        self.assertEqual(ips, out['member_ips'])
        self.assertEqual(','.join(ips), out['odl_ovs_managers'])
        self.assertEqual('10.0.0.22', out['leader'])
        self.assertEqual({','.join(ips)},
                         {m['ODL_SEED_IPS'] for m in meta.values()})

    def test_single_member_has_no_server_group(self):
        self.odl.member_ips = ['10.0.0.11']
        stack = self.create_stack(size=1, fixed_ips='10.0.0.11')
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual({}, self.cloud.nova.server_groups.groups)
        (server,) = self.cloud.nova.servers.servers.values()
        self.assertEqual({}, server.scheduler_hints)
        self.assertEqual('10.0.0.11', self.outputs(stack)['odl_ovs_managers'])


class TestCreateNotReady(base.OdlClusterTestCase):

    def test_member_never_ready(self):
        self.odl.modes['10.0.0.13'] = 'never'
        stack = self.create_stack(timeout=2)
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        reason = stack.status_reason
        self.assertIn('OpenDaylight cluster not ready after 2 s', reason)
        self.assertIn('member-3 10.0.0.13: HTTP 404 from RESTCONF', reason)
        self.assertIn('member-1 10.0.0.11: cluster view lists 10.0.0.13 '
                      'as unreachable', reason)
        # Backoff, not a tight loop: a handful of probes in 2 s.
        probes = self.odl.restconf_times('10.0.0.13')
        self.assertGreater(len(probes), 1)
        self.assertLessEqual(len(probes), 6)

    def test_wrong_credentials(self):
        stack = self.create_stack(timeout=1, password='not-admin')
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        for index, ip in enumerate(base.MEMBER_IPS, start=1):
            self.assertIn('member-%d %s: HTTP 401 from RESTCONF, check '
                          'credentials' % (index, ip), stack.status_reason)
        # The password went to the probes only, never to the members.
        for meta in self.cloud.server_metadata().values():
            self.assertNotIn('not-admin', meta.values())


class TestDelete(base.OdlClusterTestCase):

    def test_delete_removes_every_server_and_port(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        created_servers = list(self.cloud.nova.servers.created)
        created_ports = list(self.cloud.neutron.created)
        self.assertEqual(3, len(created_servers))
        self.assertEqual(3, len(created_ports))
        stack.delete()
        self.assertEqual((stack.DELETE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual({}, self.cloud.nova.servers.servers)
        self.assertEqual({}, self.cloud.neutron.ports)
        self.assertEqual({}, self.cloud.nova.server_groups.groups)
        self.assertEqual(sorted(created_servers),
                         sorted(self.cloud.nova.servers.deleted))
        self.assertEqual(sorted(created_ports),
                         sorted(self.cloud.neutron.deleted))

    def test_delete_after_failed_create(self):
        self.odl.modes['10.0.0.12'] = 'never'
        stack = self.create_stack(timeout=1)
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        stack.delete()
        self.assertEqual((stack.DELETE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual({}, self.cloud.nova.servers.servers)
        self.assertEqual({}, self.cloud.neutron.ports)


class TestMemberOrder(testtools.TestCase):
    """Which members Heat may boot together, by server group policy."""

    SPEC = {'size': 3, 'image': 'odl', 'flavor': 'f', 'network': 'n',
            'availability_zone': '', 'features': [], 'signal': False,
            'readiness_timeout': 60, 'vip': None,
            'ports': {'akka': 2550, 'akka_rpc': 2551, 'restconf': 8181,
                      'ovsdb': 6640, 'openflow': 6653}}

    def depends(self, policy):
        template = odl_member_stack.build(
            dict(self.SPEC, server_group_policy=policy))
        return {name: res.get('depends_on')
                for name, res in template['resources'].items()
                if res['type'] == 'OS::Nova::Server'}

    def test_soft_anti_affinity_members_boot_one_after_another(self):
        # A soft policy only weighs members already placed: booted
        # together, all three could land on one host.
        self.assertEqual({'member_1': None, 'member_2': ['member_1'],
                          'member_3': ['member_2']},
                         self.depends('soft-anti-affinity'))

    def test_hard_policies_and_no_group_boot_together(self):
        for policy in ('anti-affinity', 'affinity', None):
            self.assertEqual({'member_1': None, 'member_2': None,
                              'member_3': None}, self.depends(policy))
