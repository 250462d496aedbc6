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

"""OS::ODL::Cluster's northbound VIP, spread and heal, through Heat."""

from heat.common import template_format
from heat.engine import stack as parser
from heat.engine import template
from heat.tests import utils
from oslo_config import cfg

from heat_plugins import odl_readiness
from tests.heat import base
from tests.heat import test_odl_signal

VIP = '10.0.0.10'


class TestVip(base.OdlClusterTestCase):

    def test_vip_server_fronts_the_members(self):
        stack = self.create_stack(vip=True)
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual(3, len(self.cloud.members()))
        (vip,) = self.cloud.vip_servers()
        self.assertEqual(self.cloud.glance.images.id_of(
            'nova-docker-haproxy'), vip.image['id'])
        self.assertEqual({}, vip.scheduler_hints)
        self.assertEqual({
            'ODL_VIP_MEMBERS': '10.0.0.11,10.0.0.12,10.0.0.13',
            'ODL_RESTCONF_PORT': '8181',
            'ODL_VIP_PORT': '8181',
            'ODL_VIP_CHECK_PATH': odl_readiness.RESTCONF_READY_PATH,
            # admin:admin
            'ODL_VIP_CHECK_AUTH': 'Basic YWRtaW46YWRtaW4=',
        }, vip.metadata)
        (nic,) = vip.nics
        self.assertEqual(VIP, self.cloud.neutron.ports[nic['port-id']][
            'fixed_ips'][0]['ip_address'])
        out = self.outputs(stack)
        self.assertEqual(VIP, out['northbound_vip'])
        self.assertIsNone(out['northbound_vip_floating_ip'])
        self.assertEqual('http://10.0.0.10:8181/controller/nb/v2/neutron',
                         out['northbound_url'])
        self.assertEqual('ODL_MODE=externalodl\n'
                         'ODL_MGR_IP=10.0.0.10\n'
                         'ODL_PORT=8181\n'
                         'ODL_OVS_MANAGERS=10.0.0.11,10.0.0.12,10.0.0.13\n'
                         'ODL_MGR_PORT=6640\n', out['devstack_local_conf'])
        # The members' own metadata never carries the password.
        for meta in self.cloud.server_metadata().values():
            self.assertNotIn('ODL_VIP_CHECK_AUTH', meta)
        stack.delete()
        self.assertEqual((stack.DELETE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual({}, self.cloud.nova.servers.servers)
        self.assertEqual({}, self.cloud.neutron.ports)

    def test_without_vip_member_1_is_the_northbound_address(self):
        stack = self.create_stack(vip=False)
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual([], self.cloud.vip_servers())
        out = self.outputs(stack)
        self.assertIsNone(out['northbound_vip'])
        self.assertEqual('http://10.0.0.11:8181/controller/nb/v2/neutron',
                         out['northbound_url'])
        self.assertIn('ODL_MGR_IP=10.0.0.11\n', out['devstack_local_conf'])

    def test_floating_ip_is_the_northbound_address(self):
        tmpl = template_format.parse(base.CLUSTER_TEMPLATE.replace(
            '      vip_image: {get_param: vip_image}',
            '      vip_image: {get_param: vip_image}\n'
            '      vip_floating_network: public'))
        stack = utils.parse_stack(tmpl, params={
            'vip': True, 'fixed_ips': ','.join(base.MEMBER_IPS)})
        stack.store()
        stack.create()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        (fip,) = self.cloud.neutron.floatingips.values()
        self.assertEqual(VIP, fip['fixed_ip_address'])
        out = self.outputs(stack)
        self.assertEqual(VIP, out['northbound_vip'])
        self.assertEqual(fip['floating_ip_address'],
                         out['northbound_vip_floating_ip'])
        self.assertEqual('http://%s:8181/controller/nb/v2/neutron'
                         % fip['floating_ip_address'], out['northbound_url'])
        self.assertIn('ODL_MGR_IP=%s\n' % fip['floating_ip_address'],
                      out['devstack_local_conf'])
        stack.delete()
        self.assertEqual({}, self.cloud.neutron.floatingips)


class TestSpread(base.OdlClusterTestCase):

    def spread(self, hosts, forbidden=False):
        self.cloud.nova.hosts = hosts
        self.cloud.nova.services.forbidden = forbidden
        stack = self.create_stack(policy='auto')
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        (group,) = self.cloud.nova.server_groups.groups.values()
        out = self.outputs(stack)
        self.assertEqual(group.policies[0], out['server_group_policy'])
        placed = {m['name']: m['host'] for m in out['member_hosts']}
        self.assertEqual({name: server.host for name, server in
                          self.cloud.members().items()}, placed)
        return out['server_group_policy'], placed

    def test_hard_anti_affinity_when_hosts_suffice(self):
        policy, placed = self.spread(['c1', 'c2', 'c3'])
        self.assertEqual('anti-affinity', policy)
        self.assertEqual({'c1', 'c2', 'c3'}, set(placed.values()))

    def test_soft_on_two_hosts(self):
        policy, placed = self.spread(['c1', 'c2'])
        self.assertEqual('soft-anti-affinity', policy)
        self.assertEqual({'c1', 'c2'}, set(placed.values()))

    def test_soft_on_one_host(self):
        policy, placed = self.spread(['c1'])
        self.assertEqual('soft-anti-affinity', policy)
        self.assertEqual({'c1'}, set(placed.values()))

    def test_disabled_hosts_do_not_count(self):
        self.cloud.nova.services.disabled = {'c3'}
        policy, _placed = self.spread(['c1', 'c2', 'c3'])
        self.assertEqual('soft-anti-affinity', policy)

    def test_soft_when_hosts_cannot_be_counted(self):
        policy, _placed = self.spread(['c1', 'c2', 'c3'], forbidden=True)
        self.assertEqual('soft-anti-affinity', policy)

    def test_hard_anti_affinity_asked_for_on_too_few_hosts_fails(self):
        # Why auto exists: Nova cannot place the third member.
        cfg.CONF.set_override('action_retry_limit', 0)
        self.cloud.nova.hosts = ['c1', 'c2']
        stack = self.create_stack(policy='anti-affinity')
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        self.assertIn('No valid host was found', stack.status_reason)


class TestHeal(base.OdlClusterTestCase):

    def created(self):
        stack = self.create_stack(vip=True)
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        return stack

    def update_unchanged(self, stack):
        """openstack stack update --existing, with no change."""
        updated = parser.Stack(
            stack.context, stack.name,
            template.Template(template_format.parse(base.CLUSTER_TEMPLATE),
                              env=None),
            timeout_mins=stack.timeout_mins)
        updated.env.params.update(stack.env.params)
        updated.t.env.params.update(stack.env.params)
        stack.update(updated)
        return stack

    def snapshot(self):
        members = self.cloud.members()
        return ({name: s.id for name, s in members.items()},
                {name: dict(s.metadata) for name, s in members.items()},
                {name: s.nics[0]['port-id'] for name, s in members.items()},
                [s.id for s in self.cloud.vip_servers()])

    def assert_healed(self, stack, before, replaced):
        ids, meta, ports, vips = before
        self.assertEqual((stack.UPDATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        now_ids, now_meta, now_ports, now_vips = self.snapshot()
        for name in ids:
            if name == replaced:
                self.assertNotEqual(ids[name], now_ids[name])
            else:
                self.assertEqual(ids[name], now_ids[name], name)
        # Same member name, configuration and port (so the same address).
        self.assertEqual(meta, now_meta)
        self.assertEqual(ports, now_ports)
        self.assertEqual(vips, now_vips)
        self.assertEqual(3, len(self.cloud.members()))
        out = self.outputs(stack)
        self.assertEqual(base.MEMBER_IPS, out['member_ips'])
        self.assertEqual('10.0.0.11,10.0.0.12,10.0.0.13',
                         out['odl_ovs_managers'])
        self.assertEqual(VIP, out['northbound_vip'])

    def test_check_reports_deleted_member_and_update_replaces_it(self):
        stack = self.created()
        before = self.snapshot()
        self.cloud.nova.servers.vanish(before[0]['member-2'])
        stack.check()
        self.assertEqual((stack.CHECK, stack.FAILED), stack.state)
        self.assertIn('member_2', stack.status_reason)
        created = len(self.cloud.nova.servers.created)
        self.update_unchanged(stack)
        self.assert_healed(stack, before, 'member-2')
        # Exactly one new server.
        self.assertEqual(created + 1, len(self.cloud.nova.servers.created))
        stack.check()
        self.assertEqual((stack.CHECK, stack.COMPLETE), stack.state,
                         stack.status_reason)

    def test_update_replaces_member_in_error_without_a_check(self):
        stack = self.created()
        before = self.snapshot()
        broken = before[0]['member-3']
        self.cloud.nova.servers.break_server(broken)
        deleted = len(self.cloud.nova.servers.deleted)
        self.update_unchanged(stack)
        self.assert_healed(stack, before, 'member-3')
        # The ERROR server was deleted (it held the member's port).
        self.assertEqual([broken],
                         self.cloud.nova.servers.deleted[deleted:])

    def test_vip_server_deleted_is_replaced(self):
        stack = self.created()
        ids, meta, ports, (vip_id,) = self.snapshot()
        self.cloud.nova.servers.vanish(vip_id)
        self.update_unchanged(stack)
        self.assertEqual((stack.UPDATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        (vip,) = self.cloud.vip_servers()
        self.assertNotEqual(vip_id, vip.id)
        self.assertEqual(ids, self.snapshot()[0])
        self.assertEqual(VIP, self.outputs(stack)['northbound_vip'])

    def test_image_change_refused_while_a_member_is_broken(self):
        stack = self.created()
        before = self.snapshot()
        self.cloud.nova.servers.vanish(before[0]['member-1'])
        new_params = dict(stack.env.params, image='odl-image-v2')
        updated = parser.Stack(
            stack.context, stack.name,
            template.Template(template_format.parse(base.CLUSTER_TEMPLATE),
                              env=None))
        updated.env.params.update(new_params)
        updated.t.env.params.update(new_params)
        stack.update(updated)
        self.assertEqual((stack.UPDATE, stack.FAILED), stack.state)
        self.assertIn('Not changing image while member-1 server',
                      stack.status_reason)
        self.assertEqual([], self.cloud.nova.servers.rebuilds)


class TestSignalledHeal(test_odl_signal.SignalTestCase):
    """Heal in the default readiness mode: the replacement must signal."""

    def lose_member_2(self):
        stack = self.create_stack(vip=True)
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual(3, len(self.heat_api.accepted))
        lost = self.cloud.members()['member-2'].id
        self.cloud.nova.servers.vanish(lost)
        return stack, lost

    def test_replacement_signals_before_the_update_completes(self):
        stack, lost = self.lose_member_2()
        TestHeal.update_unchanged(self, stack)
        self.assertEqual((stack.UPDATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        new = self.cloud.members()['member-2']
        self.assertNotEqual(lost, new.id)
        # Only the replacement signalled again.
        self.assertEqual(['member-2'],
                         [m for _t, m, _d in self.heat_api.accepted[3:]])

    def test_silent_replacement_fails_the_update_naming_it(self):
        stack, _lost = self.lose_member_2()
        self.members.modes['member-2'] = 'silent'
        TestHeal.update_unchanged(self, stack)
        self.assertEqual((stack.UPDATE, stack.FAILED), stack.state)
        self.assertIn('member-2 10.0.0.12 never signalled',
                      stack.status_reason)
        for other in ('member-1 10.0.0.11', 'member-3 10.0.0.13'):
            self.assertNotIn(other + ' never signalled', stack.status_reason)
