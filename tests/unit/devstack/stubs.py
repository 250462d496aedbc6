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

"""PATH stubs for what a devstack node would reach over the network.

Called as ``stubs.py NAME ARGS...`` by small wrappers in the node's bin
directory, in place of openstack (the cloud APIs), nova-manage, systemctl,
ovs-vsctl, docker, apt-get, pip, git and the account commands. Devstack's
own code runs for real around them. Every call is appended to $STUB_CALLS
(one JSON list per line); state is kept in JSON files under $STUB_STATE, so
a later call sees what an earlier one did, and the stubs refuse what the
real service would refuse: an aggregate host Nova has not registered and
discovered, a manager target OVS cannot parse, an install whose nova
requirement the installed nova does not meet.
"""

import configparser
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys


def _state_path(name):
    return os.path.join(os.environ['STUB_STATE'], name + '.json')


def load(name, default):
    try:
        with open(_state_path(name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def save(name, value):
    with open(_state_path(name), 'w') as f:
        json.dump(value, f, indent=1, sort_keys=True)


def record(argv):
    with open(os.environ['STUB_CALLS'], 'a') as f:
        f.write(json.dumps(argv) + '\n')


def fail(message, code=1):
    sys.stderr.write(message + '\n')
    sys.exit(code)


def option(args, name, default=None):
    """Value following *name* in *args*, removing both."""
    if name not in args:
        return default
    i = args.index(name)
    value = args[i + 1]
    del args[i:i + 2]
    return value


def flag(args, name):
    if name in args:
        args.remove(name)
        return True
    return False


def print_value(obj, args):
    fmt = option(args, '-f')
    column = option(args, '-c')
    if fmt == 'json':
        print(json.dumps(obj))
    elif column:
        print(obj[column])
    else:
        print(obj)


# openstack -------------------------------------------------------------------

def os_aggregate(args):
    aggs = load('aggregates', {})
    verb = args.pop(0)
    if verb == 'show':
        name = args.pop(0)
        if name not in aggs:
            fail('No aggregate with a name or ID of %s exists.' % name)
        print_value(aggs[name], args)
    elif verb == 'create':
        zone = option(args, '--zone')
        name = args.pop(0)
        if name in aggs:
            fail('Aggregate %s already exists.' % name, 409)
        aggs[name] = {'name': name, 'availability_zone': zone, 'hosts': []}
    elif verb in ('add', 'remove'):
        assert args.pop(0) == 'host'
        name, host = args
        if name not in aggs:
            fail('No aggregate with a name or ID of %s exists.' % name)
        mapped = load('host-mappings', [])
        if verb == 'add' and host not in mapped:
            # Nova looks the host up in the cell mappings.
            fail('Compute host %s could not be found. (HTTP 404)' % host)
        hosts = aggs[name]['hosts']
        if (host in hosts) == (verb == 'add'):
            fail('host %s: conflict in aggregate %s' % (host, name), 409)
        if verb == 'add':
            hosts.append(host)
        else:
            hosts.remove(host)
    elif verb == 'delete':
        name = args.pop(0)
        if name not in aggs or aggs[name]['hosts']:
            fail('cannot delete aggregate %s' % name)
        del aggs[name]
    else:
        fail('stand-in openstack: aggregate %s unsupported' % verb, 2)
    save('aggregates', aggs)


def os_image(args):
    images = load('images', [])
    verb = args.pop(0)
    if verb == 'list':
        name = option(args, '--name')
        for image in images:
            if name is None or image['name'] == name:
                print(image['id'])
    elif verb == 'create':
        image = {
            'container_format': option(args, '--container-format'),
            'disk_format': option(args, '--disk-format'),
            'public': flag(args, '--public'),
            'name': args.pop(0),
        }
        data = sys.stdin.buffer.read()
        if os.environ.get('STUB_GLANCE_REJECTS'):
            fail('BadRequest: Invalid container format docker (HTTP 400)')
        image['id'] = 'image-%d' % (len(images) + 1)
        image['size'] = len(data)
        image['sha256'] = hashlib.sha256(data).hexdigest()
        images.append(image)
    elif verb == 'delete':
        name = args.pop(0)
        kept = [i for i in images if name not in (i['name'], i['id'])]
        if len(kept) == len(images):
            fail('No image with a name or ID of %s exists.' % name)
        images = kept
    else:
        fail('stand-in openstack: image %s unsupported' % verb, 2)
    save('images', images)


def os_stack(args):
    stacks = load('stacks', {})
    verb = args.pop(0)
    if verb == 'show':
        name = args.pop(0)
        if name not in stacks:
            fail('Stack not found: %s' % name)
        print_value(stacks[name], args)
    elif verb == 'create':
        flag(args, '--wait')
        template = option(args, '-t')
        params = {}
        while '--parameter' in args:
            key, _, value = option(args, '--parameter').partition('=')
            params[key] = value
        name = args.pop(0)
        if name in stacks:
            fail('The Stack (%s) already exists.' % name, 409)
        failed = bool(os.environ.get('STUB_STACK_FAILS'))
        stacks[name] = {
            'stack_name': name, 'template': template, 'parameters': params,
            'stack_status': 'CREATE_FAILED' if failed else 'CREATE_COMPLETE',
            'outputs': {'odl_ovs_managers':
                        os.environ.get('STUB_ODL_OUTPUT', '')},
        }
        save('stacks', stacks)
        if failed:
            fail('Stack %s CREATE_FAILED' % name)
    elif verb == 'output':
        assert args.pop(0) == 'show'
        name, key = args.pop(0), args.pop(0)
        if name not in stacks:
            fail('Stack not found: %s' % name)
        print_value({'output_value': stacks[name]['outputs'][key]}, args)
    elif verb == 'delete':
        flag(args, '--yes')
        flag(args, '--wait')
        name = args.pop(0)
        if stacks.pop(name, None) is None:
            fail('Stack not found: %s' % name)
    else:
        fail('stand-in openstack: stack %s unsupported' % verb, 2)
    save('stacks', stacks)


def os_compute(args):
    assert args[:2] == ['service', 'list'], args
    del args[:2]
    service = option(args, '--service')
    host = option(args, '--host')
    rows = [r for r in load('compute-services', {}).values()
            if (service in (None, r['Binary']) and
                host in (None, r['Host']))]
    column = option(args, '-c')
    option(args, '-f')
    for row in rows:
        print(row[column] if column else json.dumps(row))


def api_up():
    return os.path.exists(os.path.join(os.environ['STUB_STATE'], 'api.up'))


def openstack(args):
    if not api_up():
        fail('Failed to discover available identity versions when '
             'contacting http://%s/identity.' % socket.gethostname())
    option(args, '--os-cloud')
    option(args, '--os-region')
    handlers = {'aggregate': os_aggregate, 'image': os_image,
                'stack': os_stack, 'compute': os_compute}
    resource = args.pop(0)
    if resource not in handlers:
        fail('stand-in openstack: %s unsupported' % resource, 2)
    handlers[resource](args)


# ovs-vsctl -------------------------------------------------------------------

TARGETS = (re.compile(r'^(tcp|ssl):(?P<ip>[^\[\]:]+|\[[^\]]+\]):'
                      r'(?P<port>[0-9]{1,5})$'),
           re.compile(r'^(ptcp|pssl):(?P<port>[0-9]{1,5})'
                      r'(:(?P<ip>[^\[\]:]+|\[[^\]]+\]))?$'),
           re.compile(r'^p?unix:/\S+$'))


def valid_target(target):
    """What ovsdb-server accepts as a remote (host names are not)."""
    for pattern in TARGETS:
        m = pattern.match(target)
        if not m:
            continue
        if 'port' not in pattern.groupindex:
            return True
        ip = (m.group('ip') or '0.0.0.0').strip('[]')
        try:
            socket.inet_pton(socket.AF_INET6 if ':' in ip
                             else socket.AF_INET, ip)
        except OSError:
            return False
        return 0 < int(m.group('port')) < 65536
    return False


def ovs_vsctl(args):
    if not os.path.exists(os.path.join(os.environ['STUB_STATE'], 'ovs.up')):
        fail('ovs-vsctl: unix:/var/run/openvswitch/db.sock: database '
             'connection failed (No such file or directory)')
    args = [a for a in args if not (a in ('--no-wait', '--may-exist', '--') or
                                    a.startswith('--timeout'))]
    managers = load('ovs-managers', [])
    verb = args.pop(0)
    if verb == 'get-manager':
        for target in managers:
            print(target)
    elif verb == 'set-manager':
        for target in args:
            if not valid_target(target):
                fail('ovs-vsctl: "%s": invalid connection target' % target)
        save('ovs-managers', args)
        odl_members_connect(args)
    elif verb == 'del-manager':
        save('ovs-managers', [])
    elif verb in ('br-exists', 'list-br', 'add-br', 'del-br'):
        ovs_bridges(verb, args)
    elif verb == 'get' and args[:3] == ['Open_vSwitch', '.', '_uuid']:
        print('5f1d9a8e-0000-4000-8000-00000000cafe')
    elif verb == 'list' and args[:1] in (['Bridge'], ['bridge']):
        for name in load('ovs-bridges', []):
            print('name                : "%s"' % name)
    elif verb == 'show':
        for name in load('ovs-bridges', []):
            print('    Bridge %s' % name)
    # Other settings (external-ids, ports, controllers) are not what the
    # plugins read back.


def ovs_bridges(verb, args):
    bridges = load('ovs-bridges', [])
    if verb == 'br-exists':
        sys.exit(0 if args[0] in bridges else 2)
    elif verb == 'list-br':
        print('\n'.join(bridges))
    elif verb == 'add-br' and args[0] not in bridges:
        bridges.append(args[0])
    elif verb == 'del-br':
        bridges = [b for b in bridges if b != args[0]]
    save('ovs-bridges', bridges)


def odl_members_connect(targets):
    """A member (STUB_ODL_MEMBERS) OVS connects to creates br-int.

    As ODL's netvirt does; networking-odl waits for that bridge.
    """
    members = os.environ.get('STUB_ODL_MEMBERS', '').split(',')
    port = os.environ.get('ODL_MGR_PORT', '6640')
    if any('tcp:%s:%s' % (m, port) in targets for m in members if m):
        ovn_controller_started()


# docker ----------------------------------------------------------------------

def docker(args):
    up = os.path.exists(os.path.join(os.environ['STUB_STATE'],
                                     'dockerd.up'))
    if not up:
        fail('Cannot connect to the Docker daemon at '
             'unix:///var/run/docker.sock. Is the docker daemon running?')
    images = load('docker-images', {})
    verb = args.pop(0)
    if verb == 'info':
        print('Server Version: stand-in')
    elif verb == 'image' and args[0] == 'inspect':
        if args[1] not in images:
            fail('Error: No such image: %s' % args[1])
        print(json.dumps([images[args[1]]]))
    elif verb == 'image' and args[0] == 'rm':
        if images.pop(args[1], None) is None:
            fail('Error: No such image: %s' % args[1])
    elif verb == 'import':
        name = args[-1]
        data = sys.stdin.buffer.read()
        images[name] = {'name': name, 'size': len(data),
                        'sha256': hashlib.sha256(data).hexdigest()}
    elif verb == 'ps':
        label = option(args, '--filter').split('=', 1)[1]
        key, _, value = label.partition('=')
        for cid, labels in load('containers', {}).items():
            if labels.get(key) == value:
                print(cid)
    elif verb == 'rm':
        flag(args, '-f')
        containers = load('containers', {})
        for cid in args:
            containers.pop(cid)
        save('containers', containers)
    elif verb == 'save':
        if args[0] not in images:
            fail('Error: No such image: %s' % args[0])
        sys.stdout.buffer.write(saved_bytes(images[args[0]]))
    else:
        fail('stand-in docker: %s unsupported' % verb, 2)
    save('docker-images', images)


def saved_bytes(image):
    """What the stand-in 'docker save' writes for *image*."""
    return ('docker-save %(name)s %(sha256)s\n' % image).encode() * 64


# accounts, names, services ---------------------------------------------------

def groups_of(user):
    return load('groups', {}).get(user, [user])


def id_(args):
    if args[:1] == ['-nG'] and len(args) == 2:
        print(' '.join(groups_of(args[1])))
    elif args[:1] in (['-gn'], ['-ng']) and len(args) == 2:
        print(args[1])
    else:
        os.execv('/usr/bin/id', ['id'] + args)


def usermod(args):
    assert args[:2] == ['-a', '-G'], args
    groups = load('groups', {})
    groups[args[3]] = groups_of(args[3]) + [args[2]]
    save('groups', groups)


def gpasswd(args):
    assert args[0] == '-d', args
    groups = load('groups', {})
    groups[args[1]] = [g for g in groups_of(args[1]) if g != args[2]]
    save('groups', groups)


def getent(args):
    """Host names resolve only as the test says (no DNS here)."""
    if args[0] not in ('hosts', 'ahostsv4', 'ahosts'):
        os.execv('/usr/bin/getent', ['getent'] + args)
    database, name = args
    hosts = dict(entry.split('=') for entry in
                 os.environ.get('STUB_HOSTS', '').split(';') if entry)
    if name not in hosts:
        sys.exit(2)
    if database == 'ahostsv4':
        print('%s       STREAM %s' % (hosts[name], name))
    else:
        print('%s       %s' % (hosts[name], name))


def unit_file(name):
    for top in (os.path.join(os.environ['HOME'],
                             '.local/share/systemd/user'),
                '/etc/systemd/system'):
        path = os.path.join(top, name)
        if os.path.exists(path):
            parser = configparser.RawConfigParser(strict=False)
            parser.optionxform = str
            parser.read(path)
            return parser
    return None


def register_compute(unit):
    """What nova-compute does when its unit starts: register its host."""
    command = unit.get('Service', 'ExecStart')
    conf_path = command.split('--config-file', 1)[1].split()[0]
    conf = configparser.RawConfigParser(strict=False)
    conf.read(conf_path)
    host = conf.get('DEFAULT', 'host', fallback=socket.gethostname())
    driver = conf.get('DEFAULT', 'compute_driver', fallback='')
    services = load('compute-services', {})
    services[host] = {
        'ID': len(services) + 1, 'Binary': 'nova-compute', 'Host': host,
        'driver': driver,
        'group': unit.get('Service', 'Group', fallback=''),
        'docker_api_url': conf.get('docker', 'api_url', fallback=''),
    }
    save('compute-services', services)
    if os.environ.get('STUB_CONTROLLER_DISCOVERS'):
        # The controller's [scheduler] discover_hosts_in_cells_interval.
        nova_manage(['cell_v2', 'discover_hosts'])


# What Debian's OVN packages do when their units start (ovn-ctl's default
# directories, which devstack's start_ovn waits for).
OVN_RUNDIR = '/var/run/ovn'
OVN_DBDIR = '/var/lib/ovn'


def ovn_central_started():
    os.makedirs(OVN_RUNDIR, exist_ok=True)
    os.makedirs(OVN_DBDIR, exist_ok=True)
    for db in ('ovnnb_db', 'ovnsb_db'):
        path = os.path.join(OVN_RUNDIR, db + '.sock')
        if not os.path.exists(path):
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(path)
            sock.close()
        for name in (os.path.join(OVN_RUNDIR, db + '.ctl'),
                     os.path.join(OVN_DBDIR, db + '.db')):
            open(name, 'a').close()


def ovn_controller_started():
    """ovn-controller creates its integration bridge."""
    bridges = load('ovs-bridges', [])
    if 'br-int' not in bridges:
        save('ovs-bridges', bridges + ['br-int'])


OVN_DAEMONS = {'ovn-central': ovn_central_started,
               'ovn-controller': ovn_controller_started}


def ovn_ctl(args):
    """ovn-nbctl/ovn-sbctl: they need the databases ovn-central serves."""
    db = option(args, '--db') or ''
    if db.startswith('unix:') and not os.path.exists(db[5:]):
        fail('%s: database connection failed (No such file or '
             'directory)' % db)


def ovs_up():
    return os.path.exists(os.path.join(os.environ['STUB_STATE'], 'ovs.up'))


def odl_ovs_hostconfig(args):
    """networking-odl's neutron-odl-ovs-hostconfig writes OVS external ids."""
    if not ovs_up():
        fail('neutron-odl-ovs-hostconfig: cannot reach ovsdb-server')


def gethostip(args):
    """gethostip -d NAME (syslinux-utils): names resolve as the test says."""
    name = args[-1]
    try:
        socket.inet_aton(name)
        print(name)
        return
    except OSError:
        pass
    hosts = dict(entry.split('=') for entry in
                 os.environ.get('STUB_HOSTS', '').split(';') if entry)
    if name not in hosts:
        fail('%s: Unknown host' % name)
    print(hosts[name])


# OpenDaylight's Nexus, as far as networking-odl's settings read it.
NEXUS = ('https://nexus.opendaylight.org/content/repositories/'
         'opendaylight.snapshot/org/opendaylight/integration/karaf')
NEXUS_FILES = {
    NEXUS + '/maven-metadata.xml': (
        '<metadata><groupId>org.opendaylight.integration</groupId>'
        '<artifactId>karaf</artifactId><versioning>'
        '<latest>0.11.0-SNAPSHOT</latest><versions>'
        '<version>0.11.0-SNAPSHOT</version></versions></versioning>'
        '</metadata>\n'),
    NEXUS + '/0.11.0-SNAPSHOT/maven-metadata.xml': (
        '<metadata><artifactId>karaf</artifactId><version>0.11.0-SNAPSHOT'
        '</version></metadata>\n'),
}


def wget(args):
    """Downloads: only the files above exist.

    wget -O leaves an empty file behind a failed download, as the real one.
    """
    out = option(args, '-O')
    urls = [a for a in args if not a.startswith('-')]
    for url in urls:
        body = NEXUS_FILES.get(url)
        path = out or os.path.basename(url)
        if body is None:
            if out:
                open(path, 'w').close()
            fail('ERROR 404: Not Found (%s).' % url, 8)
        with open(path, 'w') as f:
            f.write(body)


def xpath(args):
    """xpath -e '//NAME/text()' FILE, of libxml-xpath-perl.

    apt would install it; this is the one form networking-odl's settings
    use here.
    """
    from xml.etree import ElementTree
    expr = option(args, '-e')
    m = re.match(r'^//([A-Za-z]+)/text\(\)$', expr or '')
    if not m:
        fail('stand-in xpath: %s unsupported' % expr, 2)
    try:
        root = ElementTree.parse(args[-1]).getroot()
    except (OSError, ElementTree.ParseError) as e:
        fail('xpath: %s' % e, 255)
    found = [e.text for e in root.iter(m.group(1))]
    if not found:
        fail('No nodes found', 255)
    print('\n'.join(found))


def _ours(pid):
    """A process this node started (it carries the node's STUB_STATE)."""
    try:
        with open('/proc/%d/environ' % pid, 'rb') as f:
            env = f.read().split(b'\0')
    except OSError:
        return False
    return ('STUB_STATE=%s' % os.environ['STUB_STATE']).encode() in env


def kill(args):
    """kill: the host's pid namespace is shared; signal only this node's."""
    sig = 15
    pids = []
    for arg in args:
        if arg.startswith('-') and not pids:
            name = arg.lstrip('-').upper().replace('SIG', '')
            sig = int(name) if name.isdigit() else getattr(signal,
                                                           'SIG' + name)
        else:
            pids.append(int(arg))
    code = 0
    for pid in pids:
        if not _ours(pid):
            sys.stderr.write('stand-in kill: %d is not a process of this '
                             'node\n' % pid)
            code = 1
            continue
        os.kill(pid, sig)
    sys.exit(code)


def systemctl(args):
    if args[:1] == ['--user']:
        args = args[1:]
    verb, names = args[0], args[1:]
    state = os.environ['STUB_STATE']
    units = load('units', {})
    for name in [n for n in names if not n.startswith('-')]:
        if name.endswith('.service') and not name.startswith('devstack@'):
            name = name[:-len('.service')]
        unit = units.setdefault(name, {'enabled': False, 'active': False})
        if name == 'docker':
            marker = os.path.join(state, 'dockerd.up')
            if verb == 'start':
                open(marker, 'w').close()
            elif verb == 'stop' and os.path.exists(marker):
                os.unlink(marker)
        if name in ('openvswitch-switch', 'ovsdb-server'):
            if verb in ('start', 'restart'):
                open(os.path.join(state, 'ovs.up'), 'a').close()
            elif verb == 'stop' and ovs_up():
                # Its database (managers included) stays on disk.
                os.unlink(os.path.join(state, 'ovs.up'))
        if name in OVN_DAEMONS and verb in ('start', 'restart'):
            OVN_DAEMONS[name]()
        if verb == 'enable':
            unit['enabled'] = True
        elif verb == 'disable':
            unit['enabled'] = False
        elif verb in ('start', 'restart'):
            unit['active'] = True
            parsed = unit_file(name)
            if (name == 'devstack@n-cpu.service' and parsed and
                    'nova-compute' in parsed.get('Service', 'ExecStart')):
                register_compute(parsed)
        elif verb == 'stop':
            unit['active'] = False
            if name == 'devstack@keystone.service' and api_up():
                # unstack.sh's stop_keystone: the APIs are gone with it.
                os.unlink(os.path.join(state, 'api.up'))
        elif verb == 'is-enabled':
            if name == 'devstack@keystone.service' and api_up():
                # This node's keystone runs (as far as the test is set up).
                unit['enabled'] = True
            save('units', units)
            sys.exit(0 if unit['enabled'] else 1)
        elif verb == 'is-active':
            save('units', units)
            sys.exit(0 if unit['active'] else 3)
    save('units', units)


def nova_manage(args):
    if args[:2] == ['cell_v2', 'discover_hosts']:
        mapped = load('host-mappings', [])
        for host in load('compute-services', {}):
            if host not in mapped:
                mapped.append(host)
                print('Found unmapped computes in cell: %s' % host)
        save('host-mappings', mapped)


def apt_get(args):
    packages = load('packages', [])
    if 'install' in args:
        for name in args[args.index('install') + 1:]:
            if not name.startswith('-') and name not in packages:
                packages.append(name)
    save('packages', packages)


def git(args):
    """Clones come from the node's map of remotes to local trees."""
    if args[:1] == ['clone']:
        remote, dest = [a for a in args[1:] if not a.startswith('-')][:2]
        remotes = json.loads(os.environ.get('STUB_GIT_REMOTES', '{}'))
        if remote not in remotes:
            fail('fatal: unable to access %r: Could not resolve host' % remote,
                 128)
        os.symlink(remotes[remote], dest)
    elif args[:1] == ['show']:
        print('0000000 stub commit')


def _installed_nova():
    return load('pip-installed', {}).get('nova', '33.1.0.dev42')


def pip(args):
    """pip of devstack's virtualenv: no index; local trees get installed."""
    from packaging import requirements
    from packaging import version as pkg_version
    venv = os.environ['STUB_VENV']
    installed = load('pip-installed', {})
    for arg in [a for a in args[1:] if not a.startswith('-')]:
        if not os.path.isdir(arg):
            continue
        reqs = os.path.join(arg, 'requirements.txt')
        if os.path.exists(reqs):
            with open(reqs) as f:
                lines = [line.split('#')[0].strip() for line in f]
            for line in filter(None, lines):
                req = requirements.Requirement(line)
                if req.name != 'nova':
                    continue
                have = pkg_version.Version(_installed_nova())
                if not req.specifier.contains(have, prereleases=True):
                    fail('ERROR: Could not find a version that satisfies the '
                         'requirement %s (from nova-docker) (installed: '
                         'nova %s)' % (line, have))
        site = subprocess.check_output(
            [os.path.join(venv, 'bin', 'python3'), '-c',
             'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
            text=True).strip()
        for package in ('heat_plugins', 'novadocker'):
            link = os.path.join(site, package)
            if os.path.isdir(os.path.join(arg, package)):
                if not os.path.lexists(link):
                    os.symlink(os.path.join(os.path.abspath(arg), package),
                               link)
        installed[os.path.basename(os.path.abspath(arg))] = venv
    save('pip-installed', installed)


def record_only(args):
    """devstack functions whose effect is only their command line."""


COMMANDS = {
    'ovn-nbctl': ovn_ctl, 'ovn-sbctl': ovn_ctl, 'ovs-appctl': record_only,
    'ovs-dpctl': record_only, 'modprobe': record_only, 'pkill': record_only,
    'kill': kill, 'wget': wget, 'xpath': xpath, 'gethostip': gethostip,
    'neutron-odl-ovs-hostconfig': odl_ovs_hostconfig,
    'openstack': openstack, 'ovs-vsctl': ovs_vsctl, 'docker': docker,
    'id': id_, 'usermod': usermod, 'gpasswd': gpasswd, 'getent': getent,
    'systemctl': systemctl, 'record': record_only,
    'nova-manage': nova_manage, 'apt-get': apt_get, 'git': git, 'pip': pip,
}


def main():
    name, args = sys.argv[1], sys.argv[2:]
    if name == 'record':
        record(args)
        return
    record([name] + args)
    COMMANDS[name](list(args))


if __name__ == '__main__':
    main()
