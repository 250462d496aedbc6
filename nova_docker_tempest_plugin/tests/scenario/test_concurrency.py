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

"""Many servers booted at once, then deleted at once, through the API.

Each boot is its own POST /servers, all in flight together, as many users
would send them; nova-compute then runs the builds concurrently (up to its
max_concurrent_builds). Every server must become ACTIVE, wired (its
container running, its OVS port, its namespace link), and answer a ping
from the host; after the concurrent deletes nothing of any of them is left
in Neutron or on the host.
"""

from concurrent import futures
import time

from oslo_log import log as logging
from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib import decorators

from nova_docker_tempest_plugin import host
from nova_docker_tempest_plugin.tests.scenario import base

CONF = config.CONF
LOG = logging.getLogger(__name__)


class ConcurrentServersTest(base.NovaDockerScenarioTest):

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        cls.admin_quotas_client = cls.os_admin.quotas_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        count = CONF.nova_docker.concurrent_servers
        project_id = cls.os_primary.credentials.project_id
        flavor = cls.flavors_client.show_flavor(cls.flavor_id)['flavor']
        cls.admin_quotas_client.update_quota_set(
            project_id, force=True, instances=count + 2,
            cores=(count + 2) * flavor['vcpus'],
            ram=(count + 2) * flavor['ram'])
        # Security groups are enforced: the host's ping needs ICMP in.
        cls.group = cls.create_security_group(tcp_ports=())

    def _boot(self, index):
        server = self.servers_client.create_server(
            name=data_utils.rand_name('nd-many-%02d' % index),
            imageRef=self.base_image_id, flavorRef=self.flavor_id,
            networks=[{'uuid': self.network['id']}],
            security_groups=[{'name': self.group}],
            availability_zone=CONF.nova_docker.availability_zone)['server']
        self.addClassResourceCleanup(self.delete_server, server['id'])
        return server['id']

    def _delete(self, server_id):
        self.servers_client.delete_server(server_id)
        self.wait_for_server_gone(server_id)

    def _check_wired(self, server):
        server_id = server['id']
        addresses = [a['addr'] for net in server['addresses'].values()
                     for a in net if a.get('version') == 4]
        self.assertEqual(1, len(addresses), server['addresses'])
        if CONF.nova_docker.host_checks:
            wiring = host.wiring_of(server_id)
            self.assertEqual(1, len(wiring['ofports']), wiring)
            self.assertIsNotNone(host.netns_link_of(server_id))
        self.assert_host_ping(addresses[0])

    @decorators.idempotent_id('3e7a1c9b-6d2f-4b8e-a5c1-7f9d2e4b6a04')
    def test_concurrent_boots_and_deletes(self):
        count = CONF.nova_docker.concurrent_servers
        t0 = time.time()
        with futures.ThreadPoolExecutor(count) as pool:
            ids = list(pool.map(self._boot, range(count)))
            # nova-compute builds max_concurrent_builds (10) at a time:
            # the last ones wait for the first to finish.
            servers = list(pool.map(
                lambda s: self.wait_for_server(
                    s, timeout=3 * CONF.compute.build_timeout), ids))
        booted = time.time() - t0
        self.assertEqual(count, len(set(ids)))
        self.assertEqual(['ACTIVE'] * count, [s['status'] for s in servers])
        for server in servers:
            self._check_wired(server)
        ports = {s: [p['id'] for p in self.admin_ports_client.list_ports(
            device_id=s)['ports']] for s in ids}
        t1 = time.time()
        with futures.ThreadPoolExecutor(count) as pool:
            list(pool.map(self._delete, ids))
        deleted = time.time() - t1
        LOG.info('%d concurrent boots to ACTIVE in %.1f s, deletes to gone '
                 'in %.1f s', count, booted, deleted)
        for server_id in ids:
            self.assert_nothing_left(server_id, ports[server_id])
