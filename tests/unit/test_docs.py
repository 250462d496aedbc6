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

"""The claims of the documentation that a test can check.

The files and modules the guides name exist; the options they name are
options; the architecture page names every module of the driver; the
support matrix's column for this driver agrees with the feature flags the
cloud tests run tempest with; the README stays short and links only to
pages that exist. Everything else the docs say is read, not tested.
"""

import configparser
import glob
import importlib
import os
import re

import testtools

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DOC = os.path.join(REPO, 'doc', 'source')
MATRIX = os.path.join(DOC, 'user', 'support-matrix.ini')
TEMPEST_CONF = os.path.join(REPO, 'etc', 'tempest', 'tempest.conf.in')
THIS_DRIVER = 'driver.nova-docker'

# support-matrix.ini operation -> tempest [compute-feature-enabled] flag.
# The flag is true exactly when this driver's column says complete or
# partial. When a feature lands, flip the flag in tempest.conf.in and the
# driver.nova-docker line of the operation together; an operation tempest
# has no flag for is simply not listed here.
TEMPEST_FLAGS = {
    'console-output': 'console_output',
    'pause': 'pause',
    'suspend': 'suspend',
    'snapshot': 'snapshot',
    'interface-attach': 'interface_attach',
    'resize': 'resize',
    'cold-migrate': 'cold_migration',
    'live-migrate': 'live_migration',
    'rescue': 'rescue',
    'set-admin-password': 'change_password',
    'vnc-console': 'vnc_console',
    'spice-console': 'spice_console',
    'serial-console': 'serial_console',
    'swap-volume': 'swap_volume',
    'config-drive': 'config_drive',
    'inject-files': 'personality',
    'shelve': 'shelve',
    'disk-config': 'disk_config',
}
SUPPORTED = ('complete', 'partial')

# Paths the docs name that are not files of this tree, and why.
EXTERNAL_PATHS = {
    'nova/cmd/compute.py',                     # Nova's
    'nova/tests/fixtures/nova.py',             # Nova's
    'tools/discover_hosts.sh',                 # devstack's
    'etc/org.apache.karaf.features.cfg',       # inside an ODL distribution
    'etc/nova/nova-cpu.conf',                  # under the cloud's /opt tree
    'etc/nova/nova-docker.conf.sample',        # written by tox -e genconfig
}
# A repository path in an inline literal: ``novadocker/virt/docker/x.py``.
REPO_PATH_RE = re.compile(
    r'``((?:novadocker|nova|heat_plugins|nova_docker_tempest_plugin|'
    r'devstack|tools|tests|etc|benchmarks)/[A-Za-z0-9_./-]*)``')
# A bare module file name: ``vifs.py``.
MODULE_FILE_RE = re.compile(r'``([A-Za-z0-9_-]+\.py)``')
# A dotted module of the driver: ``novadocker.privsep``.
DOTTED_RE = re.compile(r'``(novadocker(?:\.[a-z_]+)+)``')
# An option in a group: ``[docker] api_url`` (the group and the name may be
# in one literal or the name in the next one, across a line break).
GROUP_OPTION_RE = re.compile(
    r'\[(docker|odl_cluster|nova_docker)\]``?\s+``?([a-z][a-z0-9_]*)')
# The hardening list: ``[docker]``: ``cap_keep``, ``nofile_limit``, ...
OPTION_LIST_RE = re.compile(r'``\[docker\]``:((?:\s*``[a-z0-9_]+``,?)+)')


def doc_files():
    return sorted(glob.glob(os.path.join(DOC, '**', '*.rst'),
                            recursive=True))


def read(path):
    with open(path) as f:
        return f.read()


def repo_files():
    found = set()
    for top, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith('.') and
                   d not in ('build', '__pycache__')]
        found.update(files)
    return found


def option_names(path):
    """The names of the oslo.config options a module defines, by reading."""
    return set(re.findall(r"cfg\.\w+Opt\(\s*'([a-z0-9_]+)'", read(path)))


def bundle_options():
    """[docker] options through setup.cfg's oslo.config.opts entry point."""
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(os.path.join(REPO, 'setup.cfg'))
    entries = setup.get('entry_points', 'oslo.config.opts').strip()
    names = set()
    for line in entries.splitlines():
        target = line.split('=', 1)[1].strip()
        module, func = target.split(':')
        for group, opts in getattr(importlib.import_module(module), func)():
            names.update((getattr(group, 'name', group), o.name)
                         for o in opts)
    return names


