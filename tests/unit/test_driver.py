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

"""The driver's decisions, against an in-memory engine (no root, no daemon).

Spawn order and cleanup, start/stop ordering, idempotent power operations,
error translation, start-up reconciliation and resume after a host boot.
"""

import contextlib
import json
import logging

import fixtures
from nova.compute import power_state
from nova.compute import vm_states
from nova import exception as nova_exception
from nova.network import model as network_model
from nova import objects
from nova import test
from oslo_utils import uuidutils

from novadocker.virt.docker import driver
from novadocker.virt.docker import engine as docker_engine
from novadocker.virt.docker import exception
from novadocker.virt.docker import spec
from tests.unit import fake_engine

objects.register_all()

BUSYBOX = 'nova-docker/busybox:latest'


class _VirtAPI:
    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, events, deadline=300,
                                error_callback=None, timeout=None):
        yield


def make_instance(vcpus=1, metadata=None, system_metadata=None, root_gb=1):
    flavor = objects.Flavor(name='m1.test', vcpus=vcpus, memory_mb=128,
                            root_gb=root_gb, extra_specs={})
    return objects.Instance(
        uuid=uuidutils.generate_uuid(), id=7, project_id='p1',
        hostname='web-1', flavor=flavor, metadata=metadata or {},
        system_metadata=system_metadata or {}, vm_state=vm_states.ACTIVE,
        task_state=None, power_state=power_state.RUNNING, host='h1',
        config_drive='', launched_at=None, user_data=None, image_ref='',
        info_cache=objects.InstanceInfoCache(network_info=PORTS))


PORTS = network_model.NetworkInfo.hydrate(
    [{'id': 'port-1', 'network': {'subnets': []}, 'active': True}])


class DriverTestBase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.engine = self.useFixture(fake_engine.FakeEngineFixture()).engine
        # The shared listing is per process: no test sees another's.
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.engine._listing',
            docker_engine._SharedListing()))
        self.engine.images.add('nova-docker/sandbox:1')
        self.net = fake_engine.FakeNetwork(self.engine)
        for name in ('plug_vifs', 'unplug_vifs'):
            self.useFixture(fixtures.MonkeyPatch(
                'novadocker.virt.docker.vifs.' + name,
                getattr(self.net, name)))
        self.vifs_init_error = None
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.vifs.initialize', self._vifs_initialize))
        for name in ('create_link', 'remove_link'):
            self.useFixture(fixtures.MonkeyPatch(
                'novadocker.virt.docker.netns.' + name,
                getattr(self.net, name)))
        # The image store check and the cross-process image lock are the
        # image path's, tested there; this engine holds the sandbox image.
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.image.sandbox.ensure_sandbox_image',
            lambda: None))
        # OVS is not here: the orphan ports are the functional tests' job;
        # the orphan links are this fake network's.
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.vifs.remove_orphans',
            self.net.remove_orphans))
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.image.load.ensure_image',
            lambda context, image_meta, instance: BUSYBOX))
        self.nova_instances = []
        # No database: no server is moving away (test_migration sets some).
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.migration.servers_moving_from',
            lambda context, host: []))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.objects.InstanceList.get_by_host', self._get_by_host))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.objects.Instance.refresh', lambda inst: None))
        self.useFixture(fixtures.MonkeyPatch('time.sleep', self._sleep))
        # The fake engine's pids are no processes here: /proc of this
        # host must not decide how a soft reboot goes.
        self.proc = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.server._PROC_STATUS',
            self.proc + '/%d/status'))
        self.slept = []
        self.flags(engine_watch_interval=0, group='docker')
        self.flags(vif_plugging_timeout=0)
        self.driver = driver.DockerDriver(_VirtAPI())
        self.driver.init_host('h1')
        self.engine.events.clear()

    def _vifs_initialize(self):
        if self.vifs_init_error:
            raise self.vifs_init_error

    def _get_by_host(self, cls, context, host, expected_attrs=None):
        if isinstance(self.nova_instances, Exception):
            raise self.nova_instances
        return list(self.nova_instances)

    def _sleep(self, seconds):
        self.slept.append(seconds)
        if len(self.slept) >= 2:
            self.engine.down = False

    def spawn(self, instance=None, network_info=PORTS, **kwargs):
        instance = instance or make_instance(**kwargs)
        self.driver.spawn(None, instance, None, [], None, {},
                          network_info=network_info)
        self.nova_instances.append(instance)
        return instance

    def states(self, instance):
        return {c['Labels'][spec.LABEL_ROLE]: c['State']['Status']
                for c in self.engine.containers.values()
                if c['Labels'].get(spec.LABEL_UUID) == instance.uuid}

    def assertNothingLeft(self, instance):
        self.assertEqual({}, self.states(instance))
        self.assertNotIn(instance.uuid, self.net.ports)
        self.assertNotIn(instance.uuid, self.net.links)


