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

"""Bounded reading and rewriting of ``docker save`` archives.

A Glance image is written by a tenant, so its archive is parsed here, in
constant memory, before the engine sees a byte of it: this module reads tar
headers itself (Python's tarfile buffers GNU long names and PAX headers
whole, whatever size they claim), enforces the ``[docker] image_max_*``
limits, normalises every name and refuses what could make the engine load
something other than the one image the manifest names. What reaches the
engine is a re-encoded archive: one header per member, written by us, with
the normalised name, and the only ``manifest.json`` is the one we write.
So the engine's own tar reader never interprets a tenant's header.

The same reader rewrites the archive of a snapshot on its way to Glance
(see snapshot.py).
"""

import gzip
import hashlib
import json
import re
import tarfile
import time
import zlib

from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

BLOCK = tarfile.BLOCKSIZE
COPY_CHUNK = 1024 * 1024
MAX_METADATA_BYTES = 4 * 1024 * 1024
# PATH_MAX: also bounds the memory the set of seen names can take.
MAX_NAME_BYTES = 4096

MANIFEST = 'manifest.json'
REPOSITORIES = 'repositories'
OCI_INDEX = 'index.json'
OCI_LAYOUT = 'oci-layout'
# Members that tell a loader which images an archive holds. Only these
# exact top-level spellings are accepted; the only one the engine gets is
# the manifest.json written here.
METADATA_NAMES = (MANIFEST, REPOSITORIES, OCI_INDEX, OCI_LAYOUT)

_ZERO_BLOCK = b'\0' * BLOCK
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_EXTENSION_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
                    tarfile.XHDTYPE)
# Where "docker save" puts image configs (legacy and OCI layouts): their
# sha256 is the image id the engine will give the loaded image.
_CONFIG_NAME_RE = re.compile(
    r'^(?:[0-9a-f]{64}\.json|blobs/sha256/[0-9a-f]{64})$')


class Limits(object):
    """How much of an archive is read before it is refused."""

    def __init__(self, max_bytes, max_members, max_header_bytes,
                 max_expansion, declared_size=None):
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.max_header_bytes = max_header_bytes
        self.max_expansion = max_expansion
        self.declared_size = declared_size or None

    @classmethod
    def from_conf(cls, declared_size=None):
        conf = CONF.docker
        return cls(conf.image_max_bytes, conf.image_max_members,
                   conf.image_max_header_bytes, conf.image_max_expansion,
                   declared_size)

    @property
    def download_limit(self):
        """Bytes Glance may send: the size it recorded, or the maximum."""
        if self.declared_size:
            return min(self.declared_size, self.max_bytes)
        return self.max_bytes

    @property
    def expanded_limit(self):
        """Bytes the decompressed archive may hold."""
        if self.declared_size:
            return min(self.max_bytes,
                       self.declared_size * self.max_expansion)
        return self.max_bytes


def refuse(image_id, reason):
    """An UnsafeImageArchive for *image_id*."""
    return exception.UnsafeImageArchive(image_id=image_id, reason=reason)


def too_large(image_id, what, limit, option):
    return exception.ImageArchiveTooLarge(image_id=image_id, what=what,
                                          limit=limit, option=option)


# ------------------------------------------------------------ the download


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
            raise too_large(self.image_id, 'the download (more bytes than '
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
            raise refuse(self.image_id, 'data after the end of the archive')
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
        self._sniff()

    def _sniff(self):
        head = self._source.read(6)
        if head.startswith(b'\x1f\x8b'):
            self._source = gzip.GzipFile(
                fileobj=_Prefixed(head, self._source), mode='rb')
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
            raise too_large(self.image_id, 'the archive once decompressed',
                            self._limit, 'image_max_bytes or '
                            'image_max_expansion')
        self._buffer += data

    def _more(self):
        try:
            data = self._source.read(self._OUT_CHUNK)
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
                raise refuse(self.image_id, 'data after the end of the tar '
                             'archive')


# ---------------------------------------------------------------- members


class Member(object):
    """One archive member, as the engine will see it."""

    def __init__(self, raw_name, name, kind, size=0, mode=0o644, mtime=0,
                 linkname=''):
        self.raw_name = raw_name
        self.name = name
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtime = mtime
        self.linkname = linkname

    def header(self, name=None, size=None):
        """Our own PAX encoding of this member's header."""
        info = tarfile.TarInfo(name if name is not None else self.name)
        info.mtime = self.mtime
        if self.kind == 'dir':
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
        elif self.kind == 'symlink':
            info.type = tarfile.SYMTYPE
            info.linkname = self.linkname
            info.mode = 0o777
        else:
            info.size = self.size if size is None else size
            info.mode = 0o755 if self.mode & 0o111 else 0o644
        return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'strict')


