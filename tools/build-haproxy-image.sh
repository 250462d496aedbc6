#!/bin/bash
# Build the northbound VIP image of OS::ODL::Cluster with no registry: the
# host's busybox-static, Debian's haproxy binary and every library it links
# (as ldd lists them), and heat_plugins/odl_image/haproxy/odl-vip-entrypoint.sh,
# imported with `docker import`.
#
# When the host has no haproxy, it is installed with apt-get, with a
# policy-rc.d in place for the install so that the host's HAProxy service
# is never started (an existing policy-rc.d is left alone).
#
# Usage: tools/build-haproxy-image.sh [TAG]   (default nova-docker/haproxy:latest)
# Prints "built TAG" when it built it, "present TAG" when an image of TAG
# built from the same entrypoint and haproxy binary exists already.

set -o errexit -o nounset -o pipefail

tag=${1:-nova-docker/haproxy:latest}
busybox=${BUSYBOX:-/bin/busybox}
haproxy=${HAPROXY:-/usr/sbin/haproxy}
here=$(cd "$(dirname "$0")/.." && pwd)
entrypoint=$here/heat_plugins/odl_image/haproxy/odl-vip-entrypoint.sh
# shellcheck source=tools/lib/busybox-rootfs.sh
source "$here/tools/lib/busybox-rootfs.sh"

install_haproxy() {
    local policy=/usr/sbin/policy-rc.d ours=
    echo "no $haproxy: installing Debian's haproxy (service not started)" >&2
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        ours=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y --no-install-recommends haproxy >&2 || {
        [ -z "$ours" ] || rm -f "$policy"
        return 1
    }
    [ -z "$ours" ] || rm -f "$policy"
}

# libraries LIB...: every shared object the binaries load, the dynamic
# loader included, one absolute path a line.
libraries() {
    ldd "$@" | awk '
        /not found/ { print "missing " $1; next }
        $2 == "=>" && $3 ~ /^\// { print $3 }
        $1 ~ /^\// { print $1 }' | sort -u
}

[ -x "$haproxy" ] || install_haproxy
[ -x "$haproxy" ] || { echo "no $haproxy after installing haproxy" >&2; exit 1; }
libs=$(libraries "$haproxy")
if grep -q '^missing ' <<<"$libs"; then
    echo "$haproxy links libraries this host lacks: $(grep '^missing ' <<<"$libs" | tr '\n' ' ')" >&2
    exit 1
fi

digest=$(cat "$entrypoint" "$0" "$here/tools/lib/busybox-rootfs.sh" \
             "$haproxy" | sha256sum | cut -c1-16)
label=nova-docker.haproxy.sources
if [ "$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" \
        "$tag" 2>/dev/null)" = "$digest" ]; then
    echo "present $tag"
    exit 0
fi
old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
version=$("$haproxy" -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p')

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
busybox_rootfs "$root" "$busybox"
mkdir -p "$root/usr/sbin" "$root/usr/local/bin" "$root/run/haproxy" \
         "$root/var/lib/haproxy"
install -m 0755 "$haproxy" "$root/usr/sbin/haproxy"
install -m 0755 "$entrypoint" "$root/usr/local/bin/odl-vip-entrypoint.sh"
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    # The file itself, under the name the loader looks for.
    cp -L "$lib" "$root$lib"
done
printf 'haproxy:x:99:99:haproxy:/var/lib/haproxy:/bin/false\n' >>"$root/etc/passwd"
printf 'haproxy:x:99:\n' >>"$root/etc/group"

tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/bin:/usr/sbin:/bin' \
    -c "LABEL $label=$digest" \
    -c "LABEL org.opencontainers.image.title=\"OpenDaylight northbound VIP (HAProxy $version)\"" \
    -c 'EXPOSE 8181 8404' \
    -c 'ENTRYPOINT ["/usr/local/bin/odl-vip-entrypoint.sh"]' \
    - "$tag" >/dev/null
if [ -n "$old" ]; then
    # The stale build of this tag, now untagged; kept if a container uses it.
    docker image rm "$old" >/dev/null 2>&1 || true
fi
echo "built $tag"
