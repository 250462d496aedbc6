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

"""Neutron ports of a container: os-vif plugging and veth wiring.

Each VIF becomes a veth pair. The host end carries the name Nova gives the
port's device (``vif['devname']``, e.g. ``tap<port id>``) and is plugged by
os-vif: into the OVS integration bridge for a plain ``VIFOpenVSwitch``, or
into the per-port Linux bridge ``qbr<port id>`` of the hybrid
``VIFBridge``, which os-vif links to OVS with its qvb/qvo pair. The other
end moves into the sandbox's network namespace as ``eth<i>``, in VIF order,
and gets the port's MAC, the network MTU, the fixed IPs, the gateways and
the subnet host routes.

Privileged work goes through the narrow entrypoints of
``novadocker.privsep.netdev`` and os-vif's own privsep daemon.
"""

import collections
import contextlib
import threading

import netaddr
from nova import exception as nova_exception
from nova.network import model as network_model
from nova.network import os_vif_util
import os_vif
from os_vif import objects as osv_objects
from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_utils import excutils
from vif_plug_ovs import ovs as ovs_plugin

import novadocker.conf
from novadocker.privsep import netdev
from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

DEFAULT_OVSDB_CONNECTION = 'unix:/var/run/openvswitch/db.sock'
SUPPORTED_VIF_TYPES = (
    'ovs (os-vif VIFOpenVSwitch)',
    'ovs with binding detail ovs_hybrid_plug=true (os-vif VIFBridge)',
)
DEFAULT_ROUTES = {4: '0.0.0.0/0', 6: '::/0'}

InterfaceConfig = collections.namedtuple(
    'InterfaceConfig', ['name', 'mac', 'mtu', 'addresses', 'routes'])

_init_lock = threading.Lock()
_initialized = False


def initialize():
    """Load the os-vif plugins once; OVSDB is reached on its unix socket.

    ``[os_vif_ovs] ovsdb_connection`` defaults to the local unix socket
    here, because os-vif's own default (tcp:127.0.0.1:6640) has no listener
    unless a manager is configured; a value in nova.conf still wins. The
    plugin reads it when it loads, so this runs before os_vif.initialize().
    """
    global _initialized
    with _init_lock:
        if _initialized:
            return
        CONF.register_opts(ovs_plugin.OvsPlugin.CONFIG_OPTS,
                           group='os_vif_ovs')
        CONF.set_default('ovsdb_connection', DEFAULT_OVSDB_CONNECTION,
                         group='os_vif_ovs')
        os_vif.initialize()
        _initialized = True


def guest_device_name(index):
    """Name of the VIF at *index* inside the sandbox: ``eth<index>``."""
    return 'eth%d' % index


def peer_device_name(vif):
    """Host-side name of the namespace end before it moves into the sandbox.

    Fourteen characters at most, like Nova's own ``tap<port id>`` names.
    """
    return ('nsp' + vif['id'])[:network_model.NIC_NAME_LEN]


def _check_supported(vif):
    vnic_type = vif.get('vnic_type') or network_model.VNIC_TYPE_NORMAL
    if (vif.get('type') != network_model.VIF_TYPE_OVS or
            vnic_type != network_model.VNIC_TYPE_NORMAL):
        shown = vif.get('type')
        if vnic_type != network_model.VNIC_TYPE_NORMAL:
            shown = '%s (vnic_type %s)' % (shown, vnic_type)
        raise exception.UnsupportedVifType(
            port_id=vif.get('id'), vif_type=shown,
            supported='; '.join(SUPPORTED_VIF_TYPES))


def _subnet_routes(subnet, version):
    routes = []
    gateway = subnet.get('gateway')
    if gateway and gateway.get('address'):
        routes.append((DEFAULT_ROUTES[version], gateway['address']))
    for route in subnet.get('routes') or []:
        via = route.get('gateway')
        if via and via.get('address'):
            routes.append((str(netaddr.IPNetwork(route['cidr']).cidr),
                           via['address']))
    return routes


def interface_config(vif, index, default_mtu=1500):
    """What the VIF at *index* looks like inside the sandbox.

    Raises UnsupportedVifType or PortWithoutFixedIp before anything is
    created. The MTU is the network's, or *default_mtu* when Neutron gives
    none; the host end gets the same.
    """
    _check_supported(vif)
    addresses, routes = [], []
    network = vif['network']
    for subnet in network.get('subnets') or []:
        cidr = netaddr.IPNetwork(subnet['cidr'])
        for ip in subnet.get('ips') or []:
            if ip.get('type', 'fixed') == 'fixed':
                addresses.append((str(ip['address']), cidr.prefixlen))
        if subnet.get('ips'):
            routes.extend(_subnet_routes(subnet, cidr.version))
    if not addresses:
        raise exception.PortWithoutFixedIp(
            port_id=vif['id'], network=network.get('id'))
    mtu = network.get_meta('mtu') if hasattr(network, 'get_meta') else None
    return InterfaceConfig(name=guest_device_name(index),
                           mac=vif['address'],
                           mtu=int(mtu or default_mtu),
                           addresses=addresses, routes=routes)


