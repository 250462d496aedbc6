#!/bin/bash
# Tempest against the running cloud (tools/cloud.sh up [--computes N]): the
# nova-docker plugin's scenarios (the multi-node ones only when a second
# compute node is up), then upstream tempest's compute API subset
# minus etc/tempest/upstream-exclude.txt.
#
# Installs tempest (PyPI) and this bundle (for its plugin) into a virtualenv
# of its own, writes tempest.conf from /etc/openstack/clouds.yaml and what
# the cloud holds, builds and saves the ODL stand-in image for the Heat
# scenario, and prints passed/failed/skipped counts and each scenario's
# time. Exits non-zero when a plugin scenario fails or is skipped, or an
# upstream test that is not excluded fails. Upstream skips (features the
# cloud lacks, per tempest.conf) are reported, never counted as passes.
#
# Usage: tools/cloud-tests.sh [plugin|upstream|all]   (as root; default all)
# Environment: NOVA_DOCKER_TEMPEST_VENV (default <repo>/.tox/tempest),
# NOVA_DOCKER_CLOUD_HOME (default /opt/nova-docker-cloud),
# NOVA_DOCKER_UPSTREAM_CONCURRENCY (default 2), NOVA_DOCKER_ODL_DRILL=0
# (leave the ODL failure drill out; it runs on a two-node cloud),
# NOVA_DOCKER_PLUGIN_CLASSES
# (an extended regex: run only the plugin scenario classes it matches).

set -o errexit -o nounset -o pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NOVA_DOCKER_TEMPEST_VENV:-$TOP_DIR/.tox/tempest}
CLOUD_HOME=${NOVA_DOCKER_CLOUD_HOME:-/opt/nova-docker-cloud}
CLOUD_PY=$CLOUD_HOME/venv/bin/python
CONCURRENCY=${NOVA_DOCKER_UPSTREAM_CONCURRENCY:-2}
WHAT=${1:-all}
TEMPEST_VERSION=47.0.0
WORKSPACE=$VENV/workspace
EXCLUDE=$TOP_DIR/etc/tempest/upstream-exclude.txt
# The upstream groups run: compute's server, flavor, image, keypair, limit,
# quota, security group, floating IP, multi-node, diagnostics and
# migration tests and
# network's router, floating IP, port and security group tests; see the
# README ("## Tempest") and doc/source/install/multinode-cloud.rst for what
# is left out and why.
UPSTREAM_REGEX='^tempest\.api\.(compute\.(servers|flavors|images|keypairs|limits|test_extensions|test_versions|test_quotas|security_groups|floating_ips|admin\.test_servers_on_multinodes|admin\.test_server_diagnostics|admin\.test_migrations)|network\.(test_routers|test_routers_negative|test_floating_ips|test_floating_ips_negative|test_ports|test_security_groups|test_security_groups_negative))\.?'
ODL_TAG=nova-docker/odl-standin:latest
VIP_TAG=nova-docker/haproxy:latest
VIP_IMAGE=nova-docker-haproxy

START=$(date +%s)
say() { printf '[cloud-tests %4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { printf '[cloud-tests %4ds] ERROR: %s\n' "$(($(date +%s) - START))" "$*" >&2; exit 1; }

case "$WHAT" in plugin|upstream|all) ;; *) die "usage: $0 [plugin|upstream|all]" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root: the scenarios look at containers and OVS on this host"
[ -x "$CLOUD_PY" ] || die "no cloud virtualenv at $CLOUD_HOME/venv: run tools/cloud.sh up"
[ -r /etc/openstack/clouds.yaml ] || die "no /etc/openstack/clouds.yaml: run tools/cloud.sh up"

install_tempest() {
    local log=$VENV/pip.log
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    if ! "$VENV/bin/pip" show tempest 2>/dev/null | grep -x "Version: $TEMPEST_VERSION" >/dev/null; then
        # wheel: the bundle is then built without an isolated build env.
        "$VENV/bin/pip" install -q "tempest==$TEMPEST_VERSION" wheel >"$log" 2>&1 \
            || { tail -n 20 "$log" >&2; die "pip install tempest failed (log: $log)"; }
        say "installed tempest $TEMPEST_VERSION into $VENV"
    fi
    # Only the plugin is used here; Nova and the driver stay in the cloud.
    "$VENV/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall "$TOP_DIR" >"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; die "pip install of the bundle failed (log: $log)"; }
    "$VENV/bin/tempest" list-plugins | grep nova_docker_tempest_plugin >/dev/null \
        || die "tempest list-plugins does not show the nova-docker plugin"
    say "nova-docker tempest plugin installed ($("$VENV/bin/pip" show tempest | grep ^Version))"
}

