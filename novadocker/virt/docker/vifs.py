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

Each VIF becomes a veth pair. The host end is ``tap<port id>`` (the name
Nova gives the port's device) and is plugged by os-vif: into the OVS
integration bridge for a plain ``VIFOpenVSwitch``, or into the per-port
Linux bridge ``qbr<port id>`` of the hybrid ``VIFBridge``, which os-vif
links to OVS with its qvb/qvo pair. The other end is created inside the
sandbox's network namespace as ``eth<i>`` and carries the port id as its
alias; it gets the port's MAC, the network MTU, the fixed IPs, the gateways
and the subnet host routes. TX checksum offload is off on both ends: the
userspace (netdev) datapath does not complete partial checksums.

Plugging is idempotent: what is already there (the pair joined into the
sandbox, the OVS row of the port with a live interface) is kept, so a
restart of nova-compute leaves running servers untouched; a new sandbox
namespace is wired anew. Every OVS interface this driver plugs is marked
with ``external_ids:nova-docker-host=<host>``, so orphans of one host are
found without touching another host's. The driver's own OVSDB reads and
writes (bridge check, port rows, host mark, orphan sweep) go through
``ovsdb``, its one OVSDB client.

Privileged work is one round trip a port to ``novadocker.privsep.netdev``
(bound to the sandbox container, see there) plus os-vif's own daemon.
"""

import collections
import contextlib
import os
import threading

import netaddr
from nova import exception as nova_exception
from nova.network import model as network_model
from nova.network import os_vif_util
import os_vif
from os_vif import objects as osv_objects
from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_utils import excutils
from vif_plug_ovs import ovs as ovs_plugin

import novadocker.conf
from novadocker.privsep import netdev
from novadocker.virt.docker import engine as docker_engine
from novadocker.virt.docker import exception
from novadocker.virt.docker import netns
from novadocker.virt.docker import ovsdb

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

DEFAULT_OVSDB_CONNECTION = ovsdb.DEFAULT_CONNECTION
SUPPORTED_VIF_TYPES = (
    'ovs (os-vif VIFOpenVSwitch)',
    'ovs with binding detail ovs_hybrid_plug=true (os-vif VIFBridge)',
)
DEFAULT_ROUTES = {4: '0.0.0.0/0', 6: '::/0'}
OVS_HOST_KEY = 'nova-docker-host'

InterfaceConfig = collections.namedtuple(
    'InterfaceConfig', ['name', 'mac', 'mtu', 'addresses', 'routes'])

_init_lock = threading.Lock()
_initialized = False


def _os_vif_loaded():
    try:
        os_vif.host_info()
    except os_vif.exception.LibraryNotInitialized:
        return False
    return True


def load():
    """Load the os-vif plugins once.

    Only when nova-docker is the first to load os-vif (an in-process
    harness; a real nova-compute loads it in its main, before any driver)
    does ``[os_vif_ovs] ovsdb_connection`` default to the local unix
    socket: the plugin reads the option once, when it loads, so a default
    set later would make this module and os-vif talk to different OVSDBs.
    """
    global _initialized
    with _init_lock:
        if _initialized:
            return
        CONF.register_opts(ovs_plugin.OvsPlugin.CONFIG_OPTS,
                           group='os_vif_ovs')
        if not _os_vif_loaded():
            CONF.set_default('ovsdb_connection', DEFAULT_OVSDB_CONNECTION,
                             group='os_vif_ovs')
        os_vif.initialize()
        _initialized = True


def initialize():
    """Load os-vif and check that its OVSDB connection answers.

    Called at init_host. Never raises for OVSDB: an unanswered
    ``[os_vif_ovs] ovsdb_connection`` is logged as an error naming the
    option (every later plug fails with the same advice until it answers).
    Returns True when OVSDB answered.
    """
    load()
    connection = CONF.os_vif_ovs.ovsdb_connection
    ovsdb.open_connection()
    try:
        ovsdb.check()
    except exception.OvsUnreachable as e:
        LOG.error('os-vif\'s OVS plugin uses [os_vif_ovs] ovsdb_connection = '
                  '%(conn)s, which does not answer: %(err)s Set '
                  '"[os_vif_ovs] ovsdb_connection = %(default)s" (or the '
                  'address OVSDB listens on) in the nova-compute '
                  'configuration file and restart nova-compute; a driver '
                  'default comes too late, os-vif reads it before the '
                  'driver loads. Servers are not wired until it answers.',
                  {'conn': connection, 'err': e,
                   'default': DEFAULT_OVSDB_CONNECTION})
        return False
    return True


def guest_device_name(index):
    """Name of the VIF at *index* inside the sandbox: ``eth<index>``."""
    return 'eth%d' % index


def host_device_name(port_id):
    """The host end of a port's veth: ``tap`` + 11 characters of its id."""
    return netdev.host_device_names(port_id)['tap']


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
    # The privileged side derives the host device from the port id alone.
    obj.vif_name = host_device_name(vif['id'])
    return obj


def _check_bridge(bridge, port_id):
    """Fail fast and clearly when OVS is down or the bridge is missing.

    os-vif would wait ovs_vsctl_timeout seconds for a dead OVSDB, and would
    silently create a missing bridge that no agent manages.
    """
    if not ovsdb.bridge_exists(bridge):
        raise exception.OvsBridgeMissing(bridge=bridge, port_id=port_id)


def _ovs_port_states(ports, host=None):
    """{port id: 'ok', 'stale' or 'missing'} of [(osvif, port id)].

    One OVSDB read for all the ports: 'stale' is a row without a working
    interface (or of another port), 'missing' no row. With *host*, a
    working row already marked with that host is 'marked' (kept as it is,
    nothing to write).
    """
    names = {port_id: _ovs_device(osvif) for osvif, port_id in ports}
    rows = ovsdb.interfaces_named(names.values())
    states = {}
    for port_id, name in names.items():
        row = rows.get(name)
        if row is None:
            states[port_id] = 'missing'
        elif (row['external_ids'].get('iface-id') == port_id and
                row['ofport'] > 0 and not row['error']):
            marked = host and row['external_ids'].get(OVS_HOST_KEY) == host
            states[port_id] = 'marked' if marked else 'ok'
        else:
            states[port_id] = 'stale'
    return states


def _ovs_port_state(osvif, port_id):
    """'ok', 'stale' (row without a working interface) or 'missing'."""
    return _ovs_port_states([(osvif, port_id)])[port_id]


def _ovs_device(osvif):
    """The device os-vif adds to OVS: the tap, or qvo for hybrid plugs."""
    if isinstance(osvif, osv_objects.vif.VIFBridge):
        return netdev.host_device_names(osvif.port_profile.interface_id)[
            'qvo']
    return osvif.vif_name


def _mark(osvif, host):
    """Record *host* in the interface's external_ids (for orphan sweeps)."""
    ovsdb.set_interface_id(_ovs_device(osvif), OVS_HOST_KEY, host)


def _del_ovs_port(osvif):
    ovsdb.del_port(_ovs_device(osvif), bridge=osvif.network.bridge)


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


def _host_of(instance):
    return instance.host or CONF.host


def _remove(instance, vif, osvif, sandbox_id=None):
    """Remove everything a plug of *vif* creates; tolerate what is gone."""
    info = os_vif_util.nova_to_osvif_instance(instance)
    try:
        if _ovs_reachable(instance, vif, osvif):
            os_vif.unplug(osvif, info)
    except Exception as e:
        LOG.warning('os-vif could not unplug port %(port)s: %(err)s',
                    {'port': vif['id'], 'err': e}, instance=instance)
    try:
        if sandbox_id:
            netdev.unwire_port(sandbox_id, _host_of(instance), vif['id'])
        else:
            netdev.remove_port_devices(vif['id'])
    except Exception as e:
        LOG.warning('Could not remove the devices of port %(port)s: '
                    '%(err)s', {'port': vif['id'], 'err': e},
                    instance=instance)


def _ensure(instance, vif, osvif, config, sandbox_id, preferred_name,
            ovs=None):
    """Wire one port, keeping what is there. True if anything was made.

    *ovs* is the port's OVS state when the caller has read it. On failure
    the port is removed unless it was working before this call (a kept
    port of a running server is never cut by a failed re-plug).
    """
    if ovs is None:
        ovs = _ovs_port_state(osvif, vif['id'])
    marked = ovs == 'marked'
    if marked:
        ovs = 'ok'
    made = [False]
    try:
        _ensure_steps(instance, vif, osvif, config, sandbox_id,
                      preferred_name, ovs, made, marked)
    except Exception:
        with excutils.save_and_reraise_exception():
            if made[0] or ovs != 'ok':
                _remove(instance, vif, osvif, sandbox_id)
    return made[0]


def _ensure_steps(instance, vif, osvif, config, sandbox_id, preferred_name,
                  ovs, made, marked=False):
    host = _host_of(instance)
    hybrid = isinstance(osvif, osv_objects.vif.VIFBridge)
    info = os_vif_util.nova_to_osvif_instance(instance)
    if hybrid and ovs != 'ok':
        # os-vif builds qbr and qvb/qvo first; the tap joins qbr below.
        made[0] = True
        with _step(vif, 'plugging qbr/qvo into bridge %s with os-vif'
                   % osvif.network.bridge):
            if ovs == 'stale':
                _del_ovs_port(osvif)
            os_vif.plug(osvif, info)
    with _step(vif, 'wiring %s into sandbox %s' % (
            osvif.vif_name, sandbox_id[:12])):
        wired = netdev.wire_port(
            sandbox_id, host, vif['id'], preferred_name, config.mac,
            config.mtu, [list(a) for a in config.addresses],
            [list(r) for r in config.routes], hybrid)
    made[0] = made[0] or wired['created']
    if not hybrid and (wired['created'] or ovs != 'ok'):
        made[0] = True
        with _step(vif, 'plugging %s into bridge %s with os-vif' % (
                osvif.vif_name, osvif.network.bridge)):
            if ovs != 'missing':
                # The row of a device that died with an old namespace.
                _del_ovs_port(osvif)
            os_vif.plug(osvif, info)
    if made[0] or not marked:
        # A kept port already marked (a restart) costs no OVSDB write.
        with _step(vif, 'marking the OVS interface with its host'):
            _mark(osvif, host)
    for dst, gateway in wired['skipped_routes']:
        LOG.info('%(dev)s: route %(dst)s via %(gw)s not added, an earlier '
                 'interface holds the default route',
                 {'dev': wired['name'], 'dst': dst, 'gw': gateway},
                 instance=instance)
    if made[0]:
        LOG.info('Plugged port %(port)s as %(dev)s (host device %(host)s)',
                 {'port': vif['id'], 'dev': wired['name'],
                  'host': osvif.vif_name}, instance=instance)
    else:
        LOG.debug('Port %(port)s is wired as %(dev)s: kept',
                  {'port': vif['id'], 'dev': wired['name']},
                  instance=instance)


def _prepare(vifs_with_index):
    """Validate and convert VIFs; check OVS. Creates nothing."""
    load()
    mtu = CONF.os_vif_ovs.network_device_mtu
    prepared = [(vif, _to_osvif(vif), interface_config(vif, index, mtu))
                for vif, index in vifs_with_index]
    checked = set()
    for vif, osvif, _config in prepared:
        if osvif.network.bridge not in checked:
            _check_bridge(osvif.network.bridge, vif['id'])
            checked.add(osvif.network.bridge)
    return prepared


def _server_lock(instance):
    """Serialize the wiring of one server within this service."""
    return lockutils.lock('nova-docker-vifs-%s' % instance.uuid)


def plug_vifs(instance, network_info, sandbox_id):
    """Wire every VIF into the sandbox container *sandbox_id* as eth0, ...

    Idempotent: a port already wired into this sandbox, with its OVS row,
    is kept as it is; only what is missing is made (a new sandbox gets all
    of it). Also brings ``lo`` up. On failure what this call made is
    removed before the error propagates; what it kept stays.
    """
    prepared = _prepare([(vif, i) for i, vif in enumerate(network_info)])
    with _server_lock(instance):
        made = []
        try:
            # Every port's OVS row in one read: a restart keeps them all.
            states = _ovs_port_states([(osvif, vif['id'])
                                       for vif, osvif, _c in prepared],
                                      _host_of(instance))
            for vif, osvif, config in prepared:
                if _ensure(instance, vif, osvif, config, sandbox_id,
                           config.name, states[vif['id']]):
                    made.append((vif, osvif))
            if not prepared:
                with _step({'id': '(loopback)'}, 'bringing lo up'):
                    netdev.set_loopback_up(sandbox_id, _host_of(instance))
        except Exception:
            with excutils.save_and_reraise_exception():
                # The failing port cleaned up after itself (_ensure).
                for vif, osvif in reversed(made):
                    _remove(instance, vif, osvif, sandbox_id)


def plug_vif(instance, vif, sandbox_id):
    """Attach one more VIF to the sandbox as the lowest free ethN.

    With *sandbox_id* None (a stopped server) the VIF is only validated:
    it is wired, with the others, at the next start.
    """
    ((vif, osvif, config),) = _prepare([(vif, 0)])
    if sandbox_id is None:
        return
    with _server_lock(instance):
        _ensure(instance, vif, osvif, config, sandbox_id, None)


def unplug_vif(instance, vif, sandbox_id=None):
    """Remove the OVS port, hybrid bridge and veth of one VIF.

    With *sandbox_id* the port's device inside that sandbox goes too;
    other ports' devices are never touched.
    """
    load()
    try:
        osvif = _to_osvif(vif)
    except exception.UnsupportedVifType:
        LOG.debug('Port %s was never plugged: unsupported type', vif['id'],
                  instance=instance)
        return
    with _server_lock(instance):
        _remove(instance, vif, osvif, sandbox_id)


def unplug_vifs(instance, network_info, sandbox_id=None):
    """Remove the OVS ports, hybrid bridges and veths of all VIFs.

    *sandbox_id* is the sandbox container, when it still runs.
    """
    for vif in network_info or []:
        unplug_vif(instance, vif, sandbox_id)


def _link_of_other_host(instance_uuid, host):
    """Whether another compute host may own this instance's link.

    True when a container of another host has the instance, or when no
    container of this engine has it but the namespace the link names is
    alive: a server of a compute host on another engine.
    """
    hosts = docker_engine.Engine(host).hosts_of(instance_uuid)
    if hosts:
        return hosts != {host}
    target = netns.link_target(instance_uuid)
    return bool(target) and os.path.exists(target)


def remove_orphans(host, live_instance_uuids):
    """Remove this host's ports and namespace links of vanished servers.

    An OVS interface marked ``nova-docker-host=<host>`` whose vm-uuid is not
    in *live_instance_uuids* loses its OVS port and its host devices (only
    those not wired into a live namespace: remove orphan containers first).
    A namespace link ``nova-<uuid>`` of an instance not in the list is
    removed unless a container of another host has that instance. Returns
    {'ports': [...], 'links': [...]} of what was removed. Never raises for
    one item: failures are logged.
    """
    live = set(live_instance_uuids)
    removed = {'ports': [], 'links': []}
    try:
        rows = ovsdb.interfaces_marked(OVS_HOST_KEY, host)
    except Exception as e:
        LOG.error('Cannot list the OVS ports of host %(host)s to remove '
                  'orphans: %(err)s', {'host': host, 'err': e})
        rows = []
    for row in rows:
        ids = row['external_ids']
        if ids.get('vm-uuid') in live:
            continue
        try:
            ovsdb.del_port(row['name'])
            netdev.remove_port_devices(ids.get('iface-id'))
            removed['ports'].append(row['name'])
        except Exception as e:
            LOG.error('Cannot remove orphan OVS port %(port)s of instance '
                      '%(uuid)s: %(err)s; remove it with "ovs-vsctl '
                      'del-port %(port)s"', {'port': row['name'],
                                             'uuid': ids.get('vm-uuid'),
                                             'err': e})
    for name in _link_names():
        uuid = name[len('nova-'):]
        if uuid in live:
            continue
        try:
            if _link_of_other_host(uuid, host):
                continue
            netns.remove_link(uuid)
            removed['links'].append(name)
        except Exception as e:
            LOG.error('Cannot remove orphan namespace link %(name)s: '
                      '%(err)s', {'name': name, 'err': e})
    if removed['ports'] or removed['links']:
        LOG.info('Removed orphans of host %(host)s: OVS ports %(ports)s, '
                 'namespace links %(links)s',
                 {'host': host, 'ports': removed['ports'],
                  'links': removed['links']})
    return removed


def _link_names():
    try:
        entries = os.listdir(netns.NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if e.startswith('nova-') and
                  netns.is_instance_uuid(e[len('nova-'):]))
