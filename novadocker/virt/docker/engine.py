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

"""The Docker engine as one compute host sees it.

``Engine(host)`` owns what is the engine's rather than one server's: the
client (with the API version negotiated once, see ``client``), the listing
of the host's containers and its short-lived shared copy, the engine's
facts (ping, info, version, root directory, whether it caps writable
layers) and the host-wide sweeps. ``Engine.server(uuid)`` gives the
``server.Server`` that owns one server's containers.

Callers get plain values (``Container`` tuples, power states, text), never
docker SDK objects. Listings use the engine's summary API (one request, no
per-container inspect), so a container removed concurrently between
listing and use is simply absent, never an error. Periodic readers (the
power-state sync, the engine watch, list_instances) share one short-lived
listing of the host (``[docker] listing_max_age``); every change made
through a ``Server`` drops it.
"""

import collections
import functools
import threading
import time

from nova import exception as nova_exception
from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import exception
from novadocker.virt.docker import spec

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

Container = collections.namedtuple(
    'Container', ['id', 'name', 'role', 'uuid', 'instance_name', 'status'])

_PROBE_NAME = 'nova-docker-disk-quota-probe-%s'


def _summary_to_container(summary):
    labels = summary.get('Labels') or {}
    names = summary.get('Names') or ['/']
    return Container(id=summary['Id'], name=names[0].lstrip('/'),
                     role=labels.get(spec.LABEL_ROLE),
                     uuid=labels.get(spec.LABEL_UUID),
                     instance_name=labels.get(spec.LABEL_NAME),
                     status=summary.get('State'))


class _SharedListing:
    """One listing per host of its containers, shared while it is young.

    A change made through a ``Server`` bumps the generation and drops the
    listing; a listing fetched while a change was under way is used by its
    own caller but not kept. Concurrent readers of an expired listing wait
    for one request instead of each making their own.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._generation = 0
        self._kept = {}   # host -> (monotonic time, generation, [Container])

    def invalidate(self):
        with self._lock:
            self._generation += 1
            self._kept.clear()

    def _young(self, host, max_age):
        with self._lock:
            kept = self._kept.get(host)
            if kept and kept[1] == self._generation and \
                    time.monotonic() - kept[0] <= max_age:
                return kept[2]
        return None

    def get(self, engine, max_age):
        host = engine.host
        if max_age <= 0:
            return engine.listing()
        found = self._young(host, max_age)
        if found is not None:
            return found
        with self._fetch_lock:
            found = self._young(host, max_age)
            if found is not None:
                return found
            with self._lock:
                generation = self._generation
            found = engine.listing()
            with self._lock:
                if generation == self._generation:
                    self._kept[host] = (time.monotonic(), generation, found)
        return found


# One for the process: every Engine of a host reads and drops the same one.
_listing = _SharedListing()


def changes_engine(func):
    """Drop the shared listing once *func* changed a server's containers."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            _listing.invalidate()
    return wrapper


def remove_container(client, container_id):
    """Remove a container and its anonymous volumes (for unless_gone)."""
    client.api.remove_container(container_id, force=True, v=True)


