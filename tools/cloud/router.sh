# shellcheck shell=bash
# The cloud's network node, sourced by tools/cloud.sh: the L3 agent (legacy
# routers), the DHCP agent, the metadata agent and Nova's metadata API, all
# on the controller, and the external network's outside on the host.
#
#   br-ndc-ex   a netdev bridge on the host's Open vSwitch, mapped to the
#               flat provider network "$EXT_PHYSNET" (the OVS agent
#               patches it to br-ndc); its internal port holds $HOST_IP,
#               the external subnet's gateway and the API endpoints'
#               address.
#   router      "ndc-router" (provision.py): gateway on "public" at
#               $ROUTER_GW_IP, an interface on "private" and on "tempest"
#               (each subnet's .1), SNAT on.
#   routes      the host reaches the tenant subnets through $ROUTER_GW_IP;
#               the compute nodes (default route via the host's underlay
#               address) reach them through the host, which forwards from
#               the underlay bridge to br-ndc-ex only (chain NDC-FORWARD).
#   input       what comes in on br-ndc-ex (tenant traffic after the
#               router's SNAT, floating IPs' peers) may only reach
#               $HOST_IP (chain NDC-INPUT): RabbitMQ on the underlay
#               address and anything else of the host stay out of reach.
#
# Why legacy routers, not DVR: DVR puts a router namespace, a FIP namespace
# and its own external port on every compute node, which here means an
# external bridge and a route from each node namespace to the host's
# external network, plus DVR's per-host MAC rewriting on the userspace
# (netdev) datapath, which nobody has tried here; legacy routers on the
# controller need none of it, and the tunnels carry the traffic to them.

EXT_BRIDGE=br-ndc-ex
# shellcheck disable=SC2034
EXT_PHYSNET=external
ROUTER_GW_IP=${EXT_CIDR%.*/*}.2
FORWARD_CHAIN=NDC-FORWARD
INPUT_CHAIN=NDC-INPUT
NOVA_METADATA_PORT=8775

ensure_external_bridge() {
    if ! ovs-vsctl --timeout=10 br-exists "$EXT_BRIDGE"; then
        ovs-vsctl --timeout=10 add-br "$EXT_BRIDGE" -- set bridge "$EXT_BRIDGE" datapath_type=netdev \
            -- set bridge "$EXT_BRIDGE" external_ids:nova-docker-cloud=true
        say "created OVS bridge $EXT_BRIDGE (netdev, external network)"
    fi
    ip link set "$EXT_BRIDGE" up
    ip -4 addr show dev "$EXT_BRIDGE" | grep -q "inet $HOST_IP/" \
        || ip addr add "$HOST_IP/${EXT_CIDR#*/}" dev "$EXT_BRIDGE"
    ensure_host_chains
}

# ensure_host_chains: the rules this cloud adds to the host's firewall, in
# chains of its own, each jumped to once from the built-in chain.
ensure_host_chains() {
    local chain
    for chain in "$FORWARD_CHAIN" "$INPUT_CHAIN"; do
        iptables -w -N "$chain" 2>/dev/null || iptables -w -F "$chain"
    done
    # The nodes' OVS and engines reach tenant networks through the router
    # (Docker leaves FORWARD's policy at DROP); only replies come back.
    iptables -w -A "$FORWARD_CHAIN" -i "$UL_BRIDGE" -o "$EXT_BRIDGE" -j ACCEPT
    iptables -w -A "$FORWARD_CHAIN" -i "$EXT_BRIDGE" -o "$UL_BRIDGE" \
        -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    iptables -w -A "$INPUT_CHAIN" -i "$EXT_BRIDGE" ! -d "$HOST_IP" -j DROP
    iptables -w -C FORWARD -j "$FORWARD_CHAIN" 2>/dev/null \
        || iptables -w -I FORWARD 1 -j "$FORWARD_CHAIN"
    iptables -w -C INPUT -j "$INPUT_CHAIN" 2>/dev/null \
        || iptables -w -I INPUT 1 -j "$INPUT_CHAIN"
}