class DocFilesTestCase(testtools.TestCase):

    def test_named_repository_paths_exist(self):
        missing = []
        for path in doc_files():
            for name in REPO_PATH_RE.findall(read(path)):
                if '<' in name or name in EXTERNAL_PATHS:
                    continue
                if not os.path.exists(os.path.join(REPO, name.rstrip('/'))):
                    missing.append('%s: %s' % (os.path.relpath(path, REPO),
                                               name))
        self.assertEqual([], missing)

    def test_named_module_files_exist(self):
        files = repo_files()
        missing = []
        for path in doc_files():
            for name in MODULE_FILE_RE.findall(read(path)):
                if name not in files:
                    missing.append('%s: %s' % (os.path.relpath(path, REPO),
                                               name))
        self.assertEqual([], missing)

    def test_named_dotted_modules_exist(self):
        missing = []
        for path in doc_files():
            for name in DOTTED_RE.findall(read(path)):
                base = os.path.join(REPO, *name.split('.'))
                if not (os.path.isfile(base + '.py') or os.path.isfile(
                        os.path.join(base, '__init__.py'))):
                    missing.append('%s: %s' % (os.path.relpath(path, REPO),
                                               name))
        self.assertEqual([], missing)

    def test_the_architecture_page_names_every_driver_module(self):
        page = read(os.path.join(DOC, 'contributor', 'architecture.rst'))
        modules = [os.path.relpath(p, REPO) for p in glob.glob(
            os.path.join(REPO, 'novadocker', '**', '*.py'), recursive=True)
            if os.path.basename(p) != '__init__.py']
        unnamed = [m for m in sorted(modules) if '``%s``' % m not in page]
        self.assertEqual([], unnamed)


class DocOptionsTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.known = bundle_options()
        self.known.update(('odl_cluster', n) for n in option_names(
            os.path.join(REPO, 'heat_plugins', 'odl_conf.py')))
        self.known.update(('nova_docker', n) for n in option_names(
            os.path.join(REPO, 'nova_docker_tempest_plugin', 'config.py')))

    def test_the_entry_point_gives_docker_options(self):
        self.assertIn(('docker', 'api_url'), self.known)

    def test_named_options_exist(self):
        unknown = []
        for path in doc_files():
            text = read(path)
            named = set(GROUP_OPTION_RE.findall(text))
            for listed in OPTION_LIST_RE.findall(text):
                named.update(('docker', n)
                             for n in re.findall(r'``([a-z0-9_]+)``', listed))
            unknown += ['%s: [%s] %s' % (os.path.relpath(path, REPO), g, n)
                        for g, n in sorted(named - self.known)]
        self.assertEqual([], unknown)

    def test_the_reference_is_generated_from_the_entry_point(self):
        setup = configparser.ConfigParser(interpolation=None)
        setup.read(os.path.join(REPO, 'setup.cfg'))
        namespaces = [line.split('=')[0].strip() for line in setup.get(
            'entry_points', 'oslo.config.opts').strip().splitlines()]
        page = read(os.path.join(DOC, 'configuration',
                                 'config-reference.rst'))
        self.assertIn('.. show-options::', page)
        for namespace in namespaces:
            self.assertIn('\n   %s\n' % namespace, page)


class SupportMatrixTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.matrix = configparser.ConfigParser(interpolation=None)
        self.matrix.read(MATRIX)
        self.tempest = configparser.ConfigParser(interpolation=None)
        self.tempest.read(TEMPEST_CONF)

    def operations(self):
        return {s[len('operation.'):]: self.matrix[s]
                for s in self.matrix.sections()
                if s.startswith('operation.')}

    def test_every_operation_has_every_driver(self):
        drivers = [s for s in self.matrix.sections()
                   if s.startswith('driver.')]
        self.assertIn(THIS_DRIVER, drivers)
        for key, op in self.operations().items():
            for driver in drivers:
                self.assertIn(op.get(driver), ('complete', 'partial',
                                               'missing', 'unknown'),
                              '%s %s' % (key, driver))

    def test_the_mapping_names_real_operations_and_flags(self):
        flags = self.tempest['compute-feature-enabled']
        for operation, flag in TEMPEST_FLAGS.items():
            self.assertIn(operation, self.operations())
            self.assertIn(flag, flags)

    def test_this_driver_agrees_with_the_tempest_flags(self):
        flags = self.tempest['compute-feature-enabled']
        disagree = []
        for operation, flag in sorted(TEMPEST_FLAGS.items()):
            status = self.operations()[operation][THIS_DRIVER]
            if (status in SUPPORTED) != flags.getboolean(flag):
                disagree.append('%s is %s in the support matrix but tempest '
                                'has %s = %s' % (operation, status, flag,
                                                 flags[flag]))
        self.assertEqual([], disagree)


class ReadmeTestCase(testtools.TestCase):

    def test_the_readme_is_short(self):
        with open(os.path.join(REPO, 'README.md')) as f:
            self.assertLess(len(f.read().splitlines()), 150)

    def test_the_readme_names_paths_that_exist(self):
        text = read(os.path.join(REPO, 'README.md'))
        named = re.findall(
            r'`((?:novadocker|heat_plugins|nova_docker_tempest_plugin|'
            r'devstack|tools|tests|etc|doc)/[A-Za-z0-9_./-]*)`', text)
        self.assertNotEqual([], named)
        # What tox -e docs writes does not exist in a fresh clone.
        missing = [n for n in named if not n.startswith('doc/build/') and
                   not os.path.exists(os.path.join(REPO, n))]
        self.assertEqual([], missing)

    def test_the_readme_links_to_pages_that_exist(self):
        text = read(os.path.join(REPO, 'README.md'))
        links = re.findall(r'\]\((doc/source/[^)#]+)', text)
        self.assertNotEqual([], links)
        missing = [link for link in links
                   if not os.path.exists(os.path.join(REPO, link))]
        self.assertEqual([], missing)
