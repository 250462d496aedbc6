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

"""Glance images <-> Docker engine images.

A Glance image is loaded under a tag derived from its *id*
(``nova-image/<id>:glance``), never from its name, so two images with the
same name stay apart. The download is streamed straight into the engine's
load API. On the way the ``docker save`` archive is rewritten member by
member: its own repository tags are replaced by ours, and the manifest and
the end of the archive are held back until every byte has been read and
checked against Glance's hash. Any failure raises inside the request body,
which aborts the upload; the engine then loads nothing (checked against
dockerd 20.10: an aborted request body leaves no image, while a body that
merely lacks manifest.json is loaded by the legacy loader as untagged
images, so withholding the manifest alone would not be enough).
"""

import datetime
import hashlib
import json
import re
import tarfile
import time

from nova.compute import task_states
from nova.image import glance
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import timeutils

import novadocker.conf
from novadocker.virt.docker import client
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

REPOSITORY_PREFIX = 'nova-image/'
TAG = 'glance'
SNAPSHOT_PREFIX = 'nova-snapshot/'
DOCKER_CONTAINER_FORMAT = 'docker'

# Members of a "docker save" archive that name images: rewritten or
# dropped, and sent last. "repositories" feeds only the legacy loader.
_MANIFEST = 'manifest.json'
_OCI_INDEX = 'index.json'
_REPOSITORIES = 'repositories'
_HELD_BACK = (_MANIFEST, _OCI_INDEX, _REPOSITORIES)
_MAX_METADATA_BYTES = 4 * 1024 * 1024

_BLOCK = tarfile.BLOCKSIZE
_COPY_CHUNK = 1024 * 1024
_SEND_CHUNK = 256 * 1024

# Docker reference components are lowercase; Glance ids are UUIDs.
_IMAGE_ID_RE = re.compile(r'^[0-9a-f]+(-[0-9a-f]+)*$')
# The OCI annotations that would name the image in a containerd store.
_NAME_ANNOTATIONS = ('io.containerd.image.name',
                     'org.opencontainers.image.ref.name')


def image_tag_for(image_id):
    """Return the engine tag of a Glance image: ``nova-image/<id>:glance``.

    Derived from the id only, so that images sharing a name never share a
    tag.
    """
    return _repository_for(image_id) + ':' + TAG


def _repository_for(image_id, prefix=None):
    prefix = REPOSITORY_PREFIX if prefix is None else prefix
    normalized = str(image_id or '').lower()
    if not _IMAGE_ID_RE.match(normalized):
        raise exception.InvalidImageId(image_id=image_id)
    return prefix + normalized


def image_id_from_tag(tag):
    """Return the Glance image id of one of our tags, or None."""
    if not tag.startswith(REPOSITORY_PREFIX) or not tag.endswith(':' + TAG):
        return None
    image_id = tag[len(REPOSITORY_PREFIX):-len(TAG) - 1]
    return image_id if _IMAGE_ID_RE.match(image_id) else None


def _lock_name(image_id):
    return 'nova-docker-image-%s' % str(image_id).lower()


# ---------------------------------------------------------------- loading


def ensure_image(context, image_meta, instance=None):
    """Make the Glance image available in the engine; return its tag.

    *image_meta* is a ``nova.objects.ImageMeta``. An image already present
    under its tag is used without asking Glance; otherwise it is
    downloaded once (a lock per image id), verified and loaded.
    """
    image_id = image_meta.id
    tag = image_tag_for(image_id)
    if image_meta.obj_attr_is_set('container_format'):
        check_container_format(image_id, image_meta.container_format)
    if _touch(tag):
        return tag
    with lockutils.lock(_lock_name(image_id)):
        if _touch(tag):
            return tag
        _load_from_glance(context, image_id, tag, instance)
    return tag


def check_container_format(image_id, container_format):
    """Raise InvalidImageFormat unless the image is a docker archive."""
    if container_format != DOCKER_CONTAINER_FORMAT:
        raise exception.InvalidImageFormat(image_id=image_id,
                                           container_format=container_format)


def _touch(tag):
    """Re-tag *tag* onto itself; False if the engine does not have it.

    One API call: it tells whether the image is there and stamps its
    LastTagTime, the "last used" clock of the image cache.
    """
    repository, _sep, name = tag.rpartition(':')
    try:
        with client.docker_client(what='tag image %s' % tag) as dc:
            dc.api.tag(tag, repository, name)
    except exception.DockerObjectNotFound:
        return False
    return True


