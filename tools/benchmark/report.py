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

"""Headline figures, targets and the Markdown table from the raw results.

Usage: python -m tools.benchmark.report benchmarks/latest.json
(writes benchmarks/latest.md next to it; run.py calls headline()).
"""

import os
import sys

from tools.benchmark import common

# Russell 2014, nova-docker through Rally (see README "Benchmarks").
RUSSELL = {'boot_s': 3.529, 'soft_reboot_s': 2.578, 'snapshot_s': 36.89,
           'delete_s': 3.568, 'per_idle_server_mb': 49}


def _get(data, *keys):
    for key in keys:
        if not isinstance(data, dict) or data.get('skipped'):
            return None
        data = data.get(key)
    return data


def _reason(data, *keys):
    for key in keys:
        if not isinstance(data, dict):
            return 'not measured'
        if data.get('skipped'):
            return data.get('reason')
        data = data.get(key)
    return None if data is not None else 'not measured'


def _first(*values):
    return next((v for v in values if v is not None), None)


def _ratio(a, b):
    if a is None or not b:
        return None
    return round(a / b, 3)


def _periodic_calls(density, count):
    entry = _get(density, 'per_count', str(count), 'periodic')
    if not entry:
        return None
    return sum(task['engine_calls'] for task in entry.values()
               if 'engine_calls' in task)


def _periodic_seconds(density, count):
    entry = _get(density, 'per_count', str(count), 'periodic')
    if not entry:
        return None
    return round(sum(task['seconds'] for task in entry.values()
                     if 'engine_calls' in task), 3)


def _periodic_driver_seconds(density, count):
    entry = _get(density, 'per_count', str(count), 'periodic')
    if not entry or not all('driver_seconds' in t for t in entry.values()):
        return None
    return round(sum(t['driver_seconds'] for t in entry.values()), 3)


