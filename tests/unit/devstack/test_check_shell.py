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

"""tools/check-shell.sh: bash -n and shellcheck on every shell file."""

import os
import shutil
import subprocess

import fixtures
import testtools

from tests.unit.devstack import base

SCRIPT = os.path.join(base.REPO, 'tools', 'check-shell.sh')
DEVSTACK_FILES = ['devstack/settings', 'devstack/plugin.sh',
                  'devstack/lib/nova-docker']


def run(args, cwd):
    return subprocess.run(['bash'] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


class CheckShellTestCase(testtools.TestCase):

    def test_devstack_files_pass(self):
        proc = run([SCRIPT] + DEVSTACK_FILES, base.REPO)
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        self.assertIn('3 shell files passed', proc.stdout)

    def test_tox_pep8_runs_it(self):
        with open(os.path.join(base.REPO, 'tox.ini')) as f:
            self.assertIn('bash {toxinidir}/tools/check-shell.sh', f.read())

    def _repo(self, files):
        """A git checkout holding *files* (path: text), all tracked."""
        root = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(root, 'tools'))
        shutil.copy(SCRIPT, os.path.join(root, 'tools', 'check-shell.sh'))
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'w') as f:
                f.write(text)
        subprocess.run(['git', 'init', '-q'], cwd=root, check=True)
        subprocess.run(['git', 'add', '.'], cwd=root, check=True)
        return root

    def test_finds_shell_files_and_names_each_bad_one(self):
        root = self._repo({
            'devstack/settings': 'FOO=${FOO:-1}\nexport FOO\n',
            # Package lists are no shell.
            'devstack/files/debs/x': 'docker.io\nfoo bar $(\n',
            # A bashism in a POSIX entrypoint, found by its shebang.
            'heat_plugins/odl/entrypoint': '#!/bin/sh\n[[ -n "$1" ]]\n',
            'tools/unquoted.sh': '#!/bin/bash\nrm $1\n',
            '.ci/run': '#!/bin/bash\nif then\n',
            'devstack/lib/good': 'echo "${1:-}"\n',
            'README.md': '# not shell\n',
        })
        # Not tracked: not checked.
        with open(os.path.join(root, 'scratch.sh'), 'w') as f:
            f.write('#!/bin/bash\nrm $1\n')
        proc = run(['tools/check-shell.sh'], root)
        self.assertEqual(1, proc.returncode, proc.stdout + proc.stderr)
        failed = proc.stderr.strip().splitlines()[-1]
        self.assertEqual(
            'check-shell: FAILED: .ci/run heat_plugins/odl/entrypoint '
            'tools/unquoted.sh', failed)
        self.assertIn('bash -n found errors in .ci/run', proc.stderr)
        self.assertIn('shellcheck found problems in tools/unquoted.sh',
                      proc.stderr)
        self.assertIn('SC2086', proc.stdout)
        self.assertIn('SC3010', proc.stdout)
        output = proc.stdout + proc.stderr
        for unchecked in ('devstack/files', 'devstack/settings',
                          'devstack/lib/good', 'README', 'scratch.sh'):
            self.assertNotIn(unchecked, output)

    def test_clean_tree_passes(self):
        root = self._repo({
            'devstack/settings': 'FOO=${FOO:-1}\nexport FOO\n',
            'tools/a.sh': '#!/bin/bash\necho "$1"\n',
            'run-me': '#!/bin/sh\necho "$1"\n',
        })
        proc = run(['tools/check-shell.sh'], root)
        self.assertEqual(0, proc.returncode, proc.stdout + proc.stderr)
        # settings, a.sh, run-me and the script itself.
        self.assertIn('4 shell files passed', proc.stdout)