def _load_from_glance(context, image_id, tag, instance):
    api = glance.API()
    record = api.get(context, image_id)
    check_container_format(image_id, record.get('container_format'))
    digest = ExpectedDigest.from_glance(image_id, record)
    LOG.info('Loading image %(image_id)s from Glance as %(tag)s',
             {'image_id': image_id, 'tag': tag}, instance=instance)
    started = time.monotonic()
    chunks = api.download(context, image_id)
    if chunks is None:
        raise exception.ImageDownloadFailed(
            image_id=image_id, size=0,
            reason='Glance returned no data stream (image signature '
                   'verification consumes it; the Docker driver does not '
                   'support [glance] verify_glance_signatures)')
    reader = GlanceReader(image_id, chunks, digest)
    try:
        _load_archive(tag, image_id, rewrite_archive(reader, image_id, tag))
    except Exception:
        with excutils.save_and_reraise_exception():
            reader.close()
            _remove_quietly(tag)
    LOG.info('Loaded image %(image_id)s (%(size)d bytes) in %(secs).2fs',
             {'image_id': image_id, 'size': reader.size,
              'secs': time.monotonic() - started}, instance=instance)


def _load_archive(tag, image_id, body):
    what = 'load image %s as %s' % (image_id, tag)
    with client.docker_client(what=what) as dc:
        for message in dc.api.load_image(coalesce(body)):
            if message.get('error'):
                raise exception.ImageLoadFailed(image_id=image_id, tag=tag,
                                                reason=message['error'])
    if not _touch(tag):
        raise exception.ImageLoadFailed(
            image_id=image_id, tag=tag,
            reason='the load finished but the tag does not exist')


def _remove_quietly(tag):
    try:
        with client.docker_client(what='remove image %s' % tag) as dc:
            dc.api.remove_image(tag)
    except exception.DockerObjectNotFound:
        pass
    except exception.DockerDriverError as e:
        LOG.warning('Could not remove image %(tag)s: %(err)s',
                    {'tag': tag, 'err': e})


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


