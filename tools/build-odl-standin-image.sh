#!/bin/bash
# Build the ODL STAND-IN member image (NOT OpenDaylight) from the host's
# busybox-static, with no registry: for the tests and the demo, where no
# OpenDaylight can be downloaded. See heat_plugins/odl_image/standin/.
#
# The image runs the same odl-cluster-entrypoint.sh and odl-ready-signal.sh
# a real member image runs, with bin/karaf replaced by the stand-in.
#
# Usage: tools/build-odl-standin-image.sh [TAG]
#   (default nova-docker/odl-standin:latest)
# Prints "built TAG" when it built it, "present TAG" when an image of TAG
# built from the same sources exists already.

set -o errexit -o nounset -o pipefail

tag=${1:-nova-docker/odl-standin:latest}
busybox=${BUSYBOX:-/bin/busybox}
here=$(cd "$(dirname "$0")/.." && pwd)
src=$here/heat_plugins/odl_image
# shellcheck source=tools/lib/busybox-rootfs.sh
source "$here/tools/lib/busybox-rootfs.sh"

sources=("$src/odl-cluster-entrypoint.sh" "$src/odl-ready-signal.sh"
         "$src/standin/karaf-standin" "$src/standin/ovsdb-echo"
         "$src/standin/akka.conf" "$src/standin/module-shards.conf"
         "$src/standin/org.apache.karaf.features.cfg" "$0"
         "$here/tools/lib/busybox-rootfs.sh")
digest=$(cat "${sources[@]}" | sha256sum | cut -c1-16)
label=nova-docker.odl-standin.sources

if [ "$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" \
        "$tag" 2>/dev/null)" = "$digest" ]; then
    echo "present $tag"
    exit 0
fi
old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
odl=$root/opt/opendaylight
busybox_rootfs "$root" "$busybox"
mkdir -p "$root/run" "$root/usr/local/bin" \
         "$odl/bin" "$odl/etc" "$odl/configuration/initial" "$odl/standin"
install -m 0755 "$src/odl-cluster-entrypoint.sh" "$src/odl-ready-signal.sh" \
    "$root/usr/local/bin/"
install -m 0755 "$src/standin/karaf-standin" "$odl/bin/karaf"
install -m 0755 "$src/standin/ovsdb-echo" "$odl/standin/ovsdb-echo"
install -m 0644 "$src/standin/akka.conf" "$src/standin/module-shards.conf" \
    "$odl/configuration/initial/"
install -m 0644 "$src/standin/org.apache.karaf.features.cfg" "$odl/etc/"
install -m 0644 "$src/standin/README.md" "$odl/STAND-IN-NOT-OPENDAYLIGHT.md"

tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/bin:/bin' \
    -c 'ENV ODL_HOME=/opt/opendaylight' \
    -c "LABEL $label=$digest" \
    -c 'LABEL org.opencontainers.image.title="ODL stand-in (not OpenDaylight), tests and demo only"' \
    -c 'EXPOSE 2550 6640 8181' \
    -c 'ENTRYPOINT ["/usr/local/bin/odl-cluster-entrypoint.sh"]' \
    -c 'CMD ["/opt/opendaylight/bin/karaf", "server"]' \
    - "$tag" >/dev/null
if [ -n "$old" ]; then
    # The stale build of this tag, now untagged; kept if a container uses it.
    docker image rm "$old" >/dev/null 2>&1 || true
fi
echo "built $tag"
