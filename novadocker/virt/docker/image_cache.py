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

"""The engine's cache of Glance images: load once, tag by id, prune.

A Glance image is loaded under a tag derived from its *id*
(``nova-image/<id>:glance``), never from its name, so two images with the
same name stay apart. The download is streamed through archive.py, which
bounds and rewrites it, straight into the engine's load API. Any failure
raises inside the request body, which aborts the upload; the engine then
loads nothing (checked against dockerd 20.10: an aborted request body
leaves no image). After a load the tag must resolve to the config the
manifest named, or it is removed.

Loads of one image are serialised by a file lock, so several nova-compute
services sharing one engine download it once.
"""

import datetime
import os
import re
import time

from nova.image import glance
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import excutils
from oslo_utils import timeutils

import novadocker.conf
from novadocker.virt.docker import archive
from novadocker.virt.docker import client
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

REPOSITORY_PREFIX = 'nova-image/'
TAG = 'glance'
SNAPSHOT_PREFIX = 'nova-snapshot/'
DOCKER_CONTAINER_FORMAT = 'docker'
_SEND_CHUNK = 256 * 1024

# Docker reference components are lowercase; Glance ids are UUIDs.
_IMAGE_ID_RE = re.compile(r'^[0-9a-f]+(-[0-9a-f]+)*\Z')
# docker info's DriverStatus entry of the containerd image store.
_CONTAINERD_STORE = 'io.containerd.snapshotter.v1'
_store_checked = []


def image_tag_for(image_id):
    """Return the engine tag of a Glance image: ``nova-image/<id>:glance``.

    Derived from the id only, so that images sharing a name never share a
    tag.
    """
    return repository_for(image_id) + ':' + TAG


def repository_for(image_id, prefix=None):
    """The repository of *image_id* under *prefix* (ours by default)."""
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


def engine_lock(name):
    """A lock held across every process that shares this engine."""
    path = CONF.docker.image_lock_path or CONF.oslo_concurrency.lock_path
    if not path:
        raise exception.ImageLockPathUnset()
    os.makedirs(path, exist_ok=True)
    return lockutils.lock(name, lock_file_prefix='nova-docker-',
                          external=True, lock_path=path)


def _lock_name(image_id):
    return 'image-%s' % str(image_id).lower()


def reserved_names():
    """Tags a tenant's archive may not claim: the driver's own."""
    sandbox = CONF.docker.sandbox_image
    repository, _sep, tag = sandbox.rpartition(':')
    if not repository or '/' in tag:
        repository = sandbox
    return (REPOSITORY_PREFIX, SNAPSHOT_PREFIX, repository + ':')


def check_image_store():
    """Refuse an engine whose image store would not keep our guarantees.

    Checked once per process: the graph-driver store loads only what
    manifest.json names (and we write it); the containerd store honours
    index.json and names inside the archive, and is refused.
    """
    if _store_checked:
        return
    with client.docker_client(what='describe the engine') as dc:
        info = dc.api.info()
    status = dict(tuple(pair) for pair in info.get('DriverStatus') or []
                  if isinstance(pair, (list, tuple)) and len(pair) == 2)
    if status.get('driver-type') == _CONTAINERD_STORE:
        raise exception.ImageStoreUnsupported(store='containerd')
    _store_checked.append(info.get('Driver'))


# ---------------------------------------------------------------- loading


def ensure_image(context, image_meta, instance=None):
    """Make the Glance image available in the engine; return its tag.

    *image_meta* is a ``nova.objects.ImageMeta``. An image already present
    under its tag is used without asking Glance; otherwise it is
    downloaded once (a lock per image id, across processes), verified and
    loaded.
    """
    image_id = image_meta.id
    tag = image_tag_for(image_id)
    if image_meta.obj_attr_is_set('container_format'):
        check_container_format(image_id, image_meta.container_format)
    if _touch(tag):
        return tag
    check_image_store()
    with engine_lock(_lock_name(image_id)):
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
    digest = archive.ExpectedDigest.from_glance(image_id, record)
    limits = archive.Limits.from_conf(record.get('size'))
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
    reader = archive.GlanceReader(image_id, chunks, digest,
                                  limits.download_limit)
    try:
        body = archive.LoadArchive(reader, image_id, tag, limits,
                                   reserved_names())
        _load_archive(tag, image_id, body)
        _check_loaded(tag, image_id, body.config_id)
    except Exception:
        with excutils.save_and_reraise_exception():
            reader.close()
            remove_quietly(tag)
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


def _check_loaded(tag, image_id, config_id):
    try:
        with client.docker_client(what='inspect image %s' % tag) as dc:
            actual = dc.api.inspect_image(tag)['Id']
    except exception.DockerObjectNotFound:
        raise exception.ImageLoadFailed(
            image_id=image_id, tag=tag,
            reason='the load finished but the tag does not exist')
    if actual != config_id:
        raise exception.ImageTagMismatch(image_id=image_id, tag=tag,
                                         actual=actual, expected=config_id)


def remove_quietly(tag):
    """Remove the image *tag*; log, never raise."""
    try:
        with client.docker_client(what='remove image %s' % tag) as dc:
            dc.api.remove_image(tag)
    except exception.DockerObjectNotFound:
        pass
    except exception.DockerDriverError as e:
        LOG.warning('Could not remove image %(tag)s: %(err)s',
                    {'tag': tag, 'err': e})


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


# ---------------------------------------------------------------- pruning


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
    with engine_lock(_lock_name(image_id)):
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
