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

"""Interactive serial consoles: one TCP endpoint per server, for Nova.

Nova's serial console contract: the driver names a TCP endpoint
(``ConsoleSerial(host, port)``); nova-serialproxy connects to it and
bridges it to the user's websocket, after asking the driver again and
checking it still names the same port. Here each server gets a listener
on ``[serial_console] proxyclient_address`` with a port from
``[serial_console] port_range``. The port is recorded in a file under
``$state_path/docker-serial-consoles`` so it stays the server's across
stops and nova-compute restarts; the listener itself is opened when Nova
asks for the console and closed when the server stops or goes. A
connection is bridged to the workload's tty through the engine's attach
API (stdin and output, raw since the workload has a tty).

Only connections from ``[docker] serial_console_proxy_addresses`` (the
proxy's hosts) are served; any other is closed at once. One session at a
time: a second connection gets a line saying so and is closed. A session
with no byte either way for ``[docker] serial_console_idle_timeout``
seconds is closed. The listeners of running servers that had a console
are opened again when nova-compute starts.
"""

import ipaddress
import os
import select
import socket
import threading

from nova import exception as nova_exception
from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import netns

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

BUSY = b'\r\nnova-docker: another console session is attached to this ' \
       b'server; only one at a time. Close it and try again.\r\n'
IDLE = b'\r\nnova-docker: console session closed after %d idle seconds.' \
       b'\r\n'
_CHUNK = 65536


def state_dir():
    return os.path.join(CONF.state_path, 'docker-serial-consoles')


def _record(instance_uuid):
    if not netns.is_instance_uuid(instance_uuid):
        raise nova_exception.ConsoleNotAvailable()
    return os.path.join(state_dir(), instance_uuid)


