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

"""One server's containers on the engine: its sandbox, workload and rescue.

A ``Server`` is what the driver acts on: create, start (sandbox, then
workload), stop, restart, pause, remove, its power state, its log, its
console socket, its writable layer and its limits. ``spec`` says what the
containers look like; a ``Server`` makes the engine do it. It holds only
the engine and the uuid: every call looks the containers up again, so a
``Server`` is cheap to make and never stale. Every method that changes a
container drops the engine's shared listing.
"""

import collections
import contextlib
import signal

from nova import exception as nova_exception
from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import configdrive
from novadocker.virt.docker import engine as docker_engine
from novadocker.virt.docker import exception
from novadocker.virt.docker import spec

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

Pair = collections.namedtuple('Pair', ['workload', 'sandbox'])
_changes_engine = docker_engine.changes_engine
_remove_one = docker_engine.remove_container

_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)
_PROC_STATUS = '/proc/%d/status'


def _inspect(client, container_id):
    return client.api.inspect_container(container_id)


def _pid_of(client, container_id):
    return _inspect(client, container_id)['State']['Pid']


def _stop_one(client, container_id, timeout):
    state = _inspect(client, container_id)['State']
    if state.get('Paused'):
        client.api.unpause(container_id)
    if state.get('Running'):
        client.api.stop(container_id, timeout=timeout)


def signal_mask(pid, field):
    """A signal mask of /proc/<pid>/status, e.g. SigCgt (caught)."""
    with open(_PROC_STATUS % pid) as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1], 16)
    return None


