#!/bin/sh
# Entrypoint for OpenDaylight cluster images booted by OS::ODL::Cluster.
#
# The nova-docker driver passes each member's instance metadata to the
# container as environment variables. From them this script rewrites the
# Karaf distribution's clustering configuration, then execs the command
# (default: Karaf in the foreground):
#
#   configuration/initial/akka.conf
#       odl-cluster-data (and odl-cluster-rpc when present):
#       remote hostname = ODL_MEMBER_IP, remote port = the Akka port,
#       cluster seed-nodes = every member, cluster roles = [ODL_MEMBER_NAME]
#   configuration/initial/module-shards.conf
#       every shard's replicas = ["member-1", ..., "member-N"]
#   etc/org.apache.karaf.features.cfg
#       featuresBoot += ODL_KARAF_FEATURES (when set)
#
# Environment (set by OS::ODL::Cluster; values are strings):
#   ODL_MEMBER_NAME    member-<n>, n counted from 1 in ODL_SEED_IPS order
#   ODL_MEMBER_IP      this member's address (must be the n-th seed)
#   ODL_SEED_IPS       comma-separated addresses of all members
#   ODL_CLUSTER_SIZE   optional: number of members, checked against seeds
#   ODL_AKKA_PORT      odl-cluster-data port (default 2550)
#   ODL_AKKA_RPC_PORT  odl-cluster-rpc port (default 2551)
#   ODL_KARAF_FEATURES optional comma-separated extra features to boot
#   ODL_READY_SIGNAL_URL, ODL_READY_SIGNAL_TOKEN
#                      set in signal mode: odl-ready-signal.sh (next to this
#                      script) is started in the background to tell Heat
#                      when this member is ready
#   ODL_HOME           Karaf directory (default /opt/opendaylight)
#
# POSIX sh and awk only: runs under busybox.

set -eu

ODL_HOME=${ODL_HOME:-/opt/opendaylight}
CONF_DIR=${ODL_CONFIG_DIR:-$ODL_HOME/configuration/initial}
AKKA_PORT=${ODL_AKKA_PORT:-2550}
AKKA_RPC_PORT=${ODL_AKKA_RPC_PORT:-2551}

die() {
    echo "odl-cluster-entrypoint: ERROR: $*" >&2
    exit 64
}

say() {
    echo "odl-cluster-entrypoint: $*"
}

check_port() {
    case $2 in
        ''|*[!0-9]*) die "$1=$2 is not a port number (1-65535)" ;;
    esac
    if [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then
        die "$1=$2 is out of range (1-65535)"
    fi
}

check_address() {
    # Addresses end up inside quoted HOCON strings: allow address characters
    # only, so nothing can break out of the quotes.
    case $2 in
        ''|*[!0-9A-Za-z.:_-]*) die "$1 has an invalid address '$2'" ;;
    esac
}

[ -n "${ODL_MEMBER_NAME:-}" ] || die "ODL_MEMBER_NAME is not set (expected member-<n>; is this container booted by OS::ODL::Cluster?)"
[ -n "${ODL_MEMBER_IP:-}" ] || die "ODL_MEMBER_IP is not set"
[ -n "${ODL_SEED_IPS:-}" ] || die "ODL_SEED_IPS is not set (comma-separated member addresses)"
check_address ODL_MEMBER_IP "$ODL_MEMBER_IP"
check_port ODL_AKKA_PORT "$AKKA_PORT"
check_port ODL_AKKA_RPC_PORT "$AKKA_RPC_PORT"

index=${ODL_MEMBER_NAME#member-}
case $ODL_MEMBER_NAME:$index in
    member-*:''|member-*:*[!0-9]*|member-*:0*) die "ODL_MEMBER_NAME=$ODL_MEMBER_NAME is not member-<n> with n >= 1" ;;
    member-*) ;;
    *) die "ODL_MEMBER_NAME=$ODL_MEMBER_NAME is not member-<n> with n >= 1" ;;
esac

count=0
own_seed=
old_ifs=$IFS
IFS=,
for seed in $ODL_SEED_IPS; do
    count=$((count + 1))
    check_address "ODL_SEED_IPS entry $count" "$seed"
    [ "$count" -eq "$index" ] && own_seed=$seed
done
IFS=$old_ifs

if [ -n "${ODL_CLUSTER_SIZE:-}" ] && [ "$ODL_CLUSTER_SIZE" != "$count" ]; then
    die "ODL_CLUSTER_SIZE=$ODL_CLUSTER_SIZE but ODL_SEED_IPS lists $count members"
