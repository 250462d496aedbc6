# shellcheck shell=bash
# The cloud's extra docker compute nodes, sourced by tools/cloud.sh.
#
# Node K (K = 2..N) lives in the network namespace ndc-cK, with:
#   - its own Open vSwitch (ovsdb-server and ovs-vswitchd, netdev datapath,
#     sockets and database under $RUN/cK and $DATA/cK);
#   - its own dockerd (data-root $DATA/cK/docker, exec-root /run/ndc-cK,
#     cgroup parent ndc-cK, no bridge, no iptables);
#   - its own neutron-openvswitch-agent and nova-compute (host
#     nova-docker-cloud-K).
# The underlay: a veth pair from the host's bridge br-ndc-ul (the
# controller's tunnel endpoint and control-plane address $CTL_IP) to the
# node's bridge br-ul, whose internal port holds 10.21.0.K. The underlay
# MTU is 1600 so that a tenant frame of 1500 bytes fits in a VXLAN packet.
#
# Every name made here starts with ndc- (links, namespaces, cgroups) or
# lives under the cloud's home: down removes exactly these.

UL_BRIDGE=br-ndc-ul
UL_MTU=1600
UL_PREFIX=10.21.0
CTL_IP=$UL_PREFIX.1

node_ns() { echo "ndc-c$1"; }
node_ip() { echo "$UL_PREFIX.$1"; }
node_host() { echo "$COMPUTE_HOST-$1"; }
# RUN, DATA, LOGS, ETC, VENV, COMPUTE_HOST: set by tools/cloud.sh.
# shellcheck disable=SC2153
node_run() { echo "$RUN/c$1"; }
# shellcheck disable=SC2153
node_data() { echo "$DATA/c$1"; }
# Short: containerd's socket path sits below it and must stay under 108 bytes.
node_exec_root() { echo "/run/ndc-c$1"; }
node_docker_url() { echo "unix://$(node_exec_root "$1")/docker.sock"; }

# node_in K COMMAND...: COMMAND in node K's network namespace (nsenter, not
# "ip netns exec", which remounts /sys and hides the cgroup mounts dockerd
# needs), with the node's OVS socket directory for ovs-* tools.
node_in() {
    local k=$1
    shift
    OVS_RUNDIR=$(node_run "$k") OVS_LOGDIR=$LOGS OVS_DBDIR=$(node_data "$k") \
        nsenter --net="/var/run/netns/$(node_ns "$k")" "$@"
}

node_vsctl() {
    local k=$1
    shift
    ovs-vsctl --timeout=20 --db="unix:$(node_run "$k")/db.sock" "$@"
}

node_services() {
    # The services of node K, in start order.
    local k=$1
    echo "c$k-ovsdb-server c$k-ovs-vswitchd c$k-dockerd c$k-neutron-openvswitch-agent c$k-nova-compute"
}

register_node_services() {
    local k
    for ((k = 2; k <= COMPUTES; k++)); do
        SERVICES+=("c$k-ovsdb-server||-" "c$k-ovs-vswitchd||-" "c$k-dockerd||-"
                   "c$k-neutron-openvswitch-agent||-" "c$k-nova-compute||-")
    done
}

ensure_underlay() {
    # The controller's side: a netdev bridge whose internal port holds the
    # controller's tunnel endpoint and control-plane address. It exists for
    # N = 1 too, so the configuration is the same whatever N is.
    if ! ovs-vsctl --timeout=10 br-exists "$UL_BRIDGE"; then
        ovs-vsctl --timeout=10 add-br "$UL_BRIDGE" -- set bridge "$UL_BRIDGE" datapath_type=netdev \
            -- set bridge "$UL_BRIDGE" external_ids:nova-docker-cloud=true
        say "created OVS bridge $UL_BRIDGE (netdev, underlay)"
    fi
    ip link set "$UL_BRIDGE" mtu "$UL_MTU" up
    ip -4 addr show dev "$UL_BRIDGE" | grep -q "inet $CTL_IP/" \
        || ip addr add "$CTL_IP/24" dev "$UL_BRIDGE"
}

node_netns_up() {
    local k=$1 ns host_end
    ns=$(node_ns "$k") host_end="ndc-ul$k"
    mkdir -p "$(node_run "$k")" "$(node_data "$k")"
    [ -e "/var/run/netns/$ns" ] || { ip netns add "$ns"; say "created network namespace $ns"; }
    if ! ip link show "$host_end" >/dev/null 2>&1; then
        ip link add "$host_end" mtu "$UL_MTU" type veth peer name "ndc-ul${k}n" mtu "$UL_MTU"
        ip link set "ndc-ul${k}n" netns "$ns"
        ip -n "$ns" link set "ndc-ul${k}n" name ul0
        say "created veth $host_end to $ns"
    fi
    ip link set "$host_end" up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set ul0 up
    ovs-vsctl --timeout=10 --may-exist add-port "$UL_BRIDGE" "$host_end"
}

