#!/bin/bash
# shellcheck shell=bash
#
# Reader of etc/nova-docker/deployment.conf, sourced by the devstack plugin
# and by tools/cloud.sh.
#
# nova_docker_deployment_settings TARGET [FILE]
#   prints "SECTION<TAB>OPTION<TAB>VALUE" for each line of TARGET, with
#   @NAME@ replaced by the value of the shell variable NAME and
#   @NAME:-DEFAULT@ by NAME if set and not empty, else DEFAULT. Fails,
#   naming the variable, when one without a default is unset.
#
# nova_docker_deployment_value TARGET SECTION OPTION [FILE]
#   prints the one VALUE of that line (fails when there is none).

NOVA_DOCKER_DEPLOYMENT_CONF=${NOVA_DOCKER_DEPLOYMENT_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/etc/nova-docker/deployment.conf}

# _nova_docker_deployment_expand VALUE WHERE: VALUE with its @...@ replaced.
function _nova_docker_deployment_expand {
    local value=$1 where=$2 out="" name default ref
    local re='@([A-Za-z_][A-Za-z0-9_]*)(:-([^@]*))?@'
    # Left to right, once: a substituted value is never expanded again.
    while [[ $value =~ $re ]]; do
        ref=${BASH_REMATCH[0]} name=${BASH_REMATCH[1]}
        default=${BASH_REMATCH[3]}
        out+=${value%%"$ref"*}
        value=${value#*"$ref"}
        if [[ -n ${BASH_REMATCH[2]} ]]; then
            out+=${!name:-$default}
        elif [[ -n ${!name+set} ]]; then
            out+=${!name}
        else
            echo "$where needs \$$name" >&2
            return 1
        fi
    done
    printf '%s' "$out$value"
}

function nova_docker_deployment_settings {
    local target=$1 file=${2:-$NOVA_DOCKER_DEPLOYMENT_CONF}
    local tgt section option value
    [[ -r $file ]] || { echo "cannot read $file" >&2; return 1; }
    while read -r tgt section option value; do
        [[ -z $tgt || $tgt == \#* || $tgt != "$target" ]] && continue
        value=$(_nova_docker_deployment_expand "$value" \
                    "$file: $target [$section] $option") || return 1
        printf '%s\t%s\t%s\n' "$section" "$option" "$value"
    done <"$file"
}

function nova_docker_deployment_value {
    local target=$1 section=$2 option=$3 file=${4:-} lines line
    lines=$(nova_docker_deployment_settings "$target" ${file:+"$file"}) || return 1
    line=$(awk -F'\t' -v s="$section" -v o="$option" \
               '$1 == s && $2 == o {print $3; n++} END {exit n != 1}' <<<"$lines") \
        || { echo "no single '$target $section $option' line in" \
                  "${file:-$NOVA_DOCKER_DEPLOYMENT_CONF}" >&2; return 1; }
    printf '%s\n' "$line"
}
