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

"""Stand-ins for the commands the devstack plugin runs.

Called as ``standin_cmd.py NAME ARGS...`` by small wrappers in the test's
bin directory. Every call is appended to $STANDIN_CALLS (one JSON list per
line: the command name, then its arguments). The commands keep their state
in JSON files under $STANDIN_STATE, so a later call sees what an earlier one
did: an aggregate created once exists afterwards, a manager set is listed
by get-manager. Nothing outside those two paths is touched.
"""

import hashlib
import json
import os
import sys


def _state_path(name):
    return os.path.join(os.environ['STANDIN_STATE'], name + '.json')


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
    with open(os.environ['STANDIN_CALLS'], 'a') as f:
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
        if os.environ.get('STANDIN_GLANCE_REJECTS'):
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
        failed = bool(os.environ.get('STANDIN_STACK_FAILS'))
        stacks[name] = {
            'stack_name': name, 'template': template, 'parameters': params,
            'stack_status': 'CREATE_FAILED' if failed else 'CREATE_COMPLETE',
            'outputs': {'odl_ovs_managers':
                        os.environ.get('STANDIN_ODL_OUTPUT', '')},
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


def openstack(args):
    if os.environ.get('STANDIN_API_DOWN'):
        fail('Failed to discover available identity versions')
    option(args, '--os-cloud')
    handlers = {'aggregate': os_aggregate, 'image': os_image,
                'stack': os_stack}
    resource = args.pop(0)
    if resource not in handlers:
        fail('stand-in openstack: %s unsupported' % resource, 2)
    handlers[resource](args)


# ovs-vsctl -------------------------------------------------------------------

def ovs_vsctl(args):
    if os.environ.get('STANDIN_OVS_DOWN'):
        fail('ovs-vsctl: unix:/var/run/openvswitch/db.sock: database '
             'connection failed (No such file or directory)')
    managers = load('ovs-managers', [])
    verb = args.pop(0)
    if verb == 'get-manager':
        for target in managers:
            print(target)
    elif verb == 'set-manager':
        save('ovs-managers', args)
    elif verb == 'del-manager':
        save('ovs-managers', [])
    else:
        fail('stand-in ovs-vsctl: %s unsupported' % verb, 2)


# docker ----------------------------------------------------------------------

def docker(args):
    up = os.path.exists(os.path.join(os.environ['STANDIN_STATE'],
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
    assert args[:1] == ['-nG'], args
    print(' '.join(groups_of(args[1])))


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
    database, name = args
    hosts = dict(entry.split('=') for entry in
                 os.environ.get('STANDIN_HOSTS', '').split(';') if entry)
    if name not in hosts:
        sys.exit(2)
    if database == 'ahostsv4':
        print('%s       STREAM %s' % (hosts[name], name))
    else:
        print('%s       %s' % (hosts[name], name))


def systemctl(args):
    marker = os.path.join(os.environ['STANDIN_STATE'], 'dockerd.up')
    if args == ['start', 'docker']:
        open(marker, 'w').close()
    elif args == ['stop', 'docker']:
        os.unlink(marker)
    else:
        fail('stand-in systemctl: %s unsupported' % args, 2)


def record_only(args):
    """devstack functions whose effect is only their command line."""


COMMANDS = {
    'openstack': openstack, 'ovs-vsctl': ovs_vsctl, 'docker': docker,
    'id': id_, 'usermod': usermod, 'gpasswd': gpasswd, 'getent': getent,
    'systemctl': systemctl, 'record': record_only,
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
