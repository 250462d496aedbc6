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

"""A devstack node run by devstack's own code, with stubs only on PATH.

DEVSTACK_DIR names the devstack tree (default: ../shared/reference/devstack
beside this checkout, as .ci/run sets it). A missing tree FAILS the tests.
devstack-node.sh runs stack.sh's sequence (or devstack's unstack.sh and
clean.sh) in a private mount namespace whose /etc, /opt, /var and
/usr/local are overlays backed by the test's temp dir and whose /run is
empty: devstack writes /etc/nova, /opt/stack ... as it would, and the host
sees none of it.
"""

import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import fixtures
import testtools

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
# The local.conf samples the install guide includes (doc/source/install/
# devstack.rst): the tests stack these very files.
SAMPLES = os.path.join(REPO, 'devstack', 'files')
DEFAULT_DEVSTACK = os.path.join(REPO, '..', 'shared', 'reference',
                                'devstack')
PY_STUBS = ('openstack', 'nova-manage', 'systemctl', 'ovs-vsctl', 'docker',
            'apt-get', 'git', 'getent', 'ovn-nbctl', 'ovn-sbctl',
            'ovs-appctl', 'wget', 'xpath', 'gethostip',
            'neutron-odl-ovs-hostconfig',
            # The host's processes and kernel are shared: devstack's
            # pkill/kill/modprobe/ovs-dpctl must not reach them.
            'ovs-dpctl', 'modprobe', 'pkill', 'kill')
OVERLAID = ('/etc', '/opt', '/var', '/usr/local')
URL = 'https://example.org/nova-docker'
# devstack refuses to run as root (unstack.sh exits): run it as a "stack"
# user of the node's /etc, keeping root's capabilities (ambient), so that
# what devstack does through sudo still works with sudo a plain stub.
STACK_UID = 1999
BECOME_STACK = (
    'if ! grep -q "^stack:" /etc/passwd; then '
    'echo "stack:x:%(uid)d:%(uid)d:devstack:/opt/stack:/bin/bash" '
    '>>/etc/passwd && echo "stack:x:%(uid)d:" >>/etc/group; fi && '
    'caps=$(capsh --decode=$(awk \'/^CapBnd/ {print $2}\' /proc/self/status)'
    ' | sed "s/.*=//; s/cap_/+/g") && '
    'exec setpriv --reuid=%(uid)d --regid=%(uid)d --init-groups '
    '--inh-caps="$caps" --ambient-caps="$caps" bash "$0" "$@"'
    % {'uid': STACK_UID})

# The node's own network (its namespace goes with its last process): one
# address and a default route, from which devstack derives HOST_IP.
NODE_IP = '198.51.100.5'
NODE_NETWORK = (
    'ip link set lo up && ip link add nd0 type veth peer name nd1 && '
    'ip addr add %s/24 dev nd0 && ip link set nd1 up && ip link set nd0 up && '
    'ip route add default dev nd0' % NODE_IP)


def devstack_dir():
    path = os.path.abspath(os.environ.get('DEVSTACK_DIR', DEFAULT_DEVSTACK))
    if not os.path.isfile(os.path.join(path, 'stack.sh')):
        raise AssertionError(  # noqa: N534
            'DEVSTACK_DIR=%s is not a devstack tree: point DEVSTACK_DIR at a '
            'devstack checkout (.ci/run sets it)' % path)
    return path


def networking_odl_dir():
    """networking-odl's devstack directory.

    NETWORKING_ODL_DEVSTACK_DIR, else networking-odl-devstack next to the
    devstack tree (as in ../shared/reference).
    """
    path = os.environ.get('NETWORKING_ODL_DEVSTACK_DIR') or os.path.join(
        os.path.dirname(devstack_dir()), 'networking-odl-devstack')
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, 'plugin.sh')):
        raise AssertionError(  # noqa: N534
            '%s is not networking-odl\'s devstack directory: set '
            'NETWORKING_ODL_DEVSTACK_DIR, or put networking-odl-devstack '
            'next to the devstack tree' % path)
    return path


def local_conf(name):
    """The sample devstack/files/local.conf.<name>, as the docs show it."""
    with open(os.path.join(SAMPLES, 'local.conf.' + name)) as f:
        return f.read()


