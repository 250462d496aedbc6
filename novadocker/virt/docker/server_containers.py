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

"""A server's containers on the engine: create, start, stop, remove, state.

This module and the image path are the only ones that talk to the engine
about containers. Callers get plain values (``Container`` tuples, pids,
power states, text), never docker SDK objects. ``containers`` says what the
containers look like; this module makes the engine do it.

Listings use the engine's summary API (one request, no per-container
inspect), so a container removed concurrently between listing and use is
simply absent, never an error. Periodic readers (the power-state sync, the
engine watch, list_instances) share one short-lived listing of the host
(``[docker] listing_max_age``); every change made here drops it.
"""

import collections
import contextlib
import functools
import signal
import threading
import time

from nova import exception as nova_exception
from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import configdrive
from novadocker.virt.docker import containers
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

Container = collections.namedtuple(
    'Container', ['id', 'name', 'role', 'uuid', 'instance_name', 'status'])
Pair = collections.namedtuple('Pair', ['workload', 'sandbox'])

_PROBE_NAME = 'nova-docker-disk-quota-probe-%s'


def _summary_to_container(summary):
    labels = summary.get('Labels') or {}
    names = summary.get('Names') or ['/']
    return Container(id=summary['Id'], name=names[0].lstrip('/'),
                     role=labels.get(containers.LABEL_ROLE),
                     uuid=labels.get(containers.LABEL_UUID),
                     instance_name=labels.get(containers.LABEL_NAME),
                     status=summary.get('State'))


def list_containers(host, role=None, instance_uuid=None):
    """This host's containers (optionally one role, one server)."""
    with docker_client.docker_client('list containers') as client:
        summaries = client.api.containers(
            all=True, filters=containers.host_filter(host, role,
                                                     instance_uuid))
    return [_summary_to_container(s) for s in summaries]


class _SharedListing:
    """One listing of a host's containers, shared while it is young.

    A change made through this module bumps the generation and drops the
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

    def get(self, host, max_age):
        if max_age <= 0:
            return list_containers(host)
        found = self._young(host, max_age)
        if found is not None:
            return found
        with self._fetch_lock:
            found = self._young(host, max_age)
            if found is not None:
                return found
            with self._lock:
                generation = self._generation
            found = list_containers(host)
            with self._lock:
                if generation == self._generation:
                    self._kept[host] = (time.monotonic(), generation, found)
        return found


_listing = _SharedListing()


def _changes_engine(func):
    """Drop the shared listing once *func* changed a server's containers."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            _listing.invalidate()
    return wrapper


def shared_listing(host, max_age=None):
    """This host's containers, from a listing at most listing_max_age old.

    For periodic readers only: a change made behind the driver's back shows
    up to that late (or *max_age*, if shorter). The driver's own changes
    drop the listing at once.
    """
    limit = CONF.docker.listing_max_age
    if max_age is not None:
        limit = min(limit, max_age)
    return _listing.get(host, limit)


def cached_power_state_of(host, instance_uuid):
    """Like power_state_of, served by the shared listing (the sync's)."""
    for c in shared_listing(host):
        if c.uuid == instance_uuid and c.role == containers.ROLE_WORKLOAD:
            return containers.power_state_of(c.status)
    raise nova_exception.InstanceNotFound(instance_id=instance_uuid)


def find(host, instance_uuid):
    """The server's workload and sandbox (each None when absent)."""
    if not instance_uuid:
        raise exception.DockerDriverError(
            reason='a server is looked up by its instance uuid')
    found = {containers.ROLE_WORKLOAD: None, containers.ROLE_SANDBOX: None}
    for c in list_containers(host, instance_uuid=instance_uuid):
        found[c.role] = c
    return Pair(found[containers.ROLE_WORKLOAD],
                found[containers.ROLE_SANDBOX])


def existing(host, instance_uuid):
    """Like find, but the workload must exist (InstanceNotFound)."""
    pair = find(host, instance_uuid)
    if pair.workload is None:
        raise nova_exception.InstanceNotFound(instance_id=instance_uuid)
    return pair


def power_state_of(host, instance_uuid):
    """The workload's nova power state (InstanceNotFound if absent)."""
    return containers.power_state_of(existing(host, instance_uuid)
                                     .workload.status)


