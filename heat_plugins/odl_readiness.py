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

"""Is an OpenDaylight cluster ready? Member signals, or bounded probes.

A member is ready when its RESTCONF readiness URL answers 2xx with basic
auth and its Jolokia ``akka:type=Cluster`` view says it is Up and sees every
member of the cluster, none unreachable.

By default the members check this themselves and signal Heat
(``SignalWaiter`` reads the signals a wait condition handle stored). In
polling mode, for clouds where heat-engine reaches the member networks,
``ReadinessPoller`` probes every member with exponential backoff until they
are all ready or the deadline passes. Those probes go to tenant-controlled
servers, so they are bounded: only the member's own address (never a
loopback, link-local, multicast or unspecified one) and the declared
RESTCONF port, no proxy, no redirect followed, at most ``MAX_BODY`` bytes
read and ``REQUEST_TIMEOUT`` seconds spent per request, whatever the server
does.

Pure Python (standard library only), no Heat imports: this module is loaded
by Heat as ``heat.engine.plugins.odl_readiness`` and has no resource mapping.
"""

import base64
import http.client
import ipaddress
import json
import re
import socket
import threading
import time

RESTCONF_READY_PATH = ('/restconf/operational/network-topology:'
                       'network-topology/topology/netvirt:1')
JOLOKIA_CLUSTER_PATH = '/jolokia/read/akka:type=Cluster'

#: Longest pause between two probe rounds, in seconds.
MAX_INTERVAL = 15.0
#: Longest single HTTP request, start to last byte, in seconds.
REQUEST_TIMEOUT = 5.0
#: Largest answer body read from a member, in bytes.
MAX_BODY = 65536

_AKKA_ADDRESS = re.compile(r'@(?:\[([^\]]+)\]|([^:/,\s\[]+)):(\d+)')


class MembersNotReady(Exception):
    """The cluster did not become ready before the readiness timeout."""

    msg_fmt = ('OpenDaylight cluster not ready after %(timeout)s s: '
               '%(reasons)s')

    def __init__(self, timeout, reasons):
        self.reasons = reasons
        super().__init__(self.msg_fmt % {'timeout': _fmt_seconds(timeout),
                                         'reasons': '; '.join(reasons)})


def _fmt_seconds(value):
    return ('%d' % value) if float(value).is_integer() else ('%.1f' % value)


def restconf_url(ip, port):
    """Return the RESTCONF readiness URL of the member at ``ip``."""
    return 'http://%s:%d%s' % (_host(ip), port, RESTCONF_READY_PATH)


def restconf_base_url(ip, port):
    """Return the RESTCONF root URL of the member at ``ip``."""
    return 'http://%s:%d/restconf' % (_host(ip), port)


def jolokia_url(ip, port):
    """Return the Jolokia URL of the Akka cluster view of a member."""
    return 'http://%s:%d%s' % (_host(ip), port, JOLOKIA_CLUSTER_PATH)


def _host(ip):
    return '[%s]' % ip if ':' in ip else ip


def akka_address_ips(text):
    """Return the hosts named in Akka addresses found in ``text``."""
    return [m.group(1) or m.group(2)
            for m in _AKKA_ADDRESS.finditer(text or '')]


class ProbeRefused(Exception):
    """A probe target or answer heat-engine will not deal with."""


def is_ip_address(text):
    """True when ``text`` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def refusal_for_address(ip):
    """Return why heat-engine must never probe ``ip``, or None."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return '%r is not an IP address' % (ip,)
    if addr.is_loopback:
        return '%s is a loopback address' % ip
    if addr.is_link_local:
        return ('%s is a link-local address (metadata services live '
                'there)' % ip)
    if addr.is_multicast or addr.is_unspecified:
        return '%s is a multicast or unspecified address' % ip
    if getattr(addr, 'ipv4_mapped', None):
        return '%s is an IPv4-mapped address' % ip
    return None


def _socket_to(ip, port, timeout):
    """Open the TCP connection of one probe (tests route it elsewhere)."""
    return socket.create_connection((ip, port), timeout)


class _MemberConnection(http.client.HTTPConnection):
    """HTTP to one member address: no proxy, no name resolution."""

    def connect(self):
        self.sock = _socket_to(self.host, self.port, self.timeout)
        # http.client drops self.sock when the answer says "close"; the
        # watchdog still needs it.
        self.probe_sock = self.sock


