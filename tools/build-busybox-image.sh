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

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "present $image"
    exit 0
fi
[ -x "$busybox" ] || { echo "no $busybox: install busybox-static" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" \
         "$root/dev" "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    # The list names busybox itself; a link there would replace the binary.
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "built $image"
