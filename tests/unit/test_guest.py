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

"""Guest set-up, console and diagnostics without root or a daemon.

The config-drive tree on disk, the user-data runner run by a real shell,
real TCP console sessions bridged to the in-memory engine's tty, and the
diagnostics read from /proc-format files.
"""

import base64
import os
import socket
import subprocess
import threading

import fixtures
from nova import exception as nova_exception
from nova.objects import diagnostics as diagnostics_obj

from novadocker.virt.docker import configdrive
from novadocker.virt.docker import console
from novadocker.virt.docker import diagnostics
from novadocker.virt.docker import exception
from novadocker.virt.docker import spec
from tests.unit import test_driver

NET_DEV = """Inter-|   Receive                            |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes \
packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100 \
      2    0    0    0     0       0          0
  eth0:    4242      42    1    2    0     0          0         0     2121 \
     21    3    4    0     0       0          0
"""


class _FakeMetadata:
    """Stands in for Nova's InstanceMetadata (it needs a database)."""

    fail = False

    def __init__(self, instance, content=None, extra_md=None,
                 network_info=None):
        self.instance = instance
        self.extra_md = extra_md

    def metadata_for_config_drive(self):
        yield 'openstack/latest/meta_data.json', '{"uuid": "%s"}' % (
            self.instance.uuid)
        if self.fail:
            raise ValueError('metadata broke half way')
        yield 'openstack/latest/user_data', configdrive.user_data_of(
            self.instance)
        yield 'ec2/latest/meta-data.json', b'{}'


def guest(config_drive='', user_data=None, **kwargs):
    instance = test_driver.make_instance(**kwargs)
    instance.config_drive = config_drive
    instance.launched_at = None
    instance.user_data = user_data and base64.b64encode(user_data).decode()
    return instance


class GuestDriverTestBase(test_driver.DriverTestBase):

    def setUp(self):
        super().setUp()
        self.drives = self.useFixture(fixtures.TempDir()).path + '/drives'
        self.flags(config_drive_dir=self.drives, group='docker')
        self.flags(state_path=self.useFixture(fixtures.TempDir()).path)
        _FakeMetadata.fail = False
        self.useFixture(fixtures.MonkeyPatch(
            'nova.api.metadata.base.InstanceMetadata', _FakeMetadata))

    def spawn(self, instance):
        self.driver.spawn(None, instance, None, [], 'secret', {}, [])
        return instance


class ConfigDriveTestCase(GuestDriverTestBase):

    def workload_config(self, instance):
        return self.engine._get(spec.workload_name(instance))['Config']

    def test_tree_mounted_read_only_and_removed_with_the_server(self):
        instance = self.spawn(guest(config_drive='True', user_data=b'hi'))
        where = os.path.join(self.drives, instance.uuid)
        with open(where + '/openstack/latest/user_data') as f:
            self.assertEqual('hi', f.read())
        self.assertEqual(0o755, os.stat(where).st_mode & 0o777)
        self.assertEqual(
            {where: {'bind': '/config-drive', 'mode': 'ro'}},
            self.workload_config(instance)['volumes'])
        self.driver.destroy(None, instance, [])
        self.assertFalse(os.path.exists(where))

    def test_forced_drive_is_recorded_on_the_instance(self):
        self.flags(force_config_drive=True)
        instance = self.spawn(guest())
        self.assertTrue(instance.config_drive)
        self.assertIn('volumes', self.workload_config(instance))

    def test_no_drive_no_mount(self):
        instance = self.spawn(guest(user_data=b'not a script'))
        self.assertNotIn('volumes', self.workload_config(instance))
        self.assertFalse(os.path.exists(self.drives + '/' + instance.uuid))

    def test_half_written_tree_leaves_nothing(self):
        _FakeMetadata.fail = True
        instance = guest(config_drive='True')
        self.assertRaises(exception.ConfigDriveFailed, self.spawn, instance)
        self.assertEqual([], os.listdir(self.drives))
        self.assertEqual({}, self.engine.containers)

    def test_image_volume_over_the_mount_is_refused_cleanly(self):
        self.engine.image_volumes[test_driver.BUSYBOX] = ['/config-drive']
        instance = guest(config_drive='True')
        e = self.assertRaises(exception.ConfigDriveUnmountable, self.spawn,
                              instance)
        self.assertIn('VOLUME /config-drive', str(e))
        self.assertEqual({}, self.engine.containers)
        self.assertEqual([], os.listdir(self.drives))

    def test_orphan_trees_go_at_start_up(self):
        kept = self.spawn(guest(config_drive='True'))
        self.nova_instances[:] = [kept]
        os.makedirs(os.path.join(self.drives,
                                 '11111111-2222-3333-4444-555555555555'))
        os.makedirs(os.path.join(self.drives, 'not-a-server'))
        self.driver.init_host('h1')
        self.assertEqual(sorted([kept.uuid, 'not-a-server']),
                         sorted(os.listdir(self.drives)))


