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

"""The driver's OVSDB client: the few rows it reads and writes itself.

os-vif plugs and unplugs ports; this module does the rest of the driver's
OVS work (is the bridge there, a port's Interface row, the host mark, the
orphan sweep). It holds one native connection of its own, made with
ovsdbapp's public Open_vSwitch API and opened at start-up (init_host), to
the OVSDB that ``[os_vif_ovs] ovsdb_connection`` names: reads come from
its in-memory replica and writes are one transaction, with no process
forked. When that connection cannot be opened or a call on it fails, the
call is made with ``ovs-vsctl`` instead, and a WARNING says so.
"""

import json
import threading
import time

from oslo_concurrency import processutils
from oslo_log import log as logging
from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.schema.open_vswitch import impl_idl

import novadocker.conf
from novadocker.virt.docker import exception

CONF = novadocker.conf.CONF
LOG = logging.getLogger(__name__)

DEFAULT_CONNECTION = 'unix:/var/run/openvswitch/db.sock'
SCHEMA = 'Open_vSwitch'
# As ovs-vsctl's --timeout: a dead OVSDB is reported, not waited for.
TIMEOUT = 5
# How long after a failed open the next call tries again.
REOPEN_INTERVAL = 30
INTERFACE_COLUMNS = ('name', 'ofport', 'error', 'external_ids')


class _DriverOvsdb(impl_idl.OvsdbIdl):
    """ovsdbapp's Open_vSwitch API on this driver's own connection.

    ovsdbapp keeps the connection on the API class: a class of our own
    keeps it apart from any other user's (os-vif's among them).
    """


class _Client(object):
    """The open native connection, or when to try opening it again."""

    def __init__(self):
        self.lock = threading.Lock()
        self.api = None
        self.remote = None
        self.next_try = 0.0


_client = _Client()


def _open(remote):
    idl = connection.OvsdbIdl.from_server(remote, SCHEMA)
    return _DriverOvsdb(connection.Connection(idl, TIMEOUT))


def open_connection():
    """Open the native connection at start-up; True when it is open.

    Never raises: an OVSDB that does not answer is logged as a WARNING and
    every call uses ovs-vsctl until a later call opens the connection.
    """
    remote = CONF.os_vif_ovs.ovsdb_connection
    with _client.lock:
        if _client.api is not None:
            if _client.remote != remote:
                LOG.warning('The OVSDB connection is open to %(old)s; '
                            '[os_vif_ovs] ovsdb_connection now names '
                            '%(new)s: restart nova-compute to use it. Until '
                            'then OVS is reached with ovs-vsctl.',
                            {'old': _client.remote, 'new': remote})
            return _client.remote == remote
        _client.next_try = time.monotonic() + REOPEN_INTERVAL
        try:
            _client.api = _open(remote)
        except Exception as e:
            LOG.warning('Cannot open a native OVSDB connection to %(remote)s '
                        '(%(err)s); OVS is reached with ovs-vsctl, one '
                        'process a call, until it opens.',
                        {'remote': remote, 'err': e})
            return False
        _client.remote = remote
    LOG.info('Native OVSDB connection open to %s', remote)
    return True


def close_connection():
    """Close the native connection (at shutdown); a later call reopens it."""
    with _client.lock:
        api, _client.api, _client.remote = _client.api, None, None
        _client.next_try = 0.0
        if api is None:
            return
        conn = api.ovsdb_connection
        # ovsdbapp keeps the first connection made on the API class; ours
        # is the only user of _DriverOvsdb, so the class forgets it here.
        _DriverOvsdb._ovsdb_connection = None
    try:
        conn.stop(timeout=TIMEOUT)
        conn.idl.close()
    except Exception as e:
        LOG.debug('Closing the OVSDB connection: %s', e)


def _native():
    """The open API for the configured OVSDB, or None."""
    if _client.api is None and time.monotonic() >= _client.next_try:
        open_connection()
    if _client.api is None or \
            _client.remote != CONF.os_vif_ovs.ovsdb_connection:
        return None
    return _client.api


def _fall_back(what, err):
    LOG.warning('OVSDB %(what)s failed on the native connection, using '
                'ovs-vsctl: %(err)s', {'what': what, 'err': err})


def _run(what, command):
    """Execute one ovsdbapp command; (True, result) or (False, None)."""
    api = _native()
    if api is None:
        return False, None
    try:
        return True, command(api).execute(check_error=True)
    except Exception as e:
        _fall_back(what, e)
        return False, None


