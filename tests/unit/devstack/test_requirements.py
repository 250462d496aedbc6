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

"""requirements.txt's nova line against devstack's nova, with real pip."""

import os
import subprocess
import sys

import fixtures
import testtools

from tests.unit.devstack import base


def nova_line(path):
    with open(path) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line.startswith('nova'):
                return line
    raise AssertionError('no nova line in %s' % path)  # noqa: N534


class NovaRequirementTestCase(testtools.TestCase):

    def venv_with_nova(self, version):
        """A virtualenv holding only a nova distribution of *version*."""
        root = self.useFixture(fixtures.TempDir()).path
        base_python = getattr(sys, '_base_executable', sys.executable)
        subprocess.run([base_python, '-m', 'venv', '--without-pip', root],
                       check=True)
        site = subprocess.check_output(
            [os.path.join(root, 'bin', 'python'), '-c',
             'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
            text=True).strip()
        info = os.path.join(site, 'nova-%s.dist-info' % version)
        os.makedirs(info)
        with open(os.path.join(info, 'METADATA'), 'w') as f:
            f.write('Metadata-Version: 2.1\nName: nova\nVersion: %s\n'
                    % version)
        open(os.path.join(info, 'RECORD'), 'w').close()
        return root, info

    def pip_install(self, venv, requirement):
        return subprocess.run(
            [sys.executable, '-m', 'pip', '--python',
             os.path.join(venv, 'bin', 'python'), 'install', '--no-index',
             '--disable-pip-version-check', requirement],
            capture_output=True, text=True, timeout=120)

    def test_devstack_nova_from_git_is_left_alone(self):
        line = nova_line(os.path.join(base.REPO, 'requirements.txt'))
        venv, info = self.venv_with_nova('33.1.0.dev42')
        proc = self.pip_install(venv, line)
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        self.assertIn('Requirement already satisfied: nova', proc.stdout)
        self.assertTrue(os.path.isdir(info))

    def test_older_nova_is_not_enough(self):
        line = nova_line(os.path.join(base.REPO, 'requirements.txt'))
        venv, _ = self.venv_with_nova('32.0.0')
        proc = self.pip_install(venv, line)
        self.assertNotEqual(0, proc.returncode)

    def test_this_repo_venv_gets_nova_34(self):
        line = nova_line(os.path.join(base.REPO, 'test-requirements.txt'))
        venv, _ = self.venv_with_nova('33.1.0.dev42')
        proc = self.pip_install(venv, line)
        # No index here: pip wants a 34 it cannot find, so it would fetch
        # it. Only that refusal counts: pip failing for any other reason
        # (a bad option, a broken venv) proves nothing about the line.
        self.assertNotEqual(0, proc.returncode)
        self.assertRegex(proc.stderr, r'No matching distribution found for '
                                      r'nova(>=34|<35)')
