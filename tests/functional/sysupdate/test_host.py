"""lapis-sysupdate in host mode (no --image) against a host root made of
sample files in the kernel's formats (--root DIR): /dev/disk/by-partlabel
links, sysfs partition directories, /proc/self/mountinfo with the ESP on
/efi, /proc/cmdline with usrhash=, the running /usr's os-release. The disk
is a real GPT A/B image file standing where /dev/vda would be (the agent
writes a whole disk at partition offsets either way), the ESP a directory
where the vfat would be mounted. The boot loader's part (counting tries,
falling back) is played by renaming UKIs as systemd-boot does; the booted
tests (test_booted.py) do it for real.
"""

import json
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_sysupdate import AGENT, LAYOUT, MIB, Env, digest, make_disk, ok, run  # noqa: E402,F401
import test_sysupdate  # noqa: E402

pytestmark = test_sysupdate.pytestmark


def uuid_of(hex32):
    return "%s-%s-%s-%s-%s" % (hex32[:8], hex32[8:12], hex32[12:16], hex32[16:20], hex32[20:32])


class Host(Env):
    """Env with a host root around the disk."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.root = tmp / "root"
        self.esp = self.root / "efi" / "EFI" / "Linux"

    def make_root(self, usrhash):
        r = self.root
        for d in ("dev/disk/by-partlabel", "sys/class/block", "sys/dev/block", "proc/self", "efi/EFI/Linux",
                  "usr/lib", "run", "var/run"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.replace(self.disk, r / "dev" / "vda")
        self.disk = r / "dev" / "vda"
        for num, (start, size, label, _) in enumerate(LAYOUT, 1):
            name = "vda%d" % num
            (r / "dev" / name).touch()
            (r / "dev/disk/by-partlabel" / label).symlink_to("../../" + name)
            sysdir = r / "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda" / name
            sysdir.mkdir(parents=True)
            for f, v in (("partition", num), ("start", start * 2048), ("size", size * 2048)):
                (sysdir / f).write_text("%d\n" % v)
            rel = "../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda/" + name
            (r / "sys/class/block" / name).symlink_to(rel)
            (r / "sys/dev/block" / ("254:%d" % num)).symlink_to("../../devices/pci0000:00/0000:00:04.0/"
                                                               "virtio1/block/vda/" + name)
        (r / "proc/self/mountinfo").write_text(
            "22 1 254:6 / / rw,relatime shared:1 - ext4 /dev/vda6 rw\n"
            "41 22 0:37 / /efi rw,relatime shared:20 - autofs systemd-1 rw,fd=47,direct\n"
            "58 41 254:1 / /efi rw,relatime shared:28 - vfat /dev/vda1 rw,fmask=0077,dmask=0077\n")
        self.cmdline(usrhash)
        (r / "usr/lib/os-release").write_text('ID=lapis\nIMAGE_ID=host\nIMAGE_VERSION="1.0"\n')
        (self.esp / "lapis_1.0.efi").write_bytes(b"MZ factory UKI")

    def cmdline(self, usrhash):
        (self.root / "proc/cmdline").write_text("console=ttyS0 usrhash=%s ro quiet\n" % usrhash)

    def agent(self, *args, url=None):
        return [AGENT, "--json", "--root", self.root, "--keys", self.keys, "--url", url or self.url(),
                "--arch", "x86_64"] + list(args)

    def ukis(self):
        return sorted(os.listdir(self.esp))


@pytest.fixture
def host(tmp_path):
    h = Host(tmp_path)
    yield h
    test_sysupdate.httpserver.stop(h.server)


def host_v1(h):
    """A factory disk as the composer makes it: slot a holds 1.0, its PARTUUIDs the root hash's halves."""
    img, uki = h.usr("1.0", 256 * 1024)
    verity = h.tmp / "verity-1.0"
    root = ok(["veritysetup", "format", img, verity]).stdout.split("Root hash:")[1].split()[0]
    make_disk(h.disk, img, verity, uki)
    ok(["sgdisk", "-u", "2:" + uuid_of(root[:32]), "-u", "3:" + uuid_of(root[32:]), h.disk])
    h.make_root(root)
    return root


