#!/bin/bash
# Stub dockerd (PATH) for the devstack tests: writes its pid file, marks
# the engine as answering (unless STUB_DOCKERD_MUTE is set) and runs
# until SIGTERM, then cleans up as dockerd does. Installed as bin/dockerd,
# so /proc/<pid>/comm reads "dockerd".

pidfile=/var/run/docker.pid
while [[ $# -gt 0 ]]; do
    case $1 in
        --pidfile|-p) pidfile=$2; shift 2 ;;
        *) shift ;;
    esac
done
# shellcheck source=tests/unit/devstack/stub-record.sh
source "$STUB_RECORD_SH"
_stub_record dockerd --pidfile "$pidfile"
echo $$ >"$pidfile"
marker=$STUB_STATE/dockerd.up
trap 'rm -f "$marker" "$pidfile"; exit 0' TERM
[[ -n ${STUB_DOCKERD_MUTE:-} ]] || touch "$marker"
# Bounded, so that a test that dies leaves no process behind for long.
for _ in $(seq 1 900); do
    sleep 1
done
rm -f "$marker" "$pidfile"
