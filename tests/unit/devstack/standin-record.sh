#!/bin/bash
# Shared by the devstack plugin test stand-ins (sourced).

# _standin_record ARGS...: append ARGS to $STANDIN_CALLS as a JSON list.
function _standin_record {
    local arg line=""
    for arg in "$@"; do
        arg=${arg//\\/\\\\}
        arg=${arg//\"/\\\"}
        line="${line:+$line, }\"$arg\""
    done
    printf '[%s]\n' "$line" >>"$STANDIN_CALLS"
}