class UserDataTestCase(GuestDriverTestBase):

    SCRIPT = b'#!/bin/sh\necho from-user-data\n'

    def test_script_runs_before_the_images_command(self):
        self.engine.image_entrypoints[test_driver.BUSYBOX] = ['/init']
        instance = self.spawn(guest(user_data=self.SCRIPT))
        config = self.engine._get(spec.workload_name(instance))[
            'Config']
        self.assertEqual(['/bin/sh', '-c'], config['entrypoint'][:2])
        # The image's own entrypoint and command follow, to be exec'd.
        self.assertEqual(['/init', '/bin/sh'], config['command'])
        self.assertTrue(instance.config_drive)

    def test_expose_only(self):
        self.flags(user_data_scripts='expose', group='docker')
        instance = self.spawn(guest(user_data=self.SCRIPT))
        config = self.engine._get(spec.workload_name(instance))[
            'Config']
        self.assertNotIn('entrypoint', config)
        self.assertNotIn('volumes', config)

    def test_runner_runs_the_script_once_then_execs_the_command(self):
        # The runner as the workload's shell runs it, against a directory
        # standing in for the mount and the container's filesystem.
        root = self.useFixture(fixtures.TempDir()).path
        mount = root + '/config-drive'
        os.makedirs(mount + '/openstack/latest')
        with open(mount + '/openstack/latest/user_data', 'wb') as f:
            f.write(b'#!/bin/sh\necho "script $$" >> %s/effect\n'
                    % root.encode())
        self.flags(config_drive_mount=mount, group='docker')
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.configdrive.RUNNER_DIR', root + '/state'))
        config = configdrive.run_user_data_first(
            {}, None, ['sh', '-c', 'echo "command $0"', 'pid1'])

        def boot():
            return subprocess.run(config['entrypoint'] + config['command'],
                                  capture_output=True, text=True,
                                  check=True).stdout

        first = boot()
        self.assertIn('user-data script exited with status 0', first)
        self.assertTrue(first.endswith('command pid1\n'), first)
        second = boot()
        self.assertEqual('command pid1\n', second)
        with open(root + '/effect') as f:
            self.assertEqual(1, len(f.readlines()))

    def test_image_without_command_is_refused(self):
        self.assertRaises(exception.UserDataScriptUnrunnable,
                          configdrive.run_user_data_first, {}, None, None)


class OwnNameTestCase(test_driver.DriverTestBase):

    def test_hostname_has_a_hosts_line(self):
        instance = guest()
        self.driver.spawn(None, instance, None, [], None, {}, [])
        sandbox = self.engine._get(spec.sandbox_name(instance))
        self.assertEqual({'web-1': '127.0.1.1'},
                         sandbox['Config']['extra_hosts'])


