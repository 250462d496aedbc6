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

"""What a user configures and reaches in a server, on the real cloud.

A config drive read from inside (the key pair in meta_data.json, the user
data, read-only), a user-data script's effect, the server's own name
resolving inside it, an interactive console through nova-serialproxy's
websocket (a command typed, its output read), and diagnostics whose NIC
counters move with traffic. What the server sees, it prints to its console
log with an ND- prefix; the tests read that log through the API.
"""

import base64
import json
import os
import socket
import struct
import time
import urllib.parse

from tempest import config
from tempest.lib.common import api_microversion_fixture
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from nova_docker_tempest_plugin.services import orchestration_client
from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin import workloads

CONF = config.CONF

MOUNT = '/config-drive'
META = MOUNT + '/openstack/latest/meta_data.json'
# An ed25519 public key (its private half was never kept): Nova checks the
# format only.
PUBLIC_KEY = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFXjb2W1Vq0q5sPZ3rZC8dPF'
              'M0OkRg0vT6Z8nTTk3X8r nd-tempest')
USER_DATA = ('#!/bin/sh\n'
             'echo "ND-USERDATA $(date +%s) $(id -u)"\n'
             'echo ran > /tmp/nd-user-data\n')
# What the workload prints about its config drive, its user data's effect
# and its own name (wget resolves the name through /etc/hosts, then
# fetches from the web server the same init started). Nova caps a
# metadata value at 255 characters: the report is a metadata item of its
# own (the workload sees metadata as its environment).
GUEST_INIT = workloads.WEB_INIT + ' && eval "$ND_REPORT"'
GUEST_REPORT = ('echo "ND-META $(cat %(meta)s)"; '
                'echo "ND-UD $(cat /tmp/nd-user-data 2>&1)"; '
                '(echo x > %(meta)s) 2>/dev/null && echo ND-RW=yes '
                '|| echo ND-RW=no; '
                'echo "ND-NAME $(timeout 3 wget -q -O- '
                'http://$(hostname):%(port)d/ 2>&1)"'
                % {'meta': '"$ND_META"', 'port': workloads.HTTP_PORT})


def _line(console, prefix):
    for line in console.splitlines():
        if line.startswith(prefix + ' ') or line.startswith(prefix + '='):
            return line[len(prefix) + 1:].strip()
    return None


class GuestScenarioTest(base.NovaDockerScenarioTest):

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.keypairs_client = cls.os_primary.keypairs_client
        cls.admin_servers_client = cls.os_admin.servers_client

    @classmethod
    def create_guest(cls, metadata, port=None, image_id=None, **extra):
        """A server with config drive, key and user data options."""
        nets = ([{'port': port['id']}] if port
                else [{'uuid': cls.network['id']}])
        server = cls.servers_client.create_server(
            name=data_utils.rand_name('nd-tempest-guest'),
            imageRef=image_id or cls.image_id, flavorRef=cls.flavor_id,
            networks=nets, metadata=metadata,
            availability_zone=CONF.nova_docker.availability_zone,
            **extra)['server']
        cls.addClassResourceCleanup(cls.delete_server, server['id'])
        return server


