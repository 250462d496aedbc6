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

"""The driver measured in-process, as the functional harness runs it.

Nova's API, conductor, scheduler, placement and one nova-compute run in
this process (Nova's functional fixtures, through the harness in
tools/harness/, which the functional tests use too); the driver drives the
real engine, real OVS and real rootwrap/privsep. Ports bind to the
benchmark's own netdev bridge. This is a script that prints figures, not a
test, and it imports nothing of tests/.
"""

import gc
import os
import re
import subprocess
import tempfile
import time

# First: it chooses Nova's native threading mode before Nova is imported.
from tools.harness import base  # noqa: I100
from tools.harness import fixtures as nd_fixtures

from nova.tests.functional.api import client as api_client  # noqa: I100
import novadocker.conf
from novadocker.conf import docker as docker_conf
from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import driver as driver_module
from novadocker.virt.docker.image import load as image_load
from tools.benchmark import common
from tools.benchmark import probe

CONF = novadocker.conf.CONF
POLL = 0.05
# Traps SIGTERM, so a soft reboot needs no kill after reboot_timeout.
SIGTERM_COMMAND = ("/bin/sh -c 'trap \"exit 0\" TERM; "
                   "while :; do sleep 1 & wait $!; done'")


class _Case(base.DockerFunctionalTestBase):
    """The harness with a polling interval fit for timing."""

    params = {}
    results = {}

    def _setup_services(self):
        super()._setup_services()
        # The project's defaults, not the harness's short test timeouts.
        defaults = {opt.name: opt.default for opt in docker_conf.docker_opts}
        self.flags(reboot_timeout=defaults['reboot_timeout'], group='docker')
        # Density boots 100 servers: Nova's default quota is 10 instances,
        # and 2 CPUs x the default VCPU ratio place only 32 one-vCPU ones.
        self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        self.flags(cpu_allocation_ratio=128.0)

    def wait_status(self, server_id, status, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.api.get_server(server_id)
            if found['status'] == status and \
                    found.get('OS-EXT-STS:task_state') is None:
                return found
            if found['status'] == 'ERROR' and status != 'ERROR':
                msg = 'server %s went to ERROR: %s' % (server_id,
                                                       found.get('fault'))
                raise common.BenchmarkError(msg)
            time.sleep(POLL)
        msg = 'server %s never reached %s' % (server_id, status)
        raise common.BenchmarkError(msg)

    def wait_gone(self, server_id, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api.get_server(server_id)
            except api_client.OpenStackApiNotFoundException:
                return
            time.sleep(POLL)
        msg = 'server %s was never deleted' % server_id
        raise common.BenchmarkError(msg)

    def post(self, networked=True, image_id=nd_fixtures.BUSYBOX_IMAGE_ID):
        networks = [{'uuid': self.net}] if networked else 'none'
        server = self._build_server(image_uuid=image_id, networks=networks,
                                    flavor_id=self.flavor)
        created = self.api.post_server({'server': server})
        self.booted.append(created['id'])
        return created['id']

    def boot_timed(self, networked=True, **kwargs):
        start = time.perf_counter()
        server_id = self.post(networked, **kwargs)
        server = self.wait_status(server_id, 'ACTIVE')
        return server, time.perf_counter() - start

    def delete_timed(self, server_id):
        start = time.perf_counter()
        self.api.delete_server(server_id)
        self.wait_gone(server_id)
        return time.perf_counter() - start

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                          ephemeral=0)
        self.net = nd_fixtures.OVSNeutronFixture.network_1['id']
        self.neutron.vif_details['bridge_name'] = common.BRIDGE


class DriverBench(_Case):
    """Every in-process section, one after the other, in one Nova."""

    def test_benchmark(self):
        sections = self.params['sections']
        # Density before images: the 100 MB image and its snapshot stay in
        # the Glance stand-in's memory, which is this process's RSS.
        for name in ('spawn', 'whatif', 'concurrent', 'power', 'density',
                     'images'):
            if name not in sections:
                self.results[name] = common.skipped(
                    'section not selected on the command line')
                continue
            common.progress('== in-process section: %s', name)
            try:
                self.results[name] = getattr(self, 'section_' + name)()
            except Exception as e:
                common.progress('section %s FAILED: %r', name, e)
                partial = self.results.get(name)
                if isinstance(partial, dict) and partial.get('per_count'):
                    # What was measured before the failure stays.
                    partial['error'] = 'failed: %r' % (e,)
                else:
                    self.results[name] = {'skipped': True,
                                          'reason': 'failed: %r' % (e,)}
            # Keep what is measured if the run is cut short.
            self.params.get('checkpoint', lambda results: None)(
                self.results)

    # -- driver spawn and its profile ------------------------------------

    def section_spawn(self):
        runs = self.params['runs']
        server, _ = self.boot_timed()  # warm-up: privsep daemons, sandbox
        self.delete_timed(server['id'])
        spawn, api, delete, profiles, boots = [], [], [], [], []
        for i in range(runs):
            window = probe.open_window('boot')
            server, seconds = self.boot_timed()
            boots.append(window.close())
            api.append(seconds)
            spawn.append(sum(window.calls[('driver', 'spawn')]))
            profiles.append(probe.captured['spawn'][-1])
            delete.append(self.delete_timed(server['id']))
            common.progress('driver spawn %d/%d: %.3f s (API to ACTIVE '
                            '%.3f s, delete %.3f s)', i + 1, runs, spawn[-1],
                            api[-1], delete[-1])
        return {'driver_spawn': common.summary(spawn),
                'api_boot_inprocess': common.summary(api),
                'api_delete_inprocess': common.summary(delete),
                'profile': spawn_profile(profiles),
                'boot_profile': spawn_profile(boots)}

    def section_concurrent(self):
        out = {}
        for width in self.params['concurrency']:
            window = probe.open_window('concurrent')
            start = time.perf_counter()
            ids = [self.post() for _ in range(width)]
            for server_id in ids:
                self.wait_status(server_id, 'ACTIVE', timeout=600)
            wall = time.perf_counter() - start
            window.close()
            spawns = window.calls[('driver', 'spawn')]
            start = time.perf_counter()
            for server_id in ids:
                self.api.delete_server(server_id)
            for server_id in ids:
                self.wait_gone(server_id, timeout=600)
            out['concurrent%d' % width] = {
                'boot_wall_s': round(wall, 3),
                'delete_wall_s': round(time.perf_counter() - start, 3),
                'driver_spawn_each': common.summary(spawns)}
            common.progress('in-process x%d concurrent boot: wall %.2f s',
                            width, wall)
        return out

    # -- what the recommended changes would save ---------------------------

    def section_whatif(self):
        """Time the single steps the recommendations remove or replace."""
        import docker
        reps = 20
        url = CONF.docker.api_url

        def client_call(version):
            client = docker.DockerClient(base_url=url, version=version)
            try:
                client.api.inspect_image(nd_fixtures.BUSYBOX_IMAGE)
            finally:
                client.close()
        out = {}
        for name, version in (('client_auto_version', 'auto'),
                              ('client_pinned_version', '1.41')):
            samples = []
            for _ in range(reps):
                start = time.perf_counter()
                client_call(version)
                samples.append(time.perf_counter() - start)
            out[name + '_s_p50'] = round(common.percentile(samples, 50), 4)
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            subprocess.run(['ovs-vsctl', '--timeout=5', 'br-exists',
                            common.BRIDGE], check=True)
            samples.append(time.perf_counter() - start)
        out['ovs_vsctl_br_exists_s_p50'] = round(
            common.percentile(samples, 50), 4)
        from ovsdbapp.backend.ovs_idl import connection
        from ovsdbapp.schema.open_vswitch import impl_idl
        idl = connection.OvsdbIdl.from_server(
            CONF.os_vif_ovs.ovsdb_connection, 'Open_vSwitch')
        api = impl_idl.OvsdbIdl(connection.Connection(idl, timeout=10))
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            api.br_exists(common.BRIDGE).execute(check_error=True)
            samples.append(time.perf_counter() - start)
        out['ovsdb_native_br_exists_s_p50'] = round(
            common.percentile(samples, 50), 4)
        common.progress('what-if: %s', out)
        return out

    # -- power operations ------------------------------------------------

    def action_timed(self, server_id, body, status, driver_method):
        window = probe.open_window('action')
        start = time.perf_counter()
        self.api.post_server_action(server_id, body)
        self.wait_status(server_id, status)
        api = time.perf_counter() - start
        window.close()
        return api, sum(window.calls[('driver', driver_method)])

    def section_power(self):
        reps = self.params['power_runs']
        shell, _ = self.boot_timed()
        ops = [('stop', {'os-stop': None}, 'SHUTOFF', 'power_off'),
               ('start', {'os-start': None}, 'ACTIVE', 'power_on'),
               ('hard_reboot', {'reboot': {'type': 'HARD'}}, 'ACTIVE',
                'reboot'),
               ('pause', {'pause': None}, 'PAUSED', 'pause'),
               ('unpause', {'unpause': None}, 'ACTIVE', 'unpause')]
        out = {}
        samples = {}
        for _ in range(reps):
            for name, body, status, method in ops:
                api, drv = self.action_timed(shell['id'], body, status,
                                             method)
                samples.setdefault(name, ([], []))
                samples[name][0].append(api)
                samples[name][1].append(drv)
                common.progress('%s: API %.3f s, driver %.3f s', name, api,
                                drv)
        # A shell as PID 1 ignores SIGTERM: one run, it waits the timeout.
        api, drv = self.action_timed(shell['id'],
                                     {'reboot': {'type': 'SOFT'}},
                                     'ACTIVE', 'reboot')
        samples['soft_reboot_shell'] = ([api], [drv])
        common.progress('soft reboot (shell, reboot_timeout %s s): API '
                        '%.3f s, driver %.3f s', CONF.docker.reboot_timeout,
                        api, drv)
        image_id = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE),
            'busybox-sigterm', os_command_line=SIGTERM_COMMAND)
        honours, _ = self.boot_timed(image_id=image_id)
        for _ in range(max(reps, 3)):
            api, drv = self.action_timed(honours['id'],
                                         {'reboot': {'type': 'SOFT'}},
                                         'ACTIVE', 'reboot')
            samples.setdefault('soft_reboot_sigterm', ([], []))
            samples['soft_reboot_sigterm'][0].append(api)
            samples['soft_reboot_sigterm'][1].append(drv)
            common.progress('soft reboot (SIGTERM honoured): API %.3f s, '
                            'driver %.3f s', api, drv)
        for name, (api, drv) in samples.items():
            out[name] = {'api': common.summary(api),
                         'driver': common.summary(drv)}
        out['reboot_timeout_s'] = CONF.docker.reboot_timeout
        for server in (shell, honours):
            self.delete_timed(server['id'])
        return out

    # -- images ----------------------------------------------------------

    def section_images(self):
        client = self.docker()
        size_mb = self.params['image_mb']
        tag = '%s/big:%d' % (common.PREFIX, os.getpid())
        tmp = tempfile.mkdtemp(prefix=common.PREFIX)
        archive = os.path.join(tmp, 'big.tar')
        try:
            return self._images(client, size_mb, tag, archive)
        finally:
            subprocess.run(['rm', '-rf', tmp])
            subprocess.run(['docker', 'rmi', '-f', tag], capture_output=True)

    def _images(self, client, size_mb, tag, archive):
        common.random_image_archive(nd_fixtures.BUSYBOX_IMAGE, tag, archive,
                                    size_mb)
        with open(archive, 'rb') as f:
            data = f.read()
        image_id = self.glance.add_image(data, 'big')
        common.progress('images: %d MB archive registered', len(data) >> 20)
        window = probe.open_window('first boot')
        first, first_api = self.boot_timed(image_id=image_id)
        window.close()
        first_spawn = sum(window.calls[('driver', 'spawn')])
        ensure = sum(window.calls[('images', 'ensure_image')])
        first_detail = [
            {'category': c, 'call': label, 'count': n, 'seconds': sec}
            for c, label, n, sec in window.detail()[:12]]
        first_bytes = self.glance.bytes_served[image_id]
        engine_image = self.workload(first).attrs['Image']
        window = probe.open_window('cached boot')
        cached, cached_api = self.boot_timed(image_id=image_id)
        window.close()
        cached_bytes = self.glance.bytes_served[image_id] - first_bytes
        cached_ensure = sum(window.calls[('images', 'ensure_image')])
        common.progress('images: first boot %.2f s (ensure_image %.2f s, '
                        '%d bytes), cached boot %.2f s (%d bytes)',
                        first_api, ensure, first_bytes, cached_api,
                        cached_bytes)
        snap = self._snapshot(cached)
        for server in (first, cached):
            self.delete_timed(server['id'])
        # Now time docker load of the very same archive, cold as well.
        subprocess.run(['docker', 'rmi', '-f', engine_image],
                       capture_output=True)
        loads = common.docker_load_seconds(archive, tag,
                                           self.params['load_runs'])
        load_p50 = common.percentile(loads, 50)
        common.progress('images: docker load -i %.2f s', load_p50)
        return {
            'archive_mb': round(len(data) / 1048576.0, 1),
            'first_boot_api_s': round(first_api, 3),
            'first_boot_spawn_s': round(first_spawn, 3),
            'first_boot_ensure_image_s': round(ensure, 3),
            'first_boot_bytes_downloaded': first_bytes,
            'first_boot_profile': first_detail,
            'docker_load': common.summary(loads),
            'first_boot_vs_docker_load_ratio': round(ensure / load_p50, 3),
            'cached_boot_api_s': round(cached_api, 3),
            'cached_boot_ensure_image_s': round(cached_ensure, 4),
            'cached_boot_bytes_downloaded': cached_bytes,
            'snapshot': snap,
        }

    def _snapshot(self, server):
        window = probe.open_window('snapshot')
        start = time.perf_counter()
        self.api.post_server_action(server['id'], {'createImage': {
            'name': 'ndbench-snap'}})
        self.wait_status(server['id'], 'ACTIVE')
        api = time.perf_counter() - start
        window.close()
        drv = sum(window.calls[('driver', 'snapshot')])
        common.progress('snapshot: API %.2f s, driver %.2f s', api, drv)
        return {'api_s': round(api, 3), 'driver_s': round(drv, 3)}

    # -- density, periodic tasks, restart ---------------------------------

    def section_density(self):
        counts = self.params['counts']
        a, _ = self.boot_timed()
        b, _ = self.boot_timed()
        bulk = []
        out = {'probe_servers': 2, 'per_count': {}}
        for count in counts:
            width = self.params.get('density_batch') or 10
            while len(bulk) < count:
                batch = [self.post(networked=False)
                         for _ in range(min(width, count - len(bulk)))]
                for server_id in batch:
                    self.wait_status(server_id, 'ACTIVE', timeout=600)
                bulk.extend(batch)
            common.progress('density: %d idle servers (+2 networked)',
                            len(bulk))
            gc.collect()
            time.sleep(2)
            entry = {'rss_mb': round(common.rss_mb(), 1),
                     'containers': container_memory(self.hosts)}
            entry['periodic'] = self.periodic()
            entry['one_raw_list_call'] = self.raw_list_cost()
            entry['restart'] = self.restart_with_probe(a, b)
            out['per_count'][str(count)] = entry
            # Keep each count's figures if the run is cut short.
            self.results['density'] = out
            self.params.get('checkpoint', lambda results: None)(
                self.results)
            common.progress(
                'density %d: RSS %.0f MB, periodic %s, restart %.2f s, '
                'interruption %s s', count, entry['rss_mb'],
                {k: (v['seconds'], v['engine_calls'])
                 for k, v in entry['periodic'].items()},
                entry['restart']['seconds'],
                entry['restart']['interruption_s'])
        start = time.perf_counter()
        everything = set(bulk + [a['id'], b['id']])
        for server_id in everything:
            self.api.delete_server(server_id)
        # One listing a second, not one GET per server every 50 ms: with a
        # hundred deletes in flight the pollers would starve this process's
        # Nova of its interpreter.
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            left = everything & {s['id'] for s in self.api.get_servers()}
            if not left:
                break
            time.sleep(1)
        else:
            raise common.BenchmarkError('%d servers not deleted in 1800 s'
                                        % len(left))
        out['delete_all_wall_s'] = round(time.perf_counter() - start, 2)
        return out

    def periodic(self):
        manager = self.compute.manager
        from nova import context as nova_context
        admin = nova_context.get_admin_context()

        def sync():
            manager._sync_power_states(admin)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with manager.syncs_in_progress() as syncs:
                    if not syncs:
                        return
                time.sleep(0.01)

        tasks = {
            'update_available_resource':
                lambda: manager.update_available_resource(admin),
            'sync_power_states': sync,
            'image_cache': lambda: manager._run_image_cache_manager_pass(
                admin),
        }
        out = {}
        for name, task in tasks.items():
            window = probe.open_window(name)
            task()
            window.close()
            totals = window.totals()
            out[name] = {
                'seconds': round(window.seconds, 3),
                # Summed over Nova's threads: the driver's share of the
                # task, engine calls included; the rest is Nova's own.
                'driver_seconds': totals.get('driver', {}).get('seconds',
                                                               0.0),
                'engine_calls': totals.get('engine API', {}).get('count', 0),
                'engine_calls_by_path': _by_label(window, 'engine API'),
                'driver_calls': _by_label(window, 'driver'),
            }
        return out

    def raw_list_cost(self):
        """What one raw list of this host's containers costs.

        The price of serving every get_info of a power-state sync from one
        engine call.
        """
        labels = {'label': '%s=%s' % (base.LABEL_HOST, self.compute.host)}
        with docker_client.docker_client('list') as client:
            start = time.perf_counter()
            found = client.api.containers(all=True, filters=labels)
            raw = time.perf_counter() - start
            start = time.perf_counter()
            client.containers.list(all=True, filters=labels)
            sdk = time.perf_counter() - start
        return {'seconds': round(raw, 4), 'containers': len(found),
                'sdk_list_with_inspects_s': round(sdk, 4)}

    def restart_with_probe(self, a, b):
        """Restart nova-compute while a pings b; time both."""
        target = b['addresses']['private'][0]['addr']
        workload = self.workload(a)
        workload.exec_run(['sh', '-c', common.ping_loop(target)],
                          detach=True)
        time.sleep(2)
        window = probe.open_window('restart')
        start = time.perf_counter()
        self.compute = self.restart_compute_service(
            self.compute, keep_hypervisor_state=False)
        seconds = time.perf_counter() - start
        window.close()
        time.sleep(3)
        workload = self.workload(a)
        _, raw = workload.exec_run(['sh', '-c', common.PING_STOP])
        samples = common.ping_samples(raw.decode())
        return {'seconds': round(seconds, 3),
                'engine_calls': window.totals().get(
                    'engine API', {}).get('count', 0),
                'driver_calls': _by_label(window, 'driver'),
                'interruption_s': common.interruption(samples),
                'probes': len(samples),
                'probes_lost': sum(1 for _, ok in samples if not ok),
                'reachable_after': bool(samples and samples[-1][1])}