def _text(field, image_id):
    raw = field.split(b'\0', 1)[0]
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        raise refuse(image_id, 'a member name that is not UTF-8: %r' % raw)


def _checked_text(text, image_id):
    """A name decoded with surrogateescape, refused unless it was UTF-8."""
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise refuse(image_id, 'a member name that is not UTF-8: %r'
                     % text.encode('utf-8', 'surrogateescape'))
    return text


def _parse_header(block, image_id):
    """One 512-byte header, decoded by tarfile, as a dict of its fields.

    tarfile checks the checksum and the numeric fields; names are decoded
    leniently there and refused here unless they are UTF-8. The type is
    the header's own byte: a V7 file whose name ends in '/' stays a file
    (its data follows), as the rest of this reader expects.
    """
    try:
        info = tarfile.TarInfo.frombuf(block, 'utf-8', 'surrogateescape')
    except tarfile.HeaderError as e:
        what = ('bad header checksum' if 'checksum' in str(e) else
                'a header field is not a number')
        raise exception.InvalidImageArchive(
            image_id=image_id,
            reason='the tar stream is corrupt or truncated (%s)' % what
        ) from e
    for what in ('mode', 'size', 'mtime'):
        if getattr(info, what) < 0:
            raise refuse(image_id, 'a negative or oversized %s in a tar '
                         'header' % what)
    return {'type': block[156:157],
            'name': _checked_text(info.name, image_id),
            'mode': info.mode,
            'size': info.size,
            'mtime': info.mtime,
            'linkname': _checked_text(info.linkname, image_id)}


def _pax_records(data, image_id):
    """The (key, value) records of a PAX extended header."""
    records = {}
    pos = 0
    while pos < len(data):
        space = data.find(b' ', pos)
        length = data[pos:space]
        if space < 0 or not length.isdigit() or int(length) < 5:
            raise exception.InvalidImageArchive(
                image_id=image_id, reason='a malformed PAX header')
        record = data[space + 1:pos + int(length)]
        pos += int(length)
        key, sep, value = record.partition(b'=')
        if not sep or not record.endswith(b'\n'):
            raise exception.InvalidImageArchive(
                image_id=image_id, reason='a malformed PAX header')
        records[key.decode('ascii', 'replace')] = value[:-1]
    return records


def normalise(raw, image_id):
    """The member name *raw* as a clean relative path ('' for the root)."""
    if '\0' in raw or '\\' in raw:
        raise refuse(image_id, 'a member name with a NUL or backslash: %r'
                     % raw[:200])
    if len(raw.encode('utf-8')) > MAX_NAME_BYTES:
        raise refuse(image_id, 'a member name longer than %d bytes'
                     % MAX_NAME_BYTES)
    if raw.startswith('/'):
        raise refuse(image_id, 'an absolute member name %r' % raw[:200])
    parts = [p for p in raw.split('/') if p not in ('', '.')]
    if '..' in parts:
        raise refuse(image_id, "a member name with '..': %r" % raw[:200])
    return '/'.join(parts)


def resolve_link(name, target, image_id):
    """The archive path a symbolic link *name* -> *target* points to."""
    if not target or target.startswith('/') or '\0' in target:
        raise refuse(image_id, 'a symbolic link %r to %r, outside the '
                     'archive' % (name, target[:200]))
    parts = [p for p in target.split('/') if p not in ('', '.')]
    ups = 0
    while ups < len(parts) and parts[ups] == '..':
        ups += 1
    base = name.split('/')[:-1]
    # '..' only at the start: "a/../b" could climb out through a link.
    if '..' in parts[ups:] or ups > len(base) or not parts[ups:]:
        raise refuse(image_id, 'a symbolic link %r to %r, outside the '
                     'archive' % (name, target[:200]))
    return '/'.join(base[:len(base) - ups] + parts[ups:])