class ConfigDriveTest(GuestScenarioTest):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.compute_feature_enabled.config_drive:
            raise cls.skipException('[compute-feature-enabled] '
                                    'config_drive is off')

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.image_id = cls.create_workload_image()
        name = data_utils.rand_name('nd-key')
        cls.keypairs_client.create_keypair(name=name, public_key=PUBLIC_KEY)
        cls.addClassResourceCleanup(
            test_utils.call_and_ignore_notfound_exc,
            cls.keypairs_client.delete_keypair, name)
        cls.key_name = name
        cls.tag = data_utils.rand_name('tag')
        cls.server = cls.create_guest(
            {'ND_SCRIPT': workloads.SCRIPT, 'ND_INIT': GUEST_INIT,
             'ND_REPORT': GUEST_REPORT, 'ND_META': META, 'ND_TAG': cls.tag},
            config_drive=True, key_name=name,
            user_data=base64.b64encode(USER_DATA.encode()).decode())
        cls.wait_for_server(cls.server['id'])

    def guest_console(self):
        return self.wait_for_console(
            self.server['id'], lambda c: _line(c, 'ND-NAME') is not None,
            'the guest report (ND-NAME)')

    @decorators.idempotent_id('0b0c8f64-3d4e-4d1d-9a51-6f1f4c2d5e01')
    def test_config_drive_keys_and_user_data(self):
        shown = self.servers_client.show_server(self.server['id'])['server']
        self.assertIn(shown['config_drive'], ('True', True))
        console = self.guest_console()
        meta = json.loads(_line(console, 'ND-META'))
        self.assertEqual(self.server['id'], meta['uuid'])
        self.assertEqual(PUBLIC_KEY,
                         meta['public_keys'][self.key_name].strip())
        self.assertEqual('no', _line(console, 'ND-RW'))

    @decorators.idempotent_id('0b0c8f64-3d4e-4d1d-9a51-6f1f4c2d5e02')
    def test_user_data_script_ran_before_the_command(self):
        console = self.guest_console()
        # Run by root, once, before the image's command (which read its
        # effect at its start).
        ran = [line for line in console.splitlines()
               if line.startswith('ND-USERDATA ')]
        self.assertEqual(1, len(ran), console)
        self.assertTrue(ran[0].endswith(' 0'), ran[0])
        self.assertEqual('ran', _line(console, 'ND-UD'))

    @decorators.idempotent_id('0b0c8f64-3d4e-4d1d-9a51-6f1f4c2d5e03')
    def test_own_name_resolves(self):
        # wget found the server by its own name (through /etc/hosts) and
        # fetched the page its web server serves.
        console = self.guest_console()
        self.assertEqual(workloads.hello(self.tag), _line(console, 'ND-NAME'))


