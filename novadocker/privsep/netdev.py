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

"""Network device operations of the privsep daemon: one round trip a port.

Every entrypoint is bound to one server. The caller names the sandbox
*container* (its full engine id), the compute host and the Neutron port id;
the privileged side does the rest itself and trusts nothing else it is
given:

* the sandbox is looked up on the engine: it must run and carry this
  driver's sandbox labels for that host; its pid must belong to that
  container (its cgroup names the container id) and must still be the same
  process once its network namespace is open (a pidfd held across the
  open). From then on everything acts through that namespace file
  descriptor, never through the pid again. The host's own namespace and
  pid 1 are refused;
* host device names are derived from the port id (``tap``/``qbr``/``qvb``/
  ``qvo`` + its first 11 characters, as Nova and os-vif name them); the
  device inside the sandbox carries the port id as its alias, so a port's
  device is found by what it is, not by a name another port could hold;
* a host device whose veth peer lives in another namespace is never
  touched.
"""

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import select
import socket
import struct
import threading
import time

import docker
from pyroute2 import IPRoute
from pyroute2.netlink import exceptions as netlink_exceptions
from pyroute2 import netns as pyroute2_netns

import novadocker.conf
from novadocker import privsep

CONF = novadocker.conf.CONF

IFA_F_NODAD = 0x02
SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM = 0x16
ETHTOOL_STXCSUM = 0x17
NIC_NAME_LEN = 14
HOST_PREFIXES = ('tap', 'qbr', 'qvb', 'qvo')
LABEL_ROLE = 'org.openstack.nova.role'
LABEL_HOST = 'org.openstack.nova.host'
ROLE_SANDBOX = 'sandbox'

