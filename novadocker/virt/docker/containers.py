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

"""What a Nova server's containers look like, and how to find them.

Each server is two containers on the engine, both labelled with the
instance UUID, its project and the nova-compute host that owns it:

* the *sandbox* (``nova-<uuid>-sandbox``) owns the network namespace. It
  starts first, the driver wires the server's ports into its namespace, and
  only then does the workload start, so the workload's first instruction
  already sees its interfaces, addresses and routes (as pods do);
* the *workload* (``nova-<uuid>``) runs the image, sharing the sandbox's
  network and UTS namespaces.

Only containers whose labels name this host are ever listed, counted,
changed or removed: compute services sharing one engine, and containers
started by hand, are invisible to each other.
"""

import re
import shlex

from nova.compute import power_state
from oslo_utils import strutils

import novadocker.conf
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF

LABEL_PREFIX = 'org.openstack.nova.'
LABEL_UUID = LABEL_PREFIX + 'instance-uuid'
LABEL_NAME = LABEL_PREFIX + 'instance-name'
LABEL_PROJECT = LABEL_PREFIX + 'project-id'
LABEL_HOST = LABEL_PREFIX + 'host'
LABEL_ROLE = LABEL_PREFIX + 'role'
ROLE_SANDBOX = 'sandbox'
ROLE_WORKLOAD = 'workload'

# Image properties (Nova keeps every image property in the instance's
# system metadata as image_<name>, so no Glance call is needed to read them).
PROP_TTY = 'docker_tty'
PROP_COMMAND = 'os_command_line'
EXTRA_SPEC_PIDS = 'docker:pids_limit'

_ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')

# Engine states (State.Status in docker inspect) to Nova power states.
_POWER_STATES = {
    'created': power_state.SHUTDOWN,
    'running': power_state.RUNNING,
    'restarting': power_state.RUNNING,
    'paused': power_state.PAUSED,
    'exited': power_state.SHUTDOWN,
    'removing': power_state.SHUTDOWN,
    'dead': power_state.CRASHED,
}

# The sandbox only has to exist; it handles SIGTERM so stopping it is quick.
SANDBOX_COMMAND = ['/bin/busybox', 'sh', '-c',
                   'trap "exit 0" TERM INT; '
                   'while :; do /bin/busybox sleep 3600 & wait $!; done']


def workload_name(instance):
    """The engine name of the server's workload container."""
    return 'nova-%s' % instance.uuid


def sandbox_name(instance):
    """The engine name of the container that owns the server's network."""
    return 'nova-%s-sandbox' % instance.uuid


def labels_for(instance, host, role):
    """Labels that tie a container to one instance on one compute host."""
    return {
        LABEL_UUID: instance.uuid,
        LABEL_NAME: instance.name,
        LABEL_PROJECT: instance.project_id or '',
        LABEL_HOST: host,
        LABEL_ROLE: role,
    }


def host_filter(host, role=None, instance_uuid=None):
    """Label filters for the engine's container list API."""
    labels = ['%s=%s' % (LABEL_HOST, host)]
    if role:
        labels.append('%s=%s' % (LABEL_ROLE, role))
    if instance_uuid:
        labels.append('%s=%s' % (LABEL_UUID, instance_uuid))
    return {'label': labels}


def power_state_of(status):
    """Map an engine container status to a nova.compute.power_state."""
    return _POWER_STATES.get(status, power_state.NOSTATE)


def environment_for(instance):
    """Instance metadata as container environment variables.

    A key that is not a valid variable name is refused rather than dropped:
    a server silently missing part of its configuration is worse than one
    that fails to build with a message saying which key to fix.
    """
    env = {}
    for key, value in sorted((instance.metadata or {}).items()):
        if not _ENV_NAME.match(key):
            raise exception.InvalidEnvironmentName(key=key)
        env[key] = value
    return env


def command_for(instance):
    """The command from image property os_command_line, or None."""
    value = (instance.system_metadata or {}).get('image_' + PROP_COMMAND)
    if not value:
        return None
    try:
        command = shlex.split(value)
    except ValueError as e:
        raise exception.InvalidCommandLine(value=value, reason=str(e))
    if not command:
        raise exception.InvalidCommandLine(value=value,
                                           reason='it holds no command')
    return command


def tty_for(instance):
    """Whether the workload gets a tty and open stdin (default: yes).

    Images whose command is a shell exit at once without them.
    """
    value = (instance.system_metadata or {}).get('image_' + PROP_TTY)
    return strutils.bool_from_string(value, default=True)


def pids_limit_for(flavor):
    """The PIDs limit: flavor extra spec docker:pids_limit or [docker]."""
    value = (flavor.extra_specs or {}).get(EXTRA_SPEC_PIDS)
    if value is None:
        return CONF.docker.pids_limit
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 16:
        raise exception.InvalidFlavorPidsLimit(flavor=flavor.name,
                                               value=value)
    return limit


def cpu_limits_for(flavor):
    """CPU settings from the flavor's vCPUs, per [docker] cpu_limit_mode."""
    vcpus = max(int(flavor.vcpus), 1)
    if CONF.docker.cpu_limit_mode == 'shares':
        return {'cpu_shares': 1024 * vcpus}
    return {'nano_cpus': vcpus * 10 ** 9}


def sandbox_config(instance, host, dns_servers=()):
    """Keyword arguments of containers.create() for the sandbox.

    The engine writes the sandbox's /etc/resolv.conf, which the workload
    shares, from *dns_servers* (the subnets' DNS servers) when there are any.
    """
    config = {
        'image': CONF.docker.sandbox_image,
        'command': SANDBOX_COMMAND,
        'name': sandbox_name(instance),
        'hostname': _hostname(instance),
        'labels': labels_for(instance, host, ROLE_SANDBOX),
        'network_mode': 'none',
        'detach': True,
        'security_opt': ['no-new-privileges'],
        'privileged': False,
        # It only sleeps. Holding no capabilities also lets the privsep
        # daemon (CAP_NET_ADMIN, CAP_SYS_ADMIN only) open its namespace.
        'cap_drop': ['ALL'],
        'mem_limit': '16m',
        'pids_limit': 16,
    }
    if dns_servers:
        config['dns'] = list(dns_servers)
    return config


def workload_config(instance, host, image, sandbox_id):
    """Keyword arguments of containers.create() for the workload."""
    flavor = instance.flavor
    memory = int(flavor.memory_mb) * 1024 * 1024
    tty = tty_for(instance)
    config = {
        'image': image,
        'name': workload_name(instance),
        'labels': labels_for(instance, host, ROLE_WORKLOAD),
        'environment': environment_for(instance),
        'network_mode': 'container:%s' % sandbox_id,
        'tty': tty,
        'stdin_open': tty,
        'detach': True,
        'privileged': False,
        'security_opt': ['no-new-privileges'],
        'mem_limit': memory,
        # Equal to the memory limit: no swap beyond the flavor's RAM.
        'memswap_limit': memory,
        'pids_limit': pids_limit_for(flavor),
    }
    config.update(cpu_limits_for(flavor))
    command = command_for(instance)
    if command:
        config['command'] = command
    return config


def _hostname(instance):
    # Nova has already sanitised instance.hostname into a DNS label.
    return (instance.hostname or 'server-%s' % instance.uuid)[:63]