class MemberReader(object):
    """Iterate the members of an archive, enforcing the limits.

    ``members()`` yields Member objects; the data of a regular file is
    read with ``data(member)`` before the next member (as a stream).
    """

    def __init__(self, image_id, stream, limits):
        self.image_id = image_id
        self.stream = stream
        self.limits = limits
        self.count = 0
        self.seen = set()
        self._links = set()
        self._unread = 0
        self._padding = 0

    def _extension(self, header):
        size = header['size']
        if size > self.limits.max_header_bytes:
            raise too_large(self.image_id, 'one tar header (a GNU long '
                            'name/link or PAX header claiming %d bytes)'
                            % size, self.limits.max_header_bytes,
                            'image_max_header_bytes')
        data = self.stream.read_exact(size, 'an extended header')
        self.stream.read_exact(-size % BLOCK, 'padding')
        return data

    def _next_header(self):
        """The next header, extensions applied; None at the end."""
        extended = {}
        while True:
            block = self.stream.read_exact(BLOCK, 'a tar header')
            if block == _ZERO_BLOCK:
                self.stream.read_exact(BLOCK, 'the end of the archive')
                if extended:
                    raise refuse(self.image_id, 'an extended header that '
                                 'describes no member')
                return None
            self.count += 1
            if self.count > self.limits.max_members:
                raise too_large(self.image_id, 'the number of tar members',
                                self.limits.max_members,
                                'image_max_members')
            header = _parse_header(block, self.image_id)
            kind = header['type']
            if kind not in _EXTENSION_TYPES:
                break
            data = self._extension(header)
            if kind in extended:
                raise refuse(self.image_id, 'two extended headers of the '
                             'same kind for one member')
            extended[kind] = data
        self._apply(header, extended)
        return header

    def _apply(self, header, extended):
        for kind, key in ((tarfile.GNUTYPE_LONGNAME, 'name'),
                          (tarfile.GNUTYPE_LONGLINK, 'linkname')):
            if kind in extended:
                header[key] = _text(extended[kind], self.image_id)
        if tarfile.XHDTYPE in extended:
            records = _pax_records(extended[tarfile.XHDTYPE], self.image_id)
            if any(k.startswith('GNU.sparse') for k in records):
                raise refuse(self.image_id, 'a sparse file member')
            for key, field in (('path', 'name'), ('linkpath', 'linkname')):
                if key in records:
                    header[field] = _text(records[key] + b'\0',
                                          self.image_id)
            if 'size' in records:
                if not records['size'].isdigit():
                    raise refuse(self.image_id, 'a malformed PAX size')
                header['size'] = int(records['size'])

    def members(self):
        while True:
            self._skip_unread()
            header = self._next_header()
            if header is None:
                return
            member = self._member(header)
            if member is not None:
                yield member

    def _member(self, header):
        kind = header['type']
        raw = header['name']
        name = normalise(raw, self.image_id)
        if kind == tarfile.LNKTYPE:
            raise refuse(self.image_id, 'a hard link %r (docker save never '
                         'writes hard links)' % raw[:200])
        if kind == tarfile.DIRTYPE:
            if not name:
                return None
            member = Member(raw, name, 'dir', mtime=header['mtime'])
        elif kind == tarfile.SYMTYPE:
            member = self._symlink(raw, name, header)
        elif kind in _FILE_TYPES:
            if header['size'] > self.limits.expanded_limit:
                raise too_large(self.image_id, 'one member (%r claiming '
                                '%d bytes)' % (raw[:100], header['size']),
                                self.limits.expanded_limit,
                                'image_max_bytes')
            member = Member(raw, name, 'file', header['size'],
                            header['mode'], header['mtime'])
            self._unread = header['size']
            self._padding = -header['size'] % BLOCK
        else:
            raise refuse(self.image_id, 'a member %r of tar type %r (only '
                         'files, directories and symbolic links are '
                         'accepted)' % (raw[:200], kind))
        self._check_name(member)
        return member

    def _symlink(self, raw, name, header):
        if '/' not in name:
            raise refuse(self.image_id, 'a symbolic link %r at the top '
                         'level of the archive' % raw[:200])
        target = resolve_link(name, header['linkname'], self.image_id)
        if _metadata_kind(target):
            raise refuse(self.image_id, 'a symbolic link %r to %r' %
                         (raw[:200], target))
        return Member(raw, name, 'symlink', mtime=header['mtime'],
                      linkname=header['linkname'])

    def _check_name(self, member):
        name = member.name
        if not name:
            raise refuse(self.image_id, 'a member %r without a name'
                         % member.raw_name)
        if name in self.seen:
            raise refuse(self.image_id, 'the member name %r twice'
                         % name[:200])
        parts = name.split('/')
        for depth in range(1, len(parts)):
            if '/'.join(parts[:depth]) in self._links:
                raise refuse(self.image_id, 'a member %r under a symbolic '
                             'link' % name[:200])
        metadata = _metadata_kind(name)
        if metadata and (member.raw_name != metadata or
                         member.kind != 'file'):
            raise refuse(self.image_id, 'a second spelling of %s: %r (only '
                         'the top-level file %s is accepted)'
                         % (metadata, member.raw_name[:200], metadata))
        self.seen.add(name)
        if member.kind == 'symlink':
            self._links.add(name)

    def data(self, member):
        """Yield the data of the current regular-file member in pieces."""
        while self._unread:
            piece = self.stream.read_exact(min(self._unread, COPY_CHUNK),
                                           member.name)
            self._unread -= len(piece)
            yield piece
        self.stream.read_exact(self._padding, 'padding')
        self._padding = 0

    def read_small(self, member):
        """All the data of a small metadata member (bounded)."""
        if member.kind != 'file' or member.size > MAX_METADATA_BYTES:
            raise refuse(self.image_id, 'member %s is not a small regular '
                         'file' % member.name)
        return b''.join(self.data(member))

    def _skip_unread(self):
        while self._unread:
            piece = self.stream.read_exact(min(self._unread, COPY_CHUNK),
                                           'a member')
            self._unread -= len(piece)
        self.stream.read_exact(self._padding, 'padding')
        self._padding = 0


