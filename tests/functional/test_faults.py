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

"""Faults a compute host lives through, on the real engine and OVS.

Each case checks what the server looks like afterwards, and that the host
keeps nothing of a server Nova no longer has.
"""

import contextlib
import copy
import io
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time

from nova import context as nova_context
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from oslo_utils import uuidutils

from novadocker import privsep
from novadocker.virt.docker import vifs
from tests.functional import engine_proxy
from tests.functional import private_engine
from tools.harness import base
from tools.harness import fixtures as nd_fixtures


class FaultsTestCase(base.NetworkedTestBase):

    FLAVOR_MEMORY_MB = 64

    def restart_compute(self):
        host = self.hosts[0]
        return self.restart_compute_service(self.computes[host],
                                            keep_hypervisor_state=False)

    def test_restart_with_vanished_containers(self):
        kept = self.boot_on_net()
        gone = self.boot_on_net()
        for c in self.containers_of(gone):
            c.remove(force=True)
        # The service comes up and serves the other server.
        compute = self.restart_compute()
        compute.manager._sync_power_states(nova_context.get_admin_context())
        kept = self._wait_for_server_parameter(
            kept, {'status': 'ACTIVE', 'OS-EXT-STS:power_state': 1})
        self.assertEqual('running', self.workload(kept).status)
        self.assertWired(kept)
        gone = self._wait_for_server_parameter(
            gone, {'OS-EXT-STS:power_state': 0})  # NOSTATE
        self._delete_server(gone)
        self.assertNoLeftovers(gone['id'])
        self._delete_server(kept)
        self.assertNoLeftovers(kept['id'])

    def test_orphans_removed_at_start_up(self):
        orphan = self.boot(flavor_id=self.flavor)
        host = self.hosts[0]
        compute = self.computes[host]
        compute.stop()
        service = self.admin_api.get_services(
            host=host, binary='nova-compute')[0]
        self.admin_api.put_service_force_down(service['id'], True)
        # Deleted while the compute service was down: Nova forgets it, the
        # engine still has its containers.
        self.api.delete_server(orphan['id'])
        self._wait_until_deleted(orphan)
        self.assertEqual(2, len(self.containers_of(orphan)))
        self.admin_api.put_service_force_down(service['id'], False)
        self.restart_compute_service(compute, keep_hypervisor_state=False)
        self.assertNoLeftovers(orphan['id'])

    def foreign_link(self, live):
        """A namespace link as a compute host on another engine leaves.

        *live*: whether the namespace it names still exists.
        """
        proc = subprocess.Popen(['unshare', '--net', 'sleep', '300'])
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        target = '/proc/%d/ns/net' % proc.pid
        for _ in range(50):
            if os.path.exists(target) and os.readlink(target) != \
                    os.readlink('/proc/self/ns/net'):
                break
            time.sleep(0.1)
        if not live:
            proc.kill()
            proc.wait()
        link = '/var/run/netns/nova-%s' % uuidutils.generate_uuid()
        os.makedirs('/var/run/netns', exist_ok=True)
        os.symlink(target, link)
        self.addCleanup(lambda: os.path.lexists(link) and os.unlink(link))
        return link

    def test_start_up_keeps_links_of_other_engines_servers(self):
        # Several compute hosts on one machine may each have their engine;
        # a link whose server this engine does not know is another's while
        # its namespace lives, an orphan once it is gone.
        alive = self.foreign_link(live=True)
        dead = self.foreign_link(live=False)
        self.restart_compute()
        self.assertTrue(os.path.lexists(alive))
        self.assertFalse(os.path.lexists(dead))

    def test_host_boot_resumes_running_servers_wired(self):
        self.flags(resume_guests_state_on_host_boot=True)
        server = self.boot_on_net()
        stopped = self.boot(flavor_id=self.flavor)
        self.api.post_server_action(stopped['id'], {'os-stop': None})
        stopped = self._wait_for_state_change(stopped, 'SHUTOFF')
        # What a host boot does to the containers: every process killed,
        # the namespaces (and the veths in them) gone.
        for c in self.containers_of(server):
            c.kill()
        self.restart_compute()
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:power_state': 1})
        for _ in range(60):
            if self.workload(server).status == 'running':
                break
            time.sleep(0.5)
        self.assertEqual('running', self.workload(server).status)
        self.assertWired(server)
        # A server that was stopped stays stopped.
        self.assertEqual('exited', self.workload(stopped).status)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])
        self._delete_server(stopped)
        self.assertNoLeftovers(stopped['id'])

    def test_engine_stopping_a_server_behind_novas_back(self):
        # A dockerd restart without live-restore stops every container;
        # the engine watch brings the server back, wired, sandbox first.
        self.flags(engine_watch_interval=1, group='docker')
        self.restart_compute()
        server = self.boot_on_net()
        old_pid = self.sandbox(server).attrs['State']['Pid']
        for c in self.containers_of(server):
            c.stop(timeout=1)
        for _ in range(60):
            if self.workload(server).status == 'running':
                break
            time.sleep(0.5)
        self.assertEqual('running', self.workload(server).status)
        self.assertNotEqual(old_pid,
                            self.sandbox(server).attrs['State']['Pid'])
        self.assertWired(server)
        self.assertEqual('ACTIVE', self.api.get_server(server['id'])['status'])
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])


