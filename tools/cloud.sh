#!/bin/bash
# An OpenStack on this machine, with nova-compute running this bundle's
# driver: MariaDB, RabbitMQ and memcached from Debian; Keystone, Glance,
# Placement, Nova, Neutron (ML2/openvswitch with VXLAN, agents on netdev
# bridges, security groups enforced; a legacy router to an external network
# whose outside is the host, DHCP and metadata: tools/cloud/router.sh) and
# Heat from PyPI, in their own virtualenv, started by this script (no
# systemd) and configured as a deployment guide would. One compute node by default; with --computes N,
# N - 1 more, each in a network namespace of its own (tools/cloud/nodes.sh,
# doc/source/install/multinode-cloud.rst). nova-compute runs as the
# unprivileged user nova.
#
# Usage: tools/cloud.sh up [--computes N]|down [--purge]|status|
#        restart-compute [--kill]   (as root, after bootstrap-host)
#
#   up      installs what is missing, writes the configuration, starts every
#           service not already running, creates the cloud's objects; ends
#           with "cloud ready". A second run starts nothing new.
#   down    deletes the servers (through the API while it answers), stops
#           every process up started (by recorded pid), removes what is left
#           of the servers' containers and namespace links, this cloud's OVS
#           bridges and the OVS manager row the agent added. With --purge it
#           also removes the databases, configuration and logs (not the
#           virtualenv), so the next up starts from nothing.
#   status  each service with pid, port and health; exit 1 if one is down.
#   restart-compute
#           stops nova-compute (SIGTERM, as an operator's service restart;
#           with --kill SIGKILL, as a crash) and starts it again; returns
#           once the new process has finished init_host (its start-up
#           reconciliation of every server on the host).
#
# Environment: NOVA_DOCKER_CLOUD_HOME (default /opt/nova-docker-cloud),
# NOVA_DOCKER_CLOUD_CIDR (default 10.20.0.0/24: the demo's "private"),
# NOVA_DOCKER_CLOUD_EXT_CIDR (default 10.23.0.0/24: the external network
# "public"; the host holds its .1, the API endpoints' address),
# NOVA_DOCKER_CLOUD_PYTHON (default /usr/bin/python3),
# NOVA_DOCKER_CLOUD_FIREWALL (default openvswitch; noop: no security groups).

