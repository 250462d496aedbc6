#!/bin/bash
# The README's test command: prepare the host, then run style checks, unit
# tests and functional tests (real dockerd, OVS, rootwrap, in-process Nova),
# then the real cloud, with two docker compute nodes (one cycle for every
# cloud test): tools/cloud.sh up --computes 2 from empty databases,
# the scenarios against it (tools/cloud-tests.sh; until it exists, the smoke
# test tests/cloud/smoke.sh), tools/cloud.sh down, and the test that down
# left nothing behind (tests/cloud/check-leftovers.sh).
# The last lines are the test runner's summary. A skipped functional test
# fails the run: a skip is not a pass.
#
# NOVA_DOCKER_CLOUD_TESTS=0 leaves the cloud suite out (the summary says
# so; it is never counted as passed). The suite runs the plugin's
# scenarios, then upstream tempest's compute subset (README, Tempest);
# NOVA_DOCKER_UPSTREAM_TEMPEST=0 leaves the upstream subset out.
#
# Usage: tools/run-tests.sh            (as root, from anywhere)

set -o errexit -o nounset -o pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP_DIR"

bash tools/bootstrap-host.sh
# The bootstrap is idempotent: a second run must install and start nothing.
second=$(bash tools/bootstrap-host.sh)
echo "$second"
if ! grep -q 'host ready: nothing to do' <<<"$second"; then
    echo "a second bootstrap run changed something" >&2
    exit 1
fi
TOX=.venv/bin/tox
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

declare -A passed failed skipped
status=0

# failed_tests LOG: the ids stestr marked FAILED, one per line (CI shows
# only the log's tail, so the summary names them).
failed_tests() {
    { grep -oP '^\{\d+\} \K\S+(?= .*\.\.\. FAILED)' "$1" || true; } | sort -u
}

sum_of() {
    # No such line (pep8, genconfig) is zero, not a failure of this script.
    { grep -oP "^ - $1: \\K[0-9]+" "$2" || true; } | awk '{n += $1} END {print n + 0}'
}

run_env() {
    local env=$1 rc=0
    "$TOX" -e "$env" 2>&1 | tee "$LOGS/$env.log" || rc=$?
    # An env may run several stestr suites: add up their totals.
    passed[$env]=$(sum_of Passed "$LOGS/$env.log")
    failed[$env]=$(sum_of Failed "$LOGS/$env.log")
    skipped[$env]=$(sum_of Skipped "$LOGS/$env.log")
    [ "$rc" -eq 0 ] || status=1
    return 0
}

run_env pep8
run_env genconfig
run_env docs
run_env py3
run_env functional

# step NAME COMMAND...: a timed step of the cloud suite, logged for totals.
step() {
    local name=$1 rc=0 t0
    shift
    t0=$(date +%s)
    "$@" 2>&1 | tee -a "$LOGS/cloud.log" || rc=$?
    echo "== $name: $(($(date +%s) - t0)) s, exit $rc" | tee -a "$LOGS/cloud.log"
    [ "$rc" -eq 0 ] || status=1
    return "$rc"
}

cloud_sum() {
    { grep -oP "^\S+\s+[0-9]+s\s+(?:[0-9]+ \w+, )*\K[0-9]+(?= $1)" "$2" \
        || true; } | awk '{n += $1} END {print n + 0}'
}

run_cloud() {
    : >"$LOGS/cloud.log"
    # From nothing: a previous session's cloud (or what it left) goes first.
    step "cloud down --purge" tools/cloud.sh down --purge || return 0
    tests/cloud/check-leftovers.sh before "$LOGS/leftovers"
    # Two compute nodes: the multi-node scenarios need the second, the
    # single-host ones keep to the controller's zone.
    if step "cloud up" tools/cloud.sh up --computes 2 \
            && step "cloud status" tools/cloud.sh status \
            && tests/cloud/check-leftovers.sh pids "$LOGS/leftovers"; then
        if [ -x tools/cloud-tests.sh ]; then
            local what=all
            [ "${NOVA_DOCKER_UPSTREAM_TEMPEST:-1}" = 0 ] && what=plugin
            step "cloud scenarios" tools/cloud-tests.sh "$what" || true
        else
            step "cloud smoke test" tests/cloud/smoke.sh || true
        fi
    fi
    step "cloud down" tools/cloud.sh down || true
    step "leftover check" tests/cloud/check-leftovers.sh after "$LOGS/leftovers" || true
    # tools/cloud-tests.sh ends with a line per test class:
    # "<Class>  <seconds>s  N passed, N failed, N skipped".
    passed[cloud]=$(cloud_sum passed "$LOGS/cloud.log")
    failed[cloud]=$(cloud_sum failed "$LOGS/cloud.log")
    skipped[cloud]=$(cloud_sum skipped "$LOGS/cloud.log")
}
suites=(py3 functional)
if [ "${NOVA_DOCKER_CLOUD_TESTS:-1}" = 1 ]; then
    run_cloud
    suites+=(cloud)
fi

total_p=0 total_f=0 total_s=0
echo
echo "== nova-docker test summary =="
for env in "${suites[@]}"; do
    p=${passed[$env]:-0} f=${failed[$env]:-0} s=${skipped[$env]:-0}
    printf '%-11s %s passed, %s failed, %s skipped\n' "$env:" "$p" "$f" "$s"
    total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
    if [ -f "$LOGS/$env.log" ]; then
        failed_tests "$LOGS/$env.log" | sed "s/^/  FAILED ($env) /"
    fi
    if [ "$p" -eq 0 ]; then
        echo "$env ran no test" >&2
        status=1
    fi
done
if [ "${skipped[functional]:-0}" -ne 0 ]; then
    echo "functional tests were skipped: a skip is not a pass" >&2
    status=1
fi
if [ "${NOVA_DOCKER_CLOUD_TESTS:-1}" != 1 ]; then
    echo "cloud:      not run (NOVA_DOCKER_CLOUD_TESTS=0)"
fi
[ "$status" -eq 0 ] || total_f=$((total_f > 0 ? total_f : 1))
echo "${total_p} passed, ${total_f} failed, ${total_s} skipped"
exit "$status"