remove_host_chains() {
    local chain builtin
    for chain in "$FORWARD_CHAIN" "$INPUT_CHAIN"; do
        builtin=${chain#NDC-}
        iptables -w -n -L "$chain" >/dev/null 2>&1 || continue
        while iptables -w -D "$builtin" -j "$chain" 2>/dev/null; do :; done
        iptables -w -F "$chain"
        iptables -w -X "$chain"
        say "removed iptables chain $chain"
    done
}

# The agents' configuration: privsep through the cloud's helper, OVS
# through the host's OVSDB socket, ports on the integration bridge.
write_network_node_configs() {
    local agent secret
    secret=$(metadata_secret)
    for agent in l3_agent dhcp_agent metadata_agent; do
        { printf '[DEFAULT]\nhost = %s\n' "$COMPUTE_HOST"
          case $agent in
              l3_agent) printf 'interface_driver = openvswitch\nagent_mode = legacy\n' ;;
              dhcp_agent) printf 'interface_driver = openvswitch\nenable_isolated_metadata = false\n' ;;
              metadata_agent)
                  printf 'nova_metadata_host = 127.0.0.1\nnova_metadata_port = %s\n' "$NOVA_METADATA_PORT"
                  printf 'metadata_proxy_shared_secret = %s\nmetadata_workers = 1\n' "$secret" ;;
          esac
          printf '[ovs]\nintegration_bridge = %s\novsdb_connection = %s\n' "$BRIDGE" "$OVSDB"
          local p helper="$VENV/bin/privsep-helper --config-file $ETC/neutron/neutron.conf --config-file $ETC/neutron/$agent.ini"
          for p in privsep privsep_ovs_vsctl privsep_namespace privsep_link privsep_conntrack privsep_dhcp_release; do
              printf '[%s]\nhelper_command = %s\n' "$p" "$helper"
          done; } >"$ETC/neutron/$agent.ini"
        chmod 600 "$ETC/neutron/$agent.ini"
    done
    printf 'neutron\tservice_metadata_proxy\ttrue\nneutron\tmetadata_proxy_shared_secret\t%s\n' "$secret" \
        | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$ETC/nova/nova.conf"
}

metadata_secret() {
    [ -s "$ETC/metadata-secret" ] || { umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$ETC/metadata-secret"; }
    cat "$ETC/metadata-secret"
}

start_network_node() {
    local agent
    for agent in l3 dhcp metadata; do
        start "neutron-$agent-agent" "$VENV/bin/neutron-$agent-agent" \
            --config-file "$ETC/neutron/neutron.conf" --config-file "$ETC/neutron/${agent}_agent.ini"
    done
    # Nova's metadata API, for the metadata agent only: on loopback.
    # shellcheck disable=SC2034
    WSGI_ENV=(OS_NOVA_CONFIG_DIR="$ETC/nova" OS_NOVA_CONFIG_FILES="api-paste.ini;nova.conf")
    start_wsgi nova-metadata "$NOVA_METADATA_PORT" nova.wsgi.metadata "" 127.0.0.1
    wait_healthy neutron-l3-agent neutron-dhcp-agent neutron-metadata-agent nova-metadata
}

# route_tenant_networks: the host's routes to the tenant subnets behind
# the router (once provision.py has made it).
route_tenant_networks() {
    local cidr
    # shellcheck disable=SC2153
    for cidr in "$CIDR" "$TEMPEST_CIDR"; do
        ip route replace "$cidr" via "$ROUTER_GW_IP" dev "$EXT_BRIDGE"
    done
    say "host routes $CIDR and $TEMPEST_CIDR through the router at $ROUTER_GW_IP"
}

# neutron_namespaces: the router and DHCP namespaces of this cloud's
# Neutron (its routers' and networks' ids), present on the host.
neutron_namespaces() {
    local sock=$RUN/mysql/mysqld.sock id
    [ -S "$sock" ] || return 0
    {
        mysql --socket="$sock" -u root -N -e 'SELECT id FROM neutron.routers' 2>/dev/null \
            | sed 's/^/qrouter-/'
        mysql --socket="$sock" -u root -N -e 'SELECT id FROM neutron.networks' 2>/dev/null \
            | sed 's/^/qdhcp-/'
    } | while read -r id; do
        if [ -e "/var/run/netns/$id" ]; then echo "$id"; fi
    done
}

# remove_network_node NAMESPACES: after the agents stopped, what they
# leave by design (so that a restarted agent keeps routing): their
# namespaces with the haproxy and dnsmasq processes in them, and the
# host's chains and routes.
remove_network_node() {
    local ns pid
    for ns in $1; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
        sleep 0.5
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
        say "removed network namespace $ns"
    done
    remove_host_chains
}
