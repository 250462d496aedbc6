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

"""In-memory Nova, Neutron and Glance, standing in at the client boundary.

Heat's client plugins (``heat.engine.clients.os.*``) stay real; only the
python-*client objects they create are replaced, so Heat's own
``OS::Nova::Server``, ``OS::Neutron::Port`` and ``OS::Nova::ServerGroup``
code runs unchanged. The fakes keep enough state to answer as the real
services would (servers go ACTIVE, deleted things are gone, ports keep
their fixed IPs) and record what was asked of them for the tests.
"""

import ipaddress
import itertools
import time
import uuid

from glanceclient import exc as glance_exc
from neutronclient.common import exceptions as neutron_exc
from novaclient import exceptions as nova_exc

NETWORK_NAME = 'odl-net'
SUBNET_NAME = 'odl-subnet'
SUBNET_CIDR = '10.0.0.0/24'
BARE_NETWORK_NAME = 'no-subnet-net'   # a network without a subnet
PUBLIC_NETWORK_NAME = 'public'        # external: floating IPs
FLAVOR_NAME = 'm1.odl'
IMAGES = ('odl-image', 'odl-image-v2', 'busybox', 'nova-docker-haproxy')
QCOW_IMAGE = 'odl-qcow2'              # container_format bare


class _Obj(object):
    def __init__(self, **attrs):
        self.__dict__.update(attrs)

    def to_dict(self):
        return dict(self.__dict__)


class FakeServer(object):
    """A Nova server; goes ACTIVE on the first GET after boot or rebuild."""

    def __init__(self, manager, **attrs):
        self.manager = manager
        self.__dict__.update(attrs)

    def rebuild(self, image, **kwargs):
        self.image = {'id': image}
        self.status = 'REBUILD'
        self.manager.rebuilds.append((time.monotonic(), self.id, image))

    def interface_list(self):
        ports = self.manager.nova.neutron.ports
        return [_Obj(port_id=nic['port-id'],
                     net_id=ports[nic['port-id']]['network_id'],
                     fixed_ips=ports[nic['port-id']]['fixed_ips'])
                for nic in self.nics if nic['port-id'] in ports]

    def to_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != 'manager'}


class FakeServers(object):
    """Servers placed on ``nova.hosts`` as Nova's scheduler would.

    A server in a server group with policy anti-affinity goes to a host
    no other server of the group is on, or to ERROR (No valid host) when
    there is none; soft-anti-affinity picks the least used host.
    """

    def __init__(self, nova):
        self.nova = nova
        self.servers = {}
        self.created = []
        self.deleted = []
        self.rebuilds = []

    def _place(self, hints):
        hosts = self.nova.hosts
        group_id = (hints or {}).get('group')
        if not group_id:
            return hosts[0]
        policy = self.nova.server_groups.get(group_id).policies[0]
        used = [s.host for s in self.servers.values()
                if s.scheduler_hints.get('group') == group_id]
        if policy == 'anti-affinity':
            free = [h for h in hosts if h not in used]
            return free[0] if free else None
        return min(hosts, key=lambda h: (used.count(h), hosts.index(h)))

    def create(self, name, image, flavor, meta=None, nics=None,
               availability_zone=None, scheduler_hints=None, **kwargs):
        for key in meta or {}:
            if not isinstance(meta[key], str):
                raise nova_exc.BadRequest(400, 'metadata values: strings')
        host = self._place(scheduler_hints)
        server = FakeServer(
            self, id=str(uuid.uuid4()), name=name,
            status='BUILD' if host else 'ERROR', host=host,
            hostId=host and uuid.uuid5(uuid.NAMESPACE_DNS, host).hex,
            fault={} if host else {'message': 'No valid host was found.',
                                   'code': 500},
            image={'id': image}, flavor={'id': flavor},
            metadata=dict(meta or {}), nics=list(nics or []),
            availability_zone=availability_zone,
            scheduler_hints=dict(scheduler_hints or {}),
            addresses={}, networks={}, accessIPv4='', accessIPv6='',
            **{'OS-EXT-STS:task_state': None,
               'OS-EXT-SRV-ATTR:host': host,
               'OS-EXT-SRV-ATTR:instance_name': name})
        self.servers[server.id] = server
        self.created.append(server.id)
        if host is None:
            return server
        for nic in server.nics:
            port_id = nic['port-id']
            if self.nova.neutron.ports[port_id]['device_id']:
                # Nova refuses a port another server holds.
                del self.servers[server.id]
                raise nova_exc.Conflict(409, 'Port %s is still in use.'
                                        % port_id)
            self.nova.neutron.bind_port(port_id, server.id)
        return server

    def break_server(self, server_id):
        """What a failed host or engine leaves: the server in ERROR."""
        self.servers[server_id].status = 'ERROR'
        self.servers[server_id].fault = {'message': 'container gone',
                                         'code': 500}

    def vanish(self, server_id):
        """Delete a server behind Heat's back (its port stays, unbound)."""
        self.delete(server_id)

    def get(self, server):
        server_id = getattr(server, 'id', server)
        if server_id not in self.servers:
            raise nova_exc.NotFound(404, 'server %s' % server_id)
        found = self.servers[server_id]
        if found.status in ('BUILD', 'REBUILD'):
            # Report the transient state once, as Nova would for a while.
            seen = FakeServer(self, **found.to_dict())
            found.status = 'ACTIVE'
            return seen
        return found

    def delete(self, server):
        server_id = getattr(server, 'id', server)
        if server_id not in self.servers:
            raise nova_exc.NotFound(404, 'server %s' % server_id)
        del self.servers[server_id]
        self.deleted.append(server_id)
        self.nova.neutron.unbind_device(server_id)

    def list(self, **kwargs):
        return list(self.servers.values())

    def interface_list(self, server):
        return []

    def set_meta(self, server, metadata):
        self.get(server).metadata.update(metadata)

    def delete_meta(self, server, keys):
        for key in keys:
            self.get(server).metadata.pop(key, None)


