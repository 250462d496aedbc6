#!/bin/bash
# Stub sudo (PATH) for the devstack tests, which run as root in a private
# mount namespace: records the command line, drops sudo's own options and
# runs the command (VAR=value words become its environment, as with sudo).

# shellcheck source=tests/unit/devstack/stub-record.sh
source "$STUB_RECORD_SH"
_stub_record sudo "$@"
while [[ $# -gt 0 ]]; do
    case $1 in
        -u|-g) shift 2 ;;
        --) shift; break ;;
        -*) shift ;;
        *) break ;;
    esac
done
exec env "$@"
