#!/bin/bash
# Prepare this host to run nova-docker: Debian packages, a running Docker
# engine and Open vSwitch (userspace datapath), br-int, the local busybox
# test image and the virtualenv with the bundle installed (not editable).
#
# Idempotent: every step checks before it acts and says which it did, so a
# second run installs and starts nothing new.
#
# Usage: tools/bootstrap-host.sh            (as root, from the repository)
# Environment: NOVA_DOCKER_VENV (default: <repo>/.venv)

set -o errexit -o nounset -o pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NOVA_DOCKER_VENV:-$TOP_DIR/.venv}
BRIDGE=${NOVA_DOCKER_BRIDGE:-br-int}
TEST_IMAGE=${NOVA_DOCKER_TEST_IMAGE:-nova-docker/busybox:latest}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/nova-docker-dockerd.log}
DEBS=(docker.io openvswitch-switch busybox-static iproute2 iputils-ping
      procps git python3-venv shellcheck libcap2-bin util-linux)

changes=0
PIP_LOG=/tmp/nova-docker-bootstrap-pip.log
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '[bootstrap] %s\n' "$*"; }
did() { changes=$((changes + 1)); say "$*"; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }
pip_quiet() {
    "$VENV/bin/pip" "$@" >"$PIP_LOG" 2>&1 \
        || { tail -n 30 "$PIP_LOG" >&2; die "pip $* failed (full log: $PIP_LOG)"; }
}

[ "$(id -u)" -eq 0 ] || die "run as root: it installs packages and starts dockerd and OVS"

install_debs() {
    local missing=() pkg
    for pkg in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "Debian packages present: ${DEBS[*]}"
        return
    fi
    apt-get update -q >/dev/null
    # policy-rc.d may refuse to start services; we start them ourselves below.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
    did "installed Debian packages: ${missing[*]}"
}

docker_up() { docker info >/dev/null 2>&1; }

start_dockerd() {
    if docker_up; then
        say "dockerd is running"
        return
    fi
    local pidfile=/var/run/docker.pid pid
    if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
            die "dockerd (pid $pid) runs but does not answer on /var/run/docker.sock; see $DOCKERD_LOG"
        fi
        rm -f "$pidfile"
        say "removed stale $pidfile (no dockerd owns it)"
    fi
    # containerd keeps its own pid file too; a killed one leaves it behind.
    rm -f /var/run/docker/containerd/containerd.pid 2>/dev/null || true
    nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local _
    for _ in $(seq 1 60); do
        docker_up && { did "started dockerd (log: $DOCKERD_LOG)"; return; }
        sleep 1
    done
    die "dockerd did not come up in 60 s; see $DOCKERD_LOG"
}

ovs_up() { ovs-vsctl --timeout=5 show >/dev/null 2>&1 && ovs-appctl -t ovs-vswitchd version >/dev/null 2>&1; }

start_ovs() {
    if ovs_up; then
        say "Open vSwitch is running"
        return
    fi
    # ovs-ctl checks its pid files against live processes, so a killed
    # daemon's pid file does not stop it; the kernel module is absent here
    # and the userspace datapath needs none.
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 \
        || die "ovs-ctl start failed; see /var/log/openvswitch/"
    ovs_up || die "Open vSwitch did not answer after start; see /var/log/openvswitch/"
    did "started Open vSwitch (ovsdb-server, ovs-vswitchd)"
}

ensure_bridge() {
    local dp
    dp=$(ovs-vsctl --timeout=5 get bridge "$BRIDGE" datapath_type 2>/dev/null || true)
    if [ "$dp" = netdev ] || [ "$dp" = '"netdev"' ]; then
        say "$BRIDGE exists with the userspace (netdev) datapath"
        return
    fi
    ovs-vsctl --timeout=10 --may-exist add-br "$BRIDGE" \
        -- set bridge "$BRIDGE" datapath_type=netdev
    ip link set "$BRIDGE" up 2>/dev/null || true
    did "created $BRIDGE with datapath_type=netdev"
}

build_test_image() {
    local result
    result=$("$TOP_DIR/tools/build-busybox-image.sh" "$TEST_IMAGE")
    case "$result" in
        built*) did "built $TEST_IMAGE from busybox-static (no registry)" ;;
        *) say "image $TEST_IMAGE present" ;;
    esac
}

tree_hash() {
    # Hash of everything that goes into the installed bundle.
    (cd "$TOP_DIR" && git ls-files -co --exclude-standard -- \
        setup.cfg setup.py requirements.txt novadocker nova heat_plugins etc \
        | sort | xargs -r sha256sum) | sha256sum | cut -d' ' -f1
}

build_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
        pip_quiet install -q --upgrade pip
        did "created virtualenv $VENV"
    fi
    local reqs_stamp="$VENV/.nova-docker-reqs" reqs_hash
    reqs_hash=$(cat "$TOP_DIR/requirements.txt" "$TOP_DIR/test-requirements.txt" | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$reqs_stamp" 2>/dev/null)" != "$reqs_hash" ]; then
        pip_quiet install -q -r "$TOP_DIR/requirements.txt" \
            -r "$TOP_DIR/test-requirements.txt" tox
        echo "$reqs_hash" >"$reqs_stamp"
        did "installed requirements into $VENV"
    else
        say "requirements installed in $VENV"
    fi
    local pkg_stamp="$VENV/.nova-docker-tree" pkg_hash
    pkg_hash=$(tree_hash)
    if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$pkg_hash" ]; then
        # Not editable: the nova/virt/docker re-export must be a real file
        # inside Nova's package for compute_driver = docker.DockerDriver.
        (cd "$TOP_DIR" && pip_quiet install -q --no-deps --force-reinstall .)
        echo "$pkg_hash" >"$pkg_stamp"
        did "installed nova-docker (non-editable) into $VENV"
    else
        say "nova-docker installed in $VENV is current"
    fi
    "$TOP_DIR/tools/link-test-config.sh" "$VENV"
}

install_debs
start_dockerd
start_ovs
ensure_bridge
build_test_image
build_venv

if [ "$changes" -eq 0 ]; then
    say "host ready: nothing to do"
else
    say "host ready: $changes change(s)"
fi
