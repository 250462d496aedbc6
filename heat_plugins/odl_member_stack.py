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

"""The nested stack of an OpenDaylight cluster, as a HOT template dict.

One ``OS::Neutron::Port`` and one ``OS::Nova::Server`` per member, plus an
``OS::Nova::ServerGroup`` with the chosen policy when asked for, when
the members signal their readiness one ``OS::Heat::WaitConditionHandle``,
and for the northbound VIP a port, an HAProxy server (the image
tools/build-haproxy-image.sh builds) and optionally a floating IP.
Every member learns its role, the whole member list and, in signal mode,
where to signal from instance metadata, which the nova-docker driver hands
to the container as environment variables; the keys are therefore valid
environment names (the driver refuses others) and the values strings.
``odl-cluster-entrypoint.sh`` and ``odl-ready-signal.sh`` read the same
names.

Pure functions, no Heat imports: loaded by Heat as
``heat.engine.plugins.odl_member_stack`` and has no resource mapping.
"""

# Instance metadata keys = environment variables inside each member.
ENV_MEMBER_NAME = 'ODL_MEMBER_NAME'        # member-<n>
ENV_MEMBER_INDEX = 'ODL_MEMBER_INDEX'      # <n>, 1-based
ENV_MEMBER_IP = 'ODL_MEMBER_IP'            # this member's address
ENV_SEED_IPS = 'ODL_SEED_IPS'              # all members' IPs, member order
ENV_CLUSTER_SIZE = 'ODL_CLUSTER_SIZE'      # number of members
ENV_AKKA_PORT = 'ODL_AKKA_PORT'            # odl-cluster-data port
ENV_AKKA_RPC_PORT = 'ODL_AKKA_RPC_PORT'    # odl-cluster-rpc port
ENV_RESTCONF_PORT = 'ODL_RESTCONF_PORT'
ENV_OVSDB_PORT = 'ODL_OVSDB_PORT'
ENV_OPENFLOW_PORT = 'ODL_OPENFLOW_PORT'
ENV_KARAF_FEATURES = 'ODL_KARAF_FEATURES'  # extra featuresBoot, commas
# Signal mode only: where and with what the member reports it is ready.
ENV_SIGNAL_URL = 'ODL_READY_SIGNAL_URL'    # heat-api signal URL of READY
ENV_SIGNAL_TOKEN = 'ODL_READY_SIGNAL_TOKEN'  # Keystone token for it
ENV_READY_TIMEOUT = 'ODL_READY_TIMEOUT'    # seconds the member keeps trying

# The northbound VIP server's metadata = odl-vip-entrypoint.sh's environment.
ENV_VIP_MEMBERS = 'ODL_VIP_MEMBERS'        # member IPs, member order
ENV_VIP_PORT = 'ODL_VIP_PORT'              # port the VIP listens on
ENV_VIP_CHECK_PATH = 'ODL_VIP_CHECK_PATH'  # health check: readiness URL
ENV_VIP_CHECK_AUTH = 'ODL_VIP_CHECK_AUTH'  # its Authorization header
VIP_STATS_PORT = 8404                      # HAProxy's statistics page

SERVER_GROUP = 'server_group'
# Policies whose members are booted one after another (see build).
SPREAD_IN_TURN = ('soft-anti-affinity',)
READY_HANDLE = 'ready_handle'
VIP_PORT = 'vip_port'
VIP_SERVER = 'vip_server'
VIP_FLOATING_IP = 'vip_floating_ip'
OUTPUT_MEMBER_IPS = 'member_ips'
OUTPUT_MEMBER_NETWORKS = 'member_networks'
OUTPUT_SERVER_IDS = 'server_ids'
OUTPUT_VIP_IP = 'vip_ip'
OUTPUT_VIP_FLOATING_IP = 'vip_floating_ip'
OUTPUT_VIP_SERVER_ID = 'vip_server_id'


def member_name(index):
    """Return the Akka role of member ``index`` (1-based): 'member-<n>'."""
    return 'member-%d' % index


def port_resource(index):
    """Return the nested resource name of member ``index``'s port."""
    return 'port_%d' % index


def server_resource(index):
    """Return the nested resource name of member ``index``'s server."""
    return 'member_%d' % index


def _ip_of(index):
    return {'get_attr': [port_resource(index), 'fixed_ips', 0, 'ip_address']}


