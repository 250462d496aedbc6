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

"""A fault-injecting proxy in front of the real engine, on a private socket.

Requests are parsed one by one (HTTP/1.1 keep-alive, Content-Length or
chunked bodies) and forwarded to the engine, except those matching a rule,
which get the engine-style error the rule names. The shared engine is never
reconfigured: only this test's driver talks through the proxy.
"""

import json
import os
import re
import socket
import threading

ENGINE_SOCKET = '/var/run/docker.sock'


class Rule:
    """Answer *status* to the matching requests after skipping *skip*."""

    def __init__(self, method, path_regex, status=500, message='injected',
                 skip=0, times=1):
        self.method = method
        self.path = re.compile(path_regex)
        self.status = status
        self.message = message
        self.skip = skip
        self.times = times
        self.hits = 0

    def applies(self, method, path):
        if method != self.method or not self.path.search(path):
            return False
        if self.skip:
            self.skip -= 1
            return False
        if self.times <= 0:
            return False
        self.times -= 1
        self.hits += 1
        return True


class _Stream:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b''

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError()
        self.buf += data

    def until(self, marker):
        while marker not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def rest(self):
        data, self.buf = self.buf, b''
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except OSError:
            return data

    def body(self, headers, out, until_close=False):
        """Copy one message body to *out* (a socket)."""
        if headers.get('transfer-encoding', '').lower() == 'chunked':
            while True:
                size_line = self.until(b'\r\n')
                out.sendall(size_line)
                size = int(size_line.split(b';')[0].strip(), 16)
                out.sendall(self.exactly(size + 2))
                if size == 0:
                    return
        elif 'content-length' in headers:
            out.sendall(self.exactly(int(headers['content-length'])))
        elif until_close:
            out.sendall(self.rest())


def _headers(head):
    lines = head.decode('latin-1').split('\r\n')
    fields = {}
    for line in lines[1:]:
        if ':' in line:
            key, _, value = line.partition(':')
            fields[key.strip().lower()] = value.strip()
    return lines[0], fields


class EngineProxy:
    """Listen on *path*; forward to the engine except where rules say."""

    def __init__(self, path):
        self.path = path
        self.rules = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(64)
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return 'unix://' + self.path

    def close(self):
        self._stop = True
        self._server.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _refusal(self, method, path):
        for rule in self.rules:
            if rule.applies(method, path):
                body = json.dumps({'message': rule.message}).encode()
                return (b'HTTP/1.1 %d Injected\r\nContent-Type: '
                        b'application/json\r\nContent-Length: %d\r\n\r\n'
                        % (rule.status, len(body))) + body
        return None

    def _serve(self, conn):
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(ENGINE_SOCKET)
        client, engine = _Stream(conn), _Stream(upstream)
        try:
            while True:
                head = client.until(b'\r\n\r\n')
                request_line, headers = _headers(head)
                method, path = request_line.split(' ')[:2]
                refusal = self._refusal(method, path)
                if refusal is not None:
                    client.body(headers, _Discard())
                    conn.sendall(refusal)
                    continue
                upstream.sendall(head)
                client.body(headers, upstream)
                response = engine.until(b'\r\n\r\n')
                status_line, rheaders = _headers(response)
                conn.sendall(response)
                status = int(status_line.split(' ')[1])
                if status in (204, 304) or method == 'HEAD':
                    continue
                engine.body(rheaders, conn, until_close=True)
        except (EOFError, OSError):
            pass
        finally:
            conn.close()
            upstream.close()


class _Discard:
    def sendall(self, data):
        pass
