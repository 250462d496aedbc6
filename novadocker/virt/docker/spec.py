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

"""The container specification: what a server's containers look like.

The one home of their names, labels and filters, and of the create
arguments (limits, hardening, environment) that ``server.Server`` hands
the engine.

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
from oslo_log import log as logging
from oslo_utils import strutils

import novadocker.conf
from novadocker.virt.docker import configdrive
from novadocker.virt.docker import exception
from novadocker.virt.docker import hostinfo

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

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
# The only image properties that change a container, with their bounds.
# Every other image property is ignored (and docker_* ones are logged):
# nothing an image says can add privileges, devices, mounts or namespaces.
HONOURED_PROPERTIES = {
    PROP_COMMAND: 'a shell-quoted command line shorter than 255 characters',
    PROP_TTY: 'a boolean (true/false, yes/no, 1/0)',
}
# Nova keeps 255 characters of an image property in the instance's system
# metadata and silently drops the rest: a command that long may be cut.
COMMAND_MAX_CHARS = 254
EXTRA_SPEC_PIDS = 'docker:pids_limit'
# Where the server's host name points in its /etc/hosts.
OWN_NAME_ADDRESS = '127.0.1.1'

# Capabilities of Docker's default set that every workload loses unless
# [docker] cap_keep names them: none is needed by an ordinary service, each
# widens what a process that becomes root in the container can do.
DROPPED_CAPABILITIES = ('NET_RAW', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP',
                        'SYS_CHROOT', 'SETPCAP')

_ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# Loader variables change how every process in the container links,
# including what an operator runs there with "docker exec".
_RESERVED_ENV_PREFIX = 'LD_'

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
        if key.upper().startswith(_RESERVED_ENV_PREFIX):
            raise exception.InvalidEnvironmentValue(
                key=key, reason='LD_* variables change how every program '
                'in the container is linked and are refused; set them in '
                "the image's own command instead")
        if '\0' in (value or ''):
            raise exception.InvalidEnvironmentValue(
                key=key, reason='its value holds a NUL character')
        env[key] = value
    return env


def ignored_properties(instance):
    """docker_* image properties the driver does not honour (to log)."""
    return sorted(
        key[len('image_'):] for key in (instance.system_metadata or {})
        if key.startswith('image_docker_') and
        key[len('image_'):] not in HONOURED_PROPERTIES)


def command_for(instance):
    """The command from image property os_command_line, or None."""
    value = (instance.system_metadata or {}).get('image_' + PROP_COMMAND)
    if not value:
        return None
    if len(value) > COMMAND_MAX_CHARS:
        raise exception.InvalidCommandLine(
            value=value[:64] + '...', reason='Nova keeps only 255 '
            'characters of an image property, so it may be cut short: use a '
            'shorter command, or a script in the image')
    if '\0' in value:
        raise exception.InvalidCommandLine(
            value=value, reason='it holds a NUL character')
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
    if value is None:
        return True
    try:
        return strutils.bool_from_string(value, strict=True)
    except ValueError as e:
        raise exception.InvalidImageProperty(
            name=PROP_TTY, value=value, reason=HONOURED_PROPERTIES[PROP_TTY]
        ) from e


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


def cpu_limits_for(flavor, host_cpus=None):
    """CPU settings from the flavor's vCPUs, per [docker] cpu_limit_mode.

    A quota cannot exceed the host's CPUs (the engine refuses it), so a
    flavor with more vCPUs than the host gets all of the host's CPUs.
    """
    vcpus = max(int(flavor.vcpus), 1)
    if CONF.docker.cpu_limit_mode == 'shares':
        return {'cpu_shares': 1024 * vcpus}
    host_cpus = host_cpus or hostinfo.cpu_count()
    return {'nano_cpus': min(vcpus, host_cpus) * 10 ** 9}


def hardening():
    """Settings every workload gets, whatever its image or properties say."""
    keep = {c.upper().strip() for c in CONF.docker.cap_keep}
    conf = CONF.docker
    settings = {
        'privileged': False,
        'security_opt': ['no-new-privileges'],
        'cap_drop': [c for c in DROPPED_CAPABILITIES if c not in keep],
        'ulimits': [
            {'name': 'nofile', 'soft': conf.nofile_limit,
             'hard': conf.nofile_limit},
            {'name': 'nproc', 'soft': conf.nproc_limit,
             'hard': conf.nproc_limit},
        ],
        # The engine would run the image's HEALTHCHECK command on its own
        # schedule; Nova never reads its result.
        'healthcheck': {'test': ['NONE']},
        'log_config': log_config(),
        # Read-only /proc/sys, no host IPC/PID/user namespaces: the
        # engine's defaults; never overridden here.
        'ipc_mode': 'private',
    }
    if conf.runtime:
        settings['runtime'] = conf.runtime
    return settings


def log_config():
    """Per-container json-file log rotation from the [docker] options."""
    return {'type': 'json-file',
            'config': {'max-size': CONF.docker.log_max_size,
                       'max-file': str(CONF.docker.log_max_file)}}


def root_disk_for(flavor):
    """storage_opt capping the writable layer at the flavor's root disk."""
    root_gb = int(flavor.root_gb or 0)
    if root_gb <= 0:
        return {}
    return {'storage_opt': {'size': '%dG' % root_gb}}


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
        # The server's own name resolves inside it (the workload shares
        # this /etc/hosts). The engine adds no such line to a container
        # without engine networking; 127.0.1.1 is Debian's and cloud-init's
        # convention, and stays right whatever ports come and go.
        'extra_hosts': {_hostname(instance): OWN_NAME_ADDRESS},
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
        'ipc_mode': 'private',
        'log_config': log_config(),
    }
    if dns_servers:
        config['dns'] = list(dns_servers)
    return config


