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

"""The devstack plugin, phase by phase, against stand-ins of devstack."""

import configparser
import os
import stat

from tests.unit.devstack import base
from tests.unit.devstack import standin_cmd


def read_ini(path):
    parser = configparser.RawConfigParser(strict=False,
                                          default_section='\x00')
    parser.optionxform = str
    parser.read(path)
    return parser


class StackTestCase(base.PluginTestCase):
    """A whole stack on an all-in-one node."""

    def setUp(self):
        super().setUp()
        # What devstack's own phases leave before the plugin runs.
        self.write_file(self.nova_conf,
                        '[DEFAULT]\ncompute_driver = libvirt.LibvirtDriver\n')
        self.write_file(self.glance_conf,
                        '[image_format]\ncontainer_formats = ami, bare\n')
        self.write_file(self.heat_conf,
                        '[DEFAULT]\nplugin_dirs = /opt/heat/plugins\n')
        self.set_standin_state('ovs-managers', ['ptcp:6640:127.0.0.1'])
        self.docker_running()

    def test_install_packages_bundle_and_group(self):
        self.run_phase('stack', 'install')
        self.assertEqual([['install_package', 'docker.io', 'busybox-static']],
                         self.calls('install_package'))
        # A real install of the checkout: never editable (-e).
        self.assertEqual([['pip_install', base.REPO]],
                         self.calls('pip_install'))
        self.assertEqual([['usermod', '-a', '-G', 'docker', 'stack']],
                         self.calls('usermod'))
        self.assertIn('docker', self.standin_state('groups')['stack'])
        # Never world-writable: no chmod of the socket, at all.
        self.assertEqual([], [c for c in self.calls('sudo')
                              if 'chmod' in c])
        # Docker answered already: the plugin started nothing.
        self.assertEqual([], self.calls('dockerd'))

    def test_post_config_files(self):
        self.run_phase('stack', 'post-config')
        nova = read_ini(self.nova_conf)
        self.assertEqual('docker.DockerDriver',
                         nova.get('DEFAULT', 'compute_driver'))
        self.assertEqual({
            'api_url': 'unix:///var/run/docker.sock',
            'api_version': 'auto',
            'sandbox_image': 'nova-docker/sandbox:1',
            'sandbox_binary': '/bin/busybox',
            'cpu_limit_mode': 'quota',
            'pids_limit': '4096',
        }, dict(nova.items('docker')))

        glance = read_ini(self.glance_conf)
        self.assertEqual('ami, bare,docker',
                         glance.get('image_format', 'container_formats'))

        heat = read_ini(self.heat_conf)
        self.assertEqual('/opt/heat/plugins,' + self.heat_plugin_dir,
                         heat.get('DEFAULT', 'plugin_dirs'))

        filters = os.path.join(self.rootwrap_d, 'docker.filters')
        st = os.stat(filters)
        self.assertEqual(0o644, stat.S_IMODE(st.st_mode))
        # Root as seen through sudo: the stand-in maps the caller to root
        # when the tests do not run as root.
        self.assertEqual((os.getuid(), os.getgid()), (st.st_uid, st.st_gid))
        self.assertIn(['sudo', 'install', '-o', 'root', '-g', 'root', '-m',
                       '0644', self.filters_source, filters],
                      self.calls('sudo'))
        with open(filters) as f, open(self.filters_source) as g:
            self.assertEqual(g.read(), f.read())
        # No ODL_OVS_MANAGERS: OVS left alone.
        self.assertEqual([], self.calls('ovs-vsctl'))

    def test_options_from_plugin_variables(self):
        self.run_phase('stack', 'post-config',
                       DOCKER_API_URL='tcp://127.0.0.1:2375',
                       DOCKER_SANDBOX_BINARY='/opt/busybox')
        nova = read_ini(self.nova_conf)
        self.assertEqual('tcp://127.0.0.1:2375', nova.get('docker', 'api_url'))
        self.assertEqual('/opt/busybox', nova.get('docker', 'sandbox_binary'))

    def test_unset_options_start_from_service_defaults(self):
        self.write_file(self.glance_conf, '[DEFAULT]\n')
        self.write_file(self.heat_conf, '[DEFAULT]\n')
        self.run_phase('stack', 'post-config')
        self.assertEqual(
            'ami,ari,aki,bare,ovf,ova,docker,compressed',
            read_ini(self.glance_conf).get('image_format',
                                           'container_formats'))
        self.assertEqual(
            '/usr/lib64/heat,/usr/lib/heat,/usr/local/lib/heat,'
            '/usr/local/lib64/heat,' + self.heat_plugin_dir,
            read_ini(self.heat_conf).get('DEFAULT', 'plugin_dirs'))

    def test_services_not_on_this_node_are_not_configured(self):
        self.run_phase('stack', 'post-config', ENABLED_SERVICES='n-cpu')
        self.assertEqual('ami, bare', read_ini(self.glance_conf).get(
            'image_format', 'container_formats'))
        self.assertEqual('/opt/heat/plugins', read_ini(self.heat_conf).get(
            'DEFAULT', 'plugin_dirs'))
        self.assertEqual('docker.DockerDriver', read_ini(
            self.nova_conf).get('DEFAULT', 'compute_driver'))

    def test_extra_aggregate_and_sample_image(self):
        self.run_phase('stack', 'extra')
        self.assertEqual([
            ['openstack', 'aggregate', 'create', '--zone', 'docker',
             'docker-aggregate'],
            ['openstack', 'aggregate', 'add', 'host', 'docker-aggregate',
             'compute-1'],
        ], self.calls('openstack', 'aggregate', 'create') +
            self.calls('openstack', 'aggregate', 'add'))
        self.assertEqual(
            {'docker-aggregate': {'name': 'docker-aggregate',
                                  'availability_zone': 'docker',
                                  'hosts': ['compute-1']}},
            self.standin_state('aggregates'))
        # Built locally from busybox (no pull), saved into Glance.
        docker_images = self.standin_state('docker-images')
        self.assertEqual(['nova-docker/busybox:latest'], list(docker_images))
        self.assertEqual([], [c for c in self.calls('docker') if 'pull' in c])
        image, = self.standin_state('images')
        saved = standin_cmd.saved_bytes(
            docker_images['nova-docker/busybox:latest'])
        self.assertEqual('nova-docker-busybox', image['name'])
        self.assertEqual('docker', image['container_format'])
        self.assertEqual('raw', image['disk_format'])
        self.assertEqual(len(saved), image['size'])

    def test_extra_custom_zone_and_existing_image(self):
        self.set_standin_state('images', [
            {'id': 'x', 'name': 'mine', 'container_format': 'docker'}])
        self.run_phase('stack', 'extra', DOCKER_AGGREGATE='dock',
                       DOCKER_AVAILABILITY_ZONE='dz',
                       DOCKER_SAMPLE_IMAGE_NAME='mine')
        self.assertEqual('dz',
                         self.standin_state('aggregates')['dock'][
                             'availability_zone'])
        self.assertEqual(1, len(self.standin_state('images')))
        self.assertEqual([], self.calls('openstack', 'image', 'create'))

    def test_glance_refusing_the_image_fails_with_advice(self):
        proc = self.run_phase('stack', 'extra', check=False,
                              STANDIN_GLANCE_REJECTS='1')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('does Glance accept container_format=docker',
                      proc.stderr)
        self.assertEqual([], self.standin_state('images', []))
        # The locally built image is remembered, so clean removes it.
        self.run_phase('clean')
        self.assertEqual({}, self.standin_state('docker-images'))

    def test_existing_aggregate_with_other_zone_fails(self):
        self.set_standin_state('aggregates', {'docker-aggregate': {
            'name': 'docker-aggregate', 'availability_zone': 'nova',
            'hosts': []}})
        proc = self.run_phase('stack', 'extra', check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("aggregate docker-aggregate exists with zone 'nova'",
                      proc.stderr)
        self.assertEqual([], self.calls('openstack', 'aggregate', 'add'))

    def test_twice_changes_nothing_more(self):
        for phase in base.PHASES:
            self.run_phase(*phase, ODL_OVS_MANAGERS='10.0.0.1')
        first = self.snapshot()
        first_state = {name: self.standin_state(name) for name in
                       ('aggregates', 'images', 'ovs-managers', 'groups')}
        self.run_phase('stack', 'post-config', ODL_OVS_MANAGERS='10.0.0.1')
        self.run_phase('stack', 'extra', ODL_OVS_MANAGERS='10.0.0.1')
        self.assertEqual(first, self.snapshot())
        self.assertEqual(first_state, {name: self.standin_state(name) for name
                                       in first_state})
        for creation in (('aggregate', 'create'), ('aggregate', 'add'),
                         ('image', 'create')):
            self.assertEqual(1, len(self.calls('openstack', *creation)),
                             creation)
        self.assertEqual(1, len(self.calls('ovs-vsctl', 'set-manager')))

    def test_clean_after_stack_leaves_nothing(self):
        before = self.snapshot()
        self.run_phase('stack', 'pre-install')
        self.run_phase('stack', 'install')
        self.run_phase('stack', 'post-config', ODL_OVS_MANAGERS='10.0.0.1')
        self.run_phase('stack', 'extra')
        self.assertTrue(os.path.exists(
            os.path.join(self.rootwrap_d, 'docker.filters')))
        self.run_phase('unstack')
        self.run_phase('clean')

        after = self.snapshot()
        self.assertEqual(sorted(before), sorted(after))
        self.assertFalse(os.path.exists(
            os.path.join(self.data_dir, 'nova-docker')))
        # rootwrap.d did not exist before: the plugin made it, and removed it.
        self.assertFalse(os.path.exists(self.rootwrap_d))
        nova = read_ini(self.nova_conf)
        self.assertEqual('libvirt.LibvirtDriver',
                         nova.get('DEFAULT', 'compute_driver'))
        self.assertEqual([], nova.items('docker'))
        self.assertEqual('ami, bare', read_ini(self.glance_conf).get(
            'image_format', 'container_formats'))
        self.assertEqual('/opt/heat/plugins', read_ini(self.heat_conf).get(
            'DEFAULT', 'plugin_dirs'))
        # What it created in the cloud and on the host is gone too; what
        # it found (the local manager) stays.
        self.assertEqual({}, self.standin_state('aggregates'))
        self.assertEqual([], self.standin_state('images'))
        self.assertEqual({}, self.standin_state('docker-images'))
        self.assertEqual(['ptcp:6640:127.0.0.1'],
                         self.standin_state('ovs-managers'))
        self.assertEqual(['stack'], self.standin_state('groups')['stack'])

    def test_clean_keeps_what_it_found(self):
        self.set_standin_state('aggregates', {'docker-aggregate': {
            'name': 'docker-aggregate', 'availability_zone': 'docker',
            'hosts': ['other']}})
        self.stack()
        self.run_phase('unstack')
        self.run_phase('clean')
        self.assertEqual({'docker-aggregate': {
            'name': 'docker-aggregate', 'availability_zone': 'docker',
            'hosts': ['other']}}, self.standin_state('aggregates'))
        self.assertEqual([], self.calls('openstack', 'aggregate', 'delete'))

    def test_clean_with_apis_down_still_removes_files(self):
        self.stack()
        self.run_phase('unstack')
        proc = self.run_phase('clean', STANDIN_API_DOWN='1')
        self.assertIn('could not delete Glance image', proc.stderr)
        self.assertFalse(os.path.exists(
            os.path.join(self.rootwrap_d, 'docker.filters')))
        self.assertFalse(os.path.exists(
            os.path.join(self.data_dir, 'nova-docker')))


class DockerEngineTestCase(base.PluginTestCase):
    """Starting and stopping dockerd where there is no init system."""

    def test_starts_dockerd_and_unstack_stops_it(self):
        self.run_phase('stack', 'install')
        pids = self.processes_named('dockerd')
        self.assertEqual(1, len(pids))
        with open(self.pidfile) as f:
            self.assertEqual(pids[0], int(f.read()))
        self.assertEqual([['dockerd', '--pidfile', self.pidfile]],
                         self.calls('dockerd'))
        # A second install finds it answering and starts no other.
        self.run_phase('stack', 'install')
        self.assertEqual(1, len(self.calls('dockerd')))

        self.run_phase('unstack')
        self.assertTrue(self.wait_gone(pids[0]))
        self.assertFalse(os.path.exists(self.pidfile))

    def test_unstack_leaves_a_dockerd_it_did_not_start(self):
        self.docker_running()
        self.run_phase('stack', 'install')
        self.run_phase('unstack')
        self.assertEqual([], [c for c in self.calls('sudo') if 'kill' in c])
        self.assertTrue(os.path.exists(os.path.join(self.state,
                                                    'dockerd.up')))

    def test_stale_pidfile_is_removed(self):
        # A pid that is alive but is no dockerd: the test runner itself.
        self.write_file(self.pidfile, '%d\n' % os.getpid())
        self.run_phase('stack', 'install')
        self.assertEqual(1, len(self.processes_named('dockerd')))
        with open(self.pidfile) as f:
            self.assertNotEqual(os.getpid(), int(f.read()))

    def test_live_dockerd_that_does_not_answer_fails(self):
        self.run_phase('stack', 'install', STANDIN_DOCKERD_MUTE='1',
                       DOCKER_START_TIMEOUT='1', check=False)
        self.assertEqual(1, len(self.processes_named('dockerd')))
        proc = self.run_phase('stack', 'install', check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('is running but does not answer', proc.stderr)
        self.assertEqual(1, len(self.processes_named('dockerd')))

    def test_engine_that_never_answers_fails(self):
        proc = self.run_phase('stack', 'install', STANDIN_DOCKERD_MUTE='1',
                              DOCKER_START_TIMEOUT='2', check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('did not answer within 2s', proc.stderr)

    def test_systemd_host_uses_systemctl(self):
        os.makedirs(self.env['NOVA_DOCKER_SYSTEMD_DIR'])
        self.run_phase('stack', 'install')
        self.assertEqual([['systemctl', 'start', 'docker']],
                         self.calls('systemctl'))
        self.assertEqual([], self.calls('dockerd'))
        self.run_phase('unstack')
        self.assertEqual([['systemctl', 'start', 'docker'],
                          ['systemctl', 'stop', 'docker']],
                         self.calls('systemctl'))


class OvsManagersTestCase(base.PluginTestCase):
    """ODL_OVS_MANAGERS becomes one ovs-vsctl set-manager call."""

    def setUp(self):
        super().setUp()
        self.write_file(self.nova_conf, '[DEFAULT]\n')

    def managers(self, value, check=True, **env):
        return self.run_phase('stack', 'post-config', check=check,
                              ODL_OVS_MANAGERS=value, **env)

    def test_spaces_and_duplicates(self):
        self.managers('10.0.0.1, 10.0.0.2,10.0.0.1')
        self.assertEqual(
            [['ovs-vsctl', 'set-manager', 'tcp:10.0.0.1:6640',
              'tcp:10.0.0.2:6640']],
            self.calls('ovs-vsctl', 'set-manager'))
        self.assertEqual(['tcp:10.0.0.1:6640', 'tcp:10.0.0.2:6640'],
                         self.standin_state('ovs-managers'))

    def test_existing_managers_kept(self):
        self.set_standin_state('ovs-managers', ['ptcp:6640:127.0.0.1',
                                                'tcp:10.0.0.2:6640'])
        self.managers('10.0.0.1,10.0.0.2')
        self.assertEqual(
            [['ovs-vsctl', 'set-manager', 'ptcp:6640:127.0.0.1',
              'tcp:10.0.0.2:6640', 'tcp:10.0.0.1:6640']],
            self.calls('ovs-vsctl', 'set-manager'))

    def test_port(self):
        self.managers('10.0.0.1', ODL_MGR_PORT='6641')
        self.assertEqual(['tcp:10.0.0.1:6641'],
                         self.standin_state('ovs-managers'))

    def test_names_resolved_and_ipv6_bracketed(self):
        self.managers('odl1.example, 10.0.0.5,fd00::7',
                      STANDIN_HOSTS='odl1.example=10.0.0.5')
        self.assertEqual(['tcp:10.0.0.5:6640', 'tcp:[fd00::7]:6640'],
                         self.standin_state('ovs-managers'))

    def assert_rejected(self, value, entry, **env):
        before = self.snapshot()
        proc = self.managers(value, check=False, **env)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("'%s'" % entry, proc.stderr)
        self.assertEqual(before, self.snapshot())
        self.assertEqual([], self.calls('ovs-vsctl'))
        self.assertEqual([], self.calls('iniset'))
        self.assertEqual([], self.calls('sudo'))
        return proc

    def test_invalid_entry_fails_before_any_change(self):
        proc = self.assert_rejected('10.0.0.1,not an ip!', 'not an ip!')
        self.assertIn('neither an IP address nor a host name', proc.stderr)

    def test_bad_octet_rejected(self):
        self.assert_rejected('10.0.0.256', '10.0.0.256')

    def test_unresolvable_name_fails(self):
        proc = self.assert_rejected('10.0.0.1,odl9.invalid', 'odl9.invalid')
        self.assertIn('does not resolve', proc.stderr)

    def test_bad_port_fails(self):
        self.assert_rejected('10.0.0.1', '66000', ODL_MGR_PORT='66000')

    def test_invalid_entry_fails_install_too(self):
        proc = self.run_phase('stack', 'pre-install', check=False,
                              ODL_OVS_MANAGERS='10.0.0.1,not an ip!')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("'not an ip!'", proc.stderr)

    def test_exported_for_networking_odl(self):
        # networking-odl's settings and plugin.sh are sourced after ours in
        # the same shell, and its commands inherit the environment.
        script = ('set -o errexit -o nounset; source "$1"; '
                  'source "$2/devstack/settings"; '
                  'echo "shell=$ODL_OVS_MANAGERS"; '
                  'bash -c \'echo "child=$ODL_OVS_MANAGERS"\'')
        import subprocess
        out = subprocess.run(
            ['bash', '-c', script, 'stack.sh',
             os.path.join(base.HERE, 'standin-functions.sh'), base.REPO],
            env=dict(self.env, ODL_OVS_MANAGERS=' 10.0.0.1, odl2 ,10.0.0.1',
                     STANDIN_HOSTS='odl2=10.0.0.2'),
            capture_output=True, text=True, check=True).stdout
        self.assertEqual('shell=10.0.0.1,10.0.0.2\nchild=10.0.0.1,10.0.0.2\n',
                         out)

    def test_ovs_down_fails_with_advice(self):
        proc = self.managers('10.0.0.1', check=False, STANDIN_OVS_DOWN='1')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('is Open vSwitch', proc.stderr)


class OdlClusterTestCase(base.PluginTestCase):
    """ODL_CLUSTER_STACK: Heat builds the cluster, OVS gets its members."""

    def setUp(self):
        super().setUp()
        self.docker_running()
        self.template = os.path.join(self.root, 'odl-cluster.yaml')
        self.write_file(self.template, 'heat_template_version: 2018-08-31\n')
        self.env.update(ODL_CLUSTER_STACK='odl', ODL_CLUSTER_IMAGE='odl-img',
                        ODL_CLUSTER_TEMPLATE=self.template,
                        STANDIN_ODL_OUTPUT='10.1.0.1,10.1.0.2,10.1.0.3')

    def test_stack_created_and_managers_set(self):
        self.run_phase('stack', 'extra')
        self.assertEqual([['openstack', 'stack', 'create', '--wait', '-t',
                           self.template, '--parameter', 'image=odl-img',
                           '--parameter', 'flavor=m1.large',
                           '--parameter', 'network=private',
                           '--parameter', 'size=3', 'odl']],
                         self.calls('openstack', 'stack', 'create'))
        self.assertEqual(['tcp:10.1.0.1:6640', 'tcp:10.1.0.2:6640',
                          'tcp:10.1.0.3:6640'],
                         self.standin_state('ovs-managers'))
        self.run_phase('stack', 'extra')
        self.assertEqual(1, len(self.calls('openstack', 'stack', 'create')))
        self.assertEqual(1, len(self.calls('ovs-vsctl', 'set-manager')))
        self.run_phase('clean')
        self.assertEqual({}, self.standin_state('stacks'))
        self.assertEqual([], self.standin_state('ovs-managers'))

    def test_failed_stack_is_deleted(self):
        proc = self.run_phase('stack', 'extra', check=False,
                              STANDIN_STACK_FAILS='1')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('creating the ODL cluster stack odl failed',
                      proc.stderr)
        self.assertEqual({}, self.standin_state('stacks'))
        self.assertEqual([], self.calls('ovs-vsctl', 'set-manager'))

    def test_missing_image_fails_before_create(self):
        proc = self.run_phase('stack', 'extra', check=False,
                              ODL_CLUSTER_IMAGE='')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('set ODL_CLUSTER_IMAGE', proc.stderr)
        self.assertEqual([], self.calls('openstack', 'stack', 'create'))

    def test_without_heat_an_existing_stack_is_used(self):
        self.set_standin_state('stacks', {'odl': {
            'stack_name': 'odl', 'stack_status': 'CREATE_COMPLETE',
            'outputs': {'odl_ovs_managers': '10.1.0.9'}}})
        self.run_phase('stack', 'extra', ENABLED_SERVICES='n-cpu')
        self.assertEqual(['tcp:10.1.0.9:6640'],
                         self.standin_state('ovs-managers'))

    def test_without_heat_and_no_stack_fails(self):
        proc = self.run_phase('stack', 'extra', check=False,
                              ENABLED_SERVICES='n-cpu')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('Heat is not enabled here', proc.stderr)

    def test_bad_size_fails(self):
        proc = self.run_phase('stack', 'pre-install', check=False,
                              ODL_CLUSTER_SIZE='three')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn("ODL_CLUSTER_SIZE 'three'", proc.stderr)
