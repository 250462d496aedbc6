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

"""Resize, rescue, and a migration with no host to go to, on the real cloud.

The workload writes a file on its first boot and prints it on every later
one: an "ND-FILE <tag>" line after a resize, a revert or an unrescue says
the writable layer was kept. During a rescue the server's own image runs
again (Nova rescues with the server's image when none is given) and finds
/mnt/rescue: it serves the file it sees there over HTTP on the server's
address, which says the rescue container has the server's port and disk.

Resize needs [compute-feature-enabled] resize and, on one node, Nova's
allow_resize_to_same_host; rescue needs [compute-feature-enabled] rescue
and [nova_docker] host_checks (HTTP from the host); the migration with no
host to go to and unshelve onto the other host need two compute nodes
([compute] min_compute_nodes), the latter also [compute-feature-enabled]
shelve_migrate. Moves to the other host are test_migration's.
"""

import time

from tempest import config
from tempest.lib.common import api_microversion_fixture
from tempest.lib.common.utils import data_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from nova_docker_tempest_plugin.tests.scenario import base
from nova_docker_tempest_plugin import workloads

CONF = config.CONF

KEPT_FILE = '/root/nd-kept-file'
# First boot: write the tag. Every later start: print what is there.
KEEP_INIT = ('if [ -f {f} ]; then echo "ND-FILE $(cat {f})"; '
             'else echo "$ND_TAG" >{f} && sync; fi').format(f=KEPT_FILE)
# In the rescue container (it has /mnt/rescue): serve the kept file as
# seen through the rescue mount. In the server: keep the file, serve hello.
# Nova caps a metadata value at 255 characters: the branches are metadata
# of their own (the workload sees metadata as its environment).
RESCUE_INIT = ('if [ -d /mnt/rescue ]; then eval "$ND_RESCUED"; '
               'else eval "$ND_KEEP"; eval "$ND_WEB"; fi')
RESCUED = ('mkdir -p /tmp/www && echo "ND-RESCUE $(cat /mnt/rescue{f})" '
           '>/tmp/www/index.html && httpd -p {port} -h /tmp/www').format(
               f=KEPT_FILE, port=workloads.HTTP_PORT)


def _metadata(init, tag):
    return {'ND_SCRIPT': workloads.SCRIPT, 'ND_INIT': init, 'ND_TAG': tag}


def _rescue_metadata(tag):
    return dict(_metadata(RESCUE_INIT, tag), ND_RESCUED=RESCUED,
                ND_KEEP=KEEP_INIT, ND_WEB=workloads.WEB_INIT)


def _kept_lines(console, tag):
    return [line for line in console.splitlines()
            if line.strip() == 'ND-FILE %s' % tag]


