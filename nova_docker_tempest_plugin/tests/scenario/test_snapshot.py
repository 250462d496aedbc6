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

"""Snapshot a server that wrote a file, boot the snapshot: the file is
there."""

from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators

from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin import workloads


class SnapshotTest(base.NovaDockerScenarioTest):

    @decorators.idempotent_id('0f3c1a55-8d4e-4a3b-b1f2-2c6c5e9d1a10')
    def test_snapshot_keeps_written_file(self):
        tag = data_utils.rand_name('snapfile')
        image_id = self.create_workload_image()
        writer = self.create_server(image_id, workloads.writer_metadata(tag))
        self.wait_for_server(writer['id'])
        # The boot line comes after the file was written and synced.
        self.wait_for_console(writer['id'], workloads.boots, 'ND-BOOT line')

        resp = self.compute_images_client.create_image(
            writer['id'], name=data_utils.rand_name('nd-tempest-snap'))
        snapshot_id = resp.get('image_id')
        if not snapshot_id:
            # Before microversion 2.45 the id is only in the Location.
            snapshot_id = resp.response['location'].rsplit('/', 1)[1]
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        self.images_client.delete_image, snapshot_id)
        snapshot = self.wait_for_image(snapshot_id)
        self.assertEqual('docker', snapshot['container_format'])
        self.assertGreater(snapshot['size'], 0)

        reader = self.create_server(snapshot_id, workloads.reader_metadata())
        self.wait_for_server(reader['id'])
        console = self.wait_for_console(
            reader['id'], lambda c: 'ND-FILE ' in c, 'ND-FILE line')
        self.assertIn('ND-FILE %s' % tag, console)
