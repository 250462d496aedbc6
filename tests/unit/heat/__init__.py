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

"""Heat plugin unit tests: run in an interpreter of their own.

Heat and Nova register conflicting options (``host``...) on the same global
``cfg.CONF``, and Heat's test harness needs oslo.service's threading
backend selected before anything imports ``heat.engine``. Nova's tests
elsewhere in tests/unit import Nova, so when the whole unit suite is
discovered in one process this package contributes a single test that runs
the Heat tests in a fresh interpreter (and reports their output on
failure). Run them directly, one by one, with:

    NOVA_DOCKER_HEAT_TESTS=1 python -m stestr --test-path ./tests/unit/heat run
"""

import os
import subprocess
import sys

import testtools

IN_PROCESS = 'NOVA_DOCKER_HEAT_TESTS'
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


class HeatUnitTestsInSubprocess(testtools.TestCase):

    def test_heat_plugin_unit_tests(self):
        env = dict(os.environ, **{IN_PROCESS: '1'})
        proc = subprocess.run(
            [sys.executable, '-W', 'ignore', '-m', 'testtools.run',
             'discover', '-s', HERE, '-t', REPO], cwd=REPO, env=env,
            capture_output=True, text=True, timeout=900)
        self.assertEqual(0, proc.returncode,
                         'Heat plugin unit tests failed:\n%s\n%s'
                         % (proc.stdout[-20000:], proc.stderr[-20000:]))


def load_tests(loader, standard_tests, pattern):
    if not os.environ.get(IN_PROCESS):
        return loader.loadTestsFromTestCase(HeatUnitTestsInSubprocess)
    # Heat's harness first: it selects the threading backend, which
    # heat.engine would otherwise default to eventlet on import.
    from heat.tests import common  # noqa: F401
    # Not standard_tests: that is the subprocess test above.
    return loader.discover(start_dir=HERE, pattern=pattern or 'test*.py',
                           top_level_dir=REPO)
