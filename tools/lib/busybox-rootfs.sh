#!/bin/bash
# Shared by the image build scripts: the root filesystem of a minimal image
# made from the host's busybox-static (no registry needed).

# busybox_rootfs ROOT BUSYBOX: fill the directory ROOT with /bin/busybox, a
# link per applet, the usual empty directories, and a root user and group.
busybox_rootfs() {
    local root=$1 busybox=$2 applet
    [ -x "$busybox" ] || { echo "no $busybox: install busybox-static" >&2; return 1; }
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" \
             "$root/dev" "$root/root"
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        # The list names busybox itself; a link there would replace the binary.
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
}
