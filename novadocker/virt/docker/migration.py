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

"""Cold migration and resize to another host: the writable layer's journey.

The transport is Glance. The source commits its stopped workload and
streams it (the snapshot path) into a private *transfer image* of the
server's project; the target downloads and loads it (the image path),
creates the server's containers from it and deletes the transfer image.
Why Glance rather than engine to engine: two compute hosts need no route,
credentials or open port between their engines (a Docker engine API
reachable from another host is root on it), the archive is checked on the
way in like any tenant image, and nothing new is trusted. What it costs:
the whole container file system (image layers and writable layer) is
uploaded once and downloaded once, so a large layer takes Glance's
storage for its size until the target has loaded it, and two transfers'
time.

The transfer image's id is derived from the migration's uuid, so the
source, the target, confirm and revert all name the same image without
passing it around; ``disk_info`` carries it to the target as well, as Nova
expects.

While the move waits for confirm or revert, the source keeps its stopped
containers, renamed aside (compute services sharing one engine would
otherwise clash on the names the target creates); revert puts the names
back and starts them unchanged, confirm removes them.
"""

import json
import uuid

from nova import exception as nova_exception
from nova.image import glance
from nova import objects
from oslo_log import log as logging
from oslo_utils import excutils

import novadocker.conf
from novadocker.virt.docker import engine as docker_engine
from novadocker.virt.docker import exception
from novadocker.virt.docker.image import load as image_load
from novadocker.virt.docker.image import naming
from novadocker.virt.docker.image import snapshot
from novadocker.virt.docker.image import store

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

TRANSPORT = 'glance'
# Renamed aside on the source while the move waits for confirm or revert.
ASIDE_SUFFIX = '-moved-out'
# uuid5 namespace of transfer image ids (a fixed, random uuid).
_TRANSFER_NAMESPACE = uuid.UUID('6b1d6a52-5d0e-4f9a-9a43-2b8f3c1e7d21')
# A Glance property that says what a transfer image is, for operators.
PROP_TRANSFER_OF = 'nova_docker_transfer_of'


def transfer_image_id(migration_uuid):
    """The Glance id of the transfer image of one migration."""
    return str(uuid.uuid5(_TRANSFER_NAMESPACE, str(migration_uuid)))


def disk_info_for(image_id, source_host):
    """The ``disk_info`` string the source hands to the target."""
    return json.dumps({'transport': TRANSPORT, 'image_id': image_id,
                       'source_host': source_host}, sort_keys=True)


def transfer_in(disk_info):
    """The transfer image id *disk_info* names, or None (a move in place).

    An in-place resize returns an empty ``disk_info``; anything that is
    not this module's JSON is refused rather than guessed at.
    """
    if not disk_info:
        return None
    try:
        info = json.loads(disk_info)
        if info.get('transport') != TRANSPORT:
            raise ValueError('transport %r' % info.get('transport'))
        naming.repository_for(info['image_id'])
        return info['image_id']
    except (ValueError, KeyError, TypeError, AttributeError,
            exception.InvalidImageId) as e:
        raise exception.MigrationDataInvalid(reason=str(e)) from e


def check_size(host, instance_uuid):
    """Refuse, before the server stops, a file system too large to load.

    The target loads the transfer image under the image path's limits
    (``[docker] image_max_bytes``); the container's whole file system
    (image and writable layer, the engine's SizeRootFs) is about what the
    archive holds. A move that cannot finish must not start.
    """
    limit = CONF.docker.image_max_bytes
    size = docker_engine.Engine(host).server(instance_uuid).root_size()
    if size > limit:
        raise exception.MigrationUnsupported(
            instance_uuid=instance_uuid, dest='another host',
            reason='its file system holds %d bytes, more than the %d '
            'bytes a host loads from Glance ([docker] image_max_bytes); '
            'raise that limit on both hosts or free space in the '
            'server' % (size, limit))
    return size


def _ignore_task_state(**kwargs):
    """Nova's snapshot task states do not apply to a move."""


def send(context, instance, migration_uuid, workload_id, source_host):
    """Upload the stopped workload as the transfer image; return disk_info.

    A failed upload deletes the half-made image before raising.
    """
    image_id = transfer_image_id(migration_uuid)
    api = glance.API()
    api.create(context, {
        'id': image_id,
        'name': 'nova-docker-move-%s' % instance.uuid,
        'visibility': 'private',
        'container_format': naming.DOCKER_CONTAINER_FORMAT,
        'disk_format': 'raw',
        'properties': {PROP_TRANSFER_OF: instance.uuid}})
    try:
        snapshot.snapshot(context, instance, image_id, workload_id,
                          _ignore_task_state)
    except Exception:
        with excutils.save_and_reraise_exception():
            discard(context, image_id, instance)
    LOG.info('Writable layer uploaded as transfer image %s', image_id,
             instance=instance)
    return disk_info_for(image_id, source_host)


def receive(context, instance, image_id):
    """Load the transfer image into this engine; return its engine tag.

    A failed load leaves nothing in the engine (the image path removes a
    partial load) and keeps the transfer image in Glance.
    """
    meta = objects.ImageMeta.from_dict(
        {'id': image_id, 'container_format': naming.DOCKER_CONTAINER_FORMAT})
    return image_load.ensure_image(context, meta, instance)


def forget_loaded(image_id):
    """Remove the transfer image's tag from this engine (after a failure)."""
    store.remove_quietly(naming.image_tag_for(image_id))


def discard(context, image_id, instance=None):
    """Delete the transfer image from Glance; gone already is fine."""
    try:
        glance.API().delete(context, image_id)
    except (nova_exception.ImageNotFound, nova_exception.ImageDeleteConflict):
        return
    except Exception as e:
        LOG.warning('Could not delete transfer image %(image)s (%(err)s); '
                    'delete it with "openstack image delete %(image)s"',
                    {'image': image_id, 'err': e}, instance=instance)
        return
    LOG.info('Deleted transfer image %s', image_id, instance=instance)


def _rename_all(host, instance_uuid, rename):
    docker_engine.Engine(host).server(instance_uuid).rename(rename)


def set_aside(host, instance_uuid):
    """Rename the source's stopped containers out of the target's way."""
    _rename_all(host, instance_uuid,
                lambda name: name if name.endswith(ASIDE_SUFFIX)
                else name + ASIDE_SUFFIX)


def bring_back(host, instance_uuid):
    """Give the source's containers their own names again (revert)."""
    _rename_all(host, instance_uuid,
                lambda name: name[:-len(ASIDE_SUFFIX)]
                if name.endswith(ASIDE_SUFFIX) else name)


def servers_moving_from(context, host):
    """uuids of servers whose move from *host* awaits confirm or revert.

    Nova records such a server on the target already; its containers here
    are what a revert starts again, not orphans.
    """
    migrations = objects.MigrationList.get_in_progress_by_host_and_node(
        context, host, host)
    return sorted({m.instance_uuid for m in migrations
                   if m.source_compute == host and
                   m.dest_compute != host})
