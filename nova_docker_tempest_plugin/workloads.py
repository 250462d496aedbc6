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

"""What the scenario servers run, and how their console output is read.

The driver takes a server's command from the image property
os_command_line and gives it the instance metadata as environment
variables. The scenario images' command evaluates $ND_SCRIPT, so one image
runs a different workload per server, chosen by its metadata. Nova keeps
at most 255 characters of a metadata value (and of an image property), so
the script is split into a few variables.

Every line a workload prints that the tests read starts with ND- and the
workload's clock (the host's: containers share its kernel), so a test can
ask for lines written after a moment it noted.
"""

import re
import shlex

HTTP_PORT = 8080
COMMAND_LINE = '/bin/sh -c %s' % shlex.quote('eval "$ND_SCRIPT"')

# busybox-static's wget crashes with -T: timeout(1) bounds it instead.
# sh is PID 1 of the container: it ignores SIGTERM unless it traps it, and
# the trap only runs between commands, hence the sleep in the background.
SCRIPT = ('trap "exit 0" TERM; eval "$ND_INIT"; '
          'echo "ND-BOOT $(date +%s) $(hostname)"; '
          'while :; do eval "$ND_LOOP"; sleep 2 & wait $!; done')

WEB_INIT = ('mkdir -p /tmp/www && echo "ND-HELLO $ND_TAG" >/tmp/www/index.html'
            ' && httpd -p %d -h /tmp/www' % HTTP_PORT)

# A TCP echo service next to the web server, for a connection a test keeps
# open across an operation (busybox nc: -ll keeps listening, -e per client).
ECHO_PORT = 7000
ECHO_WEB_INIT = WEB_INIT + ' && { nc -ll -p %d -e cat & }' % ECHO_PORT

# A peer that is not on a network of the server (its route goes through
# a gateway) is not probed at all: the prober never sends traffic past the
# host, which would route it on to networks that are not the test's.
PROBE_PEER = ('if ip route get $t | grep -q " via "; then r=no-route; p=no; '
              'else p=no; o=$(ping -c1 -W1 $t 2>&1)&&p=ok; '
              'case $o in *denied*) p=denied;; esac; '
              'r=$(timeout 3 wget -q -O- http://$t:%d/ 2>&1); fi; '
              'echo "ND-PROBE $(date +%%s) $t ping=$p http=$r"' % HTTP_PORT)
PROBE_LOOP = ('for t in $ND_PEERS; do eval "$ND_PROBE"; done; '
              'echo "ND-IFS $(date +%s) $(ls /sys/class/net | tr "\\n" " ")"')

SNAPSHOT_FILE = '/root/nd-snapshot-file'
WRITE_FILE_INIT = 'echo "$ND_TAG" >%s && sync' % SNAPSHOT_FILE
READ_FILE_INIT = 'echo "ND-FILE $(cat %s)"' % SNAPSHOT_FILE

_BOOT = re.compile(r'^ND-BOOT (\d+) (\S+)')
_PROBE = re.compile(r'^ND-PROBE (\d+) (\S+) ping=(\S+) http=(.*)$')
_IFS = re.compile(r'^ND-IFS (\d+) (.*)$')


def web_metadata(tag):
    return {'ND_SCRIPT': SCRIPT, 'ND_INIT': WEB_INIT, 'ND_TAG': tag}


def echo_web_metadata(tag):
    return {'ND_SCRIPT': SCRIPT, 'ND_INIT': ECHO_WEB_INIT, 'ND_TAG': tag}


def probe_metadata(peers):
    return {'ND_SCRIPT': SCRIPT, 'ND_LOOP': PROBE_LOOP,
            'ND_PROBE': PROBE_PEER, 'ND_PEERS': ' '.join(peers)}


def writer_metadata(tag):
    return {'ND_SCRIPT': SCRIPT, 'ND_INIT': WRITE_FILE_INIT, 'ND_TAG': tag}


def reader_metadata():
    return {'ND_SCRIPT': SCRIPT, 'ND_INIT': READ_FILE_INIT}


def hello(tag):
    """What the web server answers."""
    return 'ND-HELLO %s' % tag


def _lines(console):
    return [line.strip() for line in console.splitlines()]


def boots(console):
    """(time, hostname) of every start of the workload."""
    return [(int(m.group(1)), m.group(2))
            for m in map(_BOOT.match, _lines(console)) if m]


def probes(console, peer, since):
    """(time, ping, http body) of the probes of *peer* after *since*.

    ping is 'ok', 'no', or 'denied': the driver drops NET_RAW by default
    ([docker] cap_keep), and busybox ping cannot work without it.
    """
    found = []
    for m in map(_PROBE.match, _lines(console)):
        if m and m.group(2) == peer and int(m.group(1)) > since:
            found.append((int(m.group(1)), m.group(3),
                          m.group(4).strip()))
    return found


def interfaces(console, since):
    """The interface lists the workload printed after *since*."""
    found = []
    for m in map(_IFS.match, _lines(console)):
        if m and int(m.group(1)) > since:
            found.append(sorted(m.group(2).split()))
    return found
