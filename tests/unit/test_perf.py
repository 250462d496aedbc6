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

"""What the driver costs: engine requests, forks and waits it must not make.

The engine API version is negotiated once a process (against a small HTTP
engine on a unix socket: real docker SDK, real requests); the periodic work
makes a constant number of engine calls whatever the number of servers;
the bridge check forks no ovs-vsctl once os-vif's OVSDB replica knows the
bridge; a soft reboot does not wait for a PID 1 that cannot act on SIGTERM.
"""

import collections
import concurrent.futures
import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time

import fixtures
from nova.compute import power_state
from nova.compute import provider_tree
from nova import test

from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import exception
from novadocker.virt.docker import server
from tests.unit import fake_engine
from tests.unit import test_driver


class _EngineHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        path = self.path.split('?')[0]
        self.server.requests[path] += 1
        if path == '/version':
            body = {'ApiVersion': '1.41', 'MinAPIVersion': '1.12',
                    'Version': '20.10.24'}
        elif path.endswith('/containers/json'):
            body = []
        else:
            body = 'OK'
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _UnixEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path):
        self.requests = collections.Counter()
        super().__init__(path, _EngineHandler)

    def get_request(self):
        sock, _addr = super().get_request()
        return sock, ('engine-client', 0)


class VersionNegotiationTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'e.s')
        self.engine = _UnixEngine(path)
        threading.Thread(target=self.engine.serve_forever,
                         daemon=True).start()
        self.addCleanup(self.engine.server_close)
        self.addCleanup(self.engine.shutdown)
        self.flags(api_url='unix://' + path, api_version='auto',
                   group='docker')
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.client._negotiated', {}))

    def _list_three_times(self):
        for _ in range(3):
            with docker_client.docker_client('list') as client:
                client.api.containers(all=True)

    def test_auto_version_is_asked_once_per_process(self):
        self._list_three_times()
        self.assertEqual(1, self.engine.requests['/version'])
        self.assertEqual(3, self.engine.requests['/v1.41/containers/json'])

    def test_a_configured_version_is_never_asked(self):
        self.flags(api_version='1.40', group='docker')
        self._list_three_times()
        self.assertEqual(0, self.engine.requests['/version'])
        self.assertEqual(3, self.engine.requests['/v1.40/containers/json'])

    def test_an_unreachable_engine_is_asked_again(self):
        self._list_three_times()
        self.engine.shutdown()
        self.engine.server_close()
        os.unlink(self.engine.server_address)
        self.assertRaises(exception.DockerUnreachable,
                          self._list_three_times)
        self.assertEqual({}, docker_client._negotiated)


class PeriodicEngineCallsTestCase(test_driver.DriverTestBase):
    """One period of Nova's periodic tasks, as Nova calls the driver."""

    def setUp(self):
        super().setUp()
        self.calls = collections.Counter()
        check = fake_engine.FakeEngine._check

        def counted(engine, op, name=None):
            # Every request to the fake engine passes its fault check once.
            self.calls[op] += 1
            return check(engine, op, name)
        self.useFixture(fixtures.MonkeyPatch(
            'tests.unit.fake_engine.FakeEngine._check', counted))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.objects.fields.Architecture.from_host',
            lambda cls: 'x86_64'))
        self.flags(engine_watch_interval=10, group='docker')

    def _period(self):
        """Engine calls and states of one pass of every periodic task."""
        self.calls.clear()
        # _sync_power_states: a count, then get_info of each server from
        # Nova's thread pool.
        self.driver.get_num_instances()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            states = list(pool.map(
                lambda i: self.driver.get_info(i).state, self.nova_instances))
        # update_available_resource, then the inventory.
        self.driver.get_available_resource('h1')
        tree = provider_tree.ProviderTree()
        tree.new_root('h1', 'a5c4e4c8-0f7c-4a62-9d5b-5d1a3e4a2b10')
        self.driver.update_provider_tree(tree, 'h1')
        # _run_image_cache_manager_pass.
        self.driver.manage_image_cache(None, self.nova_instances)
        # The engine watch thread, one round.
        rounds = iter([False, True])
        self.driver._watch_stop = type(
            'OneRound', (), {'wait': lambda s, t: next(rounds)})()
        self.driver._watch_engine()
        return sum(self.calls.values()), states

    def _grow_to(self, count):
        while len(self.nova_instances) < count:
            instance = test_driver.make_instance()
            instance.image_ref = 'f5a3b4f0-6d7e-4e44-9d4b-3c0f1c2e7a11'
            self.spawn(instance, network_info=[])

    def test_calls_per_period_do_not_grow_with_servers(self):
        per_count = {}
        for count in (0, 25, 100):
            self._grow_to(count)
            # The driver's own changes (spawns) dropped the listing: the
            # period lists afresh.
            calls, states = self._period()
            per_count[count] = calls
            self.assertEqual([power_state.RUNNING] * count, states)
        self.assertEqual(per_count[0], per_count[25])
        self.assertEqual(per_count[0], per_count[100])
        # One listing of the host, info for the root dir (resources,
        # inventory), the version, and the image cache's two listings.
        self.assertEqual({'list': 2, 'info': 2, 'version': 1, 'images': 1},
                         dict(self.calls))

    def test_the_driver_s_own_changes_are_seen_at_once(self):
        a = self.spawn(network_info=[])
        b = self.spawn(network_info=[])
        self.assertEqual(power_state.RUNNING, self.driver.get_info(a).state)
        self.driver.power_off(a)
        self.assertEqual(power_state.SHUTDOWN,
                         self.driver.get_info(a).state)
        self.assertEqual(power_state.RUNNING, self.driver.get_info(b).state)
        self.driver.destroy(None, b, [])
        self.assertEqual([a.uuid], self.driver.list_instance_uuids())

    def test_changes_behind_nova_s_back_show_after_the_max_age(self):
        a = self.spawn()
        self.assertEqual(power_state.RUNNING, self.driver.get_info(a).state)
        self.engine.stop('nova-' + a.uuid)
        # Within listing_max_age the sync may still see it running; Nova's
        # exact checks (use_cache=False) ask the engine.
        self.assertEqual(power_state.RUNNING, self.driver.get_info(a).state)
        self.assertEqual(power_state.SHUTDOWN,
                         self.driver.get_info(a, use_cache=False).state)
        later = time.monotonic() + 11
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.engine.time.monotonic',
            lambda: later))
        self.assertEqual(power_state.SHUTDOWN,
                         self.driver.get_info(a).state)

    def test_max_age_zero_asks_every_time(self):
        self.flags(listing_max_age=0, group='docker')
        self._grow_to(3)
        self.calls.clear()
        for instance in self.nova_instances:
            self.driver.get_info(instance)
        self.assertEqual(3, self.calls['list'])


