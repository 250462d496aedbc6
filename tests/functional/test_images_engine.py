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

"""images.py against the real Docker engine, with a small fake Glance.

The fake Glance serves real ``docker save`` archives of images built here
from nova-docker/busybox:latest, counts what it serves and can fail on
demand. Everything this module creates in the engine is under a unique
prefix and removed even when a test fails.
"""

import copy
import hashlib
import io
import os
import subprocess
import threading
import time
import uuid

import docker
from docker import errors as docker_errors
import fixtures
from nova.compute import task_states
from nova import exception as nova_exception
from nova import objects
import testtools

from novadocker.virt.docker import exception
from novadocker.virt.docker import images

BASE_IMAGE = 'nova-docker/busybox:latest'
ENGINE_TMP = '/var/lib/docker/tmp'
CHUNK = 64 * 1024

objects.register_all()


class GlanceOutage(IOError):
    """What the fake Glance raises when told to fail mid-download."""


class FakeGlance(object):
    """The part of nova.image.glance.API that images.py uses.

    Serves bytes in chunks like glanceclient, records every byte served
    and every upload, and fails where a test asks it to.
    """

    def __init__(self):
        self.records = {}
        self.data = {}
        self.bytes_served = {}
        self.downloads = {}
        self.gets = {}
        self.fail_after = {}
        self.fail_upload_after = None
        self.chunk_delay = 0.0
        self.download_barrier = None
        self._lock = threading.Lock()

    def add(self, image_id, data, name='ubuntu', container_format='docker',
            checksum_of=None):
        digest_of = data if checksum_of is None else checksum_of
        self.records[image_id] = {
            'id': image_id, 'name': name, 'status': 'active',
            'container_format': container_format, 'disk_format': 'raw',
            'checksum': hashlib.md5(digest_of).hexdigest(),
            'os_hash_algo': 'sha512',
            'os_hash_value': hashlib.sha512(digest_of).hexdigest(),
            'properties': {}}
        self.data[image_id] = data
        self.bytes_served[image_id] = 0
        self.downloads[image_id] = 0
        return image_id

    def get(self, context, image_id, **kwargs):
        with self._lock:
            self.gets[image_id] = self.gets.get(image_id, 0) + 1
        if image_id not in self.records:
            raise nova_exception.ImageNotFound(image_id=image_id)
        return copy.deepcopy(self.records[image_id])

    def download(self, context, image_id, **kwargs):
        with self._lock:
            self.downloads[image_id] += 1
        return self._chunks(image_id)

    def _chunks(self, image_id):
        data = self.data[image_id]
        if self.download_barrier is not None:
            self.download_barrier.wait(timeout=20)
        for start in range(0, len(data), CHUNK):
            fail_after = self.fail_after.get(image_id)
            if fail_after is not None and start >= fail_after:
                reason = ('503 Service Unavailable: connection to the '
                          'image store was reset')
                raise GlanceOutage(reason)
            chunk = data[start:start + CHUNK]
            with self._lock:
                self.bytes_served[image_id] += len(chunk)
            if self.chunk_delay:
                time.sleep(self.chunk_delay)
            yield chunk

    def update(self, context, image_id, image_meta, data=None,
               purge_props=False):
        received = bytearray()
        pieces = iter(data.read, b'') if hasattr(data, 'read') else data
        for piece in pieces:
            received += piece
            if (self.fail_upload_after is not None and
                    len(received) > self.fail_upload_after):
                raise nova_exception.ImageNotAuthorized(image_id=image_id)
        record = self.records[image_id]
        record.update(copy.deepcopy(image_meta))
        self.add(image_id, bytes(received), name=record['name'],
                 container_format=record['container_format'])
        self.records[image_id]['uploaded_meta'] = copy.deepcopy(image_meta)
        return copy.deepcopy(self.records[image_id])


class ImagesEngineTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.docker = docker.from_env(timeout=120)
        try:
            self.docker.ping()
        except Exception as e:
            self.fail('The Docker engine does not answer on '
                      '/var/run/docker.sock (%s): run tools/bootstrap-host.sh '
                      'or start dockerd.' % e)
        self.addCleanup(self.docker.close)
        try:
            self.docker.images.get(BASE_IMAGE)
        except docker_errors.ImageNotFound:
            self.fail('%s is missing: run tools/bootstrap-host.sh'
                      % BASE_IMAGE)
        self.prefix = 'ndimgtest%s' % uuid.uuid4().hex[:8]
        # Our own repositories, so the cache test never sees images of
        # anyone else working on this engine.
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.images.REPOSITORY_PREFIX',
            self.prefix + '-image/'))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.images.SNAPSHOT_PREFIX',
            self.prefix + '-snap/'))
        self.addCleanup(self._remove_everything)
        self.glance = FakeGlance()
        self.useFixture(fixtures.MonkeyPatch(
            'nova.image.glance.API', lambda: self.glance))
        self.tmpdir = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch('tempfile.tempdir', self.tmpdir))

    # ------------------------------------------------------------ helpers

    def _ours(self, name):
        return name.startswith(self.prefix)

    def _remove_everything(self):
        tags = {images.image_tag_for(i) for i in self.glance.records}
        for c in self.docker.containers.list(all=True):
            if self._ours(c.name):
                c.remove(force=True)
        for image in self.docker.images.list():
            for tag in image.tags:
                if self._ours(tag) or tag in tags:
                    try:
                        self.docker.images.remove(tag, force=True)
                    except docker_errors.NotFound:
                        pass

    def build_archive(self, content, source_tags=1):
        """A docker save archive of fresh images that hold /id.txt."""
        tags = []
        for n in range(source_tags):
            tag = '%s-src/%s:%d' % (self.prefix, uuid.uuid4().hex[:6], n)
            dockerfile = ('FROM %s\nRUN echo %s-%d > /id.txt\n'
                          % (BASE_IMAGE, content, n))
            self.docker.images.build(
                fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True,
                forcerm=True)
            tags.append(tag)
        data = subprocess.run(['docker', 'save'] + tags, check=True,
                              capture_output=True).stdout
        config_ids = [self.docker.images.get(t).id for t in tags]
        for tag in tags:
            self.docker.images.remove(tag)
        return data, config_ids

    def image_meta(self, image_id, container_format='docker'):
        return objects.ImageMeta.from_dict(
            {'id': image_id, 'container_format': container_format,
             'disk_format': 'raw'})

    def run_cat(self, tag, path='/id.txt'):
        name = '%s-run-%s' % (self.prefix, uuid.uuid4().hex[:6])
        out = self.docker.containers.run(tag, ['cat', path], name=name,
                                         remove=True)
        return out.decode().strip()

    def engine_state(self):
        dangling = {i.id for i in self.docker.images.list(all=True)
                    if not i.tags}
        tmp = set(os.listdir(ENGINE_TMP)) if os.path.isdir(ENGINE_TMP) \
            else set()
        return dangling, tmp

    def assert_nothing_left(self, before, image_id, config_ids):
        tag = images.image_tag_for(image_id)
        self.assertRaises(docker_errors.ImageNotFound,
                          self.docker.images.get, tag)
        for config_id in config_ids:
            self.assertRaises(docker_errors.ImageNotFound,
                              self.docker.images.get, config_id)
        # dockerd removes its import directory as the request ends.
        deadline = time.monotonic() + 10
        while True:
            dangling, tmp = self.engine_state()
            new_tmp = tmp - before[1]
            if not new_tmp or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(set(), dangling - before[0],
                         'new untagged images appeared in the engine')
        self.assertEqual(set(), new_tmp, 'dockerd import dirs left')
        self.assertEqual([], os.listdir(self.tmpdir), 'temp files left')

    def assert_bad_image(self, image_id, config_ids, exc_class, *words):
        before = self.engine_state()
        err = self.assertRaises(exc_class, images.ensure_image, None,
                                self.image_meta(image_id))
        message = str(err)
        self.assertIn(image_id, message)
        for word in words:
            self.assertIn(word, message)
        self.assert_nothing_left(before, image_id, config_ids)
        return message

    # -------------------------------------------------------------- tests

    def test_same_name_different_ids_boot_their_own_contents(self):
        data_a, config_a = self.build_archive('alpha')
        data_b, config_b = self.build_archive('beta')
        id_a = self.glance.add(str(uuid.uuid4()), data_a, name='ubuntu')
        id_b = self.glance.add(str(uuid.uuid4()), data_b, name='ubuntu')

        tag_a = images.ensure_image(None, self.image_meta(id_a))
        tag_b = images.ensure_image(None, self.image_meta(id_b))

        self.assertEqual(self.prefix + '-image/%s:glance' % id_a, tag_a)
        self.assertNotEqual(tag_a, tag_b)
        self.assertEqual('alpha-0', self.run_cat(tag_a))
        self.assertEqual('beta-0', self.run_cat(tag_b))
        # The archive's own tag was replaced, not loaded too.
        self.assertEqual([tag_a], self.docker.images.get(tag_a).tags)
        self.assertEqual(config_a[0], self.docker.images.get(tag_a).id)
        self.assertEqual(config_b[0], self.docker.images.get(tag_b).id)

    def test_second_ensure_downloads_nothing(self):
        data, _config = self.build_archive('cached')
        image_id = self.glance.add(str(uuid.uuid4()), data)
        images.ensure_image(None, self.image_meta(image_id))
        self.assertEqual(len(data), self.glance.bytes_served[image_id])
        served = self.glance.bytes_served[image_id]
        gets = self.glance.gets[image_id]

        tag = images.ensure_image(None, self.image_meta(image_id))

        self.assertEqual(served, self.glance.bytes_served[image_id])
        self.assertEqual(1, self.glance.downloads[image_id])
        self.assertEqual(gets, self.glance.gets[image_id])
        self.assertEqual('cached-0', self.run_cat(tag))

    def test_five_concurrent_ensures_download_once(self):
        data, _config = self.build_archive('crowd')
        image_id = self.glance.add(str(uuid.uuid4()), data)
        self.glance.chunk_delay = 0.01
        results, errors = [], []

        def boot():
            try:
                results.append(images.ensure_image(
                    None, self.image_meta(image_id)))
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=boot) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

        self.assertEqual([], errors)
        self.assertEqual([images.image_tag_for(image_id)] * 5, results)
        self.assertEqual(1, self.glance.downloads[image_id])
        self.assertEqual(len(data), self.glance.bytes_served[image_id])

    def test_different_images_load_in_parallel(self):
        # Each download waits until the other one has started: this only
        # completes if the two loads run at the same time.
        data_a, _a = self.build_archive('par-a')
        data_b, _b = self.build_archive('par-b')
        id_a = self.glance.add(str(uuid.uuid4()), data_a)
        id_b = self.glance.add(str(uuid.uuid4()), data_b)
        self.glance.download_barrier = threading.Barrier(2)
        errors = []

        def boot(image_id):
            try:
                images.ensure_image(None, self.image_meta(image_id))
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=boot, args=(i,))
                   for i in (id_a, id_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

        self.assertEqual([], errors)
        self.assertFalse(self.glance.download_barrier.broken)
        self.assertEqual('par-a-0', self.run_cat(images.image_tag_for(id_a)))
        self.assertEqual('par-b-0', self.run_cat(images.image_tag_for(id_b)))

    def test_wrong_container_format(self):
        data, config = self.build_archive('fmt')
        image_id = self.glance.add(str(uuid.uuid4()), data,
                                   container_format='bare')
        before = self.engine_state()
        err = self.assertRaises(exception.InvalidImageFormat,
                                images.ensure_image, None,
                                self.image_meta(image_id, 'bare'))
        self.assertIn(image_id, str(err))
        self.assertIn('container_format=bare', str(err))
        # ImageMeta without a format: Glance's record decides.
        err = self.assertRaises(exception.InvalidImageFormat,
                                images.ensure_image, None,
                                objects.ImageMeta.from_dict({'id': image_id}))
        self.assertIn('container_format=bare', str(err))
        self.assertEqual(0, self.glance.bytes_served[image_id])
        self.assert_nothing_left(before, image_id, config)

    def test_corrupt_archive(self):
        garbage = os.urandom(300 * 1024)
        image_id = self.glance.add(str(uuid.uuid4()), garbage)
        self.assert_bad_image(image_id, [], exception.InvalidImageArchive,
                              'corrupt or truncated')

    def test_truncated_archive_mid_layer(self):
        data, config = self.build_archive('trunc')
        image_id = self.glance.add(str(uuid.uuid4()), data[:len(data) // 2])
        self.assert_bad_image(image_id, config, exception.InvalidImageArchive,
                              'corrupt or truncated')

    def test_truncated_archive_between_members(self):
        # A cut on a member boundary is a valid-looking shorter tar: only
        # the missing manifest gives it away.
        data, config = self.build_archive('trunc2')
        cut = data.index(b'manifest.json\0') // 512 * 512
        image_id = self.glance.add(str(uuid.uuid4()), data[:cut])
        self.assert_bad_image(image_id, config, exception.InvalidImageArchive,
                              'no manifest.json')

    def test_checksum_mismatch(self):
        data, config = self.build_archive('tamper')
        tampered = data.replace(b'tamper-0', b'TAMPER-0')
        self.assertNotEqual(data, tampered)
        image_id = self.glance.add(str(uuid.uuid4()), tampered,
                                   checksum_of=data)
        message = self.assert_bad_image(
            image_id, config, exception.ImageChecksumMismatch,
            'sha512', hashlib.sha512(data).hexdigest())
        self.assertIn('nothing was loaded', message)
        self.assertEqual(len(tampered), self.glance.bytes_served[image_id])

    def test_md5_only_checksum_mismatch(self):
        data, config = self.build_archive('md5')
        tampered = data.replace(b'md5-0', b'MD5-0')
        image_id = self.glance.add(str(uuid.uuid4()), tampered,
                                   checksum_of=data)
        record = self.glance.records[image_id]
        record['os_hash_algo'] = record['os_hash_value'] = None
        self.assert_bad_image(image_id, config,
                              exception.ImageChecksumMismatch, 'md5')

    def test_two_images_in_one_archive(self):
        data, config = self.build_archive('pair', source_tags=2)
        image_id = self.glance.add(str(uuid.uuid4()), data)
        self.assert_bad_image(image_id, config, exception.InvalidImageArchive,
                              'holds 2 images')

    def test_glance_error_mid_download(self):
        data, config = self.build_archive('outage')
        image_id = self.glance.add(str(uuid.uuid4()), data)
        self.glance.fail_after[image_id] = len(data) // 2
        self.assert_bad_image(image_id, config, exception.ImageDownloadFailed,
                              'connection to the image store was reset')
        # Glance is back: the next boot loads the image.
        del self.glance.fail_after[image_id]
        tag = images.ensure_image(None, self.image_meta(image_id))
        self.assertEqual('outage-0', self.run_cat(tag))

    def _running_container(self, tag, command):
        name = '%s-ctr-%s' % (self.prefix, uuid.uuid4().hex[:6])
        container = self.docker.containers.run(tag, ['sh', '-c', command],
                                               name=name, detach=True)
        return container

    def _instance(self, image_ref=None):
        return objects.Instance(uuid=str(uuid.uuid4()), project_id='p1',
                                os_type=None, image_ref=image_ref)

    def test_snapshot_boots_with_the_written_file(self):
        data, _config = self.build_archive('snapbase')
        base_id = self.glance.add(str(uuid.uuid4()), data)
        base_tag = images.ensure_image(None, self.image_meta(base_id))
        marker = uuid.uuid4().hex
        container = self._running_container(
            base_tag, 'echo %s > /snap.txt; exec sleep 600' % marker)
        self._wait_for_file(container, '/snap.txt')
        snap_id = self.glance.add(str(uuid.uuid4()), b'', name='snap')
        states = []

        def update_task_state(task_state, expected_state=None):
            states.append((task_state, expected_state))

        images.snapshot(None, self._instance(base_id), snap_id, container.id,
                        update_task_state)

        self.assertEqual(
            [(task_states.IMAGE_PENDING_UPLOAD, None),
             (task_states.IMAGE_UPLOADING, task_states.IMAGE_PENDING_UPLOAD)],
            states)
        meta = self.glance.records[snap_id]['uploaded_meta']
        self.assertEqual('docker', meta['container_format'])
        self.assertEqual('raw', meta['disk_format'])
        self.assertEqual([], self._tags_under(self.prefix + '-snap/'))
        self.assertEqual([], os.listdir(self.tmpdir))
        container.remove(force=True)

        snap_tag = images.ensure_image(None, self.image_meta(snap_id))
        self.assertEqual(marker, self.run_cat(snap_tag, '/snap.txt'))
        self.assertEqual('snapbase-0', self.run_cat(snap_tag))

    def test_failed_snapshot_upload_leaves_nothing(self):
        data, _config = self.build_archive('snapfail')
        base_id = self.glance.add(str(uuid.uuid4()), data)
        base_tag = images.ensure_image(None, self.image_meta(base_id))
        container = self._running_container(base_tag, 'exec sleep 600')
        snap_id = self.glance.add(str(uuid.uuid4()), b'', name='snap')
        self.glance.fail_upload_after = 64 * 1024
        before = self.engine_state()

        self.assertRaises(nova_exception.ImageNotAuthorized, images.snapshot,
                          None, self._instance(base_id), snap_id,
                          container.id, lambda **kw: None)

        self.assertEqual([], self._tags_under(self.prefix + '-snap/'))
        dangling, _tmp = self.engine_state()
        self.assertEqual(set(), dangling - before[0])
        self.assertEqual([], os.listdir(self.tmpdir))

    def _wait_for_file(self, container, path):
        for _ in range(50):
            if container.exec_run(['cat', path]).exit_code == 0:
                return
            time.sleep(0.1)
        self.fail('%s never appeared in container %s' % (path, container.name))

    def _tags_under(self, prefix):
        return sorted(t for i in self.docker.images.list() for t in i.tags
                      if t.startswith(prefix))

    def test_cache_removes_only_unused_images(self):
        ids = {}
        for name in ('instance', 'container', 'unused'):
            data, _config = self.build_archive('cache-' + name)
            ids[name] = self.glance.add(str(uuid.uuid4()), data)
            images.ensure_image(None, self.image_meta(ids[name]))
        # Used by a container that no instance lists (e.g. mid-spawn).
        container = self._running_container(
            images.image_tag_for(ids['container']), 'exec sleep 600')
        # Someone else's image outside our repositories.
        foreign = '%s-src/foreign:1' % self.prefix
        self.docker.images.get(BASE_IMAGE).tag(foreign)

        # Everything is younger than a day: nothing goes.
        self.assertEqual(
            [], images.remove_unused_images([ids['instance']], 86400))
        self.assertEqual(3, len(self._tags_under(self.prefix + '-image/')))

        instances = [self._instance(ids['instance']), self._instance(None)]
        self.flags_image_cache(0)
        removed = images.manage_image_cache(None, instances)

        self.assertEqual([images.image_tag_for(ids['unused'])], removed)
        self.assertEqual(
            sorted([images.image_tag_for(ids['instance']),
                    images.image_tag_for(ids['container'])]),
            self._tags_under(self.prefix + '-image/'))
        self.docker.images.get(foreign)
        container.remove(force=True)
        # The container is gone: only the instance keeps its image.
        removed = images.remove_unused_images([ids['instance']], 0)
        self.assertEqual([images.image_tag_for(ids['container'])], removed)

    def flags_image_cache(self, min_age):
        conf = images.CONF
        conf.set_override('remove_unused_original_minimum_age_seconds',
                          min_age, group='image_cache')
        self.addCleanup(conf.clear_override,
                        'remove_unused_original_minimum_age_seconds',
                        group='image_cache')
