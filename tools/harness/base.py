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

"""The functional harness: Nova's own services in one process, driving the
real Docker engine, real Open vSwitch and real nova-rootwrap.

Nova's API, conductor, scheduler, placement and compute services run
in-process through Nova's functional fixtures; the compute service runs
``compute_driver = docker.DockerDriver`` loaded the way Nova loads it.
Nothing about Docker, OVS or rootwrap is faked.
"""

import os
import subprocess
import sys
import time
import uuid

import docker
import fixtures
from nova.tests import fixtures as nova_fixtures
from nova.tests.functional import integrated_helpers
from oslo_utils import uuidutils
# Imported for their privsep option groups, configured below.
import vif_plug_ovs.privsep  # noqa: F401

import novadocker.conf  # noqa: F401  (registers [docker])
import novadocker.privsep  # noqa: F401
from novadocker.virt.docker import driver as driver_module
from novadocker.virt.docker import vifs
from tools.harness import fixtures as nd_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FILTERS_DIR = os.path.join(REPO, 'etc', 'nova', 'rootwrap.d')
BIN_DIR = os.path.dirname(sys.executable)
BRIDGE = 'br-int'
# The privileged daemons load the tree under test, not whatever copy of the
# bundle was installed last.
PRIVSEP_HELPER = 'env PYTHONPATH=%s %s' % (
    REPO, os.path.join(BIN_DIR, 'privsep-helper'))
LABEL_HOST = 'org.openstack.nova.host'
LABEL_UUID = 'org.openstack.nova.instance-uuid'
LABEL_ROLE = 'org.openstack.nova.role'
HTTP_PORT = 8080


def host_problems():
    """What keeps this host from running the functional tests, if anything."""
    problems = []
    try:
        docker.from_env(timeout=10).ping()
    except Exception as e:
        problems.append(
            'the Docker engine does not answer on /var/run/docker.sock (%s): '
            'run tools/bootstrap-host.sh, or start dockerd' % e)
    try:
        dp = subprocess.run(
            ['ovs-vsctl', '--timeout=5', 'get', 'bridge', BRIDGE,
             'datapath_type'], capture_output=True, text=True, check=True)
        if dp.stdout.strip().strip('"') != 'netdev':
            problems.append('%s does not use datapath_type=netdev: run '
                            'tools/bootstrap-host.sh' % BRIDGE)
    except (OSError, subprocess.CalledProcessError) as e:
        problems.append(
            'Open vSwitch or bridge %s is not available (%s): run '
            'tools/bootstrap-host.sh, or start OVS with '
            '"/usr/share/openvswitch/scripts/ovs-ctl start" and create %s '
            'with datapath_type=netdev' % (BRIDGE, e, BRIDGE))
    if os.geteuid() != 0:
        problems.append('functional tests wire networking as root: run them '
                        'as root')
    try:
        docker.from_env(timeout=10).images.get(nd_fixtures.BUSYBOX_IMAGE)
    except Exception as e:
        problems.append('image %s is missing (%s): run '
                        'tools/bootstrap-host.sh'
                        % (nd_fixtures.BUSYBOX_IMAGE, e))
    return problems


def ovs_ports_of(uuid):
    """OVS interface rows (name -> external_ids) of one server."""
    out = subprocess.run(
        ['ovs-vsctl', '--timeout=10', '--format=csv', '--data=bare',
         '--no-headings', '--columns=name,external_ids', 'find',
         'Interface', 'external_ids:vm-uuid=%s' % uuid],
        capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        name, _, ids = line.partition(',')
        rows[name] = dict(pair.split('=', 1)
                          for pair in ids.strip('"').split(' ') if pair)
    return rows


def write_rootwrap_conf(directory):
    """A rootwrap.conf using this project's own filter files."""
    path = os.path.join(directory, 'rootwrap.conf')
    with open(path, 'w') as f:
        f.write('[DEFAULT]\n'
                'filters_path=%s\n'
                'exec_dirs=/sbin,/usr/sbin,/bin,/usr/bin\n'
                'use_syslog=False\n' % FILTERS_DIR)
    return path


def _node_uuid(node):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, node))


def _node_per_host(driver, refresh=False):
    node = driver.get_available_nodes()[0]
    return {_node_uuid(node): node}


_get_available_resource = driver_module.DockerDriver.get_available_resource


