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

"""heat.conf options of OS::ODL::Cluster, group ``[odl_cluster]``.

No resource mapping: Heat loads this module from ``plugin_dirs`` like the
others; ``odl_cluster`` registers the options when it is loaded.
"""

from oslo_config import cfg

GROUP = 'odl_cluster'

odl_cluster_opts = [
    cfg.ListOpt(
        'readiness_poll_networks', default=[],
        help='Networks (IDs or names) on which heat-engine may probe '
             'OpenDaylight members itself, for stacks that set '
             '"readiness: poll". Empty (the default) disables polling: '
             'members then always signal their readiness to heat-api. '
             'List only networks heat-engine really reaches and that no '
             'tenant can give an address of your control plane (e.g. a '
             'provider network); the probes go only to the members\' own '
             'port addresses on these networks, to the declared RESTCONF '
             'port, follow no redirect and read at most 64 KiB in 5 s.'),
]


def register_opts(conf):
    """Register the ``[odl_cluster]`` options on ``conf``."""
    conf.register_opts(odl_cluster_opts, group=GROUP)


def list_opts():
    """The options, for oslo-config-generator."""
    return [(GROUP, odl_cluster_opts)]