fi
[ "$index" -le "$count" ] || die "$ODL_MEMBER_NAME but ODL_SEED_IPS lists only $count members"
[ "$own_seed" = "$ODL_MEMBER_IP" ] || die "ODL_MEMBER_IP=$ODL_MEMBER_IP is not entry $index of ODL_SEED_IPS ($own_seed)"

AKKA_CONF=$CONF_DIR/akka.conf
SHARDS_CONF=$CONF_DIR/module-shards.conf
[ -f "$AKKA_CONF" ] || die "$AKKA_CONF not found (set ODL_HOME to the Karaf directory)"
[ -f "$SHARDS_CONF" ] || die "$SHARDS_CONF not found (set ODL_HOME to the Karaf directory)"

# Shared awk: structure of a HOCON line with strings and comments removed,
# and the path of enclosing objects ("odl-cluster-data.akka.cluster").
HOCON_AWK='
function bare(line) {
    gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
    sub(/(#|\/\/).*$/, "", line)
    return line
}
function count(s, ch,    n, i) {
    n = 0
    for (i = 1; i <= length(s); i++) if (substr(s, i, 1) == ch) n++
    return n
}
function path(    p, i) {
    p = ""
    for (i = 1; i <= depth; i++) if (names[i] != "") p = (p == "" ? names[i] : p "." names[i])
    return p
}
function key_of(b) {
    if (match(b, /^[ \t]*"?[A-Za-z0-9._-]+"?[ \t]*[=:]/) == 0) return ""
    b = substr(b, 1, RLENGTH - 1)
    gsub(/[ \t"]/, "", b)
    return b
}
function indent_of(line) {
    match(line, /^[ \t]*/)
    return substr(line, 1, RLENGTH)
}
function track(b,    opens, closes, name) {
    opens = count(b, "{"); closes = count(b, "}")
    if (opens == 1 && closes == 0 && b ~ /^[ \t]*"?[A-Za-z0-9._-]+"?[ \t]*[=:]?[ \t]*\{[ \t]*$/) {
        name = b; sub(/[ \t]*[=:]?[ \t]*\{.*$/, "", name); gsub(/[ \t"]/, "", name)
        names[++depth] = name
        return
    }
    for (; opens > 0; opens--) names[++depth] = ""
    for (; closes > 0 && depth > 0; closes--) depth--
}
# Print a replacement statement for a key whose value may span lines; skip
# the old value up to its closing bracket.
function replace(line, b, key, value) {
    print indent_of(line) key " = " value
    if (b ~ /\[/ && b !~ /\]/) skip = 1
}
'

rewrite_akka() {
    awk -v ip="$ODL_MEMBER_IP" -v role="$ODL_MEMBER_NAME" -v seeds="$ODL_SEED_IPS" \
        -v data_port="$AKKA_PORT" -v rpc_port="$AKKA_RPC_PORT" "$HOCON_AWK"'
function seed_list(actor, port, proto,    n, i, out, all) {
    n = split(seeds, all, ",")
    out = "["
    for (i = 1; i <= n; i++) out = out (i > 1 ? ", " : "") "\"" proto "://" actor "@" all[i] ":" port "\""
    return out "]"
}
BEGIN { depth = 0; skip = 0; proto_data = "akka.tcp"; proto_rpc = "akka.tcp" }
# First pass (the file is given twice): learn the protocol of existing
# seed-nodes (akka.tcp for netty, akka for artery) per actor system.
FNR == NR {
    if ($0 ~ /opendaylight-cluster-data@/ && match($0, /"akka[.a-z]*:\/\/opendaylight-cluster-data@/))
        proto_data = substr($0, RSTART + 1, index(substr($0, RSTART), ":") - 2)
    if ($0 ~ /odl-cluster-rpc@/ && match($0, /"akka[.a-z]*:\/\/odl-cluster-rpc@/))
        proto_rpc = substr($0, RSTART + 1, index(substr($0, RSTART), ":") - 2)
    next
}
skip { if (bare($0) ~ /\]/) skip = 0; next }
{
    b = bare($0)
    key = key_of(b)
    full = (key == "" ? "" : (path() == "" ? key : path() "." key))
    if (full ~ /^odl-cluster-data\.akka\.remote\.(netty\.tcp|artery\.canonical)\.hostname$/ ||
        full ~ /^odl-cluster-rpc\.akka\.remote\.(netty\.tcp|artery\.canonical)\.hostname$/) {
        replace($0, b, key, "\"" ip "\""); next
    }
    if (full ~ /^odl-cluster-data\.akka\.remote\.(netty\.tcp|artery\.canonical)\.port$/) {
        replace($0, b, key, data_port); next
    }
    if (full ~ /^odl-cluster-rpc\.akka\.remote\.(netty\.tcp|artery\.canonical)\.port$/) {
        replace($0, b, key, rpc_port); next
    }
    if (full == "odl-cluster-data.akka.cluster.seed-nodes") {
        replace($0, b, key, seed_list("opendaylight-cluster-data", data_port, proto_data)); next
    }
    if (full == "odl-cluster-rpc.akka.cluster.seed-nodes") {
        replace($0, b, key, seed_list("odl-cluster-rpc", rpc_port, proto_rpc)); next
    }
    if (full ~ /^odl-cluster-(data|rpc)\.akka\.cluster\.roles$/) {
        replace($0, b, key, "[\"" role "\"]"); next
    }
    print
    track(b)
}' "$1" "$1"
}

rewrite_shards() {
    awk -v seeds="$ODL_SEED_IPS" "$HOCON_AWK"'
BEGIN {
    n = split(seeds, all, ",")
    members = "["
    for (i = 1; i <= n; i++) members = members (i > 1 ? ", " : "") "\"member-" i "\""
    members = members "]"
    skip = 0
}
skip { if (bare($0) ~ /\]/) skip = 0; next }
{
    b = bare($0)
    if (key_of(b) == "replicas") { replace($0, b, "replicas", members); next }
    print
}' "$1"
}

add_features() {
    awk -v extra="$ODL_KARAF_FEATURES" '
function flush(    n, i, have, want, list) {
    list = value
    gsub(/[ \t]/, "", list)
    n = split(list, have, ",")
    for (i = 1; i <= n; i++) seen[have[i]] = 1
    n = split(extra, want, ",")
    for (i = 1; i <= n; i++) if (want[i] != "" && !(want[i] in seen)) {
        value = value (value ~ /^[ \t]*$/ ? "" : ",") want[i]; seen[want[i]] = 1
    }
    print "featuresBoot = " value
}
joining {
    line = $0; cont = (line ~ /\\[ \t]*$/); sub(/\\[ \t]*$/, "", line)
    value = value line
    if (!cont) { joining = 0; flush() }
    next
}
/^[ \t]*featuresBoot[ \t]*[=:]/ {
    line = $0; cont = (line ~ /\\[ \t]*$/); sub(/\\[ \t]*$/, "", line)
    sub(/^[ \t]*featuresBoot[ \t]*[=:][ \t]*/, "", line)
    value = line
    if (cont) { joining = 1 } else { flush() }
    next
}
{ print }' "$1"
}

# Write the new content next to the file, then move it over the original.
rewrite() {
    func=$1
    file=$2
    tmp="$file.odl-entrypoint.$$"
    if ! "$func" "$file" >"$tmp"; then
        rm -f "$tmp"
        die "could not rewrite $file"
    fi
    cat "$tmp" >"$file"
    rm -f "$tmp"
}

rewrite rewrite_akka "$AKKA_CONF"
rewrite rewrite_shards "$SHARDS_CONF"
say "$ODL_MEMBER_NAME at $ODL_MEMBER_IP, $count member(s): $ODL_SEED_IPS"

FEATURES_CFG=$ODL_HOME/etc/org.apache.karaf.features.cfg
if [ -n "${ODL_KARAF_FEATURES:-}" ]; then
    case $ODL_KARAF_FEATURES in
        *[!A-Za-z0-9._/:,-]*) die "ODL_KARAF_FEATURES has characters that are not in feature names: $ODL_KARAF_FEATURES" ;;
    esac
    [ -f "$FEATURES_CFG" ] || die "ODL_KARAF_FEATURES is set but $FEATURES_CFG does not exist"
    rewrite add_features "$FEATURES_CFG"
    say "featuresBoot += $ODL_KARAF_FEATURES"
fi

if [ -n "${ODL_READY_SIGNAL_URL:-}" ]; then
    signaller=${ODL_READY_SIGNAL_SCRIPT:-$(dirname "$0")/odl-ready-signal.sh}
    if [ -x "$signaller" ]; then
        "$signaller" &
        say "readiness will be signalled to heat-api by $signaller"
    else
        say "WARNING: ODL_READY_SIGNAL_URL is set but $signaller is missing: this member will never report ready; install odl-ready-signal.sh next to this script"
    fi
fi

if [ "$#" -eq 0 ]; then
    set -- "$ODL_HOME/bin/karaf" server
fi
exec "$@"