def headline(raw):
    """Add the headline keys (issue 15, acceptance 3) and the targets."""
    floor, inproc, cloud = raw.get('floor'), raw.get('inprocess'), \
        raw.get('cloud')
    spawn = _get(inproc, 'spawn')
    density = _get(inproc, 'density')
    images = _get(inproc, 'images')
    cloud_images = _get(cloud, 'images')
    counts = sorted(int(c) for c in (_get(density, 'per_count') or {}))
    # The acceptance keys name 100 servers, measured or not.
    top = counts[-1] if counts else 100
    h = {
        'floor_spawn_p50_s': _get(floor, 'serial', 'p50_s'),
        'floor_spawn_p95_s': _get(floor, 'serial', 'p95_s'),
        'floor_sandboxed_spawn_p50_s': _get(floor, 'sandboxed', 'serial',
                                            'p50_s'),
        'floor_sandboxed_concurrent20_wall_s': _get(
            floor, 'sandboxed', 'concurrent20', 'wall_s'),
        'driver_spawn_p50_s': _get(spawn, 'driver_spawn', 'p50_s'),
        'driver_spawn_p95_s': _get(spawn, 'driver_spawn', 'p95_s'),
        'inprocess_api_boot_p50_s': _get(spawn, 'api_boot_inprocess',
                                         'p50_s'),
        'api_boot_p50_s': _get(cloud, 'serial', 'boot', 'p50_s'),
        'api_boot_p95_s': _get(cloud, 'serial', 'boot', 'p95_s'),
        'api_delete_p50_s': _get(cloud, 'serial', 'delete', 'p50_s'),
        'api_boot_concurrent10_wall_s': _get(cloud, 'concurrent10',
                                             'boot_wall_s'),
        'api_boot_concurrent20_wall_s': _get(cloud, 'concurrent20',
                                             'boot_wall_s'),
        'floor_concurrent20_wall_s': _get(floor, 'concurrent20', 'wall_s'),
        'inprocess_concurrent20_wall_s': _get(
            inproc, 'concurrent', 'concurrent20', 'boot_wall_s'),
        'fake_driver_api_boot_p50_s': _get(cloud, 'fake_driver', 'boot',
                                           'p50_s'),
        'api_boot_no_port_p50_s': _get(cloud, 'fake_driver',
                                       'docker_no_network', 'boot', 'p50_s'),
        'fake_driver_inprocess_api_boot_p50_s': _get(
            inproc, 'fake_driver', 'api_boot_inprocess', 'p50_s'),
        'periodic_api_calls_at_0': _periodic_calls(density, 0),
        'periodic_api_calls_at_%s' % top: _periodic_calls(density, top),
        'periodic_seconds_at_0': _periodic_seconds(density, 0),
        'periodic_seconds_at_%s' % top: _periodic_seconds(density, top),
        'periodic_driver_seconds_at_0': _periodic_driver_seconds(density, 0),
        'periodic_driver_seconds_at_%s' % top: _periodic_driver_seconds(
            density, top),
        'compute_rss_mb_at_0': _get(density, 'per_count', '0', 'rss_mb'),
        'compute_rss_mb_at_%s' % top: _get(density, 'per_count', str(top),
                                           'rss_mb'),
        'restart_s_at_0': _get(density, 'per_count', '0', 'restart',
                               'seconds'),
        'restart_s_at_%s' % top: _get(density, 'per_count', str(top),
                                      'restart', 'seconds'),
        'restart_interruption_s_at_%s' % top: _get(
            density, 'per_count', str(top), 'restart', 'interruption_s'),
        # The real nova-compute's figures when the cloud ran; the in-process
        # ones share one interpreter (and its lock) with all of Nova.
        'first_boot_vs_docker_load_ratio': _first(
            _get(cloud_images, 'first_boot_vs_docker_load_ratio'),
            _get(images, 'first_boot_vs_docker_load_ratio')),
        'first_boot_vs_docker_load_ratio_inprocess': _get(
            images, 'first_boot_vs_docker_load_ratio'),
        'cached_boot_bytes_downloaded': _first(
            _get(cloud_images, 'cached_boot_bytes_downloaded'),
            _get(images, 'cached_boot_bytes_downloaded')),
        'cloud_snapshot_s': _get(cloud_images, 'snapshot_api_s'),
        'soft_reboot_sigterm_p50_s': _get(inproc, 'power',
                                          'soft_reboot_sigterm', 'api',
                                          'p50_s'),
        'soft_reboot_sigterm_driver_p50_s': _get(
            inproc, 'power', 'soft_reboot_sigterm', 'driver', 'p50_s'),
        'snapshot_s': _get(images, 'snapshot', 'api_s'),
        # Issue 25's comparisons: the fake driver's concurrent boots, Rally,
        # and the boots spread over two hosts.
        'fake_driver_concurrent20_wall_s': _get(
            cloud, 'fake_driver', 'concurrent20', 'boot_wall_s'),
        'rally_boot_server_p50_s': _get(cloud, 'rally', 'nova.boot_server',
                                        'p50_s'),
        'two_node_concurrent20_wall_s': _get(cloud, 'two_node',
                                             'concurrent20', 'boot_wall_s'),
        'two_node_api_boot_p50_s': _slower_host(_get(cloud, 'two_node')),
        # The cloud's own nova-compute restarted with servers on its host.
        'cloud_restart_servers': _get(cloud, 'restart', 'servers'),
        'cloud_restart_command_s': _get(cloud, 'restart', 'command_s'),
        'cloud_restart_startup_s': _get(cloud, 'restart', 'startup_s'),
        'cloud_restart_interruption_s': _get(cloud, 'restart',
                                             'interruption_s'),
    }
    h['spawn_ratio'] = _ratio(h['driver_spawn_p50_s'],
                              h['floor_spawn_p50_s'])
    h['spawn_ratio_vs_sandboxed_floor'] = _ratio(
        h['driver_spawn_p50_s'], h['floor_sandboxed_spawn_p50_s'])
    concurrent20 = (h['api_boot_concurrent20_wall_s'] or
                    h['inprocess_concurrent20_wall_s'])
    h['concurrent20_ratio'] = _ratio(concurrent20,
                                     h['floor_concurrent20_wall_s'])
    h['concurrent20_ratio_vs_sandboxed_floor'] = _ratio(
        concurrent20, h['floor_sandboxed_concurrent20_wall_s'])
    if top is not None and top != 100:
        # --quick: the acceptance keys name 100 servers; say what ran.
        for key in ('periodic_api_calls_at_100', 'compute_rss_mb_at_100',
                    'restart_s_at_100'):
            h.setdefault(key, None)
    reasons = {}
    sources = {
        'api_boot_p50_s': _reason(cloud, 'serial', 'boot'),
        'api_boot_p95_s': _reason(cloud, 'serial', 'boot'),
        'api_delete_p50_s': _reason(cloud, 'serial', 'delete'),
        'api_boot_concurrent10_wall_s': _reason(cloud, 'concurrent10'),
        'api_boot_concurrent20_wall_s': _reason(cloud, 'concurrent20'),
        'fake_driver_api_boot_p50_s': _reason(cloud, 'fake_driver'),
        'floor_spawn_p50_s': _reason(floor, 'serial'),
        'driver_spawn_p50_s': _reason(inproc, 'spawn'),
    }
    for key, value in h.items():
        if value is None:
            reasons[key] = sources.get(key) or (
                'not measured in this run (quick run, or its section '
                'failed or was not selected: see the section entries)')
    result = dict(raw)
    result.update(h)
    result['null_reasons'] = reasons
    result['targets'] = targets(h, top)
    return result