class DiagnosticsTestCase(test_driver.DriverTestBase):

    def setUp(self):
        super().setUp()
        proc = self.useFixture(fixtures.TempDir()).path
        os.makedirs(proc + '/1/net')
        with open(proc + '/1/net/dev', 'w') as f:
            f.write(NET_DEV)
        os.makedirs(proc + '/1/sys/eth0')
        with open(proc + '/1/sys/eth0/address', 'w') as f:
            f.write('fa:16:3e:00:00:01\n')
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.diagnostics._NET_DEV',
            proc + '/%d/net/dev'))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.diagnostics._MAC',
            proc + '/%d/sys/%s/address'))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.server.Server.sandbox_pid',
            lambda server, pair=None: 1))

    def test_counters_cpu_and_memory(self):
        instance = guest()
        instance.config_drive = ''
        self.driver.spawn(None, instance, None, [], None, {}, [])
        self.engine.stats[spec.workload_name(instance)] = {
            'cpu_stats': {'cpu_usage': {'total_usage': 3 * 10 ** 9},
                          'system_cpu_usage': 200 * 10 ** 9,
                          'online_cpus': 2},
            'precpu_stats': {'cpu_usage': {'total_usage': 2 * 10 ** 9},
                             'system_cpu_usage': 180 * 10 ** 9},
            'memory_stats': {'usage': 60 * 1024 * 1024,
                             'stats': {'inactive_file': 10 * 1024 * 1024}},
        }
        diags = self.driver.get_instance_diagnostics(instance)
        # What Nova's RPC and API would send: it must serialise.
        diags = diagnostics_obj.Diagnostics.obj_from_primitive(
            diags.obj_to_primitive())
        self.assertEqual('running', diags.state)
        self.assertEqual('docker', diags.hypervisor)
        self.assertEqual(3 * 10 ** 9, diags.cpu_details[0].time)
        self.assertEqual(10, diags.cpu_details[0].utilisation)
        self.assertEqual((128, 50), (diags.memory_details.maximum,
                                     diags.memory_details.used))
        self.assertEqual(1, diags.num_nics)
        nic = diags.nic_details[0]
        self.assertEqual('fa:16:3e:00:00:01', nic.mac_address)
        self.assertEqual((4242, 42, 1, 2), (nic.rx_octets, nic.rx_packets,
                                            nic.rx_errors, nic.rx_drop))
        self.assertEqual((2121, 21, 3, 4), (nic.tx_octets, nic.tx_packets,
                                            nic.tx_errors, nic.tx_drop))
        legacy = self.driver.get_diagnostics(instance)
        self.assertEqual(4242, legacy['eth0_rx'])
        self.assertEqual(21, legacy['eth0_tx_packets'])
        self.assertEqual(128 * 1024, legacy['memory'])

    def test_stopped_server_has_figures_without_a_sample(self):
        instance = guest()
        self.driver.spawn(None, instance, None, [], None, {}, [],
                          power_on=False)
        diags = self.driver.get_instance_diagnostics(instance)
        self.assertEqual('shutdown', diags.state)
        self.assertIsNone(diags.uptime)
        self.assertEqual(128, diags.memory_details.maximum)

    def test_uptime(self):
        now = diagnostics.datetime.datetime(2026, 12, 4, 12, 0, 30)
        self.assertEqual(30, diagnostics.uptime_of(
            {'Running': True, 'StartedAt': '2026-12-04T12:00:00.123456789Z'},
            now))
        self.assertIsNone(diagnostics.uptime_of(
            {'Running': False, 'StartedAt': '2026-12-04T12:00:00Z'}, now))


