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

"""OS::ODL::Cluster through Heat's engine: create, attributes, delete."""

from tests.unit.heat import base


class TestCreate(base.OdlClusterTestCase):

    def test_create_three_members_and_attributes(self):
        stack = self.create_stack()
        self.assertEqual((stack.CREATE, stack.COMPLETE), stack.state,
                         stack.status_reason)
        out = self.outputs(stack)
        self.assertEqual(base.MEMBER_IPS, out['member_ips'])
        self.assertEqual('10.0.0.11,10.0.0.12,10.0.0.13',
                         out['odl_ovs_managers'])
        self.assertEqual(['tcp:10.0.0.11:6640', 'tcp:10.0.0.12:6640',
                          'tcp:10.0.0.13:6640'], out['ovs_managers'])
        self.assertEqual(['tcp:10.0.0.11:6653', 'tcp:10.0.0.12:6653',
                          'tcp:10.0.0.13:6653'], out['controllers'])
        self.assertEqual(['http://10.0.0.11:8181/restconf',
                          'http://10.0.0.12:8181/restconf',
                          'http://10.0.0.13:8181/restconf'],
                         out['restconf_urls'])
        self.assertEqual('10.0.0.11', out['leader'])