def _slower_host(two_node):
    """The larger of the two hosts' serial boot p50s (None if not run)."""
    values = [_get(two_node, key, 'boot', 'p50_s')
              for key in sorted(two_node or {}) if key.startswith('serial_')]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def targets(h, top):
    """Issues 15 and 25's targets, each met, missed or not measured."""
    def verdict(value, limit, text):
        if value is None or limit is None:
            return {'target': text, 'met': None, 'value': value,
                    'limit': limit}
        return {'target': text, 'met': value <= limit,
                'value': round(value, 3), 'limit': round(limit, 3)}
    floor = h['floor_spawn_p50_s']
    fake = h['fake_driver_api_boot_p50_s']
    fake_plus_floor = (fake + floor) * 1.15 if fake and floor else None
    out = {
        'spawn': verdict(h['spawn_ratio'], 1.3,
                         'driver spawn p50 <= 1.3 x floor'),
        'spawn_sandboxed': verdict(
            h['spawn_ratio_vs_sandboxed_floor'], 1.3,
            'driver spawn p50 <= 1.3 x sandboxed floor (same work)'),
        'api_boot': verdict(h['api_boot_p50_s'], 1.5,
                            'serial API-to-ACTIVE p50 <= 1.5 s'),
        'api_boot_vs_fake': verdict(
            h['api_boot_p50_s'],
            fake_plus_floor,
            'serial API-to-ACTIVE p50 <= (fake-driver boot + floor) x 1.15'),
        'api_boot_no_port_vs_fake': verdict(
            h['api_boot_no_port_p50_s'],
            fake_plus_floor,
            'like for like, no port on either: serial API-to-ACTIVE p50 '
            '<= (fake-driver boot + floor) x 1.15'),
        'concurrent20': verdict(h['concurrent20_ratio'], 1.5,
                                '20 concurrent boots <= 1.5 x 20 '
                                'concurrent floors'),
        'concurrent20_sandboxed': verdict(
            h['concurrent20_ratio_vs_sandboxed_floor'], 1.5,
            '20 concurrent boots <= 1.5 x 20 concurrent sandboxed floors'),
        'first_boot': verdict(h['first_boot_vs_docker_load_ratio'], 1.1,
                              'first boot <= 1.1 x docker load'),
        'soft_reboot': verdict(h['soft_reboot_sigterm_p50_s'], 1.0,
                               'soft reboot (SIGTERM honoured) < 1 s'),
    }
    p0, ptop = h['periodic_seconds_at_0'], h.get('periodic_seconds_at_%s'
                                                 % top)
    c0, ctop = h['periodic_api_calls_at_0'], h.get('periodic_api_calls_at_%s'
                                                   % top)
    out['periodic_time'] = verdict(_ratio(ptop, p0), 2.0,
                                   'periodic work at %s servers <= 2 x at 0'
                                   % top)
    d0, dtop = h['periodic_driver_seconds_at_0'], h.get(
        'periodic_driver_seconds_at_%s' % top)
    out['periodic_driver_time'] = verdict(
        _ratio(dtop, d0), 2.0,
        "the driver's share of the periodic work at %s servers <= 2 x at 0"
        % top)
    out['periodic_calls'] = {
        'target': 'constant engine calls per period (0 vs %s servers)' % top,
        'met': None if c0 is None or ctop is None else c0 == ctop,
        'value': ctop, 'limit': c0}
    out.update(_issue25_targets(h, top, verdict))
    return out


