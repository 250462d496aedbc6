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

"""Time the image path against plain docker, on the real engine.

Prints, in one run:
  * first load: load.ensure_image() streaming a "docker save"
    archive from an in-memory Glance stand-in through the bounded parser,
    vs "docker load -i" of the same archive, and the peak RSS growth of
    this process during ensure_image();
  * the bounded parser alone (archive.LoadArchive, no engine);
  * cached boot: ensure_image() of an image already loaded plus
    "docker run --rm IMAGE true", vs "docker run --rm IMAGE true" alone,
    and ensure_image() alone vs "docker image inspect".

Usage: PYTHONPATH=. .venv/bin/python -m tools.benchmark.images
           [--size-mb 64] [--runs 3]
Needs dockerd and the local image nova-docker/busybox:latest; removes
everything it creates.
"""

import argparse
import hashlib
import io
import os
import statistics
import subprocess
import tempfile
import time
import uuid

import docker
from nova import objects

from novadocker.virt.docker.image import archive
from novadocker.virt.docker.image import load
from novadocker.virt.docker.image import naming
from novadocker.virt.docker.image import rules
from novadocker.virt.docker.image import streams

BASE_IMAGE = 'nova-docker/busybox:latest'


class MemoryGlance(object):
    """Serves one archive from memory in 64 KiB chunks, like glanceclient."""

    def __init__(self, image_id, data):
        self.image_id = image_id
        self.data = data
        self.record = {
            'id': image_id, 'container_format': 'docker',
            'disk_format': 'raw', 'properties': {}, 'size': len(data),
            'os_hash_algo': 'sha512',
            'os_hash_value': hashlib.sha512(data).hexdigest()}

    def get(self, context, image_id, **kwargs):
        return dict(self.record)

    def download(self, context, image_id, **kwargs):
        view = memoryview(self.data)
        return (bytes(view[i:i + 65536])
                for i in range(0, len(self.data), 65536))


def peak_rss_growth_kib(func):
    """Run *func*; return how far the peak RSS rose above the RSS before."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    before = status_kib('VmRSS')
    func()
    return status_kib('VmHWM') - before


def status_kib(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def parse_only(image_id, data):
    reader = streams.GlanceReader(image_id, MemoryGlance(
        image_id, data).download(None, image_id),
        streams.ExpectedDigest(image_id, 'sha512',
                               hashlib.sha512(data).hexdigest()))
    body = archive.LoadArchive(reader, image_id, 'x:y',
                               rules.Limits.from_conf(len(data)))
    for _piece in body:
        pass


def timed(func, runs, before=None):
    samples = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def docker_cli(*args):
    subprocess.run(('docker',) + args, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def build_source(client, prefix, size_mb):
    tag = '%s/source:1' % prefix
    dockerfile = ('FROM %s\nRUN dd if=/dev/urandom of=/payload bs=1048576 '
                  'count=%d 2>/dev/null\n' % (BASE_IMAGE, size_mb))
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag,
                        rm=True, forcerm=True)
    data = b''.join(client.api.get_image(tag, chunk_size=1 << 20))
    return tag, data


def remove_quietly(client, ref):
    try:
        client.images.remove(ref, force=True)
    except docker.errors.NotFound:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mb', type=int, default=64,
                        help='size of the random payload layer (MiB)')
    parser.add_argument('--runs', type=int, default=3,
                        help='repetitions per figure; the median is shown')
    args = parser.parse_args()

    objects.register_all()
    client = docker.from_env(timeout=600)
    prefix = 'ndbench%s' % uuid.uuid4().hex[:8]
    image_id = str(uuid.uuid4())
    tag = naming.image_tag_for(image_id)
    lock_dir = tempfile.mkdtemp(prefix=prefix)
    naming.CONF.set_override('image_lock_path', lock_dir, 'docker')
    meta = objects.ImageMeta.from_dict({'id': image_id,
                                        'container_format': 'docker',
                                        'disk_format': 'raw'})
    source = None
    fd, archive_path = tempfile.mkstemp(prefix=prefix, suffix='.tar')
    os.close(fd)
    try:
        source, data = build_source(client, prefix, args.size_mb)
        with open(archive_path, 'wb') as f:
            f.write(data)
        config_id = client.images.get(source).id
        glance = MemoryGlance(image_id, data)
        load.glance.API = lambda: glance

        def unload():
            remove_quietly(client, source)
            remove_quietly(client, tag)
            remove_quietly(client, config_id)

        ensure = lambda: load.ensure_image(None, meta)  # noqa: E731
        first_ours = timed(ensure, args.runs, before=unload)
        unload()
        rss_growth = peak_rss_growth_kib(ensure)
        parse = timed(lambda: parse_only(image_id, data), args.runs)
        first_plain = timed(lambda: docker_cli('load', '-i', archive_path),
                            args.runs, before=unload)

        unload()
        ensure()
        cached_ours = timed(ensure, args.runs * 5)
        inspect_plain = timed(
            lambda: docker_cli('image', 'inspect', tag), args.runs * 5)
        run_plain = timed(
            lambda: docker_cli('run', '--rm', tag, 'true'), args.runs)
        run_ours = timed(
            lambda: (ensure(), docker_cli('run', '--rm', tag, 'true')),
            args.runs)
    finally:
        for ref in (source, tag):
            if ref:
                remove_quietly(client, ref)
        os.unlink(archive_path)
        for name in os.listdir(lock_dir):
            os.unlink(os.path.join(lock_dir, name))
        os.rmdir(lock_dir)
        client.close()

    size = len(data) / (1 << 20)
    print('archive: %.1f MiB, median of %d runs' % (size, args.runs))
    print('first load   ensure_image (stream, verify, retag) %7.3f s'
          % first_ours)
    print('first load   docker load -i                       %7.3f s'
          % first_plain)
    print('             ratio ensure_image / docker load     %7.2f'
          % (first_ours / first_plain))
    print('first load   peak RSS growth in ensure_image      %7.1f MiB'
          % (rss_growth / 1024.0))
    print('parser only  archive.LoadArchive, no engine       %7.3f s'
          % parse)
    print('cached       ensure_image (one tag API call)      %7.4f s'
          % cached_ours)
    print('cached       docker image inspect (CLI)           %7.4f s'
          % inspect_plain)
    print('             ratio ensure_image / inspect         %7.2f'
          % (cached_ours / inspect_plain))
    print('cached boot  ensure_image + docker run --rm true  %7.3f s'
          % run_ours)
    print('cached boot  docker run --rm true                 %7.3f s'
          % run_plain)
    print('             ratio                                %7.2f'
          % (run_ours / run_plain))


if __name__ == '__main__':
    main()