def _resources_per_host(driver, nodename):
    resources = _get_available_resource(driver, nodename)
    resources['uuid'] = _node_uuid(nodename)
    return resources


class _NoPoison(fixtures.Fixture):
    """Stands in for Nova's unit-test poisons: these tests touch the host."""


class DockerFunctionalTestBase(integrated_helpers._IntegratedTestBase):
    """Nova services in-process with the Docker driver on real daemons."""

    ADMIN_API = True
    microversion = 'latest'
    REQUIRES_LOCKING = True
    # Capabilities kept out of the driver's default drop. busybox ping
    # needs raw sockets and the networking tests ping; the hardening tests
    # set () and check the shipped default.
    CAP_KEEP = ('NET_RAW',)
    # Casts stay casts, as in a real cloud: tests wait for the outcome.
    # (As calls, the power-state sync's stop request would wait on the
    # instance lock the sync itself holds.)
    CAST_AS_CALL = False
    # A test on a private engine sets its URL; None is the shared engine.
    engine_url = None

    def setUp(self):
        problems = host_problems()
        if problems:
            # A missing daemon is a failure, never a skip.
            self.fail('The functional tests need a prepared host:\n- ' +
                      '\n- '.join(problems))
        # Nova's base class forbids touching /sys, os.uname and the privsep
        # helper, which is right for its unit tests; the point of these
        # tests is to drive the host for real.
        for poison in ('SysFsPoisonFixture', 'GenericPoisonFixture',
                       'PrivsepNoHelperFixture'):
            self.useFixture(fixtures.MonkeyPatch(
                'nova.tests.fixtures.' + poison, _NoPoison))
        # Each real nova-compute keeps its node UUID in its own state
        # directory; several services in this one process would share one.
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.driver.DockerDriver.get_nodenames_by_uuid',
            _node_per_host))
        self.useFixture(fixtures.MockPatchObject(
            driver_module.DockerDriver, 'get_available_resource',
            _resources_per_host))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.GlanceFixture',
            nd_fixtures.DockerGlanceFixture))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.NeutronFixture',
            nd_fixtures.OVSNeutronFixture))
        # Nova's cleanups clear test attributes first: hand the list over.
        self.hosts = []
        self.booted = []
        self.addCleanup(self._remove_leftovers, self.hosts, self.booted)
        self.tmpdir = self.useFixture(fixtures.TempDir()).path
        super().setUp()

    # -- configuration and services -------------------------------------------

    def _configure(self):
        rootwrap_conf = write_rootwrap_conf(self.tmpdir)
        self.flags(compute_driver='docker.DockerDriver')
        # /bin/sh as PID 1 ignores SIGTERM: do not wait Nova's default 60 s
        # for it before the engine kills it.
        self.flags(shutdown_timeout=3)
        self.flags(reboot_timeout=3, group='docker')
        self.flags(cap_keep=list(self.CAP_KEEP), group='docker')
        # The engine watch would race tests that stop containers on
        # purpose; the fault tests turn it on.
        self.flags(engine_watch_interval=0, group='docker')
        # This host has 2 cores; some tests run ten 1-vCPU servers.
        self.flags(cpu_allocation_ratio=16.0)
        self.flags(rootwrap_config=rootwrap_conf)
        self.flags(root_helper='%s %s' % (
            os.path.join(BIN_DIR, 'nova-rootwrap'), rootwrap_conf),
            group='docker')
        for section in ('vif_plug_ovs_privileged', 'nova_docker_privileged'):
            self.useFixture(nova_fixtures.ConfPatcher(
                group=section, helper_command=PRIVSEP_HELPER))

    def _setup_services(self):
        self._configure()
        # Registers [os_vif_ovs]; Nova's config fixture then resets what it
        # set, so set the local OVSDB socket for every test.
        vifs.load()
        self.flags(ovsdb_connection=vifs.DEFAULT_OVSDB_CONNECTION,
                   group='os_vif_ovs')
        super()._setup_services()

    def _setup_compute_service(self):
        return self.start_compute()

    def start_compute(self, suffix='a'):
        """Start a compute service with a host name unique to this test."""
        host = 'nd-%s-%s' % (uuidutils.generate_uuid()[:8], suffix)
        self.hosts.append(host)
        return self._start_compute(host)

    # Nova's helpers wait 5 s; a real engine on a busy 2-core host may take
    # longer. Wait up to two minutes, but fail at once, with the fault, if
    # the server reaches ERROR when something else was expected.
    def _wait_for_server_parameter(self, server, expected_params,
                                   max_retries=240, api=None, **kwargs):
        api = api or self.admin_api
        want_error = expected_params.get('status') == 'ERROR'
        for _ in range(max_retries):
            found = api.get_server(server['id'])
            if all(found.get(k) == v for k, v in expected_params.items()) \
                    and (not want_error or 'fault' in found):
                return found
            if found['status'] == 'ERROR' and not want_error:
                self.fail('server %s went to ERROR while waiting for %s: %s'
                          % (server['id'], expected_params,
                             found.get('fault')))
            time.sleep(0.5)
        self.fail('server %s never reached %s; last seen: status %s, task '
                  '%s' % (server['id'], expected_params, found['status'],
                          found.get('OS-EXT-STS:task_state')))

    def _wait_for_state_change(self, server, expected_status,
                               max_retries=240, **kwargs):
        return self._wait_for_server_parameter(
            server, {'status': expected_status}, max_retries)

    # -- servers --------------------------------------------------------------

    def boot(self, image_id=nd_fixtures.BUSYBOX_IMAGE_ID, expected='ACTIVE',
             networks='none', host=None, metadata=None, **kwargs):
        """Boot a server through the API and wait for *expected*."""
        server = self._build_server(image_uuid=image_id, networks=networks,
                                    **kwargs)
        if host:
            server['host'] = host
        if metadata:
            server['metadata'] = metadata
        created = self.api.post_server({'server': server})
        self.booted.append(created['id'])
        return self._wait_for_state_change(created, expected)

    def docker(self):
        """A client of the engine this test's compute services use."""
        if self.engine_url:
            client = docker.DockerClient(base_url=self.engine_url,
                                         version='auto', timeout=60)
        else:
            client = docker.from_env(timeout=60)
        self.addCleanup(client.close)
        return client

    def containers_of(self, server_or_uuid, all_hosts=False):
        """Containers on the engine labelled with this server's UUID."""
        uuid = server_or_uuid
        if isinstance(server_or_uuid, dict):
            uuid = server_or_uuid['id']
        labels = ['%s=%s' % (LABEL_UUID, uuid)]
        return self.docker().containers.list(all=True,
                                             filters={'label': labels})

    def container_of(self, server, role):
        """The server's container of *role*, freshly inspected."""
        found = [c for c in self.containers_of(server)
                 if c.labels[LABEL_ROLE] == role]
        self.assertEqual(1, len(found), found)
        found[0].reload()
        return found[0]

    def workload(self, server):
        """The server's workload container, freshly inspected."""
        return self.container_of(server, 'workload')

    def sandbox(self, server):
        """The server's sandbox container, freshly inspected."""
        return self.container_of(server, 'sandbox')

    def exec_in(self, server, *cmd):
        """Run *cmd* in the server's workload; return (exit code, output)."""
        code, out = self.workload(server).exec_run(list(cmd))
        return code, out.decode()

    def console(self, server, marker):
        """The console log through the API, once it shows *marker*."""
        output = ''
        for _ in range(100):
            output = self.api.post_server_action(
                server['id'], {'os-getConsoleOutput': {}})['output']
            if marker in output:
                break
            time.sleep(0.2)
        return output

    def assertBootFailsCleanly(self, expected_in_fault, **boot_kwargs):
        """Boot to ERROR with *expected_in_fault*, leaving nothing behind."""
        # One attempt: the fault is the driver's, not "retries exhausted".
        self.flags(max_attempts=1, group='scheduler')
        server = self.boot(expected='ERROR', **boot_kwargs)
        fault = server['fault']['message']
        for text in expected_in_fault:
            self.assertIn(text, fault)
        self.assertNoLeftovers(server['id'])
        return server

    def leftovers(self, uuid):
        """Everything a server could leave behind on this host."""
        found = ['container %s' % c.name for c in self.containers_of(uuid)]
        found += ['OVS port %s' % p for p in ovs_ports_of(uuid)]
        link = '/var/run/netns/nova-%s' % uuid
        if os.path.lexists(link):
            found.append('namespace link %s' % link)
        return found

    def assertNoLeftovers(self, uuid):
        self.assertEqual([], self.leftovers(uuid))

    # -- cleanup --------------------------------------------------------------

    def _remove_leftovers(self, hosts, booted):
        """Safety net: remove whatever this test's servers left behind."""
        for server_id in booted:
            self._remove_host_side(server_id)
        client = docker.from_env(timeout=60)
        try:
            for host in hosts:
                for c in client.containers.list(
                        all=True,
                        filters={'label': '%s=%s' % (LABEL_HOST, host)}):
                    uuid = c.labels.get(LABEL_UUID, '')
                    c.remove(force=True)
                    self._remove_host_side(uuid)
        finally:
            client.close()

    @staticmethod
    def _remove_host_side(uuid):
        if not uuid:
            return
        link = '/var/run/netns/nova-%s' % uuid
        if os.path.lexists(link):
            os.unlink(link)
        ports = subprocess.run(
            ['ovs-vsctl', '--timeout=10', '--format=csv', '--data=bare',
             '--no-headings', '--columns=name', 'find', 'Interface',
             'external_ids:vm-uuid=%s' % uuid],
            capture_output=True, text=True).stdout.split()
        for port in ports:
            subprocess.run(['ovs-vsctl', '--timeout=10', '--if-exists',
                            'del-port', port], capture_output=True)
            subprocess.run(['ip', 'link', 'del', port], capture_output=True)


