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

"""Run as a script, outside the source tree: what a heat-engine would see.

Usage: python plugin_dir_probe.py PLUGIN_DIR TEMPLATE_DIR

Configures Heat with ``[DEFAULT] plugin_dirs = PLUGIN_DIR``, loads Heat's
resource registry the way heat-engine does, and validates every sample
template in TEMPLATE_DIR (with the environment file) through the engine's
validate_template. Prints one JSON document describing the outcome.
"""

import json
import os
import sys

from heat.tests import common  # noqa: F401 (selects oslo.service backend)


def main(plugin_dir, template_dir):
    from heat.common import config
    from heat.common import environment_format
    from heat.common import template_format
    from heat.engine import resource
    from heat.engine import resources
    from heat.engine import service
    from heat.tests import utils
    from oslo_config import cfg

    cfg.CONF([], project='heat', default_config_files=[])
    config.startup_sanity_check = lambda: None
    cfg.CONF.set_override('plugin_dirs', [plugin_dir])
    cfg.CONF.set_override('convergence_engine', False)
    utils.setup_dummy_db()
    resources.initialise()
    env = resources.global_env()
    cls = env.get_class('OS::ODL::Cluster')
    result = {
        'class_module': cls.__module__,
        'class_file': cls.handle_create.__code__.co_filename,
        'plugin_modules': sorted(m for m in sys.modules
                                 if m.startswith('heat.engine.plugins.')),
        'templates': {},
    }
    # No Keystone catalog here: count every service as deployed, as it is
    # where these templates are meant to run.
    resource.Resource.is_service_available = classmethod(
        lambda cls, context: (True, None))
    ctx = utils.dummy_context()
    engine = service.EngineService('probe-host', 'engine')
    with open(os.path.join(template_dir, 'odl-env.yaml')) as f:
        env_dict = environment_format.parse(f.read())
    for name in ('odl-cluster.yaml', 'docker-server.yaml'):
        with open(os.path.join(template_dir, name)) as f:
            tmpl = template_format.parse(f.read())
        try:
            shown = engine.validate_template(ctx, tmpl, params=env_dict,
                                             files={})
        except Exception as e:
            result['templates'][name] = {'error': '%s: %s' % (
                type(e).__name__, e)}
        else:
            result['templates'][name] = shown
    print(json.dumps(result, default=str))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
