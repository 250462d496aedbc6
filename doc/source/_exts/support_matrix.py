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

"""``.. support-matrix:: <file.ini>``: a feature support matrix.

The file has Nova's support-matrix layout: ``[driver.<key>]`` sections
(``title``, optional ``link``) naming the columns in order, then
``[operation.<key>]`` sections (``title``, ``status``, optional ``notes``
and ``cli``) with one ``driver.<key> = complete|partial|missing|unknown``
per column and optional ``driver-notes.<key>``. The directive renders a
summary table and, below it, each operation with its notes.
"""

import configparser
import os

from docutils.parsers.rst import Directive
from docutils.parsers.rst import directives
from docutils import statemachine

STATUSES = ('complete', 'partial', 'missing', 'unknown')
SHOWN = {'complete': 'yes', 'partial': 'partly', 'missing': 'no',
         'unknown': '?'}


class Matrix(object):

    def __init__(self, drivers, operations):
        self.drivers = drivers          # [(key, title, link)]
        self.operations = operations    # [dict]


def load(path):
    """Read and check the file; a mistake is an error naming it."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    with open(path) as f:
        parser.read_file(f)
    drivers, operations = [], []
    for section in parser.sections():
        kind, _, key = section.partition('.')
        items = dict(parser.items(section))
        if kind == 'driver':
            drivers.append((key, items['title'], items.get('link')))
        elif kind == 'operation':
            op = {'key': key, 'title': items['title'],
                  'status': items['status'], 'notes': items.get('notes'),
                  'cli': items.get('cli'), 'support': {}, 'notes_of': {}}
            for dkey, _, _ in drivers:
                value = items.get('driver.' + dkey)
                if value not in STATUSES:
                    raise ValueError(  # noqa: N534
                        '%s: [%s] driver.%s is %r, not one of %s'
                        % (path, section, dkey, value, ', '.join(STATUSES)))
                op['support'][dkey] = value
                if items.get('driver-notes.' + dkey):
                    op['notes_of'][dkey] = items['driver-notes.' + dkey]
            known = {'title', 'status', 'notes', 'cli'}
            known |= {'driver.' + d for d, _, _ in drivers}
            known |= {'driver-notes.' + d for d, _, _ in drivers}
            unknown = sorted(set(items) - known)
            if unknown:
                raise ValueError(  # noqa: N534
                    '%s: [%s] has unknown keys %s'
                    % (path, section, ', '.join(unknown)))
            operations.append(op)
        else:
            raise ValueError(  # noqa: N534
                '%s: unknown section [%s]' % (path, section))
    return Matrix(drivers, operations)


def _one_line(text):
    return ' '.join((text or '').split())


def render(matrix):
    """The matrix as reStructuredText lines."""
    out = ['.. list-table:: Summary', '   :header-rows: 1',
           '   :stub-columns: 1', '']
    out.append('   * - Operation')
    out.append('     - Status')
    for _, title, _ in matrix.drivers:
        out.append('     - ' + title)
    for op in matrix.operations:
        out.append('   * - :ref:`%s <matrix-%s>`' % (op['title'], op['key']))
        out.append('     - ' + op['status'])
        for dkey, _, _ in matrix.drivers:
            out.append('     - ' + SHOWN[op['support'][dkey]])
    out += ['', 'Drivers', '-------', '']
    for dkey, title, link in matrix.drivers:
        out.append('* **%s**%s' % (title,
                                   ': %s' % link if link else ''))
    out += ['', 'Operations', '----------', '']
    for op in matrix.operations:
        out += ['.. _matrix-%s:' % op['key'], '', op['title'],
                '~' * len(op['title']), '',
                ':Status: ' + op['status']]
        if op['cli']:
            out.append(':CLI: ``%s``' % _one_line(op['cli']))
        out.append('')
        if op['notes']:
            out += [_one_line(op['notes']), '']
        for dkey, title, _ in matrix.drivers:
            line = '* %s: **%s**' % (title, op['support'][dkey])
            if dkey in op['notes_of']:
                line += '. ' + _one_line(op['notes_of'][dkey])
            out.append(line)
        out.append('')
    return out


class SupportMatrixDirective(Directive):
    required_arguments = 1
    has_content = False
    option_spec = {'name': directives.unchanged}

    def run(self):
        env = self.state.document.settings.env
        rel, path = env.relfn2path(self.arguments[0])
        env.note_dependency(rel)
        try:
            matrix = load(path)
        except (OSError, ValueError, KeyError, configparser.Error) as e:
            raise self.error('support matrix %s: %s' % (path, e))
        lines = statemachine.StringList(render(matrix),
                                        source=os.path.basename(path))
        self.state_machine.insert_input(lines, path)
        return []


def setup(app):
    app.add_directive('support-matrix', SupportMatrixDirective)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}