class FakeServerGroups(object):

    def __init__(self):
        self.groups = {}

    def create(self, name, policies=None, policy=None, rules=None):
        group = _Obj(id=str(uuid.uuid4()), name=name,
                     policies=list(policies or [policy]))
        self.groups[group.id] = group
        return group

    def get(self, group_id):
        if group_id not in self.groups:
            raise nova_exc.NotFound(404, 'server group %s' % group_id)
        return self.groups[group_id]

    def delete(self, group_id):
        if group_id not in self.groups:
            raise nova_exc.NotFound(404, 'server group %s' % group_id)
        del self.groups[group_id]


class FakeServices(object):
    """os-services: one nova-compute a host, in the docker zone."""

    def __init__(self, nova):
        self.nova = nova
        self.forbidden = False
        self.disabled = set()

    def list(self, host=None, binary=None):
        if self.forbidden:
            raise nova_exc.Forbidden(403, 'Policy does not allow '
                                          'os_compute_api:os-services:list')
        return [_Obj(host=h, binary='nova-compute', zone='docker',
                     status='disabled' if h in self.disabled else 'enabled',
                     state='up')
                for h in self.nova.hosts
                if binary in (None, 'nova-compute')]


class FakeFlavors(object):
    FLAVOR = _Obj(id='f1', name=FLAVOR_NAME, ram=2048, vcpus=2, disk=10,
                  is_public=True)

    def get(self, flavor):
        if flavor != self.FLAVOR.id:
            raise nova_exc.NotFound(404, 'flavor %s' % flavor)
        return self.FLAVOR

    def find(self, name):
        if name != FLAVOR_NAME:
            raise nova_exc.NotFound(404, 'flavor %s' % name)
        return self.FLAVOR


class FakeNova(object):
    """The novaclient ``Client`` that Heat's nova plugin would create."""

    def __init__(self, neutron):
        self.neutron = neutron
        self.hosts = ['compute-1', 'compute-2', 'compute-3']
        self.servers = FakeServers(self)
        self.services = FakeServices(self)
        self.server_groups = FakeServerGroups()
        self.flavors = FakeFlavors()
        self.versions = _Obj(get_current=lambda: _Obj(version='2.79'))
        self.api_version = None
        self.limits = _Obj(get=lambda: _Obj(absolute=[
            _Obj(name='maxServerMeta', value=128),
            _Obj(name='maxPersonality', value=5),
            _Obj(name='maxPersonalitySize', value=10240)]))


