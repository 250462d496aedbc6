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

"""Bad input through the API: the server goes to ERROR with a fault that
says what to fix, and nothing of it is left (ports, containers, OVS ports,
namespace link)."""

from tempest.lib.common.utils import data_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin import workloads

# What Nova shows when a driver's error was not understood: never good
# enough as a fault for bad input.
UNREADABLE = ('No valid host was found', 'Exceeded maximum number of retries')


class BadInputTest(base.NovaDockerScenarioTest):

    def _boot_expect_fault(self, image_id, metadata, *expected):
        server = self.create_server(image_id, metadata)
        server = self.wait_for_server(server['id'], 'ERROR')
        fault = server.get('fault', {}).get('message', '')
        for text in expected:
            self.assertIn(text, fault)
        for text in UNREADABLE:
            self.assertNotIn(text, fault)
        self.assert_nothing_left(server['id'])
        return fault

    @decorators.idempotent_id('5b8e2d6a-1c3f-4e7d-9a0b-3d4f5e6a7b01')
    def test_non_docker_image(self):
        image_id = self.create_image(b'not a container image',
                                     container_format='bare')
        self._boot_expect_fault(image_id, {}, image_id,
                                'container_format=docker')

    @decorators.idempotent_id('5b8e2d6a-1c3f-4e7d-9a0b-3d4f5e6a7b02')
    def test_image_with_empty_data(self):
        image_id = self.create_image(b'')
        self._boot_expect_fault(image_id, {}, image_id, 'docker save')

    @decorators.idempotent_id('5b8e2d6a-1c3f-4e7d-9a0b-3d4f5e6a7b03')
    def test_image_without_data_refused_by_api(self):
        image_id = self.create_image(None)
        exc = self.assertRaises(
            lib_exc.BadRequest, self.servers_client.create_server,
            name=data_utils.rand_name('nd-tempest'), imageRef=image_id,
            flavorRef=self.flavor_id, networks=[{'uuid': self.network['id']}])
        self.assertIn('not active', str(exc))

    @decorators.idempotent_id('5b8e2d6a-1c3f-4e7d-9a0b-3d4f5e6a7b04')
    def test_bad_metadata_key(self):
        image_id = self.create_workload_image()
        metadata = workloads.web_metadata('x')
        metadata['bad-key'] = 'x'
        self._boot_expect_fault(image_id, metadata, "'bad-key'",
                                'environment variable')