_PORT_ID_RE = re.compile(
    r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z')
_CONTAINER_ID_RE = re.compile(r'^[0-9a-f]{64}\Z')
_GUEST_DEV_RE = re.compile(r'^eth[0-9]{1,4}\Z')
_MAC_RE = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z')
_MAX_GUEST_DEVICES = 10000
# Seconds a plug waits for a killed sandbox's namespace to go away.
_DYING_NAMESPACE_WAIT = 10.0


class _NamedLocks(object):
    """One lock per name, made on first use and dropped when unused.

    The daemon serves several requests at once (its thread pool): a lock
    per sandbox and per port serialises only the requests that touch the
    same namespace or the same host devices, so wiring one server never
    waits for another's.
    """

    def __init__(self):
        self._guard = threading.Lock()
        self._locks = {}

    @contextlib.contextmanager
    def hold(self, *names):
        """Hold the locks of *names*, taken in the order given."""
        entries = []
        with self._guard:
            for name in names:
                entry = self._locks.setdefault(name, [threading.Lock(), 0])
                entry[1] += 1
                entries.append((name, entry))
        try:
            with contextlib.ExitStack() as stack:
                for _name, entry in entries:
                    stack.enter_context(entry[0])
                yield
        finally:
            with self._guard:
                for name, entry in entries:
                    entry[1] -= 1
                    if not entry[1]:
                        del self._locks[name]


# The choice of a free ethN and the checks of what exists must not
# interleave with another request on the same sandbox, nor two requests
# on one port's host devices. Always the sandbox first, then the port.
_locks = _NamedLocks()


def _sandbox_and_port(sandbox_id, port_id):
    return _locks.hold(('sandbox', sandbox_id), ('port', port_id))


def _port(port_id):
    return _locks.hold(('port', port_id))


class Refused(Exception):
    """The request is not for a sandbox of this driver, or not allowed."""


def host_device_names(port_id):
    """{prefix: device name} of the host devices of *port_id*.

    Nova names a port's device ``tap`` + the first 11 characters of the port
    id, and os-vif its hybrid bridge and veth ``qbr``/``qvb``/``qvo`` alike.
    """
    check_port_id(port_id)
    return {prefix: (prefix + port_id)[:NIC_NAME_LEN]
            for prefix in HOST_PREFIXES}


def check_port_id(port_id):
    if not isinstance(port_id, str) or not _PORT_ID_RE.match(port_id):
        msg = ('refusing port id %r: a Neutron port id is a '
               'lowercase uuid' % (port_id,))
        raise Refused(msg)


def _check_container_id(sandbox_id):
    if not isinstance(sandbox_id, str) or not _CONTAINER_ID_RE.match(
            sandbox_id):
        msg = ('refusing container id %r: the full 64-digit id of a '
               'sandbox container is expected' % (sandbox_id,))
        raise Refused(msg)


def _check_guest_dev(name):
    if not isinstance(name, str) or not _GUEST_DEV_RE.match(name):
        msg = ('refusing sandbox device name %r: expected ethN'
               % (name,))
        raise Refused(msg)


# -- the sandbox ------------------------------------------------------------

class _Engine(object):
    """The daemon's own view of the engine: one question, one answer.

    The engine is the one the [docker] options name; an "auto" API
    version is negotiated once per daemon. Nothing of the driver's engine
    client is used: the privileged side depends on no driver module.
    """

    version = None

    @classmethod
    def inspect_container(cls, container_id):
        conf = CONF.docker
        version = conf.api_version
        if version == 'auto':
            version = cls.version or 'auto'
        api = docker.APIClient(base_url=conf.api_url, version=version,
                               timeout=conf.api_timeout)
        try:
            cls.version = api.api_version
            return api.inspect_container(container_id)
        finally:
            api.close()


def _inspect_sandbox(sandbox_id, host):
    """The pid of the running sandbox container *sandbox_id* of *host*."""
    try:
        info = _Engine.inspect_container(sandbox_id)
    except Exception as e:
        msg = ('container %s cannot be inspected: %s'
               % (sandbox_id, e))
        raise Refused(msg) from e
    labels = (info.get('Config') or {}).get('Labels') or {}
    if info.get('Id') != sandbox_id:
        msg = ('container %s is not named by its full id'
               % sandbox_id)
        raise Refused(msg)
    if labels.get(LABEL_ROLE) != ROLE_SANDBOX or \
            labels.get(LABEL_HOST) != host:
        msg = ('container %s is not a nova-docker sandbox of host '
               '%r' % (sandbox_id, host))
        raise Refused(msg)
    state = info.get('State') or {}
    pid = state.get('Pid')
    if not state.get('Running') or not isinstance(pid, int) or pid <= 1:
        msg = ('sandbox %s is not running (pid %r)'
               % (sandbox_id, pid))
        raise Refused(msg)
    return pid


def _in_container(pid, sandbox_id):
    """Whether the cgroups of *pid* name the container *sandbox_id*."""
    try:
        with open('/proc/%d/cgroup' % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        path = line.split(':', 2)[-1]
        parts = path.split('/')
        if sandbox_id in parts or ('docker-%s.scope' % sandbox_id) in parts:
            return True
    return False


def _same_inode(fd, path):
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except OSError:
        return False


def _open_sandbox_namespace(sandbox_id, host):
    """Open the network namespace of the sandbox: a file descriptor."""
    _check_container_id(sandbox_id)
    pid = _inspect_sandbox(sandbox_id, host)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as e:
        msg = 'sandbox %s: pid %d is gone' % (sandbox_id, pid)
        raise Refused(msg) from e
    try:
        if not _in_container(pid, sandbox_id):
            msg = ('pid %d does not belong to container %s'
                   % (pid, sandbox_id))
            raise Refused(msg)
        try:
            nsfd = os.open('/proc/%d/ns/net' % pid, os.O_RDONLY)
        except PermissionError as e:
            msg = ('cannot open the network namespace of sandbox %s: it '
                   'must run with all capabilities dropped (cap_drop ALL), '
                   'since the privsep daemon holds only CAP_NET_ADMIN and '
                   'CAP_SYS_ADMIN' % sandbox_id)
            raise Refused(msg) from e
        except OSError as e:
            msg = 'sandbox %s: pid %d is gone' % (sandbox_id, pid)
            raise Refused(msg) from e
        # A pidfd turns readable when its process exits: if it has not, the
        # namespace opened is the one of the process that was checked.
        if select.select([pidfd], [], [], 0)[0]:
            os.close(nsfd)
            msg = ('sandbox %s: pid %d exited while being checked'
                   % (sandbox_id, pid))
            raise Refused(msg)
    finally:
        os.close(pidfd)
    if _same_inode(nsfd, '/proc/1/ns/net') or \
            _same_inode(nsfd, '/proc/self/ns/net'):
        os.close(nsfd)
        msg = ('sandbox %s runs in the host network namespace'
               % sandbox_id)
        raise Refused(msg)
    return nsfd


@contextlib.contextmanager
def _sandbox(sandbox_id, host):
    nsfd = _open_sandbox_namespace(sandbox_id, host)
    try:
        yield nsfd
    finally:
        os.close(nsfd)


@contextlib.contextmanager
def _entered(nsfd):
    """Run the block with this thread inside the namespace *nsfd*."""
    home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        pyroute2_netns.setns(nsfd, flags=0)
        try:
            yield
        finally:
            pyroute2_netns.setns(home, flags=0)
    finally:
        os.close(home)


@contextlib.contextmanager
def _namespace_sockets(nsfd):
    """(IPRoute, UDP socket) bound to the namespace *nsfd*.

    A socket keeps the namespace it was created in; the thread returns home
    before the block runs, so nothing else runs inside the sandbox.
    """
    with _entered(nsfd):
        ipr = IPRoute()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with ipr:
            yield ipr, sock
    finally:
        sock.close()


# -- devices ----------------------------------------------------------------

def _ethtool(sock, dev, cmd, data=0):
    buf = ctypes.create_string_buffer(struct.pack('II', cmd, data))
    ifreq = struct.pack('16sP', dev.encode(), ctypes.addressof(buf))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack('II', buf.raw[:8])[1]


def tx_checksumming(sock, dev):
    """Whether TX checksum offload is on for *dev* (in *sock*'s netns)."""
    return bool(_ethtool(sock, dev, ETHTOOL_GTXCSUM))


def _tx_checksumming_off(sock, dev):
    # The userspace (netdev) datapath forwards a partially checksummed TCP
    # or UDP segment as it is and the receiver drops it: veths must
    # checksum in software. (The kernel datapath would not need it.)
    if tx_checksumming(sock, dev):
        _ethtool(sock, dev, ETHTOOL_STXCSUM, 0)


def _link(ipr, index=None, ifname=None):
    try:
        if index is not None:
            links = ipr.get_links(index)
        else:
            links = ipr.get_links(ifname=ifname)
    except netlink_exceptions.NetlinkError as e:
        if e.code in (errno.ENODEV, errno.EINVAL):
            return None
        raise
    return links[0] if links else None


def _kind(link):
    info = link.get_attr('IFLA_LINKINFO')
    return info.get_attr('IFLA_INFO_KIND') if info else None


def _delete(ipr, index):
    try:
        ipr.link('del', index=index)
    except netlink_exceptions.NetlinkError as e:
        # Deleting one end of a veth removes its peer: it may be gone.
        if e.code != errno.ENODEV:
            raise


def _guest_of(ns, port_id):
    """The device inside the sandbox whose alias is *port_id*, or None."""
    for link in ns.get_links():
        if link.get_attr('IFLA_IFALIAS') == port_id:
            return link
    return None


def _nsid(ipr, nsfd):
    found = ipr.get_netnsid(fd=nsfd) or {}
    nsid = found.get('nsid')
    return None if nsid is None or nsid < 0 else nsid


def _peer_place(ipr, tap, nsfd):
    """'host', 'sandbox' (the one of *nsfd*) or 'other' for veth *tap*."""
    peer_nsid = tap.get_attr('IFLA_LINK_NETNSID')
    if peer_nsid is None:
        return 'host'
    if nsfd is not None and peer_nsid == _nsid(ipr, nsfd):
        return 'sandbox'
    return 'other'


def _paired(ipr, ns, nsfd, tap, guest):
    return (tap is not None and guest is not None and
            _kind(tap) == 'veth' and
            _peer_place(ipr, tap, nsfd) == 'sandbox' and
            tap.get_attr('IFLA_LINK') == guest['index'] and
            guest.get_attr('IFLA_LINK') == tap['index'])


def _free_name(ns, preferred):
    taken = {link.get_attr('IFLA_IFNAME') for link in ns.get_links()}
    if preferred and preferred not in taken:
        return preferred
    for i in range(_MAX_GUEST_DEVICES):
        if 'eth%d' % i not in taken:
            return 'eth%d' % i
    msg = 'no free ethN name left in the sandbox'
    raise Refused(msg)


def _outlive_dying_namespace(ipr, tap, nsfd):
    """The tap, or None once the namespace its peer was in has gone.

    A sandbox killed just before (a host boot, an engine restart) leaves a
    namespace the kernel tears down asynchronously, taking the veth with
    it: give that a few seconds before calling the namespace a live one.
    """
    name = tap.get_attr('IFLA_IFNAME')
    deadline = time.monotonic() + _DYING_NAMESPACE_WAIT
    while tap is not None and _peer_place(ipr, tap, nsfd) == 'other':
        if time.monotonic() > deadline:
            return tap
        time.sleep(0.2)
        tap = _link(ipr, ifname=name)
    return tap


def _clear_half_made(ipr, ns, nsfd, tap, port_id):
    """Remove what an interrupted plug of *port_id* left in this sandbox."""
    if tap is not None and _peer_place(ipr, tap, nsfd) == 'other':
        tap = _outlive_dying_namespace(ipr, tap, nsfd)
    if tap is not None:
        if _peer_place(ipr, tap, nsfd) == 'other':
            msg = ('port %s is wired into another namespace (host '
                   'device %s); unplug it there first'
                   % (port_id, tap.get_attr('IFLA_IFNAME')))
            raise Refused(msg)
        _delete(ipr, tap['index'])
    guest = _guest_of(ns, port_id)
    if guest is not None:
        _delete(ns, guest['index'])


def _write_sysctls(nsfd, values):
    """Write {path under /proc/sys/net: value} inside the namespace."""
    with _entered(nsfd):
        for path, value in values.items():
            with open('/proc/sys/net/' + path, 'w') as f:
                f.write(value)


def _add_address(ns, index, address, prefix):
    # No duplicate address detection: the port's address is Neutron's to
    # give, and an IPv6 address in DAD would be unusable for a second.
    flags = IFA_F_NODAD if ':' in address else 0
    try:
        ns.addr('add', index=index, address=address, prefixlen=prefix,
                flags=flags)
    except netlink_exceptions.NetlinkError as e:
        if e.code != errno.EEXIST:
            raise


def _add_route(ns, index, dst, gateway):
    """Add a route; False when a default route is already there."""
    if dst in ('0.0.0.0/0', '::/0'):
        try:
            ns.route('add', dst=dst, gateway=gateway, oif=index)
        except netlink_exceptions.NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
            return False
        return True
    ns.route('replace', dst=dst, gateway=gateway, oif=index)
    return True


def _check_config(mac, mtu, addresses, routes):
    if not isinstance(mac, str) or not _MAC_RE.match(mac.lower()):
        msg = 'refusing MAC address %r' % (mac,)
        raise Refused(msg)
    if isinstance(mtu, bool) or not isinstance(mtu, int) or \
            not 68 <= mtu <= 65535:
        msg = 'refusing MTU %r' % (mtu,)
        raise Refused(msg)
    for item in list(addresses) + list(routes):
        if len(item) != 2:
            msg = 'refusing address or route %r' % (item,)
            raise Refused(msg)


def _configure_guest(ns, sock, nsfd, guest, mac, mtu, addresses, routes):
    index = guest['index']
    name = guest.get_attr('IFLA_IFNAME')
    if any(':' in address for address, _prefix in addresses):
        # Docker disables IPv6 in namespaces it creates without a network.
        _write_sysctls(nsfd, {'ipv6/conf/%s/disable_ipv6' % name: '0'})
    if guest.get_attr('IFLA_ADDRESS') != mac.lower():
        ns.link('set', index=index, state='down')
        ns.link('set', index=index, address=mac)
    if guest.get_attr('IFLA_MTU') != mtu:
        ns.link('set', index=index, mtu=mtu)
    _tx_checksumming_off(sock, name)
    ns.link('set', index=index, state='up')
    for address, prefix in addresses:
        _add_address(ns, index, str(address), int(prefix))
    skipped = []
    for dst, gateway in routes:
        if not _add_route(ns, index, str(dst), str(gateway)):
            skipped.append([dst, gateway])
    lo = ns.link_lookup(ifname='lo')
    if lo:
        ns.link('set', index=lo[0], state='up')
    return skipped


def _configure_host_end(ipr, sock, tap, mtu, hybrid):
    index = tap['index']
    name = tap.get_attr('IFLA_IFNAME')
    if tap.get_attr('IFLA_MTU') != mtu:
        ipr.link('set', index=index, mtu=mtu)
    _tx_checksumming_off(sock, name)
    if hybrid:
        bridge = _link(ipr, ifname=hybrid)
        if bridge is None or _kind(bridge) != 'bridge':
            msg = 'Linux bridge %s does not exist' % hybrid
            raise Refused(msg)
        if tap.get_attr('IFLA_MASTER') != bridge['index']:
            ipr.link('set', index=index, master=bridge['index'])
    ipr.link('set', index=index, state='up')


# -- entrypoints -------------------------------------------------------------

@privsep.netns_admin.entrypoint
def wire_port(sandbox_id, host, port_id, preferred_name, mac, mtu,
              addresses, routes, hybrid=False):
    """Wire port *port_id* into the sandbox; fill only what is missing.

    The host end is ``tap<port id>``, the sandbox end gets *preferred_name*
    if that name is free (else the lowest free ethN), the port id as its
    alias, *mac*, *mtu*, *addresses* ([address, prefixlen]) and *routes*
    ([cidr, gateway]); both ends have TX checksum offload off. With
    *hybrid*, the host end joins the port's ``qbr`` bridge. A pair that is
    already there and joined is kept as it is (same devices, same
    ifindex). Returns {'name', 'created', 'skipped_routes'}.
    """
    names = host_device_names(port_id)
    if preferred_name is not None:
        _check_guest_dev(preferred_name)
    _check_config(mac, mtu, addresses, routes)
    with _sandbox_and_port(sandbox_id, port_id), \
            _sandbox(sandbox_id, host) as nsfd, IPRoute() as ipr, \
            _namespace_sockets(nsfd) as (ns, ns_sock), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as host_sock:
        tap = _link(ipr, ifname=names['tap'])
        guest = _guest_of(ns, port_id)
        created = not _paired(ipr, ns, nsfd, tap, guest)
        if created:
            _clear_half_made(ipr, ns, nsfd, tap, port_id)
            name = _free_name(ns, preferred_name)
            ipr.link('add', ifname=names['tap'], kind='veth', mtu=mtu,
                     peer={'ifname': name, 'net_ns_fd': nsfd,
                           'address': mac.lower(), 'mtu': mtu})
            guest = _link(ns, ifname=name)
            ns.link('set', index=guest['index'], ifalias=port_id)
            tap = _link(ipr, ifname=names['tap'])
        guest = _link(ns, index=guest['index'])
        _configure_host_end(ipr, host_sock, tap, mtu,
                            names['qbr'] if hybrid else None)
        skipped = _configure_guest(ns, ns_sock, nsfd, guest, mac, mtu,
                                   addresses, routes)
        return {'name': guest.get_attr('IFLA_IFNAME'), 'created': created,
                'skipped_routes': skipped}


@privsep.netns_admin.entrypoint
def unwire_port(sandbox_id, host, port_id):
    """Remove the sandbox end of *port_id* (its host end goes with it).

    Then removes the host devices of the port that are not wired into
    another namespace (see remove_port_devices). Returns what was removed.
    """
    check_port_id(port_id)
    removed = []
    with _sandbox_and_port(sandbox_id, port_id), \
            _sandbox(sandbox_id, host) as nsfd, \
            _namespace_sockets(nsfd) as (ns, _sock):
        guest = _guest_of(ns, port_id)
        if guest is not None:
            _delete(ns, guest['index'])
            removed.append(guest.get_attr('IFLA_IFNAME'))
    with _port(port_id):
        return removed + _remove_host_devices(port_id)


@privsep.netns_admin.entrypoint
def remove_port_devices(port_id):
    """Remove the host devices of *port_id* whose sandbox is gone.

    Deletes ``tap``/``qvb`` (with its peer ``qvo``)/``qbr`` of the port,
    unless its ``tap`` is still wired into a live namespace: then nothing is
    touched, since only that sandbox's own unwire_port may cut it. Returns
    the devices removed.
    """
    check_port_id(port_id)
    with _port(port_id):
        return _remove_host_devices(port_id)


def _remove_host_devices(port_id):
    names = host_device_names(port_id)
    removed = []
    with IPRoute() as ipr:
        tap = _link(ipr, ifname=names['tap'])
        if tap is not None and _kind(tap) == 'veth' and \
                _peer_place(ipr, tap, None) != 'host':
            return removed
        for prefix, kind in (('tap', 'veth'), ('qvb', 'veth'),
                             ('qvo', 'veth'), ('qbr', 'bridge')):
            link = _link(ipr, ifname=names[prefix])
            if link is not None and _kind(link) == kind:
                _delete(ipr, link['index'])
                removed.append(names[prefix])
    return removed


@privsep.netns_admin.entrypoint
def set_loopback_up(sandbox_id, host):
    """Bring up lo inside the sandbox (a server without ports needs it)."""
    with _sandbox(sandbox_id, host) as nsfd, \
            _namespace_sockets(nsfd) as (ns, _sock):
        ns.link('set', index=ns.link_lookup(ifname='lo')[0], state='up')
