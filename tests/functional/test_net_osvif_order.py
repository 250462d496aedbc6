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

"""os-vif loaded before the driver, as nova/cmd/compute.py does.

Each case runs in a fresh interpreter that parses the configuration,
initializes os-vif, and only then loads the driver's networking, against
the real OVSDB: without ``[os_vif_ovs] ovsdb_connection`` in the file the
driver's default never applies and the driver says so, naming the option;
with the deployment's line it answers.
"""

import os
import subprocess
import sys

import fixtures
import testtools

from tools.harness import base

REPO = base.REPO
SCRIPT = '''
import sys
import novadocker.conf
CONF = novadocker.conf.CONF
CONF(sys.argv[1:], project='nova')
import os_vif
os_vif.initialize()
from novadocker.virt.docker import vifs
print('ANSWERED' if vifs.initialize() else 'UNANSWERED')
print('connection=%s' % CONF.os_vif_ovs.ovsdb_connection)
'''


class OsVifFirstTestCase(testtools.TestCase):

    def run_compute_order(self, conf_text):
        tmp = self.useFixture(fixtures.TempDir()).path
        conf = os.path.join(tmp, 'nova-cpu.conf')
        with open(conf, 'w') as f:
            f.write(conf_text)
        return subprocess.run(
            [sys.executable, '-c', SCRIPT, '--config-file', conf],
            capture_output=True, text=True, cwd=REPO, timeout=120,
            env=dict(os.environ, PYTHONPATH=REPO))

    def test_without_the_option_the_driver_names_it(self):
        result = self.run_compute_order('[DEFAULT]\n')
        self.assertIn('UNANSWERED', result.stdout, result.stderr)
        # os-vif's own default stayed: a driver default would come too late.
        self.assertIn('connection=tcp:127.0.0.1:6640', result.stdout)
        self.assertIn('[os_vif_ovs] ovsdb_connection = tcp:127.0.0.1:6640, '
                      'which does not answer', result.stderr)
        self.assertIn('unix:/var/run/openvswitch/db.sock', result.stderr)

    def test_the_deployment_line_answers(self):
        with open(os.path.join(REPO, 'etc', 'nova-docker',
                               'deployment.conf')) as f:
            line = [entry.split() for entry in f
                    if entry.split()[:3] == ['nova-cpu', 'os_vif_ovs',
                                             'ovsdb_connection']][0]
        result = self.run_compute_order('[os_vif_ovs]\novsdb_connection = %s\n'
                                        % line[3])
        self.assertIn('ANSWERED', result.stdout.split(), result.stderr)
        self.assertNotIn('does not answer', result.stderr)
