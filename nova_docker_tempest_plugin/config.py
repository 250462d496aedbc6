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

"""The [nova_docker] options of the tempest plugin."""

from oslo_config import cfg

nova_docker_group = cfg.OptGroup(
    name='nova_docker',
    title='nova-docker scenario tests',
    help='What the nova-docker scenarios boot, and how they may look at the '
         'compute host.')

NovaDockerGroup = [
    cfg.StrOpt('image_ref',
               default='nova-docker-busybox',
               help='Name or id of a Glance image with container_format '
                    'docker holding a busybox (the "docker save" archive '
                    'of nova-docker/busybox). The scenarios copy its data '
                    'into images of their own, whose os_command_line runs '
                    'the script each server is given in its metadata.'),
    cfg.StrOpt('flavor_ref',
               default='docker.small',
               help='Name or id of the flavor the scenarios boot.'),
    cfg.StrOpt('availability_zone',
               default='docker',
               help='Availability zone of the docker compute hosts.'),
    cfg.StrOpt('nodes_availability_zone',
               default='',
               help='Availability zone of the other docker compute hosts '
                    'of a multi-node cloud (tools/cloud.sh up --computes '
                    '2 names it docker-nodes). The multi-node scenarios '
                    'place one server on a host of availability_zone and '
                    'one on a host of this zone. Empty: they are skipped.'),
    cfg.StrOpt('network_name',
               default='private',
               help='Network the servers are booted on. Its IPv4 subnet '
                    'must be reachable from the host running tempest (the '
                    'single-node cloud puts the gateway address on the '
                    'host) for the host-side ping and HTTP checks.'),
    cfg.IntOpt('probe_timeout',
               default=90,
               help='Seconds to wait for a server to report a successful '
                    'ping and HTTP fetch of its peer in its console log.'),
    cfg.BoolOpt('host_checks',
                default=False,
                help='Tempest runs as root on the (single) docker compute '
                     'host: check from there that a failed or deleted '
                     'server left no container, OVS port or namespace '
                     'link, and connect OVS to the ODL stand-in members '
                     '(adding and removing Manager rows of its own only). '
                     'The ODL scenario needs it.'),
    cfg.StrOpt('odl_image_ref',
               default='',
               help='Name or id of a Glance image of the ODL stand-in '
                    '(tools/build-odl-standin-image.sh). Empty: the '
                    'scenario uploads odl_image_file itself.'),
    cfg.StrOpt('odl_image_file',
               default='',
               help='A "docker save" archive of the ODL stand-in image, '
                    'uploaded (and deleted afterwards) when odl_image_ref '
                    'is empty. With neither, the ODL scenario is skipped.'),
    cfg.StrOpt('odl_template',
               default='',
               help='Path of odl-cluster.yaml. Empty: the template the '
                    'bundle installs under <prefix>/share/nova-docker/heat, '
                    'else heat_plugins/templates of a source checkout.'),
    cfg.IntOpt('odl_cluster_size',
               default=3,
               help='Members of the ODL stand-in cluster.'),
    cfg.StrOpt('odl_server_group_policy',
               default='soft-anti-affinity',
               help='Server group policy of the cluster members '
                    '(soft-anti-affinity lets a one-host cloud hold them).'),
    cfg.StrOpt('compute_restart_command',
               default='',
               help='A command that restarts the nova-compute of the docker '
                    'host and returns once the new process finished '
                    'init_host; with the argument --kill it must kill the '
                    'service (SIGKILL) instead of stopping it. The '
                    'single-node cloud has "tools/cloud.sh restart-compute". '
                    'Empty: the restart scenarios are skipped. Needs '
                    'host_checks.'),
    cfg.StrOpt('node_compute_command',
               default='',
               help='A command that stops or starts the nova-compute of one '
                    'compute host, called with the arguments "stop HOST" or '
                    '"start HOST"; it returns once the service has stopped, '
                    'or once the new process finished init_host. The '
                    'evacuation scenario stops the nova-compute of a host '
                    'of nodes_availability_zone with it. Empty: that '
                    'scenario is skipped.'),
    cfg.IntOpt('concurrent_servers',
               default=20,
               help='Servers booted (and deleted) at once by the '
                    'concurrency scenario; the test project\'s quota is '
                    'raised to hold them.'),
    cfg.IntOpt('stack_timeout',
               default=600,
               help='Seconds to wait for the ODL stack to be created or '
                    'deleted.'),
]


def list_opts():
    return [(nova_docker_group.name, NovaDockerGroup)]
