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

"""Hostile tenants: images, properties, metadata, names and user data.

Every server, whatever its image or properties say, shows the capability
drop, the ulimits and no privilege in ``docker inspect``; hostile input is
refused with a fault, or neutralised, and leaves nothing behind.
"""

import base64
import io

from nova.tests.functional.api import client as api_client
from oslo_utils import uuidutils

from novadocker.virt.docker import exception
from tools.harness import base
from tools.harness import fixtures as nd_fixtures

DROPPED = ['NET_RAW', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP', 'SYS_CHROOT',
           'SETPCAP']

# An image whose config asks for everything it can ask for.
GREEDY_DOCKERFILE = b'''FROM nova-docker/busybox:latest
USER root
VOLUME ["/data", "/var/lib/greedy"]
EXPOSE 22 80/udp
HEALTHCHECK --interval=1s CMD ["/bin/sh", "-c", "echo probe >> /tmp/hc"]
STOPSIGNAL SIGUSR1
CMD ["/bin/sh", "-c", "ping -c1 127.0.0.1 2>&1; echo ready; exec sleep 9999"]
'''

# Properties another driver (or the retired nova-docker) might have read.
GREEDY_PROPERTIES = {
    'docker_privileged': 'true',
    'docker_cap_add': 'ALL',
    'docker_devices': '/dev/sda:/dev/sda',
    'docker_volumes': '/:/host',
    'docker_network_mode': 'host',
    'docker_pid_mode': 'host',
    'docker_security_opt': 'seccomp=unconfined',
    'docker_userns_mode': 'host',
}


class HardeningTestCase(base.DockerFunctionalTestBase):

    CAP_KEEP = ()

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                          ephemeral=0)

    def greedy_image(self):
        """Build the greedy image on the engine; return its Glance id."""
        tag = 'nd-guest-test/greedy:%s' % uuidutils.generate_uuid()[:8]
        client = self.docker()
        client.images.build(fileobj=io.BytesIO(GREEDY_DOCKERFILE), tag=tag,
                            rm=True, forcerm=True, network_mode='none')
        self.addCleanup(client.images.remove, tag, force=True)
        return self.glance.add_image(nd_fixtures.docker_save(tag), 'greedy',
                                     **GREEDY_PROPERTIES)

    def assertHardened(self, server):
        attrs = self.workload(server).attrs
        host = attrs['HostConfig']
        self.assertEqual(sorted(DROPPED), sorted(host['CapDrop']))
        self.assertFalse(host['CapAdd'])
        self.assertFalse(host['Privileged'])
        self.assertIn('no-new-privileges', host['SecurityOpt'])
        self.assertEqual(
            [{'Name': 'nofile', 'Soft': 16384, 'Hard': 16384},
             {'Name': 'nproc', 'Soft': 4096, 'Hard': 4096}],
            host['Ulimits'])
        self.assertFalse(host['Devices'])
        self.assertFalse(host['Binds'])
        self.assertFalse(host['PortBindings'])
        self.assertFalse(host['PublishAllPorts'])
        self.assertEqual('', host['PidMode'])
        self.assertEqual('', host['UsernsMode'])
        self.assertEqual('private', host['IpcMode'])
        self.assertTrue(host['NetworkMode'].startswith('container:'))
        self.assertEqual({'max-size': '10m', 'max-file': '3'},
                         host['LogConfig']['Config'])
        return attrs

    def test_default_hardening_shown_by_inspect(self):
        server = self.boot(flavor_id=self.flavor)
        self.assertHardened(server)
        # The tenant's own root process has no raw sockets.
        code, out = self.exec_in(server, 'ping', '-c1', '-W1', '127.0.0.1')
        self.assertNotEqual(0, code)
        self.assertIn('permission denied', out)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_greedy_image_and_properties_get_nothing_more(self):
        image = self.greedy_image()
        server = self.boot(image_id=image, flavor_id=self.flavor)
        attrs = self.assertHardened(server)
        self.assertEqual(['NONE'], attrs['Config']['Healthcheck']['Test'])
        # Its own ping, run by its own command, is refused.
        output = self.console(server, 'ready')
        self.assertIn('permission denied', output)
        # VOLUMEs are anonymous volumes of this container only...
        volumes = [m['Name'] for m in attrs['Mounts']
                   if m['Type'] == 'volume']
        self.assertEqual(2, len(volumes))
        client = self.docker()
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])
        # ...and go with the server.
        left = [v.name for v in client.volumes.list() if v.name in volumes]
        self.assertEqual([], left)

    def test_four_vcpus_on_a_two_cpu_host(self):
        cpus = self.docker().info()['NCPU']
        big = self._create_flavor(memory_mb=128, vcpu=cpus * 2, disk=1,
                                  ephemeral=0)
        server = self.boot(flavor_id=big)
        self.assertEqual(cpus * 10 ** 9,
                         self.workload(server).attrs['HostConfig']['NanoCpus'])
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_root_disk_quota_where_the_engine_allows_it(self):
        server = self.boot(flavor_id=self.flavor)
        storage = self.workload(server).attrs['HostConfig'].get('StorageOpt')
        # overlay2 caps the writable layer only on xfs with pquota; the
        # driver asked the engine at start-up and sets no size where it
        # would refuse it, instead of failing every boot.
        info = self.docker().info()
        backing = dict(info['DriverStatus']).get('Backing Filesystem')
        if info['Driver'] == 'overlay2' and backing != 'xfs':
            self.assertFalse(storage)
        else:
            self.assertEqual({'size': '1G'}, storage)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_unknown_runtime_stops_the_service(self):
        self.flags(runtime='nd-no-such-runtime', group='docker')
        err = self.assertRaises(exception.UnknownRuntime,
                                self.start_compute, 'rt')
        self.assertIn('nd-no-such-runtime', str(err))
        self.assertIn('runc', str(err))