class _WebSocket:
    """A minimal RFC 6455 client for nova-serialproxy (binary frames)."""

    def __init__(self, url, timeout=30):
        parts = urllib.parse.urlparse(url)
        if parts.scheme != 'ws':
            raise ValueError('only ws:// is handled here: %s' % url)
        self.sock = socket.create_connection(
            (parts.hostname, parts.port or 80), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path or '/'
        if parts.query:
            path += '?' + parts.query
        self.sock.sendall((
            'GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n'
            'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary'
            '\r\nOrigin: http://%s:%d\r\n\r\n'
            % (path, parts.hostname, parts.port or 80, key,
               parts.hostname, parts.port or 80)).encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        self.status = head.split(b' ', 2)[1] if b' ' in head else b''

    def send(self, data):
        mask = os.urandom(4)
        header = bytes([0x82])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        else:
            header += bytes([0x80 | 126]) + struct.pack('!H', len(data))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, count):
        data = b''
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise EOFError('the proxy closed the websocket')
            data += chunk
        return data

    def recv(self):
        first, second = self._read(2)
        length = second & 0x7f
        if length == 126:
            length = struct.unpack('!H', self._read(2))[0]
        elif length == 127:
            length = struct.unpack('!Q', self._read(8))[0]
        data = self._read(length)
        if first & 0x0f == 0x8:
            raise EOFError('the proxy closed the websocket')
        return data

    def close(self):
        self.sock.close()


class SerialConsoleTest(GuestScenarioTest):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.compute_feature_enabled.serial_console:
            raise cls.skipException('[compute-feature-enabled] '
                                    'serial_console is off')

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.image_id = cls.base_image_id
        cls.server = cls.create_guest({})
        cls.wait_for_server(cls.server['id'])

    def console_url(self):
        # The remote-consoles API (any type) exists from 2.6 on.
        self.useFixture(api_microversion_fixture.APIMicroversionFixture(
            compute_microversion='2.6'))
        return self.servers_client.get_remote_console(
            self.server['id'], console_type='serial',
            protocol='serial')['remote_console']['url']

    def type_and_read(self, ws, command, expected, timeout=30):
        ws.send(command.encode() + b'\r')
        seen = b''
        deadline = time.time() + timeout
        while expected.encode() not in seen and time.time() < deadline:
            try:
                seen += ws.recv()
            except socket.timeout:
                continue
        self.assertIn(expected, seen.decode(errors='replace'))

    @decorators.idempotent_id('0b0c8f64-3d4e-4d1d-9a51-6f1f4c2d5e04')
    def test_console_round_trip_one_session(self):
        ws = _WebSocket(self.console_url())
        self.addCleanup(ws.close)
        self.assertEqual(b'101', ws.status)
        # The image's shell is on the tty: it runs what is typed.
        self.type_and_read(ws, 'echo nd-$((6*7))', 'nd-42')
        second = _WebSocket(self.console_url())
        self.addCleanup(second.close)
        seen = b''
        try:
            while b'only one at a time' not in seen:
                seen += second.recv()
        except (EOFError, socket.timeout):
            pass
        self.assertIn(b'only one at a time', seen)

    @decorators.idempotent_id('0b0c8f64-3d4e-4d1d-9a51-6f1f4c2d5e05')
    def test_console_port_not_reachable_from_a_server(self):
        # A prober server tries the console ports of the host's addresses
        # it can reach (its gateway): nothing answers.
        start, stop = 10000, 10020
        # An open console answers a newline (a prompt, or the one-session
        # refusal); a closed port answers nothing.
        probe = ('g=$(ip route | sed -n "s/^default via \\([^ ]*\\).*/'
                 '\\1/p"); for p in $(seq %d %d); do o=$(echo | timeout 3 '
                 'nc $g $p 2>/dev/null); [ -n "$o" ] && echo '
                 '"ND-CONSOLE-OPEN $p"; done; echo ND-SCANNED'
                 % (start, stop))
        self.console_url()   # the endpoint is listening now
        prober = self.create_guest({'ND_SCRIPT': workloads.SCRIPT,
                                    'ND_INIT': probe},
                                   image_id=self.create_workload_image())
        self.wait_for_server(prober['id'])
        console = self.wait_for_console(
            prober['id'], lambda c: 'ND-SCANNED' in c, 'the port scan')
        self.assertNotIn('ND-CONSOLE-OPEN', console)


class DiagnosticsTest(GuestScenarioTest):

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.image_id = cls.create_workload_image()
        cls.tag = data_utils.rand_name('tag')
        group = cls.create_security_group()
        web_port = cls.create_port(cls.network['id'], group)
        cls.web = cls.create_guest(workloads.web_metadata(cls.tag),
                                   port=web_port)
        cls.probe = cls.create_guest(
            workloads.probe_metadata([cls.ipv4_of(web_port)]),
            port=cls.create_port(cls.network['id'], group))
        for server in (cls.web, cls.probe):
            cls.wait_for_server(server['id'])

    def diagnostics(self, microversion):
        self.useFixture(api_microversion_fixture.APIMicroversionFixture(
            compute_microversion=microversion))
        return self.admin_servers_client.show_server_diagnostics(
            self.web['id'])

    @decorators.idempotent_id('0b0c8f64-3d4e-4d1d-9a51-6f1f4c2d5e06')
    def test_counters_move_with_traffic(self):
        before = self.diagnostics('2.48')
        self.assertEqual('running', before['state'])
        self.assertEqual('docker', before['hypervisor'])
        self.assertEqual(1, before['num_nics'])
        self.assertIsNotNone(before['memory_details']['maximum'])
        self.assertGreater(before['cpu_details'][0]['time'], 0)
        start = before['nic_details'][0]
        # The prober fetches the web page every few seconds.
        deadline = time.time() + CONF.nova_docker.probe_timeout
        while True:
            nic = self.diagnostics('2.48')['nic_details'][0]
            if nic['rx_packets'] > start['rx_packets'] + 10 and \
                    nic['tx_octets'] > start['tx_octets']:
                break
            if time.time() > deadline:
                self.fail('NIC counters did not move with traffic: %s then '
                          '%s' % (start, nic))
            time.sleep(3)
        legacy = self.diagnostics('2.1')
        self.assertGreaterEqual(legacy['eth0_rx_packets'], nic['rx_packets'])


# A user-data script that signals a Heat wait condition with busybox alone
# (the image has no curl): a raw HTTP POST through nc, retried until
# heat-api answers 200.
SIGNAL_SCRIPT = r'''#!/bin/sh
url='__endpoint__'
hp=${url#*://}; hp=${hp%%/*}; path=/${url#*://*/}
case $hp in *:*) host=${hp%:*}; port=${hp##*:};; *) host=$hp; port=80;; esac
body='{"status": "SUCCESS", "reason": "nd-seed", "data": "signalled"}'
fmt='POST %s HTTP/1.0\r\nHost: %s\r\nX-Auth-Token: %s\r\n'
fmt="${fmt}Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
for i in $(seq 30); do
  out=$(printf "$fmt" "$path" "$hp" '__token__' ${#body} "$body" |
        nc -w 10 $host $port 2>&1)
  case $out in "HTTP/1."*" 200 "*) echo "ND-SIGNALLED $i"; exit 0;; esac
  sleep 2
done
echo "ND-SIGNAL-FAILED $out"
'''


def seed_template():
    """Security group, port and server whose user data signals Heat."""
    return {
        'heat_template_version': '2016-10-14',
        'parameters': {
            'image': {'type': 'string'},
            'flavor': {'type': 'string'},
            'network': {'type': 'string'},
            'availability_zone': {'type': 'string'},
        },
        'resources': {
            'security_group': {
                'type': 'OS::Neutron::SecurityGroup',
                'properties': {'rules': [{'protocol': 'icmp'}]}},
            'port': {
                'type': 'OS::Neutron::Port',
                'properties': {
                    'network': {'get_param': 'network'},
                    'security_groups': [
                        {'get_resource': 'security_group'}]}},
            'handle': {'type': 'OS::Heat::WaitConditionHandle'},
            'wait': {
                'type': 'OS::Heat::WaitCondition',
                'properties': {'handle': {'get_resource': 'handle'},
                               'timeout': 300}},
            'server': {
                'type': 'OS::Nova::Server',
                'properties': {
                    'image': {'get_param': 'image'},
                    'flavor': {'get_param': 'flavor'},
                    'availability_zone': {
                        'get_param': 'availability_zone'},
                    'networks': [{'port': {'get_resource': 'port'}}],
                    'user_data_format': 'RAW',
                    'user_data': {'str_replace': {
                        'template': SIGNAL_SCRIPT,
                        'params': {
                            '__endpoint__': {
                                'get_attr': ['handle', 'endpoint']},
                            '__token__': {
                                'get_attr': ['handle', 'token']}}}}}},
        },
        'outputs': {
            'signalled': {'value': {'get_attr': ['wait', 'data']}},
            'server': {'value': {'get_resource': 'server'}},
        },
    }


class SeedTemplateTest(GuestScenarioTest):
    """A seed-style stack completes because its user data signals."""

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.heat = orchestration_client.OrchestrationClient.for_credentials(
            cls.os_primary, CONF)

    @decorators.idempotent_id('0b0c8f64-3d4e-4d1d-9a51-6f1f4c2d5e07')
    def test_user_data_signals_the_wait_condition(self):
        name = data_utils.rand_name('nd-seed')
        parameters = {
            'image': self.base_image_id, 'flavor': self.flavor_id,
            'network': self.network['id'],
            'availability_zone': CONF.nova_docker.availability_zone,
        }
        timeout = CONF.nova_docker.stack_timeout
        stack_id = self.heat.create_stack(
            name, seed_template(), parameters,
            timeout_mins=max(1, timeout // 60))['stack']['id']
        self.addCleanup(self._delete_stack, name, stack_id)
        stack = self.heat.wait_for_stack(name, stack_id, 'CREATE_COMPLETE',
                                         timeout)
        outputs = {o['output_key']: o['output_value']
                   for o in stack.get('outputs', [])}
        self.assertIn('signalled', json.dumps(outputs['signalled']))
        console = self.console(outputs['server'])
        self.assertIn('ND-SIGNALLED', console)

    def _delete_stack(self, name, stack_id):
        try:
            self.heat.delete_stack(name, stack_id)
        except lib_exc.NotFound:
            return
        self.heat.wait_for_stack(name, stack_id, 'DELETE_COMPLETE',
                                 CONF.nova_docker.stack_timeout)
