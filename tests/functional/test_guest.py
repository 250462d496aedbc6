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

"""A server a user can configure and reach, seen from inside it.

Config drive, key pairs and user data read from inside the container; the
user-data script's effect; the server's own name; diagnostics whose
counters move with traffic.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization
from nova.tests.functional.api import client as api_client
from oslo_utils import uuidutils

from tools.harness import base
from tools.harness import fixtures as nd_fixtures

MOUNT = '/config-drive'
SCRIPT = ('#!/bin/sh\n'
          'echo "ran as $(id -u) before $0" > /tmp/nd-user-data.out\n'
          'echo nd-user-data-says-hello\n')


DIAGNOSTICS_FIELDS = (
    'state', 'driver', 'hypervisor', 'hypervisor_os', 'uptime',
    'config_drive', 'num_cpus', 'num_nics', 'num_disks', 'memory_details',
    'cpu_details', 'nic_details', 'disk_details')
NIC_FIELDS = ('mac_address', 'rx_octets', 'rx_errors', 'rx_drop',
              'rx_packets', 'rx_rate', 'tx_octets', 'tx_errors', 'tx_drop',
              'tx_packets', 'tx_rate')


def public_key():
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()


class GuestTestBase(base.NetworkedTestBase):

    def setUp(self):
        super().setUp()
        self.drives = os.path.join(self.tmpdir, 'drives')
        self.flags(config_drive_dir=self.drives, group='docker')

    def boot_guest(self, expected='ACTIVE', image_id=None, **extra):
        """Boot on the network with extra server-create fields."""
        server = self._build_server(
            image_uuid=image_id or nd_fixtures.BUSYBOX_IMAGE_ID,
            flavor_id=self.flavor, networks=[{'uuid': self.net}])
        server.update(extra)
        created = self.api.post_server({'server': server})
        self.booted.append(created['id'])
        return self._wait_for_state_change(created, expected)

    def read(self, server, path):
        code, out = self.exec_in(server, 'cat', path)
        self.assertEqual(0, code, '%s: %s' % (path, out))
        return out

    def drive_dir(self, server):
        return os.path.join(self.drives, server['id'])

    def wait_for_file(self, server, path):
        for _ in range(60):
            code, out = self.exec_in(server, 'cat', path)
            if code == 0:
                return out
            time.sleep(0.5)
        self.fail('%s never appeared in server %s' % (path, server['id']))


class ConfigDriveTestCase(GuestTestBase):

    def test_tree_keys_and_user_data_from_inside(self):
        key = public_key()
        self.api.post_keypair({'keypair': {'name': 'nd-key',
                                           'public_key': key}})
        user_data = base64.b64encode(SCRIPT.encode()).decode()
        server = self.boot_guest(config_drive=True, key_name='nd-key',
                                 user_data=user_data)
        self.assertEqual('True', server['config_drive'])

        meta = json.loads(self.read(
            server, MOUNT + '/openstack/latest/meta_data.json'))
        self.assertEqual(server['id'], meta['uuid'])
        self.assertEqual(key, meta['public_keys']['nd-key'].strip())
        self.assertEqual(server['OS-EXT-SRV-ATTR:hostname'],
                         meta['hostname'].split('.')[0])
        self.assertEqual(SCRIPT, self.read(
            server, MOUNT + '/openstack/latest/user_data'))
        network = json.loads(self.read(
            server, MOUNT + '/openstack/latest/network_data.json'))
        port_mac = self.ip_and_mac(server)[1]
        self.assertIn(port_mac, [link['ethernet_mac_address']
                                 for link in network['links']])
        self.read(server, MOUNT + '/openstack/latest/vendor_data2.json')
        ec2 = json.loads(self.read(
            server, MOUNT + '/ec2/latest/meta-data.json'))
        self.assertIn(key, ec2['public-keys']['0']['openssh-key'])

        # Read-only inside, even for the container's root.
        code, out = self.exec_in(server, 'sh', '-c',
                                 'echo x > %s/openstack/latest/user_data'
                                 % MOUNT)
        self.assertNotEqual(0, code, out)
        self.assertIn('Read-only', out)
        # Owned on the host by nova-compute, not by anything in a server.
        stat = os.stat(self.drive_dir(server))
        self.assertEqual(os.geteuid(), stat.st_uid)
        self.assertEqual(0o755, stat.st_mode & 0o777)

        # The script ran once, before the image's command, as root.
        out = self.wait_for_file(server, '/tmp/nd-user-data.out')
        self.assertIn('ran as 0 before', out)
        console = self.console(server, 'exited with status 0')
        self.assertIn('nd-user-data-says-hello', console)
        self.assertEqual(1, console.count('user-data script exited'))
        # The image's command (a shell on the tty) is PID 1 again.
        self.assertEqual('sh', self.read(server, '/proc/1/comm').strip())

        # A reboot keeps the tree and does not run the script again.
        self.api.post_server_action(server['id'],
                                    {'reboot': {'type': 'HARD'}})
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertEqual(server['id'], json.loads(self.read(
            server, MOUNT + '/openstack/latest/meta_data.json'))['uuid'])
        time.sleep(2)
        self.assertEqual(1, self.console(server, 'exited').count(
            'user-data script exited'))

        self._delete_server(server)
        self.assertNoLeftovers(server['id'])
        self.assertFalse(os.path.exists(self.drive_dir(server)))

    def ip_and_mac(self, server):
        port = [p for p in self.neutron._ports.values()
                if p['device_id'] == server['id']][0]
        return port['fixed_ips'][0]['ip_address'], port['mac_address']

    def test_forced_drive_and_none_without_it(self):
        plain = self.boot_guest()
        self.assertEqual('', plain['config_drive'])
        code, out = self.exec_in(plain, 'ls', MOUNT)
        self.assertNotEqual(0, code, out)
        self.assertFalse(os.path.exists(self.drive_dir(plain)))

        self.flags(force_config_drive=True)
        forced = self.boot_guest()
        self.assertEqual('True', forced['config_drive'])
        self.assertEqual(forced['id'], json.loads(self.read(
            forced, MOUNT + '/openstack/latest/meta_data.json'))['uuid'])
        # Each server mounts its own tree only.
        mounts = [m['Source'] for m in self.workload(forced).attrs['Mounts']]
        self.assertEqual([self.drive_dir(forced)], mounts)
        self.assertEqual([], self.workload(plain).attrs['Mounts'])
        self.delete_all(plain, forced)
        self.assertFalse(os.path.exists(self.drive_dir(forced)))

    def test_rebuild_writes_a_new_tree(self):
        first = base64.b64encode(b'first user data').decode()
        server = self.boot_guest(config_drive=True, user_data=first)
        self.assertEqual('first user data', self.read(
            server, MOUNT + '/openstack/latest/user_data'))
        second = base64.b64encode(b'second user data').decode()
        self.api.post_server_action(server['id'], {'rebuild': {
            'imageRef': nd_fixtures.BUSYBOX_IMAGE_ID, 'user_data': second}})
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assertEqual('second user data', self.read(
            server, MOUNT + '/openstack/latest/user_data'))
        self._delete_server(server)
        self.assertFalse(os.path.exists(self.drive_dir(server)))

    def test_unmountable_path_fails_cleanly(self):
        # An image whose /config-drive is a regular file.
        build = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, build)
        with open(os.path.join(build, 'config-drive'), 'w') as f:
            f.write('not a directory\n')
        with open(os.path.join(build, 'Dockerfile'), 'w') as f:
            f.write('FROM %s\nCOPY config-drive /config-drive\n'
                    % nd_fixtures.BUSYBOX_IMAGE)
        tag = 'nd-guest-test/file-at-mount:%s' % uuidutils.generate_uuid()[:8]
        subprocess.run(['docker', 'build', '-q', '-t', tag, build],
                       check=True, capture_output=True)
        self.addCleanup(subprocess.run, ['docker', 'rmi', '-f', tag],
                        capture_output=True)
        data = subprocess.run(['docker', 'save', tag], check=True,
                              capture_output=True).stdout
        image_id = self.glance.add_image(data, 'file-at-mount')
        self.flags(max_attempts=1, group='scheduler')
        server = self.boot_guest(expected='ERROR', image_id=image_id,
                                 config_drive=True)
        fault = server['fault']['message']
        self.assertIn('The config drive cannot be mounted at %s in this '
                      'image: the image has a file there' % MOUNT, fault)
        self.assertNoLeftovers(server['id'])
        self.assertFalse(os.path.exists(self.drive_dir(server)))

    def test_expose_only_does_not_run_the_script(self):
        self.flags(user_data_scripts='expose', group='docker')
        user_data = base64.b64encode(SCRIPT.encode()).decode()
        server = self.boot_guest(user_data=user_data)
        # No config drive asked for, none needed: nothing is mounted.
        self.assertEqual('', server['config_drive'])
        time.sleep(2)
        code, out = self.exec_in(server, 'cat', '/tmp/nd-user-data.out')
        self.assertNotEqual(0, code, out)
        self.delete_all(server)


class OwnNameTestCase(GuestTestBase):

    def test_hostname_resolves_inside(self):
        server = self.boot_guest()
        name = server['OS-EXT-SRV-ATTR:hostname']
        code, out = self.exec_in(server, 'hostname')
        self.assertEqual(name, out.strip())
        code, out = self.exec_in(server, 'ping', '-c', '1', '-W', '2', name)
        self.assertEqual(0, code, out)
        self.assertIn('PING %s (' % name, out)
        self.delete_all(server)


class DiagnosticsTestCase(GuestTestBase):

    def diagnostics(self, server, microversion):
        self.admin_api.microversion = microversion
        try:
            return self.admin_api.api_get(
                '/servers/%s/diagnostics' % server['id']).body
        finally:
            self.admin_api.microversion = 'latest'

    def test_counters_move_with_traffic(self):
        a = self.boot_on_net()
        b = self.boot_on_net()
        before = self.diagnostics(a, '2.48')
        # What upstream tempest's 2.48 schema asks: every field, and a
        # driver name from its five.
        self.assertEqual(sorted(DIAGNOSTICS_FIELDS), sorted(before))
        self.assertIn(before['driver'], ('libvirt', 'xenapi', 'vmwareapi',
                                         'ironic', 'hyperv'))
        self.assertEqual(sorted(NIC_FIELDS),
                         sorted(before['nic_details'][0]))
        self.assertEqual('running', before['state'])
        self.assertEqual('docker', before['hypervisor'])
        self.assertEqual(128, before['memory_details']['maximum'])
        self.assertIsNotNone(before['memory_details']['used'])
        self.assertGreater(before['uptime'], -1)
        self.assertEqual(1, before['num_cpus'])
        self.assertGreater(before['cpu_details'][0]['time'], 0)
        self.assertEqual(1, before['num_nics'])
        port = [p for p in self.neutron._ports.values()
                if p['device_id'] == a['id']][0]
        nic = before['nic_details'][0]
        self.assertEqual(port['mac_address'], nic['mac_address'])

        for _ in range(5):
            self.assertPings(a, b)
        after = self.diagnostics(a, '2.48')['nic_details'][0]
        self.assertGreaterEqual(after['tx_packets'], nic['tx_packets'] + 5)
        self.assertGreaterEqual(after['rx_packets'], nic['rx_packets'] + 5)
        self.assertGreater(after['tx_octets'], nic['tx_octets'])

        legacy = self.diagnostics(a, '2.1')
        self.assertEqual(128 * 1024, legacy['memory'])
        self.assertGreaterEqual(legacy['eth0_tx_packets'],
                                after['tx_packets'])
        self.assertIn('cpu0_time', legacy)
        self.delete_all(a, b)


class SerialConsoleTestCase(GuestTestBase):

    def setUp(self):
        super().setUp()
        self.flags(state_path=self.tmpdir)
        self.flags(enabled=True, port_range='%d:%d' % free_ports(),
                   proxyclient_address='127.0.0.1', group='serial_console')

    def console_url(self, server):
        return self.api.api_post(
            '/servers/%s/remote-consoles' % server['id'],
            {'remote_console': {'protocol': 'serial', 'type': 'serial'}}
        ).body['remote_console']['url']

    def endpoint(self, server):
        """The TCP endpoint nova-serialproxy would be given."""
        self.console_url(server)
        path = os.path.join(self.tmpdir, 'docker-serial-consoles',
                            server['id'])
        with open(path) as f:
            return '127.0.0.1', int(f.read())

    def type_and_read(self, conn, command, expected):
        conn.sendall(command.encode() + b'\r')
        seen = b''
        deadline = time.time() + 20
        while expected.encode() not in seen and time.time() < deadline:
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            seen += chunk
        self.assertIn(expected, seen.decode(errors='replace'))

    def test_round_trip_one_session_restart_and_stop(self):
        server = self.boot_guest()
        url = self.console_url(server)
        self.assertIn('token=', url)
        address = self.endpoint(server)
        conn = socket.create_connection(address, 10)
        conn.settimeout(2)
        self.addCleanup(conn.close)
        # The shell on the workload's tty runs what is typed.
        self.type_and_read(conn, 'echo nd-$((6*7))', 'nd-42')

        second = socket.create_connection(address, 10)
        second.settimeout(10)
        self.assertIn(b'only one at a time', second.recv(300))
        second.close()
        conn.close()

        # A nova-compute restart: the same port listens again at once
        # (a URL handed out before still works), and Nova still names it.
        self.restart_compute_service(self.computes[self.hosts[0]],
                                     keep_hypervisor_state=False)
        conn = socket.create_connection(address, 10)
        self.assertEqual(address, self.endpoint(server))
        conn.settimeout(2)
        self.addCleanup(conn.close)
        self.type_and_read(conn, 'echo again-$((7*7))', 'again-49')
        conn.close()

        # Stopped: nothing listens, and Nova gets a clear conflict.
        self.api.post_server_action(server['id'], {'os-stop': None})
        self._wait_for_server_parameter(
            server, {'status': 'SHUTOFF', 'OS-EXT-STS:task_state': None})
        self.assertRaises(OSError, socket.create_connection, address, 3)
        e = self.assertRaises(api_client.OpenStackApiException,
                              self.console_url, server)
        self.assertEqual(409, e.response.status_code)
        self._delete_server(server)
        self.assertRaises(OSError, socket.create_connection, address, 3)
        self.assertFalse(os.path.exists(os.path.join(
            self.tmpdir, 'docker-serial-consoles', server['id'])))

    def test_service_off_is_a_clear_400(self):
        server = self.boot_guest()
        self.flags(enabled=False, group='serial_console')
        e = self.assertRaises(api_client.OpenStackApiException,
                              self.console_url, server)
        self.assertEqual(400, e.response.status_code)
        self.assertIn('Unavailable console type serial',
                      e.response.text)
        self.delete_all(server)


def free_ports(count=4):
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    return port, port + count


class UserDataSignalTestCase(GuestTestBase):

    def test_script_signals_a_listener_at_first_boot(self):
        # What a Heat wait condition's signal needs: the script runs with
        # the network already wired, and its request reaches a listener.
        listener = self.boot_guest()
        code, out = self.exec_in(
            listener, 'sh', '-c',
            '(nc -l -p %d > /tmp/signal &) ; sleep 1' % base.HTTP_PORT)
        self.assertEqual(0, code, out)
        script = ('#!/bin/sh\n'
                  'printf "POST /signal HTTP/1.0\\r\\n\\r\\n'
                  '{\\"status\\": \\"SUCCESS\\", \\"id\\": \\"%s\\"}" '
                  '| nc -w 5 %s %d\n'
                  % ('nd-signal', self.ip_of(listener), base.HTTP_PORT))
        signaller = self.boot_guest(
            user_data=base64.b64encode(script.encode()).decode())
        got = ''
        for _ in range(60):
            got = self.read(listener, '/tmp/signal')
            if 'SUCCESS' in got:
                break
            time.sleep(0.5)
        self.assertIn('POST /signal', got)
        self.assertIn('"status": "SUCCESS", "id": "nd-signal"', got)
        self.delete_all(listener, signaller)
