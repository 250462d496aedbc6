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

"""Every local.conf sample is one a test stacks and the install guide shows.

test_stack.py reads devstack/files/local.conf.<name> (so what it stacks is
the file, byte for byte); doc/source/install/devstack.rst includes the same
files with literalinclude. This checks that no sample is left out of either.
"""

import glob
import os
import re

import testtools

from tests.unit.devstack import base
from tests.unit.devstack import test_stack

GUIDE = os.path.join(base.REPO, 'doc', 'source', 'install', 'devstack.rst')


def samples():
    return sorted(os.path.basename(p)[len('local.conf.'):]
                  for p in glob.glob(os.path.join(base.SAMPLES,
                                                  'local.conf.*')))


class LocalConfSamplesTestCase(testtools.TestCase):

    def test_every_sample_is_stacked(self):
        self.assertEqual(samples(), sorted(test_stack.STACKED))

    def test_every_sample_is_a_devstack_local_conf(self):
        for name in samples():
            conf = base.local_conf(name)
            self.assertTrue(conf.startswith('[[local|localrc]]\n'), name)
            self.assertIn('enable_plugin nova-docker ', conf)

    def test_the_install_guide_includes_every_sample(self):
        with open(GUIDE) as f:
            text = f.read()
        included = re.findall(
            r'(?m)^\.\. literalinclude:: '
            r'\.\./\.\./\.\./devstack/files/local\.conf\.(\S+)$', text)
        self.assertEqual(samples(), sorted(included))
