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

"""What a server's containers look like: limits, labels, environment."""

from nova.compute import power_state
from nova import objects
from nova import test
from oslo_utils import uuidutils

from novadocker.virt.docker import exception
from novadocker.virt.docker import spec

objects.register_all()


def make_instance(metadata=None, system_metadata=None, vcpus=2,
                  memory_mb=256, extra_specs=None):
    flavor = objects.Flavor(name='m1.test', vcpus=vcpus, memory_mb=memory_mb,
                            root_gb=1, extra_specs=extra_specs or {})
    return objects.Instance(
        uuid=uuidutils.generate_uuid(), id=7, project_id='p1',
        hostname='web-1', flavor=flavor, metadata=metadata or {},
        system_metadata=system_metadata or {})


class ContainerConfigTestCase(test.NoDBTestCase):

    def test_names_and_labels(self):
        inst = make_instance()
        self.assertEqual('nova-%s' % inst.uuid, spec.workload_name(inst))
        self.assertEqual('nova-%s-sandbox' % inst.uuid,
                         spec.sandbox_name(inst))
        labels = spec.labels_for(inst, 'host1', 'workload')
        self.assertEqual({
            'org.openstack.nova.instance-uuid': inst.uuid,
            'org.openstack.nova.instance-name': 'instance-00000007',
            'org.openstack.nova.project-id': 'p1',
            'org.openstack.nova.host': 'host1',
            'org.openstack.nova.role': 'workload'}, labels)

    def test_host_filter_scopes_to_host(self):
        self.assertEqual(
            {'label': ['org.openstack.nova.host=h',
                       'org.openstack.nova.role=sandbox',
                       'org.openstack.nova.instance-uuid=u']},
            spec.host_filter('h', 'sandbox', 'u'))

    def test_workload_limits(self):
        inst = make_instance(vcpus=2, memory_mb=256)
        config = spec.workload_config(inst, 'h', 'img:tag', 'sbx')
        self.assertEqual(256 * 1024 * 1024, config['mem_limit'])
        self.assertEqual(config['mem_limit'], config['memswap_limit'])
        self.assertEqual(2 * 10 ** 9, config['nano_cpus'])
        self.assertEqual(4096, config['pids_limit'])
        self.assertFalse(config['privileged'])
        self.assertEqual(['no-new-privileges'], config['security_opt'])
        self.assertEqual('container:sbx', config['network_mode'])
        self.assertTrue(config['tty'])
        self.assertTrue(config['stdin_open'])
        self.assertNotIn('command', config)

    def test_cpu_shares_mode(self):
        self.flags(cpu_limit_mode='shares', group='docker')
        config = spec.workload_config(make_instance(vcpus=3), 'h',
                                      'i', 's')
        self.assertEqual(3 * 1024, config['cpu_shares'])
        self.assertNotIn('nano_cpus', config)

    def test_pids_limit_from_flavor(self):
        inst = make_instance(extra_specs={'docker:pids_limit': '64'})
        self.assertEqual(64, spec.pids_limit_for(inst.flavor))

    def test_pids_limit_invalid(self):
        for bad in ('ten', '3', '-1'):
            inst = make_instance(extra_specs={'docker:pids_limit': bad})
            err = self.assertRaises(exception.InvalidFlavorPidsLimit,
                                    spec.pids_limit_for, inst.flavor)
            self.assertIn('docker:pids_limit', str(err))

    def test_tty_can_be_turned_off(self):
        inst = make_instance(system_metadata={'image_docker_tty': 'false'})
        config = spec.workload_config(inst, 'h', 'i', 's')
        self.assertFalse(config['tty'])
        self.assertFalse(config['stdin_open'])

    def test_command_from_image_property(self):
        inst = make_instance(system_metadata={
            'image_os_command_line': "/bin/sh -c 'echo hi; sleep 9'"})
        self.assertEqual(['/bin/sh', '-c', 'echo hi; sleep 9'],
                         spec.command_for(inst))

    def test_command_unbalanced_quote(self):
        inst = make_instance(system_metadata={
            'image_os_command_line': "/bin/sh -c 'echo"})
        err = self.assertRaises(exception.InvalidCommandLine,
                                spec.command_for, inst)
        self.assertIn('os_command_line', str(err))

    def test_environment_from_metadata(self):
        inst = make_instance(metadata={'ODL_MEMBER': 'member-1', '_x9': 'y'})
        self.assertEqual({'ODL_MEMBER': 'member-1', '_x9': 'y'},
                         spec.environment_for(inst))

    def test_bad_environment_names_rejected(self):
        for key in ('9lives', 'has-dash', 'a b', 'é', ''):
            inst = make_instance(metadata={key: 'v'})
            err = self.assertRaises(exception.InvalidEnvironmentName,
                                    spec.environment_for, inst)
            self.assertIn(repr(key), str(err))

    def test_sandbox_config(self):
        inst = make_instance()
        config = spec.sandbox_config(inst, 'h')
        self.assertEqual('none', config['network_mode'])
        self.assertEqual('web-1', config['hostname'])
        self.assertEqual('sandbox', config['labels'][spec.LABEL_ROLE])
        self.assertFalse(config['privileged'])

    def test_sandbox_dns(self):
        config = spec.sandbox_config(make_instance(), 'h',
                                     ['10.0.0.2', '10.0.0.3'])
        self.assertEqual(['10.0.0.2', '10.0.0.3'], config['dns'])
        self.assertNotIn('dns', spec.sandbox_config(make_instance(),
                                                    'h'))

    def test_power_states(self):
        self.assertEqual(power_state.RUNNING,
                         spec.power_state_of('running'))
        self.assertEqual(power_state.SHUTDOWN,
                         spec.power_state_of('exited'))
        self.assertEqual(power_state.PAUSED,
                         spec.power_state_of('paused'))
        self.assertEqual(power_state.CRASHED,
                         spec.power_state_of('dead'))
        self.assertEqual(power_state.NOSTATE,
                         spec.power_state_of('something-new'))
