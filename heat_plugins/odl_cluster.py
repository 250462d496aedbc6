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

"""OS::ODL::Cluster: an OpenDaylight cluster of N containers as one resource.

Heat loads this module from ``[DEFAULT] plugin_dirs`` (the directory of the
installed ``heat_plugins`` package) as ``heat.engine.plugins.odl_cluster``.
Its helpers are imported by absolute name (``heat_plugins.*``), which works
because that package is installed; Heat's loader also imports them as
plugin modules, harmlessly, since they define no resource mapping.
"""

import base64

from heat.common import exception
from heat.common.i18n import _
from heat.engine import attributes
from heat.engine import constraints
from heat.engine import properties
from heat.engine import resource
from heat.engine.resources import stack_resource
from heat.engine import support
from oslo_config import cfg
from oslo_log import log as logging

from heat_plugins import odl_conf
from heat_plugins import odl_member_stack
from heat_plugins import odl_readiness

LOG = logging.getLogger(__name__)

# Heat gives resource plugins no start-up hook: register on load.
odl_conf.register_opts(cfg.CONF)

MAX_MEMBERS = 7
DEFAULT_VIP_IMAGE = 'nova-docker-haproxy'
NEUTRON_NB_PATH = '/controller/nb/v2/neutron'


def _port_schema(description, default):
    return properties.Schema(
        properties.Schema.INTEGER, description, default=default,
        constraints=[constraints.Range(1, 65535)], update_allowed=True)


def _host(ip):
    return '[%s]' % ip if ':' in ip else ip


class ClusterChangeRefused(exception.HeatException):
    msg_fmt = _('%(message)s')


class ReadinessPollRefused(exception.HeatException):
    msg_fmt = _('%(message)s')


class ClusterNotReady(exception.HeatException):
    msg_fmt = _('%(message)s')


