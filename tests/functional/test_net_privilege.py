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

"""A confused or compromised caller of the privileged side (issue 13).

Calls go to the real privsep daemon (nova-docker's entrypoints, as root
with CAP_NET_ADMIN and CAP_SYS_ADMIN only) and to the real nova-rootwrap
with this repository's filters. Each refused request must leave every
other server's wiring as it was (checked with TCP) and create nothing.
"""

import os
import signal
import socket
import struct
import subprocess

from nova.network import model
from oslo_utils import uuidutils
import testtools

from novadocker import privsep
from novadocker.privsep import netdev
from novadocker.virt.docker import netns
from novadocker.virt.docker import vifs
from tests.functional import test_vif_wiring as wiring
from tools.harness import base


class PrivsepRefusalsTestCase(wiring.VifWiringBase):

    def setUp(self):
        super().setUp()
        # A wired victim server and a peer that checks it keeps working.
        self.victim, self.victim_box = self.sandbox()
        self.peer, self.peer_box = self.sandbox()
        self.victim_vif, self.peer_vif = self.port(), self.port()
        self.plug(self.victim, self.victim_box,
                  model.NetworkInfo([self.victim_vif]))
        self.plug(self.peer, self.peer_box,
                  model.NetworkInfo([self.peer_vif]))
        self.before = wiring.host_links()[self.victim_vif['devname']]

    def wire(self, box, port_id, host=wiring.HOST, sandbox_id=None):
        vif = self.victim_vif
        return netdev.wire_port(
            sandbox_id or box.id, host, port_id, None, vif['address'], 1400,
            [['10.99.0.5', 24]], [], False)

    def assertVictimUntouched(self):
        tap = self.victim_vif['devname']
        self.assertEqual(self.before['ifindex'],
                         wiring.host_links()[tap]['ifindex'])
        self.assertTcp(self.victim, self.victim_box, self.peer,
                       self.peer_box, self.fixed_ip(self.victim_vif))

    def assertRefused(self, text, call, *args):
        err = self.assertRaises(netdev.Refused, call, *args)
        self.assertIn(text, str(err))
        self.assertVictimUntouched()

    def test_wiring_another_servers_port_into_my_sandbox(self):
        _inst, mine = self.sandbox()
        self.assertRefused('wired into another namespace', self.wire, mine,
                           self.victim_vif['id'])
        links = [line for line in subprocess.run(
            ['nsenter', '-t', str(self.pid(mine)), '-n', 'ip', '-o', 'link'],
            capture_output=True, text=True).stdout.splitlines()]
        self.assertEqual(1, len(links), links)

    def test_unwiring_another_servers_port_from_my_sandbox(self):
        _inst, mine = self.sandbox()
        removed = netdev.unwire_port(mine.id, wiring.HOST,
                                     self.victim_vif['id'])
        # privsep returns lists as tuples.
        self.assertEqual([], list(removed))
        self.assertVictimUntouched()

    def test_removing_the_devices_of_a_live_port(self):
        self.assertEqual([], list(netdev.remove_port_devices(
            self.victim_vif['id'])))
        self.assertVictimUntouched()

    def test_a_workload_container_is_not_a_sandbox(self):
        _inst, box = self.sandbox(role='workload')
        self.assertRefused('not a nova-docker sandbox', self.wire, box,
                           self.port()['id'])

    def test_an_unlabelled_container_is_not_a_sandbox(self):
        _inst, box = self.sandbox(role='', host='')
        self.assertRefused('not a nova-docker sandbox', self.wire, box,
                           self.port()['id'])

    def test_another_hosts_sandbox(self):
        _inst, box = self.sandbox(host='some-other-compute')
        self.assertRefused('not a nova-docker sandbox', self.wire, box,
                           self.port()['id'])

    def test_a_sandbox_in_the_host_namespace(self):
        _inst, box = self.sandbox(network_mode='host')
        self.assertRefused('host network namespace', self.wire, box,
                           self.port()['id'])
        self.assertNotIn(vifs.host_device_name(self.port_ids[-1]),
                         wiring.host_links())

    def test_a_stopped_sandbox(self):
        _inst, box = self.sandbox()
        box.stop(timeout=1)
        self.assertRefused('not running', self.wire, box, self.port()['id'])

    def test_a_short_id_or_a_name_instead_of_the_container_id(self):
        _inst, box = self.sandbox()
        for ref in (box.id[:12], box.name):
            self.assertRefused('full 64-digit id', self.wire, box,
                               self.port()['id'], wiring.HOST, ref)

    def test_pid_1_and_host_devices_cannot_be_named(self):
        # There is no pid or device name argument left to abuse: the
        # privileged side derives both. What would name them is refused.
        for port_id in ('../../eth0', 'lo', '1', 'br-int',
                        self.victim_vif['id'].upper()):
            self.assertRefused('Neutron port id', self.wire,
                               self.victim_box, port_id)
            self.assertRefused('Neutron port id',
                               netdev.remove_port_devices, port_id)

    def test_a_sandbox_name_in_the_guest_is_checked(self):
        _inst, box = self.sandbox()
        err = self.assertRaises(
            netdev.Refused, netdev.wire_port, box.id, wiring.HOST,
            self.port()['id'], 'lo', self.victim_vif['address'], 1400,
            [], [], False)
        self.assertIn('expected ethN', str(err))
        self.assertVictimUntouched()


