#!/bin/bash
# Lapis live boot (lapis image, ISO output): the root is LiveOS/rootfs.img, an
# erofs image on the ISO 9660 volume named by lapis.live=LABEL, mounted
# read-only with a tmpfs overlay on top as /sysroot. Included only on request
# (dracut -m/--add lapis-live): an installed system never needs it.

check() {
    return 255
}

depends() {
    echo base fs-lib
}

installkernel() {
    hostonly='' instmods isofs loop erofs overlay sr_mod cdrom ahci ata_piix \
        virtio_scsi virtio_blk virtio_pci usb_storage uas
}

install() {
    inst_multiple mount umount mkdir sleep
    inst_hook cmdline 20 "$moddir/parse-lapis-live.sh"
    inst_hook mount 20 "$moddir/mount-lapis-live.sh"
}