class SoftRebootTestCase(test_driver.DriverTestBase):
    """A soft reboot waits reboot_timeout only when SIGTERM can act."""

    def _status_of_workload(self, instance, sig_cgt):
        workload = [c for c in self.engine.containers.values()
                    if c['Name'] == 'nova-' + instance.uuid][0]
        pid = workload['State']['Pid']
        os.makedirs(os.path.join(self.proc, str(pid)))
        with open(os.path.join(self.proc, str(pid), 'status'), 'w') as f:
            f.write('Name:\tsh\nPid:\t1\nSigBlk:\t0000000000000000\n'
                    'SigIgn:\t0000000000000004\nSigCgt:\t%s\n' % sig_cgt)

    def test_pid_1_without_a_sigterm_handler_goes_the_hard_way(self):
        inst = self.spawn()
        # busybox sh as PID 1: SIGINT, SIGCHLD, SIGWINCH caught, no SIGTERM.
        self._status_of_workload(inst, '0000000000010002')
        self.engine.events.clear()
        self.driver.reboot(None, inst, test_driver.PORTS, 'SOFT')
        # Stopped and started with the wiring redone, not restarted in
        # place after reboot_timeout.
        self.assertEqual([
            ('stop', 'nova-' + inst.uuid),
            ('stop', 'nova-%s-sandbox' % inst.uuid),
            ('unplug', inst.uuid),
            ('start', 'nova-%s-sandbox' % inst.uuid),
            ('plug', inst.uuid),
            ('start', 'nova-' + inst.uuid)], self.engine.events)
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(inst))

    def test_a_sigterm_handler_gets_the_soft_restart(self):
        inst = self.spawn()
        self._status_of_workload(inst, '0000000000004000')
        self.engine.events.clear()
        self.driver.reboot(None, inst, test_driver.PORTS, 'SOFT')
        self.assertEqual([('stop', 'nova-' + inst.uuid),
                          ('start', 'nova-' + inst.uuid)], self.engine.events)

    def test_stop_waits_only_for_a_workload_sigterm_can_stop(self):
        ignores, honours, unknown = self.spawn(), self.spawn(), self.spawn()
        self._status_of_workload(ignores, '0000000000010002')
        self._status_of_workload(honours, '0000000000004000')
        for instance in (ignores, honours, unknown):
            self.driver.power_off(instance, timeout=30)
        self.assertEqual(
            {'nova-' + ignores.uuid: 0, 'nova-' + honours.uuid: 30,
             'nova-' + unknown.uuid: 30},
            {name: t for name, t in self.engine.stop_timeouts.items()
             if not name.endswith('-sandbox')})
        self.assertEqual({'sandbox': 'exited', 'workload': 'exited'},
                         self.states(ignores))

    def test_the_handler_mask_of_a_real_process(self):
        code = ('import signal, sys, time\n'
                'if sys.argv[1] == "trap":\n'
                '    signal.signal(signal.SIGTERM, lambda *a: None)\n'
                'print("ready", flush=True)\n'
                'time.sleep(30)\n')
        found = {}
        for mode in ('trap', 'plain'):
            proc = subprocess.Popen([sys.executable, '-c', code, mode],
                                    stdout=subprocess.PIPE)
            self.addCleanup(proc.wait)
            self.addCleanup(proc.kill)
            proc.stdout.readline()
            self.useFixture(fixtures.MonkeyPatch(
                'novadocker.virt.docker.server._PROC_STATUS',
                '/proc/%d/status'))
            mask = server.signal_mask(proc.pid, 'SigCgt')
            found[mode] = bool(mask & (1 << (signal.SIGTERM - 1)))
        self.assertEqual({'trap': True, 'plain': False}, found)
