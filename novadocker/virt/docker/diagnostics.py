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

"""A server's diagnostics: the engine's figures and its ports' counters.

CPU time, memory and uptime come from the engine (inspect and one sample
of its stats API). The engine does not know the server's ports (the driver
wires them into the sandbox's namespace itself), so each NIC's counters are
read from that namespace through the sandbox's pid: ``/proc/<pid>/net/dev``
and, for the MAC address, ``/proc/<pid>/root/sys/class/net/<dev>/address``.
"""

import datetime
import platform

from nova.compute import power_state
from nova.objects import diagnostics as nova_diagnostics
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# Nova's diagnostics object only takes one of its five hypervisor driver
# names (HypervisorDriverField), and API 2.48's schema checks the same list:
# "docker" would fail both. The Linux-container kernel features behind the
# engine are libvirt-LXC's, so the nearest honest answer is "libvirt";
# the ``hypervisor`` field, a free string, says "docker".
DRIVER = 'libvirt'
HYPERVISOR = 'docker'

_NET_DEV = '/proc/%d/net/dev'
_MAC = '/proc/%d/root/sys/class/net/%s/address'
# Columns of /proc/net/dev after "<name>:".
_RX = {'octets': 0, 'packets': 1, 'errors': 2, 'drop': 3}
_TX = {'octets': 8, 'packets': 9, 'errors': 10, 'drop': 11}
_MIB = 1024 * 1024


def nic_counters(pid):
    """{device: {'rx_octets': .., 'tx_packets': .., ...}} of a namespace.

    Loopback is left out; an unreadable namespace gives {}.
    """
    if not pid:
        return {}
    try:
        with open(_NET_DEV % pid) as f:
            lines = f.readlines()[2:]
    except OSError as e:
        LOG.debug('Cannot read the counters of pid %(pid)s: %(e)s',
                  {'pid': pid, 'e': e})
        return {}
    found = {}
    for line in lines:
        name, _, numbers = line.partition(':')
        name = name.strip()
        values = [int(v) for v in numbers.split()]
        if name == 'lo' or len(values) < 16:
            continue
        counters = {'rx_' + k: values[i] for k, i in _RX.items()}
        counters.update({'tx_' + k: values[i] for k, i in _TX.items()})
        found[name] = counters
    return found


def mac_of(pid, device):
    """The MAC address of *device* in the namespace of *pid*, or None."""
    try:
        with open(_MAC % (pid, device)) as f:
            return f.read().strip() or None
    except OSError:
        return None


def uptime_of(state, now=None):
    """Seconds since the workload started, None when it is not running."""
    started = state.get('StartedAt') or ''
    if not state.get('Running') or not started.startswith(('1', '2')):
        return None
    # The engine writes nanoseconds; datetime takes at most microseconds.
    stamp = started.rstrip('Z').split('.')[0]
    try:
        since = datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%S')
    except ValueError:
        return None
    now = now or datetime.datetime.utcnow()
    return max(int((now - since).total_seconds()), 0)


def cpu_time_ns(stats):
    """The workload's total CPU time in nanoseconds, or None."""
    return ((stats.get('cpu_stats') or {}).get('cpu_usage') or {}).get(
        'total_usage')


def cpu_utilisation(stats):
    """Percent of one CPU used between the sample's two readings."""
    now, before = stats.get('cpu_stats') or {}, stats.get('precpu_stats') or {}
    used = cpu_time_ns(stats)
    used_before = (before.get('cpu_usage') or {}).get('total_usage')
    system = now.get('system_cpu_usage')
    system_before = before.get('system_cpu_usage')
    if None in (used, used_before, system, system_before) or \
            system <= system_before:
        return None
    cpus = now.get('online_cpus') or 1
    return int(round(100.0 * cpus * (used - used_before) /
                     (system - system_before)))


def memory_mb(stats, flavor_mb):
    """(maximum, used) memory in MiB: the limit is the flavor's RAM."""
    memory = stats.get('memory_stats') or {}
    usage = memory.get('usage')
    # Page cache the kernel can drop is not the server's own use.
    cache = (memory.get('stats') or {}).get('inactive_file', 0)
    used = None if usage is None else max(usage - cache, 0) // _MIB
    return int(flavor_mb), used


def instance_diagnostics(instance, state, figures):
    """nova.virt.diagnostics.Diagnostics of a server.

    *state* is its nova power state, *figures* what
    Server.figures returned (novadocker.virt.docker.server).
    """
    stats = figures['stats']
    diags = nova_diagnostics.Diagnostics(
        state=power_state.STATE_MAP[state], driver=DRIVER,
        hypervisor=HYPERVISOR, hypervisor_os=platform.system().lower(),
        uptime=uptime_of(figures['state']),
        config_drive=bool(instance.config_drive))
    diags.add_cpu(id=0, time=cpu_time_ns(stats),
                  utilisation=cpu_utilisation(stats))
    maximum, used = memory_mb(stats, instance.flavor.memory_mb)
    diags.memory_details = nova_diagnostics.MemoryDiagnostics(
        maximum=maximum, used=used)
    pid = figures['sandbox_pid']
    for device, counters in sorted(nic_counters(pid).items()):
        diags.add_nic(mac_address=mac_of(pid, device), **counters)
    return diags


def legacy_diagnostics(instance, figures):
    """The free-form dict of API versions before 2.48."""
    stats = figures['stats']
    maximum, used = memory_mb(stats, instance.flavor.memory_mb)
    found = {'cpu0_time': cpu_time_ns(stats),
             'memory': maximum * 1024,
             'memory-actual': None if used is None else used * 1024,
             'uptime': uptime_of(figures['state'])}
    for device, counters in nic_counters(figures['sandbox_pid']).items():
        for key in ('rx_octets', 'rx_packets', 'rx_errors', 'rx_drop',
                    'tx_octets', 'tx_packets', 'tx_errors', 'tx_drop'):
            direction, what = key.split('_')
            suffix = '' if what == 'octets' else '_' + what
            found['%s_%s%s' % (device, direction, suffix)] = counters[key]
    return {k: v for k, v in found.items() if v is not None}
