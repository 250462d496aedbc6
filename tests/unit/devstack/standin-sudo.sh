#!/bin/bash
# Stand-in sudo for the devstack plugin tests: records the command line and
# runs the command. As root it runs it as is; otherwise in a user namespace
# where the caller is root, so that "install -o root" works and the file
# ends up owned by the caller (root as far as the namespace can tell).

# shellcheck source=tests/unit/devstack/standin-record.sh
source "$STANDIN_RECORD_SH"
_standin_record sudo "$@"
if [[ $EUID -eq 0 ]]; then
    exec "$@"
fi
exec unshare --map-root-user "$@"
