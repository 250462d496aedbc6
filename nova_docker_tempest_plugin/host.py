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

"""What the scenarios look at on the docker compute host itself.

Used only with [nova_docker] host_checks = True (tempest runs as root on
the single compute host). Everything here is read-only, except the OVS
Manager rows, which are added one by one and removed by their own uuid:
never set-manager or del-manager on a shared OVS.
"""

import os
import subprocess

LABEL_UUID = 'org.openstack.nova.instance-uuid'


def _run(*cmd):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(cmd),
                                                   result.returncode,
                                                   result.stderr.strip()))
    return result.stdout.strip()


def containers_of(instance_uuid):
    """Names of the engine's containers labelled with this instance."""
    out = _run('docker', 'ps', '--all', '--filter',
               'label=%s=%s' % (LABEL_UUID, instance_uuid),
               '--format', '{{.Names}}')
    return out.split()


def ovs_interfaces_of(instance_uuid):
    """OVS interfaces whose external_ids name this instance."""
    out = _run('ovs-vsctl', '--bare', '--columns=name', 'find', 'Interface',
               'external_ids:vm-uuid=%s' % instance_uuid)
    return out.split()


def netns_link_of(instance_uuid):
    """The namespace link's path if it exists, else None."""
    path = '/var/run/netns/nova-%s' % instance_uuid
    return path if os.path.lexists(path) else None


def host_devices_of(port_ids):
    """Host network devices named after these ports (tap/qbr/qvb/qvo)."""
    found = []
    for port_id in port_ids:
        for prefix in ('tap', 'qbr', 'qvb', 'qvo'):
            name = prefix + port_id[:11]
            if os.path.exists('/sys/class/net/%s' % name):
                found.append(name)
    return found


def leftovers(instance_uuid, port_ids=()):
    """Everything of this server still on the host, by kind."""
    found = {
        'containers': containers_of(instance_uuid),
        'ovs interfaces': ovs_interfaces_of(instance_uuid),
        'namespace link': [p for p in [netns_link_of(instance_uuid)] if p],
        'host devices': host_devices_of(port_ids),
    }
    return {kind: items for kind, items in found.items() if items}


def add_manager(target):
    """Add one OVS Manager row for *target*; returns its uuid."""
    return _run('ovs-vsctl', '--', '--id=@m', 'create', 'Manager',
                'target="%s"' % target, '--',
                'add', 'Open_vSwitch', '.', 'manager_options', '@m')


def manager_exists(manager_uuid):
    return manager_uuid in _run('ovs-vsctl', '--bare', '--columns=_uuid',
                                'list', 'Manager').split()


def manager_connected(manager_uuid):
    return _run('ovs-vsctl', 'get', 'Manager', manager_uuid,
                'is_connected') == 'true'


def remove_manager(manager_uuid):
    """Remove exactly the row add_manager made (OVS drops the row)."""
    _run('ovs-vsctl', 'remove', 'Open_vSwitch', '.', 'manager_options',
         manager_uuid)


def ofports_of(instance_uuid):
    """{OVS interface: ofport} of this instance's interfaces."""
    return {name: _run('ovs-vsctl', 'get', 'Interface', name, 'ofport')
            for name in ovs_interfaces_of(instance_uuid)}


def namespace_ifindex(instance_uuid, device='eth0'):
    """ifindex of *device* inside the server's namespace (via its link)."""
    return _run('ip', 'netns', 'exec', 'nova-%s' % instance_uuid,
                'cat', '/sys/class/net/%s/ifindex' % device)


def container_starts(instance_uuid):
    """{container id: the engine's StartedAt} of the server's containers."""
    found = {}
    for name in containers_of(instance_uuid):
        cid, started = _run('docker', 'inspect', '-f',
                            '{{.Id}} {{.State.StartedAt}}', name).split()
        found[cid] = started
    return found


def wiring_of(instance_uuid):
    """What a restart of nova-compute must leave exactly as it was."""
    return {'ofports': ofports_of(instance_uuid),
            'eth0 ifindex': namespace_ifindex(instance_uuid),
            'containers': container_starts(instance_uuid)}


def _run_service_command(cmd):
    """Run an operator's service command; its output, or RuntimeError."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    if result.returncode != 0:
        raise RuntimeError('%s failed (%d):\n%s%s' % (
            ' '.join(cmd), result.returncode, result.stdout[-2000:],
            result.stderr[-2000:]))
    return result.stdout


def node_compute(command, action, host):
    """Run [nova_docker] node_compute_command: stop or start one host's."""
    return _run_service_command(command.split() + [action, host])


def restart_compute(command, kill=False):
    """Run [nova_docker] compute_restart_command (with --kill to crash)."""
    return _run_service_command(command.split() +
                                (['--kill'] if kill else []))
