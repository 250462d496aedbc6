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

"""Day-2 networking through Nova's API: restarts, faults, attach and detach.

Real engine, real OVS (netdev), real rootwrap and privsep. Every case checks
TCP (an HTTP server in one server, fetched from another, and from the
host's namespace where it matters) and that nothing leaked.
"""

import os
import socket
import subprocess
import threading
import time

import fixtures
import os_vif
from oslo_concurrency import processutils
from oslo_privsep import daemon
from oslo_utils import uuidutils
from ovsdbapp.backend.ovs_idl import transaction

from novadocker.virt.docker import ovsdb
from novadocker.virt.docker import vifs
from tools.harness import base
from tools.harness import fixtures as nd_fixtures


def vsctl(*args):
    return subprocess.run(['ovs-vsctl', '--timeout=10'] + list(args),
                          capture_output=True, text=True, check=True
                          ).stdout.strip()


class OvsdbForwarder(object):
    """A private OVSDB socket forwarding to the shared one, when started.

    Stands for an ovsdb-server that is down, then back, without touching
    the OVS other tests use.
    """

    def __init__(self, path, target='/var/run/openvswitch/db.sock'):
        self.path, self.target = path, target
        self.server = None

    def start(self):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b),
                                 daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        if os.path.exists(self.path):
            os.unlink(self.path)


class BoundaryCounter(fixtures.Fixture):
    """Counts what crosses the driver's boundaries, passing every call on.

    Processes run through processutils (ovs-vsctl, rootwrap), os-vif
    plugs, privileged round trips and OVSDB transactions that write.
    """

    _READS = ('BrExistsCommand', 'DbListCommand', 'DbFindCommand',
              'DbGetCommand')

    def _setUp(self):
        self.processes = []
        self.plugs = 0
        self.privsep_calls = 0
        self.ovsdb_writes = []
        self.ovsdb_reads = 0
        self._wrap(processutils, 'execute', self._process)
        self._wrap(os_vif, 'plug', self._plug)
        self._wrap(daemon._ClientChannel, 'remote_call', self._privsep)
        self._wrap(transaction.Transaction, 'commit', self._commit)

    def _wrap(self, owner, name, count):
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            count(*args)
            return original(*args, **kwargs)
        setattr(owner, name, counted)
        self.addCleanup(setattr, owner, name, original)

    def _process(self, *cmd):
        self.processes.append(' '.join(str(c) for c in cmd[:3]))

    def _plug(self, *args):
        self.plugs += 1

    def _privsep(self, channel, name, *args):
        self.privsep_calls += 1

    def _commit(self, txn):
        writes = [type(c).__name__ for c in txn.commands
                  if type(c).__name__ not in self._READS]
        if writes:
            self.ovsdb_writes.append(writes)
        else:
            self.ovsdb_reads += 1