def test_host_update_boot_bless_and_fallback(host):
    root1 = host_v1(host)
    # First boot: no state yet; boot derives it from usrhash= and IMAGE_VERSION.
    b = json.loads(ok(host.agent("boot")).stdout)
    assert b == {"booted": "a", "rolled_back": None}
    state = host.root / "var/lib/lapis-sysupdate/state"
    assert state.exists()
    s = json.loads(ok(host.agent("status")).stdout)
    assert [(x["slot"], x["version"], x["status"], x["booted"]) for x in s["slots"]] == \
        [("a", "1.0", "good", True), ("b", None, "empty", False)]
    assert s["slots"][0]["verity_root_hash"] == root1

    # Update to 2.0: slot b of the disk at /dev/vda, the UKI into the mounted ESP, reboot-required.
    root2 = host.bundle("2.0", min_from="1.0")
    host.index()
    active = digest(host.disk, "usr-a"), digest(host.disk, "usr-a-verity")
    r = json.loads(ok(host.agent("update")).stdout)
    assert r == {"staged": True, "version": "2.0", "slot": "b", "reason": None}
    assert (digest(host.disk, "usr-a"), digest(host.disk, "usr-a-verity")) == active
    img = (host.tmp / "usr-2.0.erofs").read_bytes()
    off = next(s for s, _, lab, _ in LAYOUT if lab == "usr-b") * MIB
    assert host.disk.read_bytes()[off:off + len(img)] == img
    assert host.ukis() == ["lapis_1.0.efi", "lapis_2.0+3.efi"]
    s = json.loads(ok(host.agent("status")).stdout)["slots"]
    assert [(x["uki"], x["tries_left"]) for x in s] == [("lapis_1.0.efi", None), ("lapis_2.0+3.efi", 3)]
    assert (host.esp / "lapis_2.0+3.efi").read_bytes() == (host.tmp / "uki-2.0.efi").read_bytes()
    # In /run (the tmpfs): the fake root's /var/run is a plain directory, as in an image
    # without base-files' /var/run -> /run link, where a sentinel would outlive the reboot.
    assert (host.root / "run/reboot-required").read_text() == "*** System restart required ***\n"
    assert (host.root / "run/reboot-required.pkgs").read_text() == "lapis_2.0\n"
    assert not (host.root / "var/run/reboot-required").exists()
    assert "unique GUID: " + uuid_of(root2[:32]).upper() in ok(["sgdisk", "-i", "4", host.disk]).stdout

    # systemd-boot tries 2.0 (+3 -> +2-1) and boots it from slot b.
    os.rename(host.esp / "lapis_2.0+3.efi", host.esp / "lapis_2.0+2-1.efi")
    host.cmdline(root2)
    assert json.loads(ok(host.agent("boot")).stdout) == {"booted": "b", "rolled_back": None}
    s = json.loads(ok(host.agent("status")).stdout)
    assert [(x["version"], x["status"], x["booted"]) for x in s["slots"]] == \
        [("1.0", "good", False), ("2.0", "staged", True)]
    assert (s["slots"][1]["uki"], s["slots"][1]["tries_left"]) == ("lapis_2.0+2-1.efi", 2)
    # Not good yet: the timer must not overwrite slot a, 2.0's fallback.
    root3 = host.bundle("3.0")
    host.index()
    r = json.loads(ok(host.agent("update")).stdout)
    assert r["staged"] is False and "not marked good yet" in r["reason"], r
    # boot-complete.target: systemd-bless-boot renames it, mark-good records it.
    os.rename(host.esp / "lapis_2.0+2-1.efi", host.esp / "lapis_2.0.efi")
    assert json.loads(ok(host.agent("mark-good")).stdout) == {"marked": "good", "version": "2.0"}
    s = json.loads(ok(host.agent("status")).stdout)["slots"][1]
    assert (s["uki"], s["tries_left"]) == ("lapis_2.0.efi", None)

    # 3.0 is staged in slot a, booted, fails its health checks three times: +0-3, fallback to 2.0.
    r = json.loads(ok(host.agent("update")).stdout)
    assert r == {"staged": True, "version": "3.0", "slot": "a", "reason": None}
    os.rename(host.esp / "lapis_3.0+3.efi", host.esp / "lapis_3.0+2-1.efi")
    host.cmdline(root3)
    assert json.loads(ok(host.agent("boot")).stdout)["booted"] == "a"
    os.rename(host.esp / "lapis_3.0+2-1.efi", host.esp / "lapis_3.0+0-3.efi")
    host.cmdline(root2)
    assert json.loads(ok(host.agent("boot")).stdout) == {"booted": "b", "rolled_back": "3.0"}
    s = json.loads(ok(host.agent("status")).stdout)
    assert s["rolled_back"] == "3.0" and s["failed"] == ["3.0"]
    assert [(x["version"], x["status"], x["booted"]) for x in s["slots"]] == \
        [("3.0", "bad", False), ("2.0", "good", True)]
    assert host.ukis() == ["lapis_2.0.efi"]    # 3.0's UKI is gone (1.0's went when slot a was rewritten)
    r = json.loads(ok(host.agent("update")).stdout)
    assert r["staged"] is False and "3.0 failed its boot before" in r["reason"]