def dns_servers(network_info):
    """DNS servers of all subnets of all VIFs, in order, without repeats."""
    servers = []
    for vif in network_info or []:
        for subnet in vif['network'].get('subnets') or []:
            for dns in subnet.get('dns') or []:
                address = str(dns['address'])
                if address not in servers:
                    servers.append(address)
    return servers


def _to_osvif(vif):
    """The os-vif object of *vif*, ready for os_vif.plug()."""
    _check_supported(vif)
    obj = os_vif_util.nova_to_osvif_vif(vif)
    if (obj is None or obj.plugin != 'ovs' or not isinstance(
            obj, (osv_objects.vif.VIFOpenVSwitch,
                  osv_objects.vif.VIFBridge))):
        raise exception.UnsupportedVifType(
            port_id=vif['id'], vif_type='%s (os-vif %s)' % (
                vif['type'], type(obj).__name__),
            supported='; '.join(SUPPORTED_VIF_TYPES))
    if 'create_tap' in obj.port_profile.fields:
        # The host end is our veth; os-vif must not make a tap of that name.
        obj.port_profile.create_tap = False
    if isinstance(obj, osv_objects.vif.VIFOpenVSwitch):
        # No hypervisor adds the device to OVS for us, as libvirt would:
        # os-vif must create the port (with its external_ids) itself.
        obj.port_profile.create_port = True
    return obj


def _check_bridge(bridge, port_id):
    """Fail fast and clearly when OVS is down or the bridge is missing.

    os-vif would wait ovs_vsctl_timeout seconds for a dead OVSDB, and would
    silently create a missing bridge that no agent manages.
    """
    connection = CONF.os_vif_ovs.ovsdb_connection
    try:
        processutils.execute('ovs-vsctl', '--timeout=5',
                             '--db=%s' % connection, 'br-exists', bridge)
    except processutils.ProcessExecutionError as e:
        if e.exit_code == 2:
            raise exception.OvsBridgeMissing(
                bridge=bridge, port_id=port_id) from e
        raise exception.OvsUnreachable(
            connection=connection,
            reason=(e.stderr or str(e)).strip()) from e
    except OSError as e:
        raise exception.OvsUnreachable(connection=connection,
                                       reason=str(e)) from e


@contextlib.contextmanager
def _step(vif, what):
    """Turn a failure of one wiring step into a readable VifPlugFailed."""
    try:
        yield
    except nova_exception.NovaException:
        raise
    except Exception as e:
        raise exception.VifPlugFailed(port_id=vif['id'], step=what,
                                      reason=str(e) or type(e).__name__
                                      ) from e


def _ovs_reachable(instance, vif, osvif):
    try:
        _check_bridge(osvif.network.bridge, vif['id'])
    except exception.OvsBridgeMissing:
        return True
    except exception.OvsUnreachable as e:
        # os-vif would wait ovs_vsctl_timeout (two minutes) for nothing.
        LOG.warning('Not removing the OVS port of %(port)s: %(err)s',
                    {'port': vif['id'], 'err': e}, instance=instance)
        return False
    return True


def _remove(instance, vif, osvif, quiet_about_ovs=False):
    """Remove everything a plug of *vif* creates; tolerate what is gone."""
    info = os_vif_util.nova_to_osvif_instance(instance)
    try:
        if quiet_about_ovs or _ovs_reachable(instance, vif, osvif):
            os_vif.unplug(osvif, info)
    except Exception as e:
        log = LOG.debug if quiet_about_ovs else LOG.warning
        log('os-vif could not unplug port %(port)s: %(err)s',
            {'port': vif['id'], 'err': e}, instance=instance)
    devices = [osvif.vif_name, peer_device_name(vif)]
    if isinstance(osvif, osv_objects.vif.VIFBridge):
        devices.append(osvif.bridge_name)
    for dev in devices:
        try:
            netdev.delete_device(dev)
        except Exception as e:
            LOG.warning('Could not delete device %(dev)s of port %(port)s: '
                        '%(err)s', {'dev': dev, 'port': vif['id'], 'err': e},
                        instance=instance)


