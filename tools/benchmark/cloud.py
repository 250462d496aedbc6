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

"""Through the project's real single-node cloud (tools/cloud.sh).

Uses a cloud that is already up (``OS_CLOUD=nova-docker-admin``), never
starts or stops it (``tools/benchmark.sh --start-cloud`` does), and
deletes every server and image it creates (all named ``ndbench-*``).
Measured with openstacksdk, polling every 0.1 s:
``POST /servers`` to ACTIVE and ``DELETE`` to gone, serially and with
concurrent requests; the same boot against a second nova-compute of this
benchmark's own running Nova's fake driver (``fake.SmallFakeDriver``, on
host ``ndbench-fake-<pid>``), which it starts, and removes with its
service record afterwards; Rally's NovaServers.boot_and_delete_server when
rally-openstack is installed in a virtualenv of the benchmark's own, told
to poll as often as the benchmark does (RALLY_POLL) instead of its
defaults (a 1 s wait, then every 2 s), which would round every boot up.
With ``tools/cloud.sh up --computes 2`` the single-host rows name the
first host; the two-node rows spread the boots over both. It restarts the
first host's nova-compute once (``cloud_restart``), with as many idle
servers on it as the density section's largest count, or as Placement
fits there if fewer.
"""

import concurrent.futures
import configparser
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from tools.benchmark import common

CLOUD = os.environ.get('OS_CLOUD', 'nova-docker-admin')
CLOUD_HOME = os.environ.get('NOVA_DOCKER_CLOUD_HOME',
                            '/opt/nova-docker-cloud')
# The first host's nova-compute log (the rows below read it).
COMPUTE_LOG = os.path.join(CLOUD_HOME, 'log', 'nova-compute.log')
FLAVOR, IMAGE, NETWORK = 'docker.small', 'nova-docker-busybox', 'private'
# The first compute host of tools/cloud.sh (its COMPUTE_HOST).
PRIMARY_HOST = 'nova-docker-cloud'
RALLY_VENV = os.environ.get(
    'NDBENCH_RALLY_VENV', os.path.join(common.REPO, '.tox', 'benchmark-rally'))
POLL = 0.1
# Rally's waits, set to the benchmark's own polling.
RALLY_POLL = {'nova_server_boot_prepoll_delay': 0,
              'nova_server_boot_poll_interval': POLL,
              'nova_server_delete_prepoll_delay': 0,
              'nova_server_delete_poll_interval': POLL}


def _why_not():
    if not os.path.exists('/etc/openstack/clouds.yaml'):
        return ('no /etc/openstack/clouds.yaml: no cloud is up (run '
                'tools/cloud.sh up first, or tools/benchmark.sh '
                '--start-cloud)')
    status = subprocess.run(
        [os.path.join(common.REPO, 'tools', 'cloud.sh'), 'status'],
        capture_output=True, text=True)
    if status.returncode:
        down = [line for line in status.stdout.splitlines()
                if 'down' in line.lower()]
        return ('tools/cloud.sh status: the cloud is not up (%s); run '
                'tools/cloud.sh up, or tools/benchmark.sh --start-cloud'
                % ('; '.join(down[:3]) or 'exit %d' % status.returncode))
    return None


def run(params):
    why = _why_not()
    if why:
        return common.skipped(why)
    import openstack
    try:
        conn = openstack.connect(cloud=CLOUD)
        ids = {'flavor': conn.compute.find_flavor(FLAVOR,
                                                  ignore_missing=False).id,
               'image': conn.image.find_image(IMAGE,
                                              ignore_missing=False).id,
               'network': conn.network.find_network(
                   NETWORK, ignore_missing=False).id}
    except Exception as e:
        return common.skipped('cloud %s not usable: %s' % (CLOUD, e))
    # 20 servers at once: more than the default quota of 10 instances.
    project = conn.current_project_id
    quota = conn.get_compute_quotas(project)
    kept = {k: quota[k] for k in ('instances', 'cores', 'ram')}
    conn.set_compute_quotas(project, instances=-1, cores=-1, ram=-1)
    try:
        return _run(conn, ids, params)
    finally:
        conn.set_compute_quotas(project, **kept)


