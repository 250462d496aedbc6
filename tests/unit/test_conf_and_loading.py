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

"""The [docker] options and loading the driver the way Nova does."""

from importlib import metadata

import fixtures

from nova import test
from nova.virt import driver as nova_driver
from oslo_config import cfg

from novadocker.conf import docker as docker_conf
from novadocker.virt.docker import driver as docker_driver


class OptionsTestCase(test.NoDBTestCase):

    def test_every_option_has_help(self):
        (group, options), = docker_conf.list_opts()
        self.assertEqual('docker', group.name)
        self.assertGreaterEqual(len(options), 8)
        for opt in options:
            self.assertGreater(len(opt.help or ''), 20, opt.name)

    def test_register_opts(self):
        conf = cfg.ConfigOpts()
        docker_conf.register_opts(conf)
        conf([])
        self.assertEqual('unix:///var/run/docker.sock', conf.docker.api_url)
        self.assertEqual('quota', conf.docker.cpu_limit_mode)

    def test_config_generator_entry_point(self):
        eps = metadata.entry_points(group='oslo.config.opts')
        found = [ep for ep in eps if ep.name == 'nova.virt.docker']
        self.assertEqual(1, len(found), 'is nova-docker installed?')
        self.assertIs(docker_conf.list_opts, found[0].load())


class DriverLoadingTestCase(test.NoDBTestCase):

    def test_nova_loads_docker_driver(self):
        # Exactly Nova's own loader, with the nova.conf value operators use.
        loaded = nova_driver.load_compute_driver(None, 'docker.DockerDriver')
        self.assertIsInstance(loaded, docker_driver.DockerDriver)

    def test_reexport_is_the_only_nova_file(self):
        dist = metadata.distribution('nova-docker')
        nova_files = sorted(str(f) for f in dist.files
                            if str(f).startswith('nova/') and
                            str(f).endswith('.py'))
        self.assertEqual(['nova/virt/docker/__init__.py'], nova_files)


class SampleConfigTestCase(test.NoDBTestCase):

    def test_generator_writes_every_option(self):
        from oslo_config import generator
        out = self.useFixture(fixtures.TempDir()).path + '/sample.conf'
        generator.main(['--namespace', 'nova.virt.docker',
                        '--output-file', out])
        with open(out) as f:
            sample = f.read()
        self.assertIn('[docker]', sample)
        (group, options), = docker_conf.list_opts()
        for opt in options:
            self.assertRegex(sample, r'(?m)^#%s =' % opt.dest)