node_ovs_up() {
    local k=$1 run data ns
    run=$(node_run "$k") data=$(node_data "$k") ns=$(node_ns "$k")
    [ -e "$data/conf.db" ] || ovsdb-tool create "$data/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    start "c$k-ovsdb-server" env OVS_RUNDIR="$run" OVS_LOGDIR="$LOGS" OVS_DBDIR="$data" \
        nsenter --net="/var/run/netns/$ns" ovsdb-server "$data/conf.db" \
        --remote="punix:$run/db.sock" --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
        --unixctl="$run/ovsdb-server.ctl" \
        --pidfile="$run/ovsdb-server.pid" --log-file="$LOGS/c$k-ovsdb-server-ovs.log" -vconsole:off
    for _ in $(seq 1 50); do [ -S "$run/db.sock" ] && break; sleep 0.2; done
    node_vsctl "$k" --no-wait init
    start "c$k-ovs-vswitchd" env OVS_RUNDIR="$run" OVS_LOGDIR="$LOGS" OVS_DBDIR="$data" \
        nsenter --net="/var/run/netns/$ns" ovs-vswitchd "unix:$run/db.sock" \
        --unixctl="$run/ovs-vswitchd.ctl" --pidfile="$run/ovs-vswitchd.pid" \
        --log-file="$LOGS/c$k-ovs-vswitchd-ovs.log" -vconsole:off
    node_vsctl "$k" --may-exist add-br br-ul -- set bridge br-ul datapath_type=netdev \
        -- --may-exist add-port br-ul ul0
    # A vswitchd that has just started may create the bridge's internal
    # device a moment after the transaction returns.
    local i
    for i in $(seq 1 50); do
        ip -n "$ns" link show br-ul >/dev/null 2>&1 && break
        [ "$i" -eq 50 ] && die "node $k: bridge device br-ul did not appear in 10 s (log: $LOGS/c$k-ovs-vswitchd.log)"
        sleep 0.2
    done
    ip -n "$ns" link set br-ul mtu "$UL_MTU" up
    ip -n "$ns" -4 addr show dev br-ul | grep -q "inet $(node_ip "$k")/" \
        || ip -n "$ns" addr add "$(node_ip "$k")/24" dev br-ul
    ip -n "$ns" route replace default via "$CTL_IP"
    for _ in $(seq 1 30); do
        node_in "$k" ping -c 1 -W 1 "$CTL_IP" >/dev/null 2>&1 && return 0
    done
    die "node $k cannot reach the controller at $CTL_IP over the underlay"
}

node_docker_up() {
    local k=$1 exec_root data
    exec_root=$(node_exec_root "$k") data=$(node_data "$k")
    mkdir -p "$exec_root" "$data/docker"
    # Its own (empty) configuration: the host's daemon.json is the host's.
    echo '{}' >"$data/daemon.json"
    start "c$k-dockerd" nsenter --net="/var/run/netns/$(node_ns "$k")" dockerd \
        --config-file "$data/daemon.json" --data-root "$data/docker" \
        --exec-root "$exec_root" --pidfile "$exec_root/docker.pid" \
        -H "$(node_docker_url "$k")" --group docker --cgroup-parent "ndc-c$k" \
        --bridge=none --iptables=false --ip-masq=false --ip-forward=false
    for _ in $(seq 1 60); do
        docker -H "$(node_docker_url "$k")" info >/dev/null 2>&1 && return 0
        pid_of "c$k-dockerd" >/dev/null || break
        sleep 1
    done
    tail -n 20 "$LOGS/c$k-dockerd.log" >&2
    die "the docker engine of node $k did not answer"
}