def recorded_port(instance_uuid):
    """The server's recorded console port, or None."""
    try:
        with open(_record(instance_uuid)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _recorded_ports():
    try:
        names = os.listdir(state_dir())
    except OSError:
        return {}
    return {name: recorded_port(name) for name in names
            if netns.is_instance_uuid(name)}


def _save_port(instance_uuid, port):
    os.makedirs(state_dir(), mode=0o700, exist_ok=True)
    path = _record(instance_uuid)
    with open(path + '.tmp', 'w') as f:
        f.write('%d\n' % port)
    os.rename(path + '.tmp', path)


def forget(instance_uuid):
    """Drop the server's recorded port (the server is gone)."""
    try:
        os.unlink(_record(instance_uuid))
    except OSError:
        pass


def recorded_servers():
    """uuids of the servers with a recorded console port."""
    return set(_recorded_ports())


def forget_orphans(live_uuids):
    """Drop the records of servers no longer on this host."""
    live = set(live_uuids)
    for uuid in recorded_servers() - live:
        forget(uuid)


def port_range():
    start, stop = (int(p) for p in CONF.serial_console.port_range.split(':'))
    if start >= stop:
        raise nova_exception.ConsoleTypeUnavailable(console_type='serial')
    return start, stop


def listen_address():
    """[serial_console] proxyclient_address; never a wildcard address.

    A wildcard would put every server's console on every address of the
    host, including those tenant networks reach.
    """
    address = CONF.serial_console.proxyclient_address
    try:
        if ipaddress.ip_address(address).is_unspecified:
            LOG.error('[serial_console] proxyclient_address %s listens on '
                      'every address of the host, including those tenant '
                      'networks reach: set the address nova-serialproxy '
                      'reaches this host on', address)
            raise nova_exception.ConsoleTypeUnavailable(
                console_type='serial')
    except ValueError:
        pass  # A host name: resolved by bind.
    return address


def proxy_allowed(peer):
    """Whether *peer* is an address nova-serialproxy connects from."""
    try:
        peer = ipaddress.ip_address(peer.split('%')[0])
    except ValueError:
        return False
    if getattr(peer, 'ipv4_mapped', None):
        peer = peer.ipv4_mapped
    for allowed in CONF.docker.serial_console_proxy_addresses:
        try:
            if peer in ipaddress.ip_network(allowed.strip(), strict=False):
                return True
        except ValueError:
            LOG.error('Ignoring %r in [docker] '
                      'serial_console_proxy_addresses: not an address',
                      allowed)
    return False


def _bind(address, port):
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
        sock.listen(2)
    except OSError:
        sock.close()
        raise
    return sock


class Endpoint:
    """The listener of one server and its one session."""

    def __init__(self, instance_uuid, sock, port, attach):
        self.uuid = instance_uuid
        self.port = port
        self._sock = sock
        self._attach = attach
        self._busy = threading.Lock()
        self._closed = threading.Event()
        self._sessions = []
        threading.Thread(target=self._serve, daemon=True,
                         name='nova-docker-console-%s' % port).start()

    def close(self):
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for conn in list(self._sessions):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def open(self):
        return not self._closed.is_set()

    def _serve(self):
        while not self._closed.is_set():
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return
            if not proxy_allowed(peer[0]):
                LOG.warning('Console connection from %(peer)s refused: not '
                            'in [docker] serial_console_proxy_addresses '
                            '(server %(uuid)s)',
                            {'peer': peer[0], 'uuid': self.uuid})
                conn.close()
                continue
            if not self._busy.acquire(blocking=False):
                LOG.info('Refused a second console session from %s',
                         peer[0])
                self._refuse(conn)
                continue
            threading.Thread(target=self._session, args=(conn,),
                             daemon=True).start()

    @staticmethod
    def _refuse(conn):
        try:
            conn.sendall(BUSY)
        except OSError:
            pass
        conn.close()

    def _session(self, conn):
        self._sessions.append(conn)
        try:
            with self._attach() as tty:
                bridge(conn, tty, CONF.docker.serial_console_idle_timeout)
        except Exception as e:
            LOG.warning('Console session of server %(uuid)s ended: %(e)s',
                        {'uuid': self.uuid, 'e': e})
        finally:
            self._sessions.remove(conn)
            conn.close()
            self._busy.release()


def bridge(conn, tty, idle):
    """Copy bytes both ways until either side closes or *idle* passes."""
    tty.settimeout(None)
    conn.settimeout(None)
    ends = {conn: tty, tty: conn}
    while True:
        ready, _, _ = select.select(list(ends), [], [], idle or None)
        if not ready:
            conn.sendall(IDLE % idle)
            return
        for source in ready:
            data = source.recv(_CHUNK)
            if not data:
                return
            ends[source].sendall(data)


class Consoles:
    """Every console endpoint of this nova-compute service."""

    def __init__(self):
        self._lock = threading.Lock()
        self._open = {}

    def endpoint(self, instance_uuid, attach):
        """The server's open endpoint: (address, port); open it if needed.

        *attach* is a context manager factory yielding a socket to the
        workload's tty.
        """
        address = listen_address()
        with self._lock:
            found = self._open.get(instance_uuid)
            if found is not None and found.open:
                return address, found.port
            sock, port = self._listen(instance_uuid, address)
            self._open[instance_uuid] = Endpoint(instance_uuid, sock, port,
                                                 attach)
            LOG.info('Serial console of server %(uuid)s on %(a)s:%(p)d',
                     {'uuid': instance_uuid, 'a': address, 'p': port})
            return address, port

    def _listen(self, instance_uuid, address):
        start, stop = port_range()
        wanted = recorded_port(instance_uuid)
        if wanted is not None and start <= wanted < stop:
            try:
                return _bind(address, wanted), wanted
            except OSError as e:
                LOG.warning('Console port %(p)d of server %(uuid)s is taken '
                            '(%(e)s); choosing another',
                            {'p': wanted, 'uuid': instance_uuid, 'e': e})
        taken = {p for uuid, p in _recorded_ports().items()
                 if uuid != instance_uuid}
        for port in range(start, stop):
            if port in taken:
                continue
            try:
                sock = _bind(address, port)
            except OSError:
                continue
            _save_port(instance_uuid, port)
            return sock, port
        raise nova_exception.ConsolePortRangeExhausted(min_port=start,
                                                       max_port=stop)

    def close(self, instance_uuid):
        """Stop listening for the server (stop, delete); idempotent."""
        with self._lock:
            found = self._open.pop(instance_uuid, None)
        if found is not None:
            found.close()
            LOG.info('Serial console of server %s closed', instance_uuid)

    def close_all(self):
        for uuid in list(self._open):
            self.close(uuid)