def read_ini(path):
    parser = configparser.RawConfigParser(strict=False,
                                          default_section='\x00')
    parser.optionxform = str
    parser.read(path)
    return parser


class NodeTestCase(testtools.TestCase):
    """One devstack node in a temp dir."""

    def setUp(self):
        super().setUp()
        self.devstack = devstack_dir()
        self.root = self.useFixture(fixtures.TempDir()).path
        # The node's stack user looks commands up here: bash checks the
        # mode bits, not the capabilities it keeps.
        os.chmod(self.root, 0o755)
        self.node = self._dir('node')
        self.bin = self._dir('bin')
        self.state = self._dir('stub-state')
        self.calls_log = os.path.join(self.root, 'calls.jsonl')
        self.heat = os.path.join(HERE, 'plugins', 'heat')
        self.odl = self._dir('networking-odl')
        os.symlink(networking_odl_dir(),
                   os.path.join(self.odl, 'devstack'))
        # The rest of a networking-odl checkout that devstack reads (its
        # package is never imported: pip is a stub).
        with open(os.path.join(self.odl, 'setup.cfg'), 'w') as f:
            f.write('[metadata]\nname = networking-odl\n')
        self._install_stubs()
        self.addCleanup(self._kill_dockerd)
        base_python = getattr(sys, '_base_executable', sys.executable)
        self.env = {
            'PATH': self.bin + os.pathsep + os.environ.get('PATH', ''),
            'HOME': self._dir('home'),
            'TMPDIR': self._dir('tmp'),
            'LANG': 'C.UTF-8',
            'DEVSTACK_DIR': self.devstack,
            'STUB_BIN': self.bin,
            'STUB_PY': sys.executable,
            'STUB_REAL_PYTHON': base_python,
            'STUB_CMD': os.path.join(HERE, 'stubs.py'),
            'STUB_CALLS': self.calls_log,
            'STUB_RECORD_SH': os.path.join(HERE, 'stub-record.sh'),
            'STUB_STATE': self.state,
            'STUB_GIT_REMOTES': json.dumps({
                URL: REPO,
                'https://opendev.org/openstack/heat': self.heat,
                'https://opendev.org/openstack/networking-odl': self.odl,
            }),
            # Where a plugin is told nothing else, devstack's defaults stand;
            # only time-outs are shortened for the tests.
            'NOVA_READY_TIMEOUT': '5',
            'NOVA_DOCKER_REGISTER_TIMEOUT': '3',
            'DOCKER_START_TIMEOUT': '10',
            'BUSYBOX': self._fake_busybox(),
        }
        for name in ('api.up', 'ovs.up'):
            open(os.path.join(self.state, name), 'w').close()

    # -- setup helpers ---------------------------------------------------

    def _dir(self, relative):
        path = os.path.join(self.root, relative)
        os.makedirs(path, exist_ok=True)
        return path

    def _write_exec(self, name, text):
        path = os.path.join(self.bin, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, 0o755)

    def _install_stubs(self):
        for name in PY_STUBS:
            # -I -S: the standard library only, and a quicker start.
            self._write_exec(name, '#!/bin/sh\nexec "$STUB_PY" -I -S '
                             '"$STUB_CMD" %s "$@"\n' % name)
        # A new virtualenv gets the pip stub: there is no index to reach.
        venv = ('#!/bin/bash\n'
                'if [[ $1 == -m && $2 == venv ]]; then\n'
                '    shift 2\n'
                '    "$STUB_REAL_PYTHON" -m venv --without-pip "$@" || exit\n'
                '    dir=${*: -1}\n'
                '    printf \'#!/bin/sh\\nexport STUB_VENV=%s\\n'
                'exec "$STUB_PY" "$STUB_CMD" pip "$@"\\n\' "$dir"'
                ' >"$dir/bin/pip"\n'
                '    chmod 755 "$dir/bin/pip"\n'
                '    exit 0\n'
                'fi\n'
                'exec "$STUB_REAL_PYTHON" "$@"\n')
        version = 'python%d.%d' % sys.version_info[:2]
        for name in ('python', 'python3', version):
            self._write_exec(name, venv)
        for name, source in (('dockerd', 'stub-dockerd.sh'),
                             ('sudo', 'stub-sudo.sh')):
            shutil.copy(os.path.join(HERE, source),
                        os.path.join(self.bin, name))
            os.chmod(os.path.join(self.bin, name), 0o755)

    def _fake_busybox(self):
        path = os.path.join(self._dir('host'), 'busybox')
        with open(path, 'w') as f:
            f.write('#!/bin/sh\n[ "$1" = --list ] && printf "sh\\nls\\n'
                    'busybox\\n"\n')
        os.chmod(path, 0o755)
        return path

    def _kill_dockerd(self):
        for pid in self.processes_named('dockerd'):
            os.kill(pid, signal.SIGKILL)

    def processes_named(self, comm):
        found = []
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open('/proc/%s/comm' % pid) as f:
                    if f.read().strip() != comm:
                        continue
                with open('/proc/%s/environ' % pid, 'rb') as f:
                    env = f.read().split(b'\0')
            except OSError:
                continue
            if ('STUB_STATE=%s' % self.state).encode() in env:
                found.append(int(pid))
        return found

    # -- running devstack ------------------------------------------------

    def run_devstack(self, action, local_conf=None, check=True, **env):
        """devstack-node.sh ACTION in the node's mount namespace."""
        if local_conf is not None:
            with open(os.path.join(self.node, 'local.conf'), 'w') as f:
                f.write(local_conf)
        mounts = []
        for top in OVERLAID:
            name = top.strip('/').replace('/', '-')
            upper, work = (self._dir('fs/%s/upper' % name),
                           self._dir('fs/%s/work' % name))
            mounts.append('mount -t overlay overlay -o lowerdir=%s,'
                          'upperdir=%s,workdir=%s %s' % (top, upper, work,
                                                         top))
        run = self._dir('fs/run')
        mounts.append('mount --bind %s /run' % run)
        script = ' && '.join(mounts + [NODE_NETWORK]) + ' && ' + BECOME_STACK
        # A private network namespace too: devstack's ip/iptables/sysctl
        # calls change nothing on the shared host.
        prefix = ['unshare', '--mount', '--net', '--propagation', 'private']
        if os.geteuid() != 0:
            prefix[1:1] = ['--map-root-user']
        proc = subprocess.run(
            prefix + ['bash', '-c', script,
                      os.path.join(HERE, 'devstack-node.sh'), self.node,
                      action],
            env=dict(self.env, **env), capture_output=True, text=True,
            # Bounded, but generous: a loaded 2-core host runs one stack.sh
            # in 20 s idle and over 150 s at load 20.
            timeout=600)
        self.addDetail('%s-output' % action,
                       testtools.content.text_content(
                           proc.stdout[-20000:] + proc.stderr[-20000:]))
        if check and proc.returncode != 0:
            self.fail('%s failed (%d):\n%s\n%s' % (
                action, proc.returncode, proc.stdout[-6000:],
                proc.stderr[-6000:]))
        return proc

    def node_path(self, path):
        """Where the node's file *path* (as devstack saw it) is on the host."""
        for top in OVERLAID:
            if path.startswith(top + '/'):
                name = top.strip('/').replace('/', '-')
                return os.path.join(self.root, 'fs', name, 'upper',
                                    path[len(top) + 1:])
        if path.startswith('/run/'):
            return os.path.join(self.root, 'fs', 'run', path[5:])
        return path

    def node_ini(self, path):
        return read_ini(self.node_path(path))

    def stub_state(self, name, default=None):
        try:
            with open(os.path.join(self.state, name + '.json')) as f:
                return json.load(f)
        except FileNotFoundError:
            return default

    def set_stub_state(self, name, value):
        with open(os.path.join(self.state, name + '.json'), 'w') as f:
            json.dump(value, f)

    def calls(self, name=None):
        try:
            with open(self.calls_log) as f:
                lines = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        return [argv for argv in lines if name in (None, argv[0])]

    def group_members(self, group):
        with open(self.node_path('/etc/group')) as f:
            for line in f:
                fields = line.strip().split(':')
                if fields[0] == group:
                    return fields[3].split(',')
        return []

    def api_down(self):
        os.unlink(os.path.join(self.state, 'api.up'))

    @staticmethod
    def without_comments(text):
        return re.sub(r'(?m)^\s*#.*\n', '', text)