odl_image_file() {
    local file=$WORKSPACE/odl-standin.tar
    if [ ! -x "$TOP_DIR/tools/build-odl-standin-image.sh" ]; then
        say "no tools/build-odl-standin-image.sh: the ODL scenario will be skipped (and fail this run)" >&2
        return
    fi
    bash "$TOP_DIR/tools/build-odl-standin-image.sh" "$ODL_TAG" >&2
    docker save "$ODL_TAG" >"$file"
    echo "$file"
}

# The ODL cluster's northbound VIP image, in Glance as the template's
# default vip_image (public, so tempest's projects see it), built locally
# from Debian's haproxy like the stand-in. Uploaded once per cloud.
vip_image_upload() {
    local os=("$CLOUD_HOME/venv/bin/openstack" --os-cloud nova-docker-admin) file
    if [ -n "$("${os[@]}" image list --name "$VIP_IMAGE" -f value -c ID)" ]; then
        return
    fi
    bash "$TOP_DIR/tools/build-haproxy-image.sh" "$VIP_TAG" >&2
    file=$WORKSPACE/haproxy.tar
    docker save "$VIP_TAG" >"$file"
    "${os[@]}" image create "$VIP_IMAGE" --public --container-format docker \
        --disk-format raw --file "$file" >/dev/null \
        || die "uploading the VIP image $VIP_IMAGE failed"
    say "uploaded the ODL cluster's VIP image as $VIP_IMAGE"
}

