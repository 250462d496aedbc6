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

"""OS::ODL::Cluster updates and validation through Heat's engine."""

from heat.common import exception
from heat.common import template_format
from heat.engine import stack as parser
from heat.engine import template
from heat.tests import utils

from tests.heat import base


class TestUpdate(base.OdlClusterTestCase):

    def update(self, stack, tmpl=None, **params):
        new_params = dict(stack.env.params)
        new_params.update(params)
        tmpl = tmpl or template_format.parse(base.CLUSTER_TEMPLATE)
        updated = parser.Stack(stack.context, stack.name,
                               template.Template(tmpl, env=None),
                               timeout_mins=stack.timeout_mins)
        updated.env.params.update(new_params)
        updated.t.env.params.update(new_params)
        stack.update(updated)
        return stack

    def created(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        return stack

    def test_new_image_rebuilds_members_one_at_a_time(self):
        stack = self.created()
        servers = {m['ODL_MEMBER_NAME']: s.id for s in
                   self.cloud.nova.servers.servers.values()
                   for m in [s.metadata]}
        ports = sorted(self.cloud.neutron.ports)
        probes_before = len(self.odl.requests)
        self.update(stack, image='odl-image-v2')
        self.assertEqual((stack.UPDATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        new_image = self.cloud.glance.images.id_of('odl-image-v2')
        rebuilds = self.cloud.nova.servers.rebuilds
        # Member order, each member once, same servers and ports.
        self.assertEqual([servers['member-1'], servers['member-2'],
                          servers['member-3']],
                         [server_id for _t, server_id, _i in rebuilds])
        self.assertEqual({new_image}, {i for _t, _s, i in rebuilds})
        self.assertEqual(ports, sorted(self.cloud.neutron.ports))
        self.assertEqual([], self.cloud.nova.servers.deleted)
        # The cluster was checked whole again between two rebuilds and
        # after the last one.
        probe_times = [t for t, _h, _p, _s in
                       self.odl.requests[probes_before:]]
        marks = [t for t, _s, _i in rebuilds] + [float('inf')]
        for start, end in zip(marks, marks[1:]):
            self.assertTrue(any(start < t < end for t in probe_times),
                            'no readiness probe between two rebuilds')
        self.assertEqual(base.MEMBER_IPS,
                         self.outputs(stack)['member_ips'])

    def test_size_change_refused(self):
        stack = self.created()
        before = sorted(self.cloud.nova.servers.servers)
        self.update(stack, size=5, fixed_ips='10.0.0.11,10.0.0.12,'
                    '10.0.0.13,10.0.0.14,10.0.0.15')
        self.assertEqual((stack.UPDATE, stack.FAILED), stack.state)
        self.assertIn('Changing size from 3 to 5 is not supported',
                      stack.status_reason)
        self.assertIn('Create a new cluster stack', stack.status_reason)
        self.assertEqual(before, sorted(self.cloud.nova.servers.servers))
        self.assertEqual(3, len(self.cloud.neutron.ports))

    def test_flavor_change_refused(self):
        stack = self.created()
        tmpl = template_format.parse(base.CLUSTER_TEMPLATE.replace(
            'flavor: m1.odl', 'flavor: f1'))
        self.update(stack, tmpl=tmpl)
        self.assertEqual((stack.UPDATE, stack.FAILED), stack.state)
        self.assertIn('Changing flavor of a running OpenDaylight cluster '
                      'is not supported in place', stack.status_reason)
        self.assertEqual([], self.cloud.nova.servers.rebuilds)

    def test_readiness_timeout_change_is_in_place(self):
        stack = self.created()
        before = sorted(self.cloud.nova.servers.servers)
        self.update(stack, timeout=5)
        self.assertEqual((stack.UPDATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual(before, sorted(self.cloud.nova.servers.servers))
        self.assertEqual([], self.cloud.nova.servers.rebuilds)


class TestValidation(base.OdlClusterTestCase):
    """Each bad property: a validation error naming it, nothing created."""

    def assert_invalid(self, tmpl_text, params, *expected):
        tmpl = template_format.parse(tmpl_text)
        stack = self.make_stack_from(tmpl, params)
        error = self.assertRaises(exception.StackValidationFailed,
                                  stack.validate)
        for text in expected:
            self.assertIn(text, str(error))
        self.assertEqual({}, self.cloud.nova.servers.servers)
        self.assertEqual({}, self.cloud.neutron.ports)

    def make_stack_from(self, tmpl, params):
        from heat.tests import utils
        params.setdefault('fixed_ips', ','.join(base.MEMBER_IPS))
        return utils.parse_stack(tmpl, params=params)

    def test_even_size(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'size': 4, 'fixed_ips': ''},
                            'Property error: resources.cluster.properties.'
                            'size: 4 members is even',
                            'Use 3 or 5')

    def test_size_out_of_range(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'size': 9, 'fixed_ips': ''},
                            'resources.cluster.properties.size: 9 members: '
                            'an OpenDaylight cluster has 1, 3, 5 or 7 '
                            'members')

    def test_no_members(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'size': 0, 'fixed_ips': ''},
                            'Property error: resources.cluster.properties.'
                            'size: 0 members: an OpenDaylight cluster has '
                            '1, 3, 5 or 7 members (an odd number, so that a '
                            'majority survives a split')

    def test_two_members(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'size': 2, 'fixed_ips': ''},
                            'resources.cluster.properties.size: 2 members '
                            'is even', 'Use 1 or 3')

    def test_network_without_subnet(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'vip': True, 'network': 'no-subnet-net'},
                            'resources.cluster.properties.network: network '
                            'no-subnet-net has no subnet, so the members and '
                            'the northbound VIP would get no address')

    def test_member_image_not_docker(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE, {'image': 'odl-qcow2'},
                            'resources.cluster.properties.image: image '
                            'odl-qcow2 has container_format bare, not '
                            'docker', '--container-format docker')

    def test_vip_image_not_docker(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'vip': True, 'vip_image': 'odl-qcow2'},
                            'resources.cluster.properties.vip_image: image '
                            'odl-qcow2 has container_format bare, not '
                            'docker')

    def test_vip_image_missing(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'vip': True, 'vip_image': 'no-such-haproxy'},
                            'resources.cluster.properties.vip_image: image '
                            'no-such-haproxy not found in Glance; build it '
                            'with tools/build-haproxy-image.sh',
                            'or set northbound_vip: false')

    def test_vip_image_not_needed_without_vip(self):
        tmpl = template_format.parse(base.CLUSTER_TEMPLATE)
        stack = self.make_stack_from(tmpl, {'vip': False,
                                            'vip_image': 'no-such-haproxy'})
        self.assertIsNone(stack.validate())

    def test_invalid_stack_create_boots_nothing(self):
        # Through the engine's create_stack, as `openstack stack create`.
        error = self.assertRaises(
            exception.StackValidationFailed,
            self.engine.create_stack, utils.dummy_context(), 'bad',
            template_format.parse(base.CLUSTER_TEMPLATE),
            {'parameters': {'size': 2, 'fixed_ips': ''}}, None, {})
        self.assertIn('2 members is even', str(error))
        self.assertEqual([], self.cloud.nova.servers.created)
        self.assertEqual([], self.cloud.neutron.created)

    def test_fixed_ip_count(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'fixed_ips': '10.0.0.11,10.0.0.12'},
                            'resources.cluster.properties.fixed_ips: 2 '
                            'addresses given for 3 members')

    def test_invalid_ip(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'fixed_ips': '10.0.0.11,10.0.0.300,10.0.0.13'},
                            'resources.cluster.properties.fixed_ips[1]: ',
                            "'10.0.0.300': Invalid IP address")

    def test_duplicate_ip(self):
        self.assert_invalid(base.CLUSTER_TEMPLATE,
                            {'fixed_ips': '10.0.0.11,10.0.0.11,10.0.0.13'},
                            'resources.cluster.properties.fixed_ips: an '
                            'address is listed twice')

    def test_port_out_of_range(self):
        for prop in ('restconf_port', 'ovsdb_port', 'openflow_port',
                     'akka_port', 'akka_rpc_port'):
            text = base.CLUSTER_TEMPLATE.replace(
                '      features: [odl-netvirt-openstack]',
                '      features: [odl-netvirt-openstack]\n'
                '      %s: 70000' % prop)
            self.assert_invalid(
                text, {}, 'resources.cluster.properties.%s: 70000 is out '
                'of range (min: 1, max: 65535)' % prop)

    def test_valid_template_validates(self):
        tmpl = template_format.parse(base.CLUSTER_TEMPLATE)
        self.assertIsNone(self.make_stack_from(tmpl, {}).validate())