class ConformanceTestCase(base.DockerFunctionalTestBase):
    """Nova's virt-driver expectations (test_virt_drivers), real engine."""

    def setUp(self):
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=64, vcpu=1, disk=1,
                                          ephemeral=0)
        self.driver = self.computes[self.hosts[0]].driver
        self.ctxt = nova_context.get_admin_context()

    def instance_of(self, server):
        return objects.Instance.get_by_uuid(
            self.ctxt, server['id'], expected_attrs=['flavor', 'info_cache',
                                                     'metadata',
                                                     'system_metadata'])

    def never_spawned(self):
        server = self.boot(flavor_id=self.flavor)
        instance = self.instance_of(server)
        self._delete_server(server)
        return instance

    def test_never_spawned_server(self):
        instance = self.never_spawned()
        self.assertFalse(self.driver.instance_exists(instance))
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.get_info, instance)
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.power_off, instance)
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.get_console_output, self.ctxt,
                          instance)
        self.assertNotIn(instance.uuid, self.driver.list_instance_uuids())
        # destroy of what is not there succeeds, twice.
        self.driver.destroy(self.ctxt, instance, [])
        self.driver.destroy(self.ctxt, instance, [])
        self.assertNoLeftovers(instance.uuid)

    def test_idempotent_power_operations_and_resume(self):
        server = self.boot(flavor_id=self.flavor)
        instance = self.instance_of(server)
        nets = instance.get_network_info()
        self.driver.power_on(self.ctxt, instance, nets)  # already running
        self.assertEqual(1, self.driver.get_info(instance).state)
        self.driver.power_off(instance)
        self.driver.power_off(instance)
        self.assertEqual(4, self.driver.get_info(instance).state)  # SHUTDOWN
        self.driver.power_on(self.ctxt, instance, nets)
        self.driver.power_on(self.ctxt, instance, nets)
        self.assertEqual('running', self.workload(server).status)
        # Resume of a server that is not suspended: nothing changes.
        self.driver.resume(self.ctxt, instance, nets)
        self.assertEqual(1, self.driver.get_info(instance).state)
        self.driver.pause(instance)
        self.driver.pause(instance)
        self.driver.unpause(instance)
        self.driver.unpause(instance)
        self.assertEqual('running', self.workload(server).status)
        self.driver.reboot(self.ctxt, instance, nets, 'HARD')
        self.assertEqual('running', self.workload(server).status)
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])

    def test_hypervisor_at_every_microversion(self):
        hypervisor_id = None
        for version in ('2.27', '2.28', '2.53', '2.87', '2.88', 'latest'):
            self.admin_api.microversion = version
            listed = self.admin_api.api_get(
                '/os-hypervisors').body['hypervisors']
            hypervisor_id = [h['id'] for h in listed
                             if h['hypervisor_hostname'] == self.hosts[0]][0]
            shown = self.admin_api.api_get(
                '/os-hypervisors/%s' % hypervisor_id).body['hypervisor']
            if version in ('2.28', '2.53', '2.87'):
                self.assertIsInstance(shown['cpu_info'], dict)
                self.assertIn('topology', shown['cpu_info'])