def _port(index, spec):
    props = {'network': spec['network']}
    fixed = {}
    if spec.get('subnet'):
        fixed['subnet'] = spec['subnet']
    if spec.get('fixed_ips'):
        fixed['ip_address'] = spec['fixed_ips'][index - 1]
    if fixed:
        props['fixed_ips'] = [fixed]
    if spec.get('security_groups') is not None:
        props['security_groups'] = list(spec['security_groups'])
    return {'type': 'OS::Neutron::Port', 'properties': props}


def _metadata(index, spec):
    ports = spec['ports']
    all_ips = [_ip_of(i) for i in range(1, spec['size'] + 1)]
    meta = {
        ENV_MEMBER_NAME: member_name(index),
        ENV_MEMBER_INDEX: str(index),
        ENV_MEMBER_IP: _ip_of(index),
        ENV_SEED_IPS: {'list_join': [',', all_ips]},
        ENV_CLUSTER_SIZE: str(spec['size']),
        ENV_AKKA_PORT: str(ports['akka']),
        ENV_AKKA_RPC_PORT: str(ports['akka_rpc']),
        ENV_RESTCONF_PORT: str(ports['restconf']),
        ENV_OVSDB_PORT: str(ports['ovsdb']),
        ENV_OPENFLOW_PORT: str(ports['openflow']),
        ENV_KARAF_FEATURES: ','.join(spec.get('features') or []),
    }
    if spec.get('signal'):
        meta[ENV_SIGNAL_URL] = {'get_attr': [READY_HANDLE, 'endpoint']}
        meta[ENV_SIGNAL_TOKEN] = {'get_attr': [READY_HANDLE, 'token']}
        meta[ENV_READY_TIMEOUT] = str(spec['readiness_timeout'])
    return meta


def _server(index, spec, image):
    props = {
        'image': image,
        'flavor': spec['flavor'],
        'availability_zone': spec['availability_zone'],
        'networks': [{'port': {'get_resource': port_resource(index)}}],
        'metadata': _metadata(index, spec),
        # No cloud-init in a container: no Heat user data machinery.
        'user_data_format': 'RAW',
        'config_drive': False,
        # A new image rebuilds the server in place: it keeps its port, so
        # its address and therefore every member's seed list stay valid.
        'image_update_policy': 'REBUILD',
    }
    if spec.get('server_group_policy'):
        props['scheduler_hints'] = {'group': {'get_resource': SERVER_GROUP}}
    return {'type': 'OS::Nova::Server', 'properties': props}


def _vip_resources(spec):
    """The northbound VIP: a port, the HAProxy server, a floating IP."""
    vip = spec['vip']
    ports = spec['ports']
    port = {'network': spec['network']}
    fixed = {}
    if spec.get('subnet'):
        fixed['subnet'] = spec['subnet']
    if vip.get('address'):
        fixed['ip_address'] = vip['address']
    if fixed:
        port['fixed_ips'] = [fixed]
    if spec.get('security_groups') is not None:
        port['security_groups'] = list(spec['security_groups'])
    metadata = {
        ENV_VIP_MEMBERS: {'list_join': [',', [
            _ip_of(i) for i in range(1, spec['size'] + 1)]]},
        ENV_RESTCONF_PORT: str(ports['restconf']),
        ENV_VIP_PORT: str(ports['restconf']),
        ENV_VIP_CHECK_PATH: vip['check_path'],
        ENV_VIP_CHECK_AUTH: vip['check_auth'],
    }
    resources = {
        VIP_PORT: {'type': 'OS::Neutron::Port', 'properties': port},
        VIP_SERVER: {'type': 'OS::Nova::Server', 'properties': {
            'image': vip['image'],
            'flavor': vip['flavor'],
            'availability_zone': spec['availability_zone'],
            'networks': [{'port': {'get_resource': VIP_PORT}}],
            'metadata': metadata,
            'user_data_format': 'RAW',
            'config_drive': False}},
    }
    if vip.get('floating_network'):
        resources[VIP_FLOATING_IP] = {
            'type': 'OS::Neutron::FloatingIP',
            'properties': {'floating_network': vip['floating_network'],
                           'port_id': {'get_resource': VIP_PORT}}}
    return resources