def _issue25_targets(h, top, verdict):
    fake20 = h['fake_driver_concurrent20_wall_s']
    floors20 = h['floor_sandboxed_concurrent20_wall_s']
    limit20 = 1.3 * (fake20 + floors20) if fake20 and floors20 else None
    return {
        'i25_spawn': verdict(
            h['spawn_ratio_vs_sandboxed_floor'], 1.3,
            'issue 25: driver spawn p50 <= 1.3 x sandboxed floor'),
        'i25_api_boot': verdict(
            h['api_boot_p50_s'], 2.5,
            'issue 25: cloud serial POST-to-ACTIVE p50 <= 2.5 s (poller)'),
        'i25_api_boot_rally': verdict(
            h['rally_boot_server_p50_s'], 2.5,
            'issue 25: the same with Rally boot_and_delete_server'),
        'i25_concurrent20': verdict(
            h['api_boot_concurrent20_wall_s'], limit20,
            'issue 25: 20 concurrent cloud boots <= 1.3 x (fake driver '
            "20 + 20 sandboxed floors)"),
        'i25_restart': verdict(
            h.get('restart_s_at_%s' % top), 8.0,
            'issue 25: nova-compute restart at %s servers <= 8 s' % top),
        'i25_restart_ping': verdict(
            h.get('restart_interruption_s_at_%s' % top), 0.0,
            'issue 25: no ping lost during that restart (seconds lost)'),
        'i25_restart_cloud': verdict(
            h['cloud_restart_startup_s'], 8.0,
            "issue 25: the cloud's nova-compute with %s servers, its start "
            'to the end of init_host <= 8 s' % h['cloud_restart_servers']),
        'i25_restart_cloud_ping': verdict(
            h['cloud_restart_interruption_s'], 0.0,
            'issue 25: no ping lost during that restart (seconds lost)'),
        'i25_first_boot': verdict(
            h['first_boot_vs_docker_load_ratio'], 1.2,
            'issue 25: first boot <= 1.2 x docker load'),
        'i25_cached_boot': verdict(
            h['cached_boot_bytes_downloaded'], 0,
            'issue 25: a cached boot downloads 0 bytes'),
    }


def _fmt(value, unit=''):
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return '%.3g%s' % (value, unit)
    return '%s%s' % (value, unit)