class EngineRefusalTestCase(base.DockerFunctionalTestBase):
    """The engine refusing create, start and remove.

    Through a private fault-injecting proxy in front of the real engine.
    """

    WORKLOAD_CREATE = r'/containers/create\?name=nova-[0-9a-f-]{36}$'

    def setUp(self):
        directory = tempfile.mkdtemp(prefix='nd-guest-proxy-', dir='/run')
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        self.proxy = engine_proxy.EngineProxy(
            os.path.join(directory, 'docker.sock'))
        self.addCleanup(self.proxy.close)
        super().setUp()
        self.flavor = self._create_flavor(memory_mb=64, vcpu=1, disk=1,
                                          ephemeral=0)

    def _configure(self):
        super()._configure()
        self.flags(api_url=self.proxy.url, group='docker')

    def refuse(self, *args, **kwargs):
        rule = engine_proxy.Rule(*args, **kwargs)
        self.proxy.rules.append(rule)
        return rule

    def test_engine_refuses_create(self):
        rule = self.refuse('POST', self.WORKLOAD_CREATE, 500,
                           'injected: create refused')
        self.assertBootFailsCleanly(['create refused'])
        self.assertEqual(1, rule.hits)

    def test_engine_fails_at_start(self):
        # The sandbox's start goes through; the workload's is refused.
        rule = self.refuse('POST', r'/containers/[0-9a-f]{64}/start$', 500,
                           'injected: containerd gone', skip=1)
        server = self.assertBootFailsCleanly(['containerd gone',
                                              'Docker engine failed'])
        self.assertEqual(1, rule.hits)
        self.assertNotIn('os_command_line', server['fault']['message'])

    def test_engine_refuses_remove_then_delete_completes(self):
        server = self.boot(flavor_id=self.flavor)
        rule = self.refuse('DELETE', r'/containers/[0-9a-f]{64}', 500,
                           'injected: device busy')
        self.api.delete_server(server['id'])
        server = self._wait_for_state_change(server, 'ERROR')
        self.assertEqual(1, rule.hits)
        # Nothing is forgotten: the retried delete removes everything.
        self._delete_server(server)
        self.assertNoLeftovers(server['id'])


class PrivateEngineTestCase(base.NetworkedTestBase):
    """Compute services on a private dockerd, removed after the test.

    For faults that would touch the shared engine: restarting it, or
    loads and uploads whose leftovers must be told apart from others'.
    """

    FLAVOR_MEMORY_MB = 64
    LIVE_RESTORE = False

    def setUp(self):
        self.engine = private_engine.PrivateEngine(
            live_restore=self.LIVE_RESTORE)
        self.useFixture(self.engine)
        self.engine.load(nd_fixtures.BUSYBOX_IMAGE)
        self.engine_url = self.engine.url
        # The privileged side checks each sandbox on the engine itself,
        # reading [docker] api_url from nova-compute's config files, as
        # privsep-helper does in a real nova-compute. A daemon an earlier
        # test started knows the shared engine: start ours afresh, and
        # leave a fresh one to the next test.
        self.privsep_conf = os.path.join(self.engine.root, 'nova.conf')
        with open(self.privsep_conf, 'w') as f:
            f.write('[docker]\napi_url = %s\n' % self.engine.url)
        privsep.netns_admin.stop()
        self.addCleanup(privsep.netns_admin.stop)
        super().setUp()

    def _configure(self):
        super()._configure()
        self.flags(api_url=self.engine.url, group='docker')
        self.flags(engine_watch_interval=1, group='docker')
        self.flags(helper_command='%s --config-file %s' % (
            base.PRIVSEP_HELPER, self.privsep_conf),
            group='nova_docker_privileged')

    def engine_images(self):
        with contextlib.closing(self.engine.client()) as client:
            return sorted(i.id for i in client.images.list(all=True))

    def engine_tmp(self):
        """What the engine keeps in its temporary directory (loads)."""
        return os.listdir(os.path.join(self.engine.root, 'data', 'tmp'))

    def delete_and_remove_engine(self, *servers):
        self.delete_all(*servers)
        self.engine.remove()
        self.assertEqual([], self.engine.leftovers())


