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

"""The driver's OVSDB client: native first, ovs-vsctl with a warning."""

import logging

import fixtures
from nova import test
from oslo_concurrency import processutils

from novadocker.virt.docker import exception
from novadocker.virt.docker import ovsdb
from novadocker.virt.docker import vifs
from tests.unit import test_vifs

PORT = 'c0ffee00-1111-4222-8333-944455556666'
TAP = 'tapc0ffee00-11'
ROW = {'name': TAP, 'ofport': 7, 'error': [],
       'external_ids': {'iface-id': PORT}}
VSCTL_FIND = ('{"headings": ["name", "ofport", "error", "external_ids"],'
              ' "data": [["%s", 7, ["set", []], ["map", [["iface-id", '
              '"%s"]]]]]}' % (TAP, PORT))


class _Command(object):

    def __init__(self, result=None, error=None):
        self.result, self.error = result, error

    def execute(self, check_error=False):
        assert check_error, 'a failed OVSDB command must raise'
        if self.error:
            raise self.error
        return self.result


class _Api(object):
    """ovsdbapp's Open_vSwitch API as far as the client uses it."""

    def __init__(self, rows=(), bridges=('br-int',), error=None):
        self.rows, self.bridges = list(rows), set(bridges)
        self.error, self.calls = error, []

    def _call(self, result, *call):
        self.calls.append(call)
        return _Command(result, self.error)

    def br_exists(self, name):
        return self._call(name in self.bridges, 'br_exists', name)

    def db_list(self, table, records=None, columns=None, if_exists=False):
        assert if_exists
        found = [r for r in self.rows if r['name'] in records]
        return self._call(found, 'list', table, tuple(records))

    def db_find(self, table, *conditions, columns=None):
        return self._call(self.rows, 'find', table, conditions)

    def db_set(self, table, record, *col_values):
        return self._call(None, 'set', table, record, col_values)

    def del_port(self, port, bridge=None, if_exists=False):
        assert if_exists
        return self._call(None, 'del_port', port, bridge)


