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

"""Heat's engine RPC, served in-process by a real ``EngineService``.

A nested stack (``StackResource``) is created, updated and deleted through
engine RPC calls. Instead of a message bus, ``InProcessEngineClient``
hands each call to a real ``heat.engine.service.EngineService`` whose
thread group manager is Heat's own, except that a "thread" runs to the end
before ``start`` returns. Stack locks, deferred state persistence and lock
release stay Heat's code; the nested stack goes through Heat's engine in the
test's thread and the same in-memory database.
"""

from heat.engine import service
from heat.rpc import client as rpc_client
from oslo_messaging.rpc import dispatcher as messaging


class _FinishedThread(object):
    """A thread that has already run: linked callbacks run at once."""

    def link(self, callback, *args):
        callback(self, *args)


class SynchronousThreadGroupManager(service.ThreadGroupManager):
    """Heat's ThreadGroupManager, running each started task to the end."""

    def start(self, stack_id, func, *args, **kwargs):
        func(*args, **kwargs)
        return _FinishedThread()


class InProcessEngineClient(rpc_client.EngineClient):
    """An EngineClient whose calls run in a local EngineService."""

    def __init__(self):
        # The client is made on HeatTestCase's fake:// transport (which
        # also registers rpc_response_timeout, read by the engine) but
        # never used: every call below is a method call.
        super(InProcessEngineClient, self).__init__()
        self.engine = service.EngineService('test-host', 'engine')
        self.engine.thread_group_mgr = SynchronousThreadGroupManager()
        self.engine.engine_id = 'in-process-engine'
        self.calls = []

    def call(self, ctxt, msg, version=None, timeout=None):
        method, kwargs = msg
        self.calls.append(method)
        try:
            return getattr(self.engine, method)(ctxt, **kwargs)
        except messaging.ExpectedException as wrapped:
            # What the RPC layer would deliver: the engine's own exception.
            raise wrapped.exc_info[1]

    def cast(self, ctxt, msg, version=None):
        self.call(ctxt, msg, version)


def install(test):
    """Route every resource's engine RPC in ``test`` to one local engine."""
    from heat.engine import resource
    client = InProcessEngineClient()
    test.patchobject(resource.Resource, 'rpc_client', return_value=client)
    return client
