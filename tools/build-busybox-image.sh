#!/bin/bash
# Build a minimal image from the host's busybox-static, with no registry:
# a root filesystem of /bin/busybox plus a link per applet, imported with
# `docker import`. Does nothing if the image already exists.
#
# Usage: tools/build-busybox-image.sh IMAGE[:TAG]
# Prints "built IMAGE" when it built it, "present IMAGE" otherwise.

set -o errexit -o nounset -o pipefail

image=$1
busybox=${BUSYBOX:-/bin/busybox}
# shellcheck source=tools/lib/busybox-rootfs.sh
source "$(dirname "$0")/lib/busybox-rootfs.sh"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "present $image"
    exit 0
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
busybox_rootfs "$root" "$busybox"
tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "built $image"
