#!/bin/bash
# shellcheck shell=bash
#
# Reader of etc/nova-docker/deployment.conf, sourced by the devstack plugin
# and by tools/cloud.sh.
#
# nova_docker_deployment_settings TARGET [FILE]
#   prints "SECTION<TAB>OPTION<TAB>VALUE" for each line of TARGET, with
#   @NAME@ replaced by the value of the shell variable NAME. Fails, naming
#   the variable, when one is unset.

NOVA_DOCKER_DEPLOYMENT_CONF=${NOVA_DOCKER_DEPLOYMENT_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/etc/nova-docker/deployment.conf}

function nova_docker_deployment_settings {
    local target=$1 file=${2:-$NOVA_DOCKER_DEPLOYMENT_CONF}
    local tgt section option value name
    [[ -r $file ]] || { echo "cannot read $file" >&2; return 1; }
    while read -r tgt section option value; do
        [[ -z $tgt || $tgt == \#* || $tgt != "$target" ]] && continue
        while [[ $value =~ @([A-Za-z_][A-Za-z0-9_]*)@ ]]; do
            name=${BASH_REMATCH[1]}
            if [[ -z ${!name+set} ]]; then
                echo "$file: $target [$section] $option needs \$$name" >&2
                return 1
            fi
            value=${value//@${name}@/${!name}}
        done
        printf '%s\t%s\t%s\n' "$section" "$option" "$value"
    done <"$file"
}
