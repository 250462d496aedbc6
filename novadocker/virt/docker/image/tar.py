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

"""Tar members of an archive, decoded and re-encoded, in constant memory.

tarfile decodes each header (``TarInfo.frombuf``) and encodes ours
(``TarInfo.tobuf``); this module walks the stream itself because tarfile
buffers GNU long names and PAX headers whole, whatever size they claim.
Each extension header is bounded before it is read, and every member is
held to the archive rules as it is met.
"""

import tarfile
import time

from novadocker.virt.docker import exception
from novadocker.virt.docker.image import rules
from novadocker.virt.docker.image import streams


BLOCK = tarfile.BLOCKSIZE
_ZERO_BLOCK = b'\0' * BLOCK
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_EXTENSION_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
                    tarfile.XHDTYPE)


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
        raise rules.refuse(
            image_id, 'a member name that is not UTF-8: %r' % raw)


def _checked_text(text, image_id):
    """A name decoded with surrogateescape, refused unless it was UTF-8."""
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise rules.refuse(
            image_id, 'a member name that is not UTF-8: %r'
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
            raise rules.refuse(
                image_id, 'a negative or oversized %s in a tar '
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
            raise rules.too_large(
                self.image_id, 'one tar header (a GNU long '
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
                    raise rules.refuse(
                        self.image_id, 'an extended header that '
                        'describes no member')
                return None
            self.count += 1
            if self.count > self.limits.max_members:
                raise rules.too_large(
                    self.image_id, 'the number of tar members',
                    self.limits.max_members,
                    'image_max_members')
            header = _parse_header(block, self.image_id)
            kind = header['type']
            if kind not in _EXTENSION_TYPES:
                break
            data = self._extension(header)
            if kind in extended:
                raise rules.refuse(
                    self.image_id, 'two extended headers of the '
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
                raise rules.refuse(self.image_id, 'a sparse file member')
            for key, field in (('path', 'name'), ('linkpath', 'linkname')):
                if key in records:
                    header[field] = _text(records[key] + b'\0',
                                          self.image_id)
            if 'size' in records:
                if not records['size'].isdigit():
                    raise rules.refuse(self.image_id, 'a malformed PAX size')
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
        name = rules.normalise(raw, self.image_id)
        if kind == tarfile.LNKTYPE:
            raise rules.refuse(
                self.image_id, 'a hard link %r (docker save never '
                'writes hard links)' % raw[:200])
        if kind == tarfile.DIRTYPE:
            if not name:
                return None
            member = Member(raw, name, 'dir', mtime=header['mtime'])
        elif kind == tarfile.SYMTYPE:
            member = self._symlink(raw, name, header)
        elif kind in _FILE_TYPES:
            if header['size'] > self.limits.expanded_limit:
                raise rules.too_large(
                    self.image_id, 'one member (%r claiming '
                    '%d bytes)' % (raw[:100], header['size']),
                    self.limits.expanded_limit,
                    'image_max_bytes')
            member = Member(raw, name, 'file', header['size'],
                            header['mode'], header['mtime'])
            self._unread = header['size']
            self._padding = -header['size'] % BLOCK
        else:
            raise rules.refuse(
                self.image_id, 'a member %r of tar type %r (only '
                'files, directories and symbolic links are '
                'accepted)' % (raw[:200], kind))
        self._check_name(member)
        return member

    def _symlink(self, raw, name, header):
        if '/' not in name:
            raise rules.refuse(
                self.image_id, 'a symbolic link %r at the top '
                'level of the archive' % raw[:200])
        target = rules.resolve_link(name, header['linkname'], self.image_id)
        if rules.metadata_kind(target):
            raise rules.refuse(
                self.image_id, 'a symbolic link %r to %r' %
                (raw[:200], target))
        return Member(raw, name, 'symlink', mtime=header['mtime'],
                      linkname=header['linkname'])

    def _check_name(self, member):
        name = member.name
        if not name:
            raise rules.refuse(
                self.image_id, 'a member %r without a name'
                % member.raw_name)
        if name in self.seen:
            raise rules.refuse(
                self.image_id, 'the member name %r twice'
                % name[:200])
        parts = name.split('/')
        for depth in range(1, len(parts)):
            if '/'.join(parts[:depth]) in self._links:
                raise rules.refuse(
                    self.image_id, 'a member %r under a symbolic '
                    'link' % name[:200])
        metadata = rules.metadata_kind(name)
        if metadata and (member.raw_name != metadata or
                         member.kind != 'file'):
            raise rules.refuse(
                self.image_id, 'a second spelling of %s: %r (only '
                'the top-level file %s is accepted)'
                % (metadata, member.raw_name[:200], metadata))
        self.seen.add(name)
        if member.kind == 'symlink':
            self._links.add(name)

    def data(self, member):
        """Yield the data of the current regular-file member in pieces."""
        while self._unread:
            piece = self.stream.read_exact(
                min(self._unread, streams.COPY_CHUNK),
                member.name)
            self._unread -= len(piece)
            yield piece
        self.stream.read_exact(self._padding, 'padding')
        self._padding = 0

    def read_small(self, member):
        """All the data of a small metadata member (bounded)."""
        if member.kind != 'file' or member.size > rules.MAX_METADATA_BYTES:
            raise rules.refuse(
                self.image_id, 'member %s is not a small regular '
                'file' % member.name)
        return b''.join(self.data(member))

    def _skip_unread(self):
        while self._unread:
            piece = self.stream.read_exact(
                min(self._unread, streams.COPY_CHUNK),
                'a member')
            self._unread -= len(piece)
        self.stream.read_exact(self._padding, 'padding')
        self._padding = 0


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
