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

"""The floor: the raw steps a spawn needs, done by a minimal script.

One run is what the driver must do for a server with one port, with the
plain tools and nothing else: ``docker run`` of the cached image with
``--net=none``, the container's pid, a veth pair, the OVS port with its
external_ids on the benchmark's own netdev bridge, the namespace link,
the move into the namespace with the MAC, address, MTU and routes, and
``lo`` up. Each step is timed too, so the floor's own cost is known.

The sandboxed floor does the same work the way the driver must, so that
the workload's first instruction already has its network: a sandbox
container (``--net=none``) is run and wired first, then the workload is
run in its namespace (``--network container:<sandbox>``). It is the one
extra container start of the driver's design, priced by hand.
"""

import concurrent.futures
import os
import subprocess
import time
import uuid

from tools.benchmark import common

IMAGE = 'nova-docker/busybox:latest'
NETNS_DIR = '/var/run/netns'


def _run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)


def _out(*cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True).stdout.strip()


def ensure_bridge():
    """The benchmark's own netdev bridge (created if missing)."""
    _run('ovs-vsctl', '--timeout=10', '--may-exist', 'add-br',
         common.BRIDGE, '--', 'set', 'Bridge', common.BRIDGE,
         'datapath_type=netdev',
         'external_ids:created-by=nova-docker-benchmark')


def remove_bridge():
    subprocess.run(['ovs-vsctl', '--timeout=10', '--if-exists', 'del-br',
                    common.BRIDGE], capture_output=True)


def _names(n):
    tag = '%s%04d' % (uuid.uuid4().hex[:5], n)
    return {'container': '%s-floor-%s' % (common.PREFIX, tag),
            'host': 'tapnb' + tag, 'peer': 'nspnb' + tag,
            'link': '%s-floor-%s' % (common.PREFIX, tag),
            'uuid': str(uuid.uuid4()),
            'mac': 'fa:16:3e:%02x:%02x:42' % (n // 256 % 256, n % 256),
            'ip': '10.251.%d.%d/16' % (n // 250, n % 250 + 2)}


def one_spawn(n, sandboxed=False):
    """Do the raw steps once; return (names, {step: seconds})."""
    names = _names(n)
    if sandboxed:
        names['sandbox'] = names['container'] + '-sb'
    steps = {}

    def step(name, *cmd):
        start = time.perf_counter()
        result = _out(*cmd)
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - start
        return result

    label = ('--label', '%s=floor' % common.LABEL)
    start = time.perf_counter()
    if sandboxed:
        step('docker run (sandbox)', 'docker', 'run', '-d', '--net=none',
             *label, '--name', names['sandbox'], IMAGE,
             'sleep', '2147483647')
    else:
        step('docker run', 'docker', 'run', '-d', '-t', '-i', '--net=none',
             *label, '--name', names['container'], IMAGE)
    pid = step('docker inspect (pid)', 'docker', 'inspect', '-f',
               '{{.State.Pid}}', names.get('sandbox', names['container']))
    step('veth pair', 'ip', 'link', 'add', names['host'], 'mtu', '1500',
         'type', 'veth', 'peer', 'name', names['peer'], 'mtu', '1500')
    step('veth pair', 'ip', 'link', 'set', names['host'], 'up')
    step('OVS port + external_ids', 'ovs-vsctl', '--timeout=10', 'add-port',
         common.BRIDGE, names['host'], '--', 'set', 'Interface',
         names['host'], 'external_ids:iface-id=%s' % names['uuid'],
         'external_ids:attached-mac=%s' % names['mac'],
         'external_ids:vm-uuid=%s' % names['uuid'],
         'external_ids:iface-status=active')
    step('namespace link', 'ln', '-sfT', '/proc/%s/ns/net' % pid,
         os.path.join(NETNS_DIR, names['link']))
    step('move + address', 'ip', 'link', 'set', names['peer'], 'netns',
         names['link'])
    ns = ('ip', '-n', names['link'])
    step('move + address', *ns, 'link', 'set', names['peer'], 'name',
         'eth0', 'address', names['mac'], 'up')
    step('move + address', *ns, 'addr', 'add', names['ip'], 'dev', 'eth0')
    step('move + address', *ns, 'link', 'set', 'lo', 'up')
    step('move + address', *ns, 'route', 'add', 'default', 'via',
         '10.251.0.1')
    if sandboxed:
        step('docker run (workload)', 'docker', 'run', '-d', '-t', '-i',
             '--network', 'container:' + names['sandbox'], *label,
             '--name', names['container'], IMAGE)
    steps['total'] = time.perf_counter() - start
    return names, steps


def teardown(names):
    """Remove what one_spawn created; tolerate what is gone."""
    containers = [names['container']] + (
        [names['sandbox']] if 'sandbox' in names else [])
    for cmd in (['docker', 'rm', '-f'] + containers,
                ['ovs-vsctl', '--timeout=10', '--if-exists', 'del-port',
                 common.BRIDGE, names['host']],
                ['ip', 'link', 'del', names['host']],
                ['rm', '-f', os.path.join(NETNS_DIR, names['link'])]):
        subprocess.run(cmd, capture_output=True)


def run(runs, concurrency=(10, 20)):
    """The floor figures: serial runs, per step, and concurrent walls.

    The single-container and the sandboxed floor take turns, run by run,
    so both see the same noise of the machine.
    """
    ensure_bridge()
    os.makedirs(NETNS_DIR, exist_ok=True)
    kinds = ((False, 'floor'), (True, 'sandboxed floor'))
    totals = {kind: [] for kind, _ in kinds}
    per_step = {kind: {} for kind, _ in kinds}
    try:
        # One warm-up run each: the first docker run after a while is slower.
        for sandboxed, _ in kinds:
            teardown(one_spawn(9999, sandboxed)[0])
        for i in range(runs):
            for sandboxed, what in kinds:
                names, steps = one_spawn(i, sandboxed)
                teardown(names)
                totals[sandboxed].append(steps.pop('total'))
                for name, seconds in steps.items():
                    per_step[sandboxed].setdefault(name, []).append(seconds)
                common.progress('%s %d/%d: %.3f s', what, i + 1, runs,
                                totals[sandboxed][-1])
        result, sandbox = [
            {'serial': common.summary(totals[kind]),
             'steps_p50_s': {k: round(common.percentile(v, 50), 4)
                             for k, v in per_step[kind].items()}}
            for kind, _ in kinds]
        result['sandboxed'] = sandbox
        for width in concurrency:
            result['concurrent%d' % width] = concurrent_wall(width)
            common.progress('floor x%d concurrent: wall %.2f s', width,
                            result['concurrent%d' % width]['wall_s'])
            result['sandboxed']['concurrent%d' % width] = concurrent_wall(
                width, sandboxed=True)
            common.progress(
                'sandboxed floor x%d concurrent: wall %.2f s', width,
                result['sandboxed']['concurrent%d' % width]['wall_s'])
        return result
    finally:
        leftovers = _out('docker', 'ps', '-aq', '--filter',
                         'label=%s=floor' % common.LABEL).split()
        for cid in leftovers:
            subprocess.run(['docker', 'rm', '-f', cid], capture_output=True)


def concurrent_wall(width, sandboxed=False):
    """Wall time of *width* floor spawns started together."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(width) as pool:
        done = list(pool.map(lambda n: one_spawn(n, sandboxed),
                             range(1000, 1000 + width)))
    wall = time.perf_counter() - start
    for names, _ in done:
        teardown(names)
    each = [steps['total'] for _, steps in done]
    return {'wall_s': round(wall, 3), 'each': common.summary(each)}