@_changes_engine
def create(instance, host, image, dns_servers=(), disk_quota=False):
    """Create the sandbox, then the workload in its namespaces.

    Either may be left behind when the second step fails: the caller
    removes the server's containers (``remove``) on failure.
    """
    made = {}
    with docker_client.docker_client(
            'create containers of %s' % instance.uuid) as client:
        for role, config in (
                (containers.ROLE_SANDBOX, lambda: containers.sandbox_config(
                    instance, host, dns_servers)),
                (containers.ROLE_WORKLOAD, lambda: _workload_config(
                    client, instance, host, image,
                    made[containers.ROLE_SANDBOX].id, disk_quota))):
            config = config()
            # What the engine was told is what it has: no listing needed.
            made[role] = Container(
                id=client.containers.create(**config).id,
                name=config['name'], role=role, uuid=instance.uuid,
                instance_name=instance.name, status='created')
    return Pair(made[containers.ROLE_WORKLOAD],
                made[containers.ROLE_SANDBOX])


def _inspect(client, container_id):
    return client.api.inspect_container(container_id)


@_changes_engine
def start_sandbox(host, instance_uuid):
    """Start the sandbox if it is not running; return (id, pid)."""
    pair = existing(host, instance_uuid)
    if pair.sandbox is None:
        raise exception.SandboxMissing(instance_uuid=instance_uuid)
    with docker_client.docker_client(
            'start sandbox of %s' % instance_uuid) as client:
        # The listing just made says the state: no inspect before acting.
        if pair.sandbox.status == 'paused':
            client.api.unpause(pair.sandbox.id)
        elif pair.sandbox.status != 'running':
            client.api.start(pair.sandbox.id)
        pid = _inspect(client, pair.sandbox.id)['State']['Pid']
    return pair.sandbox.id, pid


def _pid_of(client, container_id):
    return _inspect(client, container_id)['State']['Pid']


def sandbox_pid(host, instance_uuid):
    """The pid of the running sandbox, 0 when stopped or absent."""
    box = find(host, instance_uuid).sandbox
    if box is None:
        return 0
    return _unless_gone('inspect sandbox of %s' % instance_uuid, _pid_of,
                        box.id) or 0


@_changes_engine
def start_workload(host, instance_uuid):
    """Start the workload; classify what the engine says if it refuses.

    The engine answers 4xx when the request cannot work (no such command,
    a bad entrypoint: the image's fault, Nova must not reschedule) and 5xx
    when the engine itself failed (another host may do better).
    """
    workload = existing(host, instance_uuid).workload
    try:
        with docker_client.docker_client(
                'start container %s' % workload.name) as client:
            if workload.status == 'running':
                return
            client.api.start(workload.id)
    except exception.DockerUnreachable:
        raise
    except exception.DockerError as e:
        reason = e.kwargs.get('reason', e)
        cause = e.__cause__
        status = getattr(cause, 'status_code', None) or 500
        mount = CONF.docker.config_drive_mount
        if 'rootfs at "%s"' % mount in str(reason):
            # The engine's own words bury the cause past what a fault keeps.
            raise exception.ConfigDriveUnmountable(
                path=mount, reason='the image has a file there, not a '
                'directory') from e
        if 400 <= status < 500 and status != 404:
            raise exception.ContainerStartFailed(
                command=_command_of(host, workload), reason=reason) from e
        raise exception.ContainerEngineFailed(
            what='start container %s' % workload.name, reason=reason) from e


def _command_of(host, workload):
    try:
        with docker_client.docker_client('inspect %s' % workload.name) as c:
            config = _inspect(c, workload.id)['Config']
    except exception.DockerError:
        return '?'
    return ' '.join((config.get('Entrypoint') or []) +
                    (config.get('Cmd') or []))


def _unless_gone(what, action, container_id, **kwargs):
    """Run action(client, id) on a container; a vanished one is skipped."""
    try:
        with docker_client.docker_client(what) as client:
            return action(client, container_id, **kwargs)
    except exception.DockerObjectNotFound:
        LOG.debug('Container %s vanished while asked to %s',
                  container_id, what)
        return None


