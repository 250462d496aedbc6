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

"""Nova's own virt-driver conformance suite against the real engine.

``nova.tests.unit.virt.test_virt_drivers._VirtDriverTestCase`` is the
suite every in-tree driver runs. Here it drives a DockerDriver on the real
engine, OVS and rootwrap, with two adaptations, both about the host rather
than the driver:

* the suite's test image (id cedef40a-..., container_format ami) is served
  as the busybox docker archive under the same id;
* the suite's port names bridge br0, which a host wired by Neutron's OVS
  agent does not have: its ports go to br-int, each with its own id, with
  Neutron's binding details (the netdev datapath) and fixed addresses.

Tests that cannot apply are not skipped: NOT_APPLICABLE removes them from
the class, each with its reason, and test_not_applicable_is_explained keeps
that list honest.
"""

import copy

import fixtures
from nova.tests.unit import utils as test_utils
from nova.tests.unit.virt import test_virt_drivers
from oslo_utils import uuidutils

from tools.harness import base
from tools.harness import fixtures as nd_fixtures

SUITE_IMAGE_ID = 'cedef40a-ed67-4d10-800e-17455edce175'

# Test -> why it cannot apply to a container driver.
NOT_APPLICABLE = {
    'test_live_migration_force_complete':
        'writes the libvirt driver\'s private active_migrations dict before '
        'calling; the Docker driver refuses live migration in its '
        'pre-check, so no live migration can ever be forced',
    'test_migrate_disk_and_power_off':
        'moves to "dest_host", another host, with an instance that has no '
        'migration record: a move to another host names its Glance '
        'transfer image by the migration\'s uuid, so the driver refuses it '
        'with InstanceFaultRollback (server untouched), which the suite '
        'treats as a failure; moves are tested through Nova\'s own code '
        'path in test_migration',
    'test_live_migration':
        'builds libvirt\'s LibvirtLiveMigrateData and, unlike most tests, '
        'does not accept NotImplementedError (Nova\'s own '
        'AbstractDriverTestCase replaces it the same way); the Docker '
        'driver refuses live migration in check_can_live_migrate_*, so '
        'Nova never calls live_migration',
}


class _SuiteGlance(nd_fixtures.DockerGlanceFixture):
    """The suite's test image id, holding the busybox docker archive."""

    def setUp(self):
        super().setUp()
        self.delete(None, SUITE_IMAGE_ID)
        self.add_image(nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE),
                       'busybox', image_id=SUITE_IMAGE_ID)


def _ports():
    """The suite's port, on br-int, with an id of its own."""
    ports = test_utils.get_test_network_info()
    vif = ports[0]
    vif['id'] = uuidutils.generate_uuid()
    vif['ovs_interfaceid'] = vif['id']
    vif['network']['bridge'] = 'br-int'
    # As Neutron binds ports on this host: without the netdev datapath in
    # the details, os-vif would switch the shared br-int to the kernel one.
    vif['details'] = copy.deepcopy(nd_fixtures.NETDEV_VIF_DETAILS)
    # The suite builds its addresses as plain IPs (type None); Neutron's
    # port addresses are fixed IPs, which is what the driver configures.
    for subnet in vif['network']['subnets']:
        for ip in subnet['ips']:
            ip['type'] = 'fixed'
    return ports


class DockerDriverConformanceTestCase(test_virt_drivers._VirtDriverTestCase,
                                      base.DockerFunctionalTestBase):

    driver_module = 'novadocker.virt.docker.driver.DockerDriver'

    def setUp(self):
        self.useFixture(fixtures.MonkeyPatch(
            'tools.harness.fixtures.DockerGlanceFixture', _SuiteGlance))
        super().setUp()
        # The privileged helper wires only sandboxes of the host it was
        # started for: the suite's driver is that host's second driver.
        # The test's cleanup removes what is left under its label.
        self.connection.init_host(self.hosts[0])

    def _get_running_instance(self, obj=True):
        instance = test_utils.get_test_instance(obj=obj)
        ports = _ports()
        self.booted.append(instance['uuid'])
        image_meta = test_utils.get_test_image_object(None, instance)
        self.connection.spawn(self.ctxt, instance, image_meta, [], 'herp',
                              {}, network_info=ports)
        return instance, ports

    def test_not_applicable_is_explained(self):
        for name, reason in NOT_APPLICABLE.items():
            self.assertTrue(hasattr(test_virt_drivers._VirtDriverTestCase,
                                    name), name)
            self.assertGreater(len(reason), 40, name)


for _name in NOT_APPLICABLE:
    # Removed, not skipped: a skip would count as neither pass nor fail.
    setattr(DockerDriverConformanceTestCase, _name, None)