class EngineRestartTestCase(PrivateEngineTestCase):
    """dockerd killed and restarted under running servers.

    On a private engine: the shared one is never restarted.
    """

    def two_servers_talking(self):
        a = self.boot_on_net()
        b = self.boot_on_net()
        self.assertTalking(a, b)
        return a, b

    def assertTalking(self, a, b):
        for server in (a, b):
            self.assertWired(server)
        self.assertPings(a, b)
        self.assertPings(b, a)
        self.assertTcp(a, b)
        self.assertTcp(b, a)

    def ofport(self, server):
        port = list(base.ovs_ports_of(server['id']))[0]
        return subprocess.run(
            ['ovs-vsctl', '--timeout=10', 'get', 'Interface', port,
             'ofport'], capture_output=True, text=True,
            check=True).stdout.strip()

    def pids(self, *servers):
        return [self.container_of(s, role).attrs['State']['Pid']
                for s in servers for role in ('sandbox', 'workload')]

    def wait_running(self, *servers):
        for _ in range(120):
            if all(self.workload(s).status == 'running' for s in servers):
                return
            time.sleep(0.5)
        self.fail('not running again: %s' % [
            (s['id'], self.workload(s).status) for s in servers])


class EngineRestartWithoutLiveRestoreTestCase(EngineRestartTestCase):

    def test_dockerd_killed_and_restarted(self):
        a, b = self.two_servers_talking()
        before = self.pids(a, b)
        # A crash: dockerd and its containerd die; started again, the
        # engine stops every container it finds.
        self.engine.restart()
        for server in (a, b):
            self.assertEqual('exited', self.sandbox(server).status)
        # The engine watch starts them again: sandbox, wiring, workload.
        self.wait_running(a, b)
        after = self.pids(a, b)
        self.assertEqual([], [p for p in after if p in before])
        for server in (a, b):
            found = self._wait_for_server_parameter(
                server, {'status': 'ACTIVE', 'OS-EXT-STS:power_state': 1})
            self.assertIsNone(found['OS-EXT-STS:task_state'])
        self.assertTalking(a, b)
        self.delete_and_remove_engine(a, b)


class EngineRestartWithLiveRestoreTestCase(EngineRestartTestCase):

    LIVE_RESTORE = True

    def test_dockerd_killed_and_restarted(self):
        a, b = self.two_servers_talking()
        before = self.pids(a, b)
        ofports = [self.ofport(s) for s in (a, b)]
        # The containers live on without the engine.
        self.engine.restart()
        self.assertEqual(before, self.pids(a, b))
        self.assertEqual(ofports, [self.ofport(s) for s in (a, b)])
        self.assertTalking(a, b)
        for server in (a, b):
            self.assertEqual('ACTIVE',
                             self.api.get_server(server['id'])['status'])
        self.delete_and_remove_engine(a, b)