def _vip_outputs(spec):
    if not spec.get('vip'):
        return {}
    outputs = {
        OUTPUT_VIP_IP: {'value': {'get_attr': [
            VIP_PORT, 'fixed_ips', 0, 'ip_address']}},
        OUTPUT_VIP_SERVER_ID: {'value': {'get_resource': VIP_SERVER}},
    }
    if spec['vip'].get('floating_network'):
        outputs[OUTPUT_VIP_FLOATING_IP] = {'value': {'get_attr': [
            VIP_FLOATING_IP, 'floating_ip_address']}}
    return outputs


def server_resources(spec):
    """Names of the nested stack's servers: every member, then the VIP."""
    names = [server_resource(i) for i in range(1, spec['size'] + 1)]
    if spec.get('vip'):
        names.append(VIP_SERVER)
    return names


def build(spec, images=None):
    """Return the nested HOT template for a cluster described by ``spec``.

    ``spec`` keys: size, image, flavor, network, subnet (optional),
    fixed_ips (optional, one per member), security_groups (optional),
    availability_zone, ports (dict: akka, akka_rpc, restconf, ovsdb,
    openflow), features (list), server_group_policy (a Nova policy, or
    None for no server group), signal (bool: members signal readiness to
    a wait condition handle), readiness_timeout (seconds), vip (None, or
    a dict: image, flavor, address (optional), floating_network
    (optional), check_path, check_auth: the HAProxy server in front of
    the members).
    ``images`` optionally overrides the image per member index (1-based):
    a rolling image update builds one template per step with it.
    """
    images = images or {}
    resources = {}
    if spec.get('server_group_policy'):
        resources[SERVER_GROUP] = {
            'type': 'OS::Nova::ServerGroup',
            'properties': {'policies': [spec['server_group_policy']]}}
    if spec.get('signal'):
        # Token signals: the member POSTs to heat-api with the handle's
        # stack-user token; nothing goes from heat-engine to the members.
        resources[READY_HANDLE] = {
            'type': 'OS::Heat::WaitConditionHandle',
            'properties': {'signal_transport': 'TOKEN_SIGNAL'}}
    for index in range(1, spec['size'] + 1):
        resources[port_resource(index)] = _port(index, spec)
        resources[server_resource(index)] = _server(
            index, spec, images.get(index, spec['image']))
        if index > 1 and spec.get('server_group_policy') in SPREAD_IN_TURN:
            # A soft policy is weighed against the members Nova has
            # already placed: booted together, every member sees an empty
            # group and they may all land on one host. One after another
            # they spread (a hard policy is a filter, enforced again on
            # the compute host, so its members boot together).
            resources[server_resource(index)]['depends_on'] = [
                server_resource(index - 1)]
    if spec.get('vip'):
        resources.update(_vip_resources(spec))
    count = range(1, spec['size'] + 1)
    outputs = {
        OUTPUT_MEMBER_IPS: {'value': [_ip_of(i) for i in count]},
        OUTPUT_MEMBER_NETWORKS: {'value': [
            {'get_attr': [port_resource(i), 'network_id']}
            for i in count]},
        OUTPUT_SERVER_IDS: {'value': [
            {'get_resource': server_resource(i)} for i in count]},
    }
    outputs.update(_vip_outputs(spec))
    return {
        'heat_template_version': '2016-10-14',
        'description': 'OpenDaylight cluster members (OS::ODL::Cluster)',
        'resources': resources,
        'outputs': outputs,
    }


def devstack_local_conf(mgr_ip, restconf_port, member_ips, ovsdb_port):
    """The local.conf lines of a networking-odl node using the cluster.

    networking-odl in externalodl mode sends Neutron's northbound calls to
    ``mgr_ip`` (the VIP) and connects the node's OVS to every member.
    """
    return '\n'.join([
        'ODL_MODE=externalodl',
        'ODL_MGR_IP=%s' % mgr_ip,
        'ODL_PORT=%d' % restconf_port,
        'ODL_OVS_MANAGERS=%s' % ','.join(member_ips),
        'ODL_MGR_PORT=%d' % ovsdb_port,
    ]) + '\n'


def rolling_image_steps(spec, old_image, new_image):
    """Return one nested template per member, replacing images in order.

    Step ``k`` runs members 1..k on ``new_image`` and the others on
    ``old_image``; applying them in order rebuilds one member at a time.
    """
    steps = []
    for upto in range(1, spec['size'] + 1):
        images = {i: (new_image if i <= upto else old_image)
                  for i in range(1, spec['size'] + 1)}
        steps.append(build(spec, images))
    return steps
