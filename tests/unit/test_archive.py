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

"""The archive checks and the engine image store checks, without an engine."""

import contextlib
import gzip
import io
import json
import tarfile
import threading
import time

import fixtures
import testtools

from novadocker.virt.docker import exception
from novadocker.virt.docker.image import archive
from novadocker.virt.docker.image import naming
from novadocker.virt.docker.image import rules
from novadocker.virt.docker.image import store
from novadocker.virt.docker.image import streams
from novadocker.virt.docker.image import tar

IMAGE_ID = '0b4f6c1e-3c1d-4c57-9a38-8d1f3f6f2a11'


class NamesTestCase(testtools.TestCase):

    def test_normalise_strips_dots_and_slashes(self):
        self.assertEqual('a/b', rules.normalise('./a//./b/', IMAGE_ID))
        self.assertEqual('', rules.normalise('./', IMAGE_ID))

    def test_normalise_refuses_escapes(self):
        for bad, word in (('../x', "'..'"), ('a/../../x', "'..'"),
                          ('/etc/x', 'absolute'), ('a\\b', 'backslash'),
                          ('a' * 5000, 'longer than')):
            err = self.assertRaises(exception.UnsafeImageArchive,
                                    rules.normalise, bad, IMAGE_ID)
            self.assertIn(word, str(err))

    def test_links_resolve_inside_only(self):
        self.assertEqual('blobs/sha256/x', rules.resolve_link(
            'abc/layer.tar', '../blobs/sha256/x', IMAGE_ID))
        for target in ('../../x', '/etc', 'a/../../b', '..', ''):
            self.assertRaises(exception.UnsafeImageArchive,
                              rules.resolve_link, 'abc/l', target,
                              IMAGE_ID)


def stream(data, limits):
    reader = streams.ChunkReader([data])
    return tar.MemberReader(
        IMAGE_ID, streams.Decompressed(IMAGE_ID, reader,
                                       limits.expanded_limit), limits)


class LimitsTestCase(testtools.TestCase):

    LIMITS = rules.Limits(max_bytes=1024 ** 2, max_members=10,
                          max_header_bytes=2048, max_expansion=4,
                          declared_size=10000)

    def test_limits_follow_glance_size(self):
        self.assertEqual(10000, self.LIMITS.download_limit)
        self.assertEqual(40000, self.LIMITS.expanded_limit)
        unknown = rules.Limits(1024 ** 2, 10, 2048, 4)
        self.assertEqual(1024 ** 2, unknown.expanded_limit)

    def test_gzip_inflating_past_the_limit(self):
        data = gzip.compress(b'\0' * 100000)
        err = self.assertRaises(exception.ImageArchiveTooLarge, list,
                                stream(data, self.LIMITS).members())
        self.assertIn('decompressed', str(err))
        self.assertIn('image_max_expansion', str(err))

    def test_header_claim_refused_before_later_gzip_members(self):
        # The header is its own gzip member: it is decoded, and refused,
        # before anything of the members after it is inflated.
        info = tarfile.TarInfo('big/layer.tar')
        info.size = 1 << 40
        data = gzip.compress(info.tobuf(tarfile.GNU_FORMAT)) + \
            gzip.compress(b'\0' * 100000) * 3
        err = self.assertRaises(exception.ImageArchiveTooLarge, list,
                                stream(data, self.LIMITS).members())
        self.assertIn('one member', str(err))

    def test_long_name_within_bound_is_read(self):
        info = tarfile.TarInfo('d' * 1500)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode='w',
                          format=tarfile.GNU_FORMAT) as tar:
            tar.addfile(info, io.BytesIO(b''))
        names = [m.name for m in stream(out.getvalue(),
                                        self.LIMITS).members()]
        self.assertEqual(['d' * 1500], names)

    def test_too_many_members(self):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode='w') as tar:
            for n in range(11):
                tar.addfile(tarfile.TarInfo('f%d' % n), io.BytesIO(b''))
        err = self.assertRaises(exception.ImageArchiveTooLarge, list,
                                stream(out.getvalue(), self.LIMITS).members())
        self.assertIn('image_max_members', str(err))