def vsctl(*args):
    """Run ovs-vsctl on [os_vif_ovs] ovsdb_connection; its stdout.

    Raises OvsUnreachable when OVSDB does not answer; ProcessExecutionError
    for a command that ran and failed.
    """
    remote = CONF.os_vif_ovs.ovsdb_connection
    try:
        out, _err = processutils.execute(
            'ovs-vsctl', '--timeout=%d' % TIMEOUT, '--db=%s' % remote, *args)
    except processutils.ProcessExecutionError as e:
        stderr = (e.stderr or '').strip()
        if e.exit_code == 2 and args[:1] == ('br-exists',):
            raise
        if 'database connection failed' in stderr or e.exit_code in (
                -14, 142) or 'timeout' in stderr.lower():
            raise exception.OvsUnreachable(connection=remote,
                                           reason=stderr or str(e)) from e
        raise
    except OSError as e:
        raise exception.OvsUnreachable(connection=remote,
                                       reason=str(e)) from e
    return out


def check():
    """Raise OvsUnreachable unless the configured OVSDB answers."""
    if _native() is None:
        vsctl('get', 'Open_vSwitch', '.', 'ovs_version')


def bridge_exists(bridge):
    """Whether OVS has *bridge*; OvsUnreachable when OVSDB does not answer."""
    done, found = _run('lookup of bridge %s' % bridge,
                       lambda api: api.br_exists(bridge))
    if done:
        return bool(found)
    try:
        vsctl('br-exists', bridge)
    except processutils.ProcessExecutionError as e:
        if e.exit_code == 2:
            return False
        raise exception.OvsUnreachable(
            connection=CONF.os_vif_ovs.ovsdb_connection,
            reason=(e.stderr or str(e)).strip()) from e
    return True


def interface_row(name, ofport, error, external_ids):
    """One Interface row, read by ovs-vsctl or from the replica.

    An unset ofport or error (an empty set in both) becomes -1 or None.
    """
    return {'name': name,
            'ofport': ofport if isinstance(ofport, int) else -1,
            'error': error if isinstance(error, str) else None,
            'external_ids': dict(external_ids)}


def _native_rows(found):
    return [interface_row(*(r[c] for c in INTERFACE_COLUMNS))
            for r in found]


def _vsctl_rows(*conditions):
    table = json.loads(vsctl(
        '--format=json', '--columns=%s' % ','.join(INTERFACE_COLUMNS),
        'find', 'Interface', *conditions))
    return [interface_row(name, ofport, error, ids[1])
            for name, ofport, error, ids in table['data']]


def interfaces_named(names):
    """{name: Interface row} of those of *names* that OVS has.

    One read for all of them: a transaction on the replica, or one
    ovs-vsctl.
    """
    names = list(names)
    if not names:
        return {}
    done, found = _run('read of interfaces %s' % ', '.join(names),
                       lambda api: api.db_list(
                           'Interface', records=names, if_exists=True,
                           columns=list(INTERFACE_COLUMNS)))
    if done:
        rows = _native_rows(found)
    else:
        wanted = set(names)
        rows = [r for r in _vsctl_rows() if r['name'] in wanted]
    return {r['name']: r for r in rows}


def interfaces_marked(key, value):
    """Interface rows whose external_ids hold *key*=*value*."""
    done, found = _run('search of interfaces %s=%s' % (key, value),
                       lambda api: api.db_find(
                           'Interface', ('external_ids', '=', {key: value}),
                           columns=list(INTERFACE_COLUMNS)))
    if done:
        return _native_rows(found)
    return _vsctl_rows('external_ids:%s=%s' % (key, value))


def set_interface_id(name, key, value):
    """Set one external_ids key of Interface *name*, keeping the others."""
    done, _ = _run('update of interface %s' % name,
                   lambda api: api.db_set('Interface', name,
                                          ('external_ids', {key: value})))
    if not done:
        vsctl('set', 'Interface', name, 'external_ids:%s=%s' % (key, value))


def del_port(port, bridge=None):
    """Remove the OVS port *port* (of *bridge* when given), if it is there."""
    done, _ = _run('removal of port %s' % port,
                   lambda api: api.del_port(port, bridge=bridge,
                                            if_exists=True))
    if not done:
        vsctl('--if-exists', 'del-port', *([bridge] if bridge else []) +
              [port])
