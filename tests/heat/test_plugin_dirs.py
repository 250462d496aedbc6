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

"""Heat with plugin_dirs = the installed heat_plugins directory.

The check runs in a fresh interpreter started outside the source tree, so
that only the installed bundle is importable, as on a heat-engine host.
"""

import filecmp
import json
import os
import subprocess
import sys
import sysconfig

import testtools

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     'plugin_dir_probe.py')
MODULES = ('odl_cluster.py', 'odl_conf.py', 'odl_member_stack.py',
           'odl_readiness.py')
TEMPLATES = ('odl-cluster.yaml', 'docker-server.yaml', 'odl-env.yaml')


class PluginDirsTest(testtools.TestCase):

    def setUp(self):
        super(PluginDirsTest, self).setUp()
        self.plugin_dir = os.path.join(sysconfig.get_paths()['purelib'],
                                       'heat_plugins')
        self.template_dir = os.path.join(sys.prefix, 'share', 'nova-docker',
                                         'heat')
        stale = [name for name in MODULES if not os.path.exists(
            os.path.join(self.plugin_dir, name)) or not filecmp.cmp(
                os.path.join(REPO, 'heat_plugins', name),
                os.path.join(self.plugin_dir, name), shallow=False)]
        stale += [name for name in TEMPLATES if not os.path.exists(
            os.path.join(self.template_dir, name)) or not filecmp.cmp(
                os.path.join(REPO, 'heat_plugins', 'templates', name),
                os.path.join(self.template_dir, name), shallow=False)]
        if stale:
            self.fail('the installed bundle in %s is missing or older than '
                      'the source for %s: run tools/bootstrap-host.sh'
                      % (sys.prefix, ', '.join(stale)))

    def probe(self):
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
        proc = subprocess.run(
            [sys.executable, '-W', 'ignore', PROBE, self.plugin_dir,
             self.template_dir], cwd='/', env=env, capture_output=True,
            text=True, timeout=300)
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def test_type_registered_and_templates_validate(self):
        result = self.probe()
        self.assertEqual('heat.engine.plugins.odl_cluster',
                         result['class_module'])
        self.assertEqual(os.path.join(self.plugin_dir, 'odl_cluster.py'),
                         result['class_file'])
        cluster = result['templates']['odl-cluster.yaml']
        self.assertNotIn('error', cluster)
        self.assertEqual(
            {'image', 'flavor', 'network', 'cluster_size',
             'server_group_policy', 'availability_zone', 'readiness',
             'odl_username', 'odl_password', 'readiness_timeout',
             'northbound_vip', 'vip_image', 'vip_floating_network'},
            set(cluster['Parameters']))
        # One host or many: auto picks the policy the hosts allow.
        self.assertEqual('auto', cluster['Parameters'][
            'server_group_policy']['Default'])
        self.assertEqual('true', str(cluster['Parameters'][
            'northbound_vip']['Default']).lower())
        self.assertEqual('nova-docker-haproxy',
                         cluster['Parameters']['vip_image']['Default'])
        self.assertEqual('signal',
                         cluster['Parameters']['readiness']['Default'])
        self.assertEqual('true',
                         cluster['Parameters']['odl_password']['NoEcho'])
        self.assertEqual(
            'OS::ODL::Cluster',
            cluster['Environment']['resource_registry'][
                'NovaDocker::ODL::Cluster'])
        server = result['templates']['docker-server.yaml']
        self.assertNotIn('error', server)
        self.assertEqual({'image', 'flavor', 'cidr', 'availability_zone',
                          'tcp_port'}, set(server['Parameters']))