class HostileInputTestCase(base.DockerFunctionalTestBase):
    """Each case: a fault, an API refusal or a neutralised outcome.

    And nothing left behind.
    """

    CAP_KEEP = ()

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                          ephemeral=0)

    def fails(self, expected, **kwargs):
        kwargs.setdefault('flavor_id', self.flavor)
        return self.assertBootFailsCleanly(expected, **kwargs)

    def refused_by_api(self, **server_kwargs):
        server = self._build_server(image_uuid=nd_fixtures.BUSYBOX_IMAGE_ID,
                                    flavor_id=self.flavor, networks='none')
        server.update(server_kwargs)
        err = self.assertRaises(api_client.OpenStackApiException,
                                self.api.post_server, {'server': server})
        self.assertEqual(400, err.response.status_code)
        self.assertEqual([], [c.name for c in self.docker().containers.list(
            all=True, filters={'label': '%s=%s' % (base.LABEL_HOST,
                                                   self.hosts[0])})])

    def env_of(self, server):
        return self.workload(server).attrs['Config']['Env']

    def test_ld_preload_metadata_refused(self):
        self.fails(['LD_PRELOAD', 'refused'],
                   metadata={'LD_PRELOAD': '/tmp/evil.so'})

    def test_ld_library_path_metadata_refused(self):
        self.fails(['LD_LIBRARY_PATH'],
                   metadata={'LD_LIBRARY_PATH': '/tmp'})

    def test_nul_in_metadata_value_refused(self):
        self.fails(['NUL'], metadata={'GREETING': 'a\x00b'})

    def test_equals_in_metadata_key_refused_by_api(self):
        self.refused_by_api(metadata={'A=B': 'c'})

    def test_huge_metadata_value_refused_by_api(self):
        self.refused_by_api(metadata={'BIG': 'x' * 256})

    def test_dash_in_metadata_key_refused(self):
        self.fails(["'has-dash'"], metadata={'has-dash': 'x'})

    def test_newline_in_metadata_value_is_one_variable(self):
        server = self.boot(flavor_id=self.flavor,
                           metadata={'GREETING': 'hi\nEVIL=1'})
        env = self.env_of(server)
        self.assertIn('GREETING=hi\nEVIL=1', env)
        self.assertFalse([e for e in env if e.startswith('EVIL=')])
        # The sandbox gets no tenant metadata at all.
        sandbox = [c for c in self.containers_of(server)
                   if c.labels['org.openstack.nova.role'] == 'sandbox'][0]
        self.assertFalse([e for e in sandbox.attrs['Config']['Env'] or []
                          if e.startswith('GREETING=')])
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_path_metadata_only_changes_the_workload(self):
        server = self.boot(flavor_id=self.flavor,
                           metadata={'PATH': '/nonexistent'})
        self.assertIn('PATH=/nonexistent', self.env_of(server))
        self.assertEqual('running', self.workload(server).status)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_oversize_name_and_user_data(self):
        user_data = base64.b64encode(b'#!/bin/sh\n' + b'x' * 40000).decode()
        server = self._build_server(
            image_uuid=nd_fixtures.BUSYBOX_IMAGE_ID, flavor_id=self.flavor,
            networks='none', name='n' * 255)
        server['user_data'] = user_data
        created = self.api.post_server({'server': server})
        self.booted.append(created['id'])
        server = self._wait_for_state_change(created, 'ACTIVE')
        attrs = self.workload(server).attrs
        self.assertLessEqual(len(attrs['Config']['Hostname']), 63)
        self.assertEqual('nova-%s' % server['id'], self.workload(server).name)
        text = repr(attrs)
        self.assertNotIn('x' * 100, text)
        self.assertNotIn('n' * 100, text)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_name_over_255_refused_by_api(self):
        self.refused_by_api(name='n' * 256)

    def test_bad_tty_property_refused(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'tty',
            docker_tty='maybe')
        self.fails(['docker_tty', 'boolean'], image_id=image)

    def test_oversize_command_line_refused(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'long',
            os_command_line='/bin/sh -c ' + 'x' * 5000)
        # Nova itself keeps only 255 characters of it.
        self.fails(['os_command_line', '255 characters'], image_id=image)

    def test_nul_in_command_line_refused(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'nul',
            os_command_line='/bin/sh\x00-c id')
        self.fails(['os_command_line', 'NUL'], image_id=image)

    def test_user_from_image_is_kept_without_privilege(self):
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'whoami',
            os_command_line="/bin/sh -c 'echo caps=$(grep CapEff "
                            "/proc/self/status); exec sleep 3600'")
        server = self.boot(image_id=image, flavor_id=self.flavor)
        output = self.console(server, 'caps=')
        # Docker's default set minus the driver's drop: 0xa80425fb minus
        # NET_RAW, MKNOD, AUDIT_WRITE, SETFCAP, SYS_CHROOT, SETPCAP.
        effective = int(output.split('caps=CapEff:')[1].split()[0], 16)
        for bit in (13, 27, 29, 31, 18, 8):
            self.assertFalse(effective & (1 << bit), hex(effective))
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])