class OvsdbClientTestCase(test.NoDBTestCase):

    def setUp(self):
        super().setUp()
        vifs.load()
        self.forks = []
        self.vsctl_error = None
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_concurrency.processutils.execute', self._execute))
        self.opened = []
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.ovsdb._client', ovsdb._Client()))
        self.logged = self.useFixture(fixtures.FakeLogger(
            name='novadocker.virt.docker.ovsdb', level=logging.INFO,
            format='%(levelname)s %(message)s'))

    def _execute(self, *cmd, **kwargs):
        self.forks.append(cmd)
        if self.vsctl_error:
            raise self.vsctl_error
        return (VSCTL_FIND if 'find' in cmd else ''), ''

    def connect(self, api):
        def _open(remote):
            self.opened.append(remote)
            if isinstance(api, Exception):
                raise api
            return api
        self.useFixture(fixtures.MonkeyPatch(
            'novadocker.virt.docker.ovsdb._open', _open))
        return ovsdb.open_connection()

    def test_opened_at_start_up_then_no_fork(self):
        api = _Api([ROW])
        self.assertTrue(self.connect(api))
        self.assertTrue(ovsdb.bridge_exists('br-int'))
        self.assertFalse(ovsdb.bridge_exists('br-other'))
        self.assertEqual({TAP: {'name': TAP, 'ofport': 7, 'error': None,
                                'external_ids': {'iface-id': PORT}}},
                         ovsdb.interfaces_named([TAP, 'tapgone']))
        ovsdb.set_interface_id(TAP, 'nova-docker-host', 'h1')
        ovsdb.del_port(TAP, bridge='br-int')
        ovsdb.check()
        self.assertEqual([], self.forks)
        self.assertEqual([('list', 'Interface', (TAP, 'tapgone')),
                          ('set', 'Interface', TAP,
                           (('external_ids', {'nova-docker-host': 'h1'}),)),
                          ('del_port', TAP, 'br-int')], api.calls[2:])
        self.assertEqual(1, len(self.opened))

    def test_kept_ports_are_read_in_one_request(self):
        # As a restart of nova-compute plugs the ports it finds.
        api = _Api([ROW])
        self.connect(api)
        osvif = vifs._to_osvif(_vif(PORT))
        other = vifs._to_osvif(_vif('c0ffee00-2222-4222-8333-944455556666'))
        self.assertEqual(
            {PORT: 'ok', 'c0ffee00-2222-4222-8333-944455556666': 'missing'},
            vifs._ovs_port_states([(osvif, PORT), (
                other, 'c0ffee00-2222-4222-8333-944455556666')]))
        self.assertEqual(1, len(api.calls))

    def test_a_row_marked_with_the_host_reads_as_marked(self):
        api = _Api([dict(ROW, external_ids=dict(
            ROW['external_ids'], **{vifs.OVS_HOST_KEY: 'h1'}))])
        self.connect(api)
        osvif = vifs._to_osvif(_vif(PORT))
        self.assertEqual({PORT: 'marked'},
                         vifs._ovs_port_states([(osvif, PORT)], 'h1'))
        self.assertEqual({PORT: 'ok'},
                         vifs._ovs_port_states([(osvif, PORT)], 'h2'))

    def test_unopened_connection_warns_and_uses_vsctl(self):
        self.assertFalse(self.connect(OSError('connection refused')))
        self.assertIn('WARNING Cannot open a native OVSDB connection',
                      self.logged.output)
        self.assertIn('connection refused', self.logged.output)
        self.assertEqual({TAP: ovsdb.interface_row(TAP, 7, ['set', []],
                                                   {'iface-id': PORT})},
                         ovsdb.interfaces_named([TAP]))
        self.assertEqual(1, len(self.forks))
        # Not reopened at every call: a dead OVSDB costs one try a while.
        self.assertEqual(1, len(self.opened))

    def test_failed_native_call_warns_and_uses_vsctl(self):
        self.connect(_Api(error=RuntimeError('row not found')))
        ovsdb.set_interface_id(TAP, 'nova-docker-host', 'h1')
        self.assertEqual([('ovs-vsctl', '--timeout=5', '--db=%s'
                           % vifs.CONF.os_vif_ovs.ovsdb_connection, 'set',
                           'Interface', TAP, 'external_ids:nova-docker-host'
                           '=h1')], self.forks)
        self.assertIn('WARNING OVSDB update of interface %s failed on the '
                      'native connection, using ovs-vsctl: row not found'
                      % TAP, self.logged.output)

    def test_connection_to_another_ovsdb_is_not_used(self):
        self.connect(_Api([ROW]))
        self.flags(ovsdb_connection='unix:/run/other.sock',
                   group='os_vif_ovs')
        self.vsctl_error = processutils.ProcessExecutionError(
            exit_code=2, cmd='br-exists')
        self.assertFalse(ovsdb.bridge_exists('br-int'))
        self.assertEqual('--db=unix:/run/other.sock', self.forks[0][2])

    def test_missing_bridge_is_named_without_a_fork(self):
        self.connect(_Api())
        err = self.assertRaises(exception.OvsBridgeMissing,
                                vifs._check_bridge, 'br-other', PORT)
        self.assertIn('br-other', str(err))
        self.assertEqual([], self.forks)

    def test_dead_ovsdb_is_unreachable(self):
        self.connect(OSError('connection refused'))
        self.vsctl_error = processutils.ProcessExecutionError(
            exit_code=1, stderr='ovs-vsctl: unix:/x: database connection '
                                'failed (No such file or directory)')
        self.assertRaises(exception.OvsUnreachable, ovsdb.check)
        self.assertRaises(exception.OvsUnreachable, ovsdb.bridge_exists,
                          'br-int')


def _vif(port_id):
    return test_vifs.make_vif(port_id=port_id)
