#!/usr/bin/env bash
# The image a platform engineer scripts without Lapis: the baseline of
# bench/run-image. Same packages, same test distribution, same kind of
# output as `lapis image build` (GPT disk: ESP with systemd-boot + a BLS
# entry, ext4 root; then qcow2), built the usual way with dnf --installroot,
# dracut, mkfs.vfat + mtools, sgdisk, mkfs.ext4 -d and qemu-img convert.
#
#   bench/scripted-image.sh disk|oci WORKDIR REPOFILE PKG...
#
# disk: WORKDIR/disk.raw and WORKDIR/disk.qcow2 (plain clusters, as qemu-img
# writes by default; QCOW2_COMPRESS=zstd compresses them as lapis's default
# does); oci: WORKDIR/layer.tar.gz
# (what a user tars up for a container base: dnf --installroot + tar | gzip).
set -euo pipefail
mode=$1 work=$2 repofile=$3
shift 3
root=$work/root
mkdir -p "$work/repos.d" "$work/cache" "$root"
cp "$repofile" "$work/repos.d/"

dnf -q -y --installroot="$root" --setopt=reposdir="$work/repos.d" \
    --setopt=cachedir="$work/cache" --releasever=1 --setopt=install_weak_deps=0 \
    --nodocs install "$@" >/dev/null
rm -rf "$root/var/cache/dnf" "$root/var/log/dnf"*

if [ "$mode" = oci ]; then
    tar -C "$root" --sort=name --numeric-owner -cf - . | gzip -n > "$work/layer.tar.gz"
    exit 0
fi

kver=$(ls "$root/usr/lib/modules" | head -n1)
depmod -b "$root" "$kver"
mkdir -p "$work/dracut.conf.d"
cat > "$work/dracut.conf" <<'EOF'
systemdutildir=/usr/lib/systemd
systemdsystemunitdir=/usr/lib/systemd/system
systemdsystemconfdir=/etc/systemd/system
udevdir=/usr/lib/udev
udevrulesdir=/usr/lib/udev/rules.d
EOF
dracut -q --force --sysroot "$root" --kver "$kver" -k "$root/usr/lib/modules/$kver" \
    --no-hostonly --reproducible --conf "$work/dracut.conf" --confdir "$work/dracut.conf.d" \
    -m "base systemd systemd-initrd kernel-modules rootfs-block udev-rules dracut-systemd fs-lib shutdown" \
    --add-drivers "virtio_pci virtio_blk ext4 vfat" --compress zstd "$work/initrd.img"

esp=$work/esp.img
rm -f "$esp"; truncate -s 128M "$esp"
mkfs.vfat -F 32 --invariant "$esp" >/dev/null
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/lapis
mcopy -i "$esp" "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$root/usr/lib/modules/$kver/vmlinuz" ::/lapis/vmlinuz
mcopy -i "$esp" "$work/initrd.img" ::/lapis/initrd.img
printf 'title Lapis\nlinux /lapis/vmlinuz\ninitrd /lapis/initrd.img\noptions rw console=ttyS0\n' > "$work/entry.conf"
mcopy -i "$esp" "$work/entry.conf" ::/loader/entries/lapis.conf

used_k=$(du -sk "$root" | cut -f1)
root_k=$(( used_k * 13 / 10 + 65536 ))
disk=$work/disk.raw
rm -f "$disk"; truncate -s $(( (1 + 128 + 1) * 1024 * 1024 + root_k * 1024 )) "$disk"
sgdisk -q -n 1:2048:+128M -t 1:ef00 -n 2:0:0 -t 2:4f68bce3-e8cd-4db1-96e7-fbcaf984b709 "$disk"
dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc status=none
start=$(sgdisk -i 2 "$disk" | awk '/First sector/ {print $3}')
mkfs.ext4 -q -F -E offset=$(( start * 512 )) -d "$root" "$disk" "${root_k}k"
if [ "${QCOW2_COMPRESS:-}" = zstd ]; then
    qemu-img convert -c -o compression_type=zstd -O qcow2 "$disk" "$work/disk.qcow2"
else
    qemu-img convert -O qcow2 "$disk" "$work/disk.qcow2"
fi
