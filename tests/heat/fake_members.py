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

"""Members that signal their readiness, and the heat-api they signal.

``SignallingMembers.tick()`` plays what odl-ready-signal.sh does inside
each booted member: it reads the signal URL and token from the server's
metadata (nothing else) and POSTs ``{"status", "id", "reason", "data"}``
once per boot. ``FakeHeatApi`` takes that POST as heat-api would: it
parses the URL with heat-api's route, checks the token and hands the
signal to the real engine's ``resource_signal``.
"""

import re
import time
import urllib.parse

from heat.common import identifier
from heat.tests import utils

from heat_plugins import odl_member_stack as member_stack

#: heat-api's route for a resource signal.
SIGNAL_ROUTE = re.compile(
    r'^/v1/(?P<tenant>[^/]+)/stacks/(?P<stack_name>[^/]+)/'
    r'(?P<stack_id>[^/]+)/resources/(?P<resource>[^/]+)/signal$')
TOKEN = 'adomainusertoken'  # what Heat's fake Keystone issues


class SignalRejected(Exception):
    pass


class FakeHeatApi(object):
    """heat-api's resource-signal call, in front of an in-process engine."""

    def __init__(self, engine, base_url):
        self.engine = engine
        self.base_url = base_url
        self.accepted = []  # (monotonic time, member id, details)

    def post(self, url, token, details):
        if not url.startswith(self.base_url):
            raise SignalRejected('not heat-api: %s' % url)
        match = SIGNAL_ROUTE.match(urllib.parse.urlsplit(url).path)
        if match is None:
            raise SignalRejected('no such route: %s' % url)
        if token != TOKEN:
            raise SignalRejected('401: token refused')
        ident = identifier.HeatIdentifier(
            match.group('tenant'), match.group('stack_name'),
            match.group('stack_id'))
        ctx = utils.dummy_context(tenant_id=match.group('tenant'))
        self.engine.resource_signal(ctx, dict(ident),
                                    match.group('resource'), details,
                                    sync_call=True)
        self.accepted.append((time.monotonic(), details['id'], details))


class SignallingMembers(object):
    """The booted members; each signals once per boot when it is ready.

    ``modes`` by member name: 'ready' (default: SUCCESS with the leader),
    'silent' (never signals), 'fail' (signals FAILURE).
    """

    def __init__(self, cloud, heat_api, leader='10.0.0.11'):
        self.cloud = cloud
        self.heat_api = heat_api
        self.leader = leader
        self.modes = {}
        self._signalled = set()  # (server id, boot number)

    def tick(self):
        servers = self.cloud.nova.servers
        for server in list(servers.servers.values()):
            boot = (server.id, sum(1 for _t, sid, _i in servers.rebuilds
                                   if sid == server.id))
            if server.status != 'ACTIVE' or boot in self._signalled:
                continue
            meta = server.metadata
            if member_stack.ENV_MEMBER_NAME not in meta:
                continue  # the northbound VIP: no readiness signal
            name = meta[member_stack.ENV_MEMBER_NAME]
            mode = self.modes.get(name, 'ready')
            if mode == 'silent':
                continue
            details = {'id': name, 'status': 'SUCCESS',
                       'reason': 'RESTCONF answers, cluster view complete',
                       'data': self.leader}
            if mode == 'fail':
                details.update(status='FAILURE', data=None,
                               reason='RESTCONF answered HTTP 401, check '
                                      'ODL_READY_USER')
            self.heat_api.post(meta[member_stack.ENV_SIGNAL_URL],
                               meta[member_stack.ENV_SIGNAL_TOKEN], details)
            self._signalled.add(boot)
