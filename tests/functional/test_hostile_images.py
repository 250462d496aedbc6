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

"""Hostile Glance images, booted through Nova's API on the real engine.

Each case is an archive a tenant could upload: the server must go to
ERROR with a fault naming the problem, the engine must have loaded
nothing (no tag, no untagged image, no import directory left), no temp
file may be left, and the peak memory of this process (nova-compute runs
in it) may grow by at most 64 MiB while the driver reads the archive.
The peak is reset before each boot (``/proc/self/clear_refs``), so each
case's growth is its own.
"""

import gzip
import io
import json
import os
import subprocess
import tarfile
import time

import fixtures

from novadocker.virt.docker.image import naming
from tools.harness import base
from tools.harness import fixtures as nd_fixtures

ENGINE_TMP = '/var/lib/docker/tmp'
MAX_GROWTH_KIB = 64 * 1024
MIB = 1024 * 1024
REFUSED = 'nothing loaded'


def _kib(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise LookupError(key)


def busybox_members():
    """(TarInfo, data) of the real ``docker save`` of the test image."""
    data = nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE)
    members = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar:
            f = tar.extractfile(info) if info.isfile() else None
            members.append((info, f.read() if f else b''))
    return members


def member(name, data=b'', kind=tarfile.REGTYPE, linkname=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data)
    return info, data


def encode(members, fmt=tarfile.GNU_FORMAT):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return out.getvalue()


def with_manifest(members, edit):
    """*members* with manifest.json changed by *edit(entries)*."""
    result = []
    for info, data in members:
        if info.name == 'manifest.json':
            entries = json.loads(data)
            edit(entries)
            data = json.dumps(entries).encode()
            info = member('manifest.json', data)[0]
        result.append((info, data))
    return result


def insert_before_manifest(members, extra):
    names = [i.name for i, _d in members]
    at = names.index('manifest.json')
    return members[:at] + list(extra) + members[at:]


def gz_repeat(piece, times):
    """A multi-member gzip of *piece* repeated: tiny, inflates hugely."""
    one = gzip.compress(piece, 9)
    return one * times


def raw_header(name, kind, size):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    return info.tobuf(tarfile.GNU_FORMAT)


