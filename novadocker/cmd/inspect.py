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

"""nova-docker-inspect: how one server of this host is wired.

Usage: ``nova-docker-inspect [--config-file nova.conf] <instance uuid>``,
as root. Prints the server's containers (id, state, pid), its namespace
link, every interface inside the sandbox's network namespace (MAC, MTU,
addresses, the host end of its veth) and every OVS interface of the server
(bridge, port, ofport, external_ids). TX checksum offload is shown for
both ends of every veth: nova-docker turns it off, since the userspace
(netdev) datapath does not complete partial checksums. Exit status 1
when the host has no container of that server or the wiring cannot be
read.
"""

import json
import os
import socket
import subprocess
import sys

from oslo_config import cfg
from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns

import novadocker.conf
from novadocker.privsep import netdev
from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import exception
from novadocker.virt.docker import netns
from novadocker.virt.docker import spec

CONF = novadocker.conf.CONF

_cli_opts = [
    cfg.StrOpt('instance_uuid', positional=True,
               help='UUID of the Nova server to inspect.'),
]


class InspectError(Exception):
    """The wiring cannot be shown; the message says why."""


def find_containers(instance_uuid):
    """[{role, name, id, status, pid}] of the server, sandbox first."""
    label = '%s=%s' % (spec.LABEL_UUID, instance_uuid)
    with docker_client.docker_client('list containers of %s'
                                     % instance_uuid) as client:
        # A container removed while listed is left out, not an error.
        found = client.containers.list(all=True, filters={'label': label},
                                       ignore_removed=True)
        result = [{'role': c.labels.get(spec.LABEL_ROLE, '?'),
                   'name': c.name, 'id': c.id[:12], 'status': c.status,
                   'pid': c.attrs.get('State', {}).get('Pid') or 0}
                  for c in found]
    order = {spec.ROLE_SANDBOX: 0, spec.ROLE_WORKLOAD: 1}
    return sorted(result, key=lambda c: (order.get(c['role'], 2), c['name']))


def namespace_link(instance_uuid):
    """(path, target or None)."""
    path = netns.link_path(instance_uuid)
    try:
        return path, os.readlink(path)
    except OSError:
        return path, None


def _addresses(ipr, index):
    return ['%s/%d' % (a.get_attr('IFA_ADDRESS'), a['prefixlen'])
            for a in ipr.get_addr(index=index)]


def namespace_interfaces(pid):
    """Interfaces inside the namespace of *pid*, with their veth peer index."""
    try:
        ipr = IPRoute(netns='/proc/%d/ns/net' % pid, flags=0)
    except OSError as e:
        msg = ('cannot enter the network namespace of pid %d: %s (run as '
               'root)' % (pid, e))
        raise InspectError(msg) from e
    with ipr:
        return [{'name': link.get_attr('IFLA_IFNAME'),
                 'mac': link.get_attr('IFLA_ADDRESS'),
                 'mtu': link.get_attr('IFLA_MTU'),
                 'state': link.get_attr('IFLA_OPERSTATE'),
                 'addresses': _addresses(ipr, link['index']),
                 'peer_index': link.get_attr('IFLA_LINK')}
                for link in ipr.get_links()]


def tx_checksumming(pid, dev):
    """TX checksum offload of *dev*: in the netns of *pid*, or the host's.

    None when it cannot be read.
    """
    home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        if pid:
            target = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY)
            try:
                pyroute2_netns.setns(target, flags=0)
            finally:
                os.close(target)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                return netdev.tx_checksumming(sock, dev)
        finally:
            if pid:
                pyroute2_netns.setns(home, flags=0)
    except OSError:
        return None
    finally:
        os.close(home)


def _offload(state):
    return {True: 'on', False: 'off', None: '?'}[state]


def host_device(index):
    """{name, mtu, master} of the host device with *index*, or None."""
    with IPRoute() as ipr:
        links = ipr.get_links(index) if index else []
        if not links:
            return None
        link = links[0]
        master = link.get_attr('IFLA_MASTER')
        master_name = None
        if master:
            master_name = ipr.get_links(master)[0].get_attr('IFLA_IFNAME')
        return {'name': link.get_attr('IFLA_IFNAME'),
                'mtu': link.get_attr('IFLA_MTU'), 'master': master_name}


