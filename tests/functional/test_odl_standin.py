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

"""The ODL stand-in image: three members on a real engine and the real OVS.

tools/build-odl-standin-image.sh builds the image; three members run on a
docker network of this test with the environment OS::ODL::Cluster gives
(odl_member_stack's names), signal mode included. The test plays heat-api
(an HTTP server on the network's gateway) and heat-engine's polling mode
(the real ReadinessPoller, from the host), and adds its OWN Manager rows to
the shared OVS (never set-manager/del-manager), checks each is connected
and stays so across inactivity probes, then removes exactly those rows.
"""

import http.server
import json
import random
import subprocess
import threading
import time
import uuid

import docker
import testtools

from heat_plugins import odl_member_stack as stack
from heat_plugins import odl_readiness
from tests.functional import test_odl_entrypoint as entrypoint_tests

REPO = entrypoint_tests.REPO
BUILD = REPO + '/tools/build-odl-standin-image.sh'
PREFIX = 'nd-odl-standin-'
LABEL = 'nova-docker.test'
TAG = 'nd-odl-standin-test/odl-standin:latest'
TOKEN = 'gAAAAABtoken-for-the-test_' + uuid.uuid4().hex


def make_network(test, client, name_prefix, octet, label):
    """A docker network of *test* on a free 10.<octet>.x.0/24.

    Return (network, "10.<octet>.x."); the test's cleanup removes it.
    """
    name = name_prefix + uuid.uuid4().hex[:8]
    for _attempt in range(10):
        prefix = '10.%d.%d.' % (octet, random.randint(1, 254))
        ipam = docker.types.IPAMConfig(pool_configs=[
            docker.types.IPAMPool(subnet=prefix + '0/24',
                                  gateway=prefix + '1')])
        try:
            network = client.networks.create(name, ipam=ipam,
                                             labels={LABEL: label})
        except docker.errors.APIError as err:
            if 'overlap' in str(err):
                continue
            raise
        test.addCleanup(network.remove)
        return network, prefix
    test.fail('no free 10.%d.x.0/24 for a docker network' % octet)


class _SignalHandler(http.server.BaseHTTPRequestHandler):

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(min(length, 65536))
        self.server.signals.append({
            'path': self.path, 'token': self.headers.get('X-Auth-Token'),
            'type': self.headers.get('Content-Type'),
            'body': json.loads(body.decode())})
        self.send_response(200)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, fmt, *args):
        pass


def ovs_vsctl(*args):
    return subprocess.run(('ovs-vsctl', '--timeout=10') + args, check=True,
                          capture_output=True, text=True).stdout.strip()


