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

"""An in-memory Docker engine, and a network that needs a live sandbox.

The engine keeps containers, images and volumes with the engine's own
state transitions and refusals (a stopped container cannot be paused, a
running one is not removed without force, a container cannot join the
network of a stopped one, a missing command fails at start with 400), and
raises the docker SDK's own errors, so the driver's real translation and
decisions run against it. Faults are injected per operation. ``events``
records what happened, in order, across engine and network.
"""

import copy
import itertools
import socket

from docker import errors as docker_errors
import fixtures
import requests

from novadocker.virt.docker import client as docker_client
from novadocker.virt.docker import exception
from novadocker.virt.docker import spec

_ids = itertools.count(1)


def _error(status, message):
    response = requests.Response()
    response.status_code = status
    cls = docker_errors.NotFound if status == 404 else docker_errors.APIError
    return cls(message, response=response, explanation=message)


class _Created:
    def __init__(self, container_id):
        self.id = container_id


class _Containers:
    def __init__(self, engine):
        self._engine = engine

    def create(self, **config):
        return _Created(self._engine.create(config))


class _Images:
    def __init__(self, engine):
        self._engine = engine

    def list(self, name=None):
        return [name] if name in self._engine.images else []


class FakeEngine:
    """The state of one engine, shared by every client connected to it."""

    def __init__(self, ncpu=2, images=('nova-docker/busybox:latest',)):
        self.ncpu = ncpu
        self.images = set(images)
        # Images whose config declares VOLUMEs: image -> paths.
        self.image_volumes = {}
        # image -> its ENTRYPOINT (None: none); container name -> stats
        # document; container name -> the tty end of its last attach.
        self.image_entrypoints = {}
        self.stats = {}
        self.ttys = {}
        self.containers = {}
        self.volumes = set()
        self.events = []
        self.down = False
        self.runtimes = {'runc': {'path': 'runc'}}
        self.quota_supported = False
        # op -> list of (status, message): the next calls of op fail.
        self.faults = {}
        self.missing_commands = set()
        self.next_pid = 1000
        self.stop_timeouts = {}
        # container name -> the size of its file system (SizeRootFs).
        self.root_sizes = {}

    # -- fault injection ------------------------------------------------------

    def fail(self, op, status=500, message='injected engine failure',
             times=1, workload_only=False):
        """Make the next *times* calls of *op* fail with *status*.

        With workload_only, only calls about a workload container fail.
        """
        self.faults.setdefault(op, []).extend(
            [(status, message, workload_only)] * times)

    def _check(self, op, name=None):
        if self.down:
            raise requests.exceptions.ConnectionError(
                'engine socket refused the connection')
        pending = self.faults.get(op)
        if pending:
            status, message, workload_only = pending[0]
            if workload_only and (name or '').endswith('-sandbox'):
                return
            pending.pop(0)
            raise _error(status, message)

    def _get(self, ref):
        for c in self.containers.values():
            if ref in (c['Id'], c['Name']):
                return c
        raise _error(404, 'No such container: %s' % ref)

    # -- the API --------------------------------------------------------------

    def create(self, config):
        self._check('create', config['name'])
        if config['image'] not in self.images:
            raise _error(404, 'No such image: %s' % config['image'])
        if any(c['Name'] == config['name'] for c in self.containers.values()):
            raise _error(409, 'Conflict. The container name "/%s" is '
                              'already in use' % config['name'])
        if config.get('storage_opt') and not self.quota_supported:
            raise _error(500, '--storage-opt is supported only for overlay '
                              "over xfs with 'pquota' mount option")
        if config.get('nano_cpus', 0) > self.ncpu * 10 ** 9:
            raise _error(400, 'Range of CPUs is from 0.01 to %d.00, as '
                              'there are only %d CPUs available'
                         % (self.ncpu, self.ncpu))
        if config.get('runtime') and config['runtime'] not in self.runtimes:
            raise _error(400, 'Unknown runtime specified %s'
                         % config['runtime'])
        mode = config.get('network_mode', '')
        if mode.startswith('container:'):
            self._get(mode.split(':', 1)[1])
        cid = '%064x' % next(_ids)
        volumes = ['vol-%s-%d' % (cid[-8:], i) for i, _ in enumerate(
            self.image_volumes.get(config['image'], ()))]
        self.volumes.update(volumes)
        self.containers[cid] = {
            'Id': cid, 'Name': config['name'],
            'Labels': dict(config.get('labels') or {}),
            'Config': copy.deepcopy(config), 'Volumes': volumes,
            'State': {'Status': 'created', 'Running': False,
                      'Paused': False, 'Pid': 0},
            'Log': [],
        }
        self.events.append(('create', config['name']))
        return cid

    def start(self, ref):
        c = self._get(ref)
        self._check('start', c['Name'])
        if c['State']['Running']:
            return
        mode = c['Config'].get('network_mode', '')
        if mode.startswith('container:'):
            peer = self._get(mode.split(':', 1)[1])
            if not peer['State']['Running']:
                raise _error(409, 'cannot join network of a non running '
                                  'container: %s' % peer['Id'])
        command = (c['Config'].get('command') or ['/bin/sh'])[0]
        if command in self.missing_commands:
            raise _error(400, 'OCI runtime create failed: exec: "%s": '
                              'stat %s: no such file or directory'
                         % (command, command))
        self.next_pid += 1
        c['State'].update(Status='running', Running=True, Pid=self.next_pid)
        self.events.append(('start', c['Name']))

    def stop(self, ref, timeout=10):
        self._check('stop')
        c = self._get(ref)
        # What a stop would have waited for SIGTERM to work, by name.
        self.stop_timeouts[c['Name']] = timeout
        if c['State']['Running']:
            c['State'].update(Status='exited', Running=False, Paused=False,
                              Pid=0)
            self.events.append(('stop', c['Name']))

    def kill_all(self):
        """What a host boot or an engine restart does to every container."""
        for c in self.containers.values():
            c['State'].update(Status='exited', Running=False, Paused=False,
                              Pid=0)

    def restart(self, ref, timeout=10):
        self._check('restart')
        c = self._get(ref)
        self.stop(ref)
        self.start(ref)
        c['State']['Status'] = 'running'

    def pause(self, ref):
        self._check('pause')
        c = self._get(ref)
        if not c['State']['Running'] or c['State']['Paused']:
            raise _error(409, 'Container %s is not running' % ref)
        c['State'].update(Status='paused', Paused=True)

    def unpause(self, ref):
        self._check('unpause')
        c = self._get(ref)
        if not c['State']['Paused']:
            raise _error(409, 'Container %s is not paused' % ref)
        c['State'].update(Status='running', Paused=False)

    def remove_container(self, ref, force=False, v=False):
        c = self._get(ref)
        self._check('remove', c['Name'])
        if c['State']['Running'] and not force:
            raise _error(409, 'You cannot remove a running container')
        del self.containers[c['Id']]
        if v:
            self.volumes.difference_update(c['Volumes'])
        self.events.append(('remove', c['Name']))

    def rename(self, ref, name):
        c = self._get(ref)
        self._check('rename', c['Name'])
        if any(o['Name'] == name for o in self.containers.values()):
            raise _error(409, 'Conflict. The container name "/%s" is '
                              'already in use' % name)
        self.events.append(('rename', c['Name'], name))
        c['Name'] = name

    def inspect_container(self, ref):
        self._check('inspect')
        c = self._get(ref)
        config = c['Config']
        return {'Id': c['Id'], 'Name': '/' + c['Name'],
                'State': dict(c['State']),
                'Config': {'Labels': dict(c['Labels']),
                           'Tty': bool(config.get('tty')),
                           'OpenStdin': bool(config.get('stdin_open')),
                           'Entrypoint': config.get('entrypoint'),
                           'Cmd': config.get('command') or ['/bin/sh']}}

    def list(self, include_stopped=False, filters=None):
        self._check('list')
        wanted = dict(f.split('=', 1) for f in
                      (filters or {}).get('label', []))
        found = []
        for c in list(self.containers.values()):
            if not all(c['Labels'].get(k) == v for k, v in wanted.items()):
                continue
            if include_stopped or c['State']['Running']:
                found.append({'Id': c['Id'], 'Names': ['/' + c['Name']],
                              'Labels': dict(c['Labels']),
                              'State': c['State']['Status']})
        return found

    def logs(self, ref, tail='all', **kwargs):
        self._check('logs')
        lines = self._get(ref)['Log']
        if tail != 'all':
            lines = lines[-int(tail):]
        return iter(list(lines))

    def import_image(self, repository, tag):
        self.images.add('%s:%s' % (repository, tag))


