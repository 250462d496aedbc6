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

"""Byte streams of the image path: Glance in, gzip, a body for Glance out.

Every reader holds at most one chunk of its source, copies each byte once,
and counts what it reads against the archive limits; the download is
hashed on the way and checked against Glance's record.
"""

import gzip
import hashlib
import queue
import threading
import zlib

from oslo_log import log as logging

from novadocker.virt.docker import exception
from novadocker.virt.docker.image import rules

LOG = logging.getLogger(__name__)


COPY_CHUNK = 1024 * 1024


class ExpectedDigest(object):
    """The hash Glance recorded for an image, and a running hasher."""

    def __init__(self, image_id, algorithm=None, expected=None):
        self.image_id = image_id
        self.algorithm = algorithm
        self.expected = expected.lower() if expected else None
        self._hasher = None
        if algorithm:
            self._hasher = hashlib.new(algorithm, usedforsecurity=False)

    @classmethod
    def from_glance(cls, image_id, record):
        """Prefer Glance's multihash (os_hash_*), fall back to md5."""
        props = record.get('properties') or {}
        algo = record.get('os_hash_algo') or props.get('os_hash_algo')
        value = record.get('os_hash_value') or props.get('os_hash_value')
        if algo and value and algo.lower() in hashlib.algorithms_available:
            return cls(image_id, algo.lower(), value)
        if algo and value:
            LOG.warning('Image %(image_id)s: hash algorithm %(algo)s is not '
                        'available here; checking its md5 checksum instead',
                        {'image_id': image_id, 'algo': algo})
        if record.get('checksum'):
            return cls(image_id, 'md5', record['checksum'])
        LOG.warning('Image %s has no checksum in Glance: its data cannot '
                    'be verified', image_id)
        return cls(image_id)

    def update(self, data):
        if self._hasher is not None:
            self._hasher.update(data)

    def verify(self, size):
        """Raise ImageChecksumMismatch unless the data matched."""
        if self._hasher is None:
            return
        actual = self._hasher.hexdigest()
        if actual != self.expected:
            raise exception.ImageChecksumMismatch(
                image_id=self.image_id, algorithm=self.algorithm,
                size=size, actual=actual, expected=self.expected)


class _Piece(object):
    """The part of one chunk not read yet.

    Reads slice from an offset: each byte is copied once, into the piece
    handed out, however small the reads and large the chunk.
    """

    def __init__(self, data=b''):
        self._data = data
        self._offset = 0

    def __len__(self):
        return len(self._data) - self._offset

    def take(self, size):
        """At most *size* bytes (all that is left if *size* is None)."""
        end = len(self._data) if size is None else self._offset + size
        data = self._data[self._offset:end]
        self._offset += len(data)
        return bytes(data)


