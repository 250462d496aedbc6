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

"""The image path without a Docker engine: tags, archive rewriting, hashes."""

import contextlib
import datetime
import hashlib
import io
import json
import tarfile
from unittest import mock

import fixtures
from nova import exception as nova_exception
import testtools

from novadocker.virt.docker import exception
from novadocker.virt.docker.image import archive
from novadocker.virt.docker.image import cache
from novadocker.virt.docker.image import load
from novadocker.virt.docker.image import naming
from novadocker.virt.docker.image import rules
from novadocker.virt.docker.image import snapshot
from novadocker.virt.docker.image import streams

IMAGE_ID = '0b4f6c1e-3c1d-4c57-9a38-8d1f3f6f2a11'
TAG = naming.image_tag_for(IMAGE_ID)
LAYER = 'aaaa/layer.tar'
CONFIG_DATA = b'{"config": {}}'
CONFIG = hashlib.sha256(CONFIG_DATA).hexdigest() + '.json'


def make_archive(manifest=True, images_in_manifest=1, manifest_first=False,
                 layer_data=b'x' * 3000, extra=None, oci_index=None,
                 layers=(LAYER,)):
    """An in-memory archive laid out like "docker save" output."""
    members = [('aaaa/VERSION', b'1.0'), (LAYER, layer_data),
               (CONFIG, CONFIG_DATA),
               ('repositories', b'{"src/img": {"latest": "aaaa"}}')]
    entries = [{'Config': CONFIG, 'RepoTags': ['src/img:latest'],
                'Layers': list(layers)}] * images_in_manifest
    if manifest:
        item = ('manifest.json', json.dumps(entries).encode())
        members.insert(0, item) if manifest_first else members.append(item)
    if oci_index is not None:
        members.append(('index.json', json.dumps(oci_index).encode()))
    members.extend(extra or [])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.GNU_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def chunked(data, size=1000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


LIMITS = rules.Limits(max_bytes=64 * 1024 ** 2, max_members=100,
                      max_header_bytes=8192, max_expansion=10)


def rewrite(data, digest=None, chunks=None, limits=LIMITS):
    digest = digest or streams.ExpectedDigest(IMAGE_ID)
    reader = streams.GlanceReader(IMAGE_ID, chunks or chunked(data), digest,
                                  limits.download_limit)
    body = archive.LoadArchive(reader, IMAGE_ID, TAG, limits,
                               naming.reserved_names())
    return b''.join(body)


def read_archive(data):
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:') as t:
        for member in t:
            f = t.extractfile(member)
            found[member.name] = f.read() if f else None
    return found


class TagTestCase(testtools.TestCase):

    def test_tag_is_derived_from_the_id(self):
        self.assertEqual('nova-image/%s:glance' % IMAGE_ID,
                         naming.image_tag_for(IMAGE_ID))

    def test_uppercase_uuid_maps_to_the_same_tag(self):
        self.assertEqual(TAG, naming.image_tag_for(IMAGE_ID.upper()))

    def test_id_that_cannot_be_a_reference_is_refused(self):
        for bad in ('ubuntu:latest', '../x', '', None, 'a b', 'nova/x'):
            err = self.assertRaises(exception.InvalidImageId,
                                    naming.image_tag_for, bad)
            self.assertIn('UUID', str(err))

    def test_id_with_a_trailing_newline_is_refused(self):
        self.assertRaises(exception.InvalidImageId,
                          naming.image_tag_for, IMAGE_ID + '\n')
        self.assertIsNone(naming.image_id_from_tag(
            'nova-image/%s\n:glance' % IMAGE_ID))

    def test_id_from_tag_round_trips_and_ignores_others(self):
        self.assertEqual(IMAGE_ID, naming.image_id_from_tag(TAG))
        self.assertIsNone(naming.image_id_from_tag('ubuntu:latest'))
        self.assertIsNone(naming.image_id_from_tag(
            'nova-image/%s:other' % IMAGE_ID))
        self.assertIsNone(
            naming.image_id_from_tag('nova-image/UPPER:glance'))

    def test_wrong_container_format_names_image_and_format(self):
        err = self.assertRaises(exception.InvalidImageFormat,
                                naming.check_container_format, IMAGE_ID,
                                'bare')
        self.assertIn(IMAGE_ID, str(err))
        self.assertIn('container_format=bare', str(err))
        naming.check_container_format(IMAGE_ID, 'docker')


class RewriteTestCase(testtools.TestCase):

    def test_tags_replaced_and_manifest_sent_last(self):
        out = read_archive(rewrite(make_archive(manifest_first=True)))
        names = list(out)
        self.assertEqual('manifest.json', names[-1])
        self.assertNotIn('repositories', names)
        manifest = json.loads(out['manifest.json'])
        self.assertEqual([TAG], manifest[0]['RepoTags'])
        self.assertEqual([LAYER], manifest[0]['Layers'])
        self.assertEqual(b'x' * 3000, out[LAYER])

    def test_layer_bytes_are_unchanged(self):
        layer = bytes(range(256)) * 41
        out = read_archive(rewrite(make_archive(layer_data=layer)))
        self.assertEqual(layer, out[LAYER])

    def test_nothing_is_emitted_past_a_failure(self):
        # The manifest and end-of-archive are only produced after the last
        # input byte: a failing archive never yields them.
        data = make_archive(images_in_manifest=2)
        reader = streams.GlanceReader(IMAGE_ID, chunked(data),
                                      streams.ExpectedDigest(IMAGE_ID))
        produced = []
        gen = iter(archive.LoadArchive(reader, IMAGE_ID, TAG, LIMITS))
        err = self.assertRaises(exception.InvalidImageArchive,
                                lambda: produced.extend(gen))
        self.assertIn('holds 2 images', str(err))
        self.assertNotIn(b'manifest.json', b''.join(produced))
        self.assertEqual(len(data), reader.size)

    def test_missing_manifest(self):
        err = self.assertRaises(exception.InvalidImageArchive, rewrite,
                                make_archive(manifest=False))
        self.assertIn('no manifest.json', str(err))
        self.assertIn(IMAGE_ID, str(err))

    def test_layer_named_by_manifest_missing(self):
        data = make_archive(layers=(LAYER, 'bbbb/layer.tar'))
        err = self.assertRaises(exception.InvalidImageArchive, rewrite, data)
        self.assertIn('lacks bbbb/layer.tar', str(err))

    def test_corrupt_header_mid_archive(self):
        # A header whose checksum does not match is refused, not taken as
        # the end of the archive.
        data = make_archive()
        broken = data.replace(LAYER.encode(), b'bbbb/layer.tar', 1)
        err = self.assertRaises(exception.InvalidImageArchive, rewrite,
                                broken)
        self.assertIn('bad header checksum', str(err))

    def test_truncated_mid_member(self):
        data = make_archive()
        err = self.assertRaises(exception.InvalidImageArchive, rewrite,
                                data[:1800])
        self.assertIn('corrupt or truncated', str(err))

    def test_garbage(self):
        err = self.assertRaises(exception.InvalidImageArchive, rewrite,
                                b'not a tar at all' * 100)
        self.assertIn('corrupt or truncated', str(err))

    def test_empty(self):
        self.assertRaises(exception.InvalidImageArchive, rewrite, b'')

    def test_oci_index_is_not_passed_on(self):
        index = {'manifests': [{'digest': 'sha256:1', 'annotations': {
            'io.containerd.image.name': 'docker.io/src/img:latest'}}]}
        out = read_archive(rewrite(make_archive(oci_index=index)))
        self.assertNotIn('index.json', out)
        self.assertEqual([TAG], json.loads(out['manifest.json'])[0][
            'RepoTags'])

    def test_gzip_compressed_archive_is_accepted(self):
        import gzip
        out = read_archive(rewrite(gzip.compress(make_archive())))
        self.assertEqual([TAG],
                         json.loads(out['manifest.json'])[0]['RepoTags'])

    def test_long_member_names_survive(self):
        long_name = 'd' * 120 + '/layer.tar'
        data = make_archive(extra=[(long_name, b'long')])
        self.assertEqual(b'long', read_archive(rewrite(data))[long_name])

    def test_coalesce_keeps_bytes_and_order(self):
        pieces = [b'a' * 10, b'b' * 300, b'c', b'd' * 1000, b'e' * 5]
        out = list(load.coalesce(iter(pieces), size=256))
        self.assertEqual(b''.join(pieces), b''.join(out))
        self.assertTrue(all(len(c) >= 256 for c in out[:-1]))


class DigestTestCase(testtools.TestCase):

    DATA = make_archive()

    def record(self, **kw):
        rec = {'id': IMAGE_ID, 'container_format': 'docker', 'properties': {}}
        rec.update(kw)
        return rec

    def test_multihash_preferred(self):
        digest = streams.ExpectedDigest.from_glance(IMAGE_ID, self.record(
            checksum='0' * 32, os_hash_algo='sha512',
            os_hash_value=hashlib.sha512(self.DATA).hexdigest()))
        self.assertEqual('sha512', digest.algorithm)
        out = rewrite(self.DATA, digest=digest)
        self.assertIn(TAG.encode(), out)

    def test_md5_fallback_for_unknown_algorithm(self):
        digest = streams.ExpectedDigest.from_glance(IMAGE_ID, self.record(
            checksum=hashlib.md5(self.DATA).hexdigest(),
            os_hash_algo='nosuchhash', os_hash_value='00'))
        self.assertEqual('md5', digest.algorithm)
        rewrite(self.DATA, digest=digest)

    def test_mismatch_names_image_algorithm_and_values(self):
        expected = hashlib.sha512(b'other').hexdigest()
        digest = streams.ExpectedDigest.from_glance(IMAGE_ID, self.record(
            os_hash_algo='sha512', os_hash_value=expected.upper()))
        err = self.assertRaises(exception.ImageChecksumMismatch, rewrite,
                                self.DATA, digest)
        message = str(err)
        self.assertIn(IMAGE_ID, message)
        self.assertIn('sha512', message)
        self.assertIn(expected, message)
        self.assertIn(hashlib.sha512(self.DATA).hexdigest(), message)
        self.assertIn('%d bytes' % len(self.DATA), message)

    def test_config_id_is_the_sha256_of_the_config(self):
        reader = streams.GlanceReader(IMAGE_ID, chunked(self.DATA),
                                      streams.ExpectedDigest(IMAGE_ID))
        body = archive.LoadArchive(reader, IMAGE_ID, TAG, LIMITS)
        b''.join(body)
        self.assertEqual('sha256:' + CONFIG[:-len('.json')], body.config_id)

    def test_trailing_padding_is_hashed(self):
        # Bytes after the end-of-archive blocks still count.
        data = self.DATA + b'\0' * 4096
        digest = streams.ExpectedDigest(IMAGE_ID, 'md5',
                                        hashlib.md5(self.DATA).hexdigest())
        self.assertRaises(exception.ImageChecksumMismatch, rewrite, data,
                          digest)

    def test_no_checksum_still_loads(self):
        digest = streams.ExpectedDigest.from_glance(IMAGE_ID, self.record())
        self.assertIsNone(digest.algorithm)
        rewrite(self.DATA, digest=digest)

    def test_glance_error_mid_stream(self):
        def failing():
            yield self.DATA[:2048]
            reason = 'connection reset by peer'
            raise IOError(reason)

        err = self.assertRaises(exception.ImageDownloadFailed, rewrite,
                                self.DATA, None, failing())
        self.assertIn(IMAGE_ID, str(err))
        self.assertIn('after 2048 bytes', str(err))
        self.assertIn('connection reset by peer', str(err))


class LastUsedTestCase(testtools.TestCase):

    def test_last_tag_time_wins(self):
        info = {'Created': '2020-01-01T00:00:00Z',
                'Metadata': {'LastTagTime': '2026-11-23T23:52:03.186734179Z'}}
        self.assertEqual(
            datetime.datetime(2026, 11, 23, 23, 52, 3, 186734,
                              tzinfo=datetime.timezone.utc),
            cache._last_used(info))

    def test_unset_last_tag_time_falls_back_to_created(self):
        info = {'Created': '2020-01-01T00:00:00.5Z',
                'Metadata': {'LastTagTime': '0001-01-01T00:00:00Z'}}
        self.assertEqual(2020, cache._last_used(info).year)


class _SnapshotEngine(object):
    """The engine calls of a snapshot: commit, save (one archive), remove."""

    def __init__(self, archive_data):
        self.archive_data = archive_data
        self.removed = []
        self.api = self

    def inspect_container(self, container_id):
        return {'Image': 'sha256:' + 'c' * 64}

    def inspect_image(self, ref):
        return {'Config': {}}

    def commit(self, container_id, repository, tag):
        pass

    def get_image(self, tag, chunk_size=None):
        return chunked(self.archive_data)

    def remove_image(self, tag):
        self.removed.append(tag)


class _Glance(object):

    def __init__(self, error):
        self.error = error

    def get(self, context, image_id):
        return {'name': 'snap'}

    def update(self, context, image_id, metadata, data=None):
        data.read(512)
        raise self.error


class SnapshotUploadTestCase(testtools.TestCase):

    def snapshot(self, error):
        engine = _SnapshotEngine(make_archive())

        @contextlib.contextmanager
        def docker_client(what=''):
            yield engine

        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.client.docker_client', docker_client))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.image.glance.API', lambda: _Glance(error)))
        instance = mock.Mock(project_id='p', os_type=None, uuid=IMAGE_ID)
        err = self.assertRaises(
            (exception.SnapshotUploadFailed, nova_exception.ImageNotFound),
            snapshot.snapshot, None, instance, IMAGE_ID, 'd' * 64,
            lambda **kw: None)
        # Nothing of the snapshot is kept on the host.
        self.assertEqual(['nova-snapshot/%s:upload' % IMAGE_ID],
                         engine.removed)
        return err

    def test_failed_upload_is_named_with_its_size(self):
        err = self.snapshot(IOError('connection reset by peer'))
        self.assertIsInstance(err, exception.SnapshotUploadFailed)
        self.assertIn(IMAGE_ID, str(err))
        self.assertIn('after 512 bytes', str(err))
        self.assertIn('connection reset by peer', str(err))

    def test_image_deleted_meanwhile_stays_nova_s_image_not_found(self):
        # Nova's compute manager treats a snapshot image deleted during the
        # upload apart from every other failure.
        err = self.snapshot(nova_exception.ImageNotFound(image_id=IMAGE_ID))
        self.assertIsInstance(err, nova_exception.ImageNotFound)
