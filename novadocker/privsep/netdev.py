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

"""Network device operations of the privsep daemon, one narrow function each.

Every entrypoint validates its arguments again on the privileged side: host
devices must carry one of the prefixes nova-docker creates, devices inside a
sandbox are named ethN, and a pid must own a network namespace other than
the host's, so a confused caller cannot rename or delete host interfaces.
"""

import contextlib
import errno
import os
import re

from pyroute2 import IPRoute
from pyroute2.netlink import exceptions as netlink_exceptions
from pyroute2 import netns as pyroute2_netns

from novadocker import privsep

IFA_F_NODAD = 0x02
_HOST_DEV_RE = re.compile(r'^(tap|nic|nsp|qbr|qvb|qvo)[0-9A-Za-z_.-]{1,12}$')
_GUEST_DEV_RE = re.compile(r'^eth[0-9]{1,4}$')
_MAX_IFNAME = 15


def _check_host_dev(dev):
    if (not isinstance(dev, str) or len(dev) > _MAX_IFNAME or
            not _HOST_DEV_RE.match(dev)):
        msg = ('refusing host device name %r: nova-docker only touches '
               'tap*, nic*, nsp*, qbr*, qvb* and qvo* devices' % (dev,))
        raise ValueError(msg)


def _check_guest_dev(name):
    if not isinstance(name, str) or not _GUEST_DEV_RE.match(name):
        msg = 'refusing sandbox device name %r: expected ethN' % (name,)
        raise ValueError(msg)


