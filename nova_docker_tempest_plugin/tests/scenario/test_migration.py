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

"""Cold migration and resize to another host, on the two-node cloud.

The server is placed on the first docker host by host name (microversion
2.74, admin) and in no availability zone, so that Nova may move it to a
host of the other zone. Its workload writes a file on its first boot and
prints it ("ND-FILE <tag>") on every later start: that line in the
console of the server on the other host says the writable layer
travelled; after a revert, the source's own container prints it again.
With [nova_docker] host_checks the server's web page is fetched from the
host on its address after each step: its port moved with it.

Needs [compute-feature-enabled] cold_migration (and resize for the resize
test), [compute] min_compute_nodes >= 2 and [nova_docker]
nodes_availability_zone.

EvacuateTest stops the nova-compute of the second zone's host with
[nova_docker] node_compute_command, forces the service down and
evacuates its server to the first host: the server is rebuilt there from
its image, so its workload starts with no file kept (what it wrote is
lost, as the driver documents). Skipped without that command.
"""

from tempest import config
from tempest.lib.common import api_microversion_fixture
from tempest.lib.common.utils import data_utils
from tempest.lib import decorators

from nova_docker_tempest_plugin import host as host_checks
from nova_docker_tempest_plugin.tests.scenario import test_multinode
from nova_docker_tempest_plugin.tests.scenario import test_server_actions
from nova_docker_tempest_plugin import workloads

CONF = config.CONF

# Keep the file, then serve the hello page (two metadata values: Nova caps
# one at 255 characters).
MOVE_INIT = 'eval "$ND_KEEP"; eval "$ND_WEB"'


def _metadata(tag):
    return {'ND_SCRIPT': workloads.SCRIPT, 'ND_INIT': MOVE_INIT,
            'ND_TAG': tag, 'ND_KEEP': test_server_actions.KEEP_INIT,
            'ND_WEB': workloads.WEB_INIT}


def _kept(console, tag):
    return len(test_server_actions._kept_lines(console, tag))


