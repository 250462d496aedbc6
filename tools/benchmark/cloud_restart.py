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

"""The cloud's own nova-compute restarted with servers on its host.

Boots *count* idle servers (no port) and two networked probe servers on
the cloud's first host, starts a ping from one probe to the other every
0.1 s from the first probe's network namespace (the benchmark runs as
root on that host), then restarts that host's nova-compute with
``tools/cloud.sh restart-compute`` (a clean stop, a start, and the wait
for the end of ``init_host``). Reports the command's wall time, the new
process's start-up read from its log (its first line to the end of
``init_host``) and the longest stretch without a ping reply. Deletes
what it created. The in-process density section measures the same
restart without the interpreter's start; this one is the real service,
unprivileged, as an operator restarts it.
"""

import os
import shutil
import subprocess
import tempfile
import time

from tools.benchmark import cloud
from tools.benchmark import common

CLOUD_SH = os.path.join(common.REPO, 'tools', 'cloud.sh')
# The line tools/cloud.sh waits for: nova-compute's last init_host step.
INIT_HOST_DONE = 'Looking for unclaimed instances stuck in BUILDING status'


def run(bench, conn, log_path, count, batch=10):
    try:
        return _measure(bench, conn, log_path, count, batch)
    finally:
        bench.cleanup()


def room(conn, host, flavor_id):
    """How many more servers of the flavor Placement fits on *host*.

    Nova's default allocation ratios (16 VCPU per core) hold a two-core
    host to 32 one-VCPU servers, fewer than the density counts.
    """
    flavor = conn.compute.get_flavor(flavor_id)
    need = {'VCPU': flavor.vcpus, 'MEMORY_MB': flavor.ram,
            'DISK_GB': flavor.disk}
    provider = next(iter(conn.placement.resource_providers(name=host)), None)
    if provider is None:
        raise common.BenchmarkError('no resource provider named %s' % host)
    base = '/resource_providers/%s' % provider.id
    inventory = conn.placement.get(base + '/inventories').json()[
        'inventories']
    usages = conn.placement.get(base + '/usages').json()['usages']
    fits = []
    for rc, amount in need.items():
        if amount and rc in inventory:
            inv = inventory[rc]
            capacity = int((inv['total'] - inv['reserved']) *
                           inv['allocation_ratio'])
            fits.append((capacity - usages.get(rc, 0)) // amount)
    return min(fits) if fits else 0


def _measure(bench, conn, log_path, count, batch):
    host = bench.host or cloud.PRIMARY_HOST
    asked = count
    count = max(0, min(count, room(conn, host, bench.ids['flavor']) - 2))
    if count < asked:
        common.progress('restart: %d idle servers asked, %d fit on %s',
                        asked, count, host)
    for first in range(0, count, batch):
        made = [bench.create(networks='none')
                for _ in range(min(batch, count - first))]
        for server_id in made:
            bench.wait_active(server_id)
    common.progress('restart: %d idle servers up', count)
    a, b = bench.create(), bench.create()
    bench.wait_active(a)
    bench.wait_active(b)
    target = _address(conn, b)
    # The probe runs on this host in the first server's network namespace
    # (the driver links it as nova-<uuid>): the cloud's workloads have no
    # CAP_NET_RAW, so ping inside them is refused. Its packets still leave
    # through the server's port, security groups and all.
    scratch = tempfile.mkdtemp(prefix=common.PREFIX + '-restart-')
    log = os.path.join(scratch, 'ping.log')
    loop = subprocess.Popen(
        ['ip', 'netns', 'exec', 'nova-%s' % a, 'sh', '-c',
         common.ping_loop(target, log=log, nap='sleep 0.1')],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        offset = os.path.getsize(log_path)
        start = time.perf_counter()
        subprocess.run([CLOUD_SH, 'restart-compute'], check=True,
                       capture_output=True, timeout=600)
        wall = time.perf_counter() - start
        time.sleep(3)
    finally:
        loop.terminate()
        loop.wait(timeout=10)
    with open(log) as f:
        samples = common.ping_samples(f.read())
    shutil.rmtree(scratch)
    out = {'servers': count + 2,
           'idle_servers_asked': asked,
           'command_s': round(wall, 3),
           'startup_s': startup_seconds(log_path, offset),
           'interruption_s': common.interruption(samples),
           'probes': len(samples),
           'probes_lost': sum(1 for _, ok in samples if not ok)}
    common.progress('restart with %d servers: tools/cloud.sh restart-compute '
                    '%.2f s, start-up to end of init_host %s s, longest '
                    'ping gap %s s', out['servers'], wall, out['startup_s'],
                    out['interruption_s'])
    return out


def _address(conn, server_id):
    server = conn.compute.get_server(server_id)
    for addresses in (server.addresses or {}).values():
        for address in addresses:
            if address.get('version') == 4:
                return address['addr']
    raise common.BenchmarkError('probe server %s has no IPv4 address'
                                % server_id)


def startup_seconds(log_path, offset):
    """From the new process's first log line to the end of init_host.

    Reads *log_path* from byte *offset* (its size before the restart: the
    old process's last lines come first, told apart by their pid); None
    when the end of init_host is not there.
    """
    first_of = {}
    with open(log_path, 'rb') as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode('utf-8', 'replace')
            match = common.LOG_STAMP.match(line)
            if not match:
                continue
            stamp = common.log_seconds(match.group(1))
            pid = match.group(2)
            first_of.setdefault(pid, stamp)
            if INIT_HOST_DONE in line:
                return round(stamp - first_of[pid], 3)
    return None