class ServerActionsTest(base.NovaDockerScenarioTest):

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.admin_servers_client = cls.os_admin.servers_client
        cls.admin_flavors_client = cls.os_admin.flavors_client
        cls.admin_services_client = cls.os_admin.services_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.image_id = cls.create_workload_image()
        cls.base_flavor, cls.bigger_flavor = cls.create_bigger_flavor(
            cls.admin_flavors_client)

    def wait_for_kept(self, server_id, tag, count):
        """Wait for the count-th "ND-FILE <tag>" line of the console."""
        return self.wait_for_console(
            server_id, lambda c: len(_kept_lines(c, tag)) >= count,
            '%d ND-FILE lines' % count)

    def assertFlavor(self, flavor, server_id):
        """The server's flavor is *flavor* (by id before 2.47, name after)."""
        shown = self.admin_servers_client.show_server(
            server_id)['server']['flavor']
        if 'id' in shown:
            self.assertEqual(flavor['id'], shown['id'])
        else:
            self.assertEqual(flavor['name'], shown['original_name'])

    def address_of(self, server):
        server = self.servers_client.show_server(server['id'])['server']
        return server['addresses'][self.network['name']][0]['addr']

    @decorators.idempotent_id('6a0d2c5e-2f7b-4a64-9e3f-8f5e0a1b7c21')
    def test_resize_revert_and_confirm_keep_the_data(self):
        if not CONF.compute_feature_enabled.resize:
            raise self.skipException('[compute-feature-enabled] resize')
        tag = data_utils.rand_name('kept')
        server = self.create_server(self.image_id, _metadata(KEEP_INIT, tag))
        self.wait_for_server(server['id'])
        self.wait_for_console(server['id'], workloads.boots, 'ND-BOOT line')

        self.servers_client.resize_server(server['id'],
                                          self.bigger_flavor['id'])
        self.wait_for_server(server['id'], 'VERIFY_RESIZE')
        self.assertFlavor(self.bigger_flavor, server['id'])
        self.wait_for_kept(server['id'], tag, 1)

        self.servers_client.revert_resize_server(server['id'])
        self.wait_for_server(server['id'])
        self.assertFlavor(self.base_flavor, server['id'])
        self.wait_for_kept(server['id'], tag, 2)

        self.servers_client.resize_server(server['id'],
                                          self.bigger_flavor['id'])
        self.wait_for_server(server['id'], 'VERIFY_RESIZE')
        self.servers_client.confirm_resize_server(server['id'])
        self.wait_for_server(server['id'])
        self.assertFlavor(self.bigger_flavor, server['id'])
        self.wait_for_kept(server['id'], tag, 3)

    @decorators.idempotent_id('c3b7e9a1-54d2-4f0e-8c6a-1d2e3f4a5b60')
    def test_rescue_sees_the_disk_on_the_servers_address(self):
        if not CONF.compute_feature_enabled.rescue:
            raise self.skipException('[compute-feature-enabled] rescue')
        if not CONF.nova_docker.host_checks:
            raise self.skipException('[nova_docker] host_checks')
        tag = data_utils.rand_name('rescued')
        # Security groups are enforced: the host's HTTP needs a rule.
        port = self.create_port(self.network['id'],
                                self.create_security_group())
        server = self.create_server(self.image_id, _rescue_metadata(tag),
                                    port=port)
        self.wait_for_server(server['id'])
        address = self.address_of(server)
        self.assert_host_http(address, workloads.hello(tag))

        self.servers_client.rescue_server(server['id'])
        self.wait_for_server(server['id'], 'RESCUE')
        self.assert_host_http(address, 'ND-RESCUE %s' % tag)

        self.servers_client.unrescue_server(server['id'])
        self.wait_for_server(server['id'])
        self.assert_host_http(address, workloads.hello(tag))
        self.wait_for_kept(server['id'], tag, 1)

    @decorators.idempotent_id('0e4f6a2b-9c8d-4e1f-a7b3-5c6d7e8f9a01')
    def test_migration_with_no_host_in_its_zone_leaves_it_untouched(self):
        # The server is booted into [nova_docker] availability_zone, which
        # has one host: Nova finds no other (NoValidHost) and the server
        # never stops.
        if CONF.compute.min_compute_nodes < 2:
            raise self.skipException('needs two compute nodes')
        tag = data_utils.rand_name('stays')
        server = self.create_server(self.image_id, _metadata(KEEP_INIT, tag))
        self.wait_for_server(server['id'])
        self.wait_for_console(server['id'], workloads.boots, 'ND-BOOT line')
        before = self.admin_servers_client.show_server(
            server['id'])['server']['OS-EXT-SRV-ATTR:host']

        try:
            self.admin_servers_client.migrate_server(server['id'])
        except lib_exc.BadRequest:
            pass  # Refused by the API already: as good.
        # The refusal is asynchronous: wait for the task to clear.
        time.sleep(CONF.compute.build_interval)
        after = self.wait_for_server(server['id'])
        self.assertEqual(before, self.admin_servers_client.show_server(
            server['id'])['server']['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('ACTIVE', after['status'])
        # Never stopped: one boot line, no second start.
        self.assertEqual(1, len(workloads.boots(self.console(server['id']))))

    def host_of(self, server_id):
        return self.admin_servers_client.show_server(
            server_id)['server']['OS-EXT-SRV-ATTR:host']

    def wait_for_shelved(self, server_id):
        """SHELVED or SHELVED_OFFLOADED (shelved_offload_time 0)."""
        deadline = time.time() + CONF.compute.build_timeout
        while time.time() < deadline:
            server = self.servers_client.show_server(server_id)['server']
            if server['status'] in ('SHELVED', 'SHELVED_OFFLOADED') and \
                    not server.get('OS-EXT-STS:task_state'):
                return server['status']
            if server['status'] == 'ERROR':
                self.fail('server %s is ERROR: %s' % (
                    server_id, server.get('fault', {}).get('message')))
            time.sleep(CONF.compute.build_interval)
        self.fail('server %s was not shelved in %d s'
                  % (server_id, CONF.compute.build_timeout))

    def other_compute_host(self, host):
        """(host, availability zone) of another enabled compute service."""
        services = self.admin_services_client.list_services(
            binary='nova-compute')['services']
        others = [(s['host'], s['zone']) for s in services
                  if s['host'] != host and s['state'] == 'up' and
                  s['status'] == 'enabled']
        if not others:
            self.fail('no other compute host is up')
        return others[0]

    @decorators.idempotent_id('4d1c8b7a-3e2f-4a5b-9c6d-7e8f9a0b1c2d')
    def test_unshelve_on_the_other_host_keeps_the_data(self):
        if CONF.compute.min_compute_nodes < 2:
            raise self.skipException('needs two compute nodes')
        if not CONF.compute_feature_enabled.shelve_migrate:
            raise self.skipException(
                '[compute-feature-enabled] shelve_migrate')
        # Unshelve to a chosen host: microversion 2.91, admin.
        self.useFixture(api_microversion_fixture.APIMicroversionFixture(
            compute_microversion='2.91'))
        tag = data_utils.rand_name('moved')
        server = self.create_server(self.image_id, _metadata(KEEP_INIT, tag))
        self.wait_for_server(server['id'])
        self.wait_for_console(server['id'], workloads.boots, 'ND-BOOT line')
        source = self.host_of(server['id'])
        target, zone = self.other_compute_host(source)

        self.servers_client.shelve_server(server['id'])
        status = self.wait_for_shelved(server['id'])
        if status != 'SHELVED_OFFLOADED':
            self.admin_servers_client.shelve_offload_server(server['id'])
            self.wait_for_server(server['id'], 'SHELVED_OFFLOADED')

        # The server was booted into a zone: name the target's, or Nova
        # refuses a host outside the server's zone.
        self.admin_servers_client.unshelve_server(
            server['id'], host=target, availability_zone=zone)
        self.wait_for_server(server['id'])
        self.assertEqual(target, self.host_of(server['id']))
        # A new container on the target: the file came through Glance.
        self.wait_for_kept(server['id'], tag, 1)