class Engine:
    """The engine's containers and facts, for compute host *host*."""

    def __init__(self, host):
        self.host = host

    def __repr__(self):
        return 'Engine(%r)' % self.host

    # -- access -----------------------------------------------------------

    @staticmethod
    def client(what='Docker engine request'):
        """A context manager giving the client, errors translated."""
        return docker_client.docker_client(what)

    def unless_gone(self, what, action, container_id, **kwargs):
        """Run action(client, id) on a container; skip a vanished one."""
        try:
            with self.client(what) as client:
                return action(client, container_id, **kwargs)
        except exception.DockerObjectNotFound:
            LOG.debug('Container %s vanished while asked to %s',
                      container_id, what)
            return None

    def server(self, instance_uuid):
        """The ``Server`` owning *instance_uuid*'s containers here."""
        from novadocker.virt.docker import server
        return server.Server(self, instance_uuid)

    # -- listings ---------------------------------------------------------

    def listing(self, role=None, instance_uuid=None):
        """This host's containers (optionally one role, one server)."""
        with self.client('list containers') as client:
            summaries = client.api.containers(
                all=True, filters=spec.host_filter(self.host, role,
                                                   instance_uuid))
        return [_summary_to_container(s) for s in summaries]

    def hosts_of(self, instance_uuid):
        """The hosts whose containers on this engine have *instance_uuid*.

        Another host's count too: engines can be shared.
        The summaries carry the labels: no inspect of a container, and no
        NotFound for one removed while listed.
        """
        with self.client('list containers of %s' % instance_uuid) as client:
            found = client.api.containers(
                all=True, filters={'label': ['%s=%s' % (spec.LABEL_UUID,
                                                        instance_uuid)]})
        return {(c.get('Labels') or {}).get(spec.LABEL_HOST) for c in found}

    def shared_listing(self, max_age=None):
        """This host's containers, from a listing at most max age old.

        The age is ``[docker] listing_max_age`` or *max_age*, if shorter.

        For periodic readers only: a change made behind the driver's back
        shows up to that late (or *max_age*, if shorter). The driver's own
        changes drop the listing at once.
        """
        limit = CONF.docker.listing_max_age
        if max_age is not None:
            limit = min(limit, max_age)
        return _listing.get(self, limit)

    def instance_uuids(self):
        """uuids of the servers with any container here (shared)."""
        return sorted({c.uuid for c in self.shared_listing() if c.uuid})

    def shared_workloads(self):
        """This host's workloads, from the shared listing."""
        return [c for c in self.shared_listing()
                if c.role == spec.ROLE_WORKLOAD]

    def cached_power_state(self, instance_uuid):
        """A server's nova power state, served by the shared listing."""
        for c in self.shared_workloads():
            if c.uuid == instance_uuid:
                return spec.power_state_of(c.status)
        raise nova_exception.InstanceNotFound(instance_id=instance_uuid)

    def stopped_sandboxes(self, max_age=None):
        """uuids of this host's servers whose sandbox is not running.

        Served by the shared listing (at most *max_age* old, the watch's
        own interval): the engine watch costs no request of its own while
        the power-state sync's listing is young, and sees an engine restart
        no later than it did with a listing of its own.
        """
        return sorted(c.uuid for c in self.shared_listing(max_age)
                      if c.role == spec.ROLE_SANDBOX and
                      c.status != 'running')

    def remove_orphans(self, live_uuids):
        """Remove this host's containers of servers not in *live_uuids*.

        Return the uuids of the servers removed.
        """
        live = set(live_uuids)
        # Only containers naming a server: never a probe or a stranger.
        orphans = sorted({c.uuid for c in self.listing()
                          if c.uuid and c.uuid not in live})
        for uuid in orphans:
            LOG.warning('Removing the containers of server %(uuid)s: Nova '
                        'no longer has it on host %(host)s',
                        {'uuid': uuid, 'host': self.host})
            self.server(uuid).remove()
        return orphans

    # -- facts ------------------------------------------------------------

    def ping(self):
        """Raise DockerUnreachable unless the engine answers."""
        with self.client('answer a ping') as client:
            client.ping()

    def info(self):
        """The engine's info document (runtimes, root dir, storage)."""
        with self.client('report engine info') as client:
            return client.info()

    def version(self):
        """The engine's version string, e.g. "20.10.24+dfsg1"."""
        with self.client('report engine version') as client:
            return client.version().get('Version', '0')

    def root_dir(self):
        """The engine's data root (DockerRootDir)."""
        return self.info().get('DockerRootDir', '/var/lib/docker')

    def supports_disk_quota(self, image):
        """Whether the engine caps a container's writable layer.

        Asked of the engine itself: a container is created (never started)
        with a size (storage_opt) and removed. Return (supported, the
        engine's answer).
        """
        name = _PROBE_NAME % self.host
        labels = {spec.LABEL_HOST: self.host,
                  spec.LABEL_ROLE: 'disk-quota-probe'}
        self.unless_gone('remove %s' % name, remove_container, name)
        try:
            with self.client('probe disk quotas') as client:
                box = client.containers.create(
                    image=image, command=['true'], name=name, labels=labels,
                    network_mode='none', storage_opt={'size': '1G'})
        except exception.DockerError as e:
            return False, str(e.kwargs.get('reason', e))
        self.unless_gone('remove %s' % name, remove_container, box.id)
        return True, 'storage_opt size accepted'
