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

"""The northbound VIP image in front of three ODL stand-in members.

tools/build-haproxy-image.sh builds the VIP image (Debian's haproxy and
what it links), tools/build-odl-standin-image.sh the members; all run on
a docker network of this test, with the environment OS::ODL::Cluster gives
them (odl_member_stack's names). Requests go to the VIP from the host, as
networking-odl's would: RESTCONF and the Neutron northbound path. A member
is killed, or stopped with its container left running, or never ready;
the VIP must keep answering from the others and send it nothing.
"""

import base64
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import docker
import testtools

from heat_plugins import odl_member_stack as stack
from heat_plugins import odl_readiness
from tests.functional import test_odl_entrypoint as entrypoint_tests
from tests.functional import test_odl_standin as standin_tests

REPO = entrypoint_tests.REPO
BUILD_VIP = REPO + '/tools/build-haproxy-image.sh'
PREFIX = 'nd-odl-vip-'
LABEL = 'nova-docker.test'
VIP_TAG = 'nd-odl-vip-test/haproxy:latest'
MEMBER_TAG = 'nd-odl-vip-test/odl-standin:latest'
AUTH = 'Basic ' + base64.b64encode(b'admin:admin').decode()
NEUTRON_PATH = '/controller/nb/v2/neutron/networks'


def build(script, tag):
    out = subprocess.run(['bash', script, tag], check=True,
                         capture_output=True, text=True).stdout
    return out.strip()


