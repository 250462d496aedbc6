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

"""OS::ODL::Cluster in its default mode: the members signal heat-api."""

import time

from heat.engine import scheduler
from oslo_config import cfg

from tests.heat import base
from tests.heat import fake_members

HEAT_URL = 'http://192.0.2.1:8004/v1/%(tenant_id)s'


class SignalTestCase(base.OdlClusterTestCase):

    def setUp(self):
        super(SignalTestCase, self).setUp()
        self.keystone = self.stub_keystoneclient()
        cfg.CONF.set_override('url', HEAT_URL, group='clients_heat')
        self.heat_api = fake_members.FakeHeatApi(
            self.engine.engine, 'http://192.0.2.1:8004/v1/')
        self.members = fake_members.SignallingMembers(self.cloud,
                                                      self.heat_api)

        def step(wait):
            # Between two of Heat's polls the members get to run.
            self.members.tick()
            time.sleep(self.STEP_SECONDS if wait else 0)

        self.patchobject(scheduler.TaskRunner, '_sleep', side_effect=step)

    def create_stack(self, **params):
        params.setdefault('readiness', 'signal')
        return super(SignalTestCase, self).create_stack(**params)

    def nested(self, stack):
        return stack['cluster'].nested()


class TestSignalled(SignalTestCase):

    def test_members_signal_and_heat_engine_sends_them_nothing(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        nested = self.nested(stack)
        handle = nested['ready_handle']
        self.assertEqual('OS::Heat::WaitConditionHandle', handle.type())
        url = handle.FnGetAtt('endpoint')
        self.assertEqual(
            'http://192.0.2.1:8004/v1/%s/stacks/%s/%s/resources/'
            'ready_handle/signal' % (nested.stack_user_project_id,
                                     nested.name, nested.id), url)
        for index, meta in sorted(self.cloud.server_metadata().items()):
            self.assertEqual(url, meta['ODL_READY_SIGNAL_URL'])
            self.assertEqual(fake_members.TOKEN,
                             meta['ODL_READY_SIGNAL_TOKEN'])
            self.assertEqual('3', meta['ODL_READY_TIMEOUT'])
            # Nova refuses metadata values over 255 characters.
            self.assertLessEqual(max(len(v) for v in meta.values()), 255)
            # The probe credentials are not the members' business.
            self.assertNotIn('admin', meta.values())
        self.assertEqual(['member-1', 'member-2', 'member-3'],
                         sorted(m for _t, m, _d in self.heat_api.accepted))
        self.assertEqual(
            {'member-1', 'member-2', 'member-3'},
            set(handle.metadata_get(refresh=True)))
        # Not one connection from heat-engine to a member.
        self.assertEqual([], self.odl.connections)
        self.assertEqual([], self.odl.requests)
        out = self.outputs(stack)
        self.assertEqual('10.0.0.11', out['leader'])
        self.assertEqual([
            ('member-%d' % i, ip, 'tcp:%s:6640' % ip)
            for i, ip in enumerate(base.MEMBER_IPS, start=1)],
            [(m['name'], m['ip'], m['ovs_manager']) for m in out['members']])
        self.assertEqual(set(self.cloud.nova.servers.servers),
                         {m['server_id'] for m in out['members']})

    def test_silent_members_are_named_on_timeout(self):
        self.members.modes.update({'member-2': 'silent',
                                   'member-3': 'silent'})
        start = time.monotonic()
        stack = self.create_stack(timeout=2)
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        self.assertLess(time.monotonic() - start, 15)
        reason = stack.status_reason
        self.assertIn('ClusterNotReady: resources.cluster: OpenDaylight '
                      'cluster not ready after 2 s: member-2 10.0.0.12 '
                      'never signalled; member-3 10.0.0.13 never '
                      'signalled; each member signals heat-api once its '
                      'RESTCONF answers', reason)
        self.assertNotIn('member-1', reason)
        self.assertEqual([], self.odl.connections)

    def test_failure_signal_fails_at_once_with_its_reason(self):
        self.members.modes['member-2'] = 'fail'
        start = time.monotonic()
        stack = self.create_stack(timeout=600)
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        self.assertLess(time.monotonic() - start, 15)
        self.assertIn('OpenDaylight cluster member member-2 10.0.0.12 '
                      'signalled FAILURE: RESTCONF answered HTTP 401, check '
                      'ODL_READY_USER', stack.status_reason)

    def test_signal_for_a_stranger_does_not_count(self):
        # Something signals the handle with an id that is no member's:
        # ignored, the silent member is still waited for and named.
        self.members.modes['member-3'] = 'silent'
        orig_tick = self.members.tick

        def tick():
            orig_tick()
            servers = self.cloud.nova.servers.servers.values()
            meta = [s.metadata for s in servers if s.status == 'ACTIVE']
            if meta and not any(d['id'] == 'member-9'
                                for _t, _m, d in self.heat_api.accepted):
                self.heat_api.post(meta[0]['ODL_READY_SIGNAL_URL'],
                                   fake_members.TOKEN,
                                   {'id': 'member-9', 'status': 'SUCCESS',
                                    'reason': 'x', 'data': None})
        self.members.tick = tick
        stack = self.create_stack(timeout=1)
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        self.assertIn('member-3 10.0.0.13 never signalled',
                      stack.status_reason)

    def test_soft_anti_affinity_for_one_host(self):
        stack = self.create_stack(policy='soft-anti-affinity')
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        (group,) = self.cloud.nova.server_groups.groups.values()
        self.assertEqual(['soft-anti-affinity'], group.policies)
        for server in self.cloud.nova.servers.servers.values():
            self.assertEqual({'group': group.id}, server.scheduler_hints)

    def test_no_server_group(self):
        stack = self.create_stack(policy='none')
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual({}, self.cloud.nova.server_groups.groups)

    def test_delete_removes_handle_user_servers_ports(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        stack.delete()
        self.assertEqual((stack.DELETE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual({}, self.cloud.nova.servers.servers)
        self.assertEqual({}, self.cloud.neutron.ports)


class TestSignalledUpdate(SignalTestCase):

    def test_rebuilt_member_must_signal_again(self):
        from tests.heat import test_odl_cluster_update as upd
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        upd.TestUpdate.update(self, stack, image='odl-image-v2')
        self.assertEqual((stack.UPDATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        rebuilds = self.cloud.nova.servers.rebuilds
        self.assertEqual(3, len(rebuilds))
        names = {s.id: s.metadata['ODL_MEMBER_NAME']
                 for s in self.cloud.nova.servers.servers.values()}
        signals = self.heat_api.accepted[3:]
        self.assertEqual(['member-1', 'member-2', 'member-3'],
                         [m for _t, m, _d in signals])
        # Member k+1 was rebuilt only after member k signalled again.
        for (t_rebuild, server_id, _i), (t_signal, member, _d) in zip(
                rebuilds, signals):
            self.assertEqual(names[server_id], member)
            self.assertLess(t_rebuild, t_signal)
        for (_t, _s, _i), (t_signal, _m, _d), (t_next, _s2, _i2) in zip(
                rebuilds, signals, rebuilds[1:]):
            self.assertLess(t_signal, t_next)

    def test_rebuilt_member_silent_fails_update_naming_it(self):
        from tests.heat import test_odl_cluster_update as upd
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        # member-1 never comes back after its rebuild.
        self.members.modes['member-1'] = 'silent'
        upd.TestUpdate.update(self, stack, image='odl-image-v2')
        self.assertEqual((stack.UPDATE, stack.FAILED), stack.state)
        self.assertIn('member-1 10.0.0.11 never signalled',
                      stack.status_reason)
        self.assertEqual(1, len(self.cloud.nova.servers.rebuilds))
