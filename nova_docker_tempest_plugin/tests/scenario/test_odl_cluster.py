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

"""Heat: an OS::ODL::Cluster stack of the ODL stand-in.

test_odl_cluster_stack (one host or more): CREATE_COMPLETE, the outputs
list the members, OVS connected to the odl_ovs_managers output reports
every member connected, and the stack's delete leaves nothing.

test_failure_drill (the two-node cloud): every node's OVS connected to all
three members and the northbound VIP answering; one member stopped: the
VIP keeps answering from the two others, OVS stays connected to them; the
member's server lost, stack check reports it, stack update --existing
replaces exactly it; all three again; delete; nothing left. It prints how
long the VIP did not answer and how long the heal took.

The members are the stand-in built by tools/build-odl-standin-image.sh
(busybox answering the RESTCONF/Jolokia readiness checks and OVSDB
manager connections), not OpenDaylight; the VIP is the HAProxy image of
tools/build-haproxy-image.sh, in Glance as nova-docker-haproxy.

Other compute nodes are reached through NOVA_DOCKER_ODL_NODES, set by
whoever runs tempest: "name=command prefix" pairs separated by ";", the
prefix running a command on that node (e.g. "compute2=ssh stack@10.1.0.3"
or "compute2=docker exec nd-cloud-node2"). The node tempest runs on is
always checked, with no prefix.
"""

import base64
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import yaml

from oslo_serialization import jsonutils as json
from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from nova_docker_tempest_plugin import host
from nova_docker_tempest_plugin.services import orchestration_client
from nova_docker_tempest_plugin.tests.scenario import base

CONF = config.CONF
OVSDB_PORT = 6640
RESTCONF_PORT = 8181
VIP_IMAGE = 'nova-docker-haproxy'
NODES_ENV = 'NOVA_DOCKER_ODL_NODES'
NEUTRON_NB_PATH = '/controller/nb/v2/neutron/networks'
AUTH = 'Basic ' + base64.b64encode(b'admin:admin').decode()
STANDIN_KARAF = '/opt/opendaylight/bin/karaf'
# The template's interface (contract with the heat plugin's owner).
PARAMETERS = ('image', 'flavor', 'network', 'cluster_size',
              'server_group_policy')


def template_path():
    if CONF.nova_docker.odl_template:
        return CONF.nova_docker.odl_template
    candidates = [
        os.path.join(sys.prefix, 'share', 'nova-docker', 'heat',
                     'odl-cluster.yaml'),
        os.path.join(os.path.dirname(__file__), '..', '..', '..',
                     'heat_plugins', 'templates', 'odl-cluster.yaml'),
    ]
    for path in candidates:
        if os.path.exists(path):
            return path
    raise lib_exc.InvalidConfiguration(
        'odl-cluster.yaml not found in %s: set [nova_docker] odl_template'
        % candidates)


def manager_targets(value):
    """tcp:<ip>:6640 for each entry of an ODL_OVS_MANAGERS value."""
    entries = value if isinstance(value, list) else str(value).split(',')
    targets = []
    for entry in (e.strip() for e in entries):
        if entry:
            targets.append(entry if entry.startswith('tcp:')
                           else 'tcp:%s:%d' % (entry, OVSDB_PORT))
    return targets