class SpawnTestCase(DriverTestBase):

    def test_sandbox_is_wired_before_the_workload_starts(self):
        inst = self.spawn()
        sandbox, workload = 'nova-%s-sandbox' % inst.uuid, 'nova-' + inst.uuid
        self.assertEqual([('create', sandbox), ('create', workload),
                          ('start', sandbox), ('plug', inst.uuid),
                          ('start', workload)], self.engine.events)
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(inst))
        self.assertEqual(['port-1'], self.net.ports[inst.uuid][1])
        self.assertIn(inst.uuid, self.net.links)
        self.assertEqual(power_state.RUNNING,
                         self.driver.get_info(inst).state)

    def test_the_image_comes_before_the_wait_for_neutron(self):
        # Nova's network info is an asynchronous wrapper: its first use
        # waits for the port binding. The image must not wait behind it.
        order = []

        class Binding(network_model.NetworkInfo):
            def _first_use(self):
                if 'network' not in order:
                    order.append('network')

            def __len__(self):
                self._first_use()
                return super().__len__()

            def __iter__(self):
                self._first_use()
                return super().__iter__()

        def ensure_image(context, image_meta, instance):
            order.append('image')
            return BUSYBOX
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.image.load.ensure_image', ensure_image))
        inst = self.spawn(network_info=Binding(PORTS))
        self.assertEqual(['image', 'network'], order)
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(inst))

    def test_missing_command_is_the_images_fault(self):
        self.engine.missing_commands.add('/bin/nope')
        inst = make_instance(system_metadata={
            'image_os_command_line': '/bin/nope --flag'})
        err = self.assertRaises(exception.ContainerStartFailed,
                                self.spawn, inst)
        # InvalidInput: Nova aborts the build instead of rescheduling.
        self.assertIsInstance(err, nova_exception.InvalidInput)
        self.assertIn('/bin/nope --flag', str(err))
        self.assertIn('no such file', str(err))
        self.assertNothingLeft(inst)

    def test_engine_failure_at_start_is_rescheduled(self):
        inst = make_instance()
        self.engine.fail('start', 500, 'containerd: ttrpc closed',
                         workload_only=True)
        err = self.assertRaises(exception.ContainerEngineFailed,
                                self.spawn, inst)
        # Not InvalidInput: Nova reschedules the build to another host.
        self.assertNotIsInstance(err, nova_exception.InvalidInput)
        self.assertIn('ttrpc closed', str(err))
        self.assertNothingLeft(inst)

    def test_first_error_wins_over_cleanup_failure(self):
        inst = make_instance()
        self.engine.fail('create', 400, 'Minimum memory limit allowed is '
                                        '6MB', workload_only=True)
        self.engine.fail('remove', 500, 'device or resource busy')
        err = self.assertRaises(exception.DockerError, self.spawn, inst)
        self.assertIn('Minimum memory limit', str(err))
        self.assertNotIn('busy', str(err))

    def test_engine_refusing_remove_is_reported_on_delete(self):
        inst = self.spawn()
        self.engine.fail('remove', 500, 'device or resource busy')
        err = self.assertRaises(exception.DockerError, self.driver.destroy,
                                None, inst, PORTS)
        self.assertIn('busy', str(err))
        # Nova retries the delete; the second one completes.
        self.driver.destroy(None, inst, PORTS)
        self.assertNothingLeft(inst)

    def test_failed_create_leaves_nothing(self):
        inst = make_instance()
        self.engine.images.discard(BUSYBOX)
        self.assertRaises(exception.DockerObjectNotFound, self.spawn, inst)
        self.assertNothingLeft(inst)

    def test_failed_wiring_leaves_nothing(self):
        inst = make_instance()
        self.net.fail_plug = exception.VifPlugFailed(
            port_id='port-1', step='moving the veth', reason='gone')
        err = self.assertRaises(exception.VifPlugFailed, self.spawn, inst)
        self.assertIn('moving the veth', str(err))
        self.assertNothingLeft(inst)

    def test_bad_metadata_refused_before_anything_is_created(self):
        for metadata in ({'LD_PRELOAD': '/tmp/x.so'}, {'A': 'x\0y'},
                         {'a=b': 'c'}):
            inst = make_instance(metadata=metadata)
            self.assertRaises(nova_exception.InvalidInput, self.spawn, inst)
            self.assertEqual([], self.engine.events)

    def test_more_vcpus_than_the_host_has(self):
        inst = self.spawn(vcpus=4)
        workload = [c for c in self.engine.containers.values()
                    if c['Name'] == 'nova-' + inst.uuid][0]
        self.assertEqual(2 * 10 ** 9, workload['Config']['nano_cpus'])

    def test_root_disk_only_where_the_engine_supports_it(self):
        inst = self.spawn(root_gb=3)
        configs = [c['Config'] for c in self.engine.containers.values()]
        self.assertFalse(any('storage_opt' in c for c in configs))
        self.engine.quota_supported = True
        self.driver.init_host('h1')
        inst = self.spawn(root_gb=3)
        workload = [c for c in self.engine.containers.values()
                    if c['Name'] == 'nova-' + inst.uuid][0]
        self.assertEqual({'size': '3G'}, workload['Config']['storage_opt'])

    def test_image_volumes_go_with_the_server(self):
        self.engine.image_volumes[BUSYBOX] = ['/data', '/var/log']
        inst = self.spawn()
        self.assertEqual(2, len(self.engine.volumes))
        self.driver.destroy(None, inst, PORTS)
        self.assertEqual(set(), self.engine.volumes)
        self.assertNothingLeft(inst)


