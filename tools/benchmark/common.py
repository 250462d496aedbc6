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

"""Statistics, progress lines and the results file shared by the sections."""

import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# Everything the benchmark creates carries this prefix or label.
PREFIX = 'ndbench'
BRIDGE = 'br-ndbench'
LABEL = 'org.openstack.nova-docker.benchmark'
_START = time.monotonic()


class BenchmarkError(Exception):
    """A measurement could not be taken (the message says which)."""


def progress(fmt, *args):
    """One progress line on stdout, with the time since the start."""
    line = fmt % args if args else fmt
    sys.stdout.write("[bench %6.1fs] %s\n" % (time.monotonic() - _START,
                                              line))
    sys.stdout.flush()


def percentile(samples, pct):
    """The *pct* percentile of *samples* (linear interpolation)."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples):
    """p50, p95, mean, min, max and the samples themselves (seconds)."""
    if not samples:
        return None
    return {
        'n': len(samples),
        'p50_s': round(percentile(samples, 50), 4),
        'p95_s': round(percentile(samples, 95), 4),
        'mean_s': round(statistics.mean(samples), 4),
        'min_s': round(min(samples), 4),
        'max_s': round(max(samples), 4),
        'samples_s': [round(s, 4) for s in samples],
    }


def skipped(reason):
    """What a section records when it cannot run: null plus why."""
    progress('SKIPPED: %s', reason)
    return {'skipped': True, 'reason': reason}


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def save(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)


def rss_mb(pid='self'):
    """Resident memory of a process, in MiB."""
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
    return None
