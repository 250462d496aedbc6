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

"""nova-docker-inspect's engine side, without an engine."""

from nova import test

from novadocker.cmd import inspect as inspect_cmd
from tests.unit import test_vifs


class FindContainersTestCase(test.NoDBTestCase):

    UUID = test_vifs.ListingRaceTestCase.UUID

    def test_a_container_removed_mid_listing_is_left_out(self):
        engine = test_vifs.VanishingEngine(self.UUID)
        self.useFixture(engine.fixture())
        found = inspect_cmd.find_containers(self.UUID)
        self.assertEqual([{'role': 'sandbox',
                           'name': 'nova-%s-sandbox' % self.UUID,
                           'id': 'a' * 12, 'status': 'running',
                           'pid': 4242}], found)