class FakeNeutron(object):
    """The neutronclient ``Client`` that Heat's neutron plugin would create.

    Addresses come from SUBNET_CIDR, starting at .11 unless a port asks for
    a fixed one; a fixed address already in use is a Conflict, as in
    Neutron.
    """

    def __init__(self):
        self.network = {'id': str(uuid.uuid4()), 'name': NETWORK_NAME,
                        'status': 'ACTIVE', 'subnets': [], 'mtu': 1450,
                        'admin_state_up': True}
        self.subnet = {'id': str(uuid.uuid4()), 'name': SUBNET_NAME,
                       'network_id': self.network['id'],
                       'cidr': SUBNET_CIDR, 'ip_version': 4}
        self.network['subnets'] = [self.subnet['id']]
        self.bare_network = {'id': str(uuid.uuid4()),
                             'name': BARE_NETWORK_NAME, 'status': 'ACTIVE',
                             'subnets': [], 'mtu': 1450,
                             'admin_state_up': True}
        self.public = {'id': str(uuid.uuid4()), 'name': PUBLIC_NETWORK_NAME,
                       'status': 'ACTIVE', 'subnets': [], 'mtu': 1500,
                       'admin_state_up': True, 'router:external': True}
        self.floatingips = {}
        self.ports = {}
        self.created = []
        self.deleted = []
        self._next_ip = itertools.count(11)

    def find_resource(self, resource, name_or_id, project_id=None,
                      cmd_resource=None, parent_id=None, fields=None):
        networks = (self.network, self.bare_network, self.public)
        for item in networks + (self.subnet,):
            if (resource in ('network', 'subnet') and
                    name_or_id in (item['id'], item['name']) and
                    (resource == 'network') == (item in networks)):
                return {'id': item['id']}
        if resource == 'port' and name_or_id in self.ports:
            return {'id': name_or_id}
        if resource == 'security_group':
            return {'id': 'sg-' + name_or_id}
        raise neutron_exc.NotFound(message='%s %s not found'
                                   % (resource, name_or_id))

    def _allocate(self, wanted):
        in_use = {ip['ip_address'] for p in self.ports.values()
                  for ip in p['fixed_ips']}
        if wanted:
            if wanted in in_use:
                raise neutron_exc.IpAddressInUseClient(
                    message='IP address %s already allocated' % wanted)
            if ipaddress.ip_address(wanted) not in ipaddress.ip_network(
                    SUBNET_CIDR):
                raise neutron_exc.BadRequest(
                    message='%s is not in %s' % (wanted, SUBNET_CIDR))
            return wanted
        while True:
            candidate = '10.0.0.%d' % next(self._next_ip)
            if candidate not in in_use:
                return candidate

    def create_port(self, body):
        spec = body['port']
        if spec.get('network_id') != self.network['id']:
            raise neutron_exc.NetworkNotFoundClient(
                message='network %s' % spec.get('network_id'))
        fixed = []
        for request in spec.get('fixed_ips') or [{}]:
            fixed.append({'subnet_id': self.subnet['id'],
                          'ip_address': self._allocate(
                              request.get('ip_address'))})
        port = {'id': str(uuid.uuid4()), 'network_id': self.network['id'],
                'fixed_ips': fixed, 'status': 'DOWN', 'device_id': '',
                'device_owner': '', 'mac_address': 'fa:16:3e:00:00:%02x'
                % len(self.created), 'admin_state_up': True,
                'security_groups': list(spec.get('security_groups') or []),
                'name': spec.get('name', '')}
        self.ports[port['id']] = port
        self.created.append(port['id'])
        return {'port': dict(port)}

    def show_port(self, port_id, **kwargs):
        if port_id not in self.ports:
            raise neutron_exc.PortNotFoundClient(message='port %s' % port_id)
        return {'port': dict(self.ports[port_id])}

    def update_port(self, port_id, body):
        self.show_port(port_id)
        self.ports[port_id].update(body['port'])
        return {'port': dict(self.ports[port_id])}

    def delete_port(self, port_id):
        self.show_port(port_id)
        del self.ports[port_id]
        self.deleted.append(port_id)

    def list_ports(self, **filters):
        return {'ports': [dict(p) for p in self.ports.values()
                          if all(p.get(k) == v for k, v in filters.items())]}

    def bind_port(self, port_id, device_id):
        self.ports[port_id].update(device_id=device_id, status='ACTIVE',
                                   device_owner='compute:docker')

    def unbind_device(self, device_id):
        for port in self.ports.values():
            if port['device_id'] == device_id:
                port.update(device_id='', status='DOWN', device_owner='')

    def show_network(self, network_id, **kwargs):
        for network in (self.network, self.bare_network, self.public):
            if network['id'] == network_id:
                return {'network': dict(network)}
        raise neutron_exc.NetworkNotFoundClient(
            message='network %s' % network_id)

    def create_floatingip(self, body):
        spec = body['floatingip']
        if spec['floating_network_id'] != self.public['id']:
            raise neutron_exc.BadRequest(message='not an external network')
        port = self.ports[spec['port_id']]
        fip = {'id': str(uuid.uuid4()), 'status': 'ACTIVE',
               'floating_network_id': self.public['id'],
               'floating_ip_address': '172.24.4.%d'
               % (100 + len(self.floatingips)),
               'port_id': spec['port_id'],
               'fixed_ip_address': port['fixed_ips'][0]['ip_address']}
        self.floatingips[fip['id']] = fip
        return {'floatingip': dict(fip)}

    def show_floatingip(self, fip_id, **kwargs):
        if fip_id not in self.floatingips:
            raise neutron_exc.NotFound(message='floating IP %s' % fip_id)
        return {'floatingip': dict(self.floatingips[fip_id])}

    def delete_floatingip(self, fip_id):
        self.show_floatingip(fip_id)
        del self.floatingips[fip_id]

    def show_subnet(self, subnet_id, **kwargs):
        return {'subnet': dict(self.subnet)}

    def list_networks(self, **filters):
        return {'networks': [dict(n) for n in (self.network,
                                               self.bare_network,
                                               self.public)]}

    def list_floatingips(self, **filters):
        return {'floatingips': []}

    def list_extensions(self):
        return {'extensions': []}


