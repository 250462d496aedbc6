"""Create what the single-node cloud needs through its own APIs.

Run by tools/cloud.sh with the cloud's virtualenv. One process does every
call (the openstack CLI would spend seconds starting up for each of them).
Every step finds before it creates, so a second run changes nothing.

  provision.py identity   service project and users, roles, endpoints,
                          Heat's stack domain, the demo project and user
  provision.py resources  flavor, image, aggregates, the demo's and
                          tempest's networks, the external network and the
                          router between them
  provision.py delete-servers   every server of the compute host, waited for
  provision.py status     compute services and network agents, with state

Settings come from the environment (NDC_*), written by tools/cloud.sh.
"""

import json
import os
import sys
import time

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import identity as ks_identity
from keystoneauth1 import session as ks_session
import openstack

ENV = os.environ
SERVICES = {
    # name: (type, port, path after host:port)
    'keystone': ('identity', 5000, '/v3'),
    'glance': ('image', 9292, ''),
    'placement': ('placement', 8778, ''),
    'nova': ('compute', 8774, '/v2.1'),
    'neutron': ('network', 9696, ''),
    'heat': ('orchestration', 8004, '/v1/%(tenant_id)s'),
}
SERVICE_USERS = ('glance', 'placement', 'nova', 'neutron', 'heat')


def say(msg):
    print('[provision] %s' % msg, flush=True)


def admin():
    return openstack.connect(
        auth_url=ENV['NDC_AUTH_URL'], username='admin',
        password=ENV['NDC_PASSWORD'], project_name='admin',
        user_domain_id='default', project_domain_id='default',
        region_name='RegionOne', identity_interface='public')


def find_or_create(finder, creator, name, **attrs):
    found = finder(name, ignore_missing=True)
    if found is not None:
        return found
    say('created %s' % name)
    return creator(name=name, **attrs)


def ensure_role_grant(conn, role, user, project=None, domain=None):
    if project is not None:
        if not conn.identity.validate_user_has_project_role(
                project, user, role):
            conn.identity.assign_project_role_to_user(project, user, role)
    else:
        if not conn.identity.validate_user_has_domain_role(
                domain, user, role):
            conn.identity.assign_domain_role_to_user(domain, user, role)


def ensure_user(conn, name, password, domain_id, project=None):
    user = conn.identity.find_user(name, domain_id=domain_id,
                                   ignore_missing=True)
    if user is None:
        user = conn.identity.create_user(
            name=name, password=password, domain_id=domain_id,
            default_project_id=project.id if project else None)
        say('created user %s' % name)
    elif not password_works(user, password):
        # Keystone revokes every token of a user whose password is set,
        # even to the same value: the running services would lose theirs.
        conn.identity.update_user(user, password=password)
        say('reset the password of user %s' % name)
    return user


def password_works(user, password):
    auth = ks_identity.v3.Password(
        auth_url=ENV['NDC_AUTH_URL'], user_id=user.id, password=password)
    try:
        ks_session.Session(auth=auth).get_token()
    except ks_exceptions.Unauthorized:
        return False
    return True


def ensure_endpoints(conn, name, stype, port, path):
    service = conn.identity.find_service(name, ignore_missing=True)
    if service is None:
        service = conn.identity.create_service(name=name, type=stype)
        say('created service %s' % name)
    url = 'http://%s:%d%s' % (ENV['NDC_HOST_IP'], port, path)
    have = {e.interface: e for e in
            conn.identity.endpoints(service_id=service.id)}
    for interface in ('public', 'internal', 'admin'):
        if interface in have:
            if have[interface].url != url:
                conn.identity.update_endpoint(have[interface], url=url)
            continue
        conn.identity.create_endpoint(service_id=service.id, url=url,
                                      interface=interface,
                                      region_id='RegionOne')


def identity():
    conn = admin()
    ident = conn.identity
    roles = {r: find_or_create(ident.find_role, ident.create_role, r)
             for r in ('admin', 'member', 'reader', 'service',
                       'heat_stack_user', 'heat_stack_owner')}
    service = find_or_create(ident.find_project, ident.create_project,
                             'service', domain_id='default')
    for name in SERVICE_USERS:
        user = ensure_user(conn, name, ENV['NDC_PASSWORD'], 'default')
        # Nova sends service tokens: the receiving services check the role.
        for role in ('admin', 'service'):
            ensure_role_grant(conn, roles[role], user, project=service)
    for name, (stype, port, path) in SERVICES.items():
        ensure_endpoints(conn, name, stype, port, path)
    heat_domain = ident.find_domain('heat', ignore_missing=True)
    if heat_domain is None:
        heat_domain = ident.create_domain(
            name='heat', description='Owns the users Heat creates for stacks')
        say('created domain heat')
    domain_admin = ensure_user(conn, 'heat_domain_admin',
                               ENV['NDC_PASSWORD'], heat_domain.id)
    ensure_role_grant(conn, roles['admin'], domain_admin, domain=heat_domain)
    demo = find_or_create(ident.find_project, ident.create_project, 'demo',
                          domain_id='default')
    demo_user = ensure_user(conn, 'demo', ENV['NDC_PASSWORD'], 'default',
                            project=demo)
    for role in ('member', 'heat_stack_owner'):
        ensure_role_grant(conn, roles[role], demo_user, project=demo)
    with open(ENV['NDC_HEAT_DOMAIN_FILE'], 'w') as out:
        out.write(heat_domain.id + '\n')