class FakeDriverBench(_Case):
    """Nova's own fake driver in the same harness: Nova's share alone."""

    def _configure(self):
        super()._configure()
        self.flags(compute_driver='fake.SmallFakeDriver')

    def test_benchmark(self):
        runs = self.params['runs']
        self.boot_timed()
        boots, deletes = [], []
        for i in range(runs):
            server, seconds = self.boot_timed()
            boots.append(seconds)
            deletes.append(self.delete_timed(server['id']))
        common.progress('fake driver in-process: API to ACTIVE p50 %.3f s',
                        common.percentile(boots, 50))
        # No concurrent boots here: with 20 in flight the harness's
        # CellDatabases fixture deadlocked (its reader-writer lock, seen
        # with py-spy, 1 Dec 2026); the cloud section measures concurrency.
        self.results['fake_driver'] = {
            'api_boot_inprocess': common.summary(boots),
            'api_delete_inprocess': common.summary(deletes)}


def _by_label(window, category):
    found = {}
    for (c, label), samples in window.calls.items():
        if c == category:
            found[label] = len(samples)
    return found


def container_memory(hosts):
    """Memory of this run's containers (cgroup) and their shims (PSS)."""
    ids = subprocess.run(
        ['docker', 'ps', '-q', '--no-trunc'] + sum(
            (['--filter', 'label=%s=%s' % (base.LABEL_HOST, h)]
             for h in hosts), []),
        capture_output=True, text=True).stdout.split()
    cgroup_bytes = 0
    shim_kb = 0
    for cid in ids:
        for path in ('/sys/fs/cgroup/system.slice/docker-%s.scope/'
                     'memory.current' % cid,
                     '/sys/fs/cgroup/docker/%s/memory.current' % cid,
                     '/sys/fs/cgroup/memory/docker/%s/memory.usage_in_bytes'
                     % cid):
            if os.path.exists(path):
                with open(path) as f:
                    cgroup_bytes += int(f.read())
                break
    shims = subprocess.run(['pgrep', '-f', 'containerd-shim'],
                           capture_output=True, text=True).stdout.split()
    wanted = set(ids)
    for pid in shims:
        try:
            with open('/proc/%s/cmdline' % pid) as f:
                cmd = f.read()
        except OSError:
            continue
        if any(cid in cmd for cid in wanted):
            shim_kb += _pss_kb(pid)
    return {'count': len(ids), 'cgroup_mb': round(cgroup_bytes / 1048576.0, 1),
            'shim_pss_mb': round(shim_kb / 1024.0, 1)}


