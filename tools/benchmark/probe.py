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

"""Count and time the driver's calls at its boundaries, without editing it.

Wrapped from outside, in this process only:
  * engine API requests (docker SDK ``APIClient.send``), by method and path;
  * privsep round trips (``_ClientChannel.remote_call``), by entrypoint;
  * OVSDB transactions (ovsdbapp ``Transaction.commit``);
  * subprocesses run through ``processutils.execute`` (rootwrap included),
    by command;
  * the driver's own public methods (``DockerDriver.<name>``).
A *window* collects what happened between its start and its end; the
benchmark opens one around each operation it measures.
"""

import collections
import functools
import re
import threading
import time

_ID = re.compile(r'/(?:[0-9a-f]{12,64}|nova-[0-9a-f-]{36}(?:-sandbox)?|'
                 r'sha256:[0-9a-f]{64})(?=/|$|\?)')
_VERSION = re.compile(r'^/v[0-9.]+')
_lock = threading.Lock()
_windows = []
_installed = []
# Driver methods that get a window of their own on every call; the closed
# windows are kept here, by method name.
WINDOWED = ('spawn', 'init_host')
captured = collections.defaultdict(list)


class Window(object):
    """What crossed the boundaries while the window was open."""

    def __init__(self, name):
        self.name = name
        self.calls = collections.defaultdict(list)
        self.start = time.perf_counter()
        self.seconds = None

    def add(self, category, label, seconds):
        self.calls[(category, label)].append(seconds)

    def close(self):
        self.seconds = time.perf_counter() - self.start
        with _lock:
            if self in _windows:
                _windows.remove(self)
        return self

    def totals(self):
        """{category: {'count': n, 'seconds': s}}"""
        out = {}
        for (category, _label), samples in self.calls.items():
            entry = out.setdefault(category, {'count': 0, 'seconds': 0.0})
            entry['count'] += len(samples)
            entry['seconds'] += sum(samples)
        for entry in out.values():
            entry['seconds'] = round(entry['seconds'], 4)
        return out

    def detail(self):
        """[(category, label, count, seconds)], costliest first."""
        rows = [(c, label, len(s), round(sum(s), 4))
                for (c, label), s in self.calls.items()]
        return sorted(rows, key=lambda r: -r[3])


def open_window(name):
    window = Window(name)
    with _lock:
        _windows.append(window)
    return window


def _record(category, label, seconds):
    with _lock:
        for window in _windows:
            window.add(category, label, seconds)


def _timed(category, labeller, func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            _record(category, labeller(*args, **kwargs),
                    time.perf_counter() - start)
    wrapper.__wrapped_by_benchmark__ = func
    return wrapper


def _windowed(name, func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        window = open_window(name)
        try:
            return func(*args, **kwargs)
        finally:
            captured[name].append(window.close())
    return wrapper


def _patch(owner, name, category, labeller):
    original = getattr(owner, name)
    setattr(owner, name, _timed(category, labeller, original))
    _installed.append((owner, name, original))


def _engine_label(session, request, **kwargs):
    path = request.path_url.split('?')[0]
    path = _VERSION.sub('', path.replace('http+docker://localhost', ''))
    return '%s %s' % (request.method, _ID.sub('/{id}', path))


def _privsep_label(channel, name, *args, **kwargs):
    return name.rsplit('.', 1)[-1]


def _execute_label(*cmd, **kwargs):
    words = [str(c) for c in cmd]
    if kwargs.get('run_as_root'):
        words = ['(rootwrap)'] + words
    return ' '.join(words[:3])


def install(driver_class):
    """Wrap the boundaries (once per process)."""
    if _installed:
        return
    import docker.api.client
    from oslo_concurrency import processutils
    from oslo_privsep import daemon
    from ovsdbapp.backend.ovs_idl import transaction
    import requests

    docker.api.client.APIClient.send = _timed(
        'engine API', _engine_label, requests.Session.send)
    _installed.append((docker.api.client.APIClient, 'send', None))
    _patch(daemon._ClientChannel, 'remote_call', 'privsep', _privsep_label)
    _patch(transaction.Transaction, 'commit', 'OVSDB transaction',
           lambda *a, **k: 'commit')
    _patch(processutils, 'execute', 'subprocess', _execute_label)
    for name in ('spawn', 'destroy', 'power_off', 'power_on', 'reboot',
                 'pause', 'unpause', 'snapshot', 'get_info',
                 'list_instances', 'list_instance_uuids',
                 'get_num_instances', 'plug_vifs', 'init_host',
                 'update_provider_tree', 'get_available_resource',
                 'manage_image_cache', 'instance_exists'):
        if hasattr(driver_class, name):
            if name in WINDOWED:
                setattr(driver_class, name,
                        _windowed(name, getattr(driver_class, name)))
            _patch(driver_class, name, 'driver',
                   functools.partial(lambda n, *a, **k: n, name))