class VipTest(testtools.TestCase):

    def setUp(self):
        super(VipTest, self).setUp()
        self.docker = docker.from_env(timeout=60)
        self.assertRegex(build(standin_tests.BUILD, MEMBER_TAG),
                         r'^(built|present) %s$' % MEMBER_TAG)
        self.addCleanup(self._remove_image, MEMBER_TAG)
        started = time.monotonic()
        self.assertRegex(build(BUILD_VIP, VIP_TAG),
                         r'^(built|present) %s$' % VIP_TAG)
        print('VIP image build: %.1f s' % (time.monotonic() - started))
        self.addCleanup(self._remove_image, VIP_TAG)
        self.network, self.prefix = self._make_network()
        self.ips = [self.prefix + str(n) for n in (11, 12, 13)]
        self.vip = self.prefix + '10'

    def _make_network(self):
        return standin_tests.make_network(self, self.docker, PREFIX, 214,
                                          'odl-vip')

    def _remove_image(self, tag):
        try:
            self.docker.images.remove(tag)
        except docker.errors.APIError:
            pass

    def _run(self, image, ip, env):
        container = self.docker.containers.create(
            image, name=PREFIX + uuid.uuid4().hex[:12], environment=env,
            labels={LABEL: 'odl-vip'}, network=self.network.name)
        self.addCleanup(container.remove, force=True)
        self.network.disconnect(container)
        self.network.connect(container, ipv4_address=ip)
        container.start()
        return container

    def start_member(self, index, ips, ip=None):
        env = entrypoint_tests.member_env(index, ips)
        del env['ODL_HOME']  # the image's own
        env.update({stack.ENV_RESTCONF_PORT: '8181',
                    stack.ENV_OVSDB_PORT: '6640'})
        return self._run(MEMBER_TAG, ip or ips[index - 1], env)

    def start_vip(self, members):
        # What OS::ODL::Cluster puts in the VIP server's metadata.
        return self._run(VIP_TAG, self.vip, {
            stack.ENV_VIP_MEMBERS: ','.join(members),
            stack.ENV_RESTCONF_PORT: '8181',
            stack.ENV_VIP_PORT: '8181',
            stack.ENV_VIP_CHECK_PATH: odl_readiness.RESTCONF_READY_PATH,
            stack.ENV_VIP_CHECK_AUTH: AUTH})

    def get(self, path, host=None, port=8181, timeout=3):
        """(status, body) of GET http://host:port/path with admin/admin."""
        request = urllib.request.Request(
            'http://%s:%d%s' % (host or self.vip, port, path),
            headers={'Authorization': AUTH})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def backend_states(self):
        """HAProxy's view: {member-<n>: 'UP'|'DOWN'|...} from its stats."""
        try:
            _status, csv = self.get('/stats;csv', port=stack.VIP_STATS_PORT)
        except OSError:
            return {}
        states = {}
        for line in csv.splitlines():
            fields = line.split(',')
            if len(fields) > 17 and fields[0] == 'odl_members' and \
                    fields[1].startswith('member-'):
                states[fields[1]] = fields[17]
        return states

    def wait_for(self, predicate, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.2)
        self.fail('%s not within %s s' % (what, timeout))

    def answering_members(self, count):
        """Member names of ``count`` requests through the VIP."""
        names = []
        for _ in range(count):
            status, body = self.get('/standin/member')
            self.assertEqual(200, status, body)
            names.append(body.split()[0])
        return names

    def start_cluster(self):
        members = [self.start_member(i, self.ips) for i in (1, 2, 3)]
        vip = self.start_vip(self.ips)
        self.wait_for(lambda: self.backend_states() == {
            'member-1': 'UP', 'member-2': 'UP', 'member-3': 'UP'},
            40, 'the VIP seeing the three members UP')
        return members, vip

    def test_vip_fronts_restconf_and_neutron_northbound(self):
        self.start_cluster()
        status, body = self.get(odl_readiness.RESTCONF_READY_PATH)
        self.assertEqual(200, status)
        self.assertIn('netvirt:1', body)
        self.assertEqual((200, '{"networks":[]}\n'), self.get(NEUTRON_PATH))
        self.assertEqual({'member-1', 'member-2', 'member-3'},
                         set(self.answering_members(9)))

    def test_killed_member_gets_no_request_and_vip_keeps_answering(self):
        members, _vip = self.start_cluster()
        failures = []
        answers = []
        stop = threading.Event()

        def client():
            while not stop.is_set():
                at = time.monotonic()
                try:
                    status, body = self.get(NEUTRON_PATH, timeout=5)
                except OSError as err:
                    status, body = None, str(err)
                if status == 200:
                    answers.append(at)
                else:
                    failures.append((at, status, body))
                time.sleep(0.05)

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        self.addCleanup(stop.set)
        time.sleep(1)
        killed_at = time.monotonic()
        members[2].kill()
        self.wait_for(lambda: self.backend_states().get('member-3') ==
                      'DOWN', 15, 'the VIP taking member-3 out')
        noticed = time.monotonic() - killed_at
        time.sleep(3)
        stop.set()
        thread.join(10)
        gaps = [b - a for a, b in zip(answers, answers[1:])
                if a >= killed_at - 1]
        print('member-3 killed: VIP marked it DOWN after %.1f s; %d '
              'requests answered, %d failed; longest gap between two '
              'answers %.2f s' % (noticed, len(answers), len(failures),
                                  max(gaps)))
        self.assertEqual([], failures)
        self.assertLess(max(gaps), 5.0)
        self.assertNotIn('member-3', self.answering_members(8))
        # The survivors see member-3 unreachable and are still ready (a
        # majority of the members), so the VIP keeps them both.
        for name, ip in (('member-1', self.ips[0]), ('member-2',
                                                     self.ips[1])):
            status = odl_readiness.probe_member(
                name, ip, self.ips, 8181, 'admin', 'admin')
            self.assertEqual('cluster view lists %s as unreachable'
                             % self.ips[2], status.reason)
            self.assertEqual(200, self.get(
                odl_readiness.RESTCONF_READY_PATH, host=ip)[0])

    def test_stopped_member_leaves_and_returns(self):
        members, _vip = self.start_cluster()
        out = members[1].exec_run(['/opt/opendaylight/bin/karaf', 'stop'])
        self.assertEqual(0, out.exit_code, out.output)
        self.wait_for(lambda: self.backend_states().get('member-2') ==
                      'DOWN', 15, 'the VIP taking the stopped member out')
        self.assertEqual('running', self.docker.containers.get(
            members[1].id).status)
        self.assertNotIn('member-2', self.answering_members(8))
        self.wait_for(lambda: not odl_readiness.probe_member(
            'member-1', self.ips[0], self.ips, 8181, 'admin',
            'admin').ready, 15, 'member-1 seeing member-2 unreachable')
        out = members[1].exec_run(['/opt/opendaylight/bin/karaf', 'start'])
        self.assertEqual(0, out.exit_code, out.output)
        self.wait_for(lambda: self.backend_states().get('member-2') == 'UP',
                      15, 'the VIP taking member-2 back')
        self.assertIn('member-2', self.answering_members(9))

    def test_member_that_is_not_ready_gets_no_request(self):
        for i in (1, 2, 3):
            self.start_member(i, self.ips)
        # Alive, answering HTTP, but in a minority of its own cluster (two
        # seeds nobody answers for): RESTCONF readiness 404.
        lonely = self.prefix + '14'
        self.start_member(1, [lonely, self.prefix + '250',
                              self.prefix + '251'])
        self.start_vip(self.ips + [lonely])
        self.wait_for(lambda: self.backend_states() == {
            'member-1': 'UP', 'member-2': 'UP', 'member-3': 'UP',
            'member-4': 'DOWN'}, 40, 'the three UP and the outsider DOWN')
        self.assertEqual(404, self.get(odl_readiness.RESTCONF_READY_PATH,
                                       host=lonely)[0])
        self.assertEqual((200, 'member-1 %s\n' % lonely),
                         self.get('/standin/member', host=lonely))
        answers = {self.get('/standin/member')[1] for _ in range(12)}
        self.assertEqual({'member-%d %s\n' % (i, ip) for i, ip in
                          enumerate(self.ips, start=1)}, answers)

    def test_vip_refuses_an_empty_member_list(self):
        container = self._run(VIP_TAG, self.vip, {
            stack.ENV_VIP_MEMBERS: ''})
        self.assertEqual(64, container.wait(timeout=30)['StatusCode'])
        self.assertIn('ODL_VIP_MEMBERS is empty',
                      container.logs().decode())

    def test_nothing_left(self):
        self.start_vip(self.ips)
        self.doCleanups()
        self.assertEqual([], self.docker.containers.list(
            all=True, filters={'label': LABEL + '=odl-vip'}))
        self.assertEqual([], self.docker.networks.list(
            filters={'label': LABEL + '=odl-vip'}))