class _LowLevel:
    """The subset of docker.APIClient the driver's modules call."""

    def __init__(self, engine):
        self._e = engine

    def containers(self, all=False, filters=None, size=False):
        found = self._e.list(include_stopped=all, filters=filters)
        if size:
            for summary in found:
                summary['SizeRootFs'] = self._e.root_sizes.get(
                    summary['Names'][0].lstrip('/'), 4096)
        return found

    def inspect_container(self, ref):
        return self._e.inspect_container(ref)

    def start(self, ref):
        self._e.start(ref)

    def stop(self, ref, timeout=10):
        self._e.stop(ref, timeout)

    def restart(self, ref, timeout=10):
        self._e.restart(ref, timeout)

    def pause(self, ref):
        self._e.pause(ref)

    def unpause(self, ref):
        self._e.unpause(ref)

    def remove_container(self, ref, force=False, v=False):
        self._e.remove_container(ref, force=force, v=v)

    def rename(self, ref, name):
        self._e.rename(ref, name)

    def logs(self, ref, stdout=True, stderr=True, stream=False,
             follow=False, tail='all'):
        return self._e.logs(ref, tail=tail)

    def inspect_image(self, image):
        self._e._check('inspect_image')
        if image not in self._e.images:
            raise _error(404, 'No such image: %s' % image)
        return {'Config': {
            'Entrypoint': self._e.image_entrypoints.get(image),
            'Cmd': ['/bin/sh'],
            'Volumes': {v: {} for v in self._e.image_volumes.get(image, ())},
        }}

    def stats(self, ref, stream=True):
        self._e._check('stats')
        c = self._e._get(ref)
        return copy.deepcopy(self._e.stats.get(c['Name'], {}))

    def attach_socket(self, ref, params=None):
        """One end of a socket pair; the engine keeps the tty's end."""
        self._e._check('attach')
        c = self._e._get(ref)
        ours, tty = socket.socketpair()
        self._e.ttys[c['Name']] = tty
        return ours

    def images(self, name=None):
        self._e._check('images')
        prefix = (name or '').rstrip('*')
        return [{'Id': 'sha256:%064x' % (hash(i) % (1 << 64)),
                 'RepoTags': [i]}
                for i in sorted(self._e.images) if i.startswith(prefix)]

    def import_image_from_data(self, data, repository, tag, changes=None):
        self._e.import_image(repository, tag)