class SnapshotConfigTestCase(testtools.TestCase):

    def test_clean_config_keeps_the_image_config_only(self):
        raw = json.dumps({
            'config': {'Env': ['PATH=/bin', 'DB_PASSWORD=x'],
                       'Labels': {'org.openstack.nova.uuid': 'u'}},
            'container_config': {'Env': ['DB_PASSWORD=x']},
            'container': 'abc',
            'history': [{'created_by': 'base'},
                        {'created_by': 'sh -c secret'}],
            'rootfs': {'diff_ids': ['sha256:1']}}).encode()
        config = json.loads(archive.clean_config(
            raw, {'Env': ['PATH=/bin'], 'Labels': None}))
        self.assertEqual({'Env': ['PATH=/bin'], 'Labels': None},
                         config['config'])
        self.assertNotIn('container_config', config)
        self.assertNotIn('container', config)
        self.assertEqual('nova-docker snapshot',
                         config['history'][-1]['created_by'])
        self.assertEqual(['sha256:1'], config['rootfs']['diff_ids'])

    def test_body_reads_in_bounded_pieces(self):
        body = streams.ArchiveBody(iter([b'a' * 10, b'b' * 5]))
        self.assertEqual(b'aaaa', body.read(4))
        self.assertEqual(b'aaaaaa', body.read(100))
        self.assertEqual(b'bbbbb', body.read())
        self.assertEqual(b'', body.read(1))
        self.assertEqual(15, body.size)

    def test_readers_copy_each_byte_once(self):
        # glanceclient reads 64 KiB at a time from pieces of about a MiB:
        # a reader that copied what is left of its piece on every read
        # would move about eight times the bytes it delivers.
        piece = 1024 * 1024
        for make in (lambda chunks: streams.ArchiveBody(chunks),
                     lambda chunks: streams.GlanceReader(
                         IMAGE_ID, chunks, streams.ExpectedDigest(IMAGE_ID))):
            copied = []
            chunks = [CountingBytes(b'x' * piece, copied) for _ in range(4)]
            reader = make(chunks)
            delivered = sum(len(d) for d in iter(
                lambda: reader.read(64 * 1024), b''))
            self.assertEqual(4 * piece, delivered)
            self.assertLessEqual(sum(copied), 2 * delivered)


class PrefetchedTestCase(testtools.TestCase):
    """The producer thread of a load: order, bound, failure, early stop."""

    def test_pieces_come_in_order_and_the_thread_ends(self):
        pieces = streams.Prefetched(iter([b'a', b'b', b'c']), depth=1)
        self.assertEqual([b'a', b'b', b'c'], list(pieces))
        self.assertFalse(pieces._thread.is_alive())

    def test_at_most_depth_pieces_wait_for_the_reader(self):
        made = []
        ready = threading.Event()

        def source():
            for i in range(100):
                made.append(i)
                if len(made) == 4:
                    ready.set()
                yield b'x'
        pieces = streams.Prefetched(source(), depth=2)
        self.addCleanup(pieces.close)
        ready.wait(5)
        time.sleep(0.3)
        # Two waiting, one held by the blocked producer, one being made.
        self.assertLessEqual(len(made), 4)

    def test_a_producer_failure_reaches_the_reader_after_its_pieces(self):
        def source():
            yield b'first'
            raise exception.InvalidImageArchive(image_id='i', reason='bad')
        got = []
        with testtools.ExpectedException(exception.InvalidImageArchive):
            for piece in streams.Prefetched(source(), depth=4):
                got.append(piece)
        self.assertEqual([b'first'], got)

    def test_closing_early_stops_the_producer(self):
        made = []

        def source():
            for i in range(10000):
                made.append(i)
                yield b'x'
        pieces = streams.Prefetched(source(), depth=2)
        it = iter(pieces)
        next(it)
        pieces.close()
        self.assertFalse(pieces._thread.is_alive())
        self.assertLess(len(made), 10)


class CountingBytes(bytes):
    """Bytes that count what every slice of them copies."""

    def __new__(cls, data, copied):
        self = super().__new__(cls, data)
        self.copied = copied
        return self

    def __getitem__(self, index):
        part = super().__getitem__(index)
        if isinstance(index, slice):
            self.copied.append(len(part))
            return CountingBytes(part, self.copied)
        return part


class FakeApi(object):

    def __init__(self, info):
        self._info = info

    def info(self):
        return self._info


class EngineChecksTestCase(testtools.TestCase):

    def use_engine_info(self, info):
        @contextlib.contextmanager
        def docker_client(what=''):
            yield type('Client', (), {'api': FakeApi(info)})()

        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.client.docker_client', docker_client))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.image.store._store_checked', []))

    def test_containerd_image_store_is_refused(self):
        # As docker info reports it with the containerd snapshotter on.
        self.use_engine_info({'Driver': 'overlayfs', 'DriverStatus': [
            ['driver-type', 'io.containerd.snapshotter.v1']]})
        err = self.assertRaises(exception.ImageStoreUnsupported,
                                store.check_image_store)
        self.assertIn('containerd-snapshotter', str(err))

    def test_graph_driver_store_is_accepted(self):
        self.use_engine_info({'Driver': 'overlay2', 'DriverStatus': [
            ['Backing Filesystem', 'extfs'], ['Supports d_type', 'true']]})
        store.check_image_store()

    def test_lock_without_a_directory(self):
        conf = naming.CONF
        conf.set_override('image_lock_path', None, group='docker')
        conf.set_override('lock_path', None, group='oslo_concurrency')
        self.addCleanup(conf.clear_override, 'image_lock_path',
                        group='docker')
        self.addCleanup(conf.clear_override, 'lock_path',
                        group='oslo_concurrency')
        err = self.assertRaises(exception.ImageLockPathUnset,
                                store.engine_lock, 'x')
        self.assertIn('lock_path', str(err))

    def test_reserved_names(self):
        names = naming.reserved_names()
        self.assertIn('nova-image/', names)
        self.assertIn('nova-snapshot/', names)
        self.assertIn('nova-docker/sandbox:', names)
