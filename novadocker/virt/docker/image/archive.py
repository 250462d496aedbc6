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

"""Archives rewritten for the engine, and snapshots rewritten for Glance.

What reaches the engine is a re-encoded archive: one header per member,
written by us, with the normalised name, and the only ``manifest.json`` is
the one we write, after the whole download was read and verified. So the
engine's own tar reader never interprets a tenant's header, and anything
wrong raises before the engine could finish a load. A snapshot's archive
goes the other way through the same reader (see snapshot.py).
"""

import hashlib
import json
import re

from novadocker.virt.docker import exception
from novadocker.virt.docker.image import rules
from novadocker.virt.docker.image import streams
from novadocker.virt.docker.image import tar


# Where "docker save" puts image configs (legacy and OCI layouts): their
# sha256 is the image id the engine will give the loaded image.
_CONFIG_NAME_RE = re.compile(
    r'^(?:[0-9a-f]{64}\.json|blobs/sha256/[0-9a-f]{64})$')


class LoadArchive(object):
    """A Glance archive rewritten for the engine's load API.

    Iterating yields the bytes to send; the manifest and the end of the
    archive come only after the whole download was read and verified, so
    any problem raises before the engine could finish a load. Afterwards
    ``config_id`` is the image id the loaded tag must resolve to.
    """

    def __init__(self, reader, image_id, tag, limits, reserved=()):
        self.reader = reader
        self.image_id = image_id
        self.tag = tag
        self.limits = limits
        self.reserved = tuple(reserved)
        self.config_id = None
        self.stream = streams.Decompressed(
            image_id, reader, limits.expanded_limit)
        self.members = tar.MemberReader(image_id, self.stream, limits)

    def __iter__(self):
        files = {}
        links = {}
        manifest = None
        for member in self.members.members():
            if rules.metadata_kind(member.name):
                data = self.members.read_small(member)
                if member.name == rules.MANIFEST:
                    manifest = data
                elif member.name == rules.REPOSITORIES:
                    self._check_repositories(data)
                continue
            if member.kind == 'symlink':
                links[member.name] = rules.resolve_link(
                    member.name, member.linkname, self.image_id)
            yield member.header()
            if member.kind == 'file':
                files[member.name] = yield from self._copy(member)
        self.stream.drain()
        self.reader.finish()
        entry = self._checked_manifest(manifest, files, links)
        self.config_id = 'sha256:' + files[entry['Config']]
        yield from tar.file_bytes(
            rules.MANIFEST, json.dumps([entry]).encode('utf-8'))
        yield tar.end_of_archive()

    def _copy(self, member):
        """Stream a member's data; return its sha256 if it may be a config."""
        hasher = None
        if _CONFIG_NAME_RE.match(member.name) and \
                member.size <= rules.MAX_METADATA_BYTES:
            hasher = hashlib.sha256()
        for piece in self.members.data(member):
            if hasher is not None:
                hasher.update(piece)
            yield piece
        yield b'\0' * (-member.size % tar.BLOCK)
        return hasher.hexdigest() if hasher is not None else ''

    def _reserved_tag(self, tags):
        for tag in tags or []:
            if not isinstance(tag, str):
                return repr(tag)[:100]
            if ':' not in tag.rsplit('/', 1)[-1]:
                tag += ':latest'
            if any(tag.startswith(r) for r in self.reserved):
                return tag[:100]
        return None

    def _check_repositories(self, raw):
        try:
            repositories = json.loads(raw)
            tags = ['%s:%s' % (repo, t) for repo, names in
                    repositories.items() for t in names]
        except (ValueError, AttributeError, TypeError) as e:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='"repositories" is invalid (%s)' % e) from e
        found = self._reserved_tag(tags)
        if found:
            raise rules.refuse(
                self.image_id, 'the name %s, which belongs to the '
                "driver's own images, in \"repositories\"" % found)

    def _checked_manifest(self, raw, files, links):
        try:
            entries = json.loads(raw) if raw is not None else None
        except ValueError as e:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='manifest.json is not JSON (%s)' % e) from e
        reason = rules.manifest_problem(entries, files, links)
        if reason:
            raise exception.InvalidImageArchive(image_id=self.image_id,
                                                reason=reason)
        found = self._reserved_tag(entries[0].get('RepoTags'))
        if found:
            raise rules.refuse(
                self.image_id, 'the tag %s, which belongs to the '
                "driver's own images, in manifest.json" % found)
        entry = entries[0]
        return {'Config': rules.normalise(entry['Config'], self.image_id),
                'RepoTags': [self.tag],
                'Layers': [rules.normalise(n, self.image_id)
                           for n in entry.get('Layers') or []]}


# The v1 compatibility files of the legacy layout: "<layer>/json" repeats
# the container's whole configuration (its environment included).
_V1_FILES = ('json', 'VERSION')


def clean_config(raw, image_config):
    """An image config with *image_config* as its runtime config.

    ``docker commit`` merges the container's configuration (environment
    from server metadata, the driver's labels, the command Nova ran) into
    the image; a snapshot should carry the image's own. The container's
    copy ("container_config") and the command recorded in the commit's
    history entry go too.
    """
    config = json.loads(raw)
    config['config'] = image_config
    for key in ('container_config', 'container'):
        config.pop(key, None)
    # The commit's own history entry records the container's command.
    history = config.get('history') or []
    if history and isinstance(history[-1], dict):
        history[-1]['created_by'] = 'nova-docker snapshot'
    return json.dumps(config, sort_keys=True).encode('utf-8')


class SnapshotArchive(object):
    """A committed image's ``docker save`` stream, cleaned for Glance.

    The layers pass through; the config is rebuilt with the source image's
    own runtime config (renamed after its new sha256), the v1 files and
    the engine's tag are dropped.
    """

    def __init__(self, reader, image_id, image_config, limits):
        self.image_id = image_id
        self.image_config = image_config
        stream = streams.Decompressed(image_id, reader, limits.expanded_limit)
        self.members = tar.MemberReader(image_id, stream, limits)

    def __iter__(self):
        renamed = {}
        manifest = None
        for member in self.members.members():
            base = member.name.rsplit('/', 1)[-1]
            if rules.metadata_kind(member.name):
                data = self.members.read_small(member)
                if member.name == rules.MANIFEST:
                    manifest = json.loads(data)
                continue
            if '/' in member.name and base in _V1_FILES:
                continue
            if _CONFIG_NAME_RE.match(member.name):
                data = clean_config(self.members.read_small(member),
                                    self.image_config)
                digest = hashlib.sha256(data).hexdigest()
                name = (digest + '.json' if member.name.endswith('.json')
                        else 'blobs/sha256/' + digest)
                renamed[member.name] = name
                yield from tar.file_bytes(name, data)
                continue
            yield member.header()
            if member.kind == 'file':
                yield from self.members.data(member)
                yield b'\0' * (-member.size % tar.BLOCK)
        yield from tar.file_bytes(
            rules.MANIFEST, self._manifest(manifest, renamed))
        yield tar.end_of_archive()

    def _manifest(self, manifest, renamed):
        if not manifest or len(manifest) != 1 or \
                manifest[0].get('Config') not in renamed:
            raise exception.InvalidImageArchive(
                image_id=self.image_id,
                reason='the engine saved a snapshot without a usable '
                       'manifest.json')
        entry = manifest[0]
        return json.dumps([{'Config': renamed[entry['Config']],
                            'RepoTags': None,
                            'Layers': entry.get('Layers') or []}]).encode()
