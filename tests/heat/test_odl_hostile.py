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

"""Hostile templates and members against heat-engine's readiness checks.

A tenant writes the template and controls what its members answer. Each
case checks the fault text and, for the probes, every address and port
heat-engine connected to (``connections``: only the member's own address
and declared RESTCONF port may ever appear).
"""

import time

import fixtures
from heat.common import exception
from oslo_config import cfg
import testtools

from heat_plugins import odl_readiness
from tests.heat import base
from tests.heat import fake_odl

MEMBER = '10.0.0.11'


class ForeignAddressTemplates(base.OdlClusterTestCase):
    """fixed_ips naming what no member may be: refused before any boot."""

    def assertRefused(self, fixed_ips, expected):
        stack = self.make_stack(fixed_ips=fixed_ips)
        error = self.assertRaises(exception.StackValidationFailed,
                                  stack.validate)
        self.assertIn('resources.cluster.properties.fixed_ips: ' + expected,
                      str(error))
        self.assertEqual({}, self.cloud.nova.servers.servers)
        self.assertEqual({}, self.cloud.neutron.ports)

    def test_link_local_metadata_address(self):
        self.assertRefused('10.0.0.11,169.254.169.254,10.0.0.13',
                           '169.254.169.254 is a link-local address')

    def test_loopback(self):
        self.assertRefused('127.0.0.1,10.0.0.12,10.0.0.13',
                           '127.0.0.1 is a loopback address')

    def test_ipv6_loopback(self):
        self.assertRefused('10.0.0.11,10.0.0.12,::1',
                           '::1 is a loopback address')

    def test_ipv4_mapped_loopback(self):
        self.assertRefused('::ffff:127.0.0.1,10.0.0.12,10.0.0.13',
                           '::ffff:127.0.0.1 is an IPv4-mapped address')

    def test_unspecified(self):
        self.assertRefused('0.0.0.0,10.0.0.12,10.0.0.13',
                           '0.0.0.0 is a multicast or unspecified address')

    def test_multicast(self):
        self.assertRefused('10.0.0.11,224.0.0.251,10.0.0.13',
                           '224.0.0.251 is a multicast or unspecified')


class PollingWhereTheOperatorDidNotAllowIt(base.OdlClusterTestCase):

    def assertRefusedBeforeBoot(self, expected, **params):
        stack = self.create_stack(**params)
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        self.assertIn(expected, stack.status_reason)
        self.assertEqual([], self.cloud.nova.servers.created)
        self.assertEqual([], self.cloud.neutron.created)
        self.assertEqual([], self.odl.connections)

    def test_polling_disabled_by_default(self):
        cfg.CONF.set_override('readiness_poll_networks', [],
                              group='odl_cluster')
        self.assertRefusedBeforeBoot(
            'ReadinessPollRefused: resources.cluster: readiness: poll is '
            'disabled on this cloud: heat-engine probes members only on '
            'networks the operator lists in heat.conf [odl_cluster] '
            'readiness_poll_networks. Use readiness: signal')

    def test_control_plane_addresses_on_a_tenant_network(self):
        # A tenant network may carry any CIDR, the control plane's too:
        # only the networks the operator listed are probed.
        cfg.CONF.set_override('readiness_poll_networks', ['provider-net'],
                              group='odl_cluster')
        self.assertRefusedBeforeBoot(
            'readiness: poll refused: network odl-net is not one '
            'heat-engine may probe (heat.conf [odl_cluster] '
            'readiness_poll_networks). Use readiness: signal.')

    def test_member_port_moved_to_another_network(self):
        # Checked again at probe time, on what Neutron says of each port.
        listed = self.cloud.neutron.network['id']
        cfg.CONF.set_override('readiness_poll_networks', [listed],
                              group='odl_cluster')
        orig = self.cloud.neutron.find_resource

        def find(resource, name_or_id, *args, **kwargs):
            found = orig(resource, name_or_id, *args, **kwargs)
            if resource == 'network' and self.cloud.nova.servers.servers:
                # After boot, the listed ID is no longer what odl-net is.
                return {'id': 'another-tenants-net'}
            return found
        self.cloud.neutron.find_resource = find
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.FAILED), stack.state)
        self.assertIn('readiness: poll refused', stack.status_reason)
        self.assertEqual([], self.odl.connections)


