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

"""The engine object and the server object on the in-memory engine."""

import fixtures
from nova.compute import power_state
from nova import exception as nova_exception
from nova import test

from novadocker.virt.docker import engine as docker_engine
from novadocker.virt.docker import exception
from novadocker.virt.docker import server as docker_server
from novadocker.virt.docker import spec
from tests.unit import fake_engine
from tests.unit import test_driver

BUSYBOX = test_driver.BUSYBOX


class EngineTestBase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.engine = self.useFixture(fake_engine.FakeEngineFixture()).engine
        self.engine.images.add('nova-docker/sandbox:1')
        self.flags(sandbox_image='nova-docker/sandbox:1', group='docker')
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.engine._listing',
            docker_engine._SharedListing()))
        self.h1 = docker_engine.Engine('h1')
        self.h2 = docker_engine.Engine('h2')

    def make(self, engine):
        instance = test_driver.make_instance()
        engine.server(instance.uuid).create(instance, BUSYBOX)
        return instance


class EngineTestCase(EngineTestBase):

    def test_listing_is_the_host_s_own(self):
        mine = self.make(self.h1)
        theirs = self.make(self.h2)
        self.assertEqual({mine.uuid}, {c.uuid for c in self.h1.listing()})
        self.assertEqual({theirs.uuid}, {c.uuid for c in self.h2.listing()})
        self.assertEqual({spec.ROLE_SANDBOX, spec.ROLE_WORKLOAD},
                         {c.role for c in self.h1.listing()})

    def test_instance_uuids_include_a_server_left_with_its_sandbox(self):
        whole = self.make(self.h1)
        half = self.make(self.h1)
        workload = self.h1.server(half.uuid).find().workload
        self.engine.remove_container(workload.id, force=True)
        self.assertEqual(sorted([whole.uuid, half.uuid]),
                         self.h1.instance_uuids())
        self.assertEqual([whole.uuid],
                         [c.uuid for c in self.h1.shared_workloads()])

    def test_a_change_through_a_server_drops_the_shared_listing(self):
        self.flags(listing_max_age=3600, group='docker')
        first = self.make(self.h1)
        self.assertEqual([first.uuid], self.h1.instance_uuids())
        second = self.make(self.h1)
        self.assertEqual(sorted([first.uuid, second.uuid]),
                         self.h1.instance_uuids())

    def test_a_change_behind_its_back_shows_only_when_the_listing_ages(self):
        self.flags(listing_max_age=3600, group='docker')
        made = self.make(self.h1)
        self.assertEqual([made.uuid], self.h1.instance_uuids())
        for c in self.h1.listing():
            self.engine.remove_container(c.id, force=True)
        self.assertEqual([made.uuid], self.h1.instance_uuids())
        self.assertEqual([], self.h1.stopped_sandboxes(max_age=0))
        self.assertEqual([], [c.uuid for c in self.h1.listing()])

    def test_hosts_of_names_every_host_sharing_the_engine(self):
        made = self.make(self.h1)
        self.assertEqual({'h1'}, self.h2.hosts_of(made.uuid))
        self.assertEqual(set(), self.h1.hosts_of('not-a-server'))

    def test_remove_orphans_spares_live_servers_and_other_hosts(self):
        live = self.make(self.h1)
        orphan = self.make(self.h1)
        other = self.make(self.h2)
        self.assertEqual([orphan.uuid], self.h1.remove_orphans([live.uuid]))
        self.assertEqual({live.uuid}, {c.uuid for c in self.h1.listing()})
        self.assertEqual({other.uuid}, {c.uuid for c in self.h2.listing()})

    def test_cached_power_state_of_a_missing_server_is_not_found(self):
        self.assertRaises(nova_exception.InstanceNotFound,
                          self.h1.cached_power_state, 'gone')

    def test_root_dir_from_the_engine_s_info(self):
        self.assertTrue(self.h1.root_dir().startswith('/'))


class ServerTestCase(EngineTestBase):

    def test_a_server_needs_a_uuid(self):
        # Without one the label filter would match the whole host.
        self.assertRaises(exception.DockerDriverError,
                          docker_server.Server, self.h1, '')

    def test_lifecycle_and_power_state_without_status_strings(self):
        instance = self.make(self.h1)
        server = self.h1.server(instance.uuid)
        self.assertEqual(power_state.SHUTDOWN, server.power_state())
        self.assertIsNone(server.running_sandbox())
        box_id, pid = server.start_sandbox()
        self.assertEqual(box_id, server.running_sandbox())
        self.assertTrue(pid)
        server.start_workload()
        self.assertEqual(power_state.RUNNING, server.power_state())
        server.freeze(True)
        self.assertEqual(power_state.PAUSED, server.power_state())
        server.freeze(False)
        server.stop(0)
        self.assertEqual(power_state.SHUTDOWN, server.power_state())
        self.assertEqual(0, server.sandbox_pid())
        server.remove()
        self.assertFalse(server.exists())
        self.assertRaises(nova_exception.InstanceNotFound,
                          server.power_state)

    def test_one_host_s_server_is_invisible_to_another_host(self):
        instance = self.make(self.h1)
        self.assertTrue(self.h1.server(instance.uuid).exists())
        self.assertFalse(self.h2.server(instance.uuid).exists())
        # Removing it through the other host removes nothing.
        self.h2.server(instance.uuid).remove()
        self.assertTrue(self.h1.server(instance.uuid).exists())

    def test_stopping_a_server_without_containers_is_a_no_op(self):
        self.h1.server('no-such-server').stop(0)
        self.assertEqual([], self.h1.listing())