class HostileImagesTestCase(base.DockerFunctionalTestBase):

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                          ephemeral=0)
        self.members = busybox_members()
        self.client = self.docker()
        self.tempdir = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch('tempfile.tempdir',
                                             self.tempdir))

    # -- the check every case makes ------------------------------------------

    def _engine_state(self):
        dangling = {i.id for i in self.client.images.list(
            filters={'dangling': True})}
        tmp = set(os.listdir(ENGINE_TMP)) if os.path.isdir(ENGINE_TMP) \
            else set()
        return dangling, tmp

    def assertRefused(self, data, *words):
        """Boot *data*: ERROR with *words*, nothing left, bounded memory.

        Returns the fault message.
        """
        image_id = self.glance.add_image(data, 'hostile')
        tag = naming.image_tag_for(image_id)
        self.addCleanup(subprocess.run, ['docker', 'rmi', '-f', tag],
                        capture_output=True)
        before = self._engine_state()
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        baseline = _kib('VmRSS')
        server = self.assertBootFailsCleanly(list(words) + [REFUSED],
                                             image_id=image_id,
                                             flavor_id=self.flavor)
        growth = _kib('VmHWM') - baseline
        self._record(growth, len(data), server['fault']['message'])
        self.assertLess(growth, MAX_GROWTH_KIB,
                        'peak RSS grew by %d KiB' % growth)
        self.assertEqual([], self.client.images.list(name=tag))
        deadline = time.monotonic() + 10
        while True:
            dangling, tmp = self._engine_state()
            if not tmp - before[1] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(set(), dangling - before[0], 'untagged images')
        self.assertEqual(set(), tmp - before[1], 'engine import dirs left')
        self.assertEqual([], os.listdir(self.tempdir), 'temp files left')
        return server['fault']['message']

    def _record(self, growth, size, fault):
        report = os.environ.get('ND_HOSTILE_RSS_REPORT')
        if report:
            with open(report, 'a') as f:
                f.write('%s: peak RSS +%d KiB, archive %d bytes; %s\n'
                        % (self.id().rsplit('.', 1)[-1], growth, size,
                           fault))

    def legit(self):
        return encode(self.members)

    # -- compression bombs ----------------------------------------------------

    def test_gzip_bomb_of_many_members(self):
        # 300 members of 4 MiB of zeros: about 1 MiB of gzip, 1.2 GiB
        # inflated; refused at image_max_expansion times the upload.
        zeros = gz_repeat(b'\0' * MIB, 4)
        parts = []
        for n in range(300):
            parts.append(gzip.compress(raw_header('bomb%d/layer.tar' % n,
                                                  tarfile.REGTYPE, 4 * MIB)))
            parts.append(zeros)
        self.assertRefused(b''.join(parts), 'once decompressed')

    def test_gzip_member_claiming_a_terabyte(self):
        data = gzip.compress(raw_header('big/layer.tar', tarfile.REGTYPE,
                                        1 << 40)) + gz_repeat(b'\0' * MIB, 8)
        self.assertRefused(data, 'one member')

    def test_plain_archive_longer_than_glance_says(self):
        # Not compressed: the tar is exactly what Glance stores; a member
        # claiming more than that is refused at its header.
        data = raw_header('big/layer.tar', tarfile.REGTYPE, 64 * MIB) + \
            b'\0' * MIB
        self.assertRefused(data, 'one member')

    def test_bzip2_archive(self):
        import bz2
        self.assertRefused(bz2.compress(self.legit()), 'bzip2')

    # -- huge headers ---------------------------------------------------------

    def test_gnu_long_name_claiming_256_mib(self):
        # The reported attack: about 250 KiB of gzip claiming a 256 MiB
        # long name (it used to take 1.3 GiB of nova-compute's memory).
        data = gzip.compress(raw_header('././@LongLink',
                                        tarfile.GNUTYPE_LONGNAME,
                                        256 * MIB)) + \
            gz_repeat(b'a' * MIB, 256)
        self.assertLess(len(data), 400 * 1024)
        self.assertRefused(data, 'tar header', '268435456')

    def test_gnu_long_link_claiming_256_mib(self):
        data = gzip.compress(raw_header('././@LongLink',
                                        tarfile.GNUTYPE_LONGLINK,
                                        256 * MIB)) + \
            gz_repeat(b'a' * MIB, 256)
        self.assertRefused(data, 'tar header')

    def test_pax_header_claiming_256_mib(self):
        data = gzip.compress(raw_header('././@PaxHeader', tarfile.XHDTYPE,
                                        256 * MIB)) + \
            gz_repeat(b'a' * MIB, 256)
        self.assertRefused(data, 'tar header')

    def test_member_count_bomb(self):
        members = [member('f%05d' % n) for n in range(20000)]
        self.assertRefused(encode(members), 'number of tar members')

    # -- names ---------------------------------------------------------------

    def test_traversal_member(self):
        members = insert_before_manifest(
            self.members, [member('../../etc/nd-evil', b'x')])
        self.assertRefused(encode(members), "'..'")

    def test_absolute_member(self):
        members = insert_before_manifest(
            self.members, [member('/etc/nd-evil', b'x')])
        self.assertRefused(encode(members), 'absolute member name')

    def test_pax_path_traversal(self):
        info, data = member('innocent.txt', b'x')
        info.pax_headers = {'path': 'a/../../nd-evil'}
        members = insert_before_manifest(self.members, [(info, data)])
        self.assertRefused(encode(members, tarfile.PAX_FORMAT), "'..'")

    def test_duplicate_layer(self):
        layer = next((i, d) for i, d in self.members
                     if i.name.endswith('/layer.tar'))
        members = insert_before_manifest(self.members, [layer])
        self.assertRefused(encode(members), 'twice')

    def test_symlink_at_top_level(self):
        members = insert_before_manifest(self.members, [member(
            'nd-evil', kind=tarfile.SYMTYPE, linkname='/etc/shadow')])
        self.assertRefused(encode(members), 'symbolic link', 'top level')

    def test_symlink_out_of_the_archive(self):
        members = insert_before_manifest(self.members, [member(
            'abc/evil', kind=tarfile.SYMTYPE, linkname='../../etc')])
        self.assertRefused(encode(members), 'outside the archive')

    def test_member_under_a_symlink(self):
        members = insert_before_manifest(self.members, [
            member('abc/link', kind=tarfile.SYMTYPE, linkname='../def'),
            member('abc/link/x', b'x')])
        self.assertRefused(encode(members), 'under a symbolic link')

    def test_hard_link(self):
        members = insert_before_manifest(self.members, [member(
            'abc/hard', kind=tarfile.LNKTYPE, linkname='/etc/passwd')])
        self.assertRefused(encode(members), 'hard link')

    def test_device_member(self):
        members = insert_before_manifest(self.members, [member(
            'abc/dev', kind=tarfile.CHRTYPE)])
        self.assertRefused(encode(members), 'tar type')

    # -- second manifests and other spellings ---------------------------------

    def _second(self, name, payload=None):
        original = next(d for i, d in self.members
                        if i.name == 'manifest.json')
        members = insert_before_manifest(
            self.members, [member(name, payload or original)])
        return encode(members)

    def test_manifest_through_dotdot(self):
        self.assertRefused(self._second('x/../manifest.json'),
                           "'..'", 'x/../manifest.json')

    def test_dot_slash_manifest_twice(self):
        members = [(i, d) for i, d in self.members]
        manifest = next((i, d) for i, d in members
                        if i.name == 'manifest.json')
        members += [member('./manifest.json', manifest[1]),
                    member('./manifest.json', manifest[1])]
        self.assertRefused(encode(members), 'manifest.json')

    def test_manifest_in_capitals(self):
        self.assertRefused(self._second('MANIFEST.JSON'),
                           'second spelling of manifest.json')

    def test_oci_index_in_a_subdirectory(self):
        self.assertRefused(self._second('blobs/index.json', b'{}'),
                           'second spelling of index.json')

    def test_oci_layout_as_directory(self):
        members = insert_before_manifest(self.members, [member(
            'oci-layout/', kind=tarfile.DIRTYPE)])
        self.assertRefused(encode(members), 'second spelling of oci-layout')

    def test_dot_slash_repositories(self):
        self.assertRefused(self._second('./repositories', b'{}'),
                           'second spelling of repositories')

    # -- manifests naming what is not theirs ----------------------------------

    def test_manifest_naming_another_tenants_image(self):
        victim_data = self.legit()
        victim = self.glance.add_image(victim_data, 'victim')
        victim_tag = naming.image_tag_for(victim)
        self.addCleanup(subprocess.run, ['docker', 'rmi', '-f', victim_tag],
                        capture_output=True)
        server = self.boot(image_id=victim, flavor_id=self.flavor)
        victim_id = self.client.images.get(victim_tag).id

        def claim(entries):
            entries[0]['RepoTags'] = [victim_tag]

        data = encode(with_manifest(self.members, claim))
        self.assertRefused(data, 'belongs to the driver')
        self.assertEqual(victim_id, self.client.images.get(victim_tag).id)
        self._delete_server(server)

    def test_manifest_naming_the_sandbox_image(self):
        sandbox = naming.CONF.docker.sandbox_image
        before = self.client.images.get(sandbox).id

        def claim(entries):
            entries[0]['RepoTags'] = [sandbox]

        self.assertRefused(encode(with_manifest(self.members, claim)),
                           'belongs to the driver')
        self.assertEqual(before, self.client.images.get(sandbox).id)

    def test_repositories_naming_the_sandbox_image(self):
        repository = naming.CONF.docker.sandbox_image.rsplit(':', 1)[0]
        members = []
        for info, data in self.members:
            if info.name == 'repositories':
                data = json.dumps({repository: {'1': 'x'}}).encode()
                info = member('repositories', data)[0]
            members.append((info, data))
        self.assertRefused(encode(members), 'belongs to the driver')

    def test_manifest_naming_a_config_not_in_the_archive(self):
        def elsewhere(entries):
            entries[0]['Config'] = '0' * 64 + '.json'

        self.assertRefused(encode(with_manifest(self.members, elsewhere)),
                           'names config')

    def test_data_after_the_end(self):
        data = gzip.compress(self.legit()) + b'not gzip at all' * 100
        self.assertRefused(data, 'gzip stream is corrupt')

    def test_truncated_gzip(self):
        data = gzip.compress(self.legit())
        self.assertRefused(data[:len(data) // 2], 'truncated')

    def test_legit_gzip_archive_still_boots(self):
        # The parser refuses the cases above, not what docker save writes.
        image_id = self.glance.add_image(gzip.compress(self.legit()), 'gz')
        self.addCleanup(subprocess.run,
                        ['docker', 'rmi', '-f',
                         naming.image_tag_for(image_id)],
                        capture_output=True)
        server = self.boot(image_id=image_id, flavor_id=self.flavor)
        self._delete_server(server)
