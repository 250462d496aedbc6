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

"""odl-cluster-entrypoint.sh in a real busybox container.

The reference ODL configuration files are copied into a temporary Karaf
directory bind-mounted into a container of the local busybox image; the
entrypoint runs there with the environment OS::ODL::Cluster gives each
member, then the rewritten files are parsed with pyhocon and checked.
"""

import os
import shutil
import tempfile
import uuid

import docker
from pyhocon import ConfigFactory
import testtools

from heat_plugins import odl_member_stack as stack

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ENTRYPOINT = os.path.join(REPO, 'heat_plugins', 'odl_image',
                          'odl-cluster-entrypoint.sh')
REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         'data', 'odl-config')
IMAGE = 'nova-docker/busybox:latest'
PREFIX = 'nd-odl-entrypoint-'

# Newer releases add an Akka system for RPCs; the reference files predate
# it, so these tests append one, laid out as those releases ship it.
RPC_SECTION = '''
odl-cluster-rpc {
  bounded-mailbox {
    # Braces and brackets in comments { [ must not confuse the rewrite
    mailbox-type = "akka.dispatch.BoundedMailbox"
    mailbox-capacity = 1000
    mailbox-push-timeout-time = 100ms
  }
  akka {
    actor {
      provider = "akka.cluster.ClusterActorRefProvider"
    }
    remote {
      log-remote-lifecycle-events = off
      netty.tcp {
        hostname = "127.0.0.1"
        port = 2551
      }
    }
    cluster {
      # Seed nodes of the RPC system, one per member
      seed-nodes = [
        "akka.tcp://odl-cluster-rpc@127.0.0.1:2551"
      ]
      auto-down-unreachable-after = 30s
    }
  }
}
'''

FEATURES_CFG = '''#
# Comma separated list of features to install at startup
#
featuresBoot=config,standard,region,package,kar,ssh,management \\
    ,odl-restconf
featuresBootAsynchronous=false
'''


def seeds(count):
    return ['10.0.0.%d' % (10 + i) for i in range(1, count + 1)]


def member_env(index, ips, **extra):
    env = {
        stack.ENV_MEMBER_NAME: stack.member_name(index),
        stack.ENV_MEMBER_INDEX: str(index),
        stack.ENV_MEMBER_IP: ips[(index - 1) % len(ips)],
        stack.ENV_SEED_IPS: ','.join(ips),
        stack.ENV_CLUSTER_SIZE: str(len(ips)),
        stack.ENV_AKKA_PORT: '2550',
        stack.ENV_AKKA_RPC_PORT: '2551',
        'ODL_HOME': '/odl',
    }
    env.update(extra)
    return env