class Server:
    """The containers of server *instance_uuid* on *engine*."""

    def __init__(self, engine, instance_uuid):
        if not instance_uuid:
            # Without a uuid the label filter would match the whole host.
            raise exception.DockerDriverError(
                reason='a server is looked up by its instance uuid')
        self.engine = engine
        self.uuid = instance_uuid

    def __repr__(self):
        return 'Server(%r, %r)' % (self.engine.host, self.uuid)

    # -- lookups ----------------------------------------------------------

    def find(self):
        """The workload and sandbox (each None when absent)."""
        found = {spec.ROLE_WORKLOAD: None, spec.ROLE_SANDBOX: None}
        for c in self.engine.listing(instance_uuid=self.uuid):
            found[c.role] = c
        return Pair(found[spec.ROLE_WORKLOAD], found[spec.ROLE_SANDBOX])

    def exists(self):
        """Whether the server's workload exists on this engine."""
        return self.find().workload is not None

    def require(self):
        """Like find, but the workload must exist (InstanceNotFound)."""
        pair = self.find()
        if pair.workload is None:
            raise nova_exception.InstanceNotFound(instance_id=self.uuid)
        return pair

    def running_sandbox(self, pair=None):
        """The sandbox's id if it runs, else None (*pair*: a fresh find)."""
        box = (pair or self.find()).sandbox
        if box is None or box.status != 'running':
            return None
        return box.id

    def power_state(self, cached=False):
        """The workload's nova power state (InstanceNotFound if absent).

        *cached* serves it from the engine's shared listing (for the
        power-state sync).
        """
        if cached:
            return self.engine.cached_power_state(self.uuid)
        return spec.power_state_of(self.require().workload.status)

    def workload_id(self):
        """The engine id of the workload (for the image path's snapshot)."""
        return self.require().workload.id

    # -- lifecycle --------------------------------------------------------

    @_changes_engine
    def create(self, instance, image, dns_servers=(), disk_quota=False):
        """Create the sandbox, then the workload in its namespaces.

        Either may be left behind when the second step fails: the caller
        removes the server's containers (``remove``) on failure.
        """
        host = self.engine.host
        made = {}
        with self.engine.client(
                'create containers of %s' % instance.uuid) as client:
            for role, config in (
                    (spec.ROLE_SANDBOX, lambda: spec.sandbox_config(
                        instance, host, dns_servers)),
                    (spec.ROLE_WORKLOAD, lambda: self._workload_config(
                        client, instance, image,
                        made[spec.ROLE_SANDBOX].id, disk_quota))):
                config = config()
                # What the engine was told is what it has: no listing.
                made[role] = docker_engine.Container(
                    id=client.containers.create(**config).id,
                    name=config['name'], role=role, uuid=instance.uuid,
                    instance_name=instance.name, status='created')
        return Pair(made[spec.ROLE_WORKLOAD], made[spec.ROLE_SANDBOX])

    def _workload_config(self, client, instance, image, sandbox_id,
                         disk_quota):
        """The workload's create arguments, with what its image must allow.

        With a config drive the image is read first: a mount point the
        image fills with a file cannot be mounted; with a user-data script
        to run, the image's entrypoint and command become the runner's
        arguments.
        """
        config = spec.workload_config(instance, self.engine.host, image,
                                      sandbox_id, disk_quota=disk_quota)
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

    @_changes_engine
    def start_sandbox(self):
        """Start the sandbox if it is not running; return (id, pid)."""
        pair = self.require()
        if pair.sandbox is None:
            raise exception.SandboxMissing(instance_uuid=self.uuid)
        with self.engine.client('start sandbox of %s' % self.uuid) as client:
            # The listing just made says the state: no inspect first.
            if pair.sandbox.status == 'paused':
                client.api.unpause(pair.sandbox.id)
            elif pair.sandbox.status != 'running':
                client.api.start(pair.sandbox.id)
            pid = _inspect(client, pair.sandbox.id)['State']['Pid']
        return pair.sandbox.id, pid

    def sandbox_pid(self, pair=None):
        """The pid of the running sandbox, 0 when stopped or absent.

        *pair* is a find this caller has just made, else one is made.
        """
        box = (pair or self.find()).sandbox
        if box is None:
            return 0
        return self.engine.unless_gone(
            'inspect sandbox of %s' % self.uuid, _pid_of, box.id) or 0

    @_changes_engine
    def start_workload(self):
        """Start the workload; classify what the engine says if it refuses.

        The engine answers 4xx when the request cannot work (no such
        command, a bad entrypoint: the image's fault, Nova must not
        reschedule) and 5xx when the engine itself failed (another host may
        do better).
        """
        workload = self.require().workload
        try:
            with self.engine.client(
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
                # The engine's own words bury the cause past what a fault
                # keeps.
                raise exception.ConfigDriveUnmountable(
                    path=mount, reason='the image has a file there, not a '
                    'directory') from e
            if 400 <= status < 500 and status != 404:
                raise exception.ContainerStartFailed(
                    command=self._command_of(workload), reason=reason) from e
            raise exception.ContainerEngineFailed(
                what='start container %s' % workload.name,
                reason=reason) from e

    def _command_of(self, workload):
        try:
            with self.engine.client('inspect %s' % workload.name) as c:
                config = _inspect(c, workload.id)['Config']
        except exception.DockerError:
            return '?'
        return ' '.join((config.get('Entrypoint') or []) +
                        (config.get('Cmd') or []))

    @_changes_engine
    def stop(self, timeout):
        """Stop the workload, then the sandbox.

        The workload gets SIGTERM, then SIGKILL after *timeout* seconds.
        Absent containers are skipped: stopping is idempotent.
        """
        pair = self.find()
        for container, wait in ((pair.workload, timeout),
                                (pair.sandbox, 5)):
            if container is not None:
                self.engine.unless_gone(
                    'stop container %s' % container.name, _stop_one,
                    container.id, timeout=wait)

    @_changes_engine
    def restart_workload(self, timeout):
        """Restart the workload in place (the sandbox and wiring stay)."""
        workload = self.require().workload
        with self.engine.client(
                'restart container %s' % workload.name) as client:
            client.api.restart(workload.id, timeout=timeout)

    @_changes_engine
    def freeze(self, frozen):
        """Pause (frozen) or unpause the workload; no-op if already so."""
        workload = self.require().workload
        with self.engine.client(
                '%s container %s' % ('pause' if frozen else 'unpause',
                                     workload.name)) as client:
            paused = bool(_inspect(client, workload.id)['State']
                          .get('Paused'))
            if frozen and not paused:
                client.api.pause(workload.id)
            elif not frozen and paused:
                client.api.unpause(workload.id)

    @_changes_engine
    def remove(self):
        """Remove the server's containers and their anonymous volumes.

        Image VOLUMEs become anonymous volumes; removing them with the
        container keeps them from outliving the server. Missing containers
        are fine. Every container labelled with the server goes (a rescue
        container too).
        """
        for container in self.engine.listing(instance_uuid=self.uuid):
            self.engine.unless_gone('remove container %s' % container.name,
                                    _remove_one, container.id)

    # -- what runs inside -------------------------------------------------

    def acts_on_sigterm(self):
        """Whether SIGTERM can stop the running workload (None: unknown).

        The workload is PID 1 of its PID namespace: the kernel delivers it
        only signals it has a handler for (SIGKILL aside). With no SIGTERM
        handler (SigCgt), a soft stop can only end at the timeout's SIGKILL.
        """
        workload = self.require().workload
        if workload.status != 'running':
            return None
        pid = self.engine.unless_gone('inspect %s' % workload.name, _pid_of,
                                      workload.id)
        if not pid:
            return None
        try:
            caught = signal_mask(pid, 'SigCgt')
        except (OSError, ValueError) as e:
            LOG.debug('Cannot read the signal handlers of pid %(pid)s: '
                      '%(err)s', {'pid': pid, 'err': e})
            return None
        if caught is None:
            return None
        return bool(caught & _SIGTERM_BIT)

    def console_tail(self, limit):
        """The last *limit* bytes of the workload's output.

        The engine reads its log from the end (``tail``): asking for
        limit/2 lines, each at least two bytes, is enough to fill *limit*.
        """
        workload = self.require().workload
        tail = bytearray()
        with self.engine.client('read logs of %s' % workload.name) as client:
            for chunk in client.api.logs(workload.id, stdout=True,
                                         stderr=True, stream=True,
                                         follow=False,
                                         tail=max(limit // 2, 1)):
                tail += chunk
                if len(tail) > 2 * limit:
                    del tail[:-limit]
        return bytes(tail[-limit:]).decode('utf-8', 'replace')

    def figures(self):
        """What the engine knows of a running workload, for diagnostics.

        Return a dict: ``state`` (the inspect State block), ``stats`` (one
        sample of the engine's stats API; empty unless running) and
        ``sandbox_pid`` (0 when the sandbox is not running). The engine's
        stats carry no network figures here: the ports live in the
        sandbox's namespace, which the engine did not wire.
        """
        pair = self.require()
        with self.engine.client(
                'read the figures of %s' % pair.workload.name) as client:
            state = _inspect(client, pair.workload.id)['State']
            stats = {}
            if state.get('Running'):
                stats = client.api.stats(pair.workload.id, stream=False)
        return {'state': state, 'stats': stats,
                'sandbox_pid': self.sandbox_pid(pair)}

    def check_console(self):
        """Refuse a console the workload cannot give (stopped, no tty)."""
        workload = self.require().workload
        with self.engine.client('inspect %s' % workload.name) as client:
            info = _inspect(client, workload.id)
        if not info['State'].get('Running'):
            raise nova_exception.InstanceNotReady(instance_id=self.uuid)
        if not (info['Config'].get('Tty') and
                info['Config'].get('OpenStdin')):
            LOG.info('No interactive console: the workload has no tty '
                     '(image property docker_tty=false)')
            raise nova_exception.ConsoleTypeUnavailable(
                console_type='serial')

    @contextlib.contextmanager
    def console_socket(self):
        """A socket attached to the running workload's tty."""
        workload = self.require().workload
        with self.engine.client('attach to %s' % workload.name) as client:
            attached = client.api.attach_socket(
                workload.id, params={'stdin': 1, 'stdout': 1, 'stderr': 1,
                                     'stream': 1})
            # The SDK wraps the connection's socket; the bridge needs it
            # raw.
            raw = getattr(attached, '_sock', attached)
            try:
                yield raw
            finally:
                attached.close()
                if raw is not attached:
                    raw.close()

    # -- rescue -----------------------------------------------------------

    def rescue_container(self):
        """The server's rescue container, or None."""
        found = self.engine.listing(role=spec.ROLE_RESCUE,
                                    instance_uuid=self.uuid)
        return found[0] if found else None

    def writable_layer_dir(self):
        """The engine-host directory holding the workload's writable layer.

        Only overlay2 keeps it as a plain directory (UpperDir) that another
        container can bind while the workload is stopped; any other storage
        driver raises RescueUnsupported before anything is changed.
        """
        workload = self.require().workload
        with self.engine.client(
                'inspect container %s' % workload.name) as client:
            graph = _inspect(client, workload.id).get('GraphDriver') or {}
        upper = (graph.get('Data') or {}).get('UpperDir')
        if graph.get('Name') != 'overlay2' or not upper:
            raise exception.RescueUnsupported(
                instance_uuid=self.uuid,
                reason='the engine stores containers with the %s storage '
                'driver; rescue needs overlay2' % graph.get('Name'))
        return upper

    @_changes_engine
    def start_rescue(self, instance, image, sandbox_id, layer_dir,
                     command=None):
        """Create and start the rescue container; return its id."""
        config = spec.rescue_config(instance, self.engine.host, image,
                                    sandbox_id, layer_dir, command)
        with self.engine.client(
                'start rescue container of %s' % instance.uuid) as client:
            rescue_id = client.containers.create(**config).id
            try:
                client.api.start(rescue_id)
            except Exception:
                _remove_one(client, rescue_id)
                raise
        return rescue_id

    @_changes_engine
    def remove_rescue(self):
        """Remove the server's rescue container if it has one."""
        rescue = self.rescue_container()
        if rescue is not None:
            self.engine.unless_gone('remove container %s' % rescue.name,
                                    _remove_one, rescue.id)

    # -- moves ------------------------------------------------------------

    def root_size(self):
        """Bytes of the workload's whole file system (image and layer)."""
        with self.engine.client(
                'size the file system of server %s' % self.uuid) as client:
            found = client.api.containers(
                all=True, size=True, filters=spec.host_filter(
                    self.engine.host, spec.ROLE_WORKLOAD, self.uuid))
        return max([c.get('SizeRootFs') or 0 for c in found] or [0])

    @_changes_engine
    def rename(self, rename):
        """Give each container the name *rename*(its name) returns."""
        for container in self.engine.listing(instance_uuid=self.uuid):
            wanted = rename(container.name)
            if wanted == container.name:
                continue
            with self.engine.client('rename container %s to %s' % (
                    container.name, wanted)) as client:
                client.api.rename(container.id, wanted)

    # -- resize -----------------------------------------------------------

    @_changes_engine
    def update_limits(self, flavor, host_cpus=None):
        """Apply *flavor*'s memory, CPU and PIDs limits to the workload.

        The SDK's update_container has no NanoCpus or PidsLimit, and the
        engine refuses a CPU quota on a container created with NanoCpus:
        the update goes to the Engine API's own endpoint (ContainerUpdate,
        API 1.40).
        """
        workload = self.require().workload
        body = spec.limits_for(flavor, host_cpus)
        with self.engine.client(
                'update limits of %s' % workload.name) as client:
            url = client.api._url('/containers/{0}/update', workload.id)
            client.api._result(client.api._post_json(url, data=body), True)