class FakeImages(object):

    def __init__(self):
        self.images = {name: _Obj(id=str(uuid.uuid4()), name=name,
                                  status='active', container_format='docker',
                                  min_ram=0, min_disk=0, size=1024)
                       for name in IMAGES}
        self.images[QCOW_IMAGE] = _Obj(
            id=str(uuid.uuid4()), name=QCOW_IMAGE, status='active',
            container_format='bare', disk_format='qcow2', min_ram=0,
            min_disk=0, size=1024)

    def get(self, image):
        for found in self.images.values():
            if image == found.id:
                return found
        raise glance_exc.HTTPNotFound('image %s' % image)

    def list(self, filters=None, **kwargs):
        name = (filters or {}).get('name')
        return iter([i for i in self.images.values()
                     if name in (None, i.name)])

    def id_of(self, name):
        return self.images[name].id


class FakeGlance(object):
    def __init__(self):
        self.images = FakeImages()


class FakeCloud(object):
    """One fake Nova, Neutron and Glance sharing state."""

    def __init__(self):
        self.neutron = FakeNeutron()
        self.nova = FakeNova(self.neutron)
        self.glance = FakeGlance()

    def install(self, test):
        """Make Heat's client plugins use the fakes for ``test``."""
        from heat.engine.clients.os import glance
        from heat.engine.clients.os import neutron
        from heat.engine.clients.os import nova
        test.patchobject(nova.NovaClientPlugin, '_create',
                         side_effect=lambda *a, **k: self.nova)
        test.patchobject(neutron.NeutronClientPlugin, '_create',
                         return_value=self.neutron)
        test.patchobject(glance.GlanceClientPlugin, '_create',
                         return_value=self.glance)

    def server_metadata(self):
        """Metadata of every live member, keyed by ODL_MEMBER_NAME."""
        return {s.metadata['ODL_MEMBER_NAME']: s.metadata
                for s in self.nova.servers.servers.values()
                if 'ODL_MEMBER_NAME' in s.metadata}

    def members(self):
        """Live member servers, keyed by ODL_MEMBER_NAME."""
        return {s.metadata['ODL_MEMBER_NAME']: s
                for s in self.nova.servers.servers.values()
                if 'ODL_MEMBER_NAME' in s.metadata}

    def vip_servers(self):
        """Live northbound VIP servers."""
        return [s for s in self.nova.servers.servers.values()
                if 'ODL_VIP_MEMBERS' in s.metadata]