def _stop_one(client, container_id, timeout):
    state = _inspect(client, container_id)['State']
    if state.get('Paused'):
        client.api.unpause(container_id)
    if state.get('Running'):
        client.api.stop(container_id, timeout=timeout)


@_changes_engine
def stop(host, instance_uuid, timeout):
    """Stop the workload (SIGTERM, SIGKILL after *timeout*), then sandbox.

    Absent containers are skipped: stopping is idempotent.
    """
    pair = find(host, instance_uuid)
    for container, wait in ((pair.workload, timeout), (pair.sandbox, 5)):
        if container is not None:
            _unless_gone('stop container %s' % container.name, _stop_one,
                         container.id, timeout=wait)


@_changes_engine
def restart_workload(host, instance_uuid, timeout):
    """Restart the workload in place (the sandbox and wiring stay)."""
    workload = existing(host, instance_uuid).workload
    with docker_client.docker_client(
            'restart container %s' % workload.name) as client:
        client.api.restart(workload.id, timeout=timeout)


@_changes_engine
def freeze(host, instance_uuid, frozen):
    """Pause (frozen) or unpause the workload; no-op if already so."""
    workload = existing(host, instance_uuid).workload
    with docker_client.docker_client(
            '%s container %s' % ('pause' if frozen else 'unpause',
                                 workload.name)) as client:
        paused = bool(_inspect(client, workload.id)['State'].get('Paused'))
        if frozen and not paused:
            client.api.pause(workload.id)
        elif not frozen and paused:
            client.api.unpause(workload.id)


def _remove_one(client, container_id):
    client.api.remove_container(container_id, force=True, v=True)


@_changes_engine
def remove(host, instance_uuid):
    """Remove the server's containers and their anonymous volumes.

    Image VOLUMEs become anonymous volumes; removing them with the
    container keeps them from outliving the server. Missing containers are
    fine. Every container labelled with the server goes (a rescue
    container too).
    """
    if not instance_uuid:
        # Without a uuid the label filter would match the whole host.
        raise exception.DockerDriverError(
            reason='a server is looked up by its instance uuid')
    for container in list_containers(host, instance_uuid=instance_uuid):
        _unless_gone('remove container %s' % container.name,
                     _remove_one, container.id)


def remove_orphans(host, live_uuids):
    """Remove this host's containers whose server is not in *live_uuids*.

    Return the uuids of the servers removed.
    """
    live = set(live_uuids)
    # Only containers naming a server: never a probe or a stranger.
    orphans = sorted({c.uuid for c in list_containers(host)
                      if c.uuid and c.uuid not in live})
    for uuid in orphans:
        LOG.warning('Removing the containers of server %(uuid)s: Nova no '
                    'longer has it on host %(host)s',
                    {'uuid': uuid, 'host': host})
        remove(host, uuid)
    return orphans


def stopped_sandboxes(host, max_age=None):
    """uuids of this host's servers whose sandbox is not running.

    Served by the shared listing (at most *max_age* old, the watch's own
    interval): the engine watch costs no request of its own while the
    power-state sync's listing is young, and sees an engine restart no later
    than it did with a listing of its own.
    """
    return sorted(c.uuid for c in shared_listing(host, max_age)
                  if c.role == containers.ROLE_SANDBOX and
                  c.status != 'running')


def shared_workloads(host):
    """This host's workloads, from the shared listing."""
    return [c for c in shared_listing(host)
            if c.role == containers.ROLE_WORKLOAD]


_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)
_PROC_STATUS = '/proc/%d/status'


def _signal_mask(pid, field):
    """A signal mask of /proc/<pid>/status, e.g. SigCgt (caught)."""
    with open(_PROC_STATUS % pid) as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1], 16)
    return None


def workload_acts_on_sigterm(host, instance_uuid):
    """Whether SIGTERM can stop the running workload (None: cannot tell).

    The workload is PID 1 of its PID namespace: the kernel delivers it only
    signals it has a handler for (SIGKILL aside). With no SIGTERM handler
    (SigCgt), a soft stop can only end at the timeout's SIGKILL.
    """
    workload = existing(host, instance_uuid).workload
    if workload.status != 'running':
        return None
    pid = _unless_gone('inspect %s' % workload.name, _pid_of, workload.id)
    if not pid:
        return None
    try:
        caught = _signal_mask(pid, 'SigCgt')
    except (OSError, ValueError) as e:
        LOG.debug('Cannot read the signal handlers of pid %(pid)s: %(err)s',
                  {'pid': pid, 'err': e})
        return None
    if caught is None:
        return None
    return bool(caught & _SIGTERM_BIT)