write_node_configs() {
    local k=$1 run data
    run=$(node_run "$k") data=$(node_data "$k")
    mkdir -p "$data/nova/instances" "$data/locks"
    cat >"$ETC/nova/nova-cpu-c$k.conf" <<EOF
[DEFAULT]
host = $(node_host "$k")
transport_url = $TRANSPORT
my_ip = $(node_ip "$k")
state_path = $data/nova
instances_path = $data/nova/instances
allow_resize_to_same_host = true
$NOVA_COMMON
[oslo_concurrency]
lock_path = $data/locks
EOF
    # shellcheck disable=SC2034
    NOVA_CONF_DIR=$ETC/nova DOCKER_API_URL=$(node_docker_url "$k")
    # shellcheck disable=SC2034
    NOVA_CPU_CONF=$ETC/nova/nova-cpu-c$k.conf NOVA_BIN_DIR=$VENV/bin
    apply_deployment nova-cpu "$ETC/nova/nova-cpu-c$k.conf"
    apply_deployment nova-cpu-root "$ETC/nova/nova-cpu-c$k.conf"
    unprivileged_compute_conf "$ETC/nova/nova-cpu-c$k.conf"
    printf 'os_vif_ovs\tovsdb_connection\t%s\n' "$OVSDB_COMPUTE" \
        | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$ETC/nova/nova-cpu-c$k.conf"
    # Console listeners on the node's underlay address, where
    # nova-serialproxy on the host (the underlay's .1) connects from; the
    # driver accepts that address only.
    printf 'serial_console\tproxyclient_address\t%s\ndocker\tserial_console_proxy_addresses\t%s\n' \
        "$(node_ip "$k")" "$UL_PREFIX.1" \
        | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$ETC/nova/nova-cpu-c$k.conf"

    local helper="$VENV/bin/privsep-helper --config-file $ETC/neutron/neutron.conf --config-file $ETC/neutron/openvswitch_agent-c$k.ini"
    { cat <<EOF
[DEFAULT]
host = $(node_host "$k")
[ovs]
integration_bridge = br-int
tunnel_bridge = br-tun
datapath_type = netdev
local_ip = $(node_ip "$k")
ovsdb_connection = unix:$run/db.sock
of_listen_port = 16633
[agent]
tunnel_types = vxlan
[securitygroup]
firewall_driver = $FIREWALL_DRIVER
EOF
      for p in privsep privsep_ovs_vsctl privsep_namespace privsep_link privsep_conntrack privsep_dhcp_release; do
          printf '[%s]\nhelper_command = %s\n' "$p" "$helper"
      done; } >"$ETC/neutron/openvswitch_agent-c$k.ini"
    apply_deployment neutron-agent "$ETC/neutron/openvswitch_agent-c$k.ini"
}

node_up() {
    local k=$1 run
    run=$(node_run "$k")
    say "node $k: namespace, Open vSwitch, docker engine"
    node_netns_up "$k"
    node_ovs_up "$k"
    node_docker_up "$k"
    write_node_configs "$k"
    if ! pid_of "c$k-neutron-openvswitch-agent" >/dev/null; then
        start "c$k-neutron-openvswitch-agent" env OVS_RUNDIR="$run" \
            nsenter --net="/var/run/netns/$(node_ns "$k")" \
            "$VENV/bin/neutron-openvswitch-agent" --config-file "$ETC/neutron/neutron.conf" \
            --config-file "$ETC/neutron/openvswitch_agent-c$k.ini"
    fi
    ensure_ovsdb_tcp node_vsctl "$k"
    node_compute_up "$k"
    wait_healthy "c$k-neutron-openvswitch-agent"
}

# nova-compute of node K (also what "node-compute start" runs).
node_compute_up() {
    local k=$1
    # Into the namespace as root, then down to the nova user.
    as_nova
    start "c$k-nova-compute" env OVS_RUNDIR="$(node_run "$k")" \
        nsenter --net="/var/run/netns/$(node_ns "$k")" \
        "${AS_NOVA[@]}" "$VENV/bin/nova-compute" --config-file "$ETC/nova/nova-cpu-c$k.conf"
    wait_healthy "c$k-nova-compute"
}

remove_node_containers() {
    # Everything of node K's own engine is this cloud's.
    local k=$1 url ids id uuid
    url=$(node_docker_url "$k")
    docker -H "$url" info >/dev/null 2>&1 || return 0
    ids=$(docker -H "$url" ps -aq)
    for id in $ids; do
        uuid=$(docker -H "$url" inspect -f '{{index .Config.Labels "org.openstack.nova.instance-uuid"}}' "$id" 2>/dev/null || true)
        docker -H "$url" rm -f "$id" >/dev/null 2>&1 || true
        [ -n "$uuid" ] && rm -f "/var/run/netns/nova-$uuid"
    done
    [ -z "$ids" ] || say "removed containers of node $k: $(echo "$ids" | wc -l)"
}

node_down() {
    # After nova-compute of the node stopped: the rest of node K.
    local k=$1 ns data exec_root m c d
    ns=$(node_ns "$k") data=$(node_data "$k") exec_root=$(node_exec_root "$k")
    remove_node_containers "$k"
    stop_pids "c$k-neutron-openvswitch-agent" "c$k-dockerd"
    stop_pids "c$k-ovs-vswitchd" "c$k-ovsdb-server"
    # What a killed engine left mounted below its roots.
    awk -v a="$data/" -v b="$exec_root/" \
        'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/mounts | sort -r \
        | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    for c in /sys/fs/cgroup/*/"ndc-c$k"; do
        [ -d "$c" ] || continue
        find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    if ovs-vsctl --timeout=10 port-to-br "ndc-ul$k" >/dev/null 2>&1; then
        ovs-vsctl --timeout=10 del-port "ndc-ul$k"
    fi
    ip link del "ndc-ul$k" 2>/dev/null || true
    if [ -e "/var/run/netns/$ns" ]; then
        ip netns del "$ns"
        say "removed network namespace $ns"
    fi
    rm -rf "$exec_root" "$data/docker"
    d=$(node_run "$k")
    rm -f "$d"/*.pid "$d"/*.ctl "$d/db.sock"
}