class Day2NetworkingTestCase(base.NetworkedTestBase):

    # -- helpers --------------------------------------------------------------

    def host_port(self, server):
        """The host's namespace on br-int, routed to *server* only.

        An OVS internal port holding the subnet's gateway address, as the
        cloud's host does.
        """
        name = 'ndh-%s' % uuidutils.generate_uuid()[:8]
        vsctl('add-port', base.BRIDGE, name, '--', 'set', 'Interface',
              name, 'type=internal')
        self.addCleanup(subprocess.run, ['ovs-vsctl', '--timeout=10',
                                         '--if-exists', 'del-port', name],
                        capture_output=True)
        for _ in range(50):
            if os.path.exists('/sys/class/net/' + name):
                break
            time.sleep(0.1)
        gateway = nd_fixtures.OVSNeutronFixture.subnet_1['gateway_ip']
        for cmd in (['ip', 'addr', 'add', '%s/32' % gateway, 'dev', name],
                    ['ip', 'link', 'set', name, 'up'],
                    ['ip', 'route', 'add', '%s/32' % self.ip_of(server),
                     'dev', name]):
            subprocess.run(cmd, check=True, capture_output=True)
        return name

    def ofport_and_ifindex(self, server):
        port_id = self.api.get_port_interfaces(server['id'])[0]['port_id']
        tap = vifs.host_device_name(port_id)
        ofport = int(vsctl('get', 'Interface', tap, 'ofport'))
        code, ifindex = self.exec_in(server, 'cat',
                                     '/sys/class/net/eth0/ifindex')
        self.assertEqual(0, code, ifindex)
        return ofport, int(ifindex)

    def start_long_tcp(self, client, server):
        """A TCP connection that sends a line now and one 15 s later."""
        code, out = self.exec_in(
            server, 'sh', '-c',
            # nc ends at the end of its input: keep that open.
            '(sleep 120 | nc -l -p 7000 > /tmp/long.txt &) ; true')
        self.assertEqual(0, code, out)
        time.sleep(0.5)
        self.workload(client).exec_run(
            ['sh', '-c', '(echo before; sleep 15; echo after) | nc %s 7000'
             % self.ip_of(server)], detach=True)

    def long_tcp_received(self, server, timeout=60):
        for _ in range(timeout * 2):
            _, out = self.exec_in(server, 'cat', '/tmp/long.txt')
            if 'after' in out:
                return out
            time.sleep(0.5)
        return out

    def service_is_up(self, host):
        services = self.admin_api.get_services(host=host,
                                               binary='nova-compute')
        return services and services[0]['state'] == 'up'

    def restart(self):
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        self.assertTrue(self.service_is_up(self.compute.host))

    # -- restarts -------------------------------------------------------------

    def test_restart_keeps_ofport_ifindex_and_tcp_connections(self):
        a = self.boot_on_net()
        b = self.boot_on_net()
        self.host_port(b)
        self.assertTcp(a, b)
        self.assertTcp(None, b)
        before = {s['id']: self.ofport_and_ifindex(s) for s in (a, b)}
        self.start_long_tcp(a, b)

        self.restart()

        after = {s['id']: self.ofport_and_ifindex(s) for s in (a, b)}
        self.assertEqual(before, after)
        self.assertIn('before\nafter', self.long_tcp_received(b))
        self.assertTcp(b, a)
        self.assertTcp(None, b)
        self.delete_all(a, b)

    def test_restart_costs_no_process_per_kept_port(self):
        servers = [self.boot_on_net() for _ in range(3)]
        before = {s['id']: self.ofport_and_ifindex(s) for s in servers}
        # A new nova-compute process has no OVSDB connection yet.
        ovsdb.close_connection()
        counter = BoundaryCounter()
        self.useFixture(counter)

        self.restart()

        # No process is forked for OVS (the driver's OVSDB connection is
        # opened at start-up), no port is re-plugged, and kept ports cost
        # no OVSDB transaction: their rows are read from the connection's
        # replica (one read a server) and already carry the host mark.
        self.assertEqual([], counter.processes)
        self.assertEqual(0, counter.plugs)
        self.assertEqual([], counter.ovsdb_writes)
        self.assertEqual(0, counter.ovsdb_reads)
        # One privileged round trip a port (the check inside its sandbox).
        self.assertEqual(len(servers), counter.privsep_calls)
        after = {s['id']: self.ofport_and_ifindex(s) for s in servers}
        self.assertEqual(before, after)
        self.assertTcp(servers[0], servers[2])
        self.delete_all(*servers)

    def test_restart_with_vanished_containers_starts_and_says_so(self):
        gone = self.boot_on_net()
        kept = self.boot_on_net()
        for container in self.containers_of(gone):
            container.remove(force=True)

        self.restart()

        self.assertIn('container is missing on this host',
                      self.stdlog.logger.output)
        self.assertTcp(kept, kept)
        # Only the vanished server's OVS port is an orphan of this host.
        removed = vifs.remove_orphans(self.compute.host, [kept['id']])
        port_id = self.api.get_port_interfaces(gone['id'])[0]['port_id']
        self.assertEqual([vifs.host_device_name(port_id)], removed['ports'])
        self.assertTcp(kept, kept)
        self.delete_all(gone, kept)

    def test_restart_with_only_the_sandbox_gone(self):
        server = self.boot_on_net()
        other = self.boot_on_net()
        sandbox = [c for c in self.containers_of(server)
                   if c.labels['org.openstack.nova.role'] == 'sandbox'][0]
        sandbox.remove(force=True)

        self.restart()

        self.assertIn('sandbox container is missing on this host',
                      self.stdlog.logger.output)
        self.assertTcp(other, other)
        self.delete_all(server, other)

    def test_ovsdb_down_at_start_then_back(self):
        server = self.boot_on_net()
        before = self.ofport_and_ifindex(server)
        private = OvsdbForwarder(os.path.join(self.tmpdir, 'db.sock'))
        self.addCleanup(private.stop)
        self.flags(ovsdb_connection='unix:' + private.path,
                   group='os_vif_ovs')

        self.restart()

        self.assertIn('[os_vif_ovs] ovsdb_connection = unix:%s, which does '
                      'not answer' % private.path, self.stdlog.logger.output)
        # The running server was left alone.
        self.assertEqual(before, self.ofport_and_ifindex(server))
        self.assertTcp(server, server)

        private.start()
        second = self.boot_on_net()
        self.assertTcp(server, second)
        self.assertTcp(second, server)
        self.delete_all(server, second)

    # -- attach and detach ----------------------------------------------------

    def attach(self, server):
        return self.api.attach_interface(
            server['id'], {'interfaceAttachment': {'net_id': self.net}}
        ).body['interfaceAttachment']

    def detach(self, server, port_id):
        self.api.detach_interface(server['id'], port_id)
        tap = vifs.host_device_name(port_id)
        for _ in range(100):
            if tap not in vsctl('list-ports', base.BRIDGE).split():
                return
            time.sleep(0.2)
        self.fail('port %s still on %s' % (port_id, base.BRIDGE))

    def devices(self, server):
        """{ethN: address} inside the server."""
        _, out = self.exec_in(server, 'ip', '-o', '-4', 'addr', 'show')
        found = {}
        for line in out.splitlines():
            fields = line.split()
            if fields[1] != 'lo':
                found[fields[1]] = fields[3].split('/')[0]
        return found

    def test_attach_after_a_middle_detach_keeps_live_devices(self):
        server = self.boot_on_net()
        client = self.boot_on_net()
        first = self.attach(server)
        second = self.attach(server)
        self.assertEqual({'eth0', 'eth1', 'eth2'}, set(self.devices(server)))
        self.detach(server, first['port_id'])
        third = self.attach(server)

        devices = self.devices(server)
        self.assertEqual(second['fixed_ips'][0]['ip_address'],
                         devices['eth2'])
        self.assertEqual(third['fixed_ips'][0]['ip_address'],
                         devices['eth1'])
        for port in (second, third):
            ip = port['fixed_ips'][0]['ip_address']
            self.assertTcp(client, server, address=ip)
        self.delete_all(server, client)

    def test_two_concurrent_attaches(self):
        server = self.boot_on_net()
        client = self.boot_on_net()
        results, errors = [], []
        # Ports made first: the Neutron stand-in is not what is tested.
        ports = [self.neutron.create_port(
            {'port': {'network_id': self.net}})['port'] for _ in range(2)]

        def attach(port):
            try:
                results.append(self.api.attach_interface(
                    server['id'], {'interfaceAttachment': {
                        'port_id': port['id']}}).body['interfaceAttachment'])
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=attach, args=(port,))
                   for port in ports]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual([], errors)
        devices = self.devices(server)
        self.assertEqual({'eth0', 'eth1', 'eth2'}, set(devices))
        for port in results:
            ip = port['fixed_ips'][0]['ip_address']
            self.assertIn(ip, devices.values())
            self.assertTcp(client, server, address=ip)
        self.delete_all(server, client)

    def test_attach_on_a_stopped_server_is_wired_at_start(self):
        server = self.boot_on_net()
        client = self.boot_on_net()
        self.api.post_server_action(server['id'], {'os-stop': None})
        server = self._wait_for_server_parameter(
            server, {'status': 'SHUTOFF', 'OS-EXT-STS:task_state': None})
        attached = self.attach(server)
        self.api.post_server_action(server['id'], {'os-start': None})
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        ip = attached['fixed_ips'][0]['ip_address']
        self.assertIn(ip, self.devices(server).values())
        self.assertTcp(client, server, address=ip)
        self.delete_all(server, client)