def workload_config(instance, host, image, sandbox_id, host_cpus=None,
                    disk_quota=False):
    """Keyword arguments of containers.create() for the workload.

    With *disk_quota* the writable layer is capped at the flavor's root
    disk (only where the engine's storage driver supports it).
    """
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
        'mem_limit': memory,
        # Equal to the memory limit: no swap beyond the flavor's RAM.
        'memswap_limit': memory,
        'pids_limit': pids_limit_for(flavor),
    }
    config.update(hardening())
    config.update(cpu_limits_for(flavor, host_cpus))
    if disk_quota:
        config.update(root_disk_for(flavor))
    command = command_for(instance)
    if command:
        config['command'] = command
    volumes = configdrive.volumes_for(instance)
    if volumes:
        config['volumes'] = volumes
    return config


def _hostname(instance):
    # Nova has already sanitised instance.hostname into a DNS label.
    return (instance.hostname or 'server-%s' % instance.uuid)[:63]


# -- rescue and resize --------------------------------------------------------

ROLE_RESCUE = 'rescue'
# Where a rescue container sees the server's writable layer (its disk).
RESCUE_MOUNT = '/mnt/rescue'


def rescue_name(instance):
    """The engine name of the server's rescue container."""
    return 'nova-%s-rescue' % instance.uuid


def rescue_command(image_meta):
    """The rescue image's own os_command_line, or None (its CMD).

    Not the server's: the rescue image says how it runs. When Nova rescues
    with the server's own image the two are the same.
    """
    props = image_meta.properties if image_meta.obj_attr_is_set(
        'properties') else None
    value = props.get('os_command_line') if props is not None else None
    if not value:
        return None
    try:
        return shlex.split(value) or None
    except ValueError as e:
        raise exception.InvalidCommandLine(value=value, reason=str(e))


def rescue_config(instance, host, image, sandbox_id, layer_dir,
                  command=None):
    """Keyword arguments of containers.create() for a rescue container.

    It runs *image* (with *command*, or the image's CMD) in the sandbox's
    network namespace (the server's ports and addresses) with the server's
    flavor limits, environment and hardening, and with *layer_dir*, the
    stopped workload's writable layer on the engine host, bound read-write
    at RESCUE_MOUNT.
    """
    config = workload_config(instance, host, image, sandbox_id)
    config.pop('command', None)
    if command:
        config['command'] = command
    config.update({
        'name': rescue_name(instance),
        'labels': labels_for(instance, host, ROLE_RESCUE),
        'tty': True,
        'stdin_open': True,
        'mounts': [{'Type': 'bind', 'Source': layer_dir,
                    'Target': RESCUE_MOUNT, 'ReadOnly': False}],
    })
    return config


def limits_for(flavor, host_cpus=None):
    """The engine's update body for *flavor*'s memory, CPU and PIDs.

    The same limits workload_config gives at create, in the Engine API's
    own field names (ContainerUpdate).
    """
    memory = int(flavor.memory_mb) * 1024 * 1024
    body = {'Memory': memory, 'MemorySwap': memory,
            'PidsLimit': pids_limit_for(flavor)}
    cpu = cpu_limits_for(flavor, host_cpus)
    if 'nano_cpus' in cpu:
        body['NanoCpus'] = cpu['nano_cpus']
    else:
        body['CpuShares'] = cpu['cpu_shares']
    return body
