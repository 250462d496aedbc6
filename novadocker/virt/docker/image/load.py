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

"""Glance images into the engine: download, check, load, tag by id.

The download is streamed through the archive checks, which bound and
rewrite it, straight into the engine's load API, in one pass: a thread of
the load downloads, hashes and checks a few pieces ahead while the other
sends (``streams.Prefetched``), so the hash and the checks overlap the
engine's own work instead of adding to it. Any failure raises inside the
request body, which aborts the upload; the engine then loads nothing
(checked against dockerd 20.10: an aborted request body leaves no image).
After a load the tag must resolve to the config the manifest named, or it
is removed.
"""

import time

from nova.image import glance
from oslo_log import log as logging
from oslo_utils import excutils

from novadocker.virt.docker import client
from novadocker.virt.docker import exception
from novadocker.virt.docker.image import archive
from novadocker.virt.docker.image import naming
from novadocker.virt.docker.image import rules
from novadocker.virt.docker.image import store
from novadocker.virt.docker.image import streams

LOG = logging.getLogger(__name__)

_SEND_CHUNK = 256 * 1024
# Pieces of _SEND_CHUNK made ahead of the upload: about a MiB in flight.
_PREFETCH_DEPTH = 4


def ensure_image(context, image_meta, instance=None):
    """Make the Glance image available in the engine; return its tag.

    *image_meta* is a ``nova.objects.ImageMeta``. An image already present
    under its tag is used without asking Glance; otherwise it is
    downloaded once (a lock per image id, across processes), verified and
    loaded.
    """
    image_id = image_meta.id
    tag = naming.image_tag_for(image_id)
    if image_meta.obj_attr_is_set('container_format'):
        naming.check_container_format(image_id, image_meta.container_format)
    if _touch(tag):
        return tag
    store.check_image_store()
    with store.engine_lock(store.lock_name(image_id)):
        if _touch(tag):
            return tag
        _load_from_glance(context, image_id, tag, instance)
    return tag


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
    naming.check_container_format(image_id, record.get('container_format'))
    digest = streams.ExpectedDigest.from_glance(image_id, record)
    limits = rules.Limits.from_conf(record.get('size'))
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
    reader = streams.GlanceReader(image_id, chunks, digest,
                                  limits.download_limit)
    try:
        body = archive.LoadArchive(reader, image_id, tag, limits,
                                   naming.reserved_names())
        _load_archive(tag, image_id, body)
        _check_loaded(tag, image_id, body.config_id)
    except Exception:
        with excutils.save_and_reraise_exception():
            reader.close()
            store.remove_quietly(tag)
    LOG.info('Loaded image %(image_id)s (%(size)d bytes) in %(secs).2fs',
             {'image_id': image_id, 'size': reader.size,
              'secs': time.monotonic() - started}, instance=instance)


def _load_archive(tag, image_id, body):
    what = 'load image %s as %s' % (image_id, tag)
    pieces = streams.Prefetched(coalesce(body), _PREFETCH_DEPTH,
                                name='nova-docker-load-%s' % image_id[:8])
    try:
        with client.docker_client(what=what) as dc:
            for message in dc.api.load_image(iter(pieces)):
                if message.get('error'):
                    raise exception.ImageLoadFailed(
                        image_id=image_id, tag=tag, reason=message['error'])
    finally:
        # Also when the engine failed before it read anything.
        pieces.close()


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
