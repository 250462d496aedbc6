#!/bin/bash
# Shared by the devstack PATH stubs (sourced).

# _stub_record ARGS...: append ARGS to $STUB_CALLS as a JSON list.
function _stub_record {
    local arg line=""
    for arg in "$@"; do
        arg=${arg//\\/\\\\}
        arg=${arg//\"/\\\"}
        arg=${arg//$'\n'/\\n}
        arg=${arg//$'\t'/\\t}
        line="${line:+$line, }\"$arg\""
    done
    printf '[%s]\n' "$line" >>"$STUB_CALLS"
}