class HostileMembers(testtools.TestCase):
    """One member answering as an attacker would; timeouts kept short."""

    def setUp(self):
        super(HostileMembers, self).setUp()
        self.cluster = fake_odl.FakeOdlCluster([MEMBER])
        fake_odl.serve(self, self.cluster)

    def probe(self, mode, timeout=1.0):
        self.cluster.modes[MEMBER] = mode
        poller = odl_readiness.ReadinessPoller(
            [('member-1', MEMBER)], 8181, 'admin', 'secret', timeout)
        start = time.monotonic()
        while True:
            try:
                self.assertFalse(poller.poll())
            except odl_readiness.MembersNotReady as err:
                self.elapsed = time.monotonic() - start
                # Nothing but the member's own address and declared port.
                self.assertEqual({(MEMBER, 8181)},
                                 set(self.cluster.connections))
                return str(err)
            time.sleep(0.05)

    def test_redirect_to_the_metadata_service(self):
        self.assertIn(
            'member-1 10.0.0.11: RESTCONF probe refused: HTTP 302 redirect '
            'to http://169.254.169.254/latest/meta-data/ refused (readiness '
            'probes follow no redirect)', self.probe('redirect_metadata'))

    def test_redirect_with_credentials_to_a_foreign_host(self):
        self.assertIn(
            'RESTCONF probe refused: HTTP 307 redirect to '
            'http://admin:admin@192.0.2.10:35357/v3/ refused',
            self.probe('redirect_creds'))

    def test_redirect_to_an_undeclared_port(self):
        self.assertIn('HTTP 301 redirect to http://10.0.0.11:22/ refused',
                      self.probe('redirect_port'))

    def test_huge_declared_body(self):
        self.assertIn('RESTCONF probe refused: answer of 10485760 bytes '
                      'refused (more than 65536)', self.probe('huge'))

    def test_huge_streamed_body(self):
        self.assertIn('RESTCONF probe refused: answer longer than 65536 '
                      'bytes refused', self.probe('huge_stream'))
        self.assertLess(self.elapsed, 5)

    def test_slow_body(self):
        # 100 bytes at 5 a second would take 20 s: cut off at 1 s.
        self.assertIn('RESTCONF not reachable (no complete answer within '
                      '1.0 s)', self.probe('slow_body', timeout=1.0))
        self.assertLess(self.elapsed, 4)

    def test_slow_headers(self):
        self.assertIn('RESTCONF not reachable (no complete answer within '
                      '1.0 s)', self.probe('slow_headers', timeout=1.0))
        self.assertLess(self.elapsed, 4)

    def test_not_json(self):
        self.assertIn('Jolokia answered something that is not JSON',
                      self.probe('not_json'))

    def test_proxy_in_the_environment_is_not_used(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'http_proxy', 'http://192.0.2.99:3128'))
        poller = odl_readiness.ReadinessPoller(
            [('member-1', MEMBER)], 8181, 'admin', 'admin', 1.0)
        self.assertTrue(poller.poll())
        self.assertEqual([(MEMBER, 8181), (MEMBER, 8181)],
                         self.cluster.connections)

    def test_foreign_leader_is_not_reported(self):
        self.cluster.leader = '192.0.2.10'
        poller = odl_readiness.ReadinessPoller(
            [('member-1', MEMBER)], 8181, 'admin', 'admin', 1.0)
        self.assertTrue(poller.poll())
        self.assertIsNone(poller.leader)


class ForbiddenAddressesAtProbeTime(testtools.TestCase):
    """The probe itself refuses what validation would (defence in depth)."""

    def setUp(self):
        super(ForbiddenAddressesAtProbeTime, self).setUp()
        self.cluster = fake_odl.FakeOdlCluster([])
        fake_odl.serve(self, self.cluster)

    def assertNeverProbed(self, ip, expected):
        poller = odl_readiness.ReadinessPoller(
            [('member-1', ip)], 8181, 'admin', 'admin', 0.1)
        time.sleep(0.15)
        error = self.assertRaises(odl_readiness.MembersNotReady, poller.poll)
        self.assertIn('member-1 %s: RESTCONF probe refused: %s'
                      % (ip, expected), str(error))
        self.assertEqual([], self.cluster.connections)

    def test_metadata_service(self):
        self.assertNeverProbed('169.254.169.254',
                               '169.254.169.254 is a link-local address')

    def test_loopback(self):
        self.assertNeverProbed('127.0.0.1', '127.0.0.1 is a loopback')

    def test_ipv6_link_local(self):
        self.assertNeverProbed('fe80::1', 'fe80::1 is a link-local address')

    def test_not_an_address(self):
        self.assertNeverProbed('heat-engine.internal',
                               "'heat-engine.internal' is not an IP address")


class BaseTemplatePollingStillWorks(base.OdlClusterTestCase):
    """The bounds do not stop an honest cluster on an allowed network."""

    def test_honest_cluster(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        self.assertEqual({(ip, 8181) for ip in base.MEMBER_IPS},
                         set(self.odl.connections))