def _open_namespace(pid):
    """Open the network namespace of *pid*, refusing the host's own."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        msg = 'refusing pid %r: not a sandbox process' % (pid,)
        raise ValueError(msg)
    path = '/proc/%d/ns/net' % pid
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ProcessLookupError(
            errno.ESRCH, 'no process %d: the sandbox container is not '
            'running' % pid)
    except PermissionError:
        raise PermissionError(
            errno.EACCES, 'cannot open the network namespace of pid %d: the '
            'sandbox container must run with all capabilities dropped '
            '(cap_drop ALL), since the privsep daemon holds only '
            'CAP_NET_ADMIN and CAP_SYS_ADMIN' % pid)
    if os.fstat(fd).st_ino == os.stat('/proc/self/ns/net').st_ino:
        os.close(fd)
        msg = ('refusing pid %d: it runs in the host network namespace, '
               'not in a sandbox' % pid)
        raise ValueError(msg)
    return fd


@contextlib.contextmanager
def _inside(pid):
    """Yield an IPRoute bound to the namespace of *pid*.

    setns() moves only the calling thread; the netlink socket keeps the
    namespace it was created in, and the thread returns home before the
    block runs, so nothing else in the daemon ever runs in the sandbox.
    Sysctl files are opened in the namespace too, see _write_sysctls.
    """
    target = _open_namespace(pid)
    home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        pyroute2_netns.setns(target, flags=0)
        try:
            ipr = IPRoute()
        finally:
            pyroute2_netns.setns(home, flags=0)
    finally:
        os.close(home)
        os.close(target)
    with ipr:
        yield ipr


def _write_sysctls(pid, values):
    """Write {path under /proc/sys/net: value} inside the namespace of pid."""
    target = _open_namespace(pid)
    home = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        pyroute2_netns.setns(target, flags=0)
        try:
            for path, value in values.items():
                with open('/proc/sys/net/' + path, 'w') as f:
                    f.write(value)
        finally:
            pyroute2_netns.setns(home, flags=0)
    finally:
        os.close(home)
        os.close(target)


def _index(ipr, dev):
    found = ipr.link_lookup(ifname=dev)
    return found[0] if found else None


def _delete_if_present(ipr, dev):
    index = _index(ipr, dev)
    if index is None:
        return
    try:
        ipr.link('del', index=index)
    except netlink_exceptions.NetlinkError as e:
        # Deleting one end of a veth removes its peer: it may be gone.
        if e.code != errno.ENODEV:
            raise


@privsep.netns_admin.entrypoint
def create_veth_pair(host_dev, peer_dev, mtu):
    """Create a veth pair with *mtu* on both ends; the host end is up.

    Devices left over with either name are deleted first.
    """
    _check_host_dev(host_dev)
    _check_host_dev(peer_dev)
    with IPRoute() as ipr:
        for dev in (host_dev, peer_dev):
            _delete_if_present(ipr, dev)
        ipr.link('add', ifname=host_dev, kind='veth',
                 peer={'ifname': peer_dev})
        for dev in (host_dev, peer_dev):
            ipr.link('set', index=_index(ipr, dev), mtu=int(mtu))
        ipr.link('set', index=_index(ipr, host_dev), state='up')


@privsep.netns_admin.entrypoint
def delete_device(dev):
    """Delete the host device *dev*; a missing device is not an error."""
    _check_host_dev(dev)
    with IPRoute() as ipr:
        _delete_if_present(ipr, dev)


@privsep.netns_admin.entrypoint
def add_to_bridge(dev, bridge):
    """Make host device *dev* a port of the Linux bridge *bridge*."""
    _check_host_dev(dev)
    _check_host_dev(bridge)
    with IPRoute() as ipr:
        master = _index(ipr, bridge)
        if master is None:
            msg = 'Linux bridge %s does not exist' % bridge
            raise ValueError(msg)
        ipr.link('set', index=_index(ipr, dev), master=master)


@privsep.netns_admin.entrypoint
def move_into_namespace(dev, pid, new_name):
    """Move host device *dev* into the namespace of *pid* as *new_name*.

    A device already called *new_name* (or *dev*) in that namespace is a
    leftover of an earlier plug and is deleted first.
    """
    _check_host_dev(dev)
    _check_guest_dev(new_name)
    with _inside(pid) as ns:
        for stale in (new_name, dev):
            _delete_if_present(ns, stale)
    with IPRoute() as ipr:
        index = _index(ipr, dev)
        if index is None:
            msg = 'host device %s does not exist' % dev
            raise ValueError(msg)
        ipr.link('set', index=index, net_ns_pid=pid)
    with _inside(pid) as ns:
        ns.link('set', index=_index(ns, dev), ifname=new_name)


@privsep.netns_admin.entrypoint
def configure_interface(pid, name, mac, mtu, addresses, routes):
    """Configure device *name* inside the namespace of *pid* and bring it up.

    *addresses* is a list of [address, prefixlen]; *routes* a list of
    [destination cidr, gateway]. Default routes (0.0.0.0/0, ::/0) are added
    only where the namespace has none yet, so the first interface that
    carries a gateway keeps the default route when more are attached.
    Returns the default routes that were skipped for that reason.
    """
    _check_guest_dev(name)
    if any(':' in address for address, _prefix in addresses):
        # Docker disables IPv6 in namespaces it creates without a network.
        _write_sysctls(pid, {'ipv6/conf/%s/disable_ipv6' % name: '0'})
    skipped = []
    with _inside(pid) as ns:
        index = _index(ns, name)
        if index is None:
            msg = 'no device %s in the namespace of pid %d' % (name, pid)
            raise ValueError(msg)
        ns.link('set', index=index, state='down')
        ns.link('set', index=index, address=mac, mtu=int(mtu))
        ns.link('set', index=index, state='up')
        for address, prefix in addresses:
            _add_address(ns, index, address, int(prefix))
        for dst, gateway in routes:
            if not _add_route(ns, index, dst, gateway):
                skipped.append([dst, gateway])
    return skipped


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


@privsep.netns_admin.entrypoint
def set_loopback_up(pid):
    """Bring up lo inside the namespace of *pid*."""
    with _inside(pid) as ns:
        ns.link('set', index=_index(ns, 'lo'), state='up')
