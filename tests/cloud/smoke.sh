#!/bin/bash
# Smoke test of the single-node cloud (tools/cloud.sh), as a user with the
# openstack CLI: an image whose command serves HTTP, a server booted from it
# to ACTIVE, its console output, an HTTP fetch from the host over TCP, and
# the delete. Run by tools/run-tests.sh when tools/cloud-tests.sh (the
# tempest scenarios) is not in the tree.
#
# Prints "PASS <step>"/"FAIL <step>" and " - Passed: N" / " - Failed: N".

set -o errexit -o nounset -o pipefail

CLOUD_HOME=${NOVA_DOCKER_CLOUD_HOME:-/opt/nova-docker-cloud}
OPENSTACK=$CLOUD_HOME/venv/bin/openstack
export OS_CLOUD=nova-docker-demo
NAME=nova-docker-smoke-$$
MARKER=nova-docker-smoke-ready
passed=0 failed=0

os() { "$OPENSTACK" "$@" 2>/dev/null; }
step() {
    # step NAME COMMAND...: one check.
    local name=$1
    shift
    if "$@"; then
        echo "PASS $name"; passed=$((passed + 1))
    else
        echo "FAIL $name"; failed=$((failed + 1))
        return 1
    fi
}
cleanup() {
    os server delete --wait "$NAME" >/dev/null || true
    os image delete "$NAME" >/dev/null || true
}
trap cleanup EXIT

upload() {
    os image create --container-format docker --disk-format raw \
        --file "$CLOUD_HOME/data/busybox-image.tar" \
        --property os_command_line="/bin/sh -c 'echo $MARKER; exec httpd -f -p 8080 -h /etc'" \
        "$NAME" >/dev/null
}
boot() {
    [ "$(os server create --image "$NAME" --flavor docker.small --network private \
        --wait -f value -c status "$NAME")" = ACTIVE ]
}
console() {
    local _
    for _ in $(seq 1 20); do
        os console log show "$NAME" | grep -q "$MARKER" && return 0
        sleep 1
    done
    return 1
}
fetch() {
    local ip _
    ip=$(os server show "$NAME" -f json -c addresses | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["addresses"]["private"][0])')
    for _ in $(seq 1 10); do
        # /etc/hostname of the server: the server's name.
        [ "$(curl -s -m 5 "http://$ip:8080/hostname")" = "$NAME" ] && return 0
        sleep 1
    done
    echo "no HTTP answer from $ip:8080 over TCP" >&2
    return 1
}
delete() {
    os server delete --wait "$NAME" && ! os server show "$NAME" >/dev/null
}

start=$(date +%s)
# Each step needs the one before: stop at the first failure.
if step "upload a docker image to Glance" upload; then
    if step "boot a server to ACTIVE" boot; then
        step "console output shows the workload's output" console || true
        step "the host fetches HTTP from the server over TCP" fetch || true
    fi
    step "delete the server" delete || true
fi
echo "smoke test took $(($(date +%s) - start)) s"
echo " - Passed: $passed"
echo " - Failed: $failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq 5 ]