set -o errexit -o nounset -o pipefail
# The script acts as the cloud's admin with the credentials it wrote; an
# OS_CLOUD (or OS_*) a caller exported, e.g. the demo user, must not leak in.
unset OS_CLOUD OS_AUTH_URL OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_TOKEN

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLOUD_HOME=${NOVA_DOCKER_CLOUD_HOME:-/opt/nova-docker-cloud}
VENV=$CLOUD_HOME/venv
# The services' interpreter: the system's, which every user can run.
CLOUD_PYTHON=${NOVA_DOCKER_CLOUD_PYTHON:-/usr/bin/python3}
ETC=$CLOUD_HOME/etc
LOGS=$CLOUD_HOME/log
RUN=$CLOUD_HOME/run
DATA=$CLOUD_HOME/data
CIDR=${NOVA_DOCKER_CLOUD_CIDR:-10.20.0.0/24}
BRIDGE="br-ndc"
TUN_BRIDGE="br-ndc-tun"
# tempest's own shared network (admin's), so test projects never boot on
# the demo's private network. Both subnets' gateway (.1) is the router.
TEMPEST_CIDR=${NOVA_DOCKER_CLOUD_TEMPEST_CIDR:-10.22.0.0/24}
# The external network (tools/cloud/router.sh): the host is its outside.
EXT_CIDR=${NOVA_DOCKER_CLOUD_EXT_CIDR:-10.23.0.0/24}
HOST_IP=${EXT_CIDR%.*/*}.1
COMPUTE_HOST=nova-docker-cloud
OVSDB=unix:/var/run/openvswitch/db.sock
# nova-compute is not root: it reaches OVSDB over TCP on loopback, as in
# packaged deployments (the unix socket is root's).
OVSDB_TCP_PORT=6650
OVSDB_COMPUTE=tcp:127.0.0.1:$OVSDB_TCP_PORT
IMAGE=${NOVA_DOCKER_TEST_IMAGE:-nova-docker/busybox:latest}
IMAGE_NAME=nova-docker-busybox
CLOUDS_YAML=/etc/openstack/clouds.yaml
DEBS=(mariadb-server rabbitmq-server memcached curl conntrack sudo dnsmasq-base
      haproxy)
# nova-compute runs as this user (in the docker group), as packaged
# deployments run it; privsep and rootwrap through sudo.
NOVA_USER=nova
SUDOERS=/etc/sudoers.d/nova-docker-cloud
# shellcheck source=tools/lib/deployment-conf.sh
source "$TOP_DIR/tools/lib/deployment-conf.sh"
# shellcheck source=tools/cloud/nodes.sh
source "$TOP_DIR/tools/cloud/nodes.sh"
# shellcheck source=tools/cloud/router.sh
source "$TOP_DIR/tools/cloud/router.sh"
# Security groups: enforced by the OVS agents (conntrack flows on the
# netdev bridges); NOVA_DOCKER_CLOUD_FIREWALL=noop turns them off.
FIREWALL_DRIVER=${NOVA_DOCKER_CLOUD_FIREWALL:-openvswitch}
SCHEDULER_FILTERS=ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter

START=$(date +%s)
say() { printf '[cloud %4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { printf '[cloud %4ds] ERROR: %s\n' "$(($(date +%s) - START))" "$*" >&2; exit 1; }

# name|port|health: http (any answer under 500 on /), tcp (listening), or -
# for workers whose health is their registration (status shows it).
SERVICES=(
    "mysql|3306|tcp" "rabbitmq|5672|tcp" "memcached|11211|tcp"
    "keystone|5000|http" "glance-api|9292|http" "placement-api|8778|http"
    "nova-api|8774|http" "nova-conductor||-" "nova-scheduler||-"
    "neutron-api|9696|http" "neutron-rpc-server||-"
    "neutron-periodic-workers||-" "neutron-openvswitch-agent||-"
    "neutron-l3-agent||-" "neutron-dhcp-agent||-" "neutron-metadata-agent||-"
    "nova-metadata|8775|http"
    "heat-api|8004|http" "heat-engine||-" "nova-serialproxy|6083|tcp"
    "nova-compute||-"
)

# A pid file holds "PID STARTTIME": a pid reused by another process after a
# reboot or a kill does not pass for the service.
# (Field 22 of stat, counted after the command name, which may hold spaces.)
start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

pid_of() {
    local pid started
    read -r pid started 2>/dev/null <"$RUN/$1.pid" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ -z "${started:-}" ] || [ "$(start_time "$pid")" = "$started" ] || return 1
    echo "$pid"
}

record_pid() { echo "$2 $(start_time "$2")" >"$RUN/$1.pid"; }

port_holder() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n 1
}

healthy() {
    local port=$2 kind=$3 code
    case $kind in
        http)
            code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$port/") || true
            [ "${code:-000}" != 000 ] && [ "$code" -lt 500 ] ;;
        tcp) (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
                 || (exec 3<>"/dev/tcp/$CTL_IP/$port") 2>/dev/null ;;
        *) pid_of "$1" >/dev/null ;;
    esac
}

spec_of() {
    local s
    for s in "${SERVICES[@]}"; do [ "${s%%|*}" = "$1" ] && { echo "$s"; return; }; done
    die "unknown service $1"
}

# start NAME COMMAND...: start unless running, record the pid. The process
# leads its own session, so down can stop it with everything it forked.
start() {
    local name=$1 spec port pid
    shift
    if pid=$(pid_of "$name"); then
        say "$name running (pid $pid)"
        return
    fi
    spec=$(spec_of "$name"); port=$(cut -d'|' -f2 <<<"$spec")
    if [ -n "$port" ] && [ -n "$(port_holder "$port")" ]; then
        die "$name: port $port is already in use by $(port_holder "$port")"
    fi
    PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    record_pid "$name" $!
    STARTED+=("$name")
    say "started $name (pid $!, log $LOGS/$name.log)"
}

wait_healthy() {
    local name spec port kind i
    for name in "$@"; do
        spec=$(spec_of "$name"); port=$(cut -d'|' -f2 <<<"$spec"); kind=${spec##*|}
        for i in $(seq 1 120); do
            if ! pid_of "$name" >/dev/null; then
                tail -n 25 "$LOGS/$name.log" >&2 || true
                die "$name failed to start (log: $LOGS/$name.log)"
            fi
            healthy "$name" "$port" "$kind" && break
            [ "$i" -eq 120 ] && { tail -n 25 "$LOGS/$name.log" >&2; die "$name did not answer on port $port in 120 s"; }
            sleep 1
        done
    done
}

# start_wsgi NAME PORT MODULE [ARGS [ADDRESS]]: an API service under a
# WSGI server, on ADDRESS (default all); ARGS are the service's own
# command-line arguments (see wsgi_app.py). Extra environment for the
# service comes from WSGI_ENV.
start_wsgi() {
    local name=$1 port=$2 module=$3 args=${4:-} address=${5:-0.0.0.0}
    start "$name" env "${WSGI_ENV[@]}" NOVA_DOCKER_WSGI_MODULE="$module" \
        NOVA_DOCKER_WSGI_ARGS="$args" "$VENV/bin/gunicorn" --workers 1 \
        --threads 8 --timeout 300 --bind "$address:$port" \
        --chdir "$TOP_DIR/tools/cloud" --log-level warning wsgi_app:application
}

# -- installation ---------------------------------------------------------

install_debs() {
    local missing=() pkg added_policy=0
    for pkg in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && { say "Debian packages present"; return; }
    # No systemd: keep the packages' init scripts from starting daemons
    # this script starts itself.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >"$LOGS/apt.log" 2>&1 || { tail -n 20 "$LOGS/apt.log" >&2; die "apt-get install failed"; }
    [ "$added_policy" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
    say "installed Debian packages: ${missing[*]}"
}

bundle_hash() {
    (cd "$TOP_DIR" && git ls-files -co --exclude-standard -- setup.cfg setup.py \
        requirements.txt novadocker nova heat_plugins etc | sort | xargs -r sha256sum) \
        | sha256sum | cut -d' ' -f1
}

install_venv() {
    local stamp=$VENV/.services reqs
    # The interpreter must be one the unprivileged nova user can run (a
    # pyenv build under /root is not): a venv made from another goes.
    if [ -e "$VENV/bin/python" ] \
            && [ "$(readlink -f "$VENV/bin/python")" != "$(readlink -f "$CLOUD_PYTHON")" ]; then
        rm -rf "$VENV"
        say "removed $VENV: it was made from another interpreter than $CLOUD_PYTHON"
    fi
    [ -x "$VENV/bin/python" ] || "$CLOUD_PYTHON" -m venv "$VENV"
    reqs=$(cat "$TOP_DIR/tools/cloud/requirements.txt" "$TOP_DIR/requirements.txt" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$reqs" ]; then
        "$VENV/bin/pip" install -q -r "$TOP_DIR/tools/cloud/requirements.txt" \
            -r "$TOP_DIR/requirements.txt" \
            >"$LOGS/pip.log" 2>&1 || { tail -n 20 "$LOGS/pip.log" >&2; die "pip install of the services failed"; }
        echo "$reqs" >"$stamp"
        say "installed the services into $VENV"
    else
        say "services installed in $VENV"
    fi
    stamp=$VENV/.nova-docker
    if [ "$(cat "$stamp" 2>/dev/null)" != "$(bundle_hash)" ]; then
        # Not editable: nova/virt/docker must be a real file inside Nova.
        # Its requirements came with the services above: one build only.
        (cd "$TOP_DIR" && "$VENV/bin/pip" install -q --force-reinstall --no-deps .) \
            >>"$LOGS/pip.log" 2>&1 \
            || { tail -n 20 "$LOGS/pip.log" >&2; die "pip install of nova-docker failed"; }
        bundle_hash >"$stamp"
        say "installed nova-docker (non-editable) from $TOP_DIR"
    else
        say "nova-docker in $VENV is current"
    fi
}

# -- configuration ---------------------------------------------------------

password() {
    [ -s "$ETC/password" ] || { umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$ETC/password"; }
    cat "$ETC/password"
}

db_url() { echo "mysql+pymysql://$1:$PASSWORD@127.0.0.1:3306/$2?charset=utf8"; }

authtoken() {
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://$HOST_IP:5000
auth_url = http://$HOST_IP:5000
memcached_servers = 127.0.0.1:11211
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $PASSWORD
service_token_roles_required = true
EOF
}

# client SECTION USER: credentials a service uses to call another one.
client() {
    cat <<EOF
[$1]
auth_url = http://$HOST_IP:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $PASSWORD
region_name = RegionOne
EOF
}

apply_deployment() {
    # apply_deployment TARGET FILE: the shared choices of deployment.conf.
    nova_docker_deployment_settings "$1" | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$2"
}

rootwrap_conf() {
    # rootwrap_conf PROJECT: filters from the venv, commands found in it too.
    mkdir -p "$ETC/$1/rootwrap.d"
    cp "$VENV/etc/$1/rootwrap.d/"* "$ETC/$1/rootwrap.d/"
    chmod 644 "$ETC/$1/rootwrap.d/"*
    cat >"$ETC/$1/rootwrap.conf" <<EOF
[DEFAULT]
filters_path = $ETC/$1/rootwrap.d
exec_dirs = $VENV/bin,/sbin,/usr/sbin,/bin,/usr/bin,/usr/local/sbin,/usr/local/bin
use_syslog = False
EOF
}

write_configs() {
    local p k
    TRANSPORT="rabbit://openstack:$PASSWORD@$CTL_IP:5672/"
    local transport=$TRANSPORT
    for p in keystone glance placement nova neutron heat; do mkdir -p "$ETC/$p"; done
    mkdir -p "$ETC/keystone/fernet-keys" "$ETC/keystone/credential-keys" \
        "$DATA/glance/images" "$DATA/glance/staging" "$DATA/glance/tasks" \
        "$DATA/nova/instances" "$DATA/neutron" "$DATA/heat" "$DATA/locks"

    cat >"$ETC/keystone/keystone.conf" <<EOF
[database]
connection = $(db_url keystone keystone)
[token]
provider = fernet
[fernet_tokens]
key_repository = $ETC/keystone/fernet-keys
[fernet_receipts]
key_repository = $ETC/keystone/fernet-keys
[credential]
key_repository = $ETC/keystone/credential-keys
[cache]
enabled = true
backend = dogpile.cache.pymemcache
memcache_servers = 127.0.0.1:11211
EOF

    cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
    { cat <<EOF
[DEFAULT]
enabled_backends = fs:file
[database]
connection = $(db_url glance glance)
[paste_deploy]
flavor = keystone
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $DATA/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks
[oslo_concurrency]
lock_path = $DATA/locks
EOF
      authtoken glance; } >"$ETC/glance/glance-api.conf"
    # The variables below are read by name by nova_docker_deployment_settings.
    # shellcheck disable=SC2034
    GLANCE_CONTAINER_FORMATS=ami,ari,aki,bare,ovf,ova,compressed,docker
    apply_deployment glance-api "$ETC/glance/glance-api.conf"

    { cat <<EOF
[placement_database]
connection = $(db_url placement placement)
[api]
auth_strategy = keystone
EOF
      authtoken placement; } >"$ETC/placement/placement.conf"

    cp "$VENV/etc/nova/api-paste.ini" "$ETC/nova/"
    rootwrap_conf nova
    local nova_common
    # NOVA_COMMON: also the compute nodes' (nodes.sh).
    nova_common=$(cat <<EOF
[oslo_concurrency]
lock_path = $DATA/locks
[service_user]
send_service_user_token = true
auth_url = http://$HOST_IP:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = nova
password = $PASSWORD
$(client placement placement)
$(client neutron neutron)
[serial_console]
enabled = true
base_url = ws://127.0.0.1:6083/
serialproxy_host = 127.0.0.1
serialproxy_port = 6083
EOF
)
    NOVA_COMMON=$nova_common
    { cat <<EOF
[DEFAULT]
transport_url = $transport
my_ip = $HOST_IP
state_path = $DATA/nova
# The driver resizes in place only (doc/source/user/server-actions.rst).
allow_resize_to_same_host = true
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api_database]
connection = $(db_url nova nova_api)
[database]
connection = $(db_url nova nova_cell1)
[scheduler]
discover_hosts_in_cells_interval = -1
[filter_scheduler]
# Nova's defaults, and the hints "same_host" and "different_host" users
# place servers with on a multi-node cloud.
enabled_filters = $SCHEDULER_FILTERS
$nova_common
EOF
      authtoken nova; } >"$ETC/nova/nova.conf"
    # nova-compute's own file: no database credentials.
    cat >"$ETC/nova/nova-cpu.conf" <<EOF
[DEFAULT]
host = $COMPUTE_HOST
transport_url = $transport
my_ip = $HOST_IP
state_path = $DATA/nova
instances_path = $DATA/nova/instances
allow_resize_to_same_host = true
$nova_common
EOF
    # shellcheck disable=SC2034
    NOVA_CONF_DIR=$ETC/nova DOCKER_API_URL=unix:///var/run/docker.sock
    # shellcheck disable=SC2034
    NOVA_CPU_CONF=$ETC/nova/nova-cpu.conf NOVA_BIN_DIR=$VENV/bin
    apply_deployment nova-cpu "$ETC/nova/nova-cpu.conf"
    apply_deployment nova-cpu-root "$ETC/nova/nova-cpu.conf"
    unprivileged_compute_conf "$ETC/nova/nova-cpu.conf"
    printf 'os_vif_ovs\tovsdb_connection\t%s\n' "$OVSDB_COMPUTE" \
        | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$ETC/nova/nova-cpu.conf"
    # nova-serialproxy runs on this host: the console listeners of the
    # controller's compute node stay on loopback, out of tenants' reach.
    printf 'serial_console\tproxyclient_address\t127.0.0.1\n' \
        | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$ETC/nova/nova-cpu.conf"

    cp "$VENV/etc/neutron/api-paste.ini" "$ETC/neutron/"
    rootwrap_conf neutron
    local helper="$VENV/bin/privsep-helper --config-file $ETC/neutron/neutron.conf --config-file $ETC/neutron/openvswitch_agent.ini"
    { cat <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
transport_url = $transport
state_path = $DATA/neutron
api_paste_config = $ETC/neutron/api-paste.ini
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
rpc_workers = 1
rpc_state_report_workers = 1
[database]
connection = $(db_url neutron neutron)
[oslo_concurrency]
lock_path = $DATA/locks
[agent]
root_helper = $VENV/bin/neutron-rootwrap $ETC/neutron/rootwrap.conf
EOF
      for p in privsep privsep_ovs_vsctl privsep_namespace privsep_link privsep_conntrack privsep_dhcp_release; do
          printf '[%s]\nhelper_command = %s\n' "$p" "$helper"
      done
      client nova nova
      authtoken neutron; } >"$ETC/neutron/neutron.conf"
    cat >"$ETC/neutron/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security
[ml2_type_flat]
flat_networks = $EXT_PHYSNET
[ml2_type_vxlan]
vni_ranges = 1001:2000
EOF
    cat >"$ETC/neutron/openvswitch_agent.ini" <<EOF
[DEFAULT]
host = $COMPUTE_HOST
[ovs]
integration_bridge = $BRIDGE
tunnel_bridge = $TUN_BRIDGE
datapath_type = netdev
local_ip = $CTL_IP
ovsdb_connection = $OVSDB
of_listen_port = 16633
bridge_mappings = $EXT_PHYSNET:$EXT_BRIDGE
[agent]
tunnel_types = vxlan
[securitygroup]
firewall_driver = $FIREWALL_DRIVER
EOF
    # Prompt network-vif-plugged events (deployment.conf says the cost).
    apply_deployment neutron "$ETC/neutron/neutron.conf"
    apply_deployment neutron-agent "$ETC/neutron/openvswitch_agent.ini"

    cp "$VENV/etc/heat/api-paste.ini" "$ETC/heat/"
    { cat <<EOF
[DEFAULT]
transport_url = $transport
num_engine_workers = 1
region_name_for_services = RegionOne
heat_metadata_server_url = http://$HOST_IP:8000
heat_waitcondition_server_url = http://$HOST_IP:8000/v1/waitcondition
stack_domain_admin = heat_domain_admin
stack_domain_admin_password = $PASSWORD
stack_user_domain_id = $(cat "$ETC/heat/stack-domain-id" 2>/dev/null || echo unset)
[database]
connection = $(db_url heat heat)
[paste_deploy]
api_paste_config = $ETC/heat/api-paste.ini
[oslo_concurrency]
lock_path = $DATA/locks
[clients_keystone]
auth_uri = http://$HOST_IP:5000
[trustee]
auth_type = password
auth_url = http://$HOST_IP:5000
username = heat
password = $PASSWORD
user_domain_name = Default
EOF
      authtoken heat; } >"$ETC/heat/heat.conf"
    # shellcheck disable=SC2034
    HEAT_PLUGIN_DIRS=$("$VENV/bin/python" -c 'import heat_plugins, os; print(os.path.dirname(heat_plugins.__file__))')
    apply_deployment heat "$ETC/heat/heat.conf"
    write_network_node_configs
    for ((k = 2; k <= COMPUTES; k++)); do write_node_configs "$k"; done
    say "configuration written under $ETC"
}

# -- infrastructure services -------------------------------------------

start_mysql() {
    mkdir -p "$DATA/mysql" "$RUN/mysql"
    chown mysql:mysql "$DATA/mysql" "$RUN/mysql"
    if [ ! -d "$DATA/mysql/mysql" ]; then
        mysql_install_db --user=mysql --datadir="$DATA/mysql" >"$LOGS/mysql-install.log" 2>&1 \
            || { tail -n 20 "$LOGS/mysql-install.log" >&2; die "mysql_install_db failed"; }
    fi
    start mysql /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DATA/mysql" \
        --socket="$RUN/mysql/mysqld.sock" --pid-file="$RUN/mysql/mysqld.pid" \
        --bind-address=127.0.0.1 --port=3306 --max-connections=1000 \
        --innodb-flush-log-at-trx-commit=0 --skip-log-bin
}

start_rabbitmq() {
    mkdir -p "$DATA/rabbitmq" "$LOGS/rabbitmq"
    EPMD_BEFORE=$(pgrep -x epmd || true)
    # AMQP on the control-plane address the compute nodes reach; epmd and
    # Erlang distribution (rabbitmqctl's way in) on loopback only.
    start rabbitmq env HOME=/root RABBITMQ_NODENAME=ndc-rabbit@localhost \
        RABBITMQ_NODE_IP_ADDRESS="$CTL_IP" RABBITMQ_NODE_PORT=5672 \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_DIST_PORT=25672 RABBITMQ_MNESIA_BASE="$DATA/rabbitmq" \
        RABBITMQ_LOG_BASE="$LOGS/rabbitmq" RABBITMQ_LOGS=- \
        /usr/lib/rabbitmq/bin/rabbitmq-server
}

rabbitmqctl() { HOME=/root ERL_EPMD_ADDRESS=127.0.0.1 /usr/lib/rabbitmq/bin/rabbitmqctl -n ndc-rabbit@localhost "$@"; }

init_infra() {
    local db pid
    wait_healthy mysql rabbitmq memcached
    # epmd daemonizes itself; record it when it was this run that started it.
    if [ -z "${EPMD_BEFORE:-}" ] && [ ! -s "$RUN/epmd.pid" ]; then
        pid=$(pgrep -o -x epmd) && record_pid epmd "$pid"
    fi
    for db in keystone glance placement nova neutron heat; do
        mysql --socket="$RUN/mysql/mysqld.sock" -u root <<EOF
CREATE USER IF NOT EXISTS '$db'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
ALTER USER '$db'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
EOF
    done
    for db in keystone glance placement neutron heat nova_api nova_cell0 nova_cell1; do
        local user=${db%%_*}
        mysql --socket="$RUN/mysql/mysqld.sock" -u root -e \
            "CREATE DATABASE IF NOT EXISTS $db; GRANT ALL ON $db.* TO '$user'@'127.0.0.1';"
    done
    rabbitmqctl await_startup >/dev/null
    rabbitmqctl list_users -q | grep -q '^openstack' \
        || rabbitmqctl add_user openstack "$PASSWORD" >/dev/null
    rabbitmqctl change_password openstack "$PASSWORD" >/dev/null
    rabbitmqctl set_permissions openstack '.*' '.*' '.*' >/dev/null
    say "databases and message queue ready"
}

# dbsync NAME COMMAND...: once per cloud home (the stamp says it ran).
dbsync() {
    local name=$1
    shift
    [ -f "$DATA/dbsync-$name" ] && return 0
    "$@" >>"$LOGS/dbsync-$name.log" 2>&1 || { tail -n 20 "$LOGS/dbsync-$name.log" >&2; echo "dbsync $name failed" >&2; return 1; }
    touch "$DATA/dbsync-$name"
}

sync_databases() {
    local pids=() pid rc=0 bin=$VENV/bin
    dbsync glance "$bin/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync & pids+=($!)
    dbsync placement "$bin/placement-manage" --config-file "$ETC/placement/placement.conf" db sync & pids+=($!)
    dbsync neutron "$bin/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" \
        --config-file "$ETC/neutron/ml2_conf.ini" upgrade heads & pids+=($!)
    dbsync heat "$bin/heat-manage" --config-file "$ETC/heat/heat.conf" db_sync & pids+=($!)
    ( dbsync nova-api "$bin/nova-manage" --config-file "$ETC/nova/nova.conf" api_db sync \
      && dbsync nova-cell0 "$bin/nova-manage" --config-file "$ETC/nova/nova.conf" cell_v2 map_cell0 \
            --database_connection "$(db_url nova nova_cell0)" \
      && dbsync nova-cell1 "$bin/nova-manage" --config-file "$ETC/nova/nova.conf" cell_v2 create_cell \
            --name cell1 \
      && dbsync nova "$bin/nova-manage" --config-file "$ETC/nova/nova.conf" db sync ) & pids+=($!)
    dbsync keystone "$bin/keystone-manage" --config-file "$ETC/keystone/keystone.conf" db_sync || rc=1
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    [ "$rc" -eq 0 ] || die "a database sync failed (logs: $LOGS/dbsync-*.log)"
    say "databases synced"
}

# -- OpenStack services -----------------------------------------------

start_keystone() {
    local km=("$VENV/bin/keystone-manage" --config-file "$ETC/keystone/keystone.conf")
    [ -e "$ETC/keystone/fernet-keys/0" ] || "${km[@]}" fernet_setup --keystone-user root --keystone-group root
    [ -e "$ETC/keystone/credential-keys/0" ] || "${km[@]}" credential_setup --keystone-user root --keystone-group root
    if [ ! -f "$DATA/keystone-bootstrap" ]; then
        "${km[@]}" bootstrap --bootstrap-password "$PASSWORD" \
            --bootstrap-admin-url "http://$HOST_IP:5000/v3" \
            --bootstrap-public-url "http://$HOST_IP:5000/v3" \
            --bootstrap-internal-url "http://$HOST_IP:5000/v3" \
            --bootstrap-region-id RegionOne >>"$LOGS/keystone-bootstrap.log" 2>&1 \
            || { tail -n 20 "$LOGS/keystone-bootstrap.log" >&2; die "keystone-manage bootstrap failed"; }
        touch "$DATA/keystone-bootstrap"
    fi
    WSGI_ENV=(OS_KEYSTONE_CONFIG_DIR="$ETC/keystone")
    start_wsgi keystone 5000 keystone.wsgi.api
    wait_healthy keystone
}

provision() {
    NDC_AUTH_URL=http://$HOST_IP:5000/v3 NDC_PASSWORD=$PASSWORD NDC_HOST_IP=$HOST_IP \
    NDC_CIDR=$CIDR NDC_TEMPEST_CIDR=$TEMPEST_CIDR NDC_EXT_CIDR=$EXT_CIDR NDC_ROUTER_GW=$ROUTER_GW_IP \
    NDC_EXT_PHYSNET=$EXT_PHYSNET NDC_COMPUTE_HOST=$COMPUTE_HOST NDC_COMPUTE_HOSTS="$(compute_hosts)" \
    NDC_IMAGE_NAME=$IMAGE_NAME \
    NDC_IMAGE_FILE=$DATA/busybox-image.tar NDC_HEAT_DOMAIN_FILE=$ETC/heat/stack-domain-id \
    NDC_RESOURCES_FILE=$RUN/resources.json NDC_AGGREGATE=$AGGREGATE NDC_ZONE=$ZONE \
        "$VENV/bin/python" "$TOP_DIR/tools/cloud/provision.py" "$@"
}

start_apis() {
    local nc=("--config-file" "$ETC/nova/nova.conf")
    WSGI_ENV=(OS_GLANCE_CONFIG_DIR="$ETC/glance")
    start_wsgi glance-api 9292 glance.wsgi.api
    WSGI_ENV=(OS_PLACEMENT_CONFIG_DIR="$ETC/placement")
    start_wsgi placement-api 8778 placement.wsgi.api
    WSGI_ENV=(OS_NOVA_CONFIG_DIR="$ETC/nova" OS_NOVA_CONFIG_FILES="api-paste.ini;nova.conf")
    start_wsgi nova-api 8774 nova.wsgi.osapi_compute
    start nova-conductor "$VENV/bin/nova-conductor" "${nc[@]}"
    start nova-scheduler "$VENV/bin/nova-scheduler" "${nc[@]}"
    WSGI_ENV=(OS_NEUTRON_CONFIG_DIR="$ETC/neutron" OS_NEUTRON_CONFIG_FILES="neutron.conf;ml2_conf.ini")
    start_wsgi neutron-api 9696 neutron.wsgi.api
    start neutron-rpc-server "$VENV/bin/neutron-rpc-server" --config-file "$ETC/neutron/neutron.conf" \
        --config-file "$ETC/neutron/ml2_conf.ini"
    start neutron-periodic-workers "$VENV/bin/neutron-periodic-workers" \
        --config-file "$ETC/neutron/neutron.conf" --config-file "$ETC/neutron/ml2_conf.ini"
    WSGI_ENV=(NOVA_DOCKER_WSGI_PROG=heat-api)
    start_wsgi heat-api 8004 heat.wsgi.api "--config-file $ETC/heat/heat.conf"
    start heat-engine "$VENV/bin/heat-engine" --config-file "$ETC/heat/heat.conf"
    start nova-serialproxy "$VENV/bin/nova-serialproxy" "${nc[@]}"
    wait_healthy glance-api placement-api nova-api nova-conductor nova-scheduler \
        neutron-api neutron-rpc-server neutron-periodic-workers heat-api heat-engine \
        nova-serialproxy
}

ovs_managers() { ovs-vsctl --timeout=10 --bare --columns=target list Manager | grep . | sort || true; }

ensure_bridges() {
    local br
    for br in "$BRIDGE" "$TUN_BRIDGE"; do
        if ! ovs-vsctl --timeout=10 br-exists "$br"; then
            ovs-vsctl --timeout=10 add-br "$br" -- set bridge "$br" datapath_type=netdev \
                -- set bridge "$br" external_ids:nova-docker-cloud=true
            say "created OVS bridge $br (netdev)"
        fi
    done
    ensure_underlay
    ensure_external_bridge
}

start_network_agent() {
    # The agent's OVSDB monitor adds the manager "p<ovsdb_connection>" when
    # it is missing: when this run starts the agent and the row is not there,
    # the row is this cloud's, and down removes it (and no other).
    if ! pid_of neutron-openvswitch-agent >/dev/null \
            && ! ovs_managers | grep -qxF "p$OVSDB"; then
        echo "p$OVSDB" >"$RUN/ovs-managers-added"
    fi
    start neutron-openvswitch-agent "$VENV/bin/neutron-openvswitch-agent" \
        --config-file "$ETC/neutron/neutron.conf" --config-file "$ETC/neutron/openvswitch_agent.ini"
    wait_healthy neutron-openvswitch-agent
}

# AS_NOVA: the prefix that runs a command as the unprivileged
# nova-compute user (nodes.sh puts it after nsenter).
as_nova() {
    AS_NOVA=(setpriv --reuid "$NOVA_USER" --regid "$NOVA_USER" --init-groups
             env HOME="$DATA/nova" USER="$NOVA_USER")
}

ensure_nova_user() {
    if ! id "$NOVA_USER" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir "$DATA/nova" \
            --shell /usr/sbin/nologin --groups docker "$NOVA_USER"
        echo "$NOVA_USER" >"$RUN/user-added"
        say "created user $NOVA_USER (groups: $(id -Gn "$NOVA_USER"))"
    fi
    id -Gn "$NOVA_USER" | grep -qw docker || die "user $NOVA_USER is not in the docker group"
    # Root only for the cloud's own helpers, with its configuration.
    local k c confs="$ETC/nova/nova-cpu.conf"
    for ((k = 2; k <= COMPUTES; k++)); do confs+=" $ETC/nova/nova-cpu-c$k.conf"; done
    {
        echo "# Written by nova-docker tools/cloud.sh; removed by its down."
        echo "Defaults:$NOVA_USER !requiretty"
        echo "$NOVA_USER ALL = (root) NOPASSWD: $VENV/bin/nova-rootwrap $ETC/nova/rootwrap.conf *"
        for c in $confs; do
            echo "$NOVA_USER ALL = (root) NOPASSWD: $VENV/bin/privsep-helper --config-file $c *"
        done
    } >"$SUDOERS.tmp"
    chmod 440 "$SUDOERS.tmp"
    visudo -cq -f "$SUDOERS.tmp" || die "sudoers file $SUDOERS.tmp does not parse"
    mv "$SUDOERS.tmp" "$SUDOERS"
    # What nova-compute writes, and the configuration it reads (with
    # passwords: not world-readable).
    mkdir -p "$DATA/nova/instances"
    chown -R "$NOVA_USER:$NOVA_USER" "$DATA/nova"
    chgrp "$NOVA_USER" "$DATA/locks" && chmod 2775 "$DATA/locks"
    for c in $confs; do chgrp "$NOVA_USER" "$c"; chmod 640 "$c"; done
    for ((k = 2; k <= COMPUTES; k++)); do
        chown -R "$NOVA_USER:$NOVA_USER" "$(node_data "$k")/nova" "$(node_data "$k")/locks"
    done
}

# unprivileged_compute_conf FILE: privsep and rootwrap through sudo.
unprivileged_compute_conf() {
    local helper="sudo $VENV/bin/privsep-helper --config-file $1" ctx
    for ctx in vif_plug_ovs_privileged nova_docker_privileged nova_sys_admin; do
        printf '%s\thelper_command\t%s\n' "$ctx" "$helper"
    done | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$1"
    printf 'docker\troot_helper\tsudo %s\n' "$VENV/bin/nova-rootwrap $ETC/nova/rootwrap.conf" \
        | "$VENV/bin/python" "$TOP_DIR/tools/cloud/iniset.py" "$1"
}

# ensure_ovsdb_tcp [VSCTL...]: the loopback TCP remote of an OVSDB (the
# host's, or a node's with its own ovs-vsctl command).
ensure_ovsdb_tcp() {
    local vsctl=("$@") target="ptcp:$OVSDB_TCP_PORT:127.0.0.1"
    [ $# -gt 0 ] || vsctl=(ovs-vsctl --timeout=10)
    "${vsctl[@]}" --bare --columns=target list Manager | grep -qxF "$target" && return 0
    "${vsctl[@]}" -- --id=@m create Manager "target=\"$target\"" \
        -- add Open_vSwitch . manager_options @m >/dev/null
    # The host's row is removed by down (a node's goes with its OVS).
    [ $# -gt 0 ] || echo "$target" >>"$RUN/ovs-managers-added"
}

start_compute() {
    ensure_ovsdb_tcp
    as_nova
    start nova-compute "${AS_NOVA[@]}" "$VENV/bin/nova-compute" --config-file "$ETC/nova/nova-cpu.conf"
    wait_healthy nova-compute
}

compute_hosts() {
    local k hosts=$COMPUTE_HOST
    for ((k = 2; k <= COMPUTES; k++)); do hosts+=",$(node_host "$k")"; done
    echo "$hosts"
}

all_hosts_listed() {
    local listed h
    listed=$("$VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf" cell_v2 list_hosts 2>/dev/null) || return 1
    for h in $(compute_hosts | tr , ' '); do
        grep -q " $h " <<<"$listed" || return 1
    done
}

discover_hosts() {
    local i
    for i in $(seq 1 60); do
        "$VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf" cell_v2 discover_hosts \
            >>"$LOGS/discover-hosts.log" 2>&1 || true
        all_hosts_listed && return 0
        pid_of nova-compute >/dev/null || { tail -n 25 "$LOGS/nova-compute.log" >&2; die "nova-compute exited"; }
        sleep 2
    done
    tail -n 25 "$LOGS/nova-compute.log" >&2
    die "not every nova-compute ($(compute_hosts)) registered in 120 s"
}

write_clouds_yaml() {
    mkdir -p "$(dirname "$CLOUDS_YAML")"
    umask 077
    cat >"$CLOUDS_YAML" <<EOF
# Written by nova-docker tools/cloud.sh: the single-node cloud.
clouds:
  nova-docker-admin:
    auth:
      auth_url: http://$HOST_IP:5000/v3
      username: admin
      password: $PASSWORD
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
  nova-docker-demo:
    auth:
      auth_url: http://$HOST_IP:5000/v3
      username: demo
      password: $PASSWORD
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
EOF
    chmod 600 "$CLOUDS_YAML"
}

read_cloud_settings() {
    AGGREGATE=docker-aggregate ZONE=docker
    local section option value
    while IFS=$'\t' read -r section option value; do
        case "$section/$option" in
            aggregate/name) AGGREGATE=$value ;;
            aggregate/zone) ZONE=$value ;;
        esac
    done < <(nova_docker_deployment_settings cloud)
}

cmd_up() {
    [ "$(id -u)" -eq 0 ] || die "run as root"
    docker info >/dev/null 2>&1 || die "dockerd does not answer: run tools/bootstrap-host.sh"
    ovs-vsctl --timeout=5 show >/dev/null 2>&1 || die "Open vSwitch does not answer: run tools/bootstrap-host.sh"
    mkdir -p "$ETC" "$LOGS" "$RUN" "$DATA"
    echo "$COMPUTES" >"$RUN/computes"
    STARTED=()
    read_cloud_settings
    say "stage: packages"; install_debs
    # pip is the slow part: the infrastructure starts meanwhile.
    say "stage: virtualenv (in the background)"
    install_venv >"$RUN/install-venv.out" 2>&1 &
    local venv_job=$!
    PASSWORD=$(password)
    say "stage: bridges"; ensure_bridges
    say "stage: mariadb, rabbitmq, memcached"
    start_mysql; start_rabbitmq
    start memcached /usr/bin/memcached -u memcache -l 127.0.0.1 -p 11211 -m 128
    init_infra
    wait "$venv_job" || { cat "$RUN/install-venv.out" >&2; die "installing the virtualenv failed"; }
    cat "$RUN/install-venv.out"
    say "stage: configuration"; write_configs
    say "stage: database schemas"; sync_databases
    say "stage: keystone"; start_keystone
    provision identity
    # Heat's stack domain id is known now: write heat.conf with it.
    write_configs >/dev/null
    say "stage: API services"; start_apis
    say "stage: network agents"; start_network_agent; start_network_node
    say "stage: compute"; ensure_nova_user; start_compute
    local k
    for ((k = 2; k <= COMPUTES; k++)); do node_up "$k"; done
    discover_hosts
    [ -s "$DATA/busybox-image.tar" ] || {
        "$TOP_DIR/tools/build-busybox-image.sh" "$IMAGE" >/dev/null
        docker save "$IMAGE" >"$DATA/busybox-image.tar.part"
        mv "$DATA/busybox-image.tar.part" "$DATA/busybox-image.tar"
    }
    say "stage: cloud objects"; provision resources
    route_tenant_networks
    write_clouds_yaml
    if [ ${#STARTED[@]} -eq 0 ]; then
        say "nothing started: every service was running"
    else
        say "started: ${STARTED[*]}"
    fi
    say "cloud ready (clouds nova-docker-admin and nova-docker-demo in $CLOUDS_YAML)"
}

# kill_session SID: what is left of a session we started (a worker that
# left its leader's process group still carries the session id).
kill_session() {
    local p
    for p in $(ps -e -o pid=,sid= | awk -v s="$1" '$2 == s {print $1}'); do
        kill -KILL "$p" 2>/dev/null || true
    done
}

# stop_pids NAME...: TERM the recorded processes and their sessions
# together, KILL what is left after 15 s.
stop_pids() {
    local name pid pids=() names=() i alive
    for name in "$@"; do
        if pid=$(pid_of "$name"); then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid"); names+=("$name")
        fi
        rm -f "$RUN/$name.pid"
    done
    for i in $(seq 1 30); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.5
    done
    for pid in "${pids[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        kill_session "$pid"
    done
    [ ${#names[@]} -eq 0 ] || say "stopped ${names[*]}"
}

remove_server_leftovers() {
    local ids id uuid
    ids=$(docker ps -aq --filter "label=org.openstack.nova.host=$COMPUTE_HOST")
    for id in $ids; do
        uuid=$(docker inspect -f '{{index .Config.Labels "org.openstack.nova.instance-uuid"}}' "$id" 2>/dev/null || true)
        docker rm -f "$id" >/dev/null 2>&1 || true
        [ -n "$uuid" ] && rm -f "/var/run/netns/nova-$uuid"
    done
    [ -z "$ids" ] || say "removed containers of $COMPUTE_HOST: $(echo "$ids" | wc -l)"
}

cmd_down() {
    local i name m
    [ "$(id -u)" -eq 0 ] || die "run as root"
    # Servers first, through the API, so Nova, Neutron and the driver
    # unwire them as in normal operation; what is left is removed below.
    if pid_of nova-compute >/dev/null && healthy nova-api 8774 http; then
        PASSWORD=$(password)
        read_cloud_settings
        provision delete-servers || say "could not delete every server through the API"
    fi
    # nova-compute first, so nothing recreates what is removed below.
    local k
    stop_pids nova-compute
    for ((k = 2; k <= COMPUTES; k++)); do stop_pids "c$k-nova-compute"; done
    remove_server_leftovers
    for ((k = 2; k <= COMPUTES; k++)); do node_down "$k"; done
    # Which router and DHCP namespaces are this cloud's: those of its
    # Neutron's routers and networks (asked while MariaDB runs).
    local neutron_ns
    neutron_ns=$(neutron_namespaces)
    # The OpenStack services together, then what they use.
    local services=()
    for ((i = ${#SERVICES[@]} - 1; i >= 3; i--)); do
        services+=("${SERVICES[$i]%%|*}")
    done
    stop_pids "${services[@]}"
    stop_pids memcached rabbitmq mysql
    remove_network_node "$neutron_ns"
    stop_pids epmd
    rm -f "$SUDOERS"
    if [ -s "$RUN/user-added" ]; then
        userdel "$(cat "$RUN/user-added")" 2>/dev/null || true
        say "removed user $(cat "$RUN/user-added")"
        rm -f "$RUN/user-added"
    fi
    if [ -s "$RUN/ovs-managers-added" ]; then
        while read -r m; do
            ovs-vsctl --timeout=10 -- --if-exists remove Open_vSwitch . manager_options \
                "$(ovs-vsctl --timeout=10 --bare --columns=_uuid find Manager "target=\"$m\"")" 2>/dev/null || true
            say "removed OVS manager $m"
        done <"$RUN/ovs-managers-added"
        rm -f "$RUN/ovs-managers-added"
    fi
    for name in "$TUN_BRIDGE" "$BRIDGE" "$UL_BRIDGE" "$EXT_BRIDGE"; do
        if ovs-vsctl --timeout=10 br-exists "$name"; then
            ovs-vsctl --timeout=10 del-br "$name"
            say "removed OVS bridge $name"
        fi
    done
    if [ "${1:-}" = --purge ]; then
        # The venv stays: it is the slow part and holds no state.
        rm -rf "$DATA" "$ETC" "$RUN" "$LOGS"
        for ((k = 2; k <= COMPUTES; k++)); do rm -rf "$(node_exec_root "$k")"; done
        say "removed $DATA, $ETC, $RUN and $LOGS"
    fi
    say "cloud down"
}

cmd_status() {
    local s name port kind pid health bad=0
    printf '%-28s %-8s %-6s %s\n' SERVICE PID PORT HEALTH
    for s in "${SERVICES[@]}"; do
        IFS='|' read -r name port kind <<<"$s"
        pid=$(pid_of "$name") || pid=-
        if [ "$pid" = - ]; then
            health=down
        elif healthy "$name" "$port" "$kind"; then
            health=ok
        else
            health=unhealthy
        fi
        [ "$health" = ok ] || bad=1
        printf '%-28s %-8s %-6s %s\n' "$name" "$pid" "${port:--}" "$health"
    done
    if [ "$bad" -eq 0 ]; then
        PASSWORD=$(password)
        read_cloud_settings
        echo
        printf '%-28s %-18s %s\n' 'COMPUTE SERVICE / AGENT' HOST STATE
        provision status || bad=1
    fi
    return "$bad"
}

# Nova's compute manager logs this line at the end of init_host, after it
# has gone through every instance of the host.
INIT_HOST_DONE='Looking for unclaimed instances stuck in BUILDING status'

# Wait until the nova-compute service NAME, started after its log held
# OFFSET bytes, finished init_host (at most 180 s).
wait_init_host() {
    local name=$1 offset=$2 i
    for i in $(seq 1 180); do
        tail -c +"$((offset + 1))" "$LOGS/$name.log" | grep -qF "$INIT_HOST_DONE" && {
            say "$name (pid $(pid_of "$name")) finished init_host"
            return 0
        }
        pid_of "$name" >/dev/null || { tail -n 25 "$LOGS/$name.log" >&2; die "$name exited"; }
        sleep 1
    done
    tail -n 25 "$LOGS/$name.log" >&2
    die "$name did not finish init_host in 180 s (log: $LOGS/$name.log)"
}

cmd_restart_compute() {
    local pid offset i
    [ "$(id -u)" -eq 0 ] || die "run as root"
    case "${1:-}" in ''|--kill) ;; *) die "usage: $0 restart-compute [--kill]" ;; esac
    pid=$(pid_of nova-compute) || die "nova-compute is not running: run $0 up"
    if [ "${1:-}" = --kill ]; then
        # As a crashed service unit: the service and everything of its
        # session (the privsep daemons) at once.
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
        kill_session "$pid"
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$RUN/nova-compute.pid"
        say "killed nova-compute (pid $pid)"
    else
        stop_pids nova-compute
    fi
    offset=$(stat -c %s "$LOGS/nova-compute.log")
    STARTED=()
    start_compute
    wait_init_host nova-compute "$offset"
}

# Stop or start the nova-compute of one compute host, the rest of its node
# left running: a host "down" for Nova (evacuation), then back.
cmd_node_compute() {
    local action=${1:-} host=${2:-} name='' node='' k offset
    [ "$(id -u)" -eq 0 ] || die "run as root"
    case "$action" in start|stop) ;; *) die "usage: $0 node-compute start|stop HOST" ;; esac
    if [ "$host" = "$COMPUTE_HOST" ]; then
        name=nova-compute
    else
        for ((k = 2; k <= COMPUTES; k++)); do
            [ "$host" = "$(node_host "$k")" ] && { name=c$k-nova-compute; node=$k; }
        done
    fi
    [ -n "$name" ] || die "no compute host '$host' in this cloud (hosts: $(compute_hosts))"
    if [ "$action" = stop ]; then
        stop_pids "$name"
        return 0
    fi
    if pid_of "$name" >/dev/null; then
        say "$name is running"
        return 0
    fi
    offset=$(stat -c %s "$LOGS/$name.log" 2>/dev/null || echo 0)
    STARTED=()
    if [ -z "$node" ]; then start_compute; else node_compute_up "$node"; fi
    wait_init_host "$name" "$offset"
}

# How many compute nodes: up's --computes, else what the last up recorded.
COMPUTES=$(cat "$RUN/computes" 2>/dev/null || echo 1)
if [ "${1:-}" = up ]; then
    # No flag: as many nodes as a running cloud has (the demo's plain up
    # must not fail on a two-node cloud), else one.
    case "${2:-}" in
        '') ;;
        --computes) COMPUTES=${3:-}
            [[ $COMPUTES =~ ^[1-9]$ ]] || die "--computes takes a number from 1 to 9" ;;
        *) die "usage: $0 up [--computes N]" ;;
    esac
    if [ -s "$RUN/computes" ] && [ "$(cat "$RUN/computes")" -gt "$COMPUTES" ]; then
        die "the cloud runs $(cat "$RUN/computes") compute nodes: tools/cloud.sh down first"
    fi
fi
register_node_services

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down "${2:-}" ;;
    status) cmd_status ;;
    restart-compute) cmd_restart_compute "${2:-}" ;;
    node-compute) cmd_node_compute "${2:-}" "${3:-}" ;;
    *) echo "usage: $0 up [--computes N]|down [--purge]|status|restart-compute [--kill]|node-compute start|stop HOST" >&2; exit 2 ;;
esac
