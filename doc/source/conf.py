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

"""Sphinx configuration of the nova-docker documentation (tox -e docs)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '_exts'))

extensions = [
    'openstackdocstheme',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'support_matrix',
    'reno.sphinxext',
]

# oslo_config.sphinxconfiggen: the sample file, from the same generator
# configuration as tox -e genconfig, published with the HTML.
config_generator_config_file = [
    ('../../etc/oslo-config-generator/nova-docker.conf',
     '_static/nova-docker'),
]
sample_config_basename = '_static/nova-docker'

project = 'nova-docker'
copyright = 'nova-docker developers'
master_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'native'

html_theme = 'openstackdocs'
html_static_path = ['_static']

openstackdocs_repo_name = 'nova-docker/nova-docker'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_bug_project = 'nova-docker'
openstackdocs_bug_tag = 'doc'