# The commands that reach each extra compute node's OVS and engine, for
# the ODL failure drill (NOVA_DOCKER_ODL_NODES, see test_odl_cluster.py):
# the node's OVSDB and Docker sockets, from this host.
odl_nodes() {
    local dir k entries=()
    for dir in "$CLOUD_HOME"/run/c[0-9]*; do
        [ -S "$dir/db.sock" ] || continue
        k=${dir##*/c}
        entries+=("node$k=env OVS_RUNDIR=$dir DOCKER_HOST=unix:///run/ndc-c$k/docker.sock")
    done
    (IFS=';'; echo "${entries[*]}")
}

# Facts from the running cloud, as admin, with the cloud's own SDK.
# tempest's per-test projects boot on the network "tempest" (admin's,
# shared, behind the cloud's router), never on the demo's private.
cloud_facts() {
    "$CLOUD_PY" - <<'EOF'
import openstack
conn = openstack.connect(cloud='nova-docker-admin')
auth = conn.config.config['auth']
net = conn.network.find_network('tempest', ignore_missing=False)
image = conn.image.find_image('nova-docker-busybox', ignore_missing=False)
flavor = conn.compute.find_flavor('docker.small', ignore_missing=False)
public = conn.network.find_network('public', ignore_missing=False)
# Upstream tests that filter servers by image or flavor need a second one
# of each: the same busybox under another name, a flavor one size up.
alt_image = conn.image.find_image('nova-docker-busybox-alt')
if alt_image is not None and alt_image.status != 'active':
    conn.image.delete_image(alt_image)
    alt_image = None
if alt_image is None:
    data = conn.image.download_image(image).content
    alt_image = conn.image.create_image(
        name='nova-docker-busybox-alt', container_format='docker',
        disk_format='raw', visibility='public', data=data,
        validate_checksum=False, use_import=False)
alt_flavor = conn.compute.find_flavor('docker.small.alt')
if alt_flavor is None:
    alt_flavor = conn.compute.create_flavor(
        name='docker.small.alt', vcpus=1, ram=320, disk=1, is_public=True)
# The zone of the other compute nodes (tools/cloud.sh up --computes N),
# when one of them is up: the multi-node scenarios need it.
nodes_zone = ''
computes = 0
for svc in conn.compute.services(binary='nova-compute'):
    if svc.state == 'up' and svc.status == 'enabled':
        computes += 1
    if svc.availability_zone == 'docker-nodes' and svc.state == 'up':
        nodes_zone = 'docker-nodes'
for key, value in (('auth_url', auth['auth_url']),
                   ('nodes_zone', nodes_zone),
                   ('min_compute_nodes', computes),
                   ('admin_password', auth['password']),
                   ('image_id', image.id), ('flavor_id', flavor.id),
                   ('public_network_id', public.id),
                   ('alt_image_id', alt_image.id),
                   ('alt_flavor_id', alt_flavor.id)):
    print('%s=%s' % (key, value))
EOF
}

write_config() {
    local facts odl_file
    facts=$(cloud_facts) || die "cannot read the cloud's settings (is it up? tools/cloud.sh status)"
    fact() { sed -n "s/^$1=//p" <<<"$facts"; }
    # A fresh workspace each run, registered in a file of this venv (not
    # in ~/.tempest).
    "$VENV/bin/tempest" workspace remove --workspace-path "$VENV/workspace.yaml" \
        --name nova-docker >/dev/null 2>&1 || true
    rm -rf "$WORKSPACE"
    "$VENV/bin/tempest" init --workspace-path "$VENV/workspace.yaml" \
        --name nova-docker "$WORKSPACE" >/dev/null \
        || die "tempest init $WORKSPACE failed"
    mkdir -p "$WORKSPACE/etc"
    odl_file=$(odl_image_file)
    vip_image_upload
    NOVA_DOCKER_ODL_NODES=$(odl_nodes)
    export NOVA_DOCKER_ODL_NODES
    say "ODL drill nodes: ${NOVA_DOCKER_ODL_NODES:-none beyond this host}"
    sed -e "s|@AUTH_URL@|$(fact auth_url)|" \
        -e "s|@ADMIN_PASSWORD@|$(fact admin_password)|" \
        -e "s|@IMAGE_ID@|$(fact image_id)|" \
        -e "s|@FLAVOR_ID@|$(fact flavor_id)|" \
        -e "s|@PUBLIC_NETWORK_ID@|$(fact public_network_id)|" \
        -e "s|@ALT_IMAGE_ID@|$(fact alt_image_id)|" \
        -e "s|@ALT_FLAVOR_ID@|$(fact alt_flavor_id)|" \
        -e "s|@ODL_IMAGE_FILE@|$odl_file|" \
        -e "s|@NODES_ZONE@|$(fact nodes_zone)|" \
        -e "s|@MIN_COMPUTE_NODES@|$(fact min_compute_nodes)|" \
        -e "s|@LOG_DIR@|$WORKSPACE|" \
        -e "s|@TOP_DIR@|$TOP_DIR|" \
        "$TOP_DIR/etc/tempest/tempest.conf.in" >"$WORKSPACE/etc/tempest.conf"
    chmod 600 "$WORKSPACE/etc/tempest.conf"
    say "wrote $WORKSPACE/etc/tempest.conf"
}

# run_tempest NAME ARGS...: one tempest run; its output kept in NAME.log.
run_tempest() {
    local name=$1 rc=0
    shift
    (cd "$WORKSPACE" && "$VENV/bin/tempest" run "$@") >"$WORKSPACE/$name.log" 2>&1 || rc=$?
    return "$rc"
}

# count LOG KIND: the number tempest's summary gives for Passed/Failed/Skipped.
count() {
    { grep -oP "^ - $2: \\K[0-9]+" "$1" || true; } | awk '{n += $1} END {print n + 0}'
}

plugin_failed=0
plugin_summary=()
run_plugin() {
    local classes cls t0 secs rc log
    classes=$(cd "$WORKSPACE" && "$VENV/bin/tempest" run --list-tests \
        --regex '^nova_docker_tempest_plugin\.' 2>/dev/null \
        | sed -n 's/^\(nova_docker_tempest_plugin\.[^[]*\)\.test_[^.]*\[.*$/\1/p' | sort -u)
    [ -n "$classes" ] || die "tempest lists no nova-docker scenario"
    if ! grep -q '^nodes_availability_zone = .' "$WORKSPACE/etc/tempest.conf"; then
        # A one-node cloud: the multi-node scenarios have nothing to test.
        say "one compute node: the multi-node scenarios (test_multinode, the ODL drill) are not run"
        classes=$(grep -v -e '\.test_multinode\.' -e '\.test_routed_network\.' \
            -e '\.OdlClusterDrillTest$' <<<"$classes")
    fi
    if [ "${NOVA_DOCKER_ODL_DRILL:-1}" = 0 ]; then
        say "the ODL failure drill (OdlClusterDrillTest) is NOT run: NOVA_DOCKER_ODL_DRILL=0"
        classes=$(grep -v -e '\.OdlClusterDrillTest$' <<<"$classes")
    fi
    if [ -n "${NOVA_DOCKER_PLUGIN_CLASSES:-}" ]; then
        classes=$(grep -E -- "$NOVA_DOCKER_PLUGIN_CLASSES" <<<"$classes") \
            || die "no scenario class matches $NOVA_DOCKER_PLUGIN_CLASSES"
    fi
    for cls in $classes; do
        t0=$(date +%s) rc=0
        log=plugin-${cls##*.}
        run_tempest "$log" --serial --regex "^${cls//./\\.}\\." || rc=$?
        secs=$(($(date +%s) - t0))
        log=$WORKSPACE/$log.log
        # One line per test, with tempest's own time of the test body.
        grep -oP "^\{\d+\} \K${cls//./\\.}\.\S+ \[[0-9.]+s\] \.\.\. \S+" "$log" \
            | sed -e "s/^${cls//./\\.}\.//" -e 's/\[id-[^]]*\]//' \
            | while read -r line; do say "  $line"; done || true
        grep -P "^\{\d+\} ${cls//./\\.}\.\S+ \.\.\. SKIPPED" "$log" \
            | while read -r line; do say "  $line"; done || true
        local p f s
        p=$(count "$log" Passed) f=$(count "$log" Failed) s=$(count "$log" Skipped)
        plugin_summary+=("$(printf '%-22s %3ds  %s passed, %s failed, %s skipped' \
            "${cls##*.}" "$secs" "$p" "$f" "$s")")
        say "${cls##*.}: ${secs}s, $p passed, $f failed, $s skipped"
        if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ "$s" -ne 0 ] || [ "$p" -eq 0 ]; then
            plugin_failed=1
            grep -B2 -A40 -m3 -E '^(FAIL|ERROR|Traceback)|^\{[0-9]+\} .*(FAILED|SKIPPED)' "$log" | tail -n 80 >&2 || true
            say "${cls##*.} did not pass; full output: $log" >&2
        fi
    done
}

# How many tests of the upstream groups the exclusion list removes.
excluded_count() {
    local listed
    listed=$(cd "$WORKSPACE" && "$VENV/bin/tempest" run --list-tests --regex "$UPSTREAM_REGEX" 2>/dev/null)
    { grep -E -f <(grep -v -e '^#' -e '^$' "$EXCLUDE") <<<"$listed" || true; } | grep -c . || true
}

upstream_failed=0 upstream_line=''
run_upstream() {
    local t0 rc=0 log=$WORKSPACE/upstream.log p f s e
    t0=$(date +%s)
    run_tempest upstream --concurrency "$CONCURRENCY" --regex "$UPSTREAM_REGEX" \
        --exclude-list "$EXCLUDE" || rc=$?
    p=$(count "$log" Passed) f=$(count "$log" Failed) s=$(count "$log" Skipped)
    e=$(excluded_count)
    upstream_line=$(printf 'upstream %3ds  %s passed, %s failed, %s skipped, %s excluded' \
        "$(($(date +%s) - t0))" "$p" "$f" "$s" "$e")
    say "$upstream_line"
    grep -P '^\{\d+\} \S+ .*\.\.\. FAILED' "$log" | while read -r line; do say "  $line"; done || true
    if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ "$p" -eq 0 ]; then
        upstream_failed=1
        say "upstream tests failed; full output: $log" >&2
    fi
}

install_tempest
write_config
case "$WHAT" in plugin|all) run_plugin ;; esac
case "$WHAT" in upstream|all) run_upstream ;; esac

echo
echo "== nova-docker tempest summary ($(($(date +%s) - START)) s) =="
for line in "${plugin_summary[@]}"; do echo "$line"; done
[ -z "$upstream_line" ] || echo "$upstream_line"
status=0
[ "$plugin_failed" -eq 0 ] || { echo "a plugin scenario failed or was skipped" >&2; status=1; }
[ "$upstream_failed" -eq 0 ] || { echo "an upstream test that is not excluded failed" >&2; status=1; }
exit "$status"