def _pss_kb(pid):
    """Proportional set size of a process (shared pages divided)."""
    try:
        with open('/proc/%s/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def spawn_profile(windows):
    """Median cost per boundary of a cached-image boot, and its calls."""
    per_category = {}
    per_label = {}
    for window in windows:
        for category, entry in window.totals().items():
            per_category.setdefault(category, []).append(entry)
        for category, label, count, seconds in window.detail():
            per_label.setdefault((category, label), []).append(
                (count, seconds))
    out = {'categories': {}, 'calls': []}
    boundaries = ('engine API', 'privsep', 'OVSDB transaction', 'subprocess')
    rest = [w.seconds - sum(e['seconds'] for c, e in w.totals().items()
                            if c in boundaries) for w in windows]
    out['outside_boundaries_s_p50'] = round(common.percentile(rest, 50), 4)
    out['window_s_p50'] = round(common.percentile(
        [w.seconds for w in windows], 50), 4)
    for category, entries in per_category.items():
        out['categories'][category] = {
            'count_p50': common.percentile([e['count'] for e in entries], 50),
            'seconds_p50': round(common.percentile(
                [e['seconds'] for e in entries], 50), 4)}
    n = len(windows)
    for (category, label), rows in sorted(
            per_label.items(), key=lambda kv: -sum(s for _, s in kv[1])):
        out['calls'].append({
            'category': category, 'call': label,
            'count_per_boot': round(sum(c for c, _ in rows) / n, 2),
            'seconds_per_boot': round(sum(s for _, s in rows) / n, 4)})
    return out


def _run_case(case_class, params, results):
    import unittest
    case_class.params = params
    case_class.results = results
    case = case_class('test_benchmark')
    outcome = unittest.TestResult()
    case.run(outcome)
    for _test, trace in outcome.errors + outcome.failures:
        common.progress('%s failed:\n%s', case_class.__name__, trace)
        return re.sub(r'\s+', ' ', trace.strip().splitlines()[-1])
    return None


def run(params):
    """All in-process sections; returns their results."""
    probe.install(driver_module.DockerDriver)
    # Patched on its module: the driver calls it through the module.
    probe._patch(image_load, 'ensure_image', 'images',
                 lambda *a, **k: 'ensure_image')
    results = {}
    error = _run_case(DriverBench, params, results)
    if error:
        results.setdefault('error', error)
    if 'fake' in params['sections']:
        common.progress('== in-process section: fake driver')
        fake = {}
        error = _run_case(FakeDriverBench, params, fake)
        results['fake_driver'] = fake.get('fake_driver') or {
            'skipped': True, 'reason': 'failed: %s' % error}
    else:
        results['fake_driver'] = common.skipped('section not selected')
    return results