class NetworkedTestBase(DockerFunctionalTestBase):
    """Servers on the Neutron stand-in's network, wired into br-int."""

    FLAVOR_MEMORY_MB = 128

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=self.FLAVOR_MEMORY_MB,
                                          vcpu=1, disk=1, ephemeral=0)
        self.net = nd_fixtures.OVSNeutronFixture.network_1['id']

    def boot_on_net(self, **kwargs):
        kwargs.setdefault('flavor_id', self.flavor)
        return self.boot(networks=[{'uuid': self.net}], **kwargs)

    def ip_of(self, server):
        return server['addresses']['private'][0]['addr']

    def assertPings(self, source, target):
        ip = self.ip_of(target)
        for _ in range(10):
            code, out = self.exec_in(source, 'ping', '-c', '1', '-W', '2', ip)
            if code == 0:
                return
            time.sleep(0.5)
        self.fail('%s cannot ping %s (%s): %s'
                  % (source['id'], target['id'], ip, out))

    def serve_http(self, server):
        """busybox httpd in *server* on HTTP_PORT; return its marker."""
        marker = 'nd-tcp-%s' % server['id'][:8]
        code, out = self.exec_in(
            server, 'sh', '-c', 'mkdir -p /tmp/www && echo %s > '
            '/tmp/www/index.html && (httpd -p %d -h /tmp/www || true)'
            % (marker, HTTP_PORT))
        self.assertEqual(0, code, out)
        return marker

    def assertTcp(self, client, server, address=None):
        """HTTP over TCP from *client* (a server, or None: the host)."""
        marker = self.serve_http(server)
        address = address or self.ip_of(server)
        request = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 %s %d' % (
            address, HTTP_PORT)
        out = ''
        for _ in range(10):
            if client is None:
                result = subprocess.run(
                    ['busybox', 'sh', '-c', request.replace(
                        'nc ', 'busybox nc ')], capture_output=True,
                    text=True, timeout=30)
                code, out = result.returncode, result.stdout
            else:
                # busybox-static's wget crashes; nc speaks HTTP well enough.
                code, out = self.exec_in(client, 'sh', '-c', request)
            if code == 0 and marker in out:
                return
            time.sleep(0.5)
        self.fail('TCP from %s to %s:%d failed: %s' % (
            client['id'] if client else 'the host', address, HTTP_PORT, out))

    def assertWired(self, server):
        """eth0 has the server's address; the link names the sandbox."""
        code, out = self.exec_in(server, 'ip', '-o', '-4', 'addr', 'show',
                                 'eth0')
        self.assertEqual(0, code, out)
        self.assertIn('inet %s/' % self.ip_of(server), out)
        link = '/var/run/netns/nova-%s' % server['id']
        self.assertEqual('/proc/%d/ns/net' % self.sandbox(server).attrs[
            'State']['Pid'], os.readlink(link))
        self.assertEqual(1, len(ovs_ports_of(server['id'])))

    def delete_all(self, *servers):
        """Delete *servers* through the API; each leaves nothing."""
        for server in servers:
            self._delete_server(server)
            self.assertNoLeftovers(server['id'])
