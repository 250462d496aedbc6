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

"""The engine's image store: its kind, the cross-process lock, removal.

Loads and removals of one image are serialised by a file lock, so several
nova-compute services sharing one engine download an image once and never
remove one another is loading.
"""

import os

from oslo_concurrency import lockutils
from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import client
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

# docker info's DriverStatus entry of the containerd image store.
_CONTAINERD_STORE = 'io.containerd.snapshotter.v1'
_store_checked = []


def engine_lock(name):
    """A lock held across every process that shares this engine."""
    path = CONF.docker.image_lock_path or CONF.oslo_concurrency.lock_path
    if not path:
        raise exception.ImageLockPathUnset()
    os.makedirs(path, exist_ok=True)
    return lockutils.lock(name, lock_file_prefix='nova-docker-',
                          external=True, lock_path=path)


def lock_name(image_id):
    """The name of the lock of one image's load or removal."""
    return 'image-%s' % str(image_id).lower()


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
