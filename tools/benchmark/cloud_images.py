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

"""The image path through the real cloud: first boot, cached boot, snapshot.

A ``docker save`` archive of a generated image (busybox plus a layer of
random bytes, so nothing compresses) is uploaded to the cloud's Glance.
The first boot downloads and loads it: nova-compute logs how long the
driver's load took ("Loaded image <id> (<bytes>) in <s>"), which is set
against ``docker load -i`` of the very same archive, cold, on the same
engine. A second boot of the image must download nothing (no second
"Loading image" line). A snapshot of that server goes to Glance. All it
creates is named ``ndbench-*`` and removed: servers, Glance images, the
engine's tags of them, the archive.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

from tools.benchmark import common

BUSYBOX = 'nova-docker/busybox:latest'


def run(bench, conn, log_path, size_mb):
    tag = '%s/cloud-big:%d' % (common.PREFIX, os.getpid())
    tmp = tempfile.mkdtemp(prefix='ndbench-cimg-')
    images = []
    try:
        archive = os.path.join(tmp, 'big.tar')
        common.random_image_archive(BUSYBOX, tag, archive, size_mb)
        return _measure(bench, conn, log_path, archive, tag, images)
    finally:
        bench.cleanup()
        for image_id in images:
            _remove_glance_image(conn, image_id)
        subprocess.run(['docker', 'rmi', '-f', tag], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(bench, conn, log_path, archive, tag, images):
    with open(archive, 'rb') as data:
        image = conn.image.create_image(
            name='ndbench-big-%d' % os.getpid(), container_format='docker',
            disk_format='raw', data=data, validate_checksum=False,
            use_import=False)
    images.append(image.id)
    size = os.path.getsize(archive)
    common.progress('cloud images: %.0f MB archive uploaded as %s',
                    size / 1048576.0, image.id)
    ids = dict(bench.ids)
    bench.ids = dict(ids, image=image.id)
    try:
        first_boot, _ = _boot(bench)
        loaded = _loaded(log_path, image.id)
        if loaded is None:
            raise common.BenchmarkError(
                'no "Loaded image %s" line in %s' % (image.id, log_path))
        cached_boot, server_id = _boot(bench)
        loads = _loading_lines(log_path, image.id)
        snapshot = _snapshot(conn, server_id, images)
    finally:
        bench.ids = ids
    bench.cleanup()
    engine_tag = _engine_tag(image.id)
    subprocess.run(['docker', 'rmi', '-f', engine_tag], capture_output=True)
    docker_load = common.docker_load_seconds(archive, tag, 3)
    load_p50 = common.percentile(docker_load, 50)
    common.progress('cloud images: driver load %.2f s (%d bytes), docker '
                    'load -i %.2f s; first boot %.2f s, cached boot %.2f s '
                    '(%d download); snapshot %.2f s', loaded['seconds'],
                    loaded['bytes'], load_p50, first_boot, cached_boot,
                    loads, snapshot)
    return {
        'archive_mb': round(size / 1048576.0, 1),
        'first_boot_api_s': round(first_boot, 3),
        'driver_load_s': loaded['seconds'],
        'driver_load_bytes': loaded['bytes'],
        'docker_load': common.summary(docker_load),
        'first_boot_vs_docker_load_ratio': round(
            loaded['seconds'] / load_p50, 3),
        'cached_boot_api_s': round(cached_boot, 3),
        'downloads_logged': loads,
        # One download for two boots: the second downloaded nothing.
        'cached_boot_bytes_downloaded': (0 if loads == 1 else
                                         loaded['bytes'] * (loads - 1)),
        'snapshot_api_s': round(snapshot, 3),
    }


def _boot(bench):
    start = time.perf_counter()
    server_id = bench.create()
    bench.wait_active(server_id, timeout=600)
    return time.perf_counter() - start, server_id


def _loaded(log_path, image_id):
    pattern = re.compile(r'Loaded image %s \((\d+) bytes\) in ([\d.]+)s'
                         % re.escape(image_id))
    with open(log_path, errors='replace') as f:
        for line in f:
            match = pattern.search(line)
            if match:
                return {'bytes': int(match.group(1)),
                        'seconds': float(match.group(2))}
    return None


def _loading_lines(log_path, image_id):
    needle = 'Loading image %s from Glance' % image_id
    with open(log_path, errors='replace') as f:
        return sum(1 for line in f if needle in line)


def _snapshot(conn, server_id, images):
    start = time.perf_counter()
    resp = conn.compute.post(
        '/servers/%s/action' % server_id,
        json={'createImage': {'name': 'ndbench-snap-%d' % os.getpid()}},
        headers={'OpenStack-API-Version': 'compute 2.45'})
    if resp.status_code >= 400:
        raise common.BenchmarkError('createImage: %s %s' % (
            resp.status_code, resp.text[:300]))
    image_id = resp.json()['image_id']
    images.append(image_id)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        image = conn.image.get_image(image_id)
        if image.status == 'active':
            return time.perf_counter() - start
        if image.status in ('killed', 'deleted'):
            raise common.BenchmarkError('snapshot %s %s' % (image_id,
                                                            image.status))
        time.sleep(0.25)
    raise common.BenchmarkError('snapshot %s not active in 600 s'
                                % image_id)


def _engine_tag(image_id):
    from novadocker.virt.docker.image import naming
    return naming.image_tag_for(image_id)


def _remove_glance_image(conn, image_id):
    try:
        conn.image.delete_image(image_id, ignore_missing=True)
    except Exception as e:
        common.progress('could not delete Glance image %s: %s', image_id, e)