class GlanceReader(object):
    """A file-like ``read()`` over Glance's chunk iterator.

    Hashes and counts every byte, and refuses more bytes than *limit*. A
    failure of the iterator becomes ImageDownloadFailed naming the image.
    """

    def __init__(self, image_id, chunks, digest, limit=None):
        self.image_id = image_id
        self.digest = digest
        self.size = 0
        self.limit = limit
        self._chunks = iter(chunks)
        self._source = chunks
        self._pending = _Piece()
        self._eof = False

    def _pull(self):
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._eof = True
            return b''
        except Exception as e:
            raise exception.ImageDownloadFailed(
                image_id=self.image_id, size=self.size, reason=str(e)) from e
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise rules.too_large(
                self.image_id, 'the download (more bytes than '
                'Glance recorded, or than the maximum)',
                self.limit, 'image_max_bytes')
        self.digest.update(chunk)
        return chunk

    def read(self, size=COPY_CHUNK):
        """Return at most *size* bytes (fewer only at the end)."""
        while not self._pending and not self._eof:
            self._pending = _Piece(self._pull())
        return self._pending.take(size)

    def finish(self):
        """Check the whole download was read, then verify its hash."""
        if self.read():
            raise rules.refuse(
                self.image_id, 'data after the end of the archive')
        self.digest.verify(self.size)

    def close(self):
        close = getattr(self._source, 'close', None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: S110 - the download already failed
                LOG.debug('Closing the download of %s failed', self.image_id)


class ChunkReader(object):
    """A file-like ``read()`` over an iterator of byte chunks."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._pending = _Piece()
        self.size = 0

    def read(self, size=COPY_CHUNK):
        """Return at most *size* bytes (fewer only at the end)."""
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b''
            self.size += len(chunk)
            self._pending = _Piece(chunk)
        if size is not None and size < 0:
            size = None
        return self._pending.take(size)


class _Prefixed(object):
    """A ``read()`` that returns *head* before the rest of *source*."""

    def __init__(self, head, source):
        self._head = _Piece(head)
        self._source = source

    def read(self, size=COPY_CHUNK):
        if self._head:
            return self._head.take(size)
        return self._source.read(size)


class Decompressed(object):
    """Exact reads of the (possibly gzip-compressed) archive, bounded.

    The gzip stream is inflated by the standard library a bounded piece at
    a time (gzip reads its input in small blocks and inflates at most what
    is asked for), so a small download that inflates to terabytes costs
    only the time to read up to *limit* bytes of it. Concatenated gzip
    members form one stream, as in gzip(1).
    """

    _OUT_CHUNK = 256 * 1024

    def __init__(self, image_id, source, limit):
        self.image_id = image_id
        self.expanded = 0
        self._source = source
        self._limit = limit
        self._buffer = bytearray()
        self._eof = False
        self._read = source.read
        self._sniff()

    def _sniff(self):
        head = self._source.read(6)
        if head.startswith(b'\x1f\x8b'):
            inflated = gzip.GzipFile(
                fileobj=_Prefixed(head, self._source), mode='rb')
            # read1 inflates from one gzip member at a time: a header alone
            # in its member is decoded, and refused, before the members
            # after it are inflated.
            self._read = inflated.read1
            return
        for magic, name in ((b'BZh', 'bzip2'), (b'\xfd7zXZ\0', 'xz'),
                            (b'\x28\xb5\x2f\xfd', 'zstd')):
            if head.startswith(magic):
                raise exception.InvalidImageArchive(
                    image_id=self.image_id,
                    reason='it is %s-compressed; upload it uncompressed or '
                           'gzip-compressed' % name)
        self._add(head)

    def _add(self, data):
        self.expanded += len(data)
        if self.expanded > self._limit:
            raise rules.too_large(
                self.image_id, 'the archive once decompressed',
                self._limit, 'image_max_bytes or '
                'image_max_expansion')
        self._buffer += data

    def _more(self):
        try:
            data = self._read(self._OUT_CHUNK)
        except EOFError as e:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='the gzip stream is truncated after %d bytes'
                       % self.expanded) from e
        except (OSError, zlib.error) as e:
            # gzip.BadGzipFile is an OSError (a failed download is already
            # ImageDownloadFailed, raised through as it is).
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='the gzip stream is corrupt (%s)' % e) from e
        if not data:
            self._eof = True
        self._add(data)

    def read(self, size):
        """Return exactly *size* bytes, or fewer only at the end."""
        while len(self._buffer) < size and not self._eof:
            self._more()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read_exact(self, size, what):
        data = self.read(size)
        if len(data) != size:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='the tar stream is corrupt or truncated (it ends in '
                       '%s after %d bytes)' % (what, self.expanded))
        return data

    def drain(self):
        """Everything after the end of the archive: only zeros allowed."""
        while True:
            data = self.read(COPY_CHUNK)
            if not data:
                return
            if data.strip(b'\0'):
                raise rules.refuse(
                    self.image_id, 'data after the end of the tar '
                    'archive')


class ArchiveBody(object):
    """A file-like body over byte pieces, for glanceclient's ``read()``.

    Holds at most one piece (about a MiB) at a time.
    """

    def __init__(self, pieces):
        self._source = ChunkReader(pieces)
        self.size = 0

    def read(self, size=-1):
        """Return up to *size* bytes; b'' at the end; all if size < 0.

        glanceclient reads 64 KiB at a time; only a caller asking for
        everything holds everything.
        """
        if size is None or size < 0:
            return b''.join(iter(lambda: self.read(COPY_CHUNK), b''))
        data = self._source.read(size)
        self.size += len(data)
        return data


class _Failure(object):
    """What the producer of a Prefetched raised, handed to its reader."""

    def __init__(self, error):
        self.error = error


class Prefetched(object):
    """Iterate *source* in a thread of its own, *depth* pieces ahead.

    The download, its hash and the archive checks (the producer) run while
    the reader sends the pieces already made (to the engine): neither waits
    for the other while at most *depth* pieces are in between, which bounds
    the memory. What the producer raises is raised to the reader after the
    pieces made before it, so a failure still aborts the upload; closing
    the iterator early stops the producer at its next piece.
    """

    _END = object()
    # How long the producer waits for room before it looks for a stop.
    _PUT_WAIT = 0.1
    # How long close() waits for the producer to finish its piece.
    JOIN_TIMEOUT = 60

    def __init__(self, source, depth=4, name='nova-docker-prefetch'):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce,
                                        args=(source,), name=name,
                                        daemon=True)
        self._thread.start()

    def _produce(self, source):
        try:
            for piece in source:
                if not self._put(piece):
                    return
        except BaseException as e:
            self._put(_Failure(e))
            return
        self._put(self._END)

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=self._PUT_WAIT)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        try:
            while True:
                item = self._queue.get()
                if item is self._END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            self.close()

    def close(self):
        """Stop the producer and wait for it (it holds the download)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(self.JOIN_TIMEOUT)
        if self._thread.is_alive():
            LOG.warning('The image download thread %s did not stop in %d '
                        's', self._thread.name, self.JOIN_TIMEOUT)
