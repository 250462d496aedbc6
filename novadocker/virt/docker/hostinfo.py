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

"""What this host offers to containers: CPUs, memory, disk, uptime.

Figures come from the host itself (/proc and the filesystem holding the
engine's root directory), not from the engine's view of one container.
"""

import json
import os
import platform


def cpu_count():
    """Logical CPUs of the host."""
    return os.cpu_count() or 1


def cpu_info():
    """The host CPU as the JSON document Nova's API expects in cpu_info.

    Same keys as the libvirt driver's: the os-hypervisors API (2.28 and
    later) parses it as JSON.
    """
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, sep, value = line.partition(':')
                if not sep:
                    if fields:
                        break  # the first processor is enough
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpus = cpu_count()
    return json.dumps({
        'arch': platform.machine(),
        'model': fields.get('model name', ''),
        'vendor': fields.get('vendor_id', ''),
        'topology': {'sockets': 1, 'cores': cpus, 'threads': 1},
        'features': sorted(fields.get('flags', '').split()),
    })


def _meminfo():
    values = {}
    with open('/proc/meminfo') as meminfo:
        for line in meminfo:
            key, _, rest = line.partition(':')
            values[key] = int(rest.split()[0])  # kB
    return values


def memory_mb():
    """Total and available memory of the host in MiB."""
    info = _meminfo()
    return info['MemTotal'] // 1024, info['MemAvailable'] // 1024


def disk_gb(path):
    """Total and free space, in GiB, of the filesystem holding *path*."""
    st = os.statvfs(path)
    gib = 1024 ** 3
    return st.f_blocks * st.f_frsize // gib, st.f_bavail * st.f_frsize // gib


def uptime():
    """The host's uptime and load, in the style of uptime(1)."""
    with open('/proc/uptime') as f:
        seconds = int(float(f.read().split()[0]))
    with open('/proc/loadavg') as f:
        load = f.read().split()[:3]
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return 'up %d day%s, %2d:%02d, load average: %s' % (
        days, '' if days == 1 else 's', hours, rest // 60, ', '.join(load))