class OdlClusterBase(base.NovaDockerScenarioTest):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.nova_docker.host_checks:
            raise cls.skipException('OVS manager checks need the compute '
                                    'host: [nova_docker] host_checks')
        image = (CONF.nova_docker.odl_image_ref,
                 CONF.nova_docker.odl_image_file)
        if not any(image):
            raise cls.skipException('no ODL stand-in image: set '
                                    '[nova_docker] odl_image_ref or '
                                    'odl_image_file')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.heat = orchestration_client.OrchestrationClient.for_credentials(
            cls.os_primary, CONF)
        cls.server_groups_client = cls.os_primary.server_groups_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        if CONF.nova_docker.odl_image_ref:
            cls.odl_image_id = cls._find_image(CONF.nova_docker.odl_image_ref)
        else:
            with open(CONF.nova_docker.odl_image_file, 'rb') as archive:
                cls.odl_image_id = cls.create_image(archive.read())
        with open(template_path()) as f:
            cls.template = f.read()
        declared = yaml.safe_load(cls.template).get('parameters', {})
        missing = [p for p in PARAMETERS if p not in declared]
        if missing:
            raise lib_exc.InvalidConfiguration(
                '%s declares no parameter %s' % (template_path(), missing))
        cls.declared = declared

    def _create_stack(self, name, parameters):
        """Create the cluster stack (deleted at cleanup): id, outputs."""
        timeout = CONF.nova_docker.stack_timeout
        stack_id = self.heat.create_stack(
            name, self.template, parameters,
            timeout_mins=max(1, timeout // 60))['stack']['id']
        self.addCleanup(self._delete_stack, name, stack_id)
        stack = self.heat.wait_for_stack(name, stack_id, 'CREATE_COMPLETE',
                                         timeout)
        return stack_id, {o['output_key']: o['output_value']
                          for o in stack.get('outputs', [])}

    def _stack_servers(self, name, stack_id):
        resources = self.heat.list_resources(name, stack_id)['resources']
        return [r['physical_resource_id'] for r in resources
                if r['resource_type'] == 'OS::Nova::Server' and
                r['physical_resource_id']]

    def _connect_ovs(self, targets):
        """Add a Manager row per target; wait until each is connected."""
        rows = []
        for target in targets:
            uuid = host.add_manager(target)
            self.addCleanup(self._remove_manager, uuid)
            rows.append((target, uuid))
        deadline = time.time() + 60
        waiting = rows
        while waiting and time.time() < deadline:
            waiting = [(t, u) for t, u in waiting
                       if not host.manager_connected(u)]
            if waiting:
                time.sleep(2)
        self.assertEqual([], [t for t, _ in waiting],
                         'OVS is not connected to these managers')
        for _, uuid in rows:
            self._remove_manager(uuid)

    @staticmethod
    def _remove_manager(uuid):
        if host.manager_exists(uuid):
            host.remove_manager(uuid)

    def _delete_stack(self, name, stack_id):
        try:
            self.heat.delete_stack(name, stack_id)
        except lib_exc.NotFound:
            return
        self.heat.wait_for_stack(name, stack_id, 'DELETE_COMPLETE',
                                 CONF.nova_docker.stack_timeout)

    def _vip_image(self):
        """The VIP image's Glance ID, or None when it is not uploaded."""
        images = self.images_client.list_images(
            params={'name': VIP_IMAGE})['images']
        return images[0]['id'] if images else None


class OdlClusterTest(OdlClusterBase):

    @decorators.idempotent_id('b6a1e0c4-2f5d-4d8e-8c3b-7e2a9f4d6c01')
    def test_odl_cluster_stack(self):
        size = CONF.nova_docker.odl_cluster_size
        name = data_utils.rand_name('nd-tempest-odl')
        parameters = {
            'image': self.odl_image_id,
            'flavor': self.flavor_id,
            'network': self.network['id'],
            'cluster_size': size,
            'server_group_policy': CONF.nova_docker.odl_server_group_policy,
        }
        if 'availability_zone' in self.declared:
            parameters['availability_zone'] = (
                CONF.nova_docker.availability_zone)
        vip_image = self._vip_image()
        if 'northbound_vip' in self.declared and vip_image is None:
            # The template's default deploys the VIP, whose image CI
            # uploads (tools/build-haproxy-image.sh); without it, members
            # only.
            print('no Glance image %s: the cluster without its VIP'
                  % VIP_IMAGE)
            parameters['northbound_vip'] = False
        stack_id, outputs = self._create_stack(name, parameters)
        self.assertEqual(size, len(outputs['members']), outputs)
        if outputs.get('northbound_vip'):
            VipWatch(outputs['northbound_vip']).wait(
                self, CONF.nova_docker.stack_timeout)
        targets = manager_targets(outputs['odl_ovs_managers'])
        self.assertEqual(size, len(targets), outputs)

        servers = self._stack_servers(name, stack_id)
        # The members, and the VIP's HAProxy server when it was deployed.
        self.assertEqual(size + (1 if outputs.get('northbound_vip') else 0),
                         len(servers))
        ports = {}
        for server_id in servers:
            server = self.servers_client.show_server(server_id)['server']
            self.assertEqual('ACTIVE', server['status'])
            ports[server_id] = [p['id'] for p in self.admin_ports_client
                                .list_ports(device_id=server_id)['ports']]

        self._connect_ovs(targets)

        self._delete_stack(name, stack_id)
        for server_id in servers:
            self.assertRaises(lib_exc.NotFound,
                              self.servers_client.show_server, server_id)
            self.assert_nothing_left(server_id, ports[server_id])
        groups = self.server_groups_client.list_server_groups()
        self.assertEqual([], [g['name'] for g in groups['server_groups']
                              if g['name'].startswith(name)])


def node_commands():
    """{node name: command prefix (a list)}; the local node has []."""
    nodes = {'local': []}
    for entry in os.environ.get(NODES_ENV, '').split(';'):
        if entry.strip():
            name, _sep, prefix = entry.partition('=')
            nodes[name.strip()] = shlex.split(prefix)
    return nodes


def on_node(prefix, *cmd):
    """Run ``cmd`` on the node ``prefix`` reaches; its stdout."""
    result = subprocess.run(list(prefix) + list(cmd), capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (
            ' '.join(list(prefix) + list(cmd)), result.returncode,
            result.stderr.strip()))
    return result.stdout.strip()


class VipWatch(object):
    """GET the Neutron northbound path through the VIP, every 0.2 s.

    ``outage()`` is the longest time between a failed answer's start and
    the next good answer, the VIP's unavailability as a client sees it.
    """

    def __init__(self, address):
        self.url = 'http://%s:%d%s' % (address, RESTCONF_PORT,
                                       NEUTRON_NB_PATH)
        self.results = []  # (monotonic time, ok)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def get(self, timeout=3):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(self.url,
                                         headers={'Authorization': AUTH})
        with opener.open(request, timeout=timeout) as reply:
            return reply.status

    def _run(self):
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                ok = self.get() == 200
            except (OSError, urllib.error.HTTPError):
                ok = False
            self.results.append((at, ok))
            time.sleep(0.2)

    def start(self):
        self._thread.start()

    def wait(self, test, timeout):
        """Fail ``test`` unless the VIP answers 200 within ``timeout``."""
        deadline = time.time() + timeout
        while True:
            try:
                if self.get() == 200:
                    return
            except (OSError, urllib.error.HTTPError):
                pass
            if time.time() > deadline:
                test.fail('the VIP %s does not answer' % self.url)
            time.sleep(1)

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def outage(self):
        longest = 0.0
        down_since = None
        for at, ok in self.results:
            if not ok and down_since is None:
                down_since = at
            elif ok and down_since is not None:
                longest = max(longest, at - down_since)
                down_since = None
        if down_since is not None:
            longest = max(longest, time.monotonic() - down_since)
        return longest

    def failures(self):
        return sum(1 for _at, ok in self.results if not ok)


class OdlClusterDrillTest(OdlClusterBase):
    """The failure drill: two compute nodes, three members and a VIP."""

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if CONF.nova_docker.odl_cluster_size != 3:
            raise cls.skipException('the drill runs 3 members '
                                    '([nova_docker] odl_cluster_size)')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.services_client = cls.os_admin.services_client
        cls.admin_servers_client = cls.os_admin.servers_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.nodes = node_commands()

    def _compute_hosts(self):
        services = self.services_client.list_services(
            binary='nova-compute')['services']
        return sorted(s['host'] for s in services
                      if s['status'] == 'enabled' and s['state'] == 'up')

    def _set_managers(self, targets):
        """One Manager row a target on every node; their uuids by node."""
        rows = {}
        for node, prefix in self.nodes.items():
            for target in targets:
                uuid = on_node(prefix, 'ovs-vsctl', '--', '--id=@m',
                               'create', 'Manager', 'target="%s"' % target,
                               'external_ids:nova-docker-test=odl-drill',
                               '--', 'add', 'Open_vSwitch', '.',
                               'manager_options', '@m')
                self.addCleanup(self._drop_manager, prefix, uuid)
                rows[(node, target)] = uuid
        return rows

    @staticmethod
    def _drop_manager(prefix, uuid):
        if uuid in on_node(prefix, 'ovs-vsctl', '--bare', '--columns=_uuid',
                           'list', 'Manager').split():
            on_node(prefix, 'ovs-vsctl', 'remove', 'Open_vSwitch', '.',
                    'manager_options', uuid)

    def _connected(self, rows):
        """{(node, target): is_connected} of the rows."""
        return {key: on_node(self.nodes[key[0]], 'ovs-vsctl', 'get',
                             'Manager', uuid, 'is_connected') == 'true'
                for key, uuid in rows.items()}

    def _wait_connected(self, rows, expected, timeout=90):
        """Wait until each row's is_connected is ``expected[target]``."""
        deadline = time.time() + timeout
        while True:
            state = self._connected(rows)
            wrong = sorted('%s -> %s is %s' % (node, target, state[
                (node, target)]) for node, target in rows
                if state[(node, target)] != expected[target])
            if not wrong:
                return
            if time.time() > deadline:
                self.fail('OVS managers not as expected: %s' % wrong)
            time.sleep(2)

    def _member_container(self, server_id):
        """(node prefix, name) of the server's workload container."""
        # The driver's name for it (containers.workload_name).
        wanted = 'nova-%s' % server_id
        for prefix in self.nodes.values():
            names = on_node(prefix, 'docker', 'ps', '--filter',
                            'label=%s=%s' % (host.LABEL_UUID, server_id),
                            '--format', '{{.Names}}').split()
            if wanted in names:
                return prefix, wanted
        self.fail('no node runs container %s' % wanted)

    def _stack_action(self, name, stack_id, action, body):
        resp, _body = self.heat.post('stacks/%s/%s/actions' % (
            name, stack_id), json.dumps({action: body}))
        self.heat.expected_success(200, resp.status)

    def _wait_stack_state(self, name, stack_id, action, timeout):
        """Wait for <action>_COMPLETE or <action>_FAILED; the stack."""
        deadline = time.time() + timeout
        while True:
            stack = self.heat.show_stack(name, stack_id)['stack']
            if stack['stack_status'] in ('%s_COMPLETE' % action,
                                         '%s_FAILED' % action):
                return stack
            if time.time() > deadline:
                self.fail('stack %s still %s'
                          % (name, stack['stack_status']))
            time.sleep(2)

    def _update_existing(self, name, stack_id):
        """openstack stack update --existing, with no change."""
        resp, _body = self.heat.patch('stacks/%s/%s' % (name, stack_id),
                                      json.dumps({'parameters': {}}))
        self.heat.expected_success(202, resp.status)

    def _servers_by_member(self, name, stack_id):
        resources = self.heat.list_resources(name, stack_id)['resources']
        return {r['resource_name']: r['physical_resource_id']
                for r in resources
                if r['resource_type'] == 'OS::Nova::Server'}

    @decorators.idempotent_id('0d7c2a51-8b7e-4b0f-9a8e-3c1f5e2d9b47')
    def test_failure_drill(self):
        hosts = self._compute_hosts()
        if len(hosts) > 1 and len(self.nodes) < len(hosts):
            self.fail('%d compute hosts (%s) but %s names %d node(s): the '
                      'drill checks the OVS of every node' % (
                          len(hosts), ', '.join(hosts), NODES_ENV,
                          len(self.nodes)))
        name = data_utils.rand_name('nd-tempest-odl-drill')
        vip_image = self._vip_image()
        self.assertIsNotNone(vip_image, 'no Glance image %s: build it with '
                             'tools/build-haproxy-image.sh and upload it '
                             '(container_format docker)' % VIP_IMAGE)
        parameters = {
            'image': self.odl_image_id, 'flavor': self.flavor_id,
            'network': self.network['id'], 'cluster_size': 3,
            'server_group_policy': 'auto', 'northbound_vip': True,
            'vip_image': vip_image,
        }
        # No zone (''): the cloud's compute hosts may sit in zones of their
        # own (tools/cloud.sh puts its extra nodes in one), and the members
        # must be free to spread over all of them.
        if 'availability_zone' in self.declared:
            parameters['availability_zone'] = ''
        timeout = CONF.nova_docker.stack_timeout
        stack_id, out = self._create_stack(name, parameters)
        members = out['members']
        targets = manager_targets(out['odl_ovs_managers'])
        self.assertEqual(3, len(targets), out)
        if len(hosts) < 3:
            self.assertEqual('soft-anti-affinity',
                             out['server_group_policy'])
        else:
            # anti-affinity when the stack's user may count the hosts
            # (an admin call), soft otherwise.
            self.assertIn(out['server_group_policy'],
                          ('anti-affinity', 'soft-anti-affinity'))
        # member_hosts shows hosts to an admin only: ask as admin.
        placed = {m['name']: self.admin_servers_client.show_server(
            m['server_id'])['server']['OS-EXT-SRV-ATTR:host']
            for m in members}
        print('members on hosts: %s; VIP %s; managers %s' % (
            placed, out['northbound_vip'], out['odl_ovs_managers']))
        if len(hosts) > 1:
            self.assertGreater(len(set(placed.values())), 1,
                               'all members on one host: %s' % placed)
        conf = out['devstack_local_conf'].splitlines()
        self.assertEqual(['ODL_MODE=externalodl',
                          'ODL_MGR_IP=%s' % (
                              out['northbound_vip_floating_ip'] or
                              out['northbound_vip']),
                          'ODL_PORT=%d' % RESTCONF_PORT,
                          'ODL_OVS_MANAGERS=%s' % out['odl_ovs_managers'],
                          'ODL_MGR_PORT=%d' % OVSDB_PORT], conf)

        # 1. Every node's OVS connected to all three, the VIP answering.
        rows = self._set_managers(targets)
        self._wait_connected(rows, {t: True for t in targets})
        watch = VipWatch(out['northbound_vip'])
        watch.wait(self, timeout)
        watch.start()
        self.addCleanup(watch.stop)

        # 2. member-2 stops (its container left running): the VIP keeps
        # answering from the others, OVS stays connected to them.
        servers = self._servers_by_member(name, stack_id)
        lost = members[1]
        prefix, container = self._member_container(lost['server_id'])
        on_node(prefix, 'docker', 'exec', container, STANDIN_KARAF, 'stop')
        lost_target = 'tcp:%s:%d' % (lost['ip'], OVSDB_PORT)
        self._wait_connected(rows, {t: t != lost_target for t in targets})
        time.sleep(5)
        self.assertEqual(0, watch.failures(),
                         'the VIP failed %d requests with one member '
                         'stopped' % watch.failures())

        # 3. Its server is lost: stack check reports it, an update with
        # no change replaces exactly it.
        self.servers_client.delete_server(lost['server_id'])
        self.wait_for_server_gone(lost['server_id'])
        self._stack_action(name, stack_id, 'check', None)
        checked = self._wait_stack_state(name, stack_id, 'CHECK', timeout)
        self.assertEqual('CHECK_FAILED', checked['stack_status'])
        self.assertIn('member_2', checked['stack_status_reason'])
        heal_started = time.monotonic()
        self._update_existing(name, stack_id)
        healed = self._wait_stack_state(name, stack_id, 'UPDATE', timeout)
        self.assertEqual('UPDATE_COMPLETE', healed['stack_status'],
                         healed.get('stack_status_reason'))
        self._wait_connected(rows, {t: True for t in targets})
        heal_seconds = time.monotonic() - heal_started
        after = self._servers_by_member(name, stack_id)
        self.assertNotEqual(servers['member_2'], after['member_2'])
        for resource_name, server_id in servers.items():
            if resource_name != 'member_2':
                self.assertEqual(server_id, after[resource_name])
        healed_out = {o['output_key']: o['output_value']
                      for o in healed.get('outputs', [])}
        self.assertEqual(out['odl_ovs_managers'],
                         healed_out['odl_ovs_managers'])
        watch.stop()
        print('VIP unavailable for %.1f s at most (%d of %d requests '
              'failed); heal took %.1f s (update to every node connected '
              'to all three members)' % (
                  watch.outage(), watch.failures(), len(watch.results),
                  heal_seconds))
        # HAProxy sends a request whose member does not answer to another
        # one: a client should see no gap longer than a few checks.
        self.assertLess(watch.outage(), 5.0)

        # 4. Delete: nothing left.
        ports = {}
        for server_id in after.values():
            ports[server_id] = [p['id'] for p in self.admin_ports_client
                                .list_ports(device_id=server_id)['ports']]
        self._delete_stack(name, stack_id)
        for server_id in after.values():
            self.assertRaises(lib_exc.NotFound,
                              self.servers_client.show_server, server_id)
            self.assertEqual([], [p['id'] for p in self.admin_ports_client
                                  .list_ports(device_id=server_id)['ports']])
        for prefix in self.nodes.values():
            for server_id in after.values():
                self.assertEqual('', on_node(
                    prefix, 'docker', 'ps', '--all', '--filter',
                    'label=%s=%s' % (host.LABEL_UUID, server_id),
                    '--format', '{{.Names}}'))