class ConsoleTestCase(test_driver.DriverTestBase):

    def setUp(self):
        super().setUp()
        self.flags(state_path=self.useFixture(fixtures.TempDir()).path)
        self.flags(enabled=True, port_range='%d:%d' % self.free_range(),
                   proxyclient_address='127.0.0.1', group='serial_console')
        self.flags(serial_console_idle_timeout=0, group='docker')
        self.instance = guest()
        self.driver.spawn(None, self.instance, None, [], None, {}, [])
        self.addCleanup(self.driver.cleanup_host, 'h1')

    @staticmethod
    def free_range():
        # A range the kernel just showed to be free.
        probe = socket.socket()
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
        probe.close()
        return port, port + 3

    def connect(self, endpoint):
        conn = socket.create_connection((endpoint.host, endpoint.port), 5)
        self.addCleanup(conn.close)
        return conn

    def tty(self):
        for _ in range(100):
            found = self.engine.ttys.get(
                spec.workload_name(self.instance))
            if found is not None:
                found.settimeout(5)
                return found
            # time.sleep is the base class's fake.
            threading.Event().wait(0.05)
        self.fail('the console session never attached')

    def test_round_trip_one_session_and_stable_port(self):
        endpoint = self.driver.get_serial_console(None, self.instance)
        self.assertEqual('127.0.0.1', endpoint.host)
        conn = self.connect(endpoint)
        conn.sendall(b'echo hi\r')
        tty = self.tty()
        self.assertEqual(b'echo hi\r', tty.recv(100))
        tty.sendall(b'hi\r\n$ ')
        self.assertEqual(b'hi\r\n$ ', conn.recv(100))

        second = self.connect(endpoint)
        self.assertIn(b'only one at a time', second.recv(200))
        self.assertEqual(b'', second.recv(10))

        # Nova asks again before connecting: same port.
        self.assertEqual(endpoint.port, self.driver.get_serial_console(
            None, self.instance).port)
        # A stop closes it; the next request reopens on the same port.
        self.driver.power_off(self.instance)
        self.assertRaises(OSError, socket.create_connection,
                          (endpoint.host, endpoint.port), 2)
        self.assertRaises(nova_exception.InstanceNotReady,
                          self.driver.get_serial_console, None,
                          self.instance)
        self.driver.power_on(None, self.instance, [])
        # A new service (a nova-compute restart) keeps the port.
        self.driver.cleanup_host('h1')
        # It listens again at once, for a URL handed out before.
        self.nova_instances[:] = [self.instance]
        again = test_driver.driver.DockerDriver(test_driver._VirtAPI())
        again.init_host('h1')
        self.addCleanup(again.cleanup_host, 'h1')
        socket.create_connection((endpoint.host, endpoint.port), 2).close()
        self.assertEqual(endpoint.port, again.get_serial_console(
            None, self.instance).port)

    def test_idle_session_is_closed(self):
        self.flags(serial_console_idle_timeout=1, group='docker')
        endpoint = self.driver.get_serial_console(None, self.instance)
        conn = self.connect(endpoint)
        self.tty()
        self.assertIn(b'idle', conn.recv(200))
        self.assertEqual(b'', conn.recv(10))

    def test_delete_leaves_nothing_listening(self):
        endpoint = self.driver.get_serial_console(None, self.instance)
        self.driver.destroy(None, self.instance, [])
        self.assertRaises(OSError, socket.create_connection,
                          (endpoint.host, endpoint.port), 2)
        self.assertIsNone(console.recorded_port(self.instance.uuid))

    def test_disabled_or_wildcard_is_unavailable(self):
        self.flags(proxyclient_address='0.0.0.0', group='serial_console')
        self.assertRaises(nova_exception.ConsoleTypeUnavailable,
                          self.driver.get_serial_console, None,
                          self.instance)
        self.flags(enabled=False, group='serial_console')
        self.assertRaises(nova_exception.ConsoleTypeUnavailable,
                          self.driver.get_serial_console, None,
                          self.instance)

    def test_no_tty_no_console(self):
        instance = guest(system_metadata={'image_docker_tty': 'false'})
        self.driver.spawn(None, instance, None, [], None, {}, [])
        self.assertRaises(nova_exception.ConsoleTypeUnavailable,
                          self.driver.get_serial_console, None, instance)

    def test_only_the_proxy_hosts_may_connect(self):
        self.flags(serial_console_proxy_addresses=['192.0.2.0/24'],
                   group='docker')
        endpoint = self.driver.get_serial_console(None, self.instance)
        conn = self.connect(endpoint)
        conn.sendall(b'echo hi\r')
        # Closed without a byte (reset: our bytes were never read), and
        # never attached to the tty.
        try:
            self.assertEqual(b'', conn.recv(100))
        except ConnectionResetError:
            pass
        self.assertNotIn(spec.workload_name(self.instance),
                         self.engine.ttys)
        self.flags(serial_console_proxy_addresses=['127.0.0.1'],
                   group='docker')
        self.connect(endpoint).sendall(b'x')
        self.assertEqual(b'x', self.tty().recv(10))
