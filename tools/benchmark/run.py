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

"""Run the benchmark's sections in one process and write the results.

Usage (from tools/benchmark.sh): python -m tools.benchmark.run [--quick]
    [--sections floor,spawn,...] [--out benchmarks]
"""

import argparse
import os
import platform
import subprocess
import time

from tools.benchmark import common

SECTIONS = ('floor', 'spawn', 'whatif', 'concurrent', 'power', 'images',
            'density', 'fake', 'cloud')
# Not run unless named: 20 concurrent boots in the in-process harness can
# deadlock in its CellDatabases fixture; the cloud section measures them.
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != 'concurrent')


def parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='few runs and small counts, to iterate')
    parser.add_argument('--sections', default=','.join(DEFAULT_SECTIONS),
                        help='comma-separated subset of %s (default: all '
                             'but concurrent)' % (SECTIONS,))
    parser.add_argument('--out', default=os.path.join(common.REPO,
                                                      'benchmarks'))
    parser.add_argument('--runs', type=int, help='serial runs per figure')
    parser.add_argument('--counts',
                        help='comma-separated server counts of the density '
                             'section (default 0,25,50,100; quick 0,5)')
    # More than one at a time can deadlock the in-process harness (its
    # CellDatabases fixture's reader-writer lock, as with 'concurrent').
    parser.add_argument('--density-batch', type=int, default=1,
                        help='idle servers the density section posts at '
                             'once before waiting for them (default 1: '
                             'serially; more can deadlock the harness)')
    args = parser.parse_args()
    args.sections = [s for s in args.sections.split(',') if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error('unknown sections %s' % sorted(unknown))
    return args


def machine():
    def out(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except OSError:
            return None
    cpu = None
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    with open('/proc/meminfo') as f:
        mem_kb = int(f.readline().split()[1])
    return {'cpus': os.cpu_count(), 'cpu_model': cpu,
            'memory_gib': round(mem_kb / 1048576.0, 1),
            'kernel': platform.release(),
            'python': platform.python_version(),
            'docker': out('docker', 'version', '--format',
                          '{{.Server.Version}}'),
            'ovs': (out('ovs-vsctl', '--version') or '').split('\n')[0],
            'load_average_at_start': os.getloadavg(),
            'date_utc': time.strftime('%Y-%m-%d %H:%M', time.gmtime()),
            'commit': out('git', '-C', common.REPO, 'rev-parse', '--short',
                          'HEAD')}


def params_for(args):
    quick = args.quick
    runs = args.runs or (5 if quick else 20)
    return {'sections': args.sections, 'runs': runs,
            'floor_concurrency': (3,) if quick else (10, 20),
            'concurrency': (3,) if quick else (20,),
            'power_runs': 1 if quick else 3,
            'image_mb': 20 if quick else 100,
            'load_runs': 1 if quick else 3,
            'density_batch': args.density_batch,
            'counts': (tuple(int(c) for c in args.counts.split(','))
                       if args.counts else
                       (0, 5) if quick else (0, 25, 50, 100)),
            'cloud_runs': 3 if quick else runs,
            'rally_runs': 3 if quick else 5,
            'cloud_concurrency': (3,) if quick else (10, 20),
            'fake_concurrency': (3,) if quick else (20,)}


def main():
    args = parse()
    params = params_for(args)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, 'latest.json')
    raw = {'machine': machine(), 'params': {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in params.items()}, 'quick': args.quick}
    common.progress('machine: %s', raw['machine'])
    from tools.benchmark import floor
    from tools.benchmark import report
    params['checkpoint'] = lambda results: common.save(
        path, report.headline(dict(raw, inprocess=dict(results))))
    if 'floor' in args.sections:
        common.progress('== section: floor (%d runs)', params['runs'])
        try:
            raw['floor'] = floor.run(params['runs'],
                                     params['floor_concurrency'])
        except Exception as e:
            raw['floor'] = {'skipped': True, 'reason': 'failed: %r' % (e,)}
    else:
        raw['floor'] = common.skipped('section not selected')
    common.save(path, raw)
    inproc = [s for s in args.sections if s not in ('floor', 'cloud')]
    try:
        floor.ensure_bridge()
        if inproc:
            from tools.benchmark import inprocess
            raw['inprocess'] = inprocess.run(params)
        else:
            raw['inprocess'] = common.skipped('no in-process section chosen')
    finally:
        floor.remove_bridge()
    raw['cloud'] = common.skipped('not reached yet (the cloud runs last)')
    raw['machine']['load_average_at_end'] = os.getloadavg()
    common.save(path, report.headline(raw))
    # The cloud last: it is the longest section, and the others are saved.
    if 'cloud' in args.sections:
        from tools.benchmark import cloud
        common.progress('== section: cloud')
        raw['cloud'] = cloud.run(params)
    else:
        raw['cloud'] = common.skipped('section not selected')
    raw['machine']['load_average_at_end'] = os.getloadavg()
    common.save(path, report.headline(raw))
    common.progress('wrote %s', path)


if __name__ == '__main__':
    main()
