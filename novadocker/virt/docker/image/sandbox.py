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

"""The sandbox image, built on this host from local files.

The sandbox container only has to hold a network namespace open, so its
image is one static busybox. It is built here at start-up with the engine's
import API: no registry is ever contacted. Several nova-compute services may
share one engine: the build holds the same file lock in all of them and
looks again once it has it, so the image is built once.
"""

import io
import tarfile

from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import exception
from novadocker.virt.docker.image import store

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)


def _rootfs_tar(binary):
    """An in-memory tar of a root filesystem holding only bin/busybox."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w') as tar:
        tar.add(binary, arcname='bin/busybox', recursive=False)
        for empty in ('etc', 'proc', 'sys', 'dev', 'tmp'):
            info = tarfile.TarInfo(empty)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
    return data.getvalue()


def ensure_sandbox_image():
    """Build [docker] sandbox_image from [docker] sandbox_binary if missing.

    Also checks, once per process, that the engine's image store is one
    the driver supports (this runs at start-up).
    """
    store.check_image_store()
    image = CONF.docker.sandbox_image
    if _present(image):
        return image
    with store.engine_lock('sandbox-image'):
        if not _present(image):
            _build(image)
    return image


def _present(image):
    with docker_client.docker_client('look up sandbox image') as client:
        return bool(client.images.list(name=image))


def _build(image):
    repository, _, tag = image.rpartition(':')
    if not repository or '/' in tag:
        repository, tag = image, 'latest'
    with docker_client.docker_client('build sandbox image') as client:
        try:
            rootfs = _rootfs_tar(CONF.docker.sandbox_binary)
        except OSError as e:
            raise exception.SandboxImageUnavailable(
                image=image, binary=CONF.docker.sandbox_binary,
                reason=e.strerror or str(e)) from e
        client.api.import_image_from_data(
            rootfs, repository=repository, tag=tag,
            changes=['ENV PATH=/bin'])
        LOG.info('Built sandbox image %(image)s from %(binary)s',
                 {'image': image, 'binary': CONF.docker.sandbox_binary})
