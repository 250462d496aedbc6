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

"""The rootwrap filters of the namespace link, loaded by oslo.rootwrap.

The filter file is read with oslo.rootwrap's own loader and matcher, the
code nova-rootwrap runs: what passes here passes in production, and what is
refused here is refused there.
"""

import os

import fixtures
from oslo_rootwrap import filters
from oslo_rootwrap import wrapper
import testtools

import novadocker.conf
from novadocker.virt.docker import exception
from novadocker.virt.docker import netns

CONF = novadocker.conf.CONF
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FILTERS_DIR = os.path.join(REPO, 'etc', 'nova', 'rootwrap.d')
EXEC_DIRS = ['/sbin', '/usr/sbin', '/bin', '/usr/bin']
UUID = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9'
LINK = '/var/run/netns/nova-' + UUID
ALLOWED = {
    'nova_docker_netns_dir': ['mkdir', '-p', '/var/run/netns'],
    'nova_docker_netns_link': ['ln', '-sfT', '/proc/4242/ns/net', LINK],
    'nova_docker_netns_unlink': ['rm', '-f', LINK],
}
HOSTILE = {
    'link over /etc/passwd': ['ln', '-sfT', '/proc/42/ns/net', '/etc/passwd'],
    'link to another source': ['ln', '-sfT', '/etc/shadow', LINK],
    'source is /proc/self': ['ln', '-sfT', '/proc/self/ns/net', LINK],
    'non-numeric pid': ['ln', '-sfT', '/proc/4x2/ns/net', LINK],
    'pid with leading zero': ['ln', '-sfT', '/proc/042/ns/net', LINK],
    'pid of 8 digits': ['ln', '-sfT', '/proc/12345678/ns/net', LINK],
    'other namespace kind': ['ln', '-sfT', '/proc/42/ns/mnt', LINK],
    '.. in the source': ['ln', '-sfT', '/proc/42/../1/ns/net', LINK],
    '.. in the link name': ['ln', '-sfT', '/proc/42/ns/net',
                            '/var/run/netns/../../../etc/nova-' + UUID],
    'relative source': ['ln', '-sfT', 'proc/42/ns/net', LINK],
    'relative link name': ['ln', '-sfT', '/proc/42/ns/net', 'nova-' + UUID],
    'link named outside /var/run/netns': [
        'ln', '-sfT', '/proc/42/ns/net', '/var/run/nova-' + UUID],
    'link in a subdirectory': [
        'ln', '-sfT', '/proc/42/ns/net', '/var/run/netns/x/nova-' + UUID],
    'link name not nova-<uuid>': ['ln', '-sfT', '/proc/42/ns/net',
                                  '/var/run/netns/evil'],
    'uppercase uuid': ['ln', '-sfT', '/proc/42/ns/net', LINK.upper()],
    'short uuid': ['ln', '-sfT', '/proc/42/ns/net', LINK[:-1]],
    'trailing newline': ['ln', '-sfT', '/proc/42/ns/net', LINK + '\n'],
    'shell metacharacters': ['ln', '-sfT', '/proc/42/ns/net',
                             LINK + ';rm -rf /'],
    'command substitution': ['ln', '-sfT', '/proc/$(id -u)/ns/net', LINK],
    'without -T': ['ln', '-sf', '/proc/42/ns/net', LINK],
    'flags split': ['ln', '-s', '-f', '-T', '/proc/42/ns/net', LINK],
    'hard link': ['ln', '-fT', '/proc/42/ns/net', LINK],
    'target directory flag': ['ln', '-sfT', '--target-directory=/etc',
                              '/proc/42/ns/net'],
    'extra argument': ['ln', '-sfT', '/proc/42/ns/net', LINK, '/etc/x'],
    'second source': ['ln', '-sfT', '/proc/42/ns/net', '/proc/43/ns/net',
                      LINK],
    'absolute command path': ['/bin/ln', '-sfT', '/proc/42/ns/net', LINK],
    'rm recursive': ['rm', '-rf', LINK],
    'rm of /etc/passwd': ['rm', '-f', '/etc/passwd'],
    'rm of the netns directory': ['rm', '-f', '/var/run/netns'],
    'rm of two files': ['rm', '-f', LINK, '/etc/passwd'],
    'rm with ..': ['rm', '-f', '/var/run/netns/../../etc/nova-' + UUID],
    'mkdir elsewhere': ['mkdir', '-p', '/etc/cron.d/x'],
    'mkdir with mode': ['mkdir', '-p', '-m', '777', '/var/run/netns'],
    'other command': ['cp', '/etc/shadow', LINK],
    'pid 1 (the host namespace)': ['ln', '-sfT', '/proc/1/ns/net', LINK],
    'pid 0': ['ln', '-sfT', '/proc/0/ns/net', LINK],
    'newline after ln': ['ln\n', '-sfT', '/proc/42/ns/net', LINK],
    'newline after -sfT': ['ln', '-sfT\n', '/proc/42/ns/net', LINK],
    'newline after the source': ['ln', '-sfT', '/proc/42/ns/net\n', LINK],
    'newline after -p': ['mkdir', '-p\n', '/var/run/netns'],
    'newline after mkdir': ['mkdir\n', '-p', '/var/run/netns'],
    'newline after the directory': ['mkdir', '-p', '/var/run/netns\n'],
    'newline after -f': ['rm', '-f\n', LINK],
    'newline after rm': ['rm\n', '-f', LINK],
    'flags with a suffix': ['ln', '-sfTv', '/proc/42/ns/net', LINK],
    'rm -f of the link with a trailing slash': ['rm', '-f', LINK + '/'],
    'pid 1 with a leading zero': ['ln', '-sfT', '/proc/01/ns/net', LINK],
    'thread-self source': ['ln', '-sfT', '/proc/thread-self/ns/net', LINK],
    'double slash in the source': ['ln', '-sfT', '/proc//42/ns/net', LINK],
    'ln without arguments': ['ln'],
}


class RootwrapFiltersTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.filters = wrapper.load_filters([FILTERS_DIR])

    def _ours(self):
        # load_filters always adds the privsep-helper CommandFilter itself.
        return [f for f in self.filters if f.name != 'privsep-helper']

    def test_filter_file_loads_three_regexp_filters(self):
        ours = self._ours()
        self.assertEqual(sorted(ALLOWED), sorted(f.name for f in ours))
        for f in ours:
            self.assertIs(filters.RegExpFilter, type(f), f.name)
            self.assertEqual('root', f.run_as, f.name)

    def test_no_command_filter_for_ln_rm_or_mkdir(self):
        for f in self.filters:
            if type(f) is filters.CommandFilter:
                self.assertNotIn(os.path.basename(f.exec_path),
                                 ('ln', 'rm', 'mkdir'), f.name)

    def test_allowed_commands_match_and_run_the_system_binary(self):
        for name, cmd in ALLOWED.items():
            matched = wrapper.match_filter(self.filters, cmd,
                                           exec_dirs=EXEC_DIRS)
            self.assertEqual(name, matched.name)
            command = matched.get_command(cmd, exec_dirs=EXEC_DIRS)
            self.assertEqual(cmd[1:], command[1:])
            self.assertEqual(cmd[0], os.path.basename(command[0]))
            self.assertTrue(os.path.isabs(command[0]), command)

    def test_largest_and_smallest_pids_are_allowed(self):
        for pid in ('2', '9', '10', '4194304'):
            cmd = ['ln', '-sfT', '/proc/%s/ns/net' % pid, LINK]
            wrapper.match_filter(self.filters, cmd, exec_dirs=EXEC_DIRS)

    def test_every_argument_is_anchored(self):
        # rootwrap appends "$" to each pattern, which accepts a trailing
        # newline: every pattern, command names and flags included, must
        # end in \Z itself.
        for f in self._ours():
            for pattern in f.args:
                self.assertTrue(pattern.endswith('\\Z'), (f.name, pattern))

    def test_hostile_variants_are_refused(self):
        self.assertGreaterEqual(len(HOSTILE), 12)
        accepted = []
        for what, cmd in HOSTILE.items():
            try:
                wrapper.match_filter(self.filters, cmd, exec_dirs=EXEC_DIRS)
            except wrapper.NoFilterMatched:
                continue
            accepted.append(what)
        self.assertEqual([], accepted)


class NamespaceLinkCommandsTestCase(testtools.TestCase):
    """The commands netns.py runs are exactly those the filters allow."""

    def setUp(self):
        super().setUp()
        self.filters = wrapper.load_filters([FILTERS_DIR])
        self.commands = []
        self.addCleanup(CONF.clear_override, 'root_helper', group='docker')
        CONF.set_override('root_helper', 'nova-rootwrap /etc/x.conf',
                          group='docker')

        def record(*cmd, **kwargs):
            self.assertTrue(kwargs.get('run_as_root'))
            self.assertEqual('nova-rootwrap /etc/x.conf',
                             kwargs.get('root_helper'))
            self.commands.append(list(cmd))
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_concurrency.processutils.execute', record))
        # netns.py skips mkdir when the directory exists and rm when the
        # link is missing; make both happen regardless of this host.
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.netns.os.path.isdir', lambda p: False))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.netns.os.path.lexists', lambda p: True))

    def test_create_and_remove_pass_the_filters(self):
        netns.create_link(UUID, 4242)
        netns.remove_link(UUID)
        self.assertEqual([ALLOWED['nova_docker_netns_dir'],
                          ALLOWED['nova_docker_netns_link'],
                          ALLOWED['nova_docker_netns_unlink']],
                         self.commands)
        for cmd in self.commands:
            wrapper.match_filter(self.filters, cmd, exec_dirs=EXEC_DIRS)

    def test_bad_pid_or_uuid_runs_nothing(self):
        # The link is for operators: create_link logs, it never fails a
        # boot.
        logged = self.useFixture(fixtures.FakeLogger())
        for pid in (0, 1, -5, '42', True, None):
            self.assertFalse(netns.create_link(UUID, pid))
        self.assertIn('1 is not the pid of a running sandbox', logged.output)
        for uuid in (UUID.upper(), UUID[:-1], '../' + UUID, ''):
            self.assertFalse(netns.create_link(uuid, 42))
            self.assertRaises(exception.NamespaceLinkFailed,
                              netns.remove_link, uuid)
        self.assertEqual([], self.commands)

    def test_link_name(self):
        self.assertEqual('nova-' + UUID, netns.link_name(UUID))
        self.assertEqual(LINK, netns.link_path(UUID))

    def test_link_name_refuses_a_trailing_newline(self):
        # As the privileged side does: a name with a newline is no uuid.
        self.assertFalse(netns.is_instance_uuid(UUID + '\n'))
        self.assertRaises(exception.NamespaceLinkFailed, netns.link_name,
                          UUID + '\n')