class GlanceReader(object):
    """A file-like ``read()`` over Glance's chunk iterator.

    Hashes and counts every byte; a failure of the iterator becomes
    ImageDownloadFailed naming the image.
    """

    def __init__(self, image_id, chunks, digest):
        self.image_id = image_id
        self.digest = digest
        self.size = 0
        self._chunks = iter(chunks)
        self._source = chunks
        self._buffer = bytearray()
        self._eof = False

    def _pull(self):
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._eof = True
            return
        except Exception as e:
            raise exception.ImageDownloadFailed(
                image_id=self.image_id, size=self.size, reason=str(e)) from e
        self.size += len(chunk)
        self.digest.update(chunk)
        self._buffer += chunk

    def read(self, size=-1):
        while not self._eof and (size < 0 or len(self._buffer) < size):
            self._pull()
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def finish(self):
        """Read what the archive did not need (padding), then verify."""
        while not self._eof:
            self._pull()
            self._buffer.clear()
        self.digest.verify(self.size)

    def close(self):
        close = getattr(self._source, 'close', None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: S110 - the download already failed
                LOG.debug('Closing the download of %s failed', self.image_id)


def rewrite_archive(reader, image_id, tag):
    """Yield a ``docker save`` archive from *reader*, tagged only as *tag*.

    Layers stream through as they arrive. The manifest, the OCI index and
    the end-of-archive blocks are sent only once the whole download has
    been read and verified; every problem raises before that.
    """
    held = {}
    seen = set()
    try:
        archive = tarfile.open(fileobj=reader, mode='r|*', bufsize=_COPY_CHUNK)
        for member in archive:
            name = _member_name(member.name)
            if name in _HELD_BACK:
                held[name] = _read_metadata(archive, member, image_id)
                continue
            seen.add(name)
            data = archive.extractfile(member) if member.isreg() else None
            yield from _member_bytes(member, data)
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise exception.InvalidImageArchive(
            image_id=image_id,
            reason='the tar stream is corrupt or truncated after %d bytes '
                   '(%s)' % (reader.size, e)) from e
    reader.finish()
    manifest = retag_manifest(held.get(_MANIFEST), seen, image_id, tag)
    yield from _file_bytes(_MANIFEST, manifest)
    if _OCI_INDEX in held:
        yield from _file_bytes(_OCI_INDEX,
                               strip_index_names(held[_OCI_INDEX], image_id))
    yield b'\0' * (2 * _BLOCK)


def _member_name(name):
    while name.startswith('./'):
        name = name[2:]
    return name.rstrip('/')


def _read_metadata(archive, member, image_id):
    if not member.isfile() or member.size > _MAX_METADATA_BYTES:
        raise exception.InvalidImageArchive(
            image_id=image_id,
            reason='member %s is not a small regular file' % member.name)
    return archive.extractfile(member).read()


def _member_bytes(member, fileobj):
    """The tar encoding of *member*, its data streamed from *fileobj*."""
    yield member.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')
    if fileobj is None or not member.size:
        return
    remaining = member.size
    while remaining:
        data = fileobj.read(min(remaining, _COPY_CHUNK))
        if not data:
            raise tarfile.ReadError('unexpected end of data in %s'
                                    % member.name)
        remaining -= len(data)
        yield data
    yield b'\0' * (-member.size % _BLOCK)


def _file_bytes(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    yield info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')
    yield data
    yield b'\0' * (-len(data) % _BLOCK)


def retag_manifest(raw, members, image_id, tag):
    """Return manifest.json naming exactly one image, tagged *tag*.

    *members* are the archive member names seen; the config and every
    layer the manifest names must be among them (a truncated archive can
    end cleanly between two members).
    """
    try:
        entries = json.loads(raw) if raw is not None else None
    except ValueError as e:
        reason = 'manifest.json is not JSON (%s)' % e
        raise exception.InvalidImageArchive(image_id=image_id,
                                            reason=reason) from e
    reason = _manifest_problem(entries, members)
    if reason:
        raise exception.InvalidImageArchive(image_id=image_id, reason=reason)
    entry = entries[0]
    entry['RepoTags'] = [tag]
    return json.dumps([entry]).encode('utf-8')


def _manifest_problem(entries, members):
    """Why a parsed manifest.json is unusable, or None."""
    if entries is None:
        return ('it has no manifest.json (is it a "docker save" archive, '
                'and not "docker export" or a root file system?)')
    if not isinstance(entries, list) or not entries:
        return 'manifest.json lists no image'
    if len(entries) != 1:
        return ('it holds %d images; a Glance image must hold exactly one'
                % len(entries))
    entry = entries[0]
    if not isinstance(entry, dict) or not entry.get('Config'):
        return 'manifest.json has no image config'
    needed = [entry['Config']] + list(entry.get('Layers') or [])
    missing = [n for n in needed if _member_name(n) not in members]
    if missing:
        return ('it lacks %s named by manifest.json (truncated?)'
                % ', '.join(missing))
    return None


def strip_index_names(raw, image_id):
    """Drop the annotations that name the image from an OCI index.json."""
    try:
        index = json.loads(raw)
        for descriptor in index.get('manifests') or []:
            annotations = descriptor.get('annotations') or {}
            for key in _NAME_ANNOTATIONS:
                annotations.pop(key, None)
    except (ValueError, AttributeError) as e:
        raise exception.InvalidImageArchive(
            image_id=image_id, reason='index.json is invalid (%s)' % e) from e
    return json.dumps(index).encode('utf-8')


def coalesce(pieces, size=_SEND_CHUNK):
    """Join small byte pieces into chunks of about *size* bytes."""
    pending = []
    length = 0
    for piece in pieces:
        if len(piece) >= size and not pending:
            yield piece
            continue
        pending.append(piece)
        length += len(piece)
        if length >= size:
            yield b''.join(pending)
            pending = []
            length = 0
    if pending:
        yield b''.join(pending)


# ------------------------------------------------------------ image cache


def manage_image_cache(context, all_instances):
    """Nova's image-cache periodic: drop images no instance uses.

    Honours ``[image_cache] remove_unused_base_images`` and
    ``remove_unused_original_minimum_age_seconds``.
    """
    if not CONF.image_cache.remove_unused_base_images:
        return []
    in_use = {i.image_ref for i in all_instances if i.image_ref}
    return remove_unused_images(
        in_use, CONF.image_cache.remove_unused_original_minimum_age_seconds)


def remove_unused_images(in_use_image_ids, min_age_seconds, now=None):
    """Remove our images that are unused and idle for *min_age_seconds*.

    Only tags ``nova-image/<id>:glance`` are considered. An image is kept
    if its id is in *in_use_image_ids*, if any container (running or not)
    uses it, or if it was loaded or used (re-tagged) more recently than
    *min_age_seconds* ago. Returns the removed tags.
    """
    now = now or timeutils.utcnow(with_timezone=True)
    keep = {str(i).lower() for i in in_use_image_ids}
    with client.docker_client(what='list images and containers') as dc:
        images = dc.api.images(name=REPOSITORY_PREFIX + '*')
        used = {c.get('ImageID') for c in dc.api.containers(all=True)}
    removed = []
    for image in images:
        for tag in image.get('RepoTags') or []:
            image_id = image_id_from_tag(tag)
            if image_id is None or image_id in keep or image['Id'] in used:
                continue
            if _remove_if_idle(image_id, tag, min_age_seconds, now, used):
                removed.append(tag)
    return removed


def _remove_if_idle(image_id, tag, min_age_seconds, now, used):
    with lockutils.lock(_lock_name(image_id)):
        try:
            with client.docker_client(what='inspect image %s' % tag) as dc:
                info = dc.api.inspect_image(tag)
        except exception.DockerObjectNotFound:
            return False
        if info['Id'] in used:
            return False
        age = (now - _last_used(info)).total_seconds()
        if age < min_age_seconds:
            return False
        try:
            with client.docker_client(what='remove image %s' % tag) as dc:
                dc.api.remove_image(tag)
        except exception.DockerConflict as e:
            LOG.info('Keeping image %(tag)s: %(err)s', {'tag': tag, 'err': e})
            return False
        except exception.DockerObjectNotFound:
            return False
    LOG.info('Removed unused image %(tag)s (idle %(age)ds)',
             {'tag': tag, 'age': age})
    return True


def _last_used(info):
    """When the image was last loaded or used, from LastTagTime."""
    stamp = (info.get('Metadata') or {}).get('LastTagTime') or ''
    parsed = _parse_time(stamp)
    if parsed is None or parsed.year < 2000:
        parsed = _parse_time(info.get('Created') or '')
    return parsed or datetime.datetime.fromtimestamp(0, datetime.timezone.utc)


def _parse_time(stamp):
    try:
        # Docker prints nanoseconds; Python parses microseconds.
        stamp = re.sub(r'(\.\d{6})\d+', r'\1', stamp)
        parsed = timeutils.parse_isotime(stamp)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


# --------------------------------------------------------------- snapshot


def snapshot(context, instance, image_id, container_id, update_task_state):
    """Commit *container_id* and stream it to Glance image *image_id*.

    The upload is a ``docker save`` archive of one image
    (container_format=docker, disk_format=raw) that boots again through
    ensure_image. The committed image is removed afterwards, whatever
    happens.
    """
    api = glance.API()
    record = api.get(context, image_id)
    update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
    commit_repo = _repository_for(image_id, prefix=SNAPSHOT_PREFIX)
    commit_tag = commit_repo + ':upload'
    what = 'commit container %s for snapshot %s' % (container_id, image_id)
    with client.docker_client(what=what) as dc:
        dc.api.commit(container_id, repository=commit_repo, tag='upload')
    try:
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        metadata = _snapshot_metadata(instance, record)
        with client.docker_client(what='save image %s' % commit_tag) as dc:
            data = dc.api.get_image(commit_tag, chunk_size=_COPY_CHUNK)
            api.update(context, image_id, metadata, data=data)
    finally:
        _remove_quietly(commit_tag)
    LOG.info('Snapshot %s uploaded to Glance', image_id, instance=instance)


def _snapshot_metadata(instance, record):
    properties = {'image_location': 'snapshot',
                  'image_state': 'available',
                  'owner_id': instance.project_id}
    if instance.os_type:
        properties['os_type'] = instance.os_type
    return {'name': record.get('name'),
            'status': 'active',
            'container_format': DOCKER_CONTAINER_FORMAT,
            'disk_format': 'raw',
            'properties': properties}
