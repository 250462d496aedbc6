#!/bin/sh
# Tell Heat that this OpenDaylight member is ready (OS::ODL::Cluster,
# "readiness: signal", the default).
#
# odl-cluster-entrypoint.sh starts this in the background when the member
# was given a signal URL. It checks the member locally, the way the
# resource's polling mode would from outside:
#   GET /restconf/operational/network-topology:network-topology/topology/netvirt:1
#       answers 2xx (basic auth), and
#   GET /jolokia/read/akka:type=Cluster shows MemberStatus Up, every member
#       of ODL_SEED_IPS in Members and none in Unreachable;
# then POSTs to heat-api, once:
#   {"status": "SUCCESS", "id": "member-<n>", "reason": ..., "data": <leader>}
# or, when it is still not ready after ODL_READY_TIMEOUT seconds,
#   {"status": "FAILURE", "id": "member-<n>", "reason": <what is missing>}
# so the stack fails with this member's own reason.
#
# Environment:
#   ODL_READY_SIGNAL_URL    heat-api signal URL (from OS::ODL::Cluster)
#   ODL_READY_SIGNAL_TOKEN  Keystone token for it (from OS::ODL::Cluster)
#   ODL_MEMBER_NAME, ODL_SEED_IPS, ODL_RESTCONF_PORT  (from OS::ODL::Cluster)
#   ODL_READY_TIMEOUT       seconds to keep checking (default 600)
#   ODL_READY_USER, ODL_READY_PASSWORD  RESTCONF credentials of this image
#                           (default admin/admin, ODL's own default); set
#                           them in the image, not in the template
#
# POSIX sh and busybox wget: runs under busybox.

set -u

say() {
    echo "odl-ready-signal: $*"
}

URL=${ODL_READY_SIGNAL_URL:-}
TOKEN=${ODL_READY_SIGNAL_TOKEN:-}
NAME=${ODL_MEMBER_NAME:-}
SEEDS=${ODL_SEED_IPS:-}
PORT=${ODL_RESTCONF_PORT:-8181}
TIMEOUT=${ODL_READY_TIMEOUT:-600}
INTERVAL=${ODL_READY_INTERVAL:-3}

case $URL in
    http://*|https://*) ;;
    *) say "ERROR: ODL_READY_SIGNAL_URL '$URL' is not an http(s) URL; not signalling"; exit 64 ;;
esac
case $URL$TOKEN in
    *[!A-Za-z0-9._~:/?#@!\$\&\'\(\)*+,\;=%-]*)
        say "ERROR: ODL_READY_SIGNAL_URL or _TOKEN has characters a URL or token cannot have; not signalling"; exit 64 ;;
esac
[ -n "$TOKEN" ] || { say "ERROR: ODL_READY_SIGNAL_TOKEN is empty; not signalling"; exit 64; }
case $TIMEOUT:$INTERVAL in
    *[!0-9:]*|:*|*:) say "ERROR: ODL_READY_TIMEOUT/INTERVAL must be whole seconds"; exit 64 ;;
esac

BASE=http://127.0.0.1:$PORT
RESTCONF=$BASE/restconf/operational/network-topology:network-topology/topology/netvirt:1
JOLOKIA=$BASE/jolokia/read/akka:type=Cluster
AUTH="Authorization: Basic $(printf '%s:%s' "${ODL_READY_USER:-admin}" \
    "${ODL_READY_PASSWORD:-admin}" | base64 -w 0)"

# Value of a string attribute of the Jolokia answer.
field() {
    printf '%s' "$view" | sed -n "s/.*\"$1\"[ ]*:[ ]*\"\\([^\"]*\\)\".*/\\1/p"
}

# Does an Akka address list name this IP?
lists() {
    case ",$1," in
        *"@$2:"*|*"@[$2]:"*) return 0 ;;
    esac
    return 1
}

# Sets $why when not ready, $leader when ready.
check() {
    if ! timeout 10 wget -q -Y off -O /dev/null --header "$AUTH" "$RESTCONF" 2>/dev/null; then
        why="RESTCONF does not answer at $RESTCONF"
        return 1
    fi
    if ! view=$(timeout 10 wget -q -Y off -O - --header "$AUTH" "$JOLOKIA" 2>/dev/null); then
        why="Jolokia does not answer at $JOLOKIA"
        return 1
    fi
    status=$(field MemberStatus)
    if [ "$status" != Up ]; then
        why="Akka member status is ${status:-unknown}, not Up"
        return 1
    fi
    members=$(field Members)
    unreachable=$(field Unreachable)
    old_ifs=$IFS
    IFS=,
    for ip in $SEEDS; do
        if lists "$unreachable" "$ip"; then
            why="cluster view lists $ip as unreachable"
        elif ! lists "$members" "$ip"; then
            why="cluster view does not list $ip"
        else
            continue
        fi
        IFS=$old_ifs
        return 1
    done
    IFS=$old_ifs
    leader=$(field Leader | sed 's/.*@\[*//; s/\]*:[0-9]*$//')
    # Only a member's address goes into the signal.
    case ",$SEEDS," in
        *",$leader,"*) ;;
        *) leader= ;;
    esac
    return 0
}

post() {
    body=$1
    tries=0
    while [ "$tries" -lt 5 ]; do
        tries=$((tries + 1))
        if timeout 20 wget -q -Y off -O /dev/null \
                --header "X-Auth-Token: $TOKEN" \
                --header 'Content-Type: application/json' \
                --header 'Accept: application/json' \
                --post-data "$body" "$URL"; then
            return 0
        fi
        say "heat-api did not take the signal (try $tries of 5): can this member reach ${URL%%/v1/*}?"
        sleep 5
    done
    return 1
}

why="not checked yet"
leader=
waited=0
while ! check; do
    if [ "$waited" -ge "$TIMEOUT" ]; then
        say "$NAME not ready after $TIMEOUT s: $why; signalling FAILURE"
        post "{\"status\": \"FAILURE\", \"id\": \"$NAME\", \"reason\": \"not ready after $TIMEOUT s: $why\", \"data\": null}"
        exit 1
    fi
    sleep "$INTERVAL"
    waited=$((waited + INTERVAL))
done
say "$NAME ready (RESTCONF answers, cluster view lists every member Up, leader ${leader:-unknown}); signalling heat-api"
if post "{\"status\": \"SUCCESS\", \"id\": \"$NAME\", \"reason\": \"RESTCONF answers and the cluster view lists every member Up\", \"data\": \"$leader\"}"; then
    say "signalled"
    exit 0
fi
say "ERROR: could not signal heat-api; the stack will time out naming $NAME"
exit 1
