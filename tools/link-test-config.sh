#!/bin/bash
# Nova's and Heat's in-process test harnesses look for etc/nova and etc/heat
# next to site-packages, but their wheels install those files under
# <venv>/etc/. Link them where the harnesses look. Idempotent.
#
# Usage: tools/link-test-config.sh VENV

set -o errexit -o nounset -o pipefail

venv=$1
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/etc"
for project in nova heat; do
    if [ -d "$venv/etc/$project" ] && [ ! -e "$site/etc/$project" ]; then
        ln -s "$venv/etc/$project" "$site/etc/$project"
        echo "[bootstrap] linked $site/etc/$project -> $venv/etc/$project"
    fi
done
