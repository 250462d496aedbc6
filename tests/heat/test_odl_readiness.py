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

"""ReadinessPoller against a real HTTP server answering like ODL."""

import time

import testtools

from heat_plugins import odl_readiness
from tests.heat import fake_odl

MEMBER = '10.0.0.11'


def poll_until_done(poller, limit=30):
    """Call poll() every 10 ms like Heat's loop would; return its result."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if poller.poll():
            return True
        time.sleep(0.01)
    raise AssertionError('poller neither finished nor timed out')  # noqa


class DirectProbeTest(testtools.TestCase):
    """One member, its probes routed to the fake server."""

    def setUp(self):
        super(DirectProbeTest, self).setUp()
        self.cluster = fake_odl.FakeOdlCluster([MEMBER])
        self.server = fake_odl.serve(self, self.cluster)

    def poller(self, timeout=2.0, password='admin'):
        return odl_readiness.ReadinessPoller(
            [('member-1', MEMBER)], 8181, 'admin', password, timeout)

    def test_ready_member(self):
        poller = self.poller()
        self.assertTrue(poller.poll())
        self.assertEqual(MEMBER, poller.leader)
        self.assertEqual(1, poller.probes)
        # Only the member's own address and declared port, directly.
        self.assertEqual({(MEMBER, 8181)}, set(self.cluster.connections))

    def test_member_ready_after_a_while(self):
        self.cluster.modes[MEMBER] = 'ready_after'
        self.cluster.ready_at[MEMBER] = time.monotonic() + 0.5
        poller = self.poller(timeout=5)
        self.assertTrue(poll_until_done(poller))
        self.assertGreater(poller.probes, 1)

    def test_never_ready_times_out_with_backoff(self):
        self.cluster.modes[MEMBER] = 'never'
        poller = self.poller(timeout=2.5)
        start = time.monotonic()
        error = self.assertRaises(odl_readiness.MembersNotReady,
                                  poll_until_done, poller)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 2.4)
        self.assertLess(elapsed, 5)
        self.assertEqual(
            'OpenDaylight cluster not ready after 2.5 s: member-1 '
            '10.0.0.11: HTTP 404 from RESTCONF', str(error))
        times = self.cluster.restconf_times(MEMBER)
        # Called every 10 ms, it probed only at growing intervals:
        # 0, 0.25, 0.75, 1.75, then at the deadline.
        self.assertLessEqual(len(times), 6, times)
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreaterEqual(gaps[1], gaps[0] * 1.5, gaps)
        self.assertGreaterEqual(min(gaps), 0.2, gaps)

    def test_unauthorized(self):
        poller = self.poller(timeout=1, password='wrong')
        error = self.assertRaises(odl_readiness.MembersNotReady,
                                  poll_until_done, poller)
        self.assertIn('member-1 10.0.0.11: HTTP 401 from RESTCONF, check '
                      'credentials', str(error))

    def test_nothing_listening(self):
        self.server.stop()
        self.addCleanup(lambda: None)
        poller = self.poller(timeout=0.5)
        error = self.assertRaises(odl_readiness.MembersNotReady,
                                  poll_until_done, poller)
        self.assertIn('member-1 10.0.0.11: RESTCONF not reachable',
                      str(error))


class ClusterViewTest(testtools.TestCase):
    """Three members answered by one fake server."""

    IPS = ['10.0.0.11', '10.0.0.12', '10.0.0.13']

    def setUp(self):
        super(ClusterViewTest, self).setUp()
        self.cluster = fake_odl.FakeOdlCluster(self.IPS)
        fake_odl.serve(self, self.cluster)

    def poller(self, timeout=1.0):
        members = [('member-%d' % i, ip)
                   for i, ip in enumerate(self.IPS, start=1)]
        return odl_readiness.ReadinessPoller(members, 8181, 'admin',
                                             'admin', timeout)

    def test_all_up(self):
        self.cluster.leader = '10.0.0.12'
        poller = self.poller()
        self.assertTrue(poller.poll())
        self.assertEqual('10.0.0.12', poller.leader)

    def test_one_member_down_is_named_by_every_member(self):
        self.cluster.modes['10.0.0.13'] = 'never'
        error = self.assertRaises(odl_readiness.MembersNotReady,
                                  poll_until_done, self.poller())
        self.assertEqual(
            ['member-1 10.0.0.11: cluster view lists 10.0.0.13 as '
             'unreachable',
             'member-2 10.0.0.12: cluster view lists 10.0.0.13 as '
             'unreachable',
             'member-3 10.0.0.13: HTTP 404 from RESTCONF'], error.reasons)

    def test_member_not_in_view(self):
        self.cluster.member_ips = self.IPS[:2]  # 10.0.0.13 never joined
        error = self.assertRaises(odl_readiness.MembersNotReady,
                                  poll_until_done, self.poller())
        self.assertIn('member-1 10.0.0.11: cluster view does not list '
                      '10.0.0.13', error.reasons)


class AkkaAddressTest(testtools.TestCase):

    def test_addresses(self):
        self.assertEqual(
            ['10.0.0.11', '10.0.0.12', 'fd00::1'],
            odl_readiness.akka_address_ips(
                'akka.tcp://opendaylight-cluster-data@10.0.0.11:2550,'
                'akka://opendaylight-cluster-data@10.0.0.12:2550,'
                'akka.tcp://opendaylight-cluster-data@[fd00::1]:2550'))
