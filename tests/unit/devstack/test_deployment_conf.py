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

"""tools/lib/deployment-conf.sh reading etc/nova-docker/deployment.conf."""

import os
import subprocess

import testtools

from tests.unit.devstack import base

READER = os.path.join(base.REPO, 'tools', 'lib', 'deployment-conf.sh')


def settings(target, **env):
    return subprocess.run(
        ['bash', '-c', 'source "$0"; nova_docker_deployment_settings "$1"',
         READER, target], env=dict({'PATH': os.environ['PATH']}, **env),
        capture_output=True, text=True)


class DeploymentConfTestCase(testtools.TestCase):

    def test_nova_cpu_defaults_and_overrides(self):
        proc = settings('nova-cpu', NOVA_CONF_DIR='/etc/nova',
                        DOCKER_PIDS_LIMIT='99')
        self.assertEqual(0, proc.returncode, proc.stderr)
        lines = [tuple(line.split('\t')) for line in proc.stdout.split('\n')
                 if line]
        self.assertIn(('DEFAULT', 'compute_driver', 'docker.DockerDriver'),
                      lines)
        self.assertIn(('DEFAULT', 'rootwrap_config',
                       '/etc/nova/rootwrap.conf'), lines)
        self.assertIn(('docker', 'api_url', 'unix:///var/run/docker.sock'),
                      lines)
        self.assertIn(('docker', 'pids_limit', '99'), lines)

    def test_unset_variable_is_named(self):
        proc = settings('heat')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('heat [DEFAULT] plugin_dirs needs $HEAT_PLUGIN_DIRS',
                      proc.stderr)

    def test_substituted_value_is_not_expanded_again(self):
        proc = settings('heat', HEAT_PLUGIN_DIRS='/a,@NOVA_CONF_DIR@')
        self.assertEqual('DEFAULT\tplugin_dirs\t/a,@NOVA_CONF_DIR@\n',
                         proc.stdout)

    def test_cloud_names(self):
        proc = subprocess.run(
            ['bash', '-c', 'source "$0"; nova_docker_deployment_value cloud '
             'aggregate name; nova_docker_deployment_value cloud aggregate '
             'zone', READER], capture_output=True, text=True)
        self.assertEqual('docker-aggregate\ndocker\n', proc.stdout)
