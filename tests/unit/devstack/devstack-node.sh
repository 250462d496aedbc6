#!/bin/bash
# devstack's files are sourced from DEVSTACK_DIR, which shellcheck cannot
# follow; the variables used here are set there.
# shellcheck disable=SC1090,SC1091,SC2154
# Drive a devstack node through REAL devstack code, in stack.sh's order.
#
#   devstack-node.sh NODE stack|unstack|clean
#
# NODE is a directory holding local.conf; DEVSTACK_DIR is the devstack tree
# (devstack's own functions, stackrc, lib/*, unstack.sh and clean.sh run
# from it). Only commands that would need the network, systemd, packages,
# OVS, Docker or the cloud APIs are replaced, by stubs on PATH ($NODE/bin).
# Run inside a private mount namespace (see base.py): /etc, /opt, /var and
# /usr/local are overlays whose writes land in the test's temp dir, so
# devstack's hard-coded /etc/nova, /opt/stack ... never touch the host; it
# runs as the node's "stack" user.
#
# stack follows stack.sh: functions, stackrc, lib/*, run_phase source,
# setup_devstack_virtualenv, pre-install, (services' install/configure:
# the files they leave), install, (init), post-config, OVN start-up,
# start_nova_compute, extra, is_nova_ready, discover_hosts, test-config.
# unstack and clean run devstack's own unstack.sh and clean.sh.

# Like stack.sh: errexit only (devstack is not nounset-safe).
set -o errexit

NODE=$1 ACTION=$2
[[ -d ${DEVSTACK_DIR:-} ]] || { echo "DEVSTACK_DIR is not a devstack tree" >&2; exit 2; }

# The node's devstack checkout: devstack's files, with this node's
# local.conf beside them (stack.sh reads it from its own directory).
TOP_DIR=$NODE/devstack
if [[ ! -d $TOP_DIR ]]; then
    mkdir -p "$TOP_DIR"
    for entry in "$DEVSTACK_DIR"/* "$DEVSTACK_DIR"/.[!.]*; do
        [[ -e $entry ]] || continue
        case ${entry##*/} in
            # extras.d is tempest's hook (installed by its own job, not here).
            .git|local.conf|localrc|.localrc.auto|.stackenv|extras.d) ;;
            *) ln -s "$entry" "$TOP_DIR/${entry##*/}" ;;
        esac
    done
fi
cp "$NODE/local.conf" "$TOP_DIR/local.conf"
cd "$TOP_DIR"

case $ACTION in
    unstack) exec bash "$TOP_DIR/unstack.sh" ;;
    clean) exec bash "$TOP_DIR/clean.sh" ;;
    stack) ;;
    *) echo "unknown action $ACTION" >&2; exit 2 ;;
esac

# stack.sh, top to bottom (only what a plugin can observe).
source "$TOP_DIR/functions"
source "$TOP_DIR/lib/stack"
GetDistro
install_python
rm -f "$TOP_DIR/.localrc.auto"
extract_localrc_section "$TOP_DIR/local.conf" "$TOP_DIR/localrc" "$TOP_DIR/.localrc.auto"
source "$TOP_DIR/stackrc"
sudo mkdir -p "$DEST" "$DATA_DIR" "$DEST/logs"
source "$TOP_DIR/lib/database"
source "$TOP_DIR/lib/rpc_backend"
fetch_plugins
run_phase override_defaults
for lib in apache tls infra libraries lvm horizon keystone glance nova \
           placement cinder swift neutron ldap dstat atop tcpdump etcd3 os-vif; do
    source "$TOP_DIR/lib/$lib"
done
run_phase source
save_stackenv $LINENO
async_init

if [[ $GLOBAL_VENV == True ]]; then
    setup_devstack_virtualenv
fi
run_phase stack pre-install