def wait_for(what, check, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = check()
        except ks_exceptions.ConnectionError as e:
            # An API worker that dropped one request (a busy machine) is
            # not the end of the wait: its server starts another.
            say('%s: %s; asking again' % (what, e))
            found = None
        if found:
            return found
        time.sleep(2)
    sys.exit('[provision] ERROR: %s did not happen in %d s' % (what, timeout))


def ensure_image(conn):
    image = conn.image.find_image(ENV['NDC_IMAGE_NAME'], ignore_missing=True)
    if image is not None and image.status == 'active':
        return image
    if image is not None:
        conn.image.delete_image(image)
    with open(ENV['NDC_IMAGE_FILE'], 'rb') as data:
        image = conn.image.create_image(
            name=ENV['NDC_IMAGE_NAME'], container_format='docker',
            disk_format='raw', visibility='public', data=data,
            validate_checksum=False, use_import=False)
    say('uploaded image %s (%s)' % (ENV['NDC_IMAGE_NAME'], image.id))
    return image


def ensure_network(conn, project, name, cidr, shared=False):
    """A VXLAN network with a DHCP subnet; its gateway (.1) is the router."""
    net = conn.network.find_network(name, project_id=project.id)
    if net is None:
        net = conn.network.create_network(name=name, project_id=project.id,
                                          is_shared=shared)
        say('created network %s' % name)
    subnet = conn.network.find_subnet(name + '-subnet', network_id=net.id)
    if subnet is None:
        # DHCP on: the DHCP agent hands out the port's fixed address, the
        # one the driver configures from Nova's network_info, and its
        # dnsmasq is the servers' name server (set below).
        subnet = conn.network.create_subnet(
            name=name + '-subnet', network_id=net.id, project_id=project.id,
            ip_version=4, cidr=cidr, enable_dhcp=True)
        say('created subnet %s-subnet %s' % (name, cidr))
    return net, subnet


def ensure_external_network(conn):
    """"public": flat, on the host's external bridge; the host is .1."""
    admin_project = conn.identity.find_project('admin')
    net = conn.network.find_network('public')
    if net is None:
        net = conn.network.create_network(
            name='public', project_id=admin_project.id,
            is_router_external=True,
            provider_network_type='flat',
            provider_physical_network=ENV['NDC_EXT_PHYSNET'])
        say('created external network public')
    subnet = conn.network.find_subnet('public-subnet', network_id=net.id)
    if subnet is None:
        prefix = ENV['NDC_EXT_CIDR'].rsplit('.', 1)[0]
        subnet = conn.network.create_subnet(
            name='public-subnet', network_id=net.id,
            project_id=admin_project.id, ip_version=4,
            cidr=ENV['NDC_EXT_CIDR'], gateway_ip=prefix + '.1',
            enable_dhcp=False,
            # .2 is the router's; floating IPs from the rest.
            allocation_pools=[{'start': prefix + '.10',
                               'end': prefix + '.250'}])
        say('created subnet public-subnet %s' % ENV['NDC_EXT_CIDR'])
    return net, subnet


def ensure_router(conn, ext_net, ext_subnet, subnets):
    router = conn.network.find_router('ndc-router')
    if router is None:
        router = conn.network.create_router(
            name='ndc-router', external_gateway_info={
                'network_id': ext_net.id, 'enable_snat': True,
                'external_fixed_ips': [{'subnet_id': ext_subnet.id,
                                        'ip_address': ENV['NDC_ROUTER_GW']}]})
        say('created router ndc-router (gateway %s)' % ENV['NDC_ROUTER_GW'])
    attached = {ip['subnet_id']
                for port in conn.network.ports(device_id=router.id)
                for ip in port.fixed_ips}
    for subnet in subnets:
        if subnet.id not in attached:
            conn.network.add_interface_to_router(router, subnet_id=subnet.id)
            say('attached %s to ndc-router' % subnet.name)
    return router


def use_dhcp_dns(conn, subnet):
    """The subnet's name server: its DHCP port (dnsmasq answers there)."""
    def dhcp_address():
        for port in conn.network.ports(network_id=subnet.network_id,
                                       device_owner='network:dhcp'):
            for ip in port.fixed_ips:
                if ip['subnet_id'] == subnet.id:
                    return ip['ip_address']
        return None
    address = wait_for('the DHCP port of %s' % subnet.name, dhcp_address)
    if subnet.dns_nameservers != [address]:
        conn.network.update_subnet(subnet, dns_nameservers=[address])
        say('%s: name server %s (its DHCP port)' % (subnet.name, address))


def hosts():
    return ENV.get('NDC_COMPUTE_HOSTS', ENV['NDC_COMPUTE_HOST']).split(',')


def ensure_aggregate(conn, name, zone, members):
    agg = conn.compute.find_aggregate(name, ignore_missing=True)
    if agg is None:
        agg = conn.compute.create_aggregate(name=name, availability_zone=zone)
        say('created aggregate %s (zone %s)' % (name, zone))
    for each in members:
        if each not in (agg.hosts or []):
            conn.compute.add_host_to_aggregate(agg, each)


def resources():
    conn = admin()
    for each in hosts():
        wait_for('nova-compute %s up' % each, lambda: [
            s for s in conn.compute.services(binary='nova-compute',
                                             host=each)
            if s.state == 'up'])
    flavor = conn.compute.find_flavor('docker.small', ignore_missing=True)
    if flavor is None:
        conn.compute.create_flavor(name='docker.small', vcpus=1, ram=256,
                                   disk=1, is_public=True)
        say('created flavor docker.small')
    # The controller's compute host is the zone the demo and the
    # single-host scenarios use; the other nodes have a zone of their own
    # (ZONE-nodes), where the multi-node scenarios put servers explicitly.
    first, others = hosts()[0], hosts()[1:]
    ensure_aggregate(conn, ENV['NDC_AGGREGATE'], ENV['NDC_ZONE'], [first])
    if others:
        ensure_aggregate(conn, ENV['NDC_AGGREGATE'] + '-nodes',
                         ENV['NDC_ZONE'] + '-nodes', others)
    demo = conn.identity.find_project('demo')
    image = ensure_image(conn)
    net, subnet = ensure_network(conn, demo, 'private', ENV['NDC_CIDR'])
    # tempest's: shared, owned by admin, never the demo's network.
    tnet, tsubnet = ensure_network(
        conn, conn.identity.find_project('admin'), 'tempest',
        ENV['NDC_TEMPEST_CIDR'], shared=True)
    ext_net, ext_subnet = ensure_external_network(conn)
    router = ensure_router(conn, ext_net, ext_subnet, (subnet, tsubnet))
    for each in hosts():
        wait_for('an alive Open vSwitch agent on %s' % each, lambda: [
            a for a in conn.network.agents(
                host=each, binary='neutron-openvswitch-agent')
            if a.is_alive])
    for binary in ('neutron-l3-agent', 'neutron-dhcp-agent',
                   'neutron-metadata-agent'):
        wait_for('an alive %s' % binary, lambda: [
            a for a in conn.network.agents(binary=binary) if a.is_alive])
    for each in (subnet, tsubnet):
        use_dhcp_dns(conn, each)
    json.dump({'network_id': net.id, 'subnet_id': subnet.id,
               'tempest_network_id': tnet.id,
               'public_network_id': ext_net.id, 'router_id': router.id,
               'image_id': image.id},
              open(ENV['NDC_RESOURCES_FILE'], 'w'), indent=1)


def delete_servers():
    """Delete every server of the cloud's compute hosts, and wait."""
    conn = admin()
    servers = [s for s in conn.compute.servers(all_projects=True)
               if s.compute_host in hosts() + [None]]
    for server in servers:
        conn.compute.delete_server(server, ignore_missing=True)
    for server in servers:
        conn.compute.wait_for_delete(server, wait=120)
    if servers:
        say('deleted %d servers' % len(servers))


def status():
    conn = admin()
    bad = 0
    for svc in conn.compute.services():
        print('%-28s %-18s %s' % (svc.binary, svc.host, svc.state))
        bad += svc.state != 'up'
    for agent in conn.network.agents():
        alive = 'up' if agent.is_alive else 'down'
        print('%-28s %-18s %s' % (agent.binary, agent.host, alive))
        bad += not agent.is_alive
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit({'identity': identity, 'resources': resources,
              'delete-servers': delete_servers,
              'status': status}[sys.argv[1]]())