def _metadata_kind(name):
    """Which metadata member *name* spells (any case, any depth), or None."""
    base = name.rsplit('/', 1)[-1].lower()
    return base if base in METADATA_NAMES else None


def file_bytes(name, data):
    """The tar encoding of a regular file *name* holding *data*."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    yield info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'strict')
    yield data
    yield b'\0' * (-len(data) % BLOCK)


def end_of_archive():
    return b'\0' * (2 * BLOCK)


# ------------------------------------------------------------ for loading


class LoadArchive(object):
    """A Glance archive rewritten for the engine's load API.

    Iterating yields the bytes to send; the manifest and the end of the
    archive come only after the whole download was read and verified, so
    any problem raises before the engine could finish a load. Afterwards
    ``config_id`` is the image id the loaded tag must resolve to.
    """

    def __init__(self, reader, image_id, tag, limits, reserved=()):
        self.reader = reader
        self.image_id = image_id
        self.tag = tag
        self.limits = limits
        self.reserved = tuple(reserved)
        self.config_id = None
        self.stream = Decompressed(image_id, reader, limits.expanded_limit)
        self.members = MemberReader(image_id, self.stream, limits)

    def __iter__(self):
        files = {}
        links = {}
        manifest = None
        for member in self.members.members():
            if _metadata_kind(member.name):
                data = self.members.read_small(member)
                if member.name == MANIFEST:
                    manifest = data
                elif member.name == REPOSITORIES:
                    self._check_repositories(data)
                continue
            if member.kind == 'symlink':
                links[member.name] = resolve_link(
                    member.name, member.linkname, self.image_id)
            yield member.header()
            if member.kind == 'file':
                files[member.name] = yield from self._copy(member)
        self.stream.drain()
        self.reader.finish()
        entry = self._checked_manifest(manifest, files, links)
        self.config_id = 'sha256:' + files[entry['Config']]
        yield from file_bytes(MANIFEST, json.dumps([entry]).encode('utf-8'))
        yield end_of_archive()

    def _copy(self, member):
        """Stream a member's data; return its sha256 if it may be a config."""
        hasher = None
        if _CONFIG_NAME_RE.match(member.name) and \
                member.size <= MAX_METADATA_BYTES:
            hasher = hashlib.sha256()
        for piece in self.members.data(member):
            if hasher is not None:
                hasher.update(piece)
            yield piece
        yield b'\0' * (-member.size % BLOCK)
        return hasher.hexdigest() if hasher is not None else ''

    def _reserved_tag(self, tags):
        for tag in tags or []:
            if not isinstance(tag, str):
                return repr(tag)[:100]
            if ':' not in tag.rsplit('/', 1)[-1]:
                tag += ':latest'
            if any(tag.startswith(r) for r in self.reserved):
                return tag[:100]
        return None

    def _check_repositories(self, raw):
        try:
            repositories = json.loads(raw)
            tags = ['%s:%s' % (repo, t) for repo, names in
                    repositories.items() for t in names]
        except (ValueError, AttributeError, TypeError) as e:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='"repositories" is invalid (%s)' % e) from e
        found = self._reserved_tag(tags)
        if found:
            raise refuse(self.image_id, 'the name %s, which belongs to the '
                         "driver's own images, in \"repositories\"" % found)

    def _checked_manifest(self, raw, files, links):
        try:
            entries = json.loads(raw) if raw is not None else None
        except ValueError as e:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='manifest.json is not JSON (%s)' % e) from e
        reason = manifest_problem(entries, files, links)
        if reason:
            raise exception.InvalidImageArchive(image_id=self.image_id,
                                                reason=reason)
        found = self._reserved_tag(entries[0].get('RepoTags'))
        if found:
            raise refuse(self.image_id, 'the tag %s, which belongs to the '
                         "driver's own images, in manifest.json" % found)
        entry = entries[0]
        return {'Config': normalise(entry['Config'], self.image_id),
                'RepoTags': [self.tag],
                'Layers': [normalise(n, self.image_id)
                           for n in entry.get('Layers') or []]}


