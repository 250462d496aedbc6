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

"""A server's config drive: Nova's metadata tree, mounted read-only.

A virtual machine gets its config drive as a disk labelled ``config-2``. A
container has no disk to find, so the same tree, built by Nova's own
``InstanceMetadata.metadata_for_config_drive()`` (``openstack/<version>/``
with ``meta_data.json``, ``user_data``, ``network_data.json``,
``vendor_data2.json``, and ``ec2/``), is written to a directory of this
host, ``[docker] config_drive_dir/<instance uuid>``, and bind-mounted
read-only into the workload at ``[docker] config_drive_mount``
(``/config-drive`` by default: one of the two directories cloud-init's
ConfigDrive datasource reads when no ``config-2`` disk exists).

The host directory belongs to nova-compute, is mounted into that server's
workload only, and goes with the server.

A user-data script (user data starting with ``#!``) is run once, before
the image's command, when ``[docker] user_data_scripts = run``: container
images rarely carry cloud-init, and a script nothing runs is the silent
drop users reported. The server then gets the tree even if it did not ask
for a config drive, since that is how the script reaches it.
"""

import base64
import os
import shutil
import tempfile

from nova.api.metadata import base as instance_metadata
from nova.virt import configdrive as nova_configdrive
from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import exception
from novadocker.virt.docker import netns

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

# Inside the workload: where the runner keeps its copy of the script and
# the mark that says it ran (in the server's own writable layer, so a
# rebuild, a new layer, runs it again).
RUNNER_DIR = '/var/lib/nova-docker'
RUNNER_NAME = 'nova-docker-user-data'


def host_dir(instance_uuid):
    """The host directory holding the tree of one server."""
    if not netns.is_instance_uuid(instance_uuid):
        raise exception.ConfigDriveFailed(
            uuid=instance_uuid, reason='not an instance uuid')
    return os.path.join(CONF.docker.config_drive_dir, instance_uuid)


# Columns Nova always loads; an Instance object built without them (by a
# caller that never meant to ask for a drive) has none to give.
_ASKING_FIELDS = ('config_drive', 'launched_at', 'image_ref')


def user_data_of(instance):
    """The server's user data as bytes (b'' when it has none)."""
    if not instance.obj_attr_is_set('user_data') or not instance.user_data:
        return b''
    try:
        return base64.b64decode(instance.user_data)
    except (TypeError, ValueError):
        return b''


def runs_user_data(instance):
    """Whether the workload runs the user-data script before its command."""
    return (CONF.docker.user_data_scripts == 'run' and
            user_data_of(instance).startswith(b'#!'))


def wanted(instance):
    """Whether the server gets a config drive."""
    if not all(instance.obj_attr_is_set(f) for f in _ASKING_FIELDS):
        return runs_user_data(instance)
    return bool(nova_configdrive.required_by(instance) or
                runs_user_data(instance))


def volumes_for(instance):
    """The workload's ``volumes`` for its config drive ({} without one)."""
    if not wanted(instance):
        return {}
    return {host_dir(instance.uuid): {'bind': CONF.docker.config_drive_mount,
                                      'mode': 'ro'}}


def _write_tree(root, metadata):
    for path, data in metadata.metadata_for_config_drive():
        target = os.path.join(root, path)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if isinstance(data, str):
            data = data.encode('utf-8')
        with open(target, 'wb') as f:
            f.write(data)
        os.chmod(target, 0o644)


def build(instance, network_info, injected_files=None, admin_password=None):
    """Write the server's tree to its host directory (replacing any).

    The tree is written beside its final place and renamed into it, so a
    workload never sees half a tree. On failure nothing is left.
    """
    final = host_dir(instance.uuid)
    base = CONF.docker.config_drive_dir
    os.makedirs(base, mode=0o700, exist_ok=True)
    extra_md = {}
    if admin_password:
        extra_md['admin_pass'] = admin_password
    work = tempfile.mkdtemp(prefix='.%s-' % instance.uuid, dir=base)
    try:
        metadata = instance_metadata.InstanceMetadata(
            instance, content=injected_files or [], extra_md=extra_md,
            network_info=network_info)
        _write_tree(work, metadata)
        os.chmod(work, 0o755)
        remove(instance.uuid)
        os.rename(work, final)
    except Exception as e:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(e, exception.ConfigDriveFailed):
            raise
        raise exception.ConfigDriveFailed(uuid=instance.uuid,
                                          reason=e) from e
    if not instance.config_drive:
        # server show must say the server has one.
        instance.config_drive = True
    LOG.info('Config drive written to %(dir)s, mounted read-only at '
             '%(mount)s', {'dir': final,
                           'mount': CONF.docker.config_drive_mount},
             instance=instance)
    return final


def remove(instance_uuid):
    """Remove a server's tree; a missing one is fine."""
    shutil.rmtree(host_dir(instance_uuid), ignore_errors=True)


def remove_orphans(live_uuids):
    """Remove the trees (and unfinished builds) of servers not live here."""
    base = CONF.docker.config_drive_dir
    try:
        names = os.listdir(base)
    except OSError:
        return []
    live = set(live_uuids)
    gone = []
    for name in names:
        uuid = name.lstrip('.')[:36]
        if not netns.is_instance_uuid(uuid):
            continue
        if uuid not in live or name.startswith('.'):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            gone.append(uuid)
    return sorted(set(gone))


def _runner_script():
    """The shell that runs the user-data script once, then the command."""
    script = os.path.join(CONF.docker.config_drive_mount, 'openstack',
                          'latest', 'user_data')
    copy = RUNNER_DIR + '/user-data'
    mark = RUNNER_DIR + '/user-data.done'
    return (
        'if [ ! -e %(mark)s ] && [ -f %(script)s ]; then '
        'mkdir -p %(dir)s && cp %(script)s %(copy)s && chmod 0700 %(copy)s '
        '&& { %(copy)s; echo "nova-docker: user-data script exited with '
        'status $?"; : > %(mark)s; } '
        '|| echo "nova-docker: user-data script could not be run"; fi; '
        'exec "$@"' % {'mark': mark, 'script': script, 'dir': RUNNER_DIR,
                       'copy': copy})


def run_user_data_first(config, image_entrypoint, image_cmd):
    """Make the workload run the user-data script, then its own command.

    *config* is the workload's create arguments; the image's entrypoint and
    command are kept as the runner's arguments, so the image's command still
    becomes PID 1 (exec) once the script is done. The runner needs /bin/sh
    in the image.
    """
    command = config.get('command') or image_cmd or []
    argv = list(image_entrypoint or []) + list(command)
    if not argv:
        raise exception.UserDataScriptUnrunnable(
            reason='the image has no command to run after it')
    config['entrypoint'] = ['/bin/sh', '-c', _runner_script(), RUNNER_NAME]
    config['command'] = argv
    return config
