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

"""enable_plugin nova-docker through real devstack code, the sample local.conf.

Each test stacks a node with devstack's own functions, stackrc, lib/* and
run_phase (tests/unit/devstack/devstack-node.sh), with stubs only on PATH.
"""

import os
import socket

from heat_plugins import odl_member_stack
from tests.unit.devstack import base

# devstack/files/local.conf.<name>: the samples the install guide shows.
ALL_IN_ONE = 'all-in-one'
CONTROLLER = 'controller'
COMPUTE = 'compute'
NETWORKING_ODL = 'networking-odl'
STACKED = (ALL_IN_ONE, CONTROLLER, COMPUTE, NETWORKING_ODL)
DOCKERD_LOG = '/opt/stack/logs/nova-docker-dockerd.log'
MANAGERS = ['ptcp:6640:127.0.0.1', 'tcp:192.0.2.11:6640',
            'tcp:192.0.2.12:6640', 'tcp:192.0.2.13:6640']


class AllInOneTestCase(base.NodeTestCase):
    """All-in-one sample: Heat, VIRT_DRIVER=docker, default ML2/OVN, ODL."""

    def setUp(self):
        super().setUp()
        self.conf = base.local_conf(ALL_IN_ONE)
        self.host = socket.gethostname()

    def stack(self, **env):
        return self.run_devstack('stack', self.conf, **env)

    def test_stacks_to_the_end(self):
        out = self.stack().stdout
        self.assertIn('stack.sh completed', out)
        # nova-compute ran with the driver, in the docker group, under the
        # host's own name, from devstack's nova-cpu.conf.
        services = self.stub_state('compute-services')
        self.assertEqual([self.host], list(services))
        self.assertEqual('docker.DockerDriver',
                         services[self.host]['driver'])
        self.assertEqual('docker', services[self.host]['group'])
        cpu = self.node_ini('/etc/nova/nova-cpu.conf')
        self.assertEqual('unix:///var/run/docker.sock',
                         cpu.get('docker', 'api_url'))
        self.assertEqual('/etc/nova/rootwrap.conf',
                         cpu.get('DEFAULT', 'rootwrap_config'))
        self.assertFalse(cpu.has_option('database', 'connection'))
        # Heat finds the plugins where devstack's virtualenv has them.
        heat = self.node_ini('/etc/heat/heat.conf')
        dirs = heat.get('DEFAULT', 'plugin_dirs').split(',')
        self.assertEqual('/opt/stack/data/venv/lib/python3.11/'
                         'site-packages/heat_plugins', dirs[-1])
        glance = self.node_ini('/etc/glance/glance-api.conf')
        self.assertIn('docker', glance.get('image_format',
                                           'container_formats').split(','))
        # Neutron sends Nova its port events after 1 s, not 2.
        neutron = self.node_ini('/etc/neutron/neutron.conf')
        self.assertEqual('1', neutron.get('DEFAULT', 'send_events_interval'))
        # devstack's own OVN start-up ran (start_ovn_services), and the
        # managers were merged after its set-manager: still set at the end.
        self.assert_ovn_started_then_managers_merged()
        self.assertEqual(MANAGERS, self.stub_state('ovs-managers'))
        aggs = self.stub_state('aggregates')
        self.assertEqual({'name': 'docker-aggregate',
                          'availability_zone': 'docker',
                          'hosts': [self.host]}, aggs['docker-aggregate'])
        self.assertEqual(['nova-docker-busybox'],
                         [i['name'] for i in self.stub_state('images')])
        self.assertEqual('docker',
                         self.stub_state('images')[0]['container_format'])
        # devstack's own nova (33.x from git) was left as it was.
        self.assertIn('docker.io', self.stub_state('packages'))
        # A plain unstack stops ovsdb-server (devstack's stop_ovn): the
        # managers stay in its database, and clean can only say so.
        self.run_devstack('unstack')
        self.assertFalse(os.path.exists(os.path.join(self.state, 'ovs.up')))
        self.assertEqual(MANAGERS, self.stub_state('ovs-managers'))
        out = self.run_devstack('clean')
        self.assertIn('nova-docker: WARNING: Open vSwitch is not answering: '
                      'managers tcp:192.0.2.11:6640 tcp:192.0.2.12:6640 '
                      'tcp:192.0.2.13:6640 left in place', out.stderr)
        self.assertEqual(MANAGERS, self.stub_state('ovs-managers'))

    def test_bad_odl_entry_fails_before_any_change(self):
        conf = self.conf.replace('ODL_OVS_MANAGERS=192.0.2.11,',
                                 'ODL_OVS_MANAGERS=192.0.2.11,odl_2!,')
        proc = self.run_devstack('stack', conf, check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("ODL_OVS_MANAGERS entry 'odl_2!' is neither an IP "
                      "address nor a host name", proc.stdout + proc.stderr)
        # pre-install stopped stack.sh: nothing installed, started or set.
        self.assertNotIn('nova-docker', self.stub_state('pip-installed', {}))
        self.assertNotIn('docker.io', self.stub_state('packages', []))
        self.assertEqual([], self.processes_named('dockerd'))
        self.assertIsNone(self.stub_state('ovs-managers'))
        self.assertFalse(os.path.exists(self.node_path(
            '/opt/stack/data/nova-docker')))

    def test_other_virt_driver_is_refused_clearly(self):
        conf = self.conf.replace('VIRT_DRIVER=docker', 'VIRT_DRIVER=fake')
        proc = self.run_devstack('stack', conf, check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("nova-docker needs VIRT_DRIVER=docker",
                      proc.stdout + proc.stderr)
        self.assertNotIn('nova-docker', self.stub_state('pip-installed', {}))

    def test_second_stack_then_clean(self):
        self.stack()
        # A second stack.sh without clean creates nothing twice.
        self.stack()
        self.assertEqual(MANAGERS, self.stub_state('ovs-managers'))
        self.assertEqual([self.host], self.stub_state(
            'aggregates')['docker-aggregate']['hosts'])
        self.assertEqual(1, len(self.stub_state('images')))
        heat = self.node_ini('/etc/heat/heat.conf')
        dirs = heat.get('DEFAULT', 'plugin_dirs').split(',')
        self.assertEqual(len(dirs), len(set(dirs)))
        self.assertIn('stack', self.group_members('docker'))
        self.assertEqual(1, len(self.processes_named('dockerd')))
        self.assertTrue(os.path.exists(self.node_path(DOCKERD_LOG)))
        out = self.run_devstack('clean')
        out = out.stdout + out.stderr
        # clean.sh ran unstack.sh --all first: keystone is down, so the
        # cloud objects are left (clean.sh drops their databases) and the
        # command removing each is printed.
        self.assertIn('Nova is down: aggregate docker-aggregate left '
                      '(openstack aggregate delete docker-aggregate)', out)
        self.assertIn('Glance is down: image nova-docker-busybox left', out)
        self.assertEqual(1, len(self.stub_state('images')))
        # The engine the plugin had started is started again to remove
        # the sample image, then stopped.
        self.assertEqual({}, self.stub_state('docker-images'))
        self.assertEqual([], self.processes_named('dockerd'))
        # Its managers went in unstack --all, before devstack stopped
        # ovsdb-server (down now); devstack's own one stays.
        self.assertFalse(os.path.exists(os.path.join(self.state, 'ovs.up')))
        self.assertEqual(['ptcp:6640:127.0.0.1'],
                         self.stub_state('ovs-managers'))
        self.assertNotIn('stack', self.group_members('docker'))
        for path in ('/etc/nova/rootwrap.d/docker.filters',
                     '/opt/stack/data/nova-docker', DOCKERD_LOG,
                     # devstack's clean.sh: the services' whole directories
                     '/etc/nova', '/etc/glance', '/etc/neutron'):
            self.assertFalse(os.path.exists(self.node_path(path)), path)

    def assert_ovn_started_then_managers_merged(self):
        calls = self.calls()
        restarts = [c[-1] for c in calls if c[:2] == ['systemctl', 'restart']]
        for unit in ('ovsdb-server.service', 'ovs-vswitchd.service',
                     'ovn-central.service', 'ovn-controller.service'):
            self.assertIn(unit, restarts)
        self.assertIn('br-int', self.stub_state('ovs-bridges'))
        set_managers = [c[c.index('set-manager') + 1:] for c in calls
                        if c[0] == 'ovs-vsctl' and 'set-manager' in c]
        self.assertEqual([['ptcp:6640:127.0.0.1'], MANAGERS], set_managers)
        last_ovn = max(i for i, c in enumerate(calls)
                       if c[0] in ('ovn-nbctl', 'ovn-sbctl') or
                       c[-1] == 'ovn-controller.service')
        merged = max(i for i, c in enumerate(calls)
                     if c[0] == 'ovs-vsctl' and 'set-manager' in c)
        self.assertGreater(merged, last_ovn)


class ComputeNodeTestCase(base.NodeTestCase):
    """The docker compute node sample, stacked after the controller."""

    def setUp(self):
        super().setUp()
        self.conf = base.local_conf(COMPUTE)
        self.host = socket.gethostname()

    def test_stacks_and_joins_the_aggregate(self):
        self.run_devstack('stack', self.conf, STUB_CONTROLLER_DISCOVERS='1',
                          STUB_HOSTS='odl1.example.org=192.0.2.11;'
                          'odl2.example.org=192.0.2.12;'
                          'odl3.example.org=192.0.2.13')
        self.assertEqual([self.host], self.stub_state(
            'aggregates')['docker-aggregate']['hosts'])
        # No OVN here: the managers are the members only, names resolved.
        self.assertEqual(MANAGERS[1:], self.stub_state('ovs-managers'))
        # clean with the controller's APIs answering (no keystone here to
        # stop): what the plugin made is removed through them; of the
        # containers, only this host's servers'.
        self.set_stub_state('containers', {
            'c-here': {'org.openstack.nova.host': self.host},
            'c-other': {'org.openstack.nova.host': 'other-host'}})
        out = self.run_devstack('clean')
        self.assertNotIn('left', out.stdout + out.stderr)
        self.assertEqual({}, self.stub_state('aggregates'))
        self.assertEqual([], self.stub_state('images'))
        self.assertEqual(['c-other'], list(self.stub_state('containers')))
        self.assertEqual({}, self.stub_state('docker-images'))
        self.assertEqual([], self.stub_state('ovs-managers'))
        self.assertFalse(os.path.exists(self.node_path(
            '/opt/stack/data/nova-docker')))

    def test_second_node_takes_the_cluster_stacks_members(self):
        # The two-node cloud: the controller created ODL_CLUSTER_STACK;
        # this compute node, without Heat, reads its members and connects
        # its own OVS to every one of them.
        stacks = {'odl-cluster': {
            'stack_name': 'odl-cluster', 'stack_status': 'UPDATE_COMPLETE',
            'outputs': {'odl_ovs_managers':
                        '192.0.2.11,192.0.2.12,192.0.2.13'}}}
        self.set_stub_state('stacks', stacks)
        conf = self.conf.replace(
            'ODL_OVS_MANAGERS=odl1.example.org,odl2.example.org,'
            'odl3.example.org', 'ODL_CLUSTER_STACK=odl-cluster')
        self.assertNotEqual(self.conf, conf)
        out = self.run_devstack('stack', conf, STUB_CONTROLLER_DISCOVERS='1')
        self.assertIn('stack.sh completed', out.stdout)
        self.assertEqual(MANAGERS[1:], self.stub_state('ovs-managers'))
        # It made no stack and no VIP image; its clean leaves the stack.
        self.assertEqual(stacks, self.stub_state('stacks'))
        self.assertEqual([], [c for c in self.calls('openstack') if any(
            a == 'stack' and b == 'create' for a, b in zip(c, c[1:]))])
        self.assertTrue([c for c in self.calls('openstack') if any(
            a == 'stack' and b == 'output' for a, b in zip(c, c[1:]))])
        self.run_devstack('clean')
        self.assertEqual(stacks, self.stub_state('stacks'))
        self.assertEqual([], self.stub_state('ovs-managers'))

    def test_second_node_before_the_cluster_stack_fails_clearly(self):
        conf = self.conf.replace(
            'ODL_OVS_MANAGERS=odl1.example.org,odl2.example.org,'
            'odl3.example.org', 'ODL_CLUSTER_STACK=odl-cluster')
        proc = self.run_devstack('stack', conf, check=False,
                                 STUB_CONTROLLER_DISCOVERS='1')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('stack odl-cluster does not exist and Heat is not '
                      'enabled here', proc.stdout + proc.stderr)

    def test_controller_stacks_without_compute(self):
        controller = base.local_conf(CONTROLLER)
        out = self.run_devstack('stack', controller).stdout
        self.assertIn('stack.sh completed', out)
        heat = self.node_ini('/etc/heat/heat.conf')
        self.assertTrue(heat.get('DEFAULT', 'plugin_dirs').endswith(
            '/site-packages/heat_plugins'))
        glance = self.node_ini('/etc/glance/glance-api.conf')
        self.assertIn('docker', glance.get('image_format',
                                           'container_formats').split(','))
        # No n-cpu: no engine, no driver options, no aggregate, no image.
        self.assertEqual([], self.processes_named('dockerd'))
        self.assertFalse(os.path.exists(self.node_path(
            '/etc/nova/rootwrap.d/docker.filters')))
        self.assertIsNone(self.stub_state('aggregates'))
        self.assertIsNone(self.stub_state('images'))

    def test_undiscovered_host_fails_with_advice(self):
        # Without the controller's periodic discovery Nova refuses the host.
        proc = self.run_devstack(
            'stack', self.conf, check=False,
            STUB_HOSTS='odl1.example.org=192.0.2.11;'
            'odl2.example.org=192.0.2.12;odl3.example.org=192.0.2.13')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("run 'nova-manage cell_v2 discover_hosts' on the "
                      "controller", proc.stdout + proc.stderr)
        self.assertEqual([], self.stub_state(
            'aggregates')['docker-aggregate']['hosts'])


class NetworkingOdlTestCase(base.NodeTestCase):
    """The networking-odl sample: its real plugin, stubs for the network."""

    def setUp(self):
        super().setUp()
        self.conf = base.local_conf(NETWORKING_ODL)

    def test_cluster_devstack_local_conf_points_at_the_vip(self):
        # What OS::ODL::Cluster's devstack_local_conf attribute prints, in
        # place of the README's ODL lines: the VIP northbound, every member
        # southbound.
        lines = odl_member_stack.devstack_local_conf(
            '192.0.2.10', 8181, ['192.0.2.11', '192.0.2.12', '192.0.2.13'],
            6640)
        conf = '\n'.join(
            line for line in self.conf.splitlines()
            if not line.strip().startswith(('ODL_MODE=', 'ODL_MGR_HOST=',
                                            'ODL_OVS_MANAGERS='))) + '\n'
        conf += ''.join('    %s\n' % line for line in lines.splitlines())
        os.unlink(os.path.join(self.state, 'ovs.up'))
        self.set_stub_state('ovs-managers', ['ptcp:6640:127.0.0.1'])
        out = self.run_devstack(
            'stack', conf,
            STUB_ODL_MEMBERS='192.0.2.11,192.0.2.12,192.0.2.13').stdout
        self.assertIn('stack.sh completed', out)
        ml2 = self.node_ini('/etc/neutron/plugins/ml2/ml2_conf.ini')
        self.assertEqual('http://192.0.2.10:8181/controller/nb/v2/neutron',
                         ml2.get('ml2_odl', 'url'))
        self.assertEqual(MANAGERS, self.stub_state('ovs-managers'))

    def test_stacks_and_managers_are_merged_once(self):
        # OVS is not running yet (networking-odl's install starts it), and
        # the node has a manager of its own already.
        os.unlink(os.path.join(self.state, 'ovs.up'))
        self.set_stub_state('ovs-managers', ['ptcp:6640:127.0.0.1'])
        out = self.run_devstack(
            'stack', self.conf,
            STUB_ODL_MEMBERS='192.0.2.11,192.0.2.12,192.0.2.13').stdout
        self.assertIn('stack.sh completed', out)
        self.assertIn('nova-docker: OVS managers already set', out)
        self.assertEqual(MANAGERS, self.stub_state('ovs-managers'))
        # networking-odl configured ML2 for the cluster ...
        ml2 = self.node_ini('/etc/neutron/plugins/ml2/ml2_conf.ini')
        self.assertEqual('http://192.0.2.11:8181/controller/nb/v2/neutron',
                         ml2.get('ml2_odl', 'url'))
        # ... and set the managers once, before nova-docker's stack extra.
        set_managers = [c[c.index('set-manager') + 1:] for c in self.calls()
                        if c[0] == 'ovs-vsctl' and 'set-manager' in c]
        self.assertEqual([MANAGERS], set_managers)
        self.assertFalse(os.path.exists(self.node_path(
            '/opt/stack/data/nova-docker/ovs-managers')))
        services = self.stub_state('compute-services')
        self.assertEqual('docker', services[socket.gethostname()]['group'])
        # networking-odl's unstack removes every manager (del-manager).
        self.run_devstack('unstack')
        self.assertEqual([], self.stub_state('ovs-managers'))
        # nova-docker's unstack stops the engine it started; it removes
        # nothing.
        self.assertEqual([], self.processes_named('dockerd'))
        for path in ('/etc/nova/rootwrap.d/docker.filters',
                     '/opt/stack/data/nova-docker/applied', DOCKERD_LOG):
            self.assertTrue(os.path.exists(self.node_path(path)), path)
        self.assertIn('stack', self.group_members('docker'))
