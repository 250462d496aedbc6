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

"""Privileged operations of nova-docker, run by an oslo.privsep daemon.

The daemon keeps two capabilities: CAP_NET_ADMIN to create, move and
configure network devices, and CAP_SYS_ADMIN to enter a sandbox's network
namespace (setns). Entering also passes the kernel's ptrace access check on
/proc/<pid>/ns/net, which a daemon without CAP_SYS_PTRACE passes only when
the sandbox holds no capability the daemon lacks: the sandbox container runs
with every capability dropped, which a process that only sleeps never needs.
"""

from oslo_privsep import capabilities
from oslo_privsep import priv_context

netns_admin = priv_context.PrivContext(
    'novadocker',
    cfg_section='nova_docker_privileged',
    pypath=__name__ + '.netns_admin',
    capabilities=[capabilities.CAP_NET_ADMIN, capabilities.CAP_SYS_ADMIN],
)