def _primary_host(conn):
    """The host whose log and pid file this section reads, when it is up.

    With a second compute node up the scheduler would spread the boots
    over both: the single-host rows (and the image section, which reads
    this host's log) name this one, the two-node rows both.
    """
    try:
        hosts = _docker_hosts(conn)
    except Exception:
        return None
    return PRIMARY_HOST if PRIMARY_HOST in hosts and len(hosts) > 1 \
        else None


def _run(conn, ids, params):
    primary = _primary_host(conn)
    bench = _Cloud(conn, ids, host=primary)
    out = {'cloud': CLOUD, 'host': primary or 'any (one compute host up)'}
    rss = _compute_rss()
    out['compute_rss_mb_idle'] = rss
    try:
        bench.boot_and_delete()  # warm-up
        out['serial'] = bench.serial(params['cloud_runs'])
        for width in params['cloud_concurrency']:
            out['concurrent%d' % width] = bench.concurrent(width)
            if width == max(params['cloud_concurrency']):
                out['compute_rss_mb_with_%d' % width] = \
                    bench.rss_at_concurrent
    except Exception as e:
        out['error'] = 'failed: %r' % (e,)
        common.progress('cloud section failed: %r', e)
    finally:
        bench.cleanup()
    try:
        from tools.benchmark import cloud_images
        out['images'] = cloud_images.run(
            _Cloud(conn, ids, host=primary), conn,
            COMPUTE_LOG,
            params['image_mb'])
    except Exception as e:
        out['images'] = {'skipped': True, 'reason': 'failed: %r' % (e,)}
        common.progress('cloud images failed: %r', e)
    try:
        from tools.benchmark import cloud_restart
        out['restart'] = cloud_restart.run(
            _Cloud(conn, ids, host=primary), conn,
            COMPUTE_LOG,
            max(params['counts']))
    except Exception as e:
        out['restart'] = {'skipped': True, 'reason': 'failed: %r' % (e,)}
        common.progress('cloud restart failed: %r', e)
    out['two_node'] = _two_node(conn, ids, params)
    out['fake_driver'] = _fake_driver(conn, ids, params)
    out['rally'] = _rally(conn, ids, params)
    return out


def _docker_hosts(conn):
    """The hosts of up nova-compute services, without this benchmark's."""
    return sorted(s.host for s in conn.compute.services(binary='nova-compute')
                  if s.state == 'up' and not s.host.startswith(
                      common.PREFIX))


def _two_node(conn, ids, params):
    """Boots spread over both hosts of ``tools/cloud.sh up --computes 2``.

    Each boot names its host (POST /servers host=, microversion 2.74), in
    turn, so both hosts get the same share: serial boots per host, and
    the widest concurrent width split between them.
    """
    try:
        hosts = _docker_hosts(conn)
    except Exception as e:
        return common.skipped('two-node: cannot list compute services: %r'
                              % (e,))
    if len(hosts) < 2:
        return common.skipped(
            'two-node: %d nova-compute host up (%s); tools/cloud.sh up '
            '--computes 2 brings up two' % (len(hosts), ', '.join(hosts)))
    hosts = hosts[:2]
    bench = _Cloud(conn, ids)
    out = {'hosts': hosts}
    try:
        for host in hosts:
            # The first boot on a host starts its privsep daemons.
            bench.boot_and_delete(host=host)
            out['serial_' + host] = bench.serial(
                params['cloud_runs'], label='two-node %s' % host, host=host)
        width = max(params['cloud_concurrency'])
        out['concurrent%d' % width] = bench.concurrent(width,
                                                       spread_over=hosts)
    except Exception as e:
        common.progress('two-node section failed: %r', e)
        out['error'] = 'failed: %r' % (e,)
    finally:
        bench.cleanup()
    return out


