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

"""Heat: an OS::ODL::Cluster stack of the ODL stand-in on this one-host
cloud. CREATE_COMPLETE, the outputs list the members, OVS connected to the
odl_ovs_managers output reports every member connected, and the stack's
delete leaves nothing.

The members are the stand-in built by tools/build-odl-standin-image.sh
(busybox answering the RESTCONF/Jolokia readiness checks and OVSDB
manager connections), not OpenDaylight.
"""

import os
import sys
import time

import yaml

from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from nova_docker_tempest_plugin import host
from nova_docker_tempest_plugin.services import orchestration_client
from nova_docker_tempest_plugin.tests.scenario import base

CONF = config.CONF
OVSDB_PORT = 6640
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


class OdlClusterTest(base.NovaDockerScenarioTest):

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
        cls.heat = orchestration_client.OrchestrationClient(
            cls.os_primary.auth_provider, 'orchestration',
            CONF.identity.region,
            build_interval=CONF.compute.build_interval,
            build_timeout=CONF.nova_docker.stack_timeout,
            disable_ssl_certificate_validation=(
                CONF.identity.disable_ssl_certificate_validation),
            ca_certs=CONF.identity.ca_certificates_file)
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
        timeout = CONF.nova_docker.stack_timeout
        stack_id = self.heat.create_stack(
            name, self.template, parameters,
            timeout_mins=max(1, timeout // 60))['stack']['id']
        self.addCleanup(self._delete_stack, name, stack_id)
        stack = self.heat.wait_for_stack(name, stack_id, 'CREATE_COMPLETE',
                                         timeout)
        outputs = {o['output_key']: o['output_value']
                   for o in stack.get('outputs', [])}
        self.assertEqual(size, len(outputs['members']), outputs)
        targets = manager_targets(outputs['odl_ovs_managers'])
        self.assertEqual(size, len(targets), outputs)

        servers = self._stack_servers(name, stack_id)
        self.assertEqual(size, len(servers))
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

    def _delete_stack(self, name, stack_id):
        try:
            self.heat.delete_stack(name, stack_id)
        except lib_exc.NotFound:
            return
        self.heat.wait_for_stack(name, stack_id, 'DELETE_COMPLETE',
                                 CONF.nova_docker.stack_timeout)
