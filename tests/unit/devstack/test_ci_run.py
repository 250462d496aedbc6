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

"""The CI entry point names no path of one machine."""

import os
import re

import testtools

from tests.unit.devstack import base

# An absolute directory path: not a shebang, not a relative one (../x).
_ABSOLUTE = re.compile(r'(?<![\w.$}/])/[A-Za-z_][\w.-]*/')


class CiRunTestCase(testtools.TestCase):

    def test_paths_are_relative_or_configurable(self):
        with open(os.path.join(base.REPO, '.ci', 'run')) as f:
            lines = [line for line in f.read().splitlines()[1:]
                     if not line.lstrip().startswith('#')]
        found = [line for line in lines if _ABSOLUTE.search(line)]
        self.assertEqual([], found)
