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

"""The demo: two servers booted through the Nova API on real Docker and OVS.

Run by tools/demo.sh. It uses the functional harness (Nova's services
in-process, nothing about Docker, OVS or rootwrap faked) but is not part of
the test suite: it narrates what happens, step by step.
"""

import os
import subprocess
import sys

from tests.functional import base
from tests.functional import fixtures as nd_fixtures


# tools/demo.sh points this at the terminal and sends Nova's logs to a file.
_OUT = os.environ.get('NOVA_DOCKER_DEMO_OUT')


def say(text=''):
    if _OUT:
        with open(_OUT, 'a') as out:
            out.write(text + '\n')
    else:
        print(text, file=sys.__stdout__, flush=True)


def shell(*cmd):
    result = subprocess.run(cmd, capture_output=True, text=True)
    return (result.stdout + result.stderr).rstrip()


class Demo(base.DockerFunctionalTestBase):

    def _containers(self, server):
        return {c.labels['org.openstack.nova.role']: c
                for c in self.containers_of(server)}

    def _show(self, server):
        found = self._containers(server)
        ip = server['addresses']['private'][0]['addr']
        say('  server %s  status=%s  ip=%s' % (server['id'], server['status'],
                                               ip))
        for role in ('sandbox', 'workload'):
            c = found[role]
            say('    %-8s container %s  %s  (%s)'
                % (role, c.short_id, c.name, c.status))
        return found['workload'], ip

    def test_demo(self):
        host = self.hosts[0]
        say('== nova-docker demo ==')
        say('1. Nova API, conductor, scheduler, placement and compute "%s" '
            'run in this process;' % host)
        say('   compute_driver = docker.DockerDriver, engine %s, OVS bridge '
            'br-int (netdev).' % shell('docker', 'version', '--format',
                                       '{{.Server.Version}}'))
        image = self.glance.add_image(
            nd_fixtures.docker_save(nd_fixtures.BUSYBOX_IMAGE), 'busybox-demo',
            os_command_line="/bin/sh -c 'echo hello from $(hostname); "
                            "ip -4 -o addr show eth0; exec sleep 86400'")
        say('2. Glance image %s: "docker save nova-docker/busybox" '
            '(container_format=docker)' % image)
        flavor = self._create_flavor(memory_mb=128, vcpu=1, disk=1,
                                     ephemeral=0,
                                     name='docker.demo')
        net = nd_fixtures.OVSNeutronFixture.network_1['id']

        servers = []
        for name in ('demo-a', 'demo-b'):
            say('3. openstack server create --image busybox-demo --flavor '
                'docker.demo --network private %s' % name)
            server = self.boot(image_id=image, flavor_id=flavor,
                               networks=[{'uuid': net}], name=name)
            servers.append(server)
        a, b = servers
        wa, ip_a = self._show(a)
        _, ip_b = self._show(b)

        say('4. console log of demo-a (os-getConsoleOutput):')
        output = self.console(a, 'inet ')
        say('    ' + output.strip().replace('\n', '\n    '))
        self.assertIn('hello from demo-a', output)
        self.assertIn('inet %s/24' % ip_a, output)

        say('5. demo-a pings demo-b over br-int:')
        code, out = wa.exec_run(['ping', '-c', '3', '-W', '2', ip_b])
        say('    ' + out.decode().strip().replace('\n', '\n    '))
        self.assertEqual(0, code)

        say('6. the namespace link, for operators: ip netns exec nova-%s '
            'ip -4 addr show eth0' % a['id'])
        say('    ' + shell('ip', 'netns', 'exec', 'nova-%s' % a['id'], 'ip',
                           '-4', '-o', 'addr', 'show', 'eth0'))

        say('7. openstack server delete demo-a demo-b')
        for server in servers:
            self._delete_server(server)
        for server in servers:
            leftovers = self.leftovers(server['id'])
            say('    %s: %s'
                % (server['id'], leftovers or 'nothing left'))
            self.assertEqual([], leftovers)
        say('    docker ps -a (nova containers): %s' % (shell(
            'docker', 'ps', '-a', '--filter',
            'label=org.openstack.nova.host=%s' % host, '--format',
            '{{.Names}}') or 'none'))
        ports = shell('ovs-vsctl', 'list-ports', 'br-int')
        say('    ovs-vsctl list-ports br-int: %s'
            % (ports.replace('\n', ' ') or 'none'))
        say('    /var/run/netns: %s' % (' '.join(
            sorted(os.listdir('/var/run/netns'))) or 'empty'))
        say('== demo finished: booted, pinged, deleted, nothing left ==')
