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

"""Names of the driver's images in the engine, derived from Glance ids.

A Glance image is loaded under a tag derived from its *id*
(``nova-image/<id>:glance``), never from its name, so two images with the
same name stay apart. A tenant's archive may claim none of the driver's
own names.
"""

import re

import novadocker.conf
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF

REPOSITORY_PREFIX = 'nova-image/'
TAG = 'glance'
SNAPSHOT_PREFIX = 'nova-snapshot/'
DOCKER_CONTAINER_FORMAT = 'docker'

# Docker reference components are lowercase; Glance ids are UUIDs.
_IMAGE_ID_RE = re.compile(r'^[0-9a-f]+(-[0-9a-f]+)*\Z')


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


def reserved_names():
    """Tags a tenant's archive may not claim: the driver's own."""
    sandbox = CONF.docker.sandbox_image
    repository, _sep, tag = sandbox.rpartition(':')
    if not repository or '/' in tag:
        repository = sandbox
    return (REPOSITORY_PREFIX, SNAPSHOT_PREFIX, repository + ':')


def check_container_format(image_id, container_format):
    """Raise InvalidImageFormat unless the image is a docker archive."""
    if container_format != DOCKER_CONTAINER_FORMAT:
        raise exception.InvalidImageFormat(image_id=image_id,
                                           container_format=container_format)
