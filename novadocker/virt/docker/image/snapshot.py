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

"""Snapshots: a server's workload, committed and streamed to Glance.

The upload is a ``docker save`` archive of one image (container_format
docker, disk_format raw) that boots again through load. It carries
the container's file system and the source image's own runtime config,
never the server's metadata environment or the driver's labels. It is
streamed from the engine through a file-like body (glanceclient reads the
body with ``read()``); nothing is written to disk on this side, and the
committed image is removed whatever happens.
"""

from glanceclient import exc as glance_exc
from nova.compute import task_states
from nova import exception as nova_exception
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


def snapshot(context, instance, image_id, container_id, update_task_state):
    """Commit *container_id* and stream it to Glance image *image_id*.

    A failed upload is logged as an error naming the server and re-raised,
    a broken transfer as SnapshotUploadFailed (Nova then deletes the
    half-made image).
    """
    api = glance.API()
    record = api.get(context, image_id)
    update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
    commit_repo = naming.repository_for(
        image_id, prefix=naming.SNAPSHOT_PREFIX)
    commit_tag = commit_repo + ':upload'
    body = None
    try:
        image_config = _commit(container_id, image_id, commit_repo)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        metadata = snapshot_metadata(instance, record)
        with client.docker_client(what='save image %s' % commit_tag) as dc:
            saved = dc.api.get_image(commit_tag,
                                     chunk_size=streams.COPY_CHUNK)
            body = streams.ArchiveBody(archive.SnapshotArchive(
                streams.ChunkReader(saved), image_id, image_config,
                rules.Limits.from_conf()))
            _upload(api, context, image_id, metadata, body)
    except Exception as e:
        with excutils.save_and_reraise_exception():
            LOG.error('Snapshot %(image_id)s failed after %(size)d bytes '
                      'were uploaded: %(err)s',
                      {'image_id': image_id,
                       'size': body.size if body else 0,
                       'err': e}, instance=instance)
    finally:
        store.remove_quietly(commit_tag)
    LOG.info('Snapshot %(image_id)s uploaded to Glance (%(size)d bytes)',
             {'image_id': image_id, 'size': body.size}, instance=instance)


def _upload(api, context, image_id, metadata, body):
    """Stream *body* to Glance; SnapshotUploadFailed if the transfer breaks.

    An answer from Glance passes as it is: Nova's own exceptions (Nova's
    compute manager handles ImageNotFound, the image deleted meanwhile,
    apart from the rest) and glanceclient's HTTP errors. A transfer that
    breaks (a connection reset, a timeout) becomes SnapshotUploadFailed,
    naming the snapshot and the bytes sent.
    """
    try:
        api.update(context, image_id, metadata, data=body)
    except (nova_exception.NovaException, glance_exc.HTTPException):
        raise
    except Exception as e:
        raise exception.SnapshotUploadFailed(
            image_id=image_id, size=body.size,
            reason=str(e) or type(e).__name__) from e


def _commit(container_id, image_id, repository):
    """Commit the container; return its source image's own config."""
    what = 'commit container %s for snapshot %s' % (container_id, image_id)
    with client.docker_client(what=what) as dc:
        source = dc.api.inspect_container(container_id)['Image']
        image_config = dc.api.inspect_image(source)['Config']
        dc.api.commit(container_id, repository=repository, tag='upload')
    return image_config


def snapshot_metadata(instance, record):
    """The Glance record of a snapshot: a docker archive, raw."""
    properties = {'image_location': 'snapshot',
                  'image_state': 'available',
                  'owner_id': instance.project_id}
    if instance.os_type:
        properties['os_type'] = instance.os_type
    return {'name': record.get('name'),
            'status': 'active',
            'container_format': naming.DOCKER_CONTAINER_FORMAT,
            'disk_format': 'raw',
            'properties': properties}
