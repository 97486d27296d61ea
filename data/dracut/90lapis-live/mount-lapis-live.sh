#!/bin/sh
# Mount the live root: medium (iso9660, ro) -> LiveOS/rootfs.img (erofs, ro,
# loop) -> overlay with a tmpfs upper layer on $NEWROOT. Sourced by
# dracut-mount (up to 20 times, until $NEWROOT is mounted). Everything lives
# under /run/lapis-live, which systemd carries into the booted system.
case "$root" in
    lapis-live:*) ;;
    *) return 0 ;;
esac
label="${root#lapis-live:}"
dev="/dev/disk/by-label/$label"
base=/run/lapis-live

n=0
while [ ! -b "$dev" ] && [ $n -lt 180 ]; do
    udevadm settle --timeout=1 > /dev/null 2>&1 || sleep 1
    n=$((n + 1))
done
if [ ! -b "$dev" ]; then
    warn "lapis-live: no medium labelled $label ($dev)"
    return 1
fi

for m in isofs loop erofs overlay; do modprobe -q "$m"; done
mkdir -p "$base/medium" "$base/ro" "$base/rw"
ismounted "$base/medium" || mount -t iso9660 -o ro "$dev" "$base/medium" || return 1
ismounted "$base/ro" || mount -t erofs -o ro,loop "$base/medium/LiveOS/rootfs.img" "$base/ro" || return 1
ismounted "$base/rw" || mount -t tmpfs -o mode=0755 tmpfs "$base/rw" || return 1
mkdir -p "$base/rw/upper" "$base/rw/work"
mount -t overlay -o "lowerdir=$base/ro,upperdir=$base/rw/upper,workdir=$base/rw/work" \
    lapis-live "$NEWROOT"
