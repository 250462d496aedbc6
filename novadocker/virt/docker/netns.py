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

"""The network namespace link of a server, for operators.

``/var/run/netns/nova-<instance uuid>`` is a symlink to
``/proc/<sandbox pid>/ns/net``, so ``ip netns exec nova-<uuid> ...`` works
on the sandbox's namespace. It is created and removed only through the
root helper (nova-rootwrap) and the exact filters in
``etc/nova/rootwrap.d/docker.filters``; nothing else here runs as root.
"""

import os
import re
import shlex

from nova import utils as nova_utils
from oslo_concurrency import processutils
from oslo_log import log as logging

import novadocker.conf
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

NETNS_DIR = '/var/run/netns'
_UUID_RE = re.compile(
    r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z')


def is_instance_uuid(value):
    """True for a uuid as Nova writes it: 36 lowercase characters."""
    return isinstance(value, str) and bool(_UUID_RE.match(value))


def link_name(instance_uuid):
    """Name of the namespace link of an instance: ``nova-<uuid>``."""
    if not is_instance_uuid(instance_uuid):
        raise exception.NamespaceLinkFailed(
            action='name', path='%s/nova-%r' % (NETNS_DIR, instance_uuid),
            reason='an instance uuid is 36 lowercase hexadecimal digits and '
                   'dashes')
    return 'nova-' + instance_uuid


def link_path(instance_uuid):
    """Absolute path of the namespace link of an instance."""
    return os.path.join(NETNS_DIR, link_name(instance_uuid))


def _root_helper():
    return CONF.docker.root_helper or nova_utils.get_root_helper()


def _run_as_root(action, path, *cmd):
    try:
        processutils.execute(*cmd, run_as_root=True,
                             root_helper=_root_helper())
    except (processutils.ProcessExecutionError, OSError) as e:
        reason = getattr(e, 'stderr', None) or str(e)
        raise exception.NamespaceLinkFailed(
            action=action, path=path,
            reason='%s failed: %s' % (shlex.join(cmd), reason.strip())
        ) from e


def proc_path(pid):
    """``/proc/<pid>/ns/net``: what a namespace link points to."""
    return '/proc/%d/ns/net' % pid


def link_target(instance_uuid):
    """Where the namespace link of the instance points, or None."""
    try:
        return os.readlink(link_path(instance_uuid))
    except OSError:
        return None


def create_link(instance_uuid, pid):
    """Point the namespace link of the instance at the netns of *pid*.

    A link left by an earlier start of the same instance is replaced. The
    link is for operators only: a failure is logged, never raised, and
    returns False.
    """
    try:
        _create_link(instance_uuid, pid)
    except exception.NamespaceLinkFailed as e:
        LOG.warning('%s The server works without it; only "ip netns exec '
                    'nova-%s" does not.', e, instance_uuid)
        return False
    return True


def _create_link(instance_uuid, pid):
    path = link_path(instance_uuid)
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise exception.NamespaceLinkFailed(
            action='create', path=path,
            reason='%r is not the pid of a running sandbox' % (pid,))
    if not os.path.isdir(NETNS_DIR):
        _run_as_root('create', path, 'mkdir', '-p', NETNS_DIR)
    _run_as_root('create', path, 'ln', '-sfT', proc_path(pid), path)
    LOG.debug('Namespace link %(path)s -> pid %(pid)d',
              {'path': path, 'pid': pid})


def remove_link(instance_uuid):
    """Remove the namespace link of the instance; a missing one is fine."""
    path = link_path(instance_uuid)
    if not os.path.lexists(path):
        return
    _run_as_root('remove', path, 'rm', '-f', path)
    LOG.debug('Namespace link %s removed', path)