class GlanceFaultsTestCase(PrivateEngineTestCase):
    """Glance failing under a boot or a snapshot, through Nova's API.

    On a private engine, so that every image, container and temporary
    file of the engine is this test's.
    """

    def setUp(self):
        super().setUp()
        self.images_before = self.engine_images()

    def assertEngineClean(self, *server_ids):
        for server_id in server_ids:
            self.assertNoLeftovers(server_id)
        with contextlib.closing(self.engine.client()) as client:
            self.assertEqual([], client.containers.list(all=True))
        self.assertEqual(self.images_before, self.engine_images())
        self.assertEqual([], self.engine_tmp())

    def cut_download(self, error):
        data = nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE)
        image_id = self.glance.add_image(data, 'cut')
        self.glance.cuts[image_id] = (len(data) // 2, error)
        server = self.assertBootFailsCleanly(
            [image_id], image_id=image_id, flavor_id=self.flavor,
            networks=[{'uuid': self.net}])
        self.assertEqual(1, self.glance.downloads[image_id])
        self.assertEqual(len(data) // 2, self.glance.bytes_served[image_id])
        self.assertEngineClean(server['id'])
        return server['fault']['message']

    def test_download_reset_mid_way(self):
        fault = self.cut_download(
            ConnectionResetError(104, 'injected: connection reset by peer'))
        self.assertIn('Downloading image', fault)
        self.assertIn('connection reset by peer', fault)

    def test_download_ending_early(self):
        fault = self.cut_download(None)
        self.assertIn('archive', fault)

    def test_delete_during_snapshot(self):
        server = self.boot_on_net()
        self.glance.hold_uploads = True
        self.addCleanup(self.glance.release_upload.set)
        snapshot_id = self.api.post_server_action(
            server['id'], {'createImage': {'name': 'snap'}})['image_id']
        self.assertTrue(self.glance.upload_started.wait(120))
        # Deleted while the upload streams: the delete does not wait for
        # it, and the upload goes on from the committed image.
        self.api.delete_server(server['id'])
        self._wait_until_deleted(server)
        self.assertNoLeftovers(server['id'])
        self.glance.release_upload.set()
        # Nova keeps a snapshot that finished uploading (it deletes only
        # one that did not): a whole archive, and nothing else is left.
        for _ in range(120):
            if self.glance._imagedata.get(snapshot_id):
                break
            time.sleep(0.5)
        uploaded = self.glance._imagedata.get(snapshot_id, b'')
        self.assertEqual('active',
                         self.glance.show(None, snapshot_id)['status'])
        with tarfile.open(fileobj=io.BytesIO(uploaded)) as tar:
            self.assertIn('manifest.json', tar.getnames())
        for _ in range(60):
            if self.engine_images() == self.images_before:
                break
            time.sleep(0.5)
        self.assertEngineClean(server['id'])


class ConcurrencyTestCase(base.NetworkedTestBase):
    """20 servers spawned, then destroyed, at once, at the driver boundary.

    Through Nova's in-process API this deadlocks in Nova's CellDatabases
    fixture under native threads (the fixture's reader/writer lock is held
    across a cell's database work; a writer waiting on it blocks the
    readers a build thread needs). So native threads call the driver as
    nova-compute's build and delete threads do, on the real engine, OVS,
    privsep and rootwrap, with Nova objects of a server booted through the
    API as the template.
    """

    COUNT = 20
    FLAVOR_MEMORY_MB = 64

    def servers_like(self, server):
        ctxt = nova_context.get_admin_context()
        template = objects.Instance.get_by_uuid(
            ctxt, server['id'], expected_attrs=[
                'flavor', 'info_cache', 'metadata', 'system_metadata'])
        vif = template.get_network_info()[0]
        made = []
        for index in range(self.COUNT):
            instance = template.obj_clone()
            instance.uuid = uuidutils.generate_uuid()
            port = copy.deepcopy(vif)
            port['id'] = uuidutils.generate_uuid()
            port['address'] = 'fa:16:3e:' + ':'.join(
                '%02x' % random.randint(0, 255) for _ in range(3))
            port['network']['subnets'][0]['ips'][0]['address'] = (
                '192.168.1.%d' % (200 + index))
            made.append((instance, network_model.NetworkInfo([port])))
        # Nothing of them may outlive the test, even when it fails.
        self.booted.extend(i.uuid for i, _ in made)
        return ctxt, objects.ImageMeta.from_instance(template), made

    def at_once(self, call, made):
        """Run call(instance, network_info) in one thread per server."""
        barrier = threading.Barrier(len(made))
        errors = []

        def run(instance, network_info):
            try:
                barrier.wait(60)
                call(instance, network_info)
            except Exception as e:
                errors.append('%s: %r' % (instance.uuid, e))

        threads = [threading.Thread(target=run, args=pair) for pair in made]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        self.assertEqual([], errors)
        self.assertFalse([t for t in threads if t.is_alive()])

    def assertWiredAt(self, instance, network_info):
        vif = network_info[0]
        ip = vif['network']['subnets'][0]['ips'][0]['address']
        self.assertEqual('running', self.workload(instance.uuid).status)
        code, out = self.exec_in(instance.uuid, 'ip', '-o', '-4', 'addr',
                                 'show', 'eth0')
        self.assertEqual(0, code, out)
        self.assertIn('inet %s/' % ip, out)
        self.assertEqual(1, len(base.ovs_ports_of(instance.uuid)))
        self.assertTrue(os.path.lexists(
            '/var/run/netns/nova-%s' % instance.uuid))

    def test_twenty_spawns_then_twenty_destroys_leave_nothing(self):
        server = self.boot_on_net()
        driver = self.computes[self.hosts[0]].driver
        ctxt, image_meta, made = self.servers_like(server)
        self.at_once(lambda i, n: driver.spawn(
            ctxt, i, image_meta, [], None, {}, network_info=n), made)
        for instance, network_info in made:
            self.assertWiredAt(instance, network_info)
        self.at_once(lambda i, n: driver.destroy(ctxt, i, n), made)
        for instance, network_info in made:
            self.assertNoLeftovers(instance.uuid)
            tap = vifs.host_device_name(network_info[0]['id'])
            self.assertFalse(os.path.exists('/sys/class/net/' + tap), tap)
        self.assertEqual(set(driver.list_instance_uuids()), {server['id']})
        self.delete_all(server)
