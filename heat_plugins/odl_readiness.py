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

"""Is an OpenDaylight cluster ready? Probes and a backoff poller.

A member is ready when its RESTCONF readiness URL answers 2xx with basic
auth and its Jolokia ``akka:type=Cluster`` view says it is Up and sees every
member of the cluster, none unreachable. ``ReadinessPoller`` probes all
members with exponential backoff until they are all ready or the deadline
passes; it never probes twice within its current interval, so it is cheap to
call from Heat's ``check_*_complete`` loop.

Pure Python (standard library only), no Heat imports: this module is loaded
by Heat as ``heat.engine.plugins.odl_readiness`` and has no resource mapping.
"""

import base64
import json
import re
import time
import urllib.error
import urllib.request

RESTCONF_READY_PATH = ('/restconf/operational/network-topology:'
                       'network-topology/topology/netvirt:1')
JOLOKIA_CLUSTER_PATH = '/jolokia/read/akka:type=Cluster'

#: Longest pause between two probe rounds, in seconds.
MAX_INTERVAL = 15.0
#: Longest single HTTP request, in seconds.
REQUEST_TIMEOUT = 5.0

_AKKA_ADDRESS = re.compile(r'@(?:\[([^\]]+)\]|([^:/,\s\[]+)):(\d+)')


class ClusterNotReady(Exception):
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


def _get(url, username, password, timeout):
    """GET ``url`` with basic auth; return (status, body) or raise OSError."""
    token = base64.b64encode(('%s:%s' % (username, password)).encode())
    request = urllib.request.Request(
        url, headers={'Authorization': 'Basic ' + token.decode(),
                      'Accept': 'application/json'})
    # A new opener each time: the shared one freezes the proxy settings of
    # the first call.
    opener = urllib.request.build_opener()
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b''


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
        status, _body = _get(restconf_url(ip, port), username, password,
                             timeout)
    except OSError as err:
        return not_ready('RESTCONF not reachable (%s)' % _reason(err))
    if not 200 <= status < 300:
        return not_ready(_http_reason(status, 'RESTCONF'))
    try:
        status, body = _get(jolokia_url(ip, port), username, password,
                            timeout)
    except OSError as err:
        return not_ready('Jolokia not reachable (%s)' % _reason(err))
    if not 200 <= status < 300:
        return not_ready(_http_reason(status, 'Jolokia'))
    try:
        answer = json.loads(body.decode('utf-8'))
    except ValueError:
        return not_ready('Jolokia answered something that is not JSON')
    view = answer.get('value') if isinstance(answer, dict) else None
    if answer.get('status', 200) != 200 or not isinstance(view, dict):
        return not_ready('Jolokia has no akka:type=Cluster view yet (%s)'
                         % answer.get('error', 'status %s'
                                      % answer.get('status')))
    problem = _cluster_view_problem(view, member_ips)
    if problem:
        return not_ready(problem)
    leaders = akka_address_ips(str(view.get('Leader') or ''))
    return MemberStatus(name, ip, True, leader=leaders[0] if leaders else None)


def _reason(err):
    reason = getattr(err, 'reason', None) or err
    return str(reason) or type(err).__name__


class ReadinessPoller(object):
    """Probe every member with exponential backoff until all are ready.

    ``members`` is a list of (name, ip). ``poll()`` returns True when every
    member is ready, False when it is not yet time or not yet ready, and
    raises ``ClusterNotReady`` naming each member not ready, and why, once
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
            raise ClusterNotReady(self.timeout,
                                  [s.describe() for s in self.statuses
                                   if not s.ready])
        self.next_probe = min(now + self.interval, self.deadline)
        self.interval = min(self.interval * 2, MAX_INTERVAL)
        return False

    def seconds_to_next_probe(self):
        """Seconds until ``poll()`` will probe again (0 if due now)."""
        return max(0.0, self.next_probe - self._clock())
