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

"""What a Glance or snapshot archive may hold: limits, names, manifest.

A Glance image is written by a tenant. These are the rules every archive
is held to before the engine sees a byte of it: the ``[docker]
image_max_*`` limits, every member name normalised and kept inside the
archive, no second spelling of the files that tell a loader which images
an archive holds, and a manifest.json that names exactly one image whose
config and layers are members.
"""

import novadocker.conf
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF


MAX_METADATA_BYTES = 4 * 1024 * 1024
# PATH_MAX: also bounds the memory the set of seen names can take.
MAX_NAME_BYTES = 4096
MANIFEST = 'manifest.json'
REPOSITORIES = 'repositories'
OCI_INDEX = 'index.json'
OCI_LAYOUT = 'oci-layout'
# Members that tell a loader which images an archive holds. Only these
# exact top-level spellings are accepted; the only one the engine gets is
# the manifest.json written here.
METADATA_NAMES = (MANIFEST, REPOSITORIES, OCI_INDEX, OCI_LAYOUT)


class Limits(object):
    """How much of an archive is read before it is refused."""

    def __init__(self, max_bytes, max_members, max_header_bytes,
                 max_expansion, declared_size=None):
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.max_header_bytes = max_header_bytes
        self.max_expansion = max_expansion
        self.declared_size = declared_size or None

    @classmethod
    def from_conf(cls, declared_size=None):
        conf = CONF.docker
        return cls(conf.image_max_bytes, conf.image_max_members,
                   conf.image_max_header_bytes, conf.image_max_expansion,
                   declared_size)

    @property
    def download_limit(self):
        """Bytes Glance may send: the size it recorded, or the maximum."""
        if self.declared_size:
            return min(self.declared_size, self.max_bytes)
        return self.max_bytes

    @property
    def expanded_limit(self):
        """Bytes the decompressed archive may hold."""
        if self.declared_size:
            return min(self.max_bytes,
                       self.declared_size * self.max_expansion)
        return self.max_bytes


def refuse(image_id, reason):
    """An UnsafeImageArchive for *image_id*."""
    return exception.UnsafeImageArchive(image_id=image_id, reason=reason)


def too_large(image_id, what, limit, option):
    return exception.ImageArchiveTooLarge(image_id=image_id, what=what,
                                          limit=limit, option=option)


def normalise(raw, image_id):
    """The member name *raw* as a clean relative path ('' for the root)."""
    if '\0' in raw or '\\' in raw:
        raise refuse(image_id, 'a member name with a NUL or backslash: %r'
                     % raw[:200])
    if len(raw.encode('utf-8')) > MAX_NAME_BYTES:
        raise refuse(image_id, 'a member name longer than %d bytes'
                     % MAX_NAME_BYTES)
    if raw.startswith('/'):
        raise refuse(image_id, 'an absolute member name %r' % raw[:200])
    parts = [p for p in raw.split('/') if p not in ('', '.')]
    if '..' in parts:
        raise refuse(image_id, "a member name with '..': %r" % raw[:200])
    return '/'.join(parts)


def resolve_link(name, target, image_id):
    """The archive path a symbolic link *name* -> *target* points to."""
    if not target or target.startswith('/') or '\0' in target:
        raise refuse(image_id, 'a symbolic link %r to %r, outside the '
                     'archive' % (name, target[:200]))
    parts = [p for p in target.split('/') if p not in ('', '.')]
    ups = 0
    while ups < len(parts) and parts[ups] == '..':
        ups += 1
    base = name.split('/')[:-1]
    # '..' only at the start: "a/../b" could climb out through a link.
    if '..' in parts[ups:] or ups > len(base) or not parts[ups:]:
        raise refuse(image_id, 'a symbolic link %r to %r, outside the '
                     'archive' % (name, target[:200]))
    return '/'.join(base[:len(base) - ups] + parts[ups:])


def metadata_kind(name):
    """Which metadata member *name* spells (any case, any depth), or None."""
    base = name.rsplit('/', 1)[-1].lower()
    return base if base in METADATA_NAMES else None


def manifest_problem(entries, files, links):
    """Why a parsed manifest.json is unusable, or None.

    *files* are the regular files seen (name -> sha256 or ''), *links* the
    symbolic links (name -> target).
    """
    if entries is None:
        return ('it has no manifest.json (is it a "docker save" archive, '
                'and not "docker export" or a root file system?)')
    if not isinstance(entries, list) or not entries:
        return 'manifest.json lists no image'
    if len(entries) != 1:
        return ('it holds %d images; a Glance image must hold exactly one'
                % len(entries))
    entry = entries[0]
    if not isinstance(entry, dict) or \
            not isinstance(entry.get('Config'), str):
        return 'manifest.json has no image config'
    layers = entry.get('Layers') or []
    if not isinstance(layers, list) or \
            not all(isinstance(n, str) for n in layers):
        return 'manifest.json has a malformed layer list'
    config = _clean(entry['Config'])
    if not files.get(config):
        return ('its manifest.json names config %r, which is not an image '
                'config member of the archive (truncated?)'
                % entry['Config'][:100])
    missing = [n for n in layers
               if links.get(_clean(n), _clean(n)) not in files]
    if missing:
        return ('it lacks %s named by manifest.json (truncated?)'
                % ', '.join(m[:100] for m in missing[:3]))
    return None


def _clean(name):
    parts = [p for p in name.split('/') if p not in ('', '.')]
    return '' if '..' in parts or name.startswith('/') else '/'.join(parts)