class OdlCluster(stack_resource.StackResource):
    """An OpenDaylight controller cluster booted as Nova servers.

    Creates, in a nested stack, one Neutron port and one Nova server per
    member (a server group with the chosen policy when there is more than
    one member, and a wait condition handle in signal mode). Each member is
    told its Akka role ``member-<n>``, its own address, the addresses of
    all members and, in signal mode, the handle's URL and token through
    instance metadata, which the nova-docker driver passes to the container
    as environment variables (ODL_MEMBER_NAME, ODL_MEMBER_INDEX,
    ODL_MEMBER_IP, ODL_SEED_IPS, ODL_CLUSTER_SIZE, ODL_AKKA_PORT,
    ODL_AKKA_RPC_PORT, ODL_RESTCONF_PORT, ODL_OVSDB_PORT,
    ODL_OPENFLOW_PORT, ODL_KARAF_FEATURES, ODL_READY_SIGNAL_URL,
    ODL_READY_SIGNAL_TOKEN, ODL_READY_TIMEOUT); the image's entrypoint
    turns them into akka.conf and module-shards.conf. The resource is
    complete when every server is ACTIVE and every member is ready
    (RESTCONF answers, its Akka cluster view shows all members Up): by
    default each member checks itself and signals heat-api; in poll mode
    heat-engine probes the members, only on networks the operator allows.
    A new image rebuilds the members one at a time, waiting for the
    cluster to be whole again after each; the member count cannot be
    changed in place.

    By default a northbound VIP (an HAProxy server, health-checking the
    members' readiness URL) fronts RESTCONF and the Neutron northbound API;
    server_group_policy auto spreads the members with anti-affinity when
    there is a compute host per member, soft-anti-affinity otherwise. Any
    update first replaces the servers that were deleted or are in ERROR
    (what stack check reports), each on its own port, so with its address.
    """

    support_status = support.SupportStatus(version='27.0.0')

    PROPERTIES = (
        IMAGE, FLAVOR, NETWORK, SUBNET, SIZE, AVAILABILITY_ZONE, FIXED_IPS,
        SECURITY_GROUPS, RESTCONF_PORT, OVSDB_PORT, OPENFLOW_PORT,
        AKKA_PORT, AKKA_RPC_PORT, USERNAME, PASSWORD, FEATURES,
        READINESS_TIMEOUT, SERVER_GROUP_POLICY, READINESS, VIP_ENABLED,
        VIP_IMAGE, VIP_FLAVOR, VIP_ADDRESS, VIP_FLOATING_NETWORK,
    ) = (
        'image', 'flavor', 'network', 'subnet', 'size', 'availability_zone',
        'fixed_ips', 'security_groups', 'restconf_port', 'ovsdb_port',
        'openflow_port', 'akka_port', 'akka_rpc_port', 'username',
        'password', 'features', 'readiness_timeout', 'server_group_policy',
        'readiness', 'northbound_vip', 'vip_image', 'vip_flavor',
        'vip_address', 'vip_floating_network',
    )

    READINESS_MODES = (SIGNAL, POLL) = ('signal', 'poll')
    AUTO = 'auto'
    SERVER_GROUP_POLICIES = (AUTO, 'anti-affinity', 'soft-anti-affinity',
                             'affinity', 'soft-affinity', 'none')

    # Changing these only changes how the resource talks to the cluster.
    IN_PLACE = (IMAGE, READINESS_TIMEOUT, USERNAME, PASSWORD)

    ATTRIBUTES = (
        MEMBERS, MEMBER_IPS, OVS_MANAGERS, ODL_OVS_MANAGERS, CONTROLLERS,
        RESTCONF_URLS, LEADER, SERVER_IDS, NORTHBOUND_VIP,
        NORTHBOUND_VIP_FLOATING_IP, NORTHBOUND_URL, DEVSTACK_LOCAL_CONF,
        SPREAD, MEMBER_HOSTS,
    ) = (
        'members', 'member_ips', 'ovs_managers', 'odl_ovs_managers',
        'controllers', 'restconf_urls', 'leader', 'server_ids',
        'northbound_vip', 'northbound_vip_floating_ip', 'northbound_url',
        'devstack_local_conf', 'server_group_policy', 'member_hosts',
    )

    # Every property is update_allowed: Heat would otherwise replace the
    # whole cluster (new addresses, compute nodes still pointing at the old
    # ones; with fixed IPs the replacement cannot even get its ports).
    # handle_update refuses, with the reason, what cannot change in place.
    properties_schema = {
        IMAGE: properties.Schema(
            properties.Schema.STRING,
            _('Glance image (container_format=docker) of an OpenDaylight '
              'distribution whose entrypoint is odl-cluster-entrypoint.sh. '
              'Changing it rebuilds the members one at a time.'),
            required=True, update_allowed=True,
            constraints=[constraints.CustomConstraint('glance.image')]),
        FLAVOR: properties.Schema(
            properties.Schema.STRING, _('Nova flavor of every member.'),
            required=True, update_allowed=True,
            constraints=[constraints.CustomConstraint('nova.flavor')]),
        NETWORK: properties.Schema(
            properties.Schema.STRING,
            _('Neutron network (name or ID) of the members\' ports.'),
            required=True, update_allowed=True,
            constraints=[constraints.CustomConstraint('neutron.network')]),
        SUBNET: properties.Schema(
            properties.Schema.STRING,
            _('Subnet of NETWORK to take the addresses from.'),
            update_allowed=True,
            constraints=[constraints.CustomConstraint('neutron.subnet')]),
        SIZE: properties.Schema(
            properties.Schema.INTEGER,
            _('Number of members: odd, 1 to 7, so that a majority '
              'survives the loss of a minority.'),
            default=3, update_allowed=True,
            constraints=[constraints.Range(1, MAX_MEMBERS)]),
        AVAILABILITY_ZONE: properties.Schema(
            properties.Schema.STRING,
            _('Availability zone of the docker compute hosts.'),
            default='docker', update_allowed=True),
        FIXED_IPS: properties.Schema(
            properties.Schema.LIST,
            _('One fixed IP per member, in member order. Default: '
              'addresses allocated by Neutron.'),
            update_allowed=True,
            schema=properties.Schema(
                properties.Schema.STRING,
                constraints=[constraints.CustomConstraint('ip_addr')])),
        SECURITY_GROUPS: properties.Schema(
            properties.Schema.LIST,
            _('Security groups of the members\' ports (they must allow the '
              'Akka, RESTCONF, OVSDB and OpenFlow ports). Default: the '
              'project\'s default group.'),
            update_allowed=True),
        RESTCONF_PORT: _port_schema(_('RESTCONF (HTTP) port.'), 8181),
        OVSDB_PORT: _port_schema(_('OVSDB manager port.'), 6640),
        OPENFLOW_PORT: _port_schema(_('OpenFlow port.'), 6653),
        AKKA_PORT: _port_schema(_('Akka odl-cluster-data port.'), 2550),
        AKKA_RPC_PORT: _port_schema(_('Akka odl-cluster-rpc port (newer '
                                      'releases).'), 2551),
        USERNAME: properties.Schema(
            properties.Schema.STRING,
            _('RESTCONF user for the readiness probes (poll mode).'),
            default='admin', update_allowed=True),
        PASSWORD: properties.Schema(
            properties.Schema.STRING,
            _('RESTCONF password for the readiness probes (poll mode) and '
              'the northbound VIP\'s health checks (in its server\'s '
              'metadata). Never passed to the members; pass it as a '
              'hidden template parameter.'),
            default='admin', update_allowed=True),
        FEATURES: properties.Schema(
            properties.Schema.LIST,
            _('Extra Karaf features to boot on every member.'),
            default=[], update_allowed=True,
            schema=properties.Schema(
                properties.Schema.STRING,
                constraints=[constraints.AllowedPattern(
                    r'^[A-Za-z0-9][A-Za-z0-9._/:-]*$')])),
        READINESS_TIMEOUT: properties.Schema(
            properties.Schema.INTEGER,
            _('Seconds to wait, once every server is ACTIVE, for every '
              'member to answer RESTCONF and see all members Up.'),
            default=600, update_allowed=True,
            constraints=[constraints.Range(1, 7200)]),
        SERVER_GROUP_POLICY: properties.Schema(
            properties.Schema.STRING,
            _('Nova server group policy of the members when there is more '
              'than one. auto: anti-affinity when the availability zone '
              'has at least as many enabled, up nova-compute hosts as '
              'there are members (counted at create), soft-anti-affinity '
              'otherwise or when the hosts cannot be counted; the '
              'server_group_policy attribute says which. anti-affinity '
              '(production: one member a host) fails on a cloud with fewer '
              'hosts than members; soft-anti-affinity spreads them when it '
              'can, so it works on one host. none: no server group.'),
            default=AUTO, update_allowed=True,
            constraints=[constraints.AllowedValues(SERVER_GROUP_POLICIES)]),
        READINESS: properties.Schema(
            properties.Schema.STRING,
            _('How readiness is learnt. signal: each member checks itself '
              'and POSTs to heat-api (a wait condition handle); heat-engine '
              'sends nothing to the members. poll: heat-engine probes the '
              'members, only where the operator allows it (heat.conf '
              '[odl_cluster] readiness_poll_networks).'),
            default=SIGNAL, update_allowed=True,
            constraints=[constraints.AllowedValues(READINESS_MODES)]),
        VIP_ENABLED: properties.Schema(
            properties.Schema.BOOLEAN,
            _('Also deploy the northbound VIP: an HAProxy server (booted '
              'the same way, from VIP_IMAGE) on NETWORK that spreads '
              'RESTCONF and Neutron northbound requests over the members '
              'whose RESTCONF readiness URL answers 200, checked every '
              'second.'),
            default=True, update_allowed=True),
        VIP_IMAGE: properties.Schema(
            properties.Schema.STRING,
            _('Glance image (container_format docker) of the VIP server, '
              'as tools/build-haproxy-image.sh builds it.'),
            default=DEFAULT_VIP_IMAGE, update_allowed=True),
        VIP_FLAVOR: properties.Schema(
            properties.Schema.STRING,
            _('Nova flavor of the VIP server. Default: the members\'.'),
            update_allowed=True,
            constraints=[constraints.CustomConstraint('nova.flavor')]),
        VIP_ADDRESS: properties.Schema(
            properties.Schema.STRING,
            _('Fixed address of the VIP on NETWORK. Default: allocated '
              'by Neutron.'),
            update_allowed=True,
            constraints=[constraints.CustomConstraint('ip_addr')]),
        VIP_FLOATING_NETWORK: properties.Schema(
            properties.Schema.STRING,
            _('External network to take a floating IP for the VIP from, '
              'for clients outside NETWORK (e.g. the compute nodes\' '
              'networking-odl). Default (or empty): no floating IP.'),
            # Checked in validate_nested_stack: a template passes '' (its
            # parameter's default, or null through "if", which Heat turns
            # into '' for a string) for "none", which the neutron.network
            # constraint would refuse.
            update_allowed=True),
    }

    attributes_schema = {
        MEMBERS: attributes.Schema(
            _('One map a member, in member order: name (member-<n>), ip, '
              'server_id, ovs_manager (tcp:<ip>:<ovsdb port>).'),
            type=attributes.Schema.LIST),
        MEMBER_IPS: attributes.Schema(
            _('Member addresses, in member order.'),
            type=attributes.Schema.LIST),
        OVS_MANAGERS: attributes.Schema(
            _('tcp:<ip>:<ovsdb port> for every member (ovs-vsctl '
              'set-manager arguments).'),
            type=attributes.Schema.LIST),
        ODL_OVS_MANAGERS: attributes.Schema(
            _('Comma-separated member IPs: the value for devstack\'s '
              'ODL_OVS_MANAGERS.'),
            type=attributes.Schema.STRING),
        CONTROLLERS: attributes.Schema(
            _('tcp:<ip>:<openflow port> for every member.'),
            type=attributes.Schema.LIST),
        RESTCONF_URLS: attributes.Schema(
            _('RESTCONF root URL of every member.'),
            type=attributes.Schema.LIST),
        LEADER: attributes.Schema(
            _('Address of the Akka cluster leader as seen by the last '
              'readiness check, or null when unknown.'),
            type=attributes.Schema.STRING),
        SERVER_IDS: attributes.Schema(
            _('Nova server IDs, in member order.'),
            type=attributes.Schema.LIST),
        NORTHBOUND_VIP: attributes.Schema(
            _('Address of the northbound VIP on the member network, or '
              'null without one.'),
            type=attributes.Schema.STRING),
        NORTHBOUND_VIP_FLOATING_IP: attributes.Schema(
            _('Floating IP of the VIP, or null without one.'),
            type=attributes.Schema.STRING),
        NORTHBOUND_URL: attributes.Schema(
            _('Neutron northbound URL for networking-odl '
              '(http://<VIP>:<restconf port>/controller/nb/v2/neutron), '
              'through the floating IP when there is one; member-1\'s '
              'without a VIP.'),
            type=attributes.Schema.STRING),
        DEVSTACK_LOCAL_CONF: attributes.Schema(
            _('The local.conf lines of a networking-odl node using this '
              'cluster: ODL_MODE=externalodl, ODL_MGR_IP (the VIP), '
              'ODL_PORT, ODL_OVS_MANAGERS (every member), ODL_MGR_PORT.'),
            type=attributes.Schema.STRING),
        SPREAD: attributes.Schema(
            _('The server group policy the members got (auto resolved at '
              'create), or none.'),
            type=attributes.Schema.STRING),
        MEMBER_HOSTS: attributes.Schema(
            _('One map a member: name, server_id, host (the compute host, '
              'when the caller may see it) and host_id (Nova\'s per-project '
              'host hash, the same for members on one host).'),
            type=attributes.Schema.LIST),
    }

    def validate(self):
        """Check what the schema cannot: odd size, one fixed IP a member."""
        size = self.properties[self.SIZE]
        if size is not None and not 1 <= size <= MAX_MEMBERS:
            raise self._invalid(self.SIZE, _(
                '%(size)s members: an OpenDaylight cluster has 1, 3, 5 or '
                '%(max)d members (an odd number, so that a majority '
                'survives a split; 1 for a single controller without '
                'failover).') % {'size': size, 'max': MAX_MEMBERS})
        if size is not None and size % 2 == 0 and 1 <= size <= MAX_MEMBERS:
            nearest = [str(n) for n in (size - 1, size + 1)
                       if 1 <= n <= MAX_MEMBERS]
            raise self._invalid(self.SIZE, _(
                '%(size)s members is even; an OpenDaylight cluster needs '
                'an odd number of members (1, 3, 5 or 7) so that a majority '
                'survives a split. Use %(nearest)s.') % {
                    'size': size, 'nearest': _(' or ').join(nearest)})
        fixed_ips = self.properties[self.FIXED_IPS]
        if fixed_ips and size is not None and len(fixed_ips) != size:
            raise self._invalid(self.FIXED_IPS, _(
                '%(count)d addresses given for %(size)d '
                'members; give exactly one per member, in member order, or '
                'leave %(prop)s out to let Neutron choose.') % {
                    'prop': self.FIXED_IPS, 'count': len(fixed_ips),
                    'size': size})
        for ip in fixed_ips or []:
            problem = odl_readiness.refusal_for_address(ip)
            # Not an address at all: the ip_addr constraint below says so.
            if problem and odl_readiness.is_ip_address(ip):
                raise self._invalid(self.FIXED_IPS, _(
                    '%(problem)s; a member needs an address of its own on '
                    'the member network.') % {'problem': problem})
        if fixed_ips and len(set(fixed_ips)) != len(fixed_ips):
            raise self._invalid(self.FIXED_IPS, _(
                'an address is listed twice; every member needs its own '
                'address.'))
        super(OdlCluster, self).validate()

    def validate_nested_stack(self):
        # After the schema's checks (a network that does not exist is
        # reported as such), before the members' own: a readable refusal
        # rather than a nested server's.
        self._validate_images()
        self._validate_network()
        self._validate_floating_network()
        super(OdlCluster, self).validate_nested_stack()

    def _validate_images(self):
        wanted = [(self.IMAGE, self.properties[self.IMAGE], _(
            'the members are booted by the nova-docker driver, which runs '
            'only docker images: upload the member image with '
            '--container-format docker'))]
        if self.properties[self.VIP_ENABLED]:
            wanted.append((self.VIP_IMAGE, self.properties[self.VIP_IMAGE], _(
                'build it with tools/build-haproxy-image.sh, upload the '
                'docker save archive with --container-format docker, or '
                'set %(prop)s: false') % {'prop': self.VIP_ENABLED}))
        glance = self.client_plugin('glance')
        for prop, image, advice in wanted:
            try:
                found = glance.get_image(image)
            except Exception as err:
                if not glance.is_not_found(err):
                    raise
                raise self._invalid(prop, _(
                    'image %(image)s not found in Glance; %(advice)s.') % {
                        'image': image, 'advice': advice}) from err
            found_format = getattr(found, 'container_format', None)
            if found_format != 'docker':
                raise self._invalid(prop, _(
                    'image %(image)s has container_format %(format)s, not '
                    'docker; %(advice)s.') % {
                        'image': image, 'format': found_format,
                        'advice': advice})

    def _validate_floating_network(self):
        name = self.properties[self.VIP_FLOATING_NETWORK]
        if not name or not self.properties[self.VIP_ENABLED]:
            return
        try:
            self.client_plugin('neutron').find_resourceid_by_name_or_id(
                'network', name)
        except Exception as err:
            raise self._invalid(self.VIP_FLOATING_NETWORK, _(
                'external network %(net)s for the VIP\'s floating IP: '
                '%(err)s; name an external network, or leave it empty for '
                'no floating IP.') % {'net': name, 'err': err})

    def _validate_network(self):
        if self.properties[self.SUBNET]:
            return
        neutron = self.client_plugin('neutron')
        name = self.properties[self.NETWORK]
        network_id = neutron.find_resourceid_by_name_or_id('network', name)
        network = neutron.client().show_network(network_id)['network']
        if not network.get('subnets'):
            who = (_('the members and the northbound VIP')
                   if self.properties[self.VIP_ENABLED] else _('the members'))
            raise self._invalid(self.NETWORK, _(
                'network %(net)s has no subnet, so %(who)s would get no '
                'address; add a subnet to it or choose a network that has '
                'one.') % {'net': name, 'who': who})

    def _invalid(self, prop, message):
        """A validation error worded like Heat's own property errors."""
        return exception.StackValidationFailed(
            error=_('Property error'), message=message,
            path=[self.stack.t.RESOURCES, self.name,
                  self.stack.t.get_section_name('properties'), prop])

    def _spec(self, props):
        size = props[self.SIZE]
        policy = props[self.SERVER_GROUP_POLICY]
        if policy == self.AUTO:
            # Resolved once, at create; until then (validation) the soft
            # policy, which any cloud can satisfy.
            policy = self.data().get('server_group_policy',
                                     'soft-anti-affinity')
        if policy == 'none' or size < 2:
            policy = None
        return {
            'size': size,
            'image': props[self.IMAGE],
            'flavor': props[self.FLAVOR],
            'network': props[self.NETWORK],
            'subnet': props[self.SUBNET],
            'fixed_ips': props[self.FIXED_IPS],
            'security_groups': props[self.SECURITY_GROUPS],
            'availability_zone': props[self.AVAILABILITY_ZONE],
            'features': props[self.FEATURES],
            'server_group_policy': policy,
            'signal': props[self.READINESS] == self.SIGNAL,
            'readiness_timeout': props[self.READINESS_TIMEOUT],
            'ports': {'akka': props[self.AKKA_PORT],
                      'akka_rpc': props[self.AKKA_RPC_PORT],
                      'restconf': props[self.RESTCONF_PORT],
                      'ovsdb': props[self.OVSDB_PORT],
                      'openflow': props[self.OPENFLOW_PORT]},
            'vip': self._vip_spec(props),
        }

    def _vip_spec(self, props):
        if not props[self.VIP_ENABLED]:
            return None
        credentials = '%s:%s' % (props[self.USERNAME], props[self.PASSWORD])
        return {
            'image': props[self.VIP_IMAGE],
            'flavor': props[self.VIP_FLAVOR] or props[self.FLAVOR],
            'address': props[self.VIP_ADDRESS],
            'floating_network': props[self.VIP_FLOATING_NETWORK],
            'check_path': odl_readiness.RESTCONF_READY_PATH,
            'check_auth': 'Basic ' + base64.b64encode(
                credentials.encode()).decode(),
        }

    def _resolve_spread(self, props):
        """Store the server group policy ``auto`` stands for, and why."""
        if props[self.SERVER_GROUP_POLICY] != self.AUTO:
            return
        size = props[self.SIZE]
        hosts = self._compute_hosts(props[self.AVAILABILITY_ZONE])
        if hosts is not None and hosts >= size:
            policy = 'anti-affinity'
        else:
            policy = 'soft-anti-affinity'
        LOG.info('OpenDaylight cluster %(name)s: %(size)d members, '
                 '%(hosts)s nova-compute hosts in zone %(zone)s: '
                 '%(policy)s', {'name': self.name, 'size': size,
                                'hosts': 'unknown' if hosts is None
                                else hosts,
                                'zone': props[self.AVAILABILITY_ZONE],
                                'policy': policy})
        self.data_set('server_group_policy', policy)

    def _compute_hosts(self, zone):
        """Enabled, up nova-compute hosts in ``zone``; None if unknown."""
        nova = self.client_plugin('nova')
        try:
            services = nova.client().services.list(binary='nova-compute')
        except Exception as err:
            # Listing services is an admin call by default.
            LOG.info('Cannot count the nova-compute hosts (%s): members '
                     'get soft-anti-affinity', err)
            return None
        return len({s.host for s in services
                    if s.status == 'enabled' and s.state == 'up' and
                    (not zone or getattr(s, 'zone', zone) == zone)})

    def child_template(self):
        return odl_member_stack.build(self._spec(self.properties))

    def child_params(self):
        return {}

    def handle_create(self):
        if self.properties[self.READINESS] == self.POLL:
            # Refuse before anything is booted.
            self._allowed_poll_networks(self.properties)
        self._resolve_spread(self.properties)
        self.create_with_template(self.child_template(), {})
        return {'waiter': None}

    def check_create_complete(self, cookie=None):
        if cookie['waiter'] is None:
            if not super(OdlCluster, self).check_create_complete():
                return False
            cookie['waiter'] = self._make_waiter(self.properties)
        return self._wait_ready(cookie['waiter'])

    def _members(self):
        return [(odl_member_stack.member_name(i), ip)
                for i, ip in enumerate(self._member_ips(), start=1)]

    def _make_waiter(self, props):
        """A SignalWaiter or, in poll mode, a checked ReadinessPoller."""
        if props[self.READINESS] == self.SIGNAL:
            return odl_readiness.SignalWaiter(
                self._members(), self._signals, props[self.READINESS_TIMEOUT])
        allowed = self._allowed_poll_networks(props)
        networks = self.get_output(
            odl_member_stack.OUTPUT_MEMBER_NETWORKS) or []
        refused = []
        for (name, ip), network in zip(self._members(), networks):
            problem = odl_readiness.refusal_for_address(ip)
            if network not in allowed:
                problem = _('its port is on network %s, not one listed in '
                            '[odl_cluster] readiness_poll_networks') % network
            if problem:
                refused.append('%s %s: %s' % (name, ip, problem))
        if refused:
            raise ReadinessPollRefused(message=_(
                'readiness: poll refused, heat-engine will not probe '
                '%(refused)s. Use readiness: signal.') % {
                    'refused': '; '.join(refused)})
        return odl_readiness.ReadinessPoller(
            self._members(), props[self.RESTCONF_PORT], props[self.USERNAME],
            props[self.PASSWORD], props[self.READINESS_TIMEOUT])

    def _allowed_poll_networks(self, props):
        """IDs of the networks heat-engine may probe; refuse if not ours."""
        listed = cfg.CONF.odl_cluster.readiness_poll_networks
        if not listed:
            raise ReadinessPollRefused(message=_(
                'readiness: poll is disabled on this cloud: heat-engine '
                'probes members only on networks the operator lists in '
                'heat.conf [odl_cluster] readiness_poll_networks. Use '
                'readiness: signal (the members report to heat-api).'))
        neutron = self.client_plugin('neutron')
        allowed = set()
        for entry in listed:
            try:
                allowed.add(neutron.find_resourceid_by_name_or_id(
                    'network', entry))
            except Exception as err:
                LOG.warning('[odl_cluster] readiness_poll_networks: '
                            '%(entry)s not found: %(err)s',
                            {'entry': entry, 'err': err})
        network = neutron.find_resourceid_by_name_or_id(
            'network', props[self.NETWORK])
        if network not in allowed:
            raise ReadinessPollRefused(message=_(
                'readiness: poll refused: network %(net)s is not one '
                'heat-engine may probe (heat.conf [odl_cluster] '
                'readiness_poll_networks). Use readiness: signal.') % {
                    'net': props[self.NETWORK]})
        return allowed

    def _signals(self):
        handle = self.nested()[odl_member_stack.READY_HANDLE]
        return handle.metadata_get(refresh=True)

    def _forget_signal(self, name):
        """Drop member ``name``'s signal, before it is rebuilt."""
        handle = self.nested()[odl_member_stack.READY_HANDLE]
        handle.metadata_set(None, merge_metadata=lambda _new, latest: {
            key: value for key, value in (latest or {}).items()
            if key != name})

    def _wait_ready(self, waiter):
        try:
            ready = waiter.poll()
        except (odl_readiness.MembersNotReady,
                odl_readiness.MemberFailed) as err:
            raise ClusterNotReady(message=str(err)) from err
        if ready:
            self.data_set('leader', waiter.leader or '')
            LOG.info('OpenDaylight cluster %(name)s ready, leader %(leader)s',
                     {'name': self.name, 'leader': waiter.leader})
            return True
        if isinstance(waiter, odl_readiness.SignalWaiter):
            wait = waiter.seconds_to_next_poll()
        else:
            wait = waiter.seconds_to_next_probe()
        if wait >= 2:
            # Heat polls about once a second: skip the polls until then.
            raise resource.PollDelay(int(wait))
        return False

    def _refuse(self, prop_diff, new_props):
        size_before = self.properties[self.SIZE]
        if self.SIZE in prop_diff and new_props[self.SIZE] != size_before:
            raise ClusterChangeRefused(message=_(
                'Changing %(prop)s from %(old)s to %(new)s is not supported: '
                'the member list is written into every member\'s akka.conf '
                'and shard replicas at first boot, so adding or removing '
                'members needs every member reconfigured and the shard '
                'replicas moved with the cluster-admin RPCs, and a wrong '
                'step loses quorum. Create a new cluster stack with the '
                'size you want and point the compute nodes at it.') % {
                    'prop': self.SIZE, 'old': size_before,
                    'new': new_props[self.SIZE]})
        others = sorted(k for k in prop_diff
                        if k not in self.IN_PLACE and k != self.SIZE)
        if others:
            raise ClusterChangeRefused(message=_(
                'Changing %(props)s of a running OpenDaylight cluster is not '
                'supported in place (only %(allowed)s are); delete and '
                're-create the cluster to change them.') % {
                    'props': ', '.join(others),
                    'allowed': ', '.join(self.IN_PLACE)})

    def handle_update(self, json_snippet, tmpl_diff, prop_diff):
        new_props = json_snippet.properties(self.properties_schema,
                                            self.context)
        if prop_diff:
            self._refuse(prop_diff, new_props)
        old_image = self.properties[self.IMAGE]
        new_image = new_props[self.IMAGE]
        rebuild = self.IMAGE in prop_diff and old_image != new_image
        broken = self._broken_servers()
        if broken and rebuild:
            raise ClusterChangeRefused(message=_(
                'Not changing %(prop)s while %(broken)s: update the stack '
                'without changes first (openstack stack update --existing) '
                'to replace them, then change the image.') % {
                    'prop': self.IMAGE,
                    'broken': '; '.join(why for _n, _s, why in broken)})
        if broken:
            return self._start_heal(broken, new_props)
        if not rebuild:
            return None
        LOG.info('Rebuilding OpenDaylight cluster %(name)s member by member '
                 'on image %(image)s', {'name': self.name,
                                        'image': new_image})
        steps = odl_member_stack.rolling_image_steps(
            self._spec(new_props), old_image, new_image)
        # Step k rebuilds member k: its next signal must come from the
        # rebuilt member.
        return {'steps': [(step, odl_member_stack.member_name(k))
                          for k, step in enumerate(steps, start=1)],
                'props': new_props, 'waiter': None,
                'nested_pending': False, 'doomed': []}

    def _broken_servers(self):
        """(nested name, server ID, why) of each server deleted or in ERROR.

        What ``openstack stack check`` reports (every nested server must be
        ACTIVE), read from Nova now, so that an update heals them even when
        no check ran first.
        """
        nested = self.nested()
        if nested is None:
            return []
        nova = self.client_plugin('nova')
        broken = []
        for name in odl_member_stack.server_resources(
                self._spec(self.properties)):
            server_id = nested[name].resource_id if name in nested else None
            if server_id is None:
                continue
            what = self._server_label(name)
            try:
                server = nova.client().servers.get(server_id)
            except Exception as err:
                if not nova.is_not_found(err):
                    raise
                broken.append((name, None, _('%(what)s server %(id)s was '
                                             'deleted') % {
                                                 'what': what,
                                                 'id': server_id}))
                continue
            if server.status == 'ERROR':
                broken.append((name, server_id, _(
                    '%(what)s server %(id)s is in ERROR') % {
                        'what': what, 'id': server_id}))
        return broken

    @staticmethod
    def _server_label(name):
        if name == odl_member_stack.VIP_SERVER:
            return _('the northbound VIP')
        return odl_member_stack.member_name(int(name.rsplit('_', 1)[1]))

    def _start_heal(self, broken, new_props):
        """Replace exactly the broken servers; each keeps its port.

        The port keeps the address, so the other members' seed lists, the
        VIP's backends and the compute nodes' OVS managers stay valid, and
        the replacement gets the same metadata: same member name, same
        cluster configuration. A server in ERROR still holds its port, so
        it is deleted first.
        """
        nova = self.client_plugin('nova')
        nested_id = dict(self.nested_identifier())
        doomed = []
        for name, server_id, why in broken:
            LOG.warning('OpenDaylight cluster %(cluster)s: %(why)s; '
                        'replacing it', {'cluster': self.name, 'why': why})
            if server_id is not None:
                with nova.ignore_not_found:
                    nova.client().servers.delete(server_id)
                doomed.append(server_id)
            self.rpc_client().resource_mark_unhealthy(
                self.context, nested_id, name, True,
                resource_status_reason=why)
            if (name != odl_member_stack.VIP_SERVER and
                    new_props[self.READINESS] == self.SIGNAL):
                self._forget_signal(self._server_label(name))
        return {'steps': [(self.child_template(), None)],
                'props': new_props, 'waiter': None,
                'nested_pending': False, 'doomed': doomed}

    def _gone(self, server_ids):
        """The servers of ``server_ids`` that Nova still has."""
        nova = self.client_plugin('nova')
        left = []
        for server_id in server_ids:
            try:
                nova.client().servers.get(server_id)
            except Exception as err:
                if not nova.is_not_found(err):
                    raise
                continue
            left.append(server_id)
        return left

    def check_update_complete(self, cookie=None):
        if cookie is None:
            return True
        if cookie['doomed']:
            cookie['doomed'] = self._gone(cookie['doomed'])
            return False
        if cookie['nested_pending']:
            if not super(OdlCluster, self).check_update_complete():
                return False
            cookie['nested_pending'] = False
            cookie['waiter'] = self._make_waiter(cookie['props'])
        if cookie['waiter'] is not None:
            if not self._wait_ready(cookie['waiter']):
                return False
            cookie['waiter'] = None
        if not cookie['steps']:
            return True
        # One step at a time; the cluster is whole again before the next.
        template, member = cookie['steps'].pop(0)
        if member and cookie['props'][self.READINESS] == self.SIGNAL:
            self._forget_signal(member)
        self.update_with_template(template, {})
        cookie['nested_pending'] = True
        return False

    def _member_ips(self):
        return self.get_output(odl_member_stack.OUTPUT_MEMBER_IPS) or []

    def _resolve_attribute(self, name):
        if self.resource_id is None:
            return None
        if name == self.LEADER:
            return self.data().get('leader') or None
        if name == self.SERVER_IDS:
            return self.get_output(odl_member_stack.OUTPUT_SERVER_IDS)
        ips = self._member_ips()
        props = self.properties
        if name == self.MEMBER_IPS:
            return ips
        if name == self.MEMBERS:
            ids = self.get_output(odl_member_stack.OUTPUT_SERVER_IDS) or []
            return [{'name': odl_member_stack.member_name(i), 'ip': ip,
                     'server_id': ids[i - 1] if i <= len(ids) else None,
                     'ovs_manager': 'tcp:%s:%d' % (
                         _host(ip), props[self.OVSDB_PORT])}
                    for i, ip in enumerate(ips, start=1)]
        if name == self.ODL_OVS_MANAGERS:
            return ','.join(ips)
        if name == self.OVS_MANAGERS:
            return ['tcp:%s:%d' % (_host(ip), props[self.OVSDB_PORT])
                    for ip in ips]
        if name == self.CONTROLLERS:
            return ['tcp:%s:%d' % (_host(ip), props[self.OPENFLOW_PORT])
                    for ip in ips]
        if name == self.RESTCONF_URLS:
            return [odl_readiness.restconf_base_url(
                ip, props[self.RESTCONF_PORT]) for ip in ips]
        if name == self.NORTHBOUND_VIP:
            return self._vip_output(odl_member_stack.OUTPUT_VIP_IP)
        if name == self.NORTHBOUND_VIP_FLOATING_IP:
            return self._vip_output(odl_member_stack.OUTPUT_VIP_FLOATING_IP)
        if name == self.NORTHBOUND_URL:
            address = self._northbound_address(ips)
            return address and 'http://%s:%d%s' % (
                _host(address), props[self.RESTCONF_PORT], NEUTRON_NB_PATH)
        if name == self.DEVSTACK_LOCAL_CONF:
            return self._devstack_local_conf(ips)
        if name == self.SPREAD:
            return self._spec(props)['server_group_policy'] or 'none'
        if name == self.MEMBER_HOSTS:
            return self._member_hosts()
        return super(OdlCluster, self)._resolve_attribute(name)

    def _vip_output(self, key):
        if not self.properties[self.VIP_ENABLED]:
            return None
        try:
            return self.get_output(key)
        except exception.NotFound:
            # No floating IP asked for.
            return None

    def _northbound_address(self, ips):
        """Where networking-odl reaches the northbound API."""
        return (self._vip_output(odl_member_stack.OUTPUT_VIP_FLOATING_IP) or
                self._vip_output(odl_member_stack.OUTPUT_VIP_IP) or
                (ips[0] if ips else None))

    def _devstack_local_conf(self, ips):
        address = self._northbound_address(ips)
        if not address or not ips:
            return None
        return odl_member_stack.devstack_local_conf(
            address, self.properties[self.RESTCONF_PORT], ips,
            self.properties[self.OVSDB_PORT])

    def _member_hosts(self):
        nova = self.client_plugin('nova')
        ids = self.get_output(odl_member_stack.OUTPUT_SERVER_IDS) or []
        hosts = []
        for index, server_id in enumerate(ids, start=1):
            entry = {'name': odl_member_stack.member_name(index),
                     'server_id': server_id, 'host': None, 'host_id': None}
            server = None
            if server_id:
                with nova.ignore_not_found:
                    server = nova.client().servers.get(server_id)
            if server is not None:
                entry['host'] = getattr(server, 'OS-EXT-SRV-ATTR:host', None)
                entry['host_id'] = getattr(server, 'hostId', None)
            hosts.append(entry)
        return hosts


def resource_mapping():
    return {'OS::ODL::Cluster': OdlCluster}
