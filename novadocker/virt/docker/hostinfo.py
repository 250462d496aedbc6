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

import os


def cpu_count():
    """Logical CPUs of the host."""
    return os.cpu_count() or 1


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
