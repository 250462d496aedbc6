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

"""The compute service itself: start-up, and what it reports to placement."""

import os
import subprocess

import docker

from novadocker.virt.docker import exception
from tools.harness import base


def host_figures():
    """CPUs, memory (MiB) and disk size (GiB) of the Docker root dir.

    Read here independently of the driver's own code.
    """
    with open('/proc/meminfo') as f:
        mem_kb = int(next(line for line in f
                          if line.startswith('MemTotal:')).split()[1])
    client = docker.from_env()
    try:
        root = client.info()['DockerRootDir']
    finally:
        client.close()
    df = subprocess.run(['df', '--output=size', '-B1', root],
                        capture_output=True, text=True, check=True)
    size_bytes = int(df.stdout.split()[-1])
    return os.cpu_count(), mem_kb / 1024, size_bytes / 1024 ** 3


class ComputeHostTestCase(base.DockerFunctionalTestBase):

    def assertWithin5Percent(self, expected, actual, what):
        self.assertLessEqual(abs(actual - expected), 0.05 * expected,
                             '%s: reported %s, host has %s'
                             % (what, actual, expected))

    def test_placement_inventory_matches_host(self):
        host = self.hosts[0]
        rp_uuid = self._get_provider_uuid_by_host(host)
        inventory = self._get_provider_inventory(rp_uuid)
        cpus, memory_mb, disk_gb = host_figures()
        self.assertEqual(cpus, inventory['VCPU']['total'])
        self.assertWithin5Percent(memory_mb, inventory['MEMORY_MB']['total'],
                                  'MEMORY_MB')
        self.assertWithin5Percent(disk_gb, inventory['DISK_GB']['total'],
                                  'DISK_GB')

    def test_hypervisor_reported(self):
        hypervisors = self.admin_api.api_get(
            '/os-hypervisors/detail').body['hypervisors']
        mine = [h for h in hypervisors
                if h['hypervisor_hostname'] == self.hosts[0]]
        self.assertEqual(1, len(mine))
        self.assertEqual('docker', mine[0]['hypervisor_type'])
        self.assertEqual('up', mine[0]['state'])

    def test_engine_unreachable_stops_service(self):
        sock = os.path.join(self.tmpdir, 'no-docker.sock')
        self.flags(api_url='unix://' + sock, group='docker')
        self.flags(engine_start_timeout=6, group='docker')
        err = self.assertRaises(exception.DockerUnreachable,
                                self.start_compute, 'down')
        message = str(err)
        self.assertIn(sock, message)
        self.assertIn('"docker" group', message)
        self.assertIn('never make the socket world-writable', message)
