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

"""The engine's cache of Glance images: Nova's periodic prunes it.

An image is kept while an instance or a container uses it, and while it
was loaded or used (re-tagged, see load) more recently than the minimum
age.
"""

import datetime
import re

from oslo_log import log as logging
from oslo_utils import timeutils

import novadocker.conf
from novadocker.virt.docker import client
from novadocker.virt.docker import exception
from novadocker.virt.docker.image import naming
from novadocker.virt.docker.image import store

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)


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
        images = dc.api.images(name=naming.REPOSITORY_PREFIX + '*')
        used = {c.get('ImageID') for c in dc.api.containers(all=True)}
    removed = []
    for image in images:
        for tag in image.get('RepoTags') or []:
            image_id = naming.image_id_from_tag(tag)
            if image_id is None or image_id in keep or image['Id'] in used:
                continue
            if _remove_if_idle(image_id, tag, min_age_seconds, now, used):
                removed.append(tag)
    return removed


def _remove_if_idle(image_id, tag, min_age_seconds, now, used):
    with store.engine_lock(store.lock_name(image_id)):
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
