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

"""The image path against the real Docker engine, with a small fake Glance.

The fake Glance serves real ``docker save`` archives of images built here
from nova-docker/busybox:latest, counts what it serves and can fail on
demand. Everything this module creates in the engine is under a unique
prefix and removed even when a test fails.
"""

import copy
import hashlib
import http.server
import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import threading
import time
import uuid

import docker
from docker import errors as docker_errors
import fixtures
from glanceclient import client as glanceclient
from glanceclient import exc as glance_exc
from nova.compute import task_states
from nova import exception as nova_exception
from nova import objects
import testtools

from novadocker.virt.docker import exception
from novadocker.virt.docker.image import archive
from novadocker.virt.docker.image import cache
from novadocker.virt.docker.image import load
from novadocker.virt.docker.image import naming
from novadocker.virt.docker.image import snapshot

BASE_IMAGE = 'nova-docker/busybox:latest'
ENGINE_TMP = '/var/lib/docker/tmp'
CHUNK = 64 * 1024

objects.register_all()


class GlanceOutage(IOError):
    """What the fake Glance raises when told to fail mid-download."""


class FakeGlance(object):
    """The part of nova.image.glance.API that load.py uses.

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
        self.upload_server = None
        self.upload_started = None
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
        if self.upload_server is not None:
            # Through python-glanceclient's own HTTP layer, as Nova does.
            gc = glanceclient.Client('2', endpoint=self.upload_server.url,
                                     token='test-token')
            gc.images.upload(image_id, data)
            data = io.BytesIO(self.upload_server.received[image_id])
        received = bytearray()
        pieces = iter(data.read, b'') if hasattr(data, 'read') else data
        for piece in pieces:
            if self.upload_started is not None:
                self.upload_started.set()
                time.sleep(self.chunk_delay)
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
            'novadocker.virt.docker.image.naming.REPOSITORY_PREFIX',
            self.prefix + '-image/'))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.image.naming.SNAPSHOT_PREFIX',
            self.prefix + '-snap/'))
        self.addCleanup(self._remove_everything)
        self.glance = FakeGlance()
        self.useFixture(fixtures.MonkeyPatch(
            'nova.image.glance.API', lambda: self.glance))
        self.lock_path = self.useFixture(fixtures.TempDir()).path
        self.flags(image_lock_path=self.lock_path, group='docker')
        self.tmpdir = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch('tempfile.tempdir', self.tmpdir))

    def flags(self, group=None, **kw):
        for name, value in kw.items():
            naming.CONF.set_override(name, value, group=group)
            self.addCleanup(naming.CONF.clear_override, name,
                            group=group)

    # ------------------------------------------------------------ helpers

    def _ours(self, name):
        return name.startswith(self.prefix)

    def _remove_everything(self):
        tags = {naming.image_tag_for(i) for i in self.glance.records}
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
                forcerm=True, network_mode='none')
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
                                         remove=True, network_mode='none')
        return out.decode().strip()

    def engine_state(self):
        dangling = {i.id for i in self.docker.images.list(all=True)
                    if not i.tags}
        tmp = set(os.listdir(ENGINE_TMP)) if os.path.isdir(ENGINE_TMP) \
            else set()
        return dangling, tmp

    def assert_nothing_left(self, before, image_id, config_ids):
        tag = naming.image_tag_for(image_id)
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
        err = self.assertRaises(exc_class, load.ensure_image, None,
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

        tag_a = load.ensure_image(None, self.image_meta(id_a))
        tag_b = load.ensure_image(None, self.image_meta(id_b))

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
        load.ensure_image(None, self.image_meta(image_id))
        self.assertEqual(len(data), self.glance.bytes_served[image_id])
        served = self.glance.bytes_served[image_id]
        gets = self.glance.gets[image_id]

        tag = load.ensure_image(None, self.image_meta(image_id))

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
                results.append(load.ensure_image(
                    None, self.image_meta(image_id)))
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=boot) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)

        self.assertEqual([], errors)
        self.assertEqual([naming.image_tag_for(image_id)] * 5, results)
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
                load.ensure_image(None, self.image_meta(image_id))
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
        for image_id, word in ((id_a, 'par-a-0'), (id_b, 'par-b-0')):
            self.assertEqual(
                word, self.run_cat(naming.image_tag_for(image_id)))

    def test_wrong_container_format(self):
        data, config = self.build_archive('fmt')
        image_id = self.glance.add(str(uuid.uuid4()), data,
                                   container_format='bare')
        before = self.engine_state()
        err = self.assertRaises(exception.InvalidImageFormat,
                                load.ensure_image, None,
                                self.image_meta(image_id, 'bare'))
        self.assertIn(image_id, str(err))
        self.assertIn('container_format=bare', str(err))
        # ImageMeta without a format: Glance's record decides.
        err = self.assertRaises(exception.InvalidImageFormat,
                                load.ensure_image, None,
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
        # A cut on a member boundary has no end-of-archive blocks.
        data, config = self.build_archive('trunc2')
        cut = data.index(b'manifest.json\0') // 512 * 512
        image_id = self.glance.add(str(uuid.uuid4()), data[:cut])
        self.assert_bad_image(image_id, config, exception.InvalidImageArchive,
                              'corrupt or truncated', 'ends in a tar header')

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
        tag = load.ensure_image(None, self.image_meta(image_id))
        self.assertEqual('outage-0', self.run_cat(tag))

    def test_tag_not_resolving_to_the_manifest_config_is_removed(self):
        # As if something else had moved the tag during the load: the
        # driver compares the loaded tag with the config the manifest
        # named, and refuses to run anything else.
        data, config = self.build_archive('moved')
        image_id = self.glance.add(str(uuid.uuid4()), data)

        class Moved(archive.LoadArchive):
            def __iter__(self):
                yield from super().__iter__()
                self.config_id = 'sha256:' + '0' * 64

        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.image.archive.LoadArchive', Moved))
        err = self.assertRaises(exception.ImageTagMismatch,
                                load.ensure_image, None,
                                self.image_meta(image_id))
        self.assertIn(config[0], str(err))
        self.assertRaises(docker_errors.ImageNotFound, self.docker.images.get,
                          naming.image_tag_for(image_id))

    def _running_container(self, tag, command):
        name = '%s-ctr-%s' % (self.prefix, uuid.uuid4().hex[:6])
        container = self.docker.containers.run(tag, ['sh', '-c', command],
                                               name=name, detach=True,
                                               network_mode='none')
        return container

    def _instance(self, image_ref=None):
        return objects.Instance(uuid=str(uuid.uuid4()), project_id='p1',
                                os_type=None, image_ref=image_ref)

    def test_snapshot_boots_with_the_written_file(self):
        data, _config = self.build_archive('snapbase')
        base_id = self.glance.add(str(uuid.uuid4()), data)
        base_tag = load.ensure_image(None, self.image_meta(base_id))
        marker = uuid.uuid4().hex
        container = self._running_container(
            base_tag, 'echo %s > /snap.txt; exec sleep 600' % marker)
        self._wait_for_file(container, '/snap.txt')
        snap_id = self.glance.add(str(uuid.uuid4()), b'', name='snap')
        states = []

        def update_task_state(task_state, expected_state=None):
            states.append((task_state, expected_state))

        snapshot.snapshot(None, self._instance(base_id), snap_id,
                          container.id, update_task_state)

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

        snap_tag = load.ensure_image(None, self.image_meta(snap_id))
        self.assertEqual(marker, self.run_cat(snap_tag, '/snap.txt'))
        self.assertEqual('snapbase-0', self.run_cat(snap_tag))

    def test_failed_snapshot_upload_leaves_nothing(self):
        data, _config = self.build_archive('snapfail')
        base_id = self.glance.add(str(uuid.uuid4()), data)
        base_tag = load.ensure_image(None, self.image_meta(base_id))
        container = self._running_container(base_tag, 'exec sleep 600')
        snap_id = self.glance.add(str(uuid.uuid4()), b'', name='snap')
        self.glance.fail_upload_after = 64 * 1024
        before = self.engine_state()

        logs = self.useFixture(fixtures.FakeLogger(level=logging.ERROR))
        self.assertRaises(nova_exception.ImageNotAuthorized,
                          snapshot.snapshot, None, self._instance(base_id),
                          snap_id, container.id, lambda **kw: None)
        # Nova deletes the half-made image and says nothing: the driver
        # logs the failure as an error.
        self.assertIn('Snapshot %s failed' % snap_id, logs.output)

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
            load.ensure_image(None, self.image_meta(ids[name]))
        # Used by a container that no instance lists (e.g. mid-spawn).
        container = self._running_container(
            naming.image_tag_for(ids['container']), 'exec sleep 600')
        # Someone else's image outside our repositories.
        foreign = '%s-src/foreign:1' % self.prefix
        self.docker.images.get(BASE_IMAGE).tag(foreign)

        # Everything is younger than a day: nothing goes.
        self.assertEqual(
            [], cache.remove_unused_images([ids['instance']], 86400))
        self.assertEqual(3, len(self._tags_under(self.prefix + '-image/')))

        instances = [self._instance(ids['instance']), self._instance(None)]
        self.flags_image_cache(0)
        removed = cache.manage_image_cache(None, instances)

        self.assertEqual([naming.image_tag_for(ids['unused'])], removed)
        self.assertEqual(
            sorted([naming.image_tag_for(ids['instance']),
                    naming.image_tag_for(ids['container'])]),
            self._tags_under(self.prefix + '-image/'))
        self.docker.images.get(foreign)
        container.remove(force=True)
        # The container is gone: only the instance keeps its image.
        removed = cache.remove_unused_images([ids['instance']], 0)
        self.assertEqual([naming.image_tag_for(ids['container'])],
                         removed)

    def flags_image_cache(self, min_age):
        conf = naming.CONF
        conf.set_override('remove_unused_original_minimum_age_seconds',
                          min_age, group='image_cache')
        self.addCleanup(conf.clear_override,
                        'remove_unused_original_minimum_age_seconds',
                        group='image_cache')

    # ------------------------------------------- snapshots leak nothing

    def _snapshot_of_secret_server(self):
        data, _config = self.build_archive('leak')
        base_id = self.glance.add(str(uuid.uuid4()), data)
        base_tag = load.ensure_image(None, self.image_meta(base_id))
        secret = 'secret-%s' % uuid.uuid4().hex
        name = '%s-ctr-%s' % (self.prefix, uuid.uuid4().hex[:6])
        # As the driver runs a server: metadata in the environment, the
        # driver's labels, Nova's command.
        container = self.docker.containers.run(
            base_tag, ['sh', '-c', 'echo kept > /kept.txt; exec sleep 600'],
            name=name, detach=True, environment={'DB_PASSWORD': secret},
            network_mode='none',
            labels={'org.openstack.nova.uuid': str(uuid.uuid4()),
                    'org.openstack.nova.role': 'workload'})
        self._wait_for_file(container, '/kept.txt')
        snap_id = self.glance.add(str(uuid.uuid4()), b'', name='snap')
        snapshot.snapshot(None, self._instance(base_id), snap_id,
                          container.id, lambda **kw: None)
        container.remove(force=True)
        return base_tag, snap_id, secret

    def test_snapshot_carries_no_metadata_environment_or_labels(self):
        base_tag, snap_id, secret = self._snapshot_of_secret_server()
        uploaded = self.glance.data[snap_id]
        # (find: a failing assertNotIn would print megabytes.)
        for needle in (secret.encode(), b'org.openstack.nova', b'sleep 600'):
            self.assertEqual(-1, uploaded.find(needle), needle)
        with tarfile.open(fileobj=io.BytesIO(uploaded)) as tar:
            names = tar.getnames()
            manifest = json.load(tar.extractfile('manifest.json'))
            config = json.load(tar.extractfile(manifest[0]['Config']))
        self.assertNotIn('container_config', config)
        base = self.docker.api.inspect_image(base_tag)['Config']
        self.assertEqual(base['Env'], config['config']['Env'])
        self.assertEqual(base['Cmd'], config['config']['Cmd'])
        self.assertFalse([n for n in names if n.endswith('/json')])
        self.assertIsNone(manifest[0]['RepoTags'])
        # Booting the snapshot still works, with the file and the image's
        # own environment.
        snap_tag = load.ensure_image(None, self.image_meta(snap_id))
        self.assertEqual('kept', self.run_cat(snap_tag, '/kept.txt'))
        env = self.docker.api.inspect_image(snap_tag)['Config']['Env']
        self.assertFalse([e for e in env if secret in e])

    def test_snapshot_through_real_glanceclient(self):
        # python-glanceclient reads the body with read(): a generator body
        # made it fail after the headers were sent.
        server = UploadServer()
        self.addCleanup(server.stop)
        self.glance.upload_server = server
        _base, snap_id, secret = self._snapshot_of_secret_server()
        received = server.received[snap_id]
        self.assertGreater(len(received), 1024 * 1024)
        self.assertIn('chunked', server.encodings)
        self.assertEqual(-1, received.find(secret.encode()))
        with tarfile.open(fileobj=io.BytesIO(received)) as tar:
            self.assertIn('manifest.json', tar.getnames())
        snap_tag = load.ensure_image(None, self.image_meta(snap_id))
        self.assertEqual('kept', self.run_cat(snap_tag, '/kept.txt'))

    def test_snapshot_rejected_by_real_glance_is_logged(self):
        server = UploadServer(status=500)
        self.addCleanup(server.stop)
        self.glance.upload_server = server
        data, _config = self.build_archive('snap500')
        base_id = self.glance.add(str(uuid.uuid4()), data)
        base_tag = load.ensure_image(None, self.image_meta(base_id))
        container = self._running_container(base_tag, 'exec sleep 600')
        snap_id = self.glance.add(str(uuid.uuid4()), b'', name='snap')
        logs = self.useFixture(fixtures.FakeLogger(level=logging.ERROR))
        err = self.assertRaises(glance_exc.HTTPInternalServerError,
                                snapshot.snapshot, None,
                                self._instance(base_id), snap_id,
                                container.id, lambda **kw: None)
        self.assertIn('HTTPInternalServerError', str(err))
        self.assertIn('Snapshot %s failed' % snap_id, logs.output)
        self.assertEqual([], self._tags_under(self.prefix + '-snap/'))

    def test_delete_during_snapshot_leaves_nothing(self):
        data, _config = self.build_archive('snapdel')
        base_id = self.glance.add(str(uuid.uuid4()), data)
        base_tag = load.ensure_image(None, self.image_meta(base_id))
        container = self._running_container(base_tag, 'exec sleep 600')
        snap_id = self.glance.add(str(uuid.uuid4()), b'', name='snap')
        before = self.engine_state()
        started = threading.Event()
        self.glance.upload_started = started
        self.glance.chunk_delay = 0.05

        def delete():
            started.wait(30)
            container.remove(force=True)

        deleter = threading.Thread(target=delete)
        deleter.start()
        snapshot.snapshot(None, self._instance(base_id), snap_id,
                          container.id, lambda **kw: None)
        deleter.join(30)
        self.assertRaises(docker_errors.NotFound, container.reload)
        # The commit was streamed whole; then removed.
        self.assertEqual([], self._tags_under(self.prefix + '-snap/'))
        dangling, _tmp = self.engine_state()
        self.assertEqual(set(), dangling - before[0])
        self.assertEqual([], os.listdir(self.tmpdir))
        # Deleted before the commit: the snapshot fails, nothing is left.
        gone = self.glance.add(str(uuid.uuid4()), b'', name='snap2')
        self.assertRaises(exception.DockerObjectNotFound, snapshot.snapshot,
                          None, self._instance(base_id), gone, container.id,
                          lambda **kw: None)
        self.assertEqual([], self._tags_under(self.prefix + '-snap/'))

    # ------------------------------------ compute services sharing one engine

    def test_two_processes_load_an_image_once(self):
        data, config = self.build_archive('twoproc')
        image_id = str(uuid.uuid4())
        archive_path = os.path.join(self.lock_path, 'image.tar')
        with open(archive_path, 'wb') as f:
            f.write(data)
        count_path = os.path.join(self.lock_path, 'downloads')
        sandbox = '%s-sandbox/box:1' % self.prefix
        procs = [subprocess.Popen(
            [sys.executable, '-c', TWO_PROCESS_SCRIPT, self.lock_path,
             self.prefix + '-image/', image_id, archive_path, count_path,
             sandbox], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True) for _ in range(2)]
        outputs = [p.communicate(timeout=120) for p in procs]
        for proc, (out, err) in zip(procs, outputs):
            self.assertEqual(0, proc.returncode, err)
        tag = self.prefix + '-image/%s:glance' % image_id
        self.glance.records[image_id] = {}
        self.assertEqual([tag, tag], [o.split()[0] for o, _e in outputs])
        with open(count_path) as f:
            self.assertEqual('download\n', f.read())
        self.assertEqual(config[0], self.docker.images.get(tag).id)
        # One sandbox image build between the two processes.
        built = sum(e.count('Built sandbox image') for _o, e in outputs)
        self.assertEqual(1, built)
        self.assertEqual(1, len(self.docker.images.list(name=sandbox)))


# Run by two processes at once: a Glance that serves an archive slowly
# and counts its downloads in a file, then the sandbox build.
TWO_PROCESS_SCRIPT = """
import sys, time
lock_path, prefix, image_id, archive, counter, sandbox = sys.argv[1:]
from nova import objects
import novadocker.conf
from novadocker.virt.docker.image import load, naming, sandbox as box
import nova.image.glance
objects.register_all()
CONF = novadocker.conf.CONF
CONF([], project='nova')
CONF.set_override('image_lock_path', lock_path, group='docker')
CONF.set_override('sandbox_image', sandbox, group='docker')
naming.REPOSITORY_PREFIX = prefix
data = open(archive, 'rb').read()

