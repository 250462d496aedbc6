#!/bin/bash
# The README's main job, done as a user of the cloud would, with the
# openstack CLI: bring the host and the single-node cloud up (idempotent),
# upload an image, boot two servers, read their consoles, ping and fetch a
# web page from one to the other and from the host through a floating IP,
# deploy a 3-member OS::ODL::Cluster of the
# ODL stand-in with Heat and connect OVS to its managers, delete it all and
# check that nothing is left on the host. Each step says how long it took.
#
# Usage: tools/demo.sh            (as root, from anywhere)
# Environment: NOVA_DOCKER_CLOUD_HOME (default /opt/nova-docker-cloud).

set -o errexit -o nounset -o pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP_DIR"
CLOUD_HOME=${NOVA_DOCKER_CLOUD_HOME:-/opt/nova-docker-cloud}
export OS_CLOUD=nova-docker-demo
DEMO_TAG=nova-docker/demo-web:2
ODL_TAG=nova-docker/odl-standin:latest
VIP_TAG=nova-docker/haproxy:latest
WORK=$(mktemp -d /tmp/nova-docker-demo.XXXXXX)
START=$(date +%s)
STEP_START=$START

say() { printf '[demo %4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
step() {
    local now
    now=$(date +%s)
    [ "$STEP_START" -eq "$START" ] || say "   (step took $((now - STEP_START)) s)"
    STEP_START=$now
    echo
    say "== $*"
}
die() { say "FAILED: $*" >&2; exit 1; }
show() { sed 's/^/      /'; }

servers=() images=() stack='' managers=() group='' fip=''

cleanup() {
    local uuid
    for uuid in "${managers[@]}"; do
        ovs-vsctl remove Open_vSwitch . manager_options "$uuid" 2>/dev/null || true
    done
    [ -z "$stack" ] || openstack stack delete --yes --wait "$stack" >/dev/null 2>&1 || true
    [ -z "$fip" ] || openstack floating ip delete "$fip" >/dev/null 2>&1 || true
    [ ${#servers[@]} -eq 0 ] || openstack server delete --wait "${servers[@]}" >/dev/null 2>&1 || true
    [ ${#images[@]} -eq 0 ] || openstack image delete "${images[@]}" >/dev/null 2>&1 || true
    [ -z "$group" ] || openstack security group delete "$group" >/dev/null 2>&1 || true
    docker rm -f nova-docker-demo-build >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# wait_for_console SERVER PATTERN: print the console once it has PATTERN.
wait_for_console() {
    local out _
    for _ in $(seq 1 60); do
        out=$(openstack console log show --lines 40 "$1")
        if grep -q -- "$2" <<<"$out"; then
            printf '%s\n' "$out" | tr -d '\r' | grep -v '^$' | tail -n 6 | show
            return
        fi
        sleep 2
    done
    printf '%s\n' "$out" | tail -n 20 >&2
    die "no '$2' in the console of $1 after 120 s"
}

# The web server's program: says hello, serves a page, and when the
# server's metadata names a PEER, pings it and fetches its page.
build_demo_image() {
    docker image inspect "$DEMO_TAG" >/dev/null 2>&1 && return
    cat >"$WORK/demo-web.sh" <<'EOF'
trap 'exit 0' TERM
echo "hello from $(hostname): $(ip -4 -o addr show eth0 | awk '{print $4}')"
mkdir -p /www && echo "page served by $(hostname)" >/www/index.html
httpd -p 8080 -h /www
while :; do
    if [ -n "${PEER:-}" ]; then
        # The driver drops NET_RAW by default, and busybox ping needs it.
        out=$(ping -c1 -W1 "$PEER" 2>&1) && p=replied || p='no reply'
        case $out in *'permission denied'*) p='not allowed (NET_RAW is dropped)' ;; esac
        echo "ping $PEER: $p; http://$PEER:8080/ says: $(timeout 3 wget -q -O- "http://$PEER:8080/" 2>&1)"
    fi
    sleep 3 & wait $!
done
EOF
    docker create --name nova-docker-demo-build nova-docker/busybox:latest >/dev/null
    docker cp "$WORK/demo-web.sh" nova-docker-demo-build:/demo-web.sh
    docker commit --change 'CMD ["/bin/sh", "/demo-web.sh"]' \
        nova-docker-demo-build "$DEMO_TAG" >/dev/null
    docker rm nova-docker-demo-build >/dev/null
}

leftovers_of() {
    local uuid=$1
    docker ps -a --filter "label=org.openstack.nova.instance-uuid=$uuid" --format '{{.Names}}'
    ovs-vsctl --bare --columns=name find Interface "external_ids:vm-uuid=$uuid"
    [ ! -e "/var/run/netns/nova-$uuid" ] || echo "/var/run/netns/nova-$uuid"
}

step "1. the host and the cloud (idempotent: a second run starts nothing)"
bash tools/bootstrap-host.sh | tail -n 1 | show
bash tools/cloud.sh up | tail -n 1 | show
export PATH=$CLOUD_HOME/venv/bin:$PATH
command -v openstack >/dev/null || die "no openstack CLI in $CLOUD_HOME/venv"
openstack --os-cloud nova-docker-admin compute service list \
    -c Binary -c Host -c Zone -c State -f value | show

step "2. upload an image: docker save | openstack image create --container-format docker"
build_demo_image
docker save "$DEMO_TAG" >"$WORK/demo-web.tar"
image=$(openstack image create demo-web --container-format docker \
    --disk-format raw --file "$WORK/demo-web.tar" -f value -c id)
images+=("$image")
say "image demo-web $image ($(stat -c %s "$WORK/demo-web.tar") bytes)"

step "3. boot web-1, then web-2 told (metadata PEER) to ping and fetch from web-1"
# Security groups are enforced: the web servers' group lets ICMP and the
# page's port in (the default group would keep the host out).
group=demo-web-$$
openstack security group create "$group" -f value -c id >/dev/null
openstack security group rule create --protocol icmp "$group" >/dev/null
openstack security group rule create --protocol tcp --dst-port 8080 "$group" >/dev/null
say "security group $group: ICMP and TCP 8080 in"
openstack server create --image "$image" --flavor docker.small --security-group "$group" \
    --network private --availability-zone docker --wait web-1 -f value -c id >"$WORK/id1"
servers+=("$(cat "$WORK/id1")")
ip1=$(openstack server show web-1 -f json -c addresses \
    | python3 -c 'import json,sys; a=json.load(sys.stdin)["addresses"]; print(a["private"][0])')
openstack server create --image "$image" --flavor docker.small --security-group "$group" \
    --network private --availability-zone docker --property "PEER=$ip1" \
    --wait web-2 -f value -c id >"$WORK/id2"
servers+=("$(cat "$WORK/id2")")
openstack server list -c Name -c Status -c Networks -f value | show
for s in "${servers[@]}"; do
    say "containers of $s on the host:"
    docker ps --filter "label=org.openstack.nova.instance-uuid=$s" \
        --format '{{.Names}} {{.Status}}' | show
done

step "4. console of web-1 (openstack console log show)"
wait_for_console web-1 "hello from"

step "5. web-2 fetches web-1's page over TCP, and tries ping (web-2's console)"
wait_for_console web-2 "says: page served by web-1"

step "6. the host reaches web-1 through the router, and on a floating IP"
ping -c1 -W2 "$ip1" | grep 'bytes from' | show
say "curl http://$ip1:8080/: $(curl -s --noproxy '*' -m 5 "http://$ip1:8080/")"
ip netns exec "nova-${servers[0]}" ip -4 -o addr show eth0 | show
fip=$(openstack floating ip create public -f value -c floating_ip_address)
openstack server add floating ip web-1 "$fip"
for _ in $(seq 1 20); do
    page=$(curl -s --noproxy '*' -m 3 "http://$fip:8080/") && break
    sleep 1
done
say "floating IP $fip of web-1, curl http://$fip:8080/: ${page:-no answer}"
[ -n "${page:-}" ] || die "the floating IP $fip of web-1 does not answer"

step "7. Heat: a 3-member OS::ODL::Cluster of the ODL stand-in (not OpenDaylight)"
[ -x tools/build-odl-standin-image.sh ] || die "tools/build-odl-standin-image.sh is missing"
bash tools/build-odl-standin-image.sh "$ODL_TAG" | show
docker save "$ODL_TAG" >"$WORK/odl.tar"
odl_image=$(openstack image create demo-odl-standin --container-format docker \
    --disk-format raw --file "$WORK/odl.tar" -f value -c id)
images+=("$odl_image")
# The northbound VIP: HAProxy built from Debian's binary, never pulled.
bash tools/build-haproxy-image.sh "$VIP_TAG" | show
docker save "$VIP_TAG" >"$WORK/vip.tar"
vip_image=$(openstack image create demo-odl-vip --container-format docker \
    --disk-format raw --file "$WORK/vip.tar" -f value -c id)
images+=("$vip_image")
stack=demo-odl
openstack stack create --wait -t heat_plugins/templates/odl-cluster.yaml \
    --parameter "image=$odl_image" --parameter flavor=docker.small \
    --parameter network=private --parameter cluster_size=3 \
    --parameter "vip_image=$vip_image" \
    "$stack" -f value -c stack_status | show
openstack stack output show "$stack" members -f value -c output_value | show
for out in server_group_policy northbound_url devstack_local_conf; do
    say "$out:"
    openstack stack output show "$stack" "$out" -f value -c output_value | show
done
vip=$(openstack stack output show "$stack" northbound_vip -f value -c output_value)
say "RESTCONF through the VIP $vip: HTTP $(curl -s -o /dev/null -w '%{http_code}' \
    --noproxy '*' -m 10 -u admin:admin \
    "http://$vip:8181/restconf/operational/network-topology:network-topology/topology/netvirt:1")"
mgrs=$(openstack stack output show "$stack" odl_ovs_managers -f value -c output_value)
say "odl_ovs_managers: $mgrs"

step "8. OVS connects to every member (a Manager row each, removed afterwards)"
IFS=', ' read -r -a members <<<"$mgrs"
for m in "${members[@]}"; do
    [ -n "$m" ] || continue
    target=$m
    [[ $target == tcp:* ]] || target=tcp:$m:6640
    managers+=("$(ovs-vsctl -- --id=@m create Manager "target=\"$target\"" \
        -- add Open_vSwitch . manager_options @m)")
done
for _ in $(seq 1 30); do
    connected=0
    for uuid in "${managers[@]}"; do
        [ "$(ovs-vsctl get Manager "$uuid" is_connected)" = true ] && connected=$((connected + 1))
    done
    [ "$connected" -eq "${#managers[@]}" ] && break
    sleep 2
done
for uuid in "${managers[@]}"; do
    ovs-vsctl --columns=target,is_connected list Manager "$uuid" | tr -s ' ' | paste -sd' ' | show
done
[ "$connected" -eq "${#managers[@]}" ] || die "OVS is connected to $connected of ${#managers[@]} members"
for uuid in "${managers[@]}"; do ovs-vsctl remove Open_vSwitch . manager_options "$uuid"; done
managers=()

step "9. delete everything and check that nothing is left"
stack_servers=$(openstack stack resource list -n 5 "$stack" -f value \
    -c physical_resource_id -c resource_type | awk '$2 == "OS::Nova::Server" {print $1}')
openstack stack delete --yes --wait "$stack" | show
stack=''
openstack server delete --wait "${servers[@]}"
openstack image delete "${images[@]}"
left=''
for uuid in "${servers[@]}" $stack_servers; do
    left+=$(leftovers_of "$uuid")
done
servers=() images=()
[ -z "$left" ] || die "left on the host: $left"
say "no container, OVS port or namespace link of the 5 servers is left"
step "done"
say "demo finished in $(($(date +%s) - START)) s"
