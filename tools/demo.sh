#!/bin/bash
# The README's main job: prepare the host, then boot two servers from a
# local busybox image through the Nova API (in-process services, real
# Docker, real OVS, real rootwrap), show them ACTIVE with their containers
# and console output, ping between them, delete them and show nothing is left.
#
# Usage: tools/demo.sh            (as root, from anywhere)

set -o errexit -o nounset -o pipefail

TOP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TOP_DIR"
bash tools/bootstrap-host.sh

# The demo narrates on file descriptor 3; Nova's own logs go to a file.
log=$(mktemp /tmp/nova-docker-demo.XXXXXX.log)
exec 3>&1
if NOVA_DOCKER_DEMO_OUT=/dev/fd/3 .venv/bin/python -m testtools.run \
        tests.functional.demo >"$log" 2>&1; then
    rm -f "$log"
else
    tail -n 60 "$log"
    echo "demo FAILED; full log: $log" >&2
    exit 1
fi
