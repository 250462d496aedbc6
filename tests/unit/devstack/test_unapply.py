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

"""clean puts back the options the plugin set, with devstack's own ini code.

In a full clean.sh the files go with their directories right after the
plugin's clean, so this runs the plugin's apply and unapply alone, sourcing
devstack's functions from DEVSTACK_DIR (no root, no node).
"""

import os
import subprocess

import fixtures
import testtools

from tests.unit.devstack import base

SCRIPT = '''
set -o errexit
TOP_DIR=$DEVSTACK_DIR
source "$TOP_DIR/functions"
NOVA_CONF_DIR=/etc/nova OVSDB_SERVER_LOCAL_HOST=127.0.0.1
NOVA_DOCKER_DIR=$REPO NOVA_DOCKER_STATE_DIR=$STATE
source "$REPO/devstack/settings"
nova_docker_apply nova-cpu "$CONF"
nova_docker_apply nova-cpu "$CONF"
cp "$CONF" "$CONF.applied"
nova_docker_unapply
'''


class UnapplyTestCase(testtools.TestCase):

    def test_earlier_values_back_and_new_options_gone(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        conf = os.path.join(tmp, 'nova.conf')
        with open(conf, 'w') as f:
            f.write('[DEFAULT]\ncompute_driver = libvirt.LibvirtDriver\n'
                    'debug = True\n')
        subprocess.run(
            ['bash', '-c', SCRIPT], check=True, capture_output=True,
            env=dict(os.environ, DEVSTACK_DIR=base.devstack_dir(),
                     REPO=base.REPO, STATE=os.path.join(tmp, 'state'),
                     CONF=conf))
        applied = base.read_ini(conf + '.applied')
        self.assertEqual('docker.DockerDriver',
                         applied.get('DEFAULT', 'compute_driver'))
        self.assertEqual('unix:///var/run/docker.sock',
                         applied.get('docker', 'api_url'))
        after = base.read_ini(conf)
        self.assertEqual({'compute_driver': 'libvirt.LibvirtDriver',
                          'debug': 'True'}, dict(after.items('DEFAULT')))
        # Only the (empty) section headers stay.
        self.assertEqual([], after.items('docker'))
        self.assertEqual([], after.items('os_vif_ovs'))
        self.assertEqual([], os.listdir(os.path.join(tmp, 'state')))
