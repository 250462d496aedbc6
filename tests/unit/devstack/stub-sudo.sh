#!/bin/bash
# Stub sudo (PATH) for the devstack tests: the node's stack user keeps
# root's capabilities (see base.py), so this records the command line,
# drops sudo's own options and runs the command as root (VAR=value words
# become its environment, as with sudo), with no password and no policy.

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
# "sudo /bin/systemctl ..." (devstack's restart_service) reaches the stub
# of that command, not the host's.
if [[ $1 == /* && -x $STUB_BIN/${1##*/} ]]; then
    set -- "$STUB_BIN/${1##*/}" "${@:2}"
fi
if [[ $EUID -ne 0 ]]; then
    exec setpriv --reuid=0 --regid=0 --clear-groups env "$@"
fi
exec env "$@"
