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

"""Stand-in for devstack's iniset/iniget/inidelete: edits real ini files.

    standin_ini.py set FILE SECTION OPTION VALUE
    standin_ini.py get FILE SECTION OPTION      (prints nothing when unset)
    standin_ini.py delete FILE SECTION OPTION

Like devstack's, set creates the file and section when missing, and
delete leaves the (possibly empty) section header in place.
"""

import configparser
import os
import sys


def read(path):
    parser = configparser.RawConfigParser(strict=False,
                                          default_section='\x00')
    parser.optionxform = str
    if os.path.exists(path):
        parser.read(path)
    return parser


def write(parser, path):
    with open(path, 'w') as f:
        parser.write(f)


def main():
    verb, path, section, option = sys.argv[1:5]
    parser = read(path)
    if verb == 'get':
        if parser.has_option(section, option):
            print(parser.get(section, option))
        return
    if verb == 'set':
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, option, sys.argv[5])
        write(parser, path)
    elif verb == 'delete':
        if parser.has_option(section, option):
            parser.remove_option(section, option)
            write(parser, path)
    else:
        sys.exit('standin_ini.py: unknown verb %s' % verb)


if __name__ == '__main__':
    main()