def markdown(result):
    """The Markdown table of latest.md (and the README)."""
    m = result.get('machine', {})
    lines = [
        '# nova-docker benchmark%s' % (' (quick run)' if result.get('quick')
                                       else ''),
        '',
        'Run %s UTC at commit %s on %s CPUs (%s), %s GiB, docker %s, %s; '
        'load average %s at start, %s at end.' % (
            m.get('date_utc'), m.get('commit'), m.get('cpus'),
            m.get('cpu_model'), m.get('memory_gib'), m.get('docker'),
            m.get('ovs'),
            ' '.join('%.1f' % x for x in m.get('load_average_at_start', [])),
            ' '.join('%.1f' % x for x in m.get('load_average_at_end', []))),
        '',
        '| Figure | Value | Russell 2014 |',
        '|---|---|---|',
    ]

    def row(name, key, unit=' s', russell=''):
        lines.append('| %s | %s | %s |' % (name, _fmt(result.get(key), unit),
                                           russell))
    row('floor spawn p50 (raw steps by hand)', 'floor_spawn_p50_s',
        russell='docker CLI 0.17 s')
    row('floor spawn p95', 'floor_spawn_p95_s')
    row('driver spawn p50 (cached image, 1 port)', 'driver_spawn_p50_s')
    row('driver spawn p95', 'driver_spawn_p95_s')
    row('sandboxed floor p50 (same steps, workload started after the '
        'wiring)', 'floor_sandboxed_spawn_p50_s')
    row('driver spawn / floor', 'spawn_ratio', unit='x')
    row('driver spawn / sandboxed floor', 'spawn_ratio_vs_sandboxed_floor',
        unit='x')
    row('in-process API to ACTIVE p50', 'inprocess_api_boot_p50_s')
    row('in-process fake-driver API to ACTIVE p50',
        'fake_driver_inprocess_api_boot_p50_s')
    row('cloud API POST /servers to ACTIVE p50', 'api_boot_p50_s',
        russell='3.53 s')
    row('cloud API to ACTIVE p95', 'api_boot_p95_s')
    row('cloud delete to gone p50', 'api_delete_p50_s', russell='3.57 s')
    row('cloud fake-driver API to ACTIVE p50 (no port)',
        'fake_driver_api_boot_p50_s')
    row('cloud API to ACTIVE p50, no port (like for like with the fake '
        'driver)', 'api_boot_no_port_p50_s')
    row('cloud 10 concurrent boots, wall', 'api_boot_concurrent10_wall_s')
    row('cloud 20 concurrent boots, wall', 'api_boot_concurrent20_wall_s')
    row('cloud fake driver, 20 concurrent boots (no port), wall',
        'fake_driver_concurrent20_wall_s')
    row('Rally boot_and_delete_server: nova.boot_server p50',
        'rally_boot_server_p50_s')
    row('two nodes: serial API to ACTIVE p50 (the slower host)',
        'two_node_api_boot_p50_s')
    row('two nodes: 20 concurrent boots spread over both, wall',
        'two_node_concurrent20_wall_s')
    row("cloud nova-compute restart (tools/cloud.sh restart-compute), "
        'servers on its host', 'cloud_restart_servers', unit='')
    row('the same restart, whole command', 'cloud_restart_command_s')
    row('the same restart, new process start to end of init_host',
        'cloud_restart_startup_s')
    row('the same restart, longest ping gap', 'cloud_restart_interruption_s')
    row('in-process 20 concurrent boots, wall',
        'inprocess_concurrent20_wall_s')
    row('20 concurrent floors, wall', 'floor_concurrent20_wall_s')
    row('20 concurrent sandboxed floors, wall',
        'floor_sandboxed_concurrent20_wall_s')
    row('soft reboot, image honouring SIGTERM, p50',
        'soft_reboot_sigterm_p50_s', russell='2.58 s')
    row('the same soft reboot, time in the driver',
        'soft_reboot_sigterm_driver_p50_s')
    row('snapshot of a 100 MB image, in-process', 'snapshot_s',
        russell='36.9 s')
    row('snapshot of a 100 MB image, cloud (to Glance ACTIVE)',
        'cloud_snapshot_s', russell='36.9 s')
    row('first boot load / docker load of the same archive (cloud when '
        'it ran)', 'first_boot_vs_docker_load_ratio', unit='x')
    row('the same, in-process', 'first_boot_vs_docker_load_ratio_inprocess',
        unit='x')
    row('cached boot bytes downloaded', 'cached_boot_bytes_downloaded',
        unit=' B')
    for key in sorted(k for k in result if k.startswith((
            'periodic_', 'compute_rss_', 'restart_'))):
        unit = ' MB' if 'rss' in key else (
            '' if 'calls' in key else ' s')
        row(key.replace('_', ' '), key, unit=unit,
            russell='49 MB/server' if key.startswith('compute_rss') else '')
    lines += ['', '## Targets (issues 15 and 25)', '',
              '| Target | Value | Limit | Met |', '|---|---|---|---|']
    for t in result.get('targets', {}).values():
        met = {True: 'yes', False: 'NO', None: 'not measured'}[t['met']]
        lines.append('| %s | %s | %s | %s |' % (
            t['target'], _fmt(t['value']), _fmt(t['limit']), met))
    lines += _power_table(result) + _density_table(result) + \
        _profile_table(result)
    if result.get('null_reasons'):
        lines += ['', '## Not measured, and why', '']
        for key, why in sorted(result['null_reasons'].items()):
            lines.append('- `%s`: %s' % (key, why))
    return '\n'.join(lines) + '\n'