class PrivsepDaemonKilledTestCase(wiring.VifWiringBase):

    def daemon_pid(self):
        # The daemon at the other end of this process's privsep socket.
        sock = privsep.netns_admin.channel.writer.writesock
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                struct.calcsize('3i'))
        return struct.unpack('3i', creds)[0]

    def test_daemon_killed_mid_plug_leaves_nothing_half_wired(self):
        instance, box = self.sandbox()
        peer, peer_box = self.sandbox()
        first, second, peer_vif = self.port(), self.port(), self.port()
        self.plug(peer, peer_box, model.NetworkInfo([peer_vif]))
        real_plug = vifs.os_vif.plug
        killed = []

        def plug_then_kill(osvif, info):
            real_plug(osvif, info)
            if not killed:
                killed.append(self.daemon_pid())
                os.kill(killed[0], signal.SIGKILL)
        self.useFixture(wiring.fixtures.MonkeyPatch(
            'novadocker.virt.docker.vifs.os_vif.plug', plug_then_kill))
        network_info = model.NetworkInfo([first, second])
        try:
            vifs.plug_vifs(instance, network_info, box.id)
        except Exception:
            # The retry a start or a restart of nova-compute makes.
            vifs.plug_vifs(instance, network_info, box.id)
        self.assertEqual(1, len(killed))
        netns.create_link(instance.uuid, self.pid(box))

        names = [line.split()[1].rstrip(':').split('@')[0]
                 for line in wiring.in_netns(
                     instance.uuid, 'ip', '-o', 'link').stdout.splitlines()]
        self.assertEqual(['lo', 'eth0', 'eth1'], names)
        for vif in (first, second):
            self.assertOvsPort(instance, vif)
            self.assertTcp(instance, box, peer, peer_box,
                           self.fixed_ip(vif))
        vifs.unplug_vifs(instance, network_info, box.id)
        netns.remove_link(instance.uuid)
        for vif in (first, second):
            self.assertEqual([], wiring.ovs_interfaces('iface-id',
                                                       vif['id']))
            self.assertNotIn(vif['devname'], wiring.host_links())


class RootwrapVectorsTestCase(testtools.TestCase):
    """Argument vectors through the real nova-rootwrap and our filters."""

    UUID = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9'

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail('rootwrap vectors run nova-rootwrap as root')
        tmp = self.useFixture(wiring.fixtures.TempDir()).path
        self.conf = base.write_rootwrap_conf(tmp)
        self.rootwrap = os.path.join(wiring.BIN_DIR, 'nova-rootwrap')
        self.link = '/var/run/netns/nova-' + uuidutils.generate_uuid()
        self.addCleanup(self._unlink)

    def _unlink(self):
        if os.path.lexists(self.link):
            os.unlink(self.link)

    def run_wrapped(self, *args):
        return subprocess.run([self.rootwrap, self.conf] + list(args),
                              capture_output=True, text=True, timeout=60)

    def assertRefused(self, *args):
        result = self.run_wrapped(*args)
        # 99: "Unauthorized command" from rootwrap, nothing was run.
        self.assertEqual(99, result.returncode, (args, result.stderr))
        self.assertFalse(os.path.lexists(self.link))
        self.assertFalse(os.path.lexists(self.link.rstrip('\n')))

    def test_allowed_link_and_unlink_work(self):
        pid = str(os.getpid())
        result = self.run_wrapped('ln', '-sfT', '/proc/%s/ns/net' % pid,
                                  self.link)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual('/proc/%s/ns/net' % pid, os.readlink(self.link))
        result = self.run_wrapped('rm', '-f', self.link)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertFalse(os.path.lexists(self.link))

    def test_pid_1_is_refused(self):
        self.assertRefused('ln', '-sfT', '/proc/1/ns/net', self.link)

    def test_trailing_newlines_are_refused(self):
        pid = '/proc/%d/ns/net' % os.getpid()
        for args in (('ln', '-sfT\n', pid, self.link),
                     ('ln\n', '-sfT', pid, self.link),
                     ('ln', '-sfT', pid + '\n', self.link),
                     ('ln', '-sfT', pid, self.link + '\n'),
                     ('rm', '-f\n', self.link),
                     ('mkdir', '-p\n', '/var/run/netns')):
            self.assertRefused(*args)

    def test_extra_arguments_are_refused(self):
        pid = '/proc/%d/ns/net' % os.getpid()
        for args in (('ln', '-sfT', pid, self.link, '/etc/x'),
                     ('ln', '-s', '-f', '-T', pid, self.link),
                     ('rm', '-f', self.link, '/etc/passwd'),
                     ('mkdir', '-p', '-m', '777', '/var/run/netns')):
            self.assertRefused(*args)

    def test_path_tricks_are_refused(self):
        pid = os.getpid()
        for args in (('ln', '-sfT', '/proc/%d/../1/ns/net' % pid, self.link),
                     ('ln', '-sfT', '/proc/self/ns/net', self.link),
                     ('ln', '-sfT', '/proc//%d/ns/net' % pid, self.link),
                     ('ln', '-sfT', '/proc/%d/ns/net' % pid,
                      '/var/run/netns/../nova-' + self.UUID),
                     ('rm', '-f', '/var/run/netns/../../etc/nova-' +
                      self.UUID)):
            self.assertRefused(*args)
