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

"""Images through the Nova API: by id, cached, downloaded once, snapshots.

The engine-level behaviour (bad archives, checksums, cache age) is covered
in test_images_engine; these tests show it holds for servers booted and
snapshotted through Nova.
"""

import io
import subprocess
import tarfile
import time

from oslo_utils import uuidutils

from novadocker.virt.docker.image import naming
from tools.harness import base
from tools.harness import fixtures as nd_fixtures


def image_with_file(content):
    """``docker save`` data of busybox plus /id.txt holding *content*."""
    tag = 'nd-test-images-nova/%s:tmp' % uuidutils.generate_uuid()[:8]
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode='w') as tar:
        info = tarfile.TarInfo('id.txt')
        data = content.encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    container = subprocess.run(
        ['docker', 'create', nd_fixtures.BUSYBOX_IMAGE, 'true'],
        capture_output=True, text=True, check=True).stdout.strip()
    try:
        subprocess.run(['docker', 'cp', '-', '%s:/' % container],
                       input=rootfs.getvalue(), check=True)
        subprocess.run(['docker', 'commit', container, tag],
                       capture_output=True, check=True)
        saved = subprocess.run(['docker', 'save', tag],
                               capture_output=True, check=True).stdout
    finally:
        subprocess.run(['docker', 'rm', '-f', container], capture_output=True)
        subprocess.run(['docker', 'rmi', tag], capture_output=True)
    return saved


class NovaImagesTestCase(base.DockerFunctionalTestBase):

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                          ephemeral=0)

    def add_image(self, data, name, **props):
        image_id = self.glance.add_image(data, name, **props)
        tag = naming.image_tag_for(image_id)
        self.addCleanup(subprocess.run, ['docker', 'rmi', '-f', tag],
                        capture_output=True)
        return image_id

    def test_same_name_images_boot_their_own_contents(self):
        cat = "/bin/sh -c 'echo id=$(cat /id.txt); exec sleep 3600'"
        first = self.add_image(image_with_file('first-tenant'), 'ubuntu',
                               os_command_line=cat)
        second = self.add_image(image_with_file('second-tenant'), 'ubuntu',
                                os_command_line=cat)
        s1 = self.boot(image_id=first, flavor_id=self.flavor)
        s2 = self.boot(image_id=second, flavor_id=self.flavor)
        self.assertIn('id=first-tenant', self.console(s1, 'id='))
        self.assertIn('id=second-tenant', self.console(s2, 'id='))
        for server in (s1, s2):
            self._delete_server(server)

    def test_second_boot_downloads_nothing(self):
        data = image_with_file('cached')
        image = self.add_image(data, 'cached')
        server = self.boot(image_id=image, flavor_id=self.flavor)
        self.assertEqual(len(data), self.glance.bytes_served[image])
        self._delete_server(server)
        server = self.boot(image_id=image, flavor_id=self.flavor)
        self.assertEqual(len(data), self.glance.bytes_served[image])
        self.assertEqual(1, self.glance.downloads[image])
        self._delete_server(server)

    def test_five_concurrent_boots_download_once(self):
        data = image_with_file('popular')
        image = self.add_image(data, 'popular')
        server = self._build_server(image_uuid=image, flavor_id=self.flavor,
                                    networks='none')
        server.update(min_count=5, max_count=5)
        self.api.post_server({'server': server})
        servers = self.api.get_servers(search_opts={'image': image})
        self.assertEqual(5, len(servers))
        for s in servers:
            self._wait_for_state_change(s, 'ACTIVE')
        self.assertEqual(1, self.glance.downloads[image])
        self.assertEqual(len(data), self.glance.bytes_served[image])
        for s in servers:
            self._delete_server(s)

    def test_snapshot_then_boot_it(self):
        # The metadata becomes the workload's environment: the snapshot
        # must not carry it (nor the driver's labels) into Glance.
        secret = 'secret-%s' % uuidutils.generate_uuid()
        server = self.boot(flavor_id=self.flavor,
                           metadata={'DB_PASSWORD': secret})
        self.assertIn('DB_PASSWORD=%s' % secret,
                      self.workload(server).attrs['Config']['Env'])
        code, _ = self.exec_in(
            server, 'sh', '-c', 'echo written-before-snapshot > /root/state')
        self.assertEqual(0, code)
        snapshot_id = self.api.post_server_action(
            server['id'], {'createImage': {'name': 'snap'}})['image_id']
        # The snapshot runs asynchronously: wait for Nova to finish it.
        self._wait_for_server_parameter(
            server, {'OS-EXT-STS:task_state': None, 'status': 'ACTIVE'})
        for _ in range(100):
            if self.glance._imagedata.get(snapshot_id):
                break
            time.sleep(0.2)
        self.assertTrue(self.glance._imagedata.get(snapshot_id))
        self.addCleanup(subprocess.run,
                        ['docker', 'rmi', '-f',
                         naming.image_tag_for(snapshot_id)],
                        capture_output=True)
        uploaded = self.glance._imagedata[snapshot_id]
        # (find: a failing assertNotIn would print megabytes.)
        for needle in (secret.encode(), b'org.openstack.nova'):
            self.assertEqual(-1, uploaded.find(needle), needle)
        snapshot = self.glance.show(None, snapshot_id)
        self.assertEqual('docker', snapshot['container_format'])
        self.assertEqual('raw', snapshot['disk_format'])
        self.assertEqual('active', snapshot['status'])
        self._delete_server(server)
        # Nothing of the commit stays in the engine.
        leftover = subprocess.run(
            ['docker', 'images', '--format', '{{.Repository}}',
             'nova-snapshot/*'], capture_output=True, text=True).stdout
        self.assertEqual('', leftover.strip())

        clone = self.boot(image_id=snapshot_id, flavor_id=self.flavor)
        code, out = self.exec_in(clone, 'cat', '/root/state')
        self.assertEqual(0, code)
        self.assertEqual('written-before-snapshot', out.strip())
        code, out = self.exec_in(clone, 'env')
        self.assertNotIn(secret, out)
        self._delete_server(clone)
