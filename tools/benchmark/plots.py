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

"""PNG plots of benchmarks/latest.json (matplotlib, no display needed).

Usage: python -m tools.benchmark.plots benchmarks/latest.json
Writes benchmarks/latency.png, benchmarks/density.png,
benchmarks/profile.png next to the JSON.
"""

import os
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from tools.benchmark import common  # noqa: E402


def _samples(data, *keys):
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data.get('samples_s') if isinstance(data, dict) else None


def latency(result, path):
    series = [
        ('floor (raw steps)', _samples(result, 'floor', 'serial')),
        ('sandboxed floor', _samples(result, 'floor', 'sandboxed',
                                     'serial')),
        ('driver spawn', _samples(result, 'inprocess', 'spawn',
                                  'driver_spawn')),
        ('in-process API\nto ACTIVE', _samples(
            result, 'inprocess', 'spawn', 'api_boot_inprocess')),
        ('in-process API,\nfake driver', _samples(
            result, 'inprocess', 'fake_driver', 'api_boot_inprocess')),
        ('cloud API\nto ACTIVE', _samples(result, 'cloud', 'serial',
                                          'boot')),
        ('cloud API,\nfake driver', _samples(result, 'cloud', 'fake_driver',
                                             'boot')),
        ('cloud API,\nno port', _samples(result, 'cloud', 'fake_driver',
                                         'docker_no_network', 'boot')),
        ('cloud delete\nto gone', _samples(result, 'cloud', 'serial',
                                           'delete')),
    ]
    series = [(name, s) for name, s in series if s]
    fig, ax = plt.subplots(figsize=(10, 5))
    if series:
        ax.boxplot([s for _, s in series], whis=(5, 95), showfliers=True)
        ax.set_xticks(range(1, len(series) + 1))
        ax.set_xticklabels([name for name, _ in series], fontsize=8)
        for i, (_, s) in enumerate(series, 1):
            ax.scatter([i] * len(s), s, s=8, alpha=0.4)
    ax.set_ylabel('seconds')
    ax.set_title('Boot latency, cached image (boxes: p5-p95, line: p50)')
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def density(result, path):
    per_count = (((result.get('inprocess') or {}).get('density') or {})
                 .get('per_count') or {})
    counts = sorted(int(c) for c in per_count)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    if counts:
        entries = [per_count[str(c)] for c in counts]
        axes[0].plot(counts, [e['rss_mb'] for e in entries], 'o-',
                     label='in-process Nova (all services) RSS')
        axes[0].plot(counts, [e['containers']['cgroup_mb'] +
                              e['containers']['shim_pss_mb']
                              for e in entries], 's-',
                     label='containers: cgroup memory + shim PSS')
        axes[0].set_ylabel('MB')
        axes[0].legend(fontsize=7)
        for task in ('update_available_resource', 'sync_power_states',
                     'image_cache'):
            axes[1].plot(counts, [e['periodic'][task]['seconds']
                                  for e in entries], 'o-', label=task)
            axes[2].plot(counts, [e['periodic'][task]['engine_calls']
                                  for e in entries], 'o-', label=task)
        if all('driver_seconds' in t for e in entries
               for t in e['periodic'].values()):
            axes[1].plot(counts, [sum(t['driver_seconds']
                                      for t in e['periodic'].values())
                                  for e in entries], 'rs:',
                         label="inside the driver (all three tasks)")
        axes[1].plot(counts, [e['restart']['seconds'] for e in entries],
                     'k^--', label='compute restart')
        axes[1].set_ylabel('seconds')
        axes[2].set_ylabel('engine API calls')
        axes[1].legend(fontsize=7)
        axes[2].legend(fontsize=7)
    titles = ('Memory', 'Periodic tasks and restart', 'Engine calls per run')
    for ax, title in zip(axes, titles):
        ax.set_xlabel('idle servers (+2 networked probe servers)')
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def profile(result, path):
    prof = ((((result.get('inprocess') or {}).get('spawn') or {})
             .get('profile')) or {})
    rows = [r for r in prof.get('calls', []) if r['category'] != 'driver']
    rows = rows[:15][::-1]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    if rows:
        ax.barh(range(len(rows)), [r['seconds_per_boot'] for r in rows])
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(['%s: %s (x%g)' % (r['category'], r['call'][:50],
                                              r['count_per_boot'])
                            for r in rows], fontsize=7)
    spawn = result.get('driver_spawn_p50_s')
    ax.set_xlabel('seconds per spawn (mean)')
    ax.set_title('Where the driver spawn goes (spawn p50 %s s)' % spawn)
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    path = sys.argv[1]
    result = common.load(path)
    out = os.path.dirname(os.path.abspath(path))
    for name, func in (('latency', latency), ('density', density),
                       ('profile', profile)):
        target = os.path.join(out, '%s.png' % name)
        func(result, target)
        common.progress('wrote %s', target)


if __name__ == '__main__':
    main()
