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

"""A private dockerd a test may kill and restart.

The shared engine is never stopped or reconfigured. This one has its own
socket, data root, exec root and pid file under one directory in /run, no
bridge and no iptables rules; on clean-up it is stopped and everything it
made (containers, shims, mounts, files) is removed.
"""

import contextlib
import os
import signal
import subprocess
import tempfile
import time

import docker
import fixtures

START_TIMEOUT = 90


def _command(pid):
    """The NUL-separated command line of process *pid* ('' if gone)."""
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


class PrivateEngine(fixtures.Fixture):
    """A second dockerd, started by ``setUp`` and removed at clean-up."""

    def __init__(self, live_restore=False):
        super().__init__()
        self.live_restore = live_restore
        self.process = None
        self.removed = False

    def _setUp(self):
        self.root = tempfile.mkdtemp(prefix='nd-guest-engine-', dir='/run')
        self.addCleanup(self.remove)
        self.socket = os.path.join(self.root, 'docker.sock')
        self.url = 'unix://' + self.socket
        self.log_path = os.path.join(self.root, 'dockerd.log')
        self.start()

    # -- the daemon -----------------------------------------------------------

    def command(self):
        cmd = ['dockerd', '--host', self.url,
               '--data-root', os.path.join(self.root, 'data'),
               '--exec-root', os.path.join(self.root, 'exec'),
               '--pidfile', os.path.join(self.root, 'docker.pid'),
               '--bridge=none', '--iptables=false', '--ip6tables=false']
        if self.live_restore:
            cmd.append('--live-restore')
        return cmd

    def start(self):
        """Start the daemon and wait until it answers."""
        with open(self.log_path, 'ab') as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with contextlib.closing(self.client()) as client:
                    client.ping()
                return
            except Exception:
                time.sleep(0.2)
        raise AssertionError(  # noqa: N534
            'private dockerd did not answer on %s within %d s; its log '
            'ends: %s' % (self.socket, START_TIMEOUT, self.log_tail()))

    def kill(self, sig=signal.SIGKILL, timeout=60):
        """Send *sig* to the daemon and wait for it to exit.

        SIGKILL is a crash: dockerd and its containerd die, the
        containers' shims live on.
        """
        daemons = self._own_daemons()
        self.process.send_signal(sig)
        self.process.wait(timeout)
        # containerd dies with dockerd; the next dockerd takes a containerd
        # pid that still exists, even a zombie not yet reaped, for a live
        # one and waits on it in vain.
        deadline = time.monotonic() + timeout
        while (any(os.path.exists('/proc/%d' % pid) for pid in daemons) and
               time.monotonic() < deadline):
            time.sleep(0.1)

    def restart(self, sig=signal.SIGKILL):
        """Kill the daemon (a crash, by default) and start it again."""
        self.kill(sig)
        self.start()

    def client(self):
        return docker.DockerClient(base_url=self.url, version='auto',
                                   timeout=60)

    def load(self, image):
        """Copy *image* from the shared engine into this one."""
        save = subprocess.Popen(['docker', 'save', image],
                                stdout=subprocess.PIPE)
        try:
            subprocess.run(['docker', '-H', self.url, 'load'],
                           stdin=save.stdout, check=True,
                           capture_output=True)
        finally:
            save.stdout.close()
            save.wait()

    def log_tail(self, lines=15):
        with open(self.log_path, 'rb') as f:
            return b''.join(f.readlines()[-lines:]).decode('utf-8', 'replace')

    # -- clean-up -------------------------------------------------------------

    def remove(self):
        """Stop the daemon and remove all it made (idempotent)."""
        if self.removed:
            return
        self.removed = True
        if self.process and self.process.poll() is None:
            try:
                with contextlib.closing(self.client()) as client:
                    for c in client.containers.list(all=True):
                        c.remove(force=True, v=True)
            except Exception:
                pass
            self.kill(signal.SIGTERM)
        # What outlives a killed daemon: container shims of this engine
        # (their command line names its exec root) and its mounts.
        for pid in self._own_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mount in sorted(self._own_mounts(), reverse=True):
            subprocess.run(['umount', '-l', mount], capture_output=True)
        subprocess.run(['rm', '-rf', '--one-file-system', self.root],
                       capture_output=True)

    def _own_processes(self):
        found = []
        for pid in os.listdir('/proc'):
            if not pid.isdigit():
                continue
            if self.root + '/' in _command(pid):
                found.append(int(pid))
        return found

    def _own_daemons(self):
        """dockerd and containerd of this engine still alive."""
        return [pid for pid in self._own_processes()
                if _command(pid).split('\0')[0].split('/')[-1] in
                ('dockerd', 'containerd')]

    def _own_mounts(self):
        with open('/proc/mounts') as f:
            points = [line.split()[1] for line in f]
        return [p for p in points
                if p == self.root or p.startswith(self.root + '/')]

    def leftovers(self):
        """What of this engine is still on the host (after clean-up)."""
        found = ['process %d' % p for p in self._own_processes()]
        found += ['mount %s' % m for m in self._own_mounts()]
        if os.path.exists(self.root):
            found.append('directory %s' % self.root)
        return found
