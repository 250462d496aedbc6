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

"""What every nova-docker scenario needs: images, servers, waits, checks.

Built on tempest.test.BaseTestCase and tempest.lib only (tempest's stable
interfaces); waits are written here rather than taken from tempest.common.
"""

import io
import subprocess
import time
import urllib.request

from oslo_log import log as logging
from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import exceptions as lib_exc
from tempest import test

from nova_docker_tempest_plugin import host
from nova_docker_tempest_plugin import workloads

CONF = config.CONF
LOG = logging.getLogger(__name__)


def now():
    return int(time.time())


class NovaDockerScenarioTest(test.BaseTestCase):

    credentials = ['primary', 'admin']

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        for service in ('nova', 'glance', 'neutron'):
            if not getattr(CONF.service_available, service):
                raise cls.skipException('%s is not available' % service)

    @classmethod
    def setup_credentials(cls):
        # Servers go on [nova_docker] network_name, which the host reaches;
        # no network of tempest's own.
        cls.set_network_resources()
        super().setup_credentials()

    @classmethod
    def setup_clients(cls):
        super().setup_clients()
        primary = cls.os_primary
        cls.servers_client = primary.servers_client
        cls.interfaces_client = primary.interfaces_client
        cls.flavors_client = primary.flavors_client
        cls.compute_images_client = primary.compute_images_client
        cls.images_client = primary.image_client_v2
        cls.networks_client = primary.networks_client
        cls.subnets_client = primary.subnets_client
        cls.ports_client = primary.ports_client
        cls.security_groups_client = primary.security_groups_client
        cls.security_group_rules_client = primary.security_group_rules_client
        cls.admin_images_client = cls.os_admin.image_client_v2
        cls.admin_ports_client = cls.os_admin.ports_client

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.network = cls._find_network(CONF.nova_docker.network_name)
        cls.flavor_id = cls._find_flavor(CONF.nova_docker.flavor_ref)
        cls.base_image_id = cls._find_image(CONF.nova_docker.image_ref)

    # -- lookups -----------------------------------------------------------

    @classmethod
    def _find_network(cls, name):
        found = cls.networks_client.list_networks(name=name)['networks']
        if not found:
            raise lib_exc.InvalidConfiguration(
                'network %r is not visible to the test project: set '
                '[nova_docker] network_name to a shared network' % name)
        return found[0]

    @classmethod
    def _find_flavor(cls, ref):
        for flavor in cls.flavors_client.list_flavors()['flavors']:
            if ref in (flavor['id'], flavor['name']):
                return flavor['id']
        raise lib_exc.InvalidConfiguration('no flavor %r' % ref)

    @classmethod
    def _find_image(cls, ref):
        for image in cls.admin_images_client.list_images(
                params={'limit': 1000})['images']:
            if ref in (image['id'], image['name']):
                return image['id']
        raise lib_exc.InvalidConfiguration('no Glance image %r' % ref)

    # -- images ------------------------------------------------------------

    @classmethod
    def create_image(cls, data, container_format='docker', **properties):
        """A private image holding *data* (None: no data uploaded)."""
        image = cls.images_client.create_image(
            name=data_utils.rand_name('nd-tempest-image'),
            container_format=container_format, disk_format='raw',
            visibility='private', **properties)
        cls.addClassResourceCleanup(
            test_utils.call_and_ignore_notfound_exc,
            cls.images_client.delete_image, image['id'])
        if data is not None:
            cls.images_client.store_image_file(image['id'], io.BytesIO(data))
        return image['id']

    @classmethod
    def base_image_data(cls):
        if not hasattr(cls, '_base_image_data'):
            cls._base_image_data = cls.admin_images_client.show_image_file(
                cls.base_image_id).data
        return cls._base_image_data

    @classmethod
    def create_bigger_flavor(cls, admin_flavors_client):
        """A flavor one size up from the test flavor, removed at the end.

        Twice the memory, the same vCPUs and root disk: where the engine
        caps the writable layer, its size cannot change in place.
        """
        base = cls.flavors_client.show_flavor(cls.flavor_id)['flavor']
        bigger = admin_flavors_client.create_flavor(
            name=data_utils.rand_name('nd-tempest-bigger'),
            ram=base['ram'] * 2, vcpus=base['vcpus'],
            disk=base['disk'])['flavor']
        cls.addClassResourceCleanup(
            test_utils.call_and_ignore_notfound_exc,
            admin_flavors_client.delete_flavor, bigger['id'])
        return base, bigger

    @classmethod
    def create_workload_image(cls):
        """The busybox image whose command runs the server's $ND_SCRIPT."""
        return cls.create_image(cls.base_image_data(),
                                os_command_line=workloads.COMMAND_LINE)

    @classmethod
    def wait_for_image(cls, image_id, timeout=None):
        deadline = time.time() + (timeout or CONF.image.build_timeout)
        while True:
            image = cls.images_client.show_image(image_id)
            if image['status'] == 'active':
                return image
            if image['status'] in ('killed', 'deleted'):
                raise lib_exc.TempestException(
                    'image %s is %s' % (image_id, image['status']))
            if time.time() > deadline:
                raise lib_exc.TimeoutException(
                    'image %s still %s' % (image_id, image['status']))
            time.sleep(CONF.image.build_interval)

    # -- network -----------------------------------------------------------

    @classmethod
    def create_security_group(cls, tcp_ports=(workloads.HTTP_PORT,)):
        """ICMP and the workloads' TCP ports, in from anywhere."""
        group = cls.security_groups_client.create_security_group(
            name=data_utils.rand_name('nd-tempest-sg'))['security_group']
        cls.addClassResourceCleanup(
            test_utils.call_and_ignore_notfound_exc,
            cls.security_groups_client.delete_security_group, group['id'])
        rules = [{'protocol': 'icmp'}]
        rules += [{'protocol': 'tcp', 'port_range_min': port,
                   'port_range_max': port} for port in tcp_ports]
        for rule in rules:
            cls.security_group_rules_client.create_security_group_rule(
                security_group_id=group['id'], direction='ingress',
                ethertype='IPv4', **rule)
        return group['id']

    @classmethod
    def create_port(cls, network_id, security_group=None):
        kwargs = {}
        if security_group:
            kwargs['security_groups'] = [security_group]
        port = cls.ports_client.create_port(
            network_id=network_id, name=data_utils.rand_name('nd-tempest'),
            **kwargs)['port']
        cls.addClassResourceCleanup(
            test_utils.call_and_ignore_notfound_exc,
            cls.ports_client.delete_port, port['id'])
        return port

    @staticmethod
    def ipv4_of(port):
        return [ip['ip_address'] for ip in port['fixed_ips']
                if ':' not in ip['ip_address']][0]

    # -- servers -----------------------------------------------------------

    @classmethod
    def create_server(cls, image_id, metadata, port=None, network=None,
                      name=None):
        """Boot one server; it is deleted (and waited for) at class end."""
        nets = ([{'port': port['id']}] if port
                else [{'uuid': (network or cls.network)['id']}])
        server = cls.servers_client.create_server(
            name=name or data_utils.rand_name('nd-tempest'),
            imageRef=image_id, flavorRef=cls.flavor_id, networks=nets,
            metadata=metadata,
            availability_zone=CONF.nova_docker.availability_zone)['server']
        cls.addClassResourceCleanup(cls.delete_server, server['id'])
        return server

    @classmethod
    def delete_server(cls, server_id):
        try:
            cls.servers_client.delete_server(server_id)
        except lib_exc.NotFound:
            return
        cls.wait_for_server_gone(server_id)

    @classmethod
    def wait_for_server_gone(cls, server_id):
        deadline = time.time() + CONF.compute.build_timeout
        while time.time() < deadline:
            try:
                cls.servers_client.show_server(server_id)
            except lib_exc.NotFound:
                return
            time.sleep(CONF.compute.build_interval)
        raise lib_exc.TimeoutException('server %s was not deleted in %d s'
                                       % (server_id,
                                          CONF.compute.build_timeout))

    @classmethod
    def wait_for_server(cls, server_id, status='ACTIVE', timeout=None):
        """Wait until *status* with no task; ERROR fails with the fault."""
        timeout = timeout or CONF.compute.build_timeout
        deadline = time.time() + timeout
        while True:
            server = cls.servers_client.show_server(server_id)['server']
            current = server['status']
            task = server.get('OS-EXT-STS:task_state')
            if current == status and not task:
                return server
            if current == 'ERROR' and status != 'ERROR':
                raise lib_exc.TempestException(
                    'server %s is ERROR: %s' % (
                        server_id, server.get('fault', {}).get('message')))
            if time.time() > deadline:
                raise lib_exc.TimeoutException(
                    'server %s is %s (task %s) after %d s, not %s' % (
                        server_id, current, task, timeout, status))
            time.sleep(CONF.compute.build_interval)

    def console(self, server_id):
        return self.servers_client.get_console_output(
            server_id, length=400)['output']

    def wait_for_console(self, server_id, found, what, timeout=None):
        """Poll the console log until found(console) is true."""
        deadline = time.time() + (timeout or CONF.nova_docker.probe_timeout)
        while True:
            console = self.console(server_id)
            if found(console):
                return console
            if time.time() > deadline:
                self.fail('server %s: no %s in its console log after %d s; '
                          'its last lines:\n%s' % (
                              server_id, what,
                              timeout or CONF.nova_docker.probe_timeout,
                              '\n'.join(console.splitlines()[-15:])))
            time.sleep(2)

    def assert_booted_since(self, server_id, since):
        self.wait_for_console(
            server_id,
            lambda c: any(t >= since for t, _ in workloads.boots(c)),
            'workload start after %d' % since)

    # -- connectivity ------------------------------------------------------

    def wait_for_probe(self, prober_id, peer, since, body, reachable=True):
        """A probe of *peer* after *since* got *body* and a ping reply.

        With reachable=False: a probe after *since* got neither. Where the
        cloud keeps the driver's default capability drop (no NET_RAW), the
        server's ping is refused locally ('denied') and proves nothing
        either way: ICMP is then checked from the host (assert_host_ping).
        """
        def found(console):
            for _, ping, http in workloads.probes(console, peer, since):
                if reachable and ping in ('ok', 'denied') and http == body:
                    return True
                if not reachable and ping != 'ok' and http != body:
                    return True
            return False
        what = ('%s ping and HTTP fetch %r of %s after %d'
                % ('a' if reachable else 'a failing', body, peer, since))
        return self.wait_for_console(prober_id, found, what)

    def assert_host_ping(self, address, reachable=True, timeout=None):
        """Ping from the host (the subnet's gateway is on it)."""
        deadline = time.time() + (timeout or CONF.nova_docker.probe_timeout)
        while True:
            ok = subprocess.run(['ping', '-c1', '-W1', address],
                                capture_output=True).returncode == 0
            if ok == reachable:
                return
            if time.time() > deadline:
                self.fail('%s is %sreachable by ping from the host' % (
                    address, 'un' if reachable else 'still '))

    def host_http_get(self, address, timeout=3):
        url = 'http://%s:%d/' % (address, workloads.HTTP_PORT)
        # No proxy: the address is on a network the host is attached to.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=timeout) as reply:
            return reply.read().decode().strip()

    def assert_host_http(self, address, body, timeout=None):
        deadline = time.time() + (timeout or CONF.nova_docker.probe_timeout)
        while True:
            try:
                got = self.host_http_get(address)
            except OSError as e:
                got = e
            if got == body:
                return
            if time.time() > deadline:
                self.fail('HTTP from the host to %s gave %r, not %r'
                          % (address, got, body))
            time.sleep(1)

    def assert_host_http_fails(self, address):
        try:
            got = self.host_http_get(address)
        except OSError:
            return
        self.fail('HTTP from the host to %s still answers %r' % (address,
                                                                 got))

    # -- the host ----------------------------------------------------------

    def assert_nothing_left(self, server_id, port_ids=()):
        """No port of the server in Neutron; on the host, nothing of it."""
        ports = self.admin_ports_client.list_ports(
            device_id=server_id)['ports']
        self.assertEqual([], [p['id'] for p in ports],
                         'ports of server %s are left' % server_id)
        if CONF.nova_docker.host_checks:
            self.assertEqual({}, host.leftovers(server_id, port_ids),
                             'server %s left this on the host' % server_id)