class ColdMigrationTest(test_multinode.MultiNodeTest):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.compute_feature_enabled.cold_migration:
            raise cls.skipException(
                '[compute-feature-enabled] cold_migration')
        if CONF.compute.min_compute_nodes < 2:
            raise cls.skipException('needs two compute nodes')

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.flavors_client = cls.os_admin.flavors_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.image_id = cls.create_workload_image()
        cls.group = cls.create_security_group()
        _base, cls.bigger_flavor = cls.create_bigger_flavor(
            cls.flavors_client)

    def setUp(self):
        super().setUp()
        # "host" at create (2.74) places the server without pinning it to
        # a zone; "host" at migrate is 2.56.
        self.useFixture(api_microversion_fixture.APIMicroversionFixture(
            compute_microversion='2.74'))

    def boot_on_first_host(self, tag, index=0):
        port = self.create_port(self.network['id'], self.group)
        server = self.servers_client.create_server(
            name=data_utils.rand_name('nd-move'), imageRef=self.image_id,
            flavorRef=self.flavor_id, networks=[{'port': port['id']}],
            metadata=_metadata(tag), host=self.hosts[index])['server']
        self.addCleanup(self.delete_server, server['id'])
        self.wait_for_server(server['id'])
        self.assert_on_host(server['id'], self.hosts[index])
        self.wait_for_console(server['id'], workloads.boots, 'ND-BOOT line')
        return server, self.ipv4_of(port)

    def host_of(self, server_id):
        return self.servers_client.show_server(
            server_id)['server']['OS-EXT-SRV-ATTR:host']

    def assert_moved(self, server_id, host, tag, address):
        """On *host*, the file kept, the page served on its address."""
        self.assert_on_host(server_id, host)
        self.wait_for_console(server_id, lambda c: _kept(c, tag) >= 1,
                              'an ND-FILE line')
        if CONF.nova_docker.host_checks:
            self.assert_host_http(address, workloads.hello(tag))

    @decorators.idempotent_id('9a4e2f61-0c3b-4d7a-8e15-2b6c9d0f3a41')
    def test_cold_migrate_keeps_the_data_revert_and_confirm(self):
        tag = data_utils.rand_name('moved')
        server, address = self.boot_on_first_host(tag)

        self.servers_client.migrate_server(server['id'], host=self.hosts[1])
        self.wait_for_server(server['id'], 'VERIFY_RESIZE')
        self.assert_moved(server['id'], self.hosts[1], tag, address)

        self.servers_client.revert_resize_server(server['id'])
        self.wait_for_server(server['id'])
        # The source's own container, started again: its log holds the
        # first boot and now one ND-FILE line.
        self.assert_moved(server['id'], self.hosts[0], tag, address)

        self.servers_client.migrate_server(server['id'], host=self.hosts[1])
        self.wait_for_server(server['id'], 'VERIFY_RESIZE')
        self.servers_client.confirm_resize_server(server['id'])
        self.wait_for_server(server['id'])
        self.assert_moved(server['id'], self.hosts[1], tag, address)

    @decorators.idempotent_id('5e7b1c90-3d2a-4f6e-9b08-7a1d4c2e6f53')
    def test_resize_to_the_other_host_keeps_the_data(self):
        if not CONF.compute_feature_enabled.resize:
            raise self.skipException('[compute-feature-enabled] resize')
        tag = data_utils.rand_name('resized')
        server, address = self.boot_on_first_host(tag)
        # The first host is closed to new work: the resize must move.
        services = self.services_client.list_services(
            binary='nova-compute', host=self.hosts[0])['services']
        self.services_client.update_service(
            services[0]['id'], status='disabled',
            disabled_reason='nova-docker resize test')
        self.addCleanup(self.services_client.update_service,
                        services[0]['id'], status='enabled')
        self.servers_client.resize_server(server['id'],
                                          self.bigger_flavor['id'])
        self.wait_for_server(server['id'], 'VERIFY_RESIZE')
        target = self.host_of(server['id'])
        self.assertNotEqual(self.hosts[0], target)
        self.assert_moved(server['id'], target, tag, address)
        self.servers_client.confirm_resize_server(server['id'])
        self.wait_for_server(server['id'])
        shown = self.servers_client.show_server(server['id'])['server']
        self.assertEqual(self.bigger_flavor['name'],
                         shown['flavor']['original_name'])
        self.assert_moved(server['id'], target, tag, address)


class EvacuateTest(ColdMigrationTest):
    """A host's nova-compute stopped; its server evacuated to another."""

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.nova_docker.node_compute_command:
            raise cls.skipException('[nova_docker] node_compute_command')

    # The moves are ColdMigrationTest's; this class only evacuates.
    test_cold_migrate_keeps_the_data_revert_and_confirm = None
    test_resize_to_the_other_host_keeps_the_data = None

    def bring_back(self, service_id, node):
        """Start the node's nova-compute; Nova then lets it up again."""
        host_checks.node_compute(CONF.nova_docker.node_compute_command,
                                 'start', node)
        self.services_client.update_service(service_id, forced_down=False)

    @decorators.idempotent_id('b2d8e4f1-6a3c-4e9d-8f27-1c5a0e3b9d64')
    def test_evacuate_rebuilds_from_the_image_elsewhere(self):
        tag = data_utils.rand_name('evacuated')
        server, address = self.boot_on_first_host(tag, index=1)
        node = self.hosts[1]
        service = self.services_client.list_services(
            binary='nova-compute', host=node)['services'][0]
        host_checks.node_compute(CONF.nova_docker.node_compute_command,
                                 'stop', node)
        self.addCleanup(self.bring_back, service['id'], node)
        # Nova evacuates only from a host it knows is down.
        self.services_client.update_service(service['id'], forced_down=True)

        self.servers_client.evacuate_server(server['id'], host=self.hosts[0])
        self.wait_for_server(server['id'])
        self.assert_on_host(server['id'], self.hosts[0])
        console = self.wait_for_console(server['id'], workloads.boots,
                                        'ND-BOOT line')
        # Rebuilt from the image: the file written on the node is gone.
        self.assertEqual(0, _kept(console, tag))
        if CONF.nova_docker.host_checks:
            self.assert_host_http(address, workloads.hello(tag))