class Glance(object):
    def get(self, context, image_id):
        return {'id': image_id, 'container_format': 'docker',
                'size': len(data)}
    def download(self, context, image_id):
        with open(counter, 'a') as f:
            f.write('download\\n')
        for start in range(0, len(data), 65536):
            time.sleep(0.01)
            yield data[start:start + 65536]

nova.image.glance.API = Glance
import logging
logging.basicConfig(level=logging.INFO)
meta = objects.ImageMeta.from_dict({'id': image_id,
                                    'container_format': 'docker'})
print(load.ensure_image(None, meta))
box.ensure_sandbox_image()
"""


class UploadServer(object):
    """A local HTTP server standing in for glance-api's upload call.

    Receives ``PUT /v2/images/<id>/file`` as glanceclient sends it
    (chunked), keeps the bytes, answers *status*.
    """

    def __init__(self, status=204):
        self.received = {}
        self.encodings = set()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                image_id = self.path.split('/')[3]
                owner.encodings.add(
                    self.headers.get('Transfer-Encoding', 'identity'))
                owner.received[image_id] = self._body()
                self.send_response(status)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def _body(self):
                if self.headers.get('Transfer-Encoding') != 'chunked':
                    length = int(self.headers.get('Content-Length', 0))
                    return self.rfile.read(length)
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if not size:
                        self.rfile.readline()
                        return bytes(body)
                    body += self.rfile.read(size)
                    self.rfile.readline()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                     Handler)
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