def _ovs_vsctl(*args):
    try:
        out = subprocess.run(['ovs-vsctl', '--timeout=10'] + list(args),
                             capture_output=True, text=True, check=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        msg = 'ovs-vsctl %s failed: %s' % (
            ' '.join(args), getattr(e, 'stderr', None) or e)
        raise InspectError(msg) from e
    return out.stdout


def ovs_interfaces(instance_uuid):
    """OVS interfaces whose external_ids name the server."""
    table = json.loads(_ovs_vsctl(
        '--format=json', '--columns=name,ofport,mtu,external_ids', 'find',
        'Interface', 'external_ids:vm-uuid=%s' % instance_uuid))
    rows = []
    for name, ofport, mtu, ids in table['data']:
        rows.append({'name': name, 'ofport': ofport, 'mtu': mtu,
                     'external_ids': dict(ids[1]),
                     'bridge': _ovs_vsctl('iface-to-br', name).strip()})
    return rows


def gather(instance_uuid):
    """Everything the command prints, as a dict."""
    if not netns.is_instance_uuid(instance_uuid):
        msg = ('%r is not an instance uuid (36 lowercase hexadecimal '
               'digits and dashes, as "openstack server show" prints it)'
               % instance_uuid)
        raise InspectError(msg)
    found = find_containers(instance_uuid)
    if not found:
        msg = ('no container of instance %s on this host (looked for label '
               '%s=%s); check the uuid and that the server runs on this host'
               % (instance_uuid, spec.LABEL_UUID, instance_uuid))
        raise InspectError(msg)
    report = {'uuid': instance_uuid, 'containers': found,
              'link': namespace_link(instance_uuid), 'interfaces': [],
              'ovs': ovs_interfaces(instance_uuid)}
    sandbox = [c for c in found if c['role'] == spec.ROLE_SANDBOX]
    if sandbox and sandbox[0]['pid']:
        report['pid'] = sandbox[0]['pid']
        for iface in namespace_interfaces(report['pid']):
            if iface['name'] != 'lo':
                iface['host'] = host_device(iface['peer_index'])
                iface['tx_csum'] = tx_checksumming(report['pid'],
                                                   iface['name'])
                if iface['host']:
                    iface['host']['tx_csum'] = tx_checksumming(
                        None, iface['host']['name'])
            report['interfaces'].append(iface)
    return report


def render(report):
    """The report as lines of text."""
    lines = ['Instance %s' % report['uuid'], 'Containers:']
    for c in report['containers']:
        lines.append('  %-9s %s  id %s  %s  pid %s' % (
            c['role'], c['name'], c['id'], c['status'], c['pid'] or '-'))
    path, target = report['link']
    pid = report.get('pid')
    if target is None:
        state = 'missing'
    elif pid and target == '/proc/%d/ns/net' % pid:
        state = 'current'
    else:
        state = 'STALE: the sandbox pid is %s' % (pid or 'not running')
    lines.append('Namespace link: %s -> %s (%s)' % (path, target or '-',
                                                    state))
    if pid is None:
        lines.append('Interfaces: none, the sandbox is not running')
    else:
        lines.append('Interfaces in the namespace (ip netns exec %s ...):'
                     % os.path.basename(path))
        for iface in report['interfaces']:
            host = iface.get('host')
            csum = ''
            if 'tx_csum' in iface:
                csum = '  tx-checksumming %s' % _offload(iface['tx_csum'])
            lines.append('  %-6s mac %s  mtu %s  %s  %s%s%s' % (
                iface['name'], iface['mac'], iface['mtu'], iface['state'],
                ' '.join(iface['addresses']) or 'no address', csum,
                '  host end %s (mtu %s%s, tx-checksumming %s)' % (
                    host['name'], host['mtu'],
                    ', in Linux bridge %s' % host['master']
                    if host['master'] else '',
                    _offload(host.get('tx_csum'))) if host else ''))
    lines.append('OVS interfaces of the server:')
    for row in report['ovs']:
        ids = ' '.join('%s=%s' % kv for kv in sorted(
            row['external_ids'].items()))
        lines.append('  bridge %s  port %s  ofport %s  mtu %s  %s' % (
            row['bridge'], row['name'], row['ofport'], row['mtu'], ids))
    if not report['ovs']:
        lines.append('  none')
    return lines


def main(argv=None):
    """Console script entry point: print the wiring of one server."""
    CONF.register_cli_opts(_cli_opts)
    CONF(sys.argv[1:] if argv is None else argv, project='nova',
         prog='nova-docker-inspect',
         usage='nova-docker-inspect [--config-file FILE] INSTANCE_UUID')
    uuid = CONF.instance_uuid
    if not uuid:
        print('nova-docker-inspect: give the UUID of a server',
              file=sys.stderr)
        return 1
    try:
        report = gather(uuid)
    except (InspectError, exception.DockerDriverError) as e:
        print('nova-docker-inspect: %s' % e, file=sys.stderr)
        return 1
    print('\n'.join(render(report)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