def _power_table(result):
    power = _get(result, 'inprocess', 'power')
    if not power:
        return []
    lines = ['', '## Power operations (in-process API, p50)', '',
             '| Operation | API to state | in the driver |', '|---|---|---|']
    for name, entry in power.items():
        if isinstance(entry, dict) and 'api' in entry:
            lines.append('| %s | %s | %s |' % (
                name.replace('_', ' '), _fmt(entry['api']['p50_s'], ' s'),
                _fmt(entry['driver']['p50_s'], ' s')))
    return lines


def _density_table(result):
    density = _get(result, 'inprocess', 'density', 'per_count')
    if not density:
        return []
    lines = ['', '## Density, periodic tasks and restart', '',
             'Each periodic task: its seconds / engine API calls; in '
             "brackets the seconds spent inside the driver's methods "
             "(summed over Nova's threads), the rest is Nova's own.", '',
             '| servers | process RSS MB | containers MB (cgroup+shim PSS) | '
             'resource update | power sync | image cache | restart s | '
             'interruption s |',
             '|---|---|---|---|---|---|---|---|']
    for count in sorted(density, key=int):
        e = density[count]
        p = e['periodic']
        tasks = ['%s / %s (%s)' % (
            p[name]['seconds'], p[name]['engine_calls'],
            _fmt(p[name].get('driver_seconds')))
            for name in ('update_available_resource', 'sync_power_states',
                         'image_cache')]
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
            count, e['rss_mb'],
            round(e['containers']['cgroup_mb'] +
                  e['containers']['shim_pss_mb'], 1),
            tasks[0], tasks[1], tasks[2], e['restart']['seconds'],
            _fmt(e['restart']['interruption_s'])))
    return lines


def _profile_table(result):
    profile = _get(result, 'inprocess', 'spawn', 'profile')
    if not profile:
        return []
    lines = ['', '## Where a cached boot goes (per boot, mean)', '',
             '| Boundary | Call | Count | Seconds |', '|---|---|---|---|']
    for row in profile['calls'][:25]:
        lines.append('| %s | %s | %s | %s |' % (
            row['category'], row['call'].replace('|', '/'),
            row['count_per_boot'], row['seconds_per_boot']))
    return lines


def main():
    path = sys.argv[1]
    # Headline keys and targets again, from this code: the raw sections
    # are what was measured.
    result = headline(common.load(path))
    common.save(path, result)
    out = os.path.join(os.path.dirname(path), 'latest.md')
    with open(out, 'w') as f:
        f.write(markdown(result))
    common.progress('wrote %s', out)


if __name__ == '__main__':
    main()