class _Cloud(object):

    def __init__(self, conn, ids, host=None):
        self.conn = conn
        self.ids = ids
        # Where boots go unless told otherwise (None: the scheduler picks).
        self.host = host
        self.created = []
        self.rss_at_concurrent = None
        self.posted_at = {}

    def create(self, networks=None, host=None, name=None):
        body = {'server': {
            'name': name or 'ndbench-%s' % uuid.uuid4().hex[:8],
            'imageRef': self.ids['image'], 'flavorRef': self.ids['flavor'],
            'networks': networks or [{'uuid': self.ids['network']}]}}
        host = host or self.host
        if host:
            body['server']['host'] = host
        posted = time.time()
        resp = self.conn.compute.post(
            '/servers', json=body,
            headers={'OpenStack-API-Version': 'compute 2.74'})
        if resp.status_code >= 400:
            msg = 'POST /servers: %s %s' % (resp.status_code,
                                            resp.text[:300])
            raise common.BenchmarkError(msg)
        server_id = resp.json()['server']['id']
        self.created.append(server_id)
        self.posted_at[server_id] = posted
        return server_id

    def wait_active(self, server_id, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.conn.compute.get_server(server_id)
            if server.status == 'ACTIVE':
                return
            if server.status == 'ERROR':
                msg = 'server %s ERROR: %s' % (server_id, server.fault)
                raise common.BenchmarkError(msg)
            time.sleep(POLL)
        msg = 'server %s not ACTIVE in %s s' % (server_id, timeout)
        raise common.BenchmarkError(msg)

    def delete(self, server_id, timeout=300):
        self.conn.compute.delete_server(server_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.conn.compute.find_server(server_id) is None:
                self.created.remove(server_id)
                return
            time.sleep(POLL)
        msg = 'server %s not gone in %s s' % (server_id, timeout)
        raise common.BenchmarkError(msg)

    def boot_and_delete(self, **kwargs):
        start = time.perf_counter()
        server_id = self.create(**kwargs)
        self.wait_active(server_id)
        boot = time.perf_counter() - start
        start = time.perf_counter()
        self.delete(server_id)
        return boot, time.perf_counter() - start

    def serial(self, runs, label='cloud', **kwargs):
        boots, deletes = [], []
        first = len(self.posted_at)
        for i in range(runs):
            boot, delete = self.boot_and_delete(**kwargs)
            boots.append(boot)
            deletes.append(delete)
            common.progress('%s serial %d/%d: ACTIVE %.2f s, gone %.2f s',
                            label, i + 1, runs, boot, delete)
        ids = list(self.posted_at)[first:]
        return {'boot': common.summary(boots),
                'delete': common.summary(deletes),
                'timeline_from_compute_log': timeline(
                    {i: self.posted_at[i] for i in ids})}

    def concurrent(self, width, **kwargs):
        """*width* POSTs at once; one poller lists them (not one each)."""
        prefix = 'ndbench-c%s-' % uuid.uuid4().hex[:6]
        start = time.perf_counter()
        # spread_over: hosts to place the boots on in turn.
        hosts = kwargs.pop('spread_over', None)
        kwargs_of = [dict(kwargs, host=hosts[i % len(hosts)]) if hosts
                     else kwargs for i in range(width)]
        with concurrent.futures.ThreadPoolExecutor(width) as pool:
            ids = list(pool.map(lambda i: self.create(
                name=prefix + str(i), **kwargs_of[i]), range(width)))
        active = {}
        deadline = time.monotonic() + 900
        while len(active) < width and time.monotonic() < deadline:
            for server in self.conn.compute.servers(name='^' + prefix):
                if server.status == 'ERROR':
                    msg = 'server %s ERROR: %s' % (server.id, server.fault)
                    raise common.BenchmarkError(msg)
                if server.status == 'ACTIVE' and server.id not in active:
                    active[server.id] = time.perf_counter() - start
            time.sleep(0.25)
        wall = time.perf_counter() - start
        if len(active) < width:
            msg = '%d of %d servers not ACTIVE in 900 s' % (
                width - len(active), width)
            raise common.BenchmarkError(msg)
        self.rss_at_concurrent = _compute_rss()
        start = time.perf_counter()
        for server_id in ids:
            self.conn.compute.delete_server(server_id)
        while any(True for _ in self.conn.compute.servers(name='^' + prefix)):
            time.sleep(0.25)
        delete_wall = time.perf_counter() - start
        for server_id in ids:
            self.created.remove(server_id)
        common.progress('cloud x%d concurrent: boot wall %.2f s, delete '
                        'wall %.2f s', width, wall, delete_wall)
        return {'boot_wall_s': round(wall, 3),
                'delete_wall_s': round(delete_wall, 3),
                'each_boot': common.summary(list(active.values()))}

    def cleanup(self):
        for server_id in list(self.created):
            try:
                self.delete(server_id)
            except Exception as e:
                common.progress('could not delete %s: %s', server_id, e)


_EVENTS = (('claimed', 'Claim successful'),
           ('port_plugged', 'Plugged port'),
           ('spawned', 'seconds to spawn the instance'),
           ('built', 'seconds to build instance'))


def timeline(posted):
    """Where each boot went, from the cloud's nova-compute log (read).

    Seconds after POST /servers at which the compute service logged the
    claim, the driver's "Plugged port", the end of spawn and of the build;
    medians over the servers given ({server id: time of POST}).
    """
    path = COMPUTE_LOG
    if not posted or not os.path.exists(path):
        return None
    seen = {sid: {} for sid in posted}
    with open(path, errors='replace') as f:
        for line in f:
            for sid in posted:
                if sid in line:
                    break
            else:
                continue
            match = common.LOG_STAMP.match(line)
            if not match:
                continue
            stamp = common.log_seconds(match.group(1))
            for name, text in _EVENTS:
                if text in line and name not in seen[sid]:
                    seen[sid][name] = stamp - posted[sid]
    out = {}
    for name, _ in _EVENTS:
        values = [v[name] for v in seen.values() if name in v]
        if values:
            out[name + '_after_post_s_p50'] = round(
                common.percentile(values, 50), 3)
    return out


def _compute_rss():
    try:
        # The pid file holds "<pid> <start time>".
        with open(os.path.join(CLOUD_HOME, 'run', 'nova-compute.pid')) as f:
            return round(common.rss_mb(f.read().split()[0]), 1)
    except (OSError, ValueError, TypeError):
        return None


def _fake_driver(conn, ids, params):
    """A second nova-compute of our own with Nova's fake driver."""
    venv = os.path.join(CLOUD_HOME, 'venv')
    cpu_conf = os.path.join(CLOUD_HOME, 'etc', 'nova', 'nova-cpu.conf')
    api_conf = os.path.join(CLOUD_HOME, 'etc', 'nova', 'nova.conf')
    for path in (cpu_conf, api_conf, os.path.join(venv, 'bin',
                                                  'nova-compute')):
        if not os.path.exists(path):
            return common.skipped('fake driver: %s is missing' % path)
    host = 'ndbench-fake-%d' % os.getpid()
    tmp = tempfile.mkdtemp(prefix='ndbench-fake-')
    conf = configparser.ConfigParser(interpolation=None, strict=False)
    conf.optionxform = str
    conf.read(cpu_conf)
    conf['DEFAULT']['host'] = host
    conf['DEFAULT']['compute_driver'] = 'fake.SmallFakeDriver'
    conf['DEFAULT']['state_path'] = tmp
    conf['DEFAULT']['instances_path'] = os.path.join(tmp, 'instances')
    conf['DEFAULT']['log_file'] = os.path.join(tmp, 'nova-compute.log')
    path = os.path.join(tmp, 'nova-cpu.conf')
    with open(path, 'w') as f:
        conf.write(f)
    proc = subprocess.Popen([os.path.join(venv, 'bin', 'nova-compute'),
                             '--config-file', path],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    bench = _Cloud(conn, ids)
    out = {}
    try:
        if not _wait_service(conn, host):
            return common.skipped('fake driver: nova-compute on %s did not '
                                  'register in 120 s' % host)
        subprocess.run([os.path.join(venv, 'bin', 'nova-manage'),
                        '--config-file', api_conf, 'cell_v2',
                        'discover_hosts'], check=True, capture_output=True)
        common.progress('fake-driver nova-compute up as %s', host)
        out = {'host': host,
               'how': ('second nova-compute of the benchmark with '
                       'compute_driver=fake.SmallFakeDriver, host %s, '
                       'servers placed with POST /servers host= '
                       '(microversion 2.74), networks none' % host)}
        # No port: Neutron has no agent on that host to bind one to.
        bench.boot_and_delete(networks='none', host=host)
        out.update(bench.serial(params['cloud_runs'], label='fake driver',
                                networks='none', host=host))
        out['docker_no_network'] = bench.serial(
            params['rally_runs'], label='docker (no port)', networks='none')
        for width in params['fake_concurrency']:
            out['concurrent%d' % width] = bench.concurrent(
                width, networks='none', host=host)
        return out
    except Exception as e:
        common.progress('fake driver section failed: %r', e)
        if 'boot' in out:
            # Keep what was measured before the failure.
            out['error'] = 'failed: %r' % (e,)
            return out
        return {'skipped': True, 'reason': 'fake driver failed: %r' % (e,)}
    finally:
        bench.cleanup()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        _remove_service(conn, host)
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_service(conn, host):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(s.host == host and s.state == 'up'
               for s in conn.compute.services(binary='nova-compute')):
            return True
        time.sleep(1)
    return False


def _remove_service(conn, host):
    """Delete our fake host's service (Nova drops its node and provider)."""
    try:
        for service in conn.compute.services(binary='nova-compute'):
            if service.host == host:
                conn.compute.delete_service(service.id)
    except Exception as e:
        common.progress('could not delete the service of %s: %s', host, e)


def _rally(conn, ids, params):
    rally = os.path.join(RALLY_VENV, 'bin', 'rally')
    if not os.path.exists(rally):
        return common.skipped(
            'rally-openstack is not installed in %s (tools/benchmark.sh '
            '--with-rally installs it there)' % RALLY_VENV)
    tmp = tempfile.mkdtemp(prefix='ndbench-rally-')
    try:
        return _run_rally(rally, conn, ids, params, tmp)
    except Exception as e:
        return {'skipped': True, 'reason': 'rally failed: %r' % (e,)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_rally(rally, conn, ids, params, tmp):
    env = dict(os.environ, HOME=tmp)
    auth = conn.config.get_auth_args()
    creds = {'username': auth['username'], 'password': auth['password'],
             'project_name': auth.get('project_name'),
             'user_domain_name': auth.get('user_domain_name', 'Default'),
             'project_domain_name': auth.get('project_domain_name',
                                             'Default')}
    spec = {'existing@openstack': {
        'auth_url': auth['auth_url'],
        'region_name': conn.config.get_region_name() or '',
        'users': [creds]}}
    with open(os.path.join(tmp, 'rally.conf'), 'w') as f:
        f.write('[database]\nconnection = sqlite:///%s/rally.sqlite\n' % tmp)
        f.write('[openstack]\n')
        for option, value in sorted(RALLY_POLL.items()):
            f.write('%s = %s\n' % (option, value))
    base = [rally, '--config-file', os.path.join(tmp, 'rally.conf')]
    with open(os.path.join(tmp, 'env.json'), 'w') as f:
        json.dump(spec, f)
    task = {'NovaServers.boot_and_delete_server': [{
        'args': {'flavor': {'name': FLAVOR}, 'image': {'name': IMAGE},
                 'nics': [{'net-id': ids['network']}]},
        'runner': {'type': 'constant', 'times': params['rally_runs'],
                   'concurrency': 1},
        'sla': {'failure_rate': {'max': 0}}}]}
    with open(os.path.join(tmp, 'task.json'), 'w') as f:
        json.dump(task, f)
    for cmd in (['db', 'create'],
                ['env', 'create', '--name', 'ndbench', '--spec',
                 os.path.join(tmp, 'env.json')],
                ['task', 'start', os.path.join(tmp, 'task.json')],
                ['task', 'report', '--json', '--out',
                 os.path.join(tmp, 'report.json')]):
        common.progress('rally %s', ' '.join(cmd[:2]))
        subprocess.run(base + cmd, check=True, capture_output=True,
                       env=env, timeout=1800)
    with open(os.path.join(tmp, 'report.json')) as f:
        report = json.load(f)
    return _rally_figures(report)


def _rally_figures(report):
    out = {}
    for task in report.get('tasks', []):
        for subtask in task.get('subtasks', []):
            for workload in subtask.get('workloads', []):
                atomics = {}
                for it in workload.get('data', []):
                    for action in it.get('atomic_actions', []):
                        atomics.setdefault(action['name'], []).append(
                            action['finished_at'] - action['started_at'])
                out = {name: common.summary(samples)
                       for name, samples in atomics.items()}
                out['iterations'] = len(workload.get('data', []))
                out['poll'] = dict(RALLY_POLL)
                out['failed'] = sum(1 for it in workload.get('data', [])
                                    if it.get('error'))
    return out
