#!/bin/sh
# Entrypoint of the northbound VIP image (tools/build-haproxy-image.sh)
# booted by OS::ODL::Cluster in front of the OpenDaylight members.
#
# The nova-docker driver passes the server's instance metadata to the
# container as environment variables. From them this script writes an
# HAProxy configuration, then execs HAProxy in the foreground:
#
#   frontend :ODL_VIP_PORT (8181), HTTP, every path: RESTCONF and the
#       Neutron northbound API networking-odl uses
#       (/controller/nb/v2/neutron) both live on the members' 8181;
#   backend: every member in ODL_VIP_MEMBERS, round robin, health-checked
#       each second with GET ODL_VIP_CHECK_PATH (the RESTCONF readiness
#       URL) and ODL_VIP_CHECK_AUTH (the Authorization header); a member
#       is taken out after 2 failed checks and back after 2 good ones,
#       and a request whose member does not answer is sent to another;
#   stats: GET /stats (CSV: /stats;csv) on ODL_VIP_STATS_PORT (8404).
#
# Environment (set by OS::ODL::Cluster; values are strings):
#   ODL_VIP_MEMBERS     comma-separated member addresses, member order
#   ODL_RESTCONF_PORT   the members' RESTCONF port (default 8181)
#   ODL_VIP_PORT        port the VIP listens on (default 8181)
#   ODL_VIP_CHECK_PATH  health check path (default: RESTCONF readiness)
#   ODL_VIP_CHECK_AUTH  Authorization header value of the check (optional)
#   ODL_VIP_STATS_PORT  HAProxy statistics port (default 8404)
#
# POSIX sh only: runs under busybox.

set -eu

MEMBERS=${ODL_VIP_MEMBERS:-}
BACKEND_PORT=${ODL_RESTCONF_PORT:-8181}
VIP_PORT=${ODL_VIP_PORT:-8181}
CHECK_PATH=${ODL_VIP_CHECK_PATH:-/restconf/operational/network-topology:network-topology/topology/netvirt:1}
CHECK_AUTH=${ODL_VIP_CHECK_AUTH:-}
STATS_PORT=${ODL_VIP_STATS_PORT:-8404}
CFG=${ODL_VIP_CONFIG:-/run/haproxy/haproxy.cfg}

fail() {
    echo "odl-vip: ERROR: $*" >&2
    exit 64
}

is_port() {
    case $1 in
        ''|*[!0-9]*) return 1 ;;
    esac
    [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

[ -n "$MEMBERS" ] || fail "ODL_VIP_MEMBERS is empty: no member to send requests to"
for port in "$BACKEND_PORT" "$VIP_PORT" "$STATS_PORT"; do
    is_port "$port" || fail "'$port' is not a TCP port"
done
case $CHECK_PATH in
    /*) ;;
    *) fail "ODL_VIP_CHECK_PATH '$CHECK_PATH' does not start with /" ;;
esac
case $CHECK_PATH in
    *[!A-Za-z0-9/:._-]*) fail "ODL_VIP_CHECK_PATH '$CHECK_PATH' has characters a URL path here may not" ;;
esac
case $CHECK_AUTH in
    ''|'Basic '[A-Za-z0-9+/=]*) ;;
    *) fail "ODL_VIP_CHECK_AUTH must be 'Basic <base64>'" ;;
esac
case ${CHECK_AUTH#Basic } in
    *[!A-Za-z0-9+/=]*) fail "ODL_VIP_CHECK_AUTH must be 'Basic <base64>'" ;;
esac

mkdir -p "$(dirname "$CFG")"
{
    echo "# Written by odl-vip-entrypoint.sh from the server's metadata."
    echo "global"
    echo "    maxconn 2048"
    echo "defaults"
    echo "    mode http"
    echo "    option httplog"
    echo "    log stdout format raw local0"
    echo "    timeout connect 1s"
    echo "    timeout client 5m"
    echo "    timeout server 5m"
    echo "    timeout check 2s"
    # A request whose member fell over before the checks noticed goes to
    # another member instead of failing.
    echo "    retries 3"
    echo "    option redispatch 1"
    echo "frontend northbound"
    echo "    bind :$VIP_PORT"
    echo "    default_backend odl_members"
    echo "backend odl_members"
    echo "    balance roundrobin"
    echo "    option httpchk"
    if [ -n "$CHECK_AUTH" ]; then
        echo "    http-check send meth GET uri $CHECK_PATH hdr Authorization \"$CHECK_AUTH\""
    else
        echo "    http-check send meth GET uri $CHECK_PATH"
    fi
    echo "    http-check expect status 200"
    echo "    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down"
    n=0
    for ip in $(echo "$MEMBERS" | tr ',' ' '); do
        n=$((n + 1))
        case $ip in
            *:*) addr="[$ip]" ;;
            *[!0-9.]*|'') fail "member address '$ip' is not an IP address" ;;
            *) addr=$ip ;;
        esac
        echo "    server member-$n $addr:$BACKEND_PORT check"
    done
    echo "listen stats"
    echo "    bind :$STATS_PORT"
    echo "    stats enable"
    echo "    stats uri /stats"
    echo "    stats refresh 5s"
} >"$CFG"

echo "odl-vip: :$VIP_PORT -> members $MEMBERS on :$BACKEND_PORT, checks GET $CHECK_PATH"
if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec haproxy -W -db -f "$CFG"
