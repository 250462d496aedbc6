#!/bin/bash
# Test that "tools/cloud.sh down" leaves nothing that "up" created: no
# process, container, OVS bridge, port or manager, veth or other link,
# namespace link; and of the extra compute nodes (up --computes N): no
# network namespace, cgroup, mount, engine exec-root, sudoers file or user
# it made; of the network node (tools/cloud/router.sh): no router or DHCP
# namespace, dnsmasq or haproxy (no process naming the cloud's home), no
# iptables chain or rule, no route. Run by tools/run-tests.sh around the cloud's life:
#
#   check-leftovers.sh before DIR   before up: what the host has
#   check-leftovers.sh pids DIR     after up: the processes up started
#   check-leftovers.sh after DIR    after down: compare, one line per check
#
# Prints "PASS <check>" or "FAIL <check>: <what is left>" and the totals as
# " - Passed: N" / " - Failed: N" (the test summary adds them up); exits 1
# when something is left.

set -o errexit -o nounset -o pipefail

CLOUD_HOME=${NOVA_DOCKER_CLOUD_HOME:-/opt/nova-docker-cloud}
COMPUTE_HOST=nova-docker-cloud
mode=${1:?usage: $0 before|pids|after DIR}
dir=${2:?usage: $0 before|pids|after DIR}

# Field 22 of stat, counted after the command name (which may hold spaces).
# The start time of a live process; empty when it is gone or a zombie
# (dead, waiting for its parent to reap it).
start_time() {
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" {print $20}'
}
bridges() { ovs-vsctl --timeout=10 list-br | sort; }
interfaces() { ovs-vsctl --timeout=10 --bare --columns=name list Interface | grep . | sort; }
managers() { ovs-vsctl --timeout=10 --bare --columns=target list Manager | grep . | sort || true; }
links() { ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort; }
netns_links() { find /var/run/netns -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort || true; }
containers() { docker ps -aq --filter "label=org.openstack.nova.host=$COMPUTE_HOST" | sort; }
namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | sort; }
# The nodes' engines run under cgroup parents ndc-cK.
cgroups() { find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name 'ndc-c*' 2>/dev/null | sort || true; }
mounts() { awk -v h="$CLOUD_HOME/" 'index($2, h) == 1 || $2 ~ "^/run/ndc-c" {print $2}' /proc/mounts | sort; }
node_dirs() { find /run -maxdepth 1 -name 'ndc-c*' 2>/dev/null | sort || true; }
users() { getent passwd | cut -d: -f1 | sort; }
# The file up writes (the sudo package's own README may come with it).
# The chains (NDC-*) and the jumps to them; the host's routes.
iptables_rules() { iptables -w -S 2>/dev/null | grep -e NDC- | sort || true; }
routes() { ip -4 route show | sort; }
# Processes whose command line names the cloud's home: the services, and
# what the agents start (dnsmasq, haproxy) outside the services' sessions.
cloud_processes() {
    local p c
    for p in /proc/[0-9]*; do
        c=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        case $c in *"$CLOUD_HOME/"*) echo "${p#/proc/} ${c:0:100}" ;; esac
    done
}
sudoers() { find /etc/sudoers.d -maxdepth 1 -type f -name 'nova-docker-*' 2>/dev/null | sort || true; }

snapshot() {
    mkdir -p "$dir"
    bridges >"$dir/bridges"
    interfaces >"$dir/interfaces"
    managers >"$dir/managers"
    links >"$dir/links"
    netns_links >"$dir/netns"
    namespaces >"$dir/namespaces"
    cgroups >"$dir/cgroups"
    mounts >"$dir/mounts"
    node_dirs >"$dir/node-dirs"
    users >"$dir/users"
    sudoers >"$dir/sudoers"
    iptables_rules >"$dir/iptables"
    routes >"$dir/routes"
}

record_pids() {
    # Every process of the sessions up started (a service and its workers,
    # privsep daemons, agents' helpers), with its start time.
    local f pid sid started
    : >"$dir/pids"
    for f in "$CLOUD_HOME"/run/*.pid; do
        read -r sid _ <"$f" || continue
        for pid in $(ps -e -o pid= -o sid= | awk -v s="$sid" '$2 == s {print $1}'); do
            # A process that ended since ps listed it has no start time:
            # nothing to record.
            started=$(start_time "$pid")
            [ -n "$started" ] || continue
            echo "$pid $started $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)"
        done >>"$dir/pids"
    done
    [ -s "$dir/pids" ] || { echo "no process of the cloud found under $CLOUD_HOME/run" >&2; exit 1; }
    echo "recorded $(wc -l <"$dir/pids") processes of the cloud"
}

passed=0 failed=0
check() {
    # check NAME LEFTOVERS: passes when LEFTOVERS is empty.
    if [ -z "$2" ]; then
        echo "PASS $1"; passed=$((passed + 1))
    else
        echo "FAIL $1: $(echo "$2" | tr '\n' ' ')"; failed=$((failed + 1))
    fi
}

new_since() {
    # Lines of the current state (stdin) absent from the snapshot FILE.
    comm -13 "$1" - || true
}

compare() {
    local alive="" pid started rest
    # No record when up failed before it: the other checks still hold,
    # and "no process naming the cloud's home" below covers what it ran.
    if [ -f "$dir/pids" ]; then
        while read -r pid started rest; do
            [ -n "$started" ] && [ "$(start_time "$pid")" = "$started" ] \
                && alive+="$pid ($rest)"$'\n'
        done <"$dir/pids"
        check "no process up started is alive" "$alive"
    fi
    check "no container of $COMPUTE_HOST" "$(containers)"
    check "no new OVS bridge" "$(bridges | new_since "$dir/bridges")"
    check "no new OVS interface" "$(interfaces | new_since "$dir/interfaces")"
    check "no new OVS manager" "$(managers | new_since "$dir/managers")"
    check "no new veth, tap or other link" "$(links | new_since "$dir/links")"
    check "no new namespace link" "$(netns_links | new_since "$dir/netns")"
    check "no new network namespace" "$(namespaces | new_since "$dir/namespaces")"
    check "no new node cgroup" "$(cgroups | new_since "$dir/cgroups")"
    check "no new mount under the cloud" "$(mounts | new_since "$dir/mounts")"
    check "no node engine exec-root" "$(node_dirs | new_since "$dir/node-dirs")"
    check "no new user" "$(users | new_since "$dir/users")"
    check "no new sudoers file" "$(sudoers | new_since "$dir/sudoers")"
    check "no new iptables chain or rule" "$(iptables_rules | new_since "$dir/iptables")"
    check "no new route" "$(routes | new_since "$dir/routes")"
    check "no process naming $CLOUD_HOME" "$(cloud_processes)"
    echo " - Passed: $passed"
    echo " - Failed: $failed"
    [ "$failed" -eq 0 ]
}

case "$mode" in
    before) snapshot ;;
    pids) record_pids ;;
    after) compare ;;
    *) echo "usage: $0 before|pids|after DIR" >&2; exit 2 ;;
esac