def manifest_problem(entries, files, links):
    """Why a parsed manifest.json is unusable, or None.

    *files* are the regular files seen (name -> sha256 or ''), *links* the
    symbolic links (name -> target).
    """
    if entries is None:
        return ('it has no manifest.json (is it a "docker save" archive, '
                'and not "docker export" or a root file system?)')
    if not isinstance(entries, list) or not entries:
        return 'manifest.json lists no image'
    if len(entries) != 1:
        return ('it holds %d images; a Glance image must hold exactly one'
                % len(entries))
    entry = entries[0]
    if not isinstance(entry, dict) or \
            not isinstance(entry.get('Config'), str):
        return 'manifest.json has no image config'
    layers = entry.get('Layers') or []
    if not isinstance(layers, list) or \
            not all(isinstance(n, str) for n in layers):
        return 'manifest.json has a malformed layer list'
    config = _clean(entry['Config'])
    if not files.get(config):
        return ('its manifest.json names config %r, which is not an image '
                'config member of the archive (truncated?)'
                % entry['Config'][:100])
    missing = [n for n in layers
               if links.get(_clean(n), _clean(n)) not in files]
    if missing:
        return ('it lacks %s named by manifest.json (truncated?)'
                % ', '.join(m[:100] for m in missing[:3]))
    return None


def _clean(name):
    parts = [p for p in name.split('/') if p not in ('', '.')]
    return '' if '..' in parts or name.startswith('/') else '/'.join(parts)


# ----------------------------------------------------------- for snapshots


# The v1 compatibility files of the legacy layout: "<layer>/json" repeats
# the container's whole configuration (its environment included).
_V1_FILES = ('json', 'VERSION')


def clean_config(raw, image_config):
    """An image config with *image_config* as its runtime config.

    ``docker commit`` merges the container's configuration (environment
    from server metadata, the driver's labels, the command Nova ran) into
    the image; a snapshot should carry the image's own. The container's
    copy ("container_config") and the command recorded in the commit's
    history entry go too.
    """
    config = json.loads(raw)
    config['config'] = image_config
    for key in ('container_config', 'container'):
        config.pop(key, None)
    # The commit's own history entry records the container's command.
    history = config.get('history') or []
    if history and isinstance(history[-1], dict):
        history[-1]['created_by'] = 'nova-docker snapshot'
    return json.dumps(config, sort_keys=True).encode('utf-8')


class SnapshotArchive(object):
    """A committed image's ``docker save`` stream, cleaned for Glance.

    The layers pass through; the config is rebuilt with the source image's
    own runtime config (renamed after its new sha256), the v1 files and
    the engine's tag are dropped.
    """

    def __init__(self, reader, image_id, image_config, limits):
        self.image_id = image_id
        self.image_config = image_config
        stream = Decompressed(image_id, reader, limits.expanded_limit)
        self.members = MemberReader(image_id, stream, limits)

    def __iter__(self):
        renamed = {}
        manifest = None
        for member in self.members.members():
            base = member.name.rsplit('/', 1)[-1]
            if _metadata_kind(member.name):
                data = self.members.read_small(member)
                if member.name == MANIFEST:
                    manifest = json.loads(data)
                continue
            if '/' in member.name and base in _V1_FILES:
                continue
            if _CONFIG_NAME_RE.match(member.name):
                data = clean_config(self.members.read_small(member),
                                    self.image_config)
                digest = hashlib.sha256(data).hexdigest()
                name = (digest + '.json' if member.name.endswith('.json')
                        else 'blobs/sha256/' + digest)
                renamed[member.name] = name
                yield from file_bytes(name, data)
                continue
            yield member.header()
            if member.kind == 'file':
                yield from self.members.data(member)
                yield b'\0' * (-member.size % BLOCK)
        yield from file_bytes(MANIFEST, self._manifest(manifest, renamed))
        yield end_of_archive()

    def _manifest(self, manifest, renamed):
        if not manifest or len(manifest) != 1 or \
                manifest[0].get('Config') not in renamed:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='the engine saved a snapshot without a usable '
                       'manifest.json')
        entry = manifest[0]
        return json.dumps([{'Config': renamed[entry['Config']],
                            'RepoTags': None,
                            'Layers': entry.get('Layers') or []}]).encode()


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