def workload_id(host, instance_uuid):
    """The engine id of the workload (for the image path's snapshot)."""
    return existing(host, instance_uuid).workload.id


def console_tail(host, instance_uuid, limit):
    """The last *limit* bytes of the workload's output.

    The engine reads its log from the end (``tail``): asking for limit/2
    lines, each at least two bytes, is enough to fill *limit*.
    """
    workload = existing(host, instance_uuid).workload
    tail = bytearray()
    with docker_client.docker_client(
            'read logs of %s' % workload.name) as client:
        for chunk in client.api.logs(workload.id, stdout=True, stderr=True,
                                     stream=True, follow=False,
                                     tail=max(limit // 2, 1)):
            tail += chunk
            if len(tail) > 2 * limit:
                del tail[:-limit]
    return bytes(tail[-limit:]).decode('utf-8', 'replace')


def engine_ping():
    """Raise DockerUnreachable unless the engine answers."""
    with docker_client.docker_client('answer a ping') as client:
        client.ping()


def engine_info():
    """The engine's info document (runtimes, root dir, storage driver)."""
    with docker_client.docker_client('report engine info') as client:
        return client.info()


def engine_version():
    """The engine's version string, e.g. "20.10.24+dfsg1"."""
    with docker_client.docker_client('report engine version') as client:
        return client.version().get('Version', '0')


def supports_disk_quota(host, image):
    """Whether the engine caps a container's writable layer (storage_opt).

    Asked of the engine itself: a container is created (never started)
    with a size and removed. Return (supported, the engine's answer).
    """
    name = _PROBE_NAME % host
    labels = {containers.LABEL_HOST: host,
              containers.LABEL_ROLE: 'disk-quota-probe'}
    _unless_gone('remove %s' % name, _remove_one, name)
    try:
        with docker_client.docker_client('probe disk quotas') as client:
            box = client.containers.create(
                image=image, command=['true'], name=name, labels=labels,
                network_mode='none', storage_opt={'size': '1G'})
    except exception.DockerError as e:
        return False, str(e.kwargs.get('reason', e))
    _unless_gone('remove %s' % name, _remove_one, box.id)
    return True, 'storage_opt size accepted'


# -- rescue -------------------------------------------------------------------

def rescue_container(host, instance_uuid):
    """The server's rescue container, or None."""
    found = list_containers(host, role=containers.ROLE_RESCUE,
                            instance_uuid=instance_uuid)
    return found[0] if found else None


def writable_layer_dir(host, instance_uuid):
    """The engine-host directory holding the workload's writable layer.

    Only overlay2 keeps it as a plain directory (UpperDir) that another
    container can bind while the workload is stopped; any other storage
    driver raises RescueUnsupported before anything is changed.
    """
    workload = existing(host, instance_uuid).workload
    with docker_client.docker_client(
            'inspect container %s' % workload.name) as client:
        graph = _inspect(client, workload.id).get('GraphDriver') or {}
    upper = (graph.get('Data') or {}).get('UpperDir')
    if graph.get('Name') != 'overlay2' or not upper:
        raise exception.RescueUnsupported(
            instance_uuid=instance_uuid,
            reason='the engine stores containers with the %s storage '
            'driver; rescue needs overlay2' % graph.get('Name'))
    return upper


@_changes_engine
def start_rescue(instance, host, image, sandbox_id, layer_dir,
                 command=None):
    """Create and start the rescue container; return its id."""
    config = containers.rescue_config(instance, host, image, sandbox_id,
                                      layer_dir, command)
    with docker_client.docker_client(
            'start rescue container of %s' % instance.uuid) as client:
        rescue_id = client.containers.create(**config).id
        try:
            client.api.start(rescue_id)
        except Exception:
            _remove_one(client, rescue_id)
            raise
    return rescue_id


@_changes_engine
def remove_rescue(host, instance_uuid):
    """Remove the server's rescue container if it has one."""
    rescue = rescue_container(host, instance_uuid)
    if rescue is not None:
        _unless_gone('remove container %s' % rescue.name, _remove_one,
                     rescue.id)


# -- resize -------------------------------------------------------------------

@_changes_engine
def update_limits(host, instance_uuid, flavor, host_cpus=None):
    """Apply *flavor*'s memory, CPU and PIDs limits to the workload.

    The SDK's update_container has no NanoCpus or PidsLimit, and the engine
    refuses a CPU quota on a container created with NanoCpus: the update
    goes to the Engine API's own endpoint (ContainerUpdate, API 1.40).
    """
    workload = existing(host, instance_uuid).workload
    body = containers.limits_for(flavor, host_cpus)
    with docker_client.docker_client(
            'update limits of %s' % workload.name) as client:
        url = client.api._url('/containers/{0}/update', workload.id)
        client.api._result(client.api._post_json(url, data=body), True)


def workload_figures(host, instance_uuid):
    """What the engine knows of a running workload, for diagnostics.

    Return a dict: ``state`` (the inspect State block), ``stats`` (one
    sample of the engine's stats API; empty unless running) and
    ``sandbox_pid`` (0 when the sandbox is not running). The engine's stats
    carry no network figures here: the ports live in the sandbox's
    namespace, which the engine did not wire.
    """
    pair = existing(host, instance_uuid)
    with docker_client.docker_client(
            'read the figures of %s' % pair.workload.name) as client:
        state = _inspect(client, pair.workload.id)['State']
        stats = {}
        if state.get('Running'):
            stats = client.api.stats(pair.workload.id, stream=False)
    return {'state': state, 'stats': stats,
            'sandbox_pid': sandbox_pid(host, instance_uuid)}


def _workload_config(client, instance, host, image, sandbox_id, disk_quota):
    """The workload's create arguments, with what its image must allow.

    With a config drive the image is read first: a mount point the image
    fills with a file cannot be mounted; with a user-data script to run,
    the image's entrypoint and command become the runner's arguments.
    """
    config = containers.workload_config(instance, host, image, sandbox_id,
                                        disk_quota=disk_quota)
    if not config.get('volumes') and not configdrive.runs_user_data(
            instance):
        return config
    image_config = client.api.inspect_image(image).get('Config') or {}
    mount = CONF.docker.config_drive_mount
    for volume in image_config.get('Volumes') or {}:
        if volume.rstrip('/') == mount or volume.startswith(mount + '/'):
            raise exception.ConfigDriveUnmountable(
                path=mount, reason='the image declares VOLUME %s there, '
                'which would hide the config drive' % volume)
    if configdrive.runs_user_data(instance):
        configdrive.run_user_data_first(config,
                                        image_config.get('Entrypoint'),
                                        image_config.get('Cmd'))
    return config


def check_console(host, instance_uuid):
    """Refuse a console the workload cannot give (stopped, or no tty)."""
    workload = existing(host, instance_uuid).workload
    with docker_client.docker_client(
            'inspect %s' % workload.name) as client:
        info = _inspect(client, workload.id)
    if not info['State'].get('Running'):
        raise nova_exception.InstanceNotReady(instance_id=instance_uuid)
    if not (info['Config'].get('Tty') and info['Config'].get('OpenStdin')):
        LOG.info('No interactive console: the workload has no tty (image '
                 'property docker_tty=false)')
        raise nova_exception.ConsoleTypeUnavailable(console_type='serial')


@contextlib.contextmanager
def console_socket(host, instance_uuid):
    """A socket attached to the running workload's tty (stdin, output)."""
    workload = existing(host, instance_uuid).workload
    with docker_client.docker_client(
            'attach to %s' % workload.name) as client:
        attached = client.api.attach_socket(
            workload.id, params={'stdin': 1, 'stdout': 1, 'stderr': 1,
                                 'stream': 1})
        # The SDK wraps the connection's socket; the bridge needs it raw.
        raw = getattr(attached, '_sock', attached)
        try:
            yield raw
        finally:
            attached.close()
            if raw is not attached:
                raw.close()
