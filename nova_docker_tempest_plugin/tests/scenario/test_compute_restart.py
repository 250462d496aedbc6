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

"""nova-compute restarted and killed under running servers, and killed in
the middle of a spawn, on the real cloud.

A restart (or a crash) of nova-compute must leave every running server
exactly as it was: the same containers (not restarted), the same OVS
ofport, the same eth0 in the namespace, and a TCP connection opened before
the restart still carrying data after it. A spawn interrupted by a crash
ends, once nova-compute is back, as an ERROR server (Nova's own rule for a
build it finds interrupted) whose delete leaves nothing on the host.

Needs [nova_docker] host_checks and compute_restart_command (the cloud's
"tools/cloud.sh restart-compute"); the restarts make these tests unfit to
run next to others, so cloud-tests.sh runs every class on its own.
"""

import datetime
import socket
import time

from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib import decorators

from nova_docker_tempest_plugin import host
from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin import workloads

CONF = config.CONF


class ComputeRestartTest(base.NovaDockerScenarioTest):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        opts = CONF.nova_docker
        if not (opts.host_checks and opts.compute_restart_command):
            raise cls.skipException(
                'needs [nova_docker] host_checks and compute_restart_command')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.admin_services_client = cls.os_admin.services_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.tag = data_utils.rand_name('tag')
        cls.body = workloads.hello(cls.tag)
        cls.image_id = cls.create_workload_image()
        group = cls.create_security_group(
            tcp_ports=(workloads.HTTP_PORT, workloads.ECHO_PORT))
        web_port = cls.create_port(cls.network['id'], group)
        probe_port = cls.create_port(cls.network['id'], group)
        cls.web_ip = cls.ipv4_of(web_port)
        cls.web = cls.create_server(
            cls.image_id, workloads.echo_web_metadata(cls.tag),
            port=web_port, name='nd-restart-web')
        cls.probe = cls.create_server(
            cls.image_id, workloads.probe_metadata([cls.web_ip]),
            port=probe_port, name='nd-restart-probe')
        cls.servers = (cls.web['id'], cls.probe['id'])
        for server_id in cls.servers:
            cls.wait_for_server(server_id)

    def restart_compute(self, kill=False):
        """Restart nova-compute; return once Nova reports it up again.

        Until the new process has sent a heartbeat, the API may take the
        service for down, and a delete in that window is Nova's local
        delete, which never reaches the driver (the driver then removes
        what the server left at its next start).
        """
        since = datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None)
        host.restart_compute(CONF.nova_docker.compute_restart_command,
                             kill=kill)
        deadline = time.time() + CONF.compute.build_timeout
        while True:
            services = self.admin_services_client.list_services(
                binary='nova-compute')['services']
            fresh = [s for s in services if s['state'] == 'up' and
                     s['updated_at'] and datetime.datetime.fromisoformat(
                         s['updated_at']) >= since]
            if fresh:
                return
            if time.time() > deadline:
                self.fail('nova-compute is not reported up since its '
                          'restart at %s: %s' % (since, services))
            time.sleep(2)

    def _echo_connection(self):
        """A TCP connection from the host to the web server's echo port."""
        deadline = time.time() + CONF.nova_docker.probe_timeout
        while True:
            try:
                conn = socket.create_connection(
                    (self.web_ip, workloads.ECHO_PORT), timeout=5)
                self.addCleanup(conn.close)
                self._echo(conn, b'hello')
                return conn
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(1)

    def _echo(self, conn, data):
        conn.sendall(data + b'\n')
        got = b''
        while not got.endswith(b'\n'):
            chunk = conn.recv(256)
            if not chunk:
                self.fail('the echo connection to %s was closed'
                          % self.web_ip)
            got += chunk
        self.assertEqual(data + b'\n', got)

    def _restart_keeps_servers(self, kill):
        since = base.now()
        self.wait_for_probe(self.probe['id'], self.web_ip, since, self.body)
        conn = self._echo_connection()
        before = {s: host.wiring_of(s) for s in self.servers}
        self.restart_compute(kill=kill)
        after = {s: host.wiring_of(s) for s in self.servers}
        self.assertEqual(before, after,
                         'a restart of nova-compute changed the wiring or '
                         'restarted a container')
        # The connection opened before the restart still carries data.
        self._echo(conn, b'after-restart')
        for server_id in self.servers:
            server = self.wait_for_server(server_id)
            self.assertEqual('ACTIVE', server['status'])
        since = base.now()
        self.wait_for_probe(self.probe['id'], self.web_ip, since, self.body)
        self.assert_host_http(self.web_ip, self.body)

    @decorators.idempotent_id('0b1f8a4e-5b8f-4d0e-9a63-1f3d6b7c2e01')
    def test_restart_keeps_servers(self):
        self._restart_keeps_servers(kill=False)

    @decorators.idempotent_id('6c2e4f1a-8d3b-4c7e-b0a9-2e5f7a9d1c02')
    def test_crash_keeps_servers(self):
        self._restart_keeps_servers(kill=True)

    def _server_state(self, server_id):
        server = self.servers_client.show_server(server_id)['server']
        return server['status'], server.get('OS-EXT-STS:task_state')

    def _boot_and_kill_mid_spawn(self):
        """Boot a server and crash nova-compute while it spawns.

        Returns (server id, ports) once the kill landed with the server's
        first container on the host and the server still building, or
        None when the spawn finished before the kill could land.
        """
        port = self.create_port(self.network['id'])
        server = self.create_server(
            self.image_id, workloads.web_metadata(self.tag), port=port,
            name='nd-midspawn')
        deadline = time.time() + CONF.compute.build_timeout
        while time.time() < deadline:
            if host.containers_of(server['id']):
                status, task = self._server_state(server['id'])
                if status != 'BUILD':
                    return None
                self.restart_compute(kill=True)
                return server['id'], [port['id']]
            status, _ = self._server_state(server['id'])
            if status == 'ERROR':
                self.fail('server %s went to ERROR before the kill'
                          % server['id'])
            time.sleep(0.05)
        self.fail('no container of server %s appeared in %d s'
                  % (server['id'], CONF.compute.build_timeout))

    @decorators.idempotent_id('9d4a7c3e-1f6b-4e2a-8c5d-3b7e9f1a4d03')
    def test_killed_mid_spawn(self):
        for attempt in range(3):
            killed = self._boot_and_kill_mid_spawn()
            if killed:
                break
        else:
            self.fail('three spawns finished before nova-compute could be '
                      'killed in the middle of one')
        server_id, port_ids = killed
        # Nova puts a build it finds interrupted at start-up in ERROR.
        server = self.wait_for_server(server_id, status='ERROR')
        self.assertEqual('ERROR', server['status'])
        # The running servers came through the crash untouched.
        since = base.now()
        self.wait_for_probe(self.probe['id'], self.web_ip, since, self.body)
        self.delete_server(server_id)
        self.assert_nothing_left(server_id, port_ids)
