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

"""Installing and uninstalling the bundle beside a real Nova.

A throwaway virtualenv gets Nova 34 and the bundle's wheel (dependencies
come from the project virtualenv through a path entry appended *after*
the throwaway site-packages, so Nova itself and the bundle are the
throwaway copies).
"""

import os
import subprocess
import sys
import sysconfig

import fixtures
import testtools

from tools.harness import base

CHECK_LOADS = '''
import nova.virt.docker, novadocker
from nova.virt import driver
d = driver.load_compute_driver(None, "docker.DockerDriver")
print(type(d).__module__ + "." + type(d).__name__)
print(nova.virt.docker.__file__)
'''

CHECK_GONE = '''
import os, nova.virt.driver
print(os.path.exists(os.path.join(os.path.dirname(nova.virt.driver.__file__),
                                  "docker")))
'''


class PackagingTestCase(testtools.TestCase):

    def _run(self, *cmd):
        result = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(0, result.returncode,
                         '%s failed:\n%s%s' % (' '.join(cmd), result.stdout,
                                               result.stderr))
        return result.stdout

    def test_install_loads_and_uninstall_leaves_nova_intact(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        venv = os.path.join(tmp, 'venv')
        python = os.path.join(venv, 'bin', 'python')
        self._run(sys.executable, '-m', 'venv', venv)
        site = self._run(python, '-c', 'import sysconfig; '
                         'print(sysconfig.get_paths()["purelib"])').strip()
        wheels = os.path.join(tmp, 'wheels')
        self._run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                  '-w', wheels, base.REPO)
        from importlib import metadata
        nova_version = metadata.version('nova')
        self._run(python, '-m', 'pip', 'install', '-q', '--no-deps',
                  'nova==%s' % nova_version)
        wheel = [w for w in os.listdir(wheels) if w.startswith('nova_docker')]
        self.assertEqual(1, len(wheel), wheel)
        self._run(python, '-m', 'pip', 'install', '-q', '--no-deps',
                  os.path.join(wheels, wheel[0]))
        # Only now: pip must not see Nova through this path while installing.
        with open(os.path.join(site, 'zz-deps.pth'), 'w') as f:
            f.write(sysconfig.get_paths()['purelib'] + '\n')
        self.assertTrue(os.path.exists(os.path.join(site, 'nova', 'virt',
                                                    'driver.py')))

        out = self._run(python, '-c', CHECK_LOADS).split()
        self.assertEqual('novadocker.virt.docker.driver.DockerDriver', out[0])
        self.assertTrue(out[1].startswith(site), out[1])

        self._run(python, '-m', 'pip', 'uninstall', '-y', '-q', 'nova-docker')
        self.assertEqual('False', self._run(python, '-c', CHECK_GONE).strip())
        self.assertTrue(os.path.exists(os.path.join(site, 'nova', 'virt',
                                                    'driver.py')))
        self.assertFalse(os.path.exists(os.path.join(site, 'nova', 'virt',
                                                     'docker')))
