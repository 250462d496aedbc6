#!/bin/bash
# Stand-ins for the devstack functions the nova-docker plugin calls,
# sourced before devstack/settings by the unit tests. iniset/iniget/
# inidelete edit real ini files; the others record their command line in
# $STANDIN_CALLS.

# shellcheck source=tests/unit/devstack/standin-record.sh
source "$(dirname "${BASH_SOURCE[0]}")/standin-record.sh"

function _standin_ini {
    "$STANDIN_PY" "$STANDIN_INI" "$@"
}

function iniset {
    [[ $1 == -sudo ]] && shift
    _standin_record iniset "$@"
    _standin_ini set "$@"
}

function iniget {
    _standin_ini get "$@"
}

function inidelete {
    [[ $1 == -sudo ]] && shift
    _standin_record inidelete "$@"
    _standin_ini delete "$@"
}

function is_service_enabled {
    local service
    for service in "$@"; do
        [[ ,$ENABLED_SERVICES, == *,"$service",* ]] && return 0
    done
    return 1
}

function install_package {
    _standin_record install_package "$@"
}

function pip_install {
    _standin_record pip_install "$@"
}

function echo_summary {
    echo "summary: $*"
}

function die {
    local line=$1
    shift
    echo "[ERROR] line $line: $*" >&2
    exit 1
}