class FakeClient:
    """A docker.DockerClient connected to a FakeEngine."""

    def __init__(self, engine):
        self._engine = engine
        self.api = _LowLevel(engine)
        self.containers = _Containers(engine)
        self.images = _Images(engine)

    def ping(self):
        self._engine._check('ping')
        return True

    def info(self):
        self._engine._check('info')
        return {'DockerRootDir': '/', 'NCPU': self._engine.ncpu,
                'Runtimes': dict(self._engine.runtimes),
                'Driver': 'overlay2'}

    def version(self):
        self._engine._check('version')
        return {'Version': '20.10.24+fake'}

    def close(self):
        pass


class FakeEngineFixture(fixtures.Fixture):
    """Connect every docker_client() of this process to a FakeEngine."""

    def _setUp(self):
        self.engine = FakeEngine()
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.client.connect',
            lambda conf: FakeClient(self.engine)))
        assert docker_client.connect is not None


class FakeNetwork:
    """Ports wired into sandboxes; wiring needs the sandbox running."""

    def __init__(self, engine):
        self.engine = engine
        self.ports = {}      # instance uuid -> (sandbox id, [port ids])
        self.links = {}      # instance uuid -> pid
        self.link_removals = []
        self.fail_plug = None

    def plug_vifs(self, instance, network_info, sandbox_id):
        box = self.engine._get(sandbox_id)
        if not box['State']['Running']:
            raise exception.VifPlugFailed(
                port_id='*', step='entering the sandbox namespace',
                reason='the sandbox is not running')
        if self.fail_plug:
            raise self.fail_plug
        self.ports[instance.uuid] = (sandbox_id,
                                     [v['id'] for v in network_info])
        self.engine.events.append(('plug', instance.uuid))

    def unplug_vifs(self, instance, network_info, sandbox_id=None):
        if self.ports.pop(instance.uuid, None):
            self.engine.events.append(('unplug', instance.uuid))

    def create_link(self, instance_uuid, pid):
        if not pid:
            raise exception.NamespaceLinkFailed(
                action='create', path=instance_uuid, reason='pid 0')
        self.links[instance_uuid] = pid

    def remove_link(self, instance_uuid):
        self.link_removals.append(instance_uuid)
        self.links.pop(instance_uuid, None)

    def remove_orphans(self, host, live_instance_uuids):
        """vifs.remove_orphans for links: those of servers not in the list."""
        others = {c['Labels'].get(spec.LABEL_UUID)
                  for c in self.engine.containers.values()
                  if c['Labels'].get(spec.LABEL_HOST) != host}
        gone = sorted(set(self.links) - set(live_instance_uuids) - others)
        for uuid in gone:
            self.remove_link(uuid)
        return {'ports': [], 'links': ['nova-%s' % u for u in gone]}