class EntrypointTest(testtools.TestCase):

    def setUp(self):
        super(EntrypointTest, self).setUp()
        try:
            self.docker = docker.from_env(timeout=30)
            self.docker.ping()
        except Exception as e:
            self.fail('Docker engine not reachable on /var/run/docker.sock '
                      '(%s): start it with tools/bootstrap-host.sh' % e)
        try:
            self.docker.images.get(IMAGE)
        except docker.errors.ImageNotFound:
            self.fail('image %s missing: build it with '
                      'tools/build-busybox-image.sh (there is no registry '
                      'to pull from)' % IMAGE)

    def karaf_dir(self, rpc=False, features=False):
        """A temporary Karaf tree holding copies of the reference files."""
        top = tempfile.mkdtemp(prefix=PREFIX)
        self.addCleanup(shutil.rmtree, top, ignore_errors=True)
        conf = os.path.join(top, 'configuration', 'initial')
        os.makedirs(conf)
        for name in ('akka.conf', 'module-shards.conf', 'modules.conf'):
            shutil.copyfile(os.path.join(REFERENCE, name),
                            os.path.join(conf, name))
        if rpc:
            with open(os.path.join(conf, 'akka.conf'), 'a') as f:
                f.write(RPC_SECTION)
        if features:
            os.makedirs(os.path.join(top, 'etc'))
            with open(os.path.join(top, 'etc',
                                   'org.apache.karaf.features.cfg'),
                      'w') as f:
                f.write(FEATURES_CFG)
        return top

    def run_entrypoint(self, top, env, command=('true',)):
        """Run the entrypoint in a container; return (exit code, output)."""
        name = PREFIX + uuid.uuid4().hex[:12]
        container = self.docker.containers.create(
            IMAGE, name=name, entrypoint=['/bin/sh', '/entrypoint.sh'],
            command=list(command), environment=env, network_mode='none',
            volumes={top: {'bind': '/odl', 'mode': 'rw'},
                     ENTRYPOINT: {'bind': '/entrypoint.sh', 'mode': 'ro'}})
        self.addCleanup(container.remove, force=True)
        container.start()
        result = container.wait(timeout=60)
        return result['StatusCode'], container.logs().decode()

    def parse(self, top, name):
        return ConfigFactory.parse_file(
            os.path.join(top, 'configuration', 'initial', name))

    def assert_member(self, top, index, ips, rpc=False):
        akka = self.parse(top, 'akka.conf')
        data = akka['odl-cluster-data.akka']
        ref_data = ConfigFactory.parse_file(
            os.path.join(REFERENCE, 'akka.conf'))['odl-cluster-data.akka']
        ip = ips[index - 1]
        self.assertEqual(ip, data['remote.netty.tcp.hostname'])
        self.assertEqual(2550, data['remote.netty.tcp.port'])
        self.assertEqual(
            ['akka.tcp://opendaylight-cluster-data@%s:2550' % i
             for i in ips], data['cluster.seed-nodes'])
        self.assertEqual(['member-%d' % index], data['cluster.roles'])
        # Untouched settings survive the rewrite.
        self.assertEqual(ref_data['cluster.seed-node-timeout'],
                         data['cluster.seed-node-timeout'])
        self.assertEqual(ref_data['cluster.auto-down-unreachable-after'],
                         data['cluster.auto-down-unreachable-after'])
        self.assertEqual(419430400,
                         data['remote.netty.tcp.maximum-frame-size'])
        self.assertEqual(
            'akka.serialization.JavaSerializer',
            data['actor.serializers.java'])
        if rpc:
            rpc_akka = akka['odl-cluster-rpc.akka']
            self.assertEqual(ip, rpc_akka['remote.netty.tcp.hostname'])
            self.assertEqual(2551, rpc_akka['remote.netty.tcp.port'])
            self.assertEqual(
                ['akka.tcp://odl-cluster-rpc@%s:2551' % i for i in ips],
                rpc_akka['cluster.seed-nodes'])
        shards = self.parse(top, 'module-shards.conf')['module-shards']
        self.assertEqual(['default', 'topology', 'inventory', 'toaster'],
                         [m['name'] for m in shards])
        members = ['member-%d' % i for i in range(1, len(ips) + 1)]
        for module in shards:
            for shard in module['shards']:
                self.assertEqual(members, shard['replicas'],
                                 '%s/%s' % (module['name'], shard['name']))
        with open(os.path.join(REFERENCE, 'modules.conf')) as ref, \
                open(os.path.join(top, 'configuration', 'initial',
                                  'modules.conf')) as out:
            self.assertEqual(ref.read(), out.read())

    def check_cluster(self, count, rpc=False):
        ips = seeds(count)
        for index in range(1, count + 1):
            top = self.karaf_dir(rpc=rpc)
            code, logs = self.run_entrypoint(
                top, member_env(index, ips),
                command=('echo', 'karaf-would-start-here'))
            self.assertEqual(0, code, logs)
            self.assertIn('karaf-would-start-here', logs)
            self.assert_member(top, index, ips, rpc=rpc)

    def test_one_member(self):
        self.check_cluster(1)

    def test_three_members(self):
        self.check_cluster(3)

    def test_five_members(self):
        self.check_cluster(5)

    def test_three_members_with_rpc_section(self):
        self.check_cluster(3, rpc=True)

    def test_rewrite_is_idempotent(self):
        # Containers restart; the entrypoint runs again on its own output.
        ips = seeds(3)
        top = self.karaf_dir(rpc=True)
        for _ in range(2):
            code, logs = self.run_entrypoint(top, member_env(2, ips))
            self.assertEqual(0, code, logs)
        self.assert_member(top, 2, ips, rpc=True)

    def test_extra_features_appended_once(self):
        ips = seeds(3)
        top = self.karaf_dir(features=True)
        env = member_env(1, ips, ODL_KARAF_FEATURES=(
            'odl-netvirt-openstack,odl-restconf'))
        for _ in range(2):
            code, logs = self.run_entrypoint(top, env)
            self.assertEqual(0, code, logs)
        with open(os.path.join(top, 'etc',
                               'org.apache.karaf.features.cfg')) as f:
            lines = f.read().splitlines()
        boot = [line for line in lines if line.startswith('featuresBoot ')]
        self.assertEqual(1, len(boot), lines)
        features = [f.strip() for f in boot[0].split('=', 1)[1].split(',')]
        self.assertEqual(['config', 'standard', 'region', 'package', 'kar',
                          'ssh', 'management', 'odl-restconf',
                          'odl-netvirt-openstack'], features)
        self.assertIn('featuresBootAsynchronous=false', lines)

    def test_inconsistent_environment_is_refused(self):
        ips = seeds(3)
        cases = [
            (member_env(2, ips, ODL_MEMBER_IP='10.0.0.99'),
             'ODL_MEMBER_IP=10.0.0.99 is not entry 2 of ODL_SEED_IPS'),
            (member_env(4, ips, ODL_MEMBER_IP='10.0.0.11'),
             'member-4 but ODL_SEED_IPS lists only 3 members'),
            (member_env(1, ips, ODL_CLUSTER_SIZE='5'),
             'ODL_CLUSTER_SIZE=5 but ODL_SEED_IPS lists 3 members'),
            (member_env(1, ips, ODL_MEMBER_NAME='controller-1'),
             'ODL_MEMBER_NAME=controller-1 is not member-<n>'),
            (member_env(1, ['10.0.0.11', '10.0.0.12"]', '10.0.0.13']),
             'ODL_SEED_IPS entry 2 has an invalid address'),
        ]
        for env, message in cases:
            top = self.karaf_dir()
            code, logs = self.run_entrypoint(top, env)
            self.assertEqual(64, code, logs)
            self.assertIn(message, logs)
            # Nothing was rewritten.
            with open(os.path.join(REFERENCE, 'akka.conf')) as ref, \
                    open(os.path.join(top, 'configuration', 'initial',
                                      'akka.conf')) as out:
                self.assertEqual(ref.read(), out.read())
