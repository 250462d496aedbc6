#!/bin/bash
# The benchmark (issue 15): measures in ONE run, so ratios hold on a noisy
# machine, and writes benchmarks/latest.json, benchmarks/latest.md and PNG
# plots. Sections: the raw floor, the driver's spawn and its profile,
# power operations, images, density/periodic tasks/restart, Nova's fake
# driver in-process, and the real cloud (when one is up: it never starts
# or stops one). A section that cannot run says why, and the JSON records
# null with the reason. A script that prints figures, not a test.
#
# Usage: tools/benchmark.sh [--quick] [--sections floor,spawn,...]
#                           [--runs N] [--counts 0,25,50,100] [--out DIR]
#                           [--density-batch N] [--with-rally]
#                           [--start-cloud]
#   --quick        few runs, small counts (a few minutes), to iterate
#   --with-rally   install rally-openstack into .tox/benchmark-rally first
#   --start-cloud  when no cloud is up, bring one up with tools/cloud.sh up
#                  for the cloud section and take it down at the end (a cloud
#                  that was already up is used and left up)
# Needs root and a host prepared by tools/bootstrap-host.sh. The full
# run takes about 15 minutes on 2 cores (plus the cloud's start-up).

set -o errexit -o nounset -o pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP_DIR"
VENV=${NOVA_DOCKER_VENV:-$TOP_DIR/.venv}
RALLY_VENV=${NDBENCH_RALLY_VENV:-$TOP_DIR/.tox/benchmark-rally}
OUT=$TOP_DIR/benchmarks
args=()
with_rally=0
start_cloud=0
while [ $# -gt 0 ]; do
    case $1 in
        --with-rally) with_rally=1 ;;
        --start-cloud) start_cloud=1 ;;
        --out) OUT=$2; args+=("$1" "$2"); shift ;;
        *) args+=("$1") ;;
    esac
    shift
done

say() { printf '[bench] %s\n' "$*"; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: the floor and the driver wire networking"
[ -x "$VENV/bin/python" ] || die "no $VENV: run tools/bootstrap-host.sh first"
if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
    say "installing matplotlib into $VENV (for the plots)"
    "$VENV/bin/pip" install -q matplotlib >/dev/null
fi
if [ "$with_rally" -eq 1 ] && [ ! -x "$RALLY_VENV/bin/rally" ]; then
    say "installing rally-openstack into $RALLY_VENV"
    python3 -m venv "$RALLY_VENV"
    "$RALLY_VENV/bin/pip" install -q rally-openstack >/dev/null
fi
export NDBENCH_RALLY_VENV=$RALLY_VENV

mkdir -p "$OUT"
LOG=$(mktemp -d /tmp/ndbench-log.XXXXXX)
say "Nova's own log goes to $LOG/stderr.log"
if [ "$start_cloud" -eq 1 ] && ! "$TOP_DIR/tools/cloud.sh" status >/dev/null 2>&1; then
    say "no cloud is up: tools/cloud.sh up (log $LOG/cloud.log; it goes down at the end)"
    trap 'say "tools/cloud.sh down (the benchmark brought it up)"; "$TOP_DIR/tools/cloud.sh" down >>"$LOG/cloud.log" 2>&1' EXIT
    "$TOP_DIR/tools/cloud.sh" up >"$LOG/cloud.log" 2>&1 ||
        die "tools/cloud.sh up failed: see $LOG/cloud.log"
fi
# Progress lines start with [bench; Nova's logging goes to the log file.
# The tree under test comes first on the path, as in the functional tests.
rc=0
PYTHONPATH=$TOP_DIR "$VENV/bin/python" -m tools.benchmark.run \
    ${args[@]+"${args[@]}"} 2>"$LOG/stderr.log" \
    | tee "$LOG/stdout.log" | grep --line-buffered '^\[bench' || rc=$?
if [ ! -s "$OUT/latest.json" ] || [ "$rc" -ne 0 ]; then
    tail -n 30 "$LOG/stderr.log" >&2
    die "the benchmark failed (rc $rc); logs: $LOG"
fi
PYTHONPATH=$TOP_DIR "$VENV/bin/python" -m tools.benchmark.report "$OUT/latest.json"
PYTHONPATH=$TOP_DIR "$VENV/bin/python" -m tools.benchmark.plots "$OUT/latest.json"
say "done: $OUT/latest.json, $OUT/latest.md, $OUT/*.png"