def _shutdown(conn, fired):
    fired.set()
    sock = getattr(conn, 'probe_sock', None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _read_body(response):
    length = response.getheader('Content-Length')
    if length and length.strip().isdigit() and int(length) > MAX_BODY:
        raise ProbeRefused('answer of %s bytes refused (more than %d)'
                           % (length.strip(), MAX_BODY))
    body = response.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ProbeRefused('answer longer than %d bytes refused' % MAX_BODY)
    if response.length:
        raise ProbeRefused('answer shorter than its Content-Length')
    return body


def _get(ip, port, path, username, password, timeout):
    """GET ``path`` from ``ip``:``port`` with basic auth, bounded.

    Returns (status, body); raises OSError when the member cannot be
    reached or is too slow, ProbeRefused for a redirect or a body over
    ``MAX_BODY``. The request goes to that address and port only: no
    proxy, no redirect followed, and the whole exchange is cut off after
    ``timeout`` seconds however slowly the server trickles bytes.
    """
    problem = refusal_for_address(ip)
    if problem:
        raise ProbeRefused(problem)
    token = base64.b64encode(('%s:%s' % (username, password)).encode())
    conn = _MemberConnection(ip, port, timeout=timeout)
    fired = threading.Event()
    watchdog = threading.Timer(timeout, _shutdown, [conn, fired])
    watchdog.daemon = True
    watchdog.start()
    response = None
    try:
        conn.request('GET', path, headers={
            'Authorization': 'Basic ' + token.decode(),
            'Accept': 'application/json'})
        response = conn.getresponse()
        if 300 <= response.status < 400:
            raise ProbeRefused(
                'HTTP %d redirect to %s refused (readiness probes follow '
                'no redirect)' % (response.status, _printable(
                    response.getheader('Location') or 'nowhere')))
        body = _read_body(response) if response.status < 300 else b''
        if fired.is_set():
            raise socket.timeout('cut off')
        return response.status, body
    except (OSError, http.client.HTTPException, ProbeRefused) as err:
        if fired.is_set():
            raise socket.timeout('no complete answer within %.1f s'
                                 % timeout) from err
        if isinstance(err, (OSError, ProbeRefused)):
            raise
        raise ProbeRefused('malformed HTTP answer (%s)'
                           % type(err).__name__) from err
    finally:
        watchdog.cancel()
        # The response holds the socket open: close both, or a trickling
        # server never learns we left.
        if response is not None:
            response.close()
        conn.close()


def _printable(text, limit=100):
    text = ''.join(c if c.isprintable() else '?' for c in text)
    return text if len(text) <= limit else text[:limit] + '...'


class MemberStatus(object):
    """Outcome of probing one member."""

    def __init__(self, name, ip, ready, reason=None, leader=None):
        self.name = name
        self.ip = ip
        self.ready = ready
        self.reason = reason
        self.leader = leader

    def describe(self):
        """Return 'member-2 10.0.0.12: <why not ready>'."""
        return '%s %s: %s' % (self.name, self.ip, self.reason)


def _http_reason(status, what):
    if status in (401, 403):
        return 'HTTP %d from %s, check credentials' % (status, what)
    return 'HTTP %d from %s' % (status, what)


def _cluster_view_problem(view, member_ips):
    """Return why a Jolokia cluster view is not all-Up, or None."""
    own = view.get('MemberStatus')
    if own != 'Up':
        return 'Akka member status is %s, not Up' % (own or 'unknown')
    unreachable = set(akka_address_ips(str(view.get('Unreachable') or '')))
    missing = [ip for ip in member_ips
               if ip not in akka_address_ips(str(view.get('Members') or ''))]
    down = sorted(unreachable.intersection(member_ips))
    if down:
        return 'cluster view lists %s as unreachable' % ', '.join(down)
    if missing:
        return 'cluster view does not list %s' % ', '.join(missing)
    return None


def probe_member(name, ip, member_ips, port, username, password,
                 timeout=REQUEST_TIMEOUT):
    """Probe one member: RESTCONF readiness, then the Akka cluster view."""
    def not_ready(reason):
        return MemberStatus(name, ip, False, reason)

    try:
        status, _body = _get(ip, port, RESTCONF_READY_PATH, username,
                             password, timeout)
    except ProbeRefused as err:
        return not_ready('RESTCONF probe refused: %s' % err)
    except OSError as err:
        return not_ready('RESTCONF not reachable (%s)' % _reason(err))
    if not 200 <= status < 300:
        return not_ready(_http_reason(status, 'RESTCONF'))
    try:
        status, body = _get(ip, port, JOLOKIA_CLUSTER_PATH, username,
                            password, timeout)
    except ProbeRefused as err:
        return not_ready('Jolokia probe refused: %s' % err)
    except OSError as err:
        return not_ready('Jolokia not reachable (%s)' % _reason(err))
    if not 200 <= status < 300:
        return not_ready(_http_reason(status, 'Jolokia'))
    try:
        answer = json.loads(body.decode('utf-8'))
    except ValueError:
        return not_ready('Jolokia answered something that is not JSON')
    if not isinstance(answer, dict):
        return not_ready('Jolokia answered JSON that is not an object')
    view = answer.get('value')
    if answer.get('status', 200) != 200 or not isinstance(view, dict):
        return not_ready('Jolokia has no akka:type=Cluster view yet (%s)'
                         % answer.get('error', 'status %s'
                                      % answer.get('status')))
    problem = _cluster_view_problem(view, member_ips)
    if problem:
        return not_ready(problem)
    leaders = [leader for leader in akka_address_ips(
        str(view.get('Leader') or '')) if leader in member_ips]
    return MemberStatus(name, ip, True, leader=leaders[0] if leaders else None)


def _reason(err):
    reason = getattr(err, 'reason', None) or err
    return str(reason) or type(err).__name__


class ReadinessPoller(object):
    """Probe every member with exponential backoff until all are ready.

    ``members`` is a list of (name, ip). ``poll()`` returns True when every
    member is ready, False when it is not yet time or not yet ready, and
    raises ``MembersNotReady`` naming each member not ready, and why, once
    ``timeout`` seconds have passed since the poller was made.
    """

    def __init__(self, members, port, username, password, timeout,
                 clock=time.monotonic):
        self.members = list(members)
        self.port = port
        self.username = username
        self.password = password
        self.timeout = float(timeout)
        self._clock = clock
        self.deadline = clock() + self.timeout
        # networking-odl polls every 5 s; start faster, slow down to 15 s.
        self.interval = min(1.0, self.timeout / 10.0)
        self.next_probe = clock()
        self.probes = 0
        self.leader = None
        self.statuses = []

    def poll(self):
        """Probe if it is time to; see the class docstring."""
        now = self._clock()
        if now < self.next_probe:
            return False
        self.probes += 1
        ips = [ip for _name, ip in self.members]
        request_timeout = max(0.5, min(REQUEST_TIMEOUT, self.deadline - now))
        self.statuses = [probe_member(name, ip, ips, self.port,
                                      self.username, self.password,
                                      request_timeout)
                         for name, ip in self.members]
        if all(s.ready for s in self.statuses):
            leaders = [s.leader for s in self.statuses if s.leader]
            self.leader = leaders[0] if leaders else None
            return True
        now = self._clock()
        if now >= self.deadline:
            raise MembersNotReady(self.timeout,
                                  [s.describe() for s in self.statuses
                                   if not s.ready])
        self.next_probe = min(now + self.interval, self.deadline)
        self.interval = min(self.interval * 2, MAX_INTERVAL)
        return False

    def seconds_to_next_probe(self):
        """Seconds until ``poll()`` will probe again (0 if due now)."""
        return max(0.0, self.next_probe - self._clock())


class SignalWaiter(object):
    """Wait for every member's readiness signal, stored by a handle.

    ``members`` is a list of (name, ip); ``read_signals()`` returns the
    handle's signals, ``{id: {'status': 'SUCCESS'|'FAILURE', 'reason': ...,
    'data': ...}}``, where each member signals with its name as ``id`` and
    the Akka leader it sees as ``data``. ``poll()`` returns True once every
    member signalled SUCCESS, raises ``MemberFailed`` as soon as one
    signals FAILURE and ``MembersNotReady`` naming the members that never
    signalled once ``timeout`` seconds have passed. Signals with other ids
    are ignored (they are not members of this cluster).
    """

    #: Seconds between two reads of the handle's signals.
    INTERVAL = 2.0

    def __init__(self, members, read_signals, timeout, clock=time.monotonic):
        self.members = list(members)
        self.read_signals = read_signals
        self.timeout = float(timeout)
        self._clock = clock
        self.deadline = clock() + self.timeout
        self.leader = None

    def poll(self):
        """Read the signals once; see the class docstring."""
        signals = self.read_signals() or {}
        ips = [ip for _name, ip in self.members]
        waiting = []
        leaders = []
        for name, ip in self.members:
            signal = signals.get(name)
            if not isinstance(signal, dict):
                waiting.append('%s %s' % (name, ip))
                continue
            if signal.get('status') == 'FAILURE':
                raise MemberFailed(name, ip, signal.get('reason'))
            leader = signal.get('data')
            if leader in ips:
                leaders.append(leader)
        if not waiting:
            self.leader = leaders[0] if leaders else None
            return True
        if self._clock() >= self.deadline:
            raise MembersNotReady(self.timeout, [
                '%s never signalled' % member for member in waiting] + [
                'each member signals heat-api once its RESTCONF answers and '
                'its Akka cluster view lists every member Up: check the '
                'silent members\' console logs and that they reach '
                'heat-api'])
        return False

    def seconds_to_next_poll(self):
        """Seconds Heat may wait before calling ``poll()`` again."""
        return max(0.0, min(self.INTERVAL, self.deadline - self._clock()))


class MemberFailed(Exception):
    """A member signalled that it cannot become ready."""

    msg_fmt = ('OpenDaylight cluster member %(name)s %(ip)s signalled '
               'FAILURE: %(reason)s')

    def __init__(self, name, ip, reason):
        super().__init__(self.msg_fmt % {
            'name': name, 'ip': ip,
            'reason': _printable(str(reason or 'no reason given'), 300)})
