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

"""A real HTTP server on 127.0.0.1 that answers like OpenDaylight members.

It serves the RESTCONF readiness URL (with basic auth) and the Jolokia
``akka:type=Cluster`` view for any number of members, telling them apart
by the request's Host header. ``serve`` routes the probes' TCP connections
(``odl_readiness._socket_to``, the one seam: address checks, HTTP, bounds
stay the real code) from the members' addresses to this server, and
records every address and port a probe tried to reach.

Each member has a mode: 'ready' (answers as a healthy member), 'never'
(RESTCONF 404 and Akka status Joining forever), 'ready_after' (like never
until ``ready_at`` on the monotonic clock), or one of the HOSTILE modes, a
member answering as a tenant attacking heat-engine would.
"""

import base64
import http.server
import json
import threading
import time

import fixtures

from heat_plugins import odl_readiness

RESTCONF_PATH = ('/restconf/operational/network-topology:network-topology/'
                 'topology/netvirt:1')
JOLOKIA_PATH = '/jolokia/read/akka:type=Cluster'

#: Where the hostile redirects point: the metadata service, a control-plane
#: host with the probe's credentials, the member's own SSH port.
REDIRECTS = {
    'redirect_metadata': (302, 'http://169.254.169.254/latest/meta-data/'),
    'redirect_creds': (307, 'http://admin:admin@192.0.2.10:35357/v3/'),
    'redirect_port': (301, 'http://%(host)s:22/'),
}
HOSTILE = tuple(REDIRECTS) + ('huge', 'huge_stream', 'slow_body',
                              'slow_headers', 'not_json')


def akka_address(ip, port=2550):
    return 'akka.tcp://opendaylight-cluster-data@%s:%d' % (ip, port)


class FakeOdlCluster(object):
    """State of the fake cluster, shared by the handler threads."""

    def __init__(self, member_ips, username='admin', password='admin'):
        self.member_ips = list(member_ips)
        self.username = username
        self.password = password
        self.modes = {ip: 'ready' for ip in self.member_ips}
        self.ready_at = {}
        self.leader = self.member_ips[0] if self.member_ips else None
        self.requests = []  # (monotonic time, host, path, status)
        self.connections = []  # (ip, port) every probe connected to
        self._lock = threading.Lock()

    def record(self, host, path, status):
        with self._lock:
            self.requests.append((time.monotonic(), host, path, status))

    def restconf_times(self, host):
        """Monotonic times of the RESTCONF probes that reached ``host``."""
        with self._lock:
            return [t for t, h, p, _s in self.requests
                    if h == host and p == RESTCONF_PATH]

    def is_ready(self, ip):
        mode = self.modes.get(ip)
        if mode == 'ready_after':
            return time.monotonic() >= self.ready_at[ip]
        return mode == 'ready'

    def answer(self, host, path, auth_header):
        """Return (status, body dict or None) for a request to ``host``."""
        if host not in self.modes:
            return 502, None
        expected = 'Basic ' + base64.b64encode(
            ('%s:%s' % (self.username, self.password)).encode()).decode()
        if auth_header != expected:
            return 401, None
        if path == RESTCONF_PATH:
            if not self.is_ready(host):
                return 404, {'errors': {'error': [{
                    'error-tag': 'data-missing'}]}}
            return 200, {'topology': [{'topology-id': 'netvirt:1'}]}
        if path == JOLOKIA_PATH:
            return 200, self.cluster_view(host)
        return 404, None

    def cluster_view(self, host):
        up = [ip for ip in self.member_ips if self.is_ready(ip)]
        value = {
            'Members': ','.join(akka_address(ip) for ip in up),
            'Unreachable': ','.join(akka_address(ip) for ip in
                                    self.member_ips if ip not in up),
            'Leader': akka_address(self.leader) if self.leader else '',
            'MemberStatus': 'Up' if self.is_ready(host) else 'Joining',
            'Available': True,
        }
        return {'request': {'mbean': 'akka:type=Cluster', 'type': 'read'},
                'value': value, 'timestamp': int(time.time()),
                'status': 200}


class _Handler(http.server.BaseHTTPRequestHandler):

    def do_GET(self):
        cluster = self.server.cluster
        host = (self.headers.get('Host') or '').rsplit(':', 1)[0]
        mode = cluster.modes.get(host)
        if mode in HOSTILE:
            cluster.record(host, self.path, mode)
            return self._hostile(mode, host)
        status, body = cluster.answer(host, self.path,
                                      self.headers.get('Authorization'))
        cluster.record(host, self.path, status)
        data = json.dumps(body).encode() if body is not None else b''
        self.send_response(status)
        if status == 401:
            self.send_header('WWW-Authenticate', 'Basic realm="karaf"')
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _hostile(self, mode, host):
        try:
            if mode in REDIRECTS:
                status, location = REDIRECTS[mode]
                self.send_response(status)
                self.send_header('Location', location % {'host': host})
                self.send_header('Content-Length', '0')
                self.end_headers()
            elif mode == 'huge':
                self._stream(10 * 1024 * 1024, length=True)
            elif mode == 'huge_stream':
                self._stream(10 * 1024 * 1024, length=False)
            elif mode == 'not_json':
                self.send_response(200)
                self.send_header('Content-Length', '5')
                self.end_headers()
                self.wfile.write(b'<html')
            elif mode == 'slow_body':
                self.send_response(200)
                self.send_header('Content-Length', '100')
                self.end_headers()
                self._trickle(b'x' * 100)
            elif mode == 'slow_headers':
                self.wfile.write(b'HTTP/1.1 200 OK\r\n')
                self._trickle(b'X-Slow: ' + b'y' * 100)
        except OSError:
            pass  # the probe hung up on us, as it should

    def _stream(self, size, length):
        self.send_response(200)
        if length:
            self.send_header('Content-Length', str(size))
        self.send_header('Connection', 'close')
        self.end_headers()
        chunk = b'{' * 65536
        for _ in range(size // len(chunk)):
            self.wfile.write(chunk)

    def _trickle(self, data):
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.2)

    def log_message(self, fmt, *args):
        pass


class FakeOdlServer(object):
    """Serve a ``FakeOdlCluster`` on 127.0.0.1 in a background thread."""

    def __init__(self, cluster):
        self.cluster = cluster
        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      _Handler)
        self._httpd.daemon_threads = True
        self._httpd.cluster = cluster
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={'poll_interval': 0.05},
                                        daemon=True)

    @property
    def proxy_url(self):
        return 'http://127.0.0.1:%d' % self.port

    def start(self):
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def serve(test, cluster):
    """Serve *cluster* for *test*; probes to any address reach it.

    Starts the server, stops it when the test ends, and routes every probe
    connection (to whatever address and port) to it for the duration of
    the test, recording the address and port in ``cluster.connections``.
    """
    server = FakeOdlServer(cluster)
    server.start()
    test.addCleanup(server.stop)

    def route(ip, port, timeout):
        cluster.connections.append((ip, port))
        return odl_readiness.socket.create_connection(
            ('127.0.0.1', server.port), timeout)

    test.useFixture(fixtures.MonkeyPatch(
        'heat_plugins.odl_readiness._socket_to', route))
    return server
