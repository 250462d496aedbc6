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

"""Each class of the Heat plugin has a name of its own."""

import ast
import collections
import os

import testtools

import heat_plugins


class ClassNamesTestCase(testtools.TestCase):

    def test_no_two_modules_define_a_class_of_the_same_name(self):
        # A traceback naming ClusterNotReady must say which one it is.
        where = collections.defaultdict(list)
        root = os.path.dirname(heat_plugins.__file__)
        for name in sorted(os.listdir(root)):
            if not name.endswith('.py'):
                continue
            with open(os.path.join(root, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    where[node.name].append(name)
        twice = {k: v for k, v in where.items() if len(v) > 1}
        self.assertEqual({}, twice)