# What the services' own install and configure steps leave for plugins:
# their configuration files (configure_nova, configure_glance,
# configure_neutron).
if is_service_enabled nova; then
    sudo install -d -o "$STACK_USER" "$NOVA_CONF_DIR"
    iniset "$NOVA_CONF" DEFAULT rootwrap_config "$NOVA_CONF_DIR/rootwrap.conf"
    iniset "$NOVA_CONF" database connection "mysql+pymysql://root:secret@$SERVICE_HOST/nova_cell1"
fi
if is_service_enabled g-api; then
    sudo install -d -o "$STACK_USER" "$GLANCE_CONF_DIR"
    iniset "$GLANCE_API_CONF" DEFAULT bind_host "$SERVICE_LISTEN_ADDRESS"
fi
# install_infra: the requirements checkout, its constraints and the
# edit-constraints tool of its virtualenv (which pip would download).
if [[ ! -x $REQUIREMENTS_DIR/.venv/bin/edit-constraints ]]; then
    mkdir -p "$REQUIREMENTS_DIR/.venv/bin"
    printf 'networking-odl===20.0.0\nnova===33.0.0\n' >"$REQUIREMENTS_DIR/upper-constraints.txt"
    # shellcheck disable=SC2016 # expanded by the tool, not here
    printf '#!/bin/sh\n# edit-constraints FILE -- NAME\nsed -i "/^$3===/d" "$1"\n' \
        >"$REQUIREMENTS_DIR/.venv/bin/edit-constraints"
    chmod 755 "$REQUIREMENTS_DIR/.venv/bin/edit-constraints"
fi
if is_service_enabled neutron; then
    # configure_neutron: neutron.conf and the core plugin's file (the
    # variables as _configure_neutron_common sets them).
    sudo install -d -o "$STACK_USER" "$NEUTRON_CONF_DIR" "$NEUTRON_CONF_DIR/plugins/ml2"
    iniset "$NEUTRON_CONF" DEFAULT core_plugin ml2
    neutron_plugin_configure_common
    sudo install -d -o "$STACK_USER" "/$Q_PLUGIN_CONF_PATH"
    Q_PLUGIN_CONF_FILE=$Q_PLUGIN_CONF_PATH/$Q_PLUGIN_CONF_FILENAME
    # shellcheck disable=SC2034 # read by networking-odl's plugin
    NEUTRON_CORE_PLUGIN_CONF=$Q_PLUGIN_CONF_FILE
    iniset "/$Q_PLUGIN_CONF_FILE" ml2 type_drivers "$Q_ML2_PLUGIN_TYPE_DRIVERS"
    # configure_ovn: the agent's file, from neutron's sample.
    if [[ $Q_AGENT == ovn ]] && is_service_enabled ovn-controller; then
        if is_ovn_agent_enabled; then
            iniset "$OVN_AGENT_CONF" ovs ovsdb_connection "tcp:$OVSDB_SERVER_LOCAL_HOST:6640"
        elif is_ovn_metadata_agent_enabled; then
            iniset "$OVN_META_CONF" ovs ovsdb_connection "tcp:$OVSDB_SERVER_LOCAL_HOST:6640"
        fi
    fi
fi
run_phase stack install
run_phase stack post-config
merge_config_group "$TOP_DIR/local.conf" post-config

# Launch services, in stack.sh's order: devstack's own OVN start-up
# (start_ovn_services: init_ovn, start_ovn with _start_ovs and its
# "set-manager ptcp:6640:...", northd, ovn-controller, the agents).
if is_service_enabled ovn-controller ovn-controller-vtep; then
    start_ovn_services
fi
if is_service_enabled n-cpu; then
    start_nova_compute
fi
merge_config_group "$TOP_DIR/local.conf" extra
run_phase stack extra
merge_config_group "$TOP_DIR/local.conf" post-extra
if is_service_enabled n-cpu; then
    is_nova_ready
fi
if is_service_enabled n-api; then
    if is_service_enabled n-cpu; then
        "$TOP_DIR/tools/discover_hosts.sh"
    fi
fi
run_phase stack test-config
merge_config_group "$TOP_DIR/local.conf" test-config
echo "stack.sh completed"
