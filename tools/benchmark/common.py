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
import re
import statistics
import subprocess
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


def random_image_archive(base, tag, archive, size_mb):
    """Save *base* plus *size_mb* MB of random bytes to *archive*.

    Random bytes, so nothing compresses; tagged *tag* only while saved.
    """
    name = '%s-img-%d' % (PREFIX, os.getpid())
    made = subprocess.run(
        ['docker', 'run', '--net=none', '--name', name, '--label',
         '%s=image' % LABEL, base, 'sh', '-c',
         'dd if=/dev/urandom of=/payload bs=1M count=%d 2>/dev/null'
         % size_mb], capture_output=True, text=True)
    try:
        if made.returncode:
            msg = 'docker run of the %d MB image failed: %s' % (
                size_mb, made.stderr.strip())
            raise BenchmarkError(msg)
        subprocess.run(['docker', 'commit', name, tag], check=True,
                       capture_output=True)
    finally:
        subprocess.run(['docker', 'rm', '-f', name], capture_output=True)
    subprocess.run(['docker', 'save', '-o', archive, tag], check=True)
    subprocess.run(['docker', 'rmi', tag], check=True, capture_output=True)


def docker_load_seconds(archive, tag, runs):
    """Seconds of each of *runs* cold ``docker load -i`` of *archive*.

    Its image, *tag*, is removed after each load.
    """
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(['docker', 'load', '-q', '-i', archive], check=True,
                       capture_output=True)
        samples.append(time.perf_counter() - start)
        subprocess.run(['docker', 'rmi', '-f', tag], capture_output=True)
    return samples


def interruption(samples):
    """Longest stretch without a reply, in seconds.

    From the last reply before a loss to the first reply after it; 0.0 when
    nothing was lost, -1.0 when replies never came back, None without
    samples.
    """
    if not samples:
        return None
    longest = 0.0
    last_ok = None
    lost = False
    for t, ok in samples:
        if ok:
            if lost and last_ok is not None:
                longest = max(longest, t - last_ok)
            last_ok, lost = t, False
        else:
            lost = True
    if lost:
        return -1.0  # never came back while watched
    return round(longest, 2)


# A ping every 0.1 s, logged with the uptime, for the restart figures:
# inside a workload in-process, in the server's network namespace on the
# cloud (whose workloads lack CAP_NET_RAW).
PING_LOG = '/tmp/%s-ping.log' % PREFIX
PING_PID = PING_LOG + '.pid'


def ping_loop(target, log=PING_LOG, nap='usleep 100000'):
    """The shell loop (``sh -c``) that pings *target* into *log*.

    *nap* is the pause between two pings: busybox's ``usleep`` inside a
    workload, ``sleep 0.1`` with the host's coreutils. The shell's pid
    goes to *log* + ``.pid``.
    """
    return ('echo $$ > %s; rm -f %s; while :; do '
            'read t _ < /proc/uptime; '
            'if ping -c 1 -W 1 %s >/dev/null 2>&1; then echo "$t ok"; '
            'else echo "$t lost"; fi >> %s; %s; done'
            % (log + '.pid', log, target, log, nap))


# The command that stops the in-workload loop and prints its log.
PING_STOP = 'kill $(cat %s); cat %s' % (PING_PID, PING_LOG)


def ping_samples(raw):
    """(uptime, replied) pairs from the loop's log."""
    samples = []
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ('ok', 'lost'):
            samples.append((float(parts[0]), parts[1] == 'ok'))
    return samples


# An oslo.log line: its time stamp and the pid of the process that wrote it.
LOG_STAMP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (\d+) ')


def log_seconds(stamp):
    """Seconds since the epoch of an oslo.log time stamp (local time)."""
    whole, _, fraction = stamp.partition('.')
    return time.mktime(time.strptime(whole, '%Y-%m-%d %H:%M:%S')) + \
        float('0.' + fraction)