class PowerTestCase(DriverTestBase):

    def test_stop_workload_before_sandbox_and_start_in_spawn_order(self):
        inst = self.spawn()
        self.engine.events.clear()
        self.driver.power_off(inst)
        self.assertEqual([('stop', 'nova-' + inst.uuid),
                          ('stop', 'nova-%s-sandbox' % inst.uuid),
                          ('unplug', inst.uuid)], self.engine.events)
        self.assertNotIn(inst.uuid, self.net.links)
        self.assertEqual(power_state.SHUTDOWN,
                         self.driver.get_info(inst).state)
        self.engine.events.clear()
        self.driver.power_on(None, inst, PORTS)
        self.assertEqual([('start', 'nova-%s-sandbox' % inst.uuid),
                          ('plug', inst.uuid),
                          ('start', 'nova-' + inst.uuid)], self.engine.events)

    def test_power_operations_are_idempotent(self):
        inst = self.spawn()
        self.driver.power_on(None, inst, PORTS)
        self.driver.power_off(inst)
        self.driver.power_off(inst)
        self.assertEqual({'sandbox': 'exited', 'workload': 'exited'},
                         self.states(inst))
        self.driver.power_on(None, inst, PORTS)
        self.driver.pause(inst)
        self.driver.pause(inst)
        self.assertEqual(power_state.PAUSED, self.driver.get_info(inst).state)
        self.driver.unpause(inst)
        self.driver.unpause(inst)
        # Resume of a server that is not suspended is a no-op.
        self.driver.resume(None, inst, PORTS)
        self.assertEqual(power_state.RUNNING,
                         self.driver.get_info(inst).state)

    def test_power_off_a_paused_server(self):
        inst = self.spawn()
        self.driver.suspend(None, inst)
        self.driver.power_off(inst)
        self.assertEqual({'sandbox': 'exited', 'workload': 'exited'},
                         self.states(inst))

    def test_never_spawned_server(self):
        inst = make_instance()
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.get_info, inst)
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.power_off, inst)
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.reboot, None, inst, PORTS, 'HARD')
        self.assertFalse(self.driver.instance_exists(inst))
        # Deleting what does not exist succeeds (Nova retries deletes).
        self.driver.destroy(None, inst, PORTS)
        self.driver.destroy(None, inst, PORTS)
        self.assertNothingLeft(inst)

    def test_soft_reboot_keeps_the_wiring(self):
        inst = self.spawn()
        self.engine.events.clear()
        self.driver.reboot(None, inst, PORTS, 'SOFT')
        self.assertEqual([('stop', 'nova-' + inst.uuid),
                          ('start', 'nova-' + inst.uuid)], self.engine.events)

    def test_console_reads_the_end(self):
        inst = self.spawn()
        self.flags(console_log_max_bytes=1024, group='docker')
        workload = [c for c in self.engine.containers.values()
                    if c['Name'] == 'nova-' + inst.uuid][0]
        workload['Log'] = [b'line-%06d\n' % i for i in range(100000)]
        output = self.driver.get_console_output(None, inst)
        self.assertLessEqual(len(output), 1024)
        self.assertTrue(output.endswith('line-099999\n'))


