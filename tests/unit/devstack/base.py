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

"""Run the devstack plugin's phases against stand-ins, in a temp dir.

Every path the plugin writes (nova.conf, glance-api.conf, heat.conf, the
rootwrap.d directory, its state directory, the dockerd pid file and log) is
pointed into the test's temp dir; the commands it runs (openstack,
ovs-vsctl, docker, sudo, ...) are stand-ins from this package that record
their command lines and keep their state in JSON files. No root, no
daemon, nothing outside the temp dir.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import fixtures
import testtools

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
FILTERS = os.path.join(REPO, 'etc', 'nova', 'rootwrap.d', 'docker.filters')
COMMANDS = ('openstack', 'ovs-vsctl', 'docker', 'id', 'usermod', 'gpasswd',
            'getent', 'systemctl')
PHASES = (('stack', 'pre-install'), ('stack', 'install'),
          ('stack', 'post-config'), ('stack', 'extra'),
          ('stack', 'test-config'))


class PluginTestCase(testtools.TestCase):
    """A devstack node in a temp dir, with the plugin enabled."""

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.bin = self._dir('bin')
        self.state = self._dir('standin-state')
        self.calls_log = os.path.join(self.root, 'calls.jsonl')
        self.nova_conf = os.path.join(self._dir('etc/nova'), 'nova.conf')
        self.glance_conf = os.path.join(self._dir('etc/glance'),
                                        'glance-api.conf')
        self.heat_conf = os.path.join(self._dir('etc/heat'), 'heat.conf')
        self.rootwrap_d = os.path.join(self.root, 'etc/nova/rootwrap.d')
        self.data_dir = self._dir('opt/stack/data')
        self.log_dir = self._dir('opt/stack/logs')
        self.pidfile = os.path.join(self._dir('run'), 'docker.pid')
        self.site = self._dir('site')
        self.heat_plugin_dir = self._dir('site/heat_plugins')
        open(os.path.join(self.heat_plugin_dir, '__init__.py'), 'w').close()
        self._install_standins()
        self.addCleanup(self._kill_dockerd)
        self.env = {
            'PATH': self.bin + os.pathsep + os.environ.get('PATH', ''),
            'HOME': self.root,
            'TMPDIR': self._dir('tmp'),
            'LANG': 'C.UTF-8',
            'PYTHONPATH': self.site,
            'STANDIN_PY': sys.executable,
            'STANDIN_CMD': os.path.join(HERE, 'standin_cmd.py'),
            'STANDIN_INI': os.path.join(HERE, 'standin_ini.py'),
            'STANDIN_CALLS': self.calls_log,
            'STANDIN_RECORD_SH': os.path.join(HERE, 'standin-record.sh'),
            'STANDIN_STATE': self.state,
            # devstack's own variables
            'ENABLED_SERVICES': 'key,n-api,n-cpu,g-api,h-eng,h-api',
            'STACK_USER': 'stack',
            'DATA_DIR': self.data_dir,
            'LOGDIR': self.log_dir,
            'NOVA_CONF_DIR': os.path.dirname(self.nova_conf),
            'NOVA_CONF': self.nova_conf,
            'GLANCE_API_CONF': self.glance_conf,
            'HEAT_CONF': self.heat_conf,
            'PYTHON': sys.executable,
            # the plugin's host paths
            'DOCKER_PIDFILE': self.pidfile,
            'NOVA_DOCKER_SYSTEMD_DIR': os.path.join(self.root, 'no-systemd'),
            'DOCKER_COMPUTE_HOST': 'compute-1',
            'DOCKER_START_TIMEOUT': '10',
            'BUSYBOX': self._fake_busybox(),
        }
        if not os.path.exists(FILTERS):
            # The real filter file is written elsewhere; until it exists,
            # install a placeholder from the temp dir.
            placeholder = os.path.join(self.root, 'docker.filters')
            with open(placeholder, 'w') as f:
                f.write('[Filters]\n# placeholder for the unit tests\n')
            self.env['NOVA_DOCKER_FILTERS'] = placeholder
        self.filters_source = self.env.get('NOVA_DOCKER_FILTERS', FILTERS)

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

    def _install_standins(self):
        for name in COMMANDS:
            self._write_exec(name, '#!/bin/sh\nexec "$STANDIN_PY" '
                             '"$STANDIN_CMD" %s "$@"\n' % name)
        for name, source in (('dockerd', 'standin-dockerd.sh'),
                             ('sudo', 'standin-sudo.sh')):
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
        """Live processes called *comm* whose environment is this test's."""
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
            if ('STANDIN_STATE=%s' % self.state).encode() in env:
                found.append(int(pid))
        return found

    # -- the node's starting point ---------------------------------------

    def docker_running(self):
        open(os.path.join(self.state, 'dockerd.up'), 'w').close()

    def set_standin_state(self, name, value):
        with open(os.path.join(self.state, name + '.json'), 'w') as f:
            json.dump(value, f)

    def standin_state(self, name, default=None):
        try:
            with open(os.path.join(self.state, name + '.json')) as f:
                return json.load(f)
        except FileNotFoundError:
            return default

    def write_file(self, path, text):
        with open(path, 'w') as f:
            f.write(text)

    # -- running the plugin ----------------------------------------------

    def run_phase(self, *phase, check=True, **env):
        """Run plugin.sh PHASE as devstack does: settings, then plugin."""
        script = ('set -o errexit -o nounset\n'
                  'source "$1"; source "$2/devstack/settings"\n'
                  'shift 2\n'
                  'source "$NOVA_DOCKER_DIR/devstack/plugin.sh" "$@"\n')
        full_env = dict(self.env, **env)
        proc = subprocess.run(
            ['bash', '-c', script, 'stack.sh',
             os.path.join(HERE, 'standin-functions.sh'), REPO] + list(phase),
            env=full_env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            self.fail('plugin.sh %s failed (%d):\n%s\n%s' % (
                ' '.join(phase), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def stack(self, **env):
        for phase in PHASES:
            self.run_phase(*phase, **env)

    def calls(self, name=None, *prefix):
        """Recorded command lines, optionally of *name* starting *prefix*.

        The openstack --os-cloud option is dropped for readability.
        """
        try:
            with open(self.calls_log) as f:
                lines = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        result = []
        for argv in lines:
            if argv[0] == 'openstack' and argv[1] == '--os-cloud':
                argv = argv[:1] + argv[3:]
            if name is None or (argv[0] == name and
                                argv[1:1 + len(prefix)] == list(prefix)):
                result.append(argv)
        return result

    def snapshot(self):
        """Mode and content of every file the node holds.

        The stand-ins' own records are left out.
        """
        result = {}
        skip = (self.state, self.calls_log, self.bin, self.env['TMPDIR'])
        for top, dirs, files in os.walk(self.root):
            for name in files:
                path = os.path.join(top, name)
                if path.startswith(skip) or '__pycache__' in path:
                    continue
                st = os.stat(path)
                with open(path, 'rb') as f:
                    result[os.path.relpath(path, self.root)] = (
                        stat.S_IMODE(st.st_mode), f.read())
        return result

    def wait_gone(self, pid, timeout=10):
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    @staticmethod
    def _alive(pid):
        try:
            with open('/proc/%d/stat' % pid) as f:
                return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
        except (OSError, IndexError):
            return False