def _wire(instance, vif, osvif, config, sandbox_pid):
    host_dev, peer = osvif.vif_name, peer_device_name(vif)
    info = os_vif_util.nova_to_osvif_instance(instance)
    # A plug after the sandbox restarted finds the old OVS port (its
    # device died with the old namespace): start from a clean slate.
    _remove(instance, vif, osvif, quiet_about_ovs=True)
    with _step(vif, 'creating veth pair %s/%s' % (host_dev, peer)):
        netdev.create_veth_pair(host_dev, peer, config.mtu)
    with _step(vif, 'plugging %s into bridge %s with os-vif' % (
            host_dev, osvif.network.bridge)):
        os_vif.plug(osvif, info)
    if isinstance(osvif, osv_objects.vif.VIFBridge):
        with _step(vif, 'adding %s to Linux bridge %s' % (
                host_dev, osvif.bridge_name)):
            netdev.add_to_bridge(host_dev, osvif.bridge_name)
    with _step(vif, 'moving %s into the namespace of sandbox pid %s as %s'
               % (peer, sandbox_pid, config.name)):
        netdev.move_into_namespace(peer, sandbox_pid, config.name)
    with _step(vif, 'configuring %s inside the sandbox' % config.name):
        skipped = netdev.configure_interface(
            sandbox_pid, config.name, config.mac, config.mtu,
            [list(a) for a in config.addresses],
            [list(r) for r in config.routes])
    for dst, gateway in skipped:
        LOG.info('%(dev)s: route %(dst)s via %(gw)s not added, an earlier '
                 'interface holds the default route',
                 {'dev': config.name, 'dst': dst, 'gw': gateway},
                 instance=instance)
    LOG.info('Plugged port %(port)s as %(dev)s (host device %(host)s)',
             {'port': vif['id'], 'dev': config.name, 'host': host_dev},
             instance=instance)


def _prepare(vifs_with_index):
    """Validate and convert VIFs; check OVS. Creates nothing."""
    initialize()
    mtu = CONF.os_vif_ovs.network_device_mtu
    prepared = [(vif, _to_osvif(vif), interface_config(vif, index, mtu))
                for vif, index in vifs_with_index]
    checked = set()
    for vif, osvif, _config in prepared:
        if osvif.network.bridge not in checked:
            _check_bridge(osvif.network.bridge, vif['id'])
            checked.add(osvif.network.bridge)
    return prepared


def _sandbox_pid(sandbox_id):
    """The pid of the running sandbox container *sandbox_id*."""
    with docker_client.docker_client(
            'inspect sandbox %s' % sandbox_id) as client:
        return client.api.inspect_container(sandbox_id)['State']['Pid']


def plug_vifs(instance, network_info, sandbox_id):
    """Wire every VIF into the sandbox container *sandbox_id* as eth0, ...

    Also brings ``lo`` up. Called again after the sandbox restarted, it
    replaces stale host devices and OVS ports. On failure everything this
    call created is removed before the error propagates.
    """
    prepared = _prepare([(vif, i) for i, vif in enumerate(network_info)])
    sandbox_pid = _sandbox_pid(sandbox_id)
    started = []
    try:
        for vif, osvif, config in prepared:
            started.append((vif, osvif))
            _wire(instance, vif, osvif, config, sandbox_pid)
        with _step({'id': '(loopback)'}, 'bringing lo up'):
            netdev.set_loopback_up(sandbox_pid)
    except Exception:
        with excutils.save_and_reraise_exception():
            for vif, osvif in reversed(started):
                _remove(instance, vif, osvif)


def plug_vif(instance, vif, index, sandbox_id):
    """Wire one more VIF (interface attach) into the sandbox as eth<index>."""
    ((vif, osvif, config),) = _prepare([(vif, index)])
    sandbox_pid = _sandbox_pid(sandbox_id)
    try:
        _wire(instance, vif, osvif, config, sandbox_pid)
    except Exception:
        with excutils.save_and_reraise_exception():
            _remove(instance, vif, osvif)


def unplug_vif(instance, vif, sandbox_id=None):
    """Remove the OVS port, hybrid bridge and veth of one VIF."""
    initialize()
    try:
        osvif = _to_osvif(vif)
    except exception.UnsupportedVifType:
        LOG.debug('Port %s was never plugged: unsupported type', vif['id'],
                  instance=instance)
        return
    _remove(instance, vif, osvif)


def unplug_vifs(instance, network_info, sandbox_id=None):
    """Remove the OVS ports, hybrid bridges and veths of all VIFs.

    *sandbox_id* is the sandbox container, when it still exists.
    """
    for vif in network_info or []:
        unplug_vif(instance, vif, sandbox_id)