class StartUpTestCase(DriverTestBase):

    def test_engine_late_at_start_up(self):
        self.engine.down = True
        self.driver.init_host('h1')
        self.assertEqual(2, len(self.slept))

    def test_engine_never_up(self):
        self.flags(engine_start_timeout=0, group='docker')
        self.engine.down = True
        self.slept.append(None)  # keep the fake sleep from reviving it
        self.assertRaises(exception.DockerUnreachable,
                          self.driver.init_host, 'h1')

    def test_ovsdb_down_does_not_stop_the_service(self):
        self.vifs_init_error = exception.OvsUnreachable(
            connection='unix:/x', reason='refused')
        inst = self.spawn()
        self.driver.init_host('h1')
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(inst))

    def test_unknown_runtime_is_refused(self):
        self.flags(runtime='runsc', group='docker')
        err = self.assertRaises(exception.UnknownRuntime,
                                self.driver.init_host, 'h1')
        self.assertIn('runc', str(err))
        self.engine.runtimes['runsc'] = {'path': 'runsc'}
        self.driver.init_host('h1')
        inst = self.spawn()
        workload = [c for c in self.engine.containers.values()
                    if c['Name'] == 'nova-' + inst.uuid][0]
        self.assertEqual('runsc', workload['Config']['runtime'])

    def test_orphans_of_this_host_only_are_removed(self):
        kept = self.spawn()
        orphan = self.spawn()
        other_host = driver.DockerDriver(_VirtAPI())
        other_host._host = 'h2'
        stranger = make_instance()
        other_host.spawn(None, stranger, None, [], None, {},
                         network_info=[])
        self.nova_instances.remove(orphan)
        self.driver.init_host('h1')
        self.assertEqual({}, self.states(orphan))
        self.assertNotIn(orphan.uuid, self.net.links)
        # Removed once (with the other orphan links), not twice.
        self.assertEqual([orphan.uuid], self.net.link_removals)
        self.assertIn(stranger.uuid, self.net.links)
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(kept))
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(stranger))

    def test_nova_unreachable_keeps_everything(self):
        inst = self.spawn()
        self.nova_instances = nova_exception.NovaException('db down')
        self.driver.init_host('h1')
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(inst))

    def test_vanished_containers_do_not_stop_start_up(self):
        inst = self.spawn()
        for c in list(self.engine.containers.values()):
            self.engine.remove_container(c['Id'], force=True)
        self.driver.init_host('h1')
        # What Nova's _init_instance then calls:
        self.driver.plug_vifs(inst, PORTS)
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.driver.get_info, inst)

    def test_missing_sandbox_is_named(self):
        inst = self.spawn()
        self.driver.power_off(inst)
        sandbox = 'nova-%s-sandbox' % inst.uuid
        self.engine.remove_container(sandbox, force=True)
        self.driver.plug_vifs(inst, PORTS)
        err = self.assertRaises(exception.SandboxMissing,
                                self.driver.power_on, None, inst, PORTS)
        self.assertIn(inst.uuid, str(err))

    def test_host_boot_resumes_wired(self):
        inst = self.spawn()
        self.engine.kill_all()
        self.net.ports.clear()
        self.engine.events.clear()
        self.driver.resume_state_on_host_boot(None, inst, PORTS)
        self.assertEqual([('start', 'nova-%s-sandbox' % inst.uuid),
                          ('plug', inst.uuid),
                          ('start', 'nova-' + inst.uuid)], self.engine.events)

    def test_engine_restart_brings_running_servers_back(self):
        running = self.spawn()
        stopped = self.spawn()
        stopped.vm_state = vm_states.STOPPED
        stopped.power_state = power_state.SHUTDOWN
        self.engine.kill_all()
        self.driver._restart_stopped(
            ['%s' % running.uuid, '%s' % stopped.uuid])
        self.assertEqual({'sandbox': 'running', 'workload': 'running'},
                         self.states(running))
        self.assertEqual({'sandbox': 'exited', 'workload': 'exited'},
                         self.states(stopped))
        self.assertIn(running.uuid, self.net.ports)

    def test_listing_is_scoped_and_tolerates_deletes(self):
        a = self.spawn()
        b = self.spawn()
        self.assertEqual(sorted([a.uuid, b.uuid]),
                         sorted(self.driver.list_instance_uuids()))
        self.driver.destroy(None, a, PORTS)
        self.assertEqual([b.uuid], self.driver.list_instance_uuids())
        self.assertEqual(1, self.driver.get_num_instances())

    def test_a_sandbox_alone_is_listed_for_nova_s_reaper(self):
        a = self.spawn()
        b = self.spawn()
        # Only the workload of a is gone (as after a spawn cut short).
        self.engine.remove_container('nova-%s' % a.uuid, force=True)
        self.assertEqual(sorted([a.uuid, b.uuid]),
                         self.driver.list_instance_uuids())
        self.assertEqual(1, self.driver.get_num_instances())

    def test_cpu_info_is_json(self):
        self.useFixture(fixtures.MonkeyPatch(
            'nova.objects.fields.Architecture.from_host',
            lambda cls: 'x86_64'))
        resources = self.driver.get_available_resource('h1')
        info = json.loads(resources['cpu_info'])
        self.assertIn('topology', info)
        self.assertGreaterEqual(resources['local_gb'],
                                resources['disk_available_least'])


class EngineWatchTestCase(DriverTestBase):

    def test_a_failing_watch_is_logged_as_a_warning(self):
        class StopAfterOne(object):
            rounds = []

            def wait(self, timeout):
                self.rounds.append(timeout)
                return len(self.rounds) > 1

        def stopped_sandboxes(host, interval):
            raise exception.DockerDriverError(reason='listing broke')

        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.engine.Engine.stopped_sandboxes',
            stopped_sandboxes))
        logged = self.useFixture(fixtures.FakeLogger(
            name='novadocker.virt.docker.driver', level=logging.WARNING))
        self.driver._watch_stop = StopAfterOne()
        self.driver._watch_engine()
        self.assertIn('listing broke', logged.output)