class StandinClusterTest(testtools.TestCase):

    def setUp(self):
        super(StandinClusterTest, self).setUp()
        self.docker = docker.from_env(timeout=60)
        out = subprocess.run(['bash', BUILD, TAG], check=True,
                             capture_output=True, text=True).stdout
        self.assertRegex(out, r'^(built|present) %s$' % TAG)
        self.addCleanup(self._remove_image)
        self.network, self.prefix = self._make_network()
        self.gateway = self.prefix + '1'
        self.ips = [self.prefix + str(n) for n in (11, 12, 13)]
        self.signals = self._serve_heat_api()

    def _remove_image(self):
        try:
            self.docker.images.remove(TAG)
        except docker.errors.APIError:
            pass

    def _make_network(self):
        return make_network(self, self.docker, PREFIX, 213, 'odl-standin')

    def _serve_heat_api(self):
        server = http.server.ThreadingHTTPServer((self.gateway, 0),
                                                 _SignalHandler)
        server.daemon_threads = True
        server.signals = []
        self.heat_port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={'poll_interval': 0.1}, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.signals

    def signal_url(self, index):
        return ('http://%s:%d/v1/tenant/stacks/odl-cluster-x/%s/resources/'
                '%s/signal' % (self.gateway, self.heat_port, index,
                               stack.READY_HANDLE))

    def start_member(self, index, ips, timeout=60):
        env = entrypoint_tests.member_env(index, ips)
        del env['ODL_HOME']  # the image's own
        env.update({
            stack.ENV_RESTCONF_PORT: '8181', stack.ENV_OVSDB_PORT: '6640',
            stack.ENV_SIGNAL_URL: self.signal_url('stack-id'),
            stack.ENV_SIGNAL_TOKEN: TOKEN,
            stack.ENV_READY_TIMEOUT: str(timeout),
            'ODL_READY_INTERVAL': '1'})
        container = self.docker.containers.create(
            TAG, name=PREFIX + uuid.uuid4().hex[:12], environment=env,
            labels={LABEL: 'odl-standin'}, network=self.network.name)
        self.addCleanup(container.remove, force=True)
        self.network.disconnect(container)
        self.network.connect(container, ipv4_address=ips[index - 1])
        container.start()
        return container

    def wait_for(self, predicate, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.2)
        self.fail('%s not within %s s' % (what, timeout))

    def add_manager(self, ip):
        uuid_ = ovs_vsctl(
            '--', '--id=@m', 'create', 'Manager',
            'target="tcp:%s:6640"' % ip, 'inactivity_probe=1000',
            'external_ids:nova-docker-test=odl-standin',
            '--', 'add', 'Open_vSwitch', '.', 'manager_options', '@m')
        self.addCleanup(ovs_vsctl, 'remove', 'Open_vSwitch', '.',
                        'manager_options', uuid_)
        return uuid_

    def test_three_members_signal_answer_and_take_ovs_managers(self):
        members = [self.start_member(i, self.ips) for i in (1, 2, 3)]
        # 1. Each member signals heat-api once, on its own, when ready.
        self.wait_for(lambda: len(self.signals) >= 3, 60, 'three signals')
        by_id = {s['body']['id']: s for s in self.signals}
        self.assertEqual({'member-1', 'member-2', 'member-3'}, set(by_id))
        for signal in self.signals:
            self.assertEqual(TOKEN, signal['token'])
            self.assertEqual('application/json', signal['type'])
            self.assertEqual(self.signal_url('stack-id').split(
                str(self.heat_port))[1], signal['path'])
            self.assertEqual('SUCCESS', signal['body']['status'])
            self.assertEqual(self.ips[0], signal['body']['data'])
        # 2. heat-engine's polling mode, the real probes, from the host.
        poller = odl_readiness.ReadinessPoller(
            [(stack.member_name(i), ip)
             for i, ip in enumerate(self.ips, start=1)],
            8181, 'admin', 'admin', 20)
        self.wait_for(poller.poll, 20, 'polled readiness')
        self.assertEqual(self.ips[0], poller.leader)
        wrong = odl_readiness.probe_member('member-1', self.ips[0],
                                           self.ips, 8181, 'admin', 'x')
        self.assertEqual('HTTP 401 from RESTCONF, check credentials',
                         wrong.reason)
        # 3. OVS connects to each member as its manager and stays
        # connected across inactivity probes (1 s), which need answers.
        # ovsdb-server refreshes a Manager's status columns every 2.5 s,
        # so sec_since_connect read 6 s after is_connected turned true is
        # at least 3 unless the connection dropped and came back.
        managers = [self.add_manager(ip) for ip in self.ips]
        for row in managers:
            self.wait_for(lambda: ovs_vsctl(
                'get', 'Manager', row, 'is_connected') == 'true', 15,
                'manager %s connected' % row)
        time.sleep(6)
        for row in managers:
            status = ovs_vsctl('get', 'Manager', row, 'status')
            self.assertEqual('true', ovs_vsctl('get', 'Manager', row,
                                               'is_connected'), status)
            # The key appears once a connection has ever dropped.
            self.assertNotIn('sec_since_disconnect', status)
            since = int(ovs_vsctl('get', 'Manager', row,
                                  'status:sec_since_connect').strip('"'))
            self.assertGreaterEqual(since, 3, status)
        # 4. "karaf stop" with the container left running: OVS loses that
        # manager (its open connection too), keeps the others; "karaf
        # start" brings it back.
        out = members[1].exec_run(['/opt/opendaylight/bin/karaf', 'stop'])
        self.assertEqual(0, out.exit_code, out.output)
        self.wait_for(lambda: ovs_vsctl('get', 'Manager', managers[1],
                                        'is_connected') == 'false', 15,
                      'OVS losing the stopped member-2')
        for row in (managers[0], managers[2]):
            self.assertEqual('true', ovs_vsctl('get', 'Manager', row,
                                               'is_connected'))
        out = members[1].exec_run(['/opt/opendaylight/bin/karaf', 'start'])
        self.assertEqual(0, out.exit_code, out.output)
        self.wait_for(lambda: ovs_vsctl('get', 'Manager', managers[1],
                                        'is_connected') == 'true', 30,
                      'OVS reconnecting to member-2')
        # 5. The cluster view follows the members: one stops, the others
        # list it unreachable and the readiness check names it.
        members[2].stop(timeout=5)
        lost = self.ips[2]

        def member_1():
            return odl_readiness.probe_member(
                'member-1', self.ips[0], self.ips, 8181, 'admin', 'admin')
        self.wait_for(lambda: not member_1().ready, 15,
                      'member-3 seen unreachable')
        status = member_1()
        self.assertEqual('cluster view lists %s as unreachable' % lost,
                         status.reason)

    def test_member_that_cannot_be_ready_signals_failure(self):
        # A seed nobody answers for: the member gives up and says why.
        # member-3 runs (with a long timeout, so it does not signal), so
        # member-1 sees a majority and RESTCONF answers: its reason is
        # the cluster view.
        absent = self.prefix + '250'
        ips = [self.ips[0], absent, self.ips[2]]
        self.start_member(3, ips, timeout=120)
        container = self.start_member(1, ips, timeout=3)
        self.wait_for(lambda: self.signals, 30, 'a signal')
        (signal,) = self.signals
        self.assertEqual('FAILURE', signal['body']['status'])
        self.assertEqual('member-1', signal['body']['id'])
        self.assertEqual('not ready after 3 s: cluster view lists %s as '
                         'unreachable' % absent, signal['body']['reason'])
        logs = container.logs().decode()
        self.assertIn('odl-standin: NOT OpenDaylight', logs)
        self.assertIn('member-1 not ready after 3 s', logs)

    def test_member_in_a_minority_is_not_ready(self):
        # Like a real member whose shards have no leader: alone among
        # three seeds, RESTCONF's readiness URL does not answer 200.
        ips = [self.ips[0], self.prefix + '250', self.prefix + '251']
        self.start_member(1, ips, timeout=120)
        status = odl_readiness.probe_member(
            'member-1', ips[0], ips, 8181, 'admin', 'admin')
        self.wait_for(lambda: odl_readiness.probe_member(
            'member-1', ips[0], ips, 8181, 'admin', 'admin').reason ==
            'HTTP 404 from RESTCONF', 15, 'RESTCONF 404 in a minority')
        self.assertFalse(status.ready)

    def test_nothing_left(self):
        # What the other tests rely on: their cleanups find everything.
        self.start_member(1, self.ips[:1])
        self.wait_for(lambda: self.signals, 30, 'a signal')
        self.doCleanups()
        self.assertEqual([], self.docker.containers.list(
            all=True, filters={'label': LABEL + '=odl-standin'}))
        self.assertEqual([], self.docker.networks.list(
            filters={'label': LABEL + '=odl-standin'}))
        self.assertNotIn('nova-docker-test=odl-standin',
                         ovs_vsctl('list', 'Manager'))
