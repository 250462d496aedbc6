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

"""Every local.conf of the README's devstack section is one a test stacks.

The scenario tests read their local.conf from the README itself (so what
they run is the README's text, byte for byte); this checks that no
local.conf block of the section is left out of them.
"""

import re

import testtools

from tests.unit.devstack import base
from tests.unit.devstack import test_stack

# heading -> the blocks under it that test_stack.py stacks (by index).
STACKED = {
    test_stack.ALL_IN_ONE: [0],
    test_stack.CONTROLLER_AND_COMPUTE: [0, 1],
    test_stack.NETWORKING_ODL: [0],
}


class ReadmeLocalConfTestCase(testtools.TestCase):

    def section(self):
        with open(base.README) as f:
            text = f.read()
        start = text.index('\n## devstack plugin\n')
        end = text.index('\n## ', start + 1)
        return text[start:end]

    def test_every_local_conf_heading_is_stacked(self):
        headings = re.findall(r'(?m)^### local\.conf: .*$', self.section())
        self.assertEqual(sorted(STACKED), sorted(headings))

    def test_every_block_under_them_is_stacked(self):
        for heading, stacked in STACKED.items():
            blocks = base.readme_blocks(heading)
            self.assertEqual(list(range(len(blocks))), stacked, heading)
            for block in blocks:
                self.assertTrue(block.startswith('[[local|localrc]]\n'),
                                block)
                self.assertIn('enable_plugin nova-docker ', block)

    def test_tests_read_the_readme_text(self):
        # The exact bytes under the heading, indentation removed.
        with open(base.README) as f:
            text = f.read()
        block = base.readme_blocks(test_stack.NETWORKING_ODL)[0]
        self.assertIn('\n'.join('    ' + line if line else ''
                                for line in block.rstrip('\n').split('\n')),
                      text)