def test_host_refuses_what_is_not_its_disk(host):
    host_v1(host)
    # usr-b's label points at a partition of another disk: never written.
    link = host.root / "dev/disk/by-partlabel/usr-b"
    link.unlink()
    other = host.root / "sys/devices/pci0000:00/0000:00:05.0/virtio2/block/vdb/vdb1"
    other.mkdir(parents=True)
    for f, v in (("partition", 1), ("start", 2048), ("size", 2048)):
        (other / f).write_text("%d\n" % v)
    (host.root / "dev/vdb1").touch()
    (host.root / "sys/class/block/vdb1").symlink_to("../../devices/pci0000:00/0000:00:05.0/virtio2/block/vdb/vdb1")
    link.symlink_to("../../vdb1")
    r = run(host.agent("boot"))
    assert r.returncode == 1 and "usr-b on vdb: the slots must share one disk" in r.stderr, r.stderr
    link.unlink()
    link.symlink_to("../../vda4")
    # The kernel's partition differs from the GPT (a stale table): refused.
    (host.root / "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda4/start").write_text("4096\n")
    r = run(host.agent("boot"))
    assert r.returncode == 1 and "the kernel has partition 4 at 2097152" in r.stderr, r.stderr
    (host.root / "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda4/start").write_text("%d\n" % (22 * 2048))
    # The vfat on /efi is not this disk's ESP.
    mi = host.root / "proc/self/mountinfo"
    mi.write_text(mi.read_text().replace("254:1 /", "254:6 /"))
    r = run(host.agent("boot"))
    assert r.returncode == 1 and "not the ESP of vda" in r.stderr, r.stderr
    mi.write_text("22 1 254:6 / / rw,relatime shared:1 - ext4 /dev/vda6 rw\n")
    r = run(host.agent("boot"))
    assert r.returncode == 1 and "the ESP is not mounted" in r.stderr, r.stderr
    assert not (host.root / "var/lib/lapis-sysupdate/state").exists()
    # A boot not from a slot.
    (host.root / "proc/cmdline").write_text("console=ttyS0 root=/dev/vda6\n")
    r = run(host.agent("boot"))
    assert r.returncode == 1 and "no usrhash=" in r.stderr, r.stderr


def test_health_unit_names_and_masks(tmp_path):
    """A plain file named after a unit is a check that the unit is active (systemctl
    is-active); a symlink to /dev/null in the admin's directory masks a vendor check."""
    vendor, admin = tmp_path / "usr-health.d", tmp_path / "etc-health.d"
    vendor.mkdir()
    admin.mkdir()
    (vendor / "lapis-test-no-such-unit.service").write_text("")     # never active
    (vendor / "10-ok").write_text("#!/bin/sh\nexit 0\n")
    (vendor / "10-ok").chmod(0o755)
    (vendor / "README").write_text("not a check: neither executable nor a unit name\n")
    r = run([AGENT, "--json", "health", vendor, admin])
    assert r.returncode == 1 and "health check lapis-test-no-such-unit.service failed" in r.stderr, r
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["checks"]] == ["10-ok", "lapis-test-no-such-unit.service"]
    (admin / "lapis-test-no-such-unit.service").symlink_to("/dev/null")
    r = run([AGENT, "--json", "health", vendor, admin])
    assert r.returncode == 0, r
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["lapis-test-no-such-unit.service"]["output"] == "masked"
