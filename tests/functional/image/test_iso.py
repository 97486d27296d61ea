"""ISO output (src/image/iso.c, issue 12), through `lapis image build`: a
UEFI-bootable ISO 9660 image that boots the composed root live (erofs root
image + tmpfs overlay), built in the same build as a raw disk.

One initrd serves both (boot.c runs dracut once, with the lapis-live module
when an ISO is asked for; the module acts only on lapis.live=). Two QEMU
boots (TCG, OVMF) of that one build: the ISO as a CD-ROM and the raw disk,
each to the `lapis-image-ready` marker of data/images/minimal-server.yaml,
which here also prints what the root is. A second build at another time,
umask, cwd and TMPDIR gives the same ISO and raw bytes.
"""

import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from .conftest import image_env, sha256

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent.parent
BUILD = SRCROOT / "build"
LAPIS = os.path.abspath(os.environ.get("LAPIS_BIN") or BUILD / "lapis")
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or BUILD / "testdist").resolve()
OVMF_CODE = pathlib.Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = pathlib.Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
TOOLS = ("xorriso", "mkfs.erofs", "mkfs.vfat", "mcopy", "dracut", "lsinitrd", "sgdisk",
         "qemu-system-x86_64")

EPOCH = "1767225600"   # 2026-01-01
NAME, VERSION, ARCH = "isotest", "1.0", "x86_64"
BASENAME = "%s-%s.%s" % (NAME, VERSION, ARCH)
LABEL = "ISOTEST-1.0"
PACKAGES = ("linux-image-amd64", "systemd", "systemd-sysv", "udev", "systemd-boot",
            "bash", "coreutils", "util-linux", "mount", "dracut", "kmod", "dash",
            "base-passwd", "base-files", "grep", "sed", "findutils", "gzip", "login", "passwd")
BOOT_TIMEOUT = 480     # seconds: TCG on a machine shared by several builds
MARKER = "lapis-image-ready:"

pytestmark = [
    pytest.mark.skipif(not (TESTDIST / "testdist.repo").exists(),
                       reason="test distribution not built: run `make testdist`"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS) or not OVMF_CODE.exists(),
                       reason="image tools missing: run scripts/install-deps"),
]

# minimal-server.yaml's marker, plus what the root is made of (each field
# "none" where it does not apply: a disk boot has no live medium).
READY_UNIT = r"""[Unit]
Description=Say on the serial console that the image is up
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "lapis-image-ready: $(cat /etc/hostname) up $(cut -d" " -f1 /proc/uptime)s \
root=$(findmnt -no FSTYPE /) lower=$(findmnt -no FSTYPE /run/lapis-live/ro || echo none) \
medium=$(findmnt -no FSTYPE /run/lapis-live/medium || echo none) \
live=$(grep -o "lapis.live=[^ ]*" /proc/cmdline || echo none) \
target=$(systemctl is-active multi-user.target) \
writable=$(touch /lapis-written && echo yes || echo no)" > /dev/ttyS0'
"""


def config_text(repo):
    unit = "\n".join("        " + line for line in READY_UNIT.rstrip("\n").split("\n"))
    return f"""name: {NAME}
version: "{VERSION}"
releasever: "12"
repos:
  - file: {repo}
packages:
  install: [{", ".join(PACKAGES)}]
os:
  hostname: lapis-live-test
  kernelCommandLine:
    extraCommandLine: [console=ttyS0]
  additionalFiles:
    - destination: /usr/lib/systemd/system/lapis-image-ready.service
      content: |
{unit}
    - destination: /usr/lib/systemd/system/multi-user.target.d/lapis-image-ready.conf
      content: |
        [Unit]
        Wants=lapis-image-ready.service
storage:
  bootLoader: bls
output:
  formats: [raw, iso]
"""


def build(cfg, out, cwd, umask=0o022, tmpdir=None):
    env = image_env(out.parent)
    env["SOURCE_DATE_EPOCH"] = EPOCH
    if tmpdir:
        env["TMPDIR"] = str(tmpdir)
    old = os.umask(umask)
    try:
        t0 = time.monotonic()
        p = subprocess.run([LAPIS, "image", "build", "--no-cache", "--cachedir",
                            str(out.parent / "cache"), "-o", str(out), str(cfg)],
                           cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    stages = {m.group(1): float(m.group(2))
              for m in re.finditer(r"^\s+(\w+)\s+x86_64\s+([\d.]+) s$", p.stderr, re.M)}
    print("build took %.1f s; stages %s" % (time.monotonic() - t0, stages))
    return {"iso": out / (BASENAME + ".iso"), "raw": out / (BASENAME + ".raw"),
            "stages": stages, "tmp": out.parent}


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    base = tmp_path_factory.mktemp("isocfg")
    path = base / "isotest.yaml"
    path.write_text(config_text(TESTDIST / "testdist.repo"))
    return path


@pytest.fixture(scope="module")
def built(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("iso1") / "out"
    return build(cfg, out, cwd=out.parent)


def boot(drive, workdir, timeout=BOOT_TIMEOUT):
    """Boot under OVMF with drive (QEMU -drive options); return the marker's
    fields once its line is complete on the serial console, or fail with
    the console's tail."""
    vars_fd = workdir / "vars.fd"
    shutil.copyfile(OVMF_VARS, vars_fd)
    serial = workdir / "serial.log"
    serial.unlink(missing_ok=True)
    t0 = time.monotonic()
    q = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "1024",
         "-nographic", "-no-reboot", "-monitor", "none", "-display", "none",
         "-drive", "if=pflash,format=raw,readonly=on,file=%s" % OVMF_CODE,
         "-drive", "if=pflash,format=raw,file=%s" % vars_fd,
         "-drive", drive, "-serial", "file:%s" % serial],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.monotonic() - t0 < timeout:
            text = serial.read_text(errors="replace") if serial.exists() else ""
            m = re.search(MARKER + r" (\S+) up (\S+) (.*writable=\w+)", text)
            if m:
                fields = dict(f.split("=", 1) for f in m.group(3).split())
                fields.update(hostname=m.group(1), uptime=m.group(2),
                              wall="%.0f" % (time.monotonic() - t0), console=text)
                print("marker after %s s wall (uptime %s): %s" % (fields["wall"], m.group(2),
                                                                  m.group(3)))
                return fields
            if q.poll() is not None:
                break
            time.sleep(2)
        text = serial.read_text(errors="replace") if serial.exists() else ""
        pytest.fail("no marker on the serial console within %d s; console tail:\n%s"
                    % (timeout, text[-3000:]))
    finally:
        q.kill()
        q.wait()


def extract(iso, path, dst):
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(dst)],
                   check=True, capture_output=True)
    return dst


def esp_offset(raw):
    out = subprocess.run(["sgdisk", "-i", "1", str(raw)], capture_output=True, text=True,
                         check=True).stdout
    return int(re.search(r"First sector: (\d+)", out).group(1)) * 512


def test_iso_has_uefi_el_torito_boot_image(built):
    p = subprocess.run(["xorriso", "-indev", str(built["iso"]), "-report_el_torito", "plain"],
                       capture_output=True, text=True, check=True)
    out = p.stdout + p.stderr
    assert "Volume id    : '%s'" % LABEL in out
    boot_lines = [l for l in out.splitlines() if l.startswith("El Torito boot img")]
    assert len(boot_lines) == 1 and " UEFI " in boot_lines[0], out
    assert "El Torito img path :   1  /EFI/efiboot.img" in out
    # Hybrid: a GPT whose ESP is the El Torito image, for USB sticks.
    p = subprocess.run(["xorriso", "-indev", str(built["iso"]), "-report_system_area", "plain"],
                       capture_output=True, text=True, check=True)
    assert "GPT partname local :   2  EFI boot partition" in p.stdout, p.stdout
    assert "GPT type GUID      :   2  28732ac11ff8d211ba4b00a0c93ec93b" in p.stdout


def test_iso_layout_and_esp_contents(built):
    iso = str(built["iso"])
    p = subprocess.run(["xorriso", "-indev", iso, "-find", "/", "-type", "f"],
                       capture_output=True, text=True, check=True)
    files = set(l.strip("'") for l in p.stdout.split())
    assert {"/LiveOS/rootfs.img", "/EFI/efiboot.img"} <= files
    esp = extract(iso, "/EFI/efiboot.img", built["tmp"] / "efiboot.img")
    listing = subprocess.run(["mdir", "-i", str(esp), "-/", "-b", "::/"],
                             capture_output=True, text=True, check=True).stdout
    for f in ("::/EFI/BOOT/BOOTX64.EFI", "::/lapis/vmlinuz", "::/lapis/initrd.img",
              "::/loader/loader.conf", "::/loader/entries/%s.conf" % BASENAME):
        assert f in listing, listing
    entry = subprocess.run(["mtype", "-i", str(esp), "::/loader/entries/%s.conf" % BASENAME],
                           capture_output=True, text=True, check=True).stdout
    assert "options lapis.live=%s " % LABEL in entry and "console=ttyS0" in entry
    img = extract(iso, "/LiveOS/rootfs.img", built["tmp"] / "rootfs.img")
    with open(img, "rb") as f:
        f.seek(1024)
        assert f.read(4) == b"\xe2\xe1\xf5\xe0"   # EROFS_SUPER_MAGIC_V1, little endian
    img.unlink()


def test_one_initrd_for_disk_and_iso(built):
    """dracut ran once: the disk's ESP and the ISO's ESP carry the same
    initrd, which has the lapis-live hooks. (Before: the iso stage ran its
    own dracut and the two initrds differed.)"""
    tmp = built["tmp"]
    esp = extract(built["iso"], "/EFI/efiboot.img", tmp / "efiboot-initrd.img")
    iso_initrd, disk_initrd = tmp / "iso-initrd", tmp / "disk-initrd"
    subprocess.run(["mcopy", "-n", "-i", str(esp), "::/lapis/initrd.img", str(iso_initrd)],
                   check=True)
    part = "%s@@%d" % (built["raw"], esp_offset(built["raw"]))
    subprocess.run(["mcopy", "-n", "-i", part, "::/%s-%s/initrd" % (NAME, VERSION),
                    str(disk_initrd)], check=True)
    assert sha256(iso_initrd) == sha256(disk_initrd)
    listing = subprocess.run(["lsinitrd", str(disk_initrd)], capture_output=True,
                             check=True).stdout.decode(errors="replace")
    assert "hooks/cmdline/20-parse-lapis-live.sh" in listing, listing[:3000]
    assert "hooks/mount/20-mount-lapis-live.sh" in listing
    assert ".lapis-dracut" not in listing                     # the build's scaffolding
    print("initrd sha256 %s, %d bytes; stages %s"
          % (sha256(disk_initrd), disk_initrd.stat().st_size, built["stages"]))


def test_iso_boots_live_to_multi_user(built):
    """The ISO as a CD-ROM: / is the overlay (tmpfs upper) on the read-only
    erofs image from the iso9660 medium."""
    work = built["tmp"] / "boot-iso"
    work.mkdir()
    v = boot("media=cdrom,readonly=on,file=%s" % built["iso"], work)
    assert v["hostname"] == "lapis-live-test", v
    assert v["root"] == "overlay", v
    assert v["lower"] == "erofs", v
    assert v["medium"] == "iso9660", v
    assert v["live"] == "lapis.live=%s" % LABEL, v
    assert v["writable"] == "yes", v
    assert v["target"] == "active", v


def test_disk_of_the_same_build_boots_to_multi_user(built):
    """The raw disk of that build, with the same (live-capable) initrd: the
    live module stays inert, / is the ext4 root partition."""
    work = built["tmp"] / "boot-raw"
    work.mkdir()
    v = boot("file=%s,if=virtio,format=raw,snapshot=on" % built["raw"], work)
    assert v["hostname"] == "lapis-live-test", v
    assert v["root"] == "ext4", v
    assert (v["lower"], v["medium"], v["live"]) == ("none", "none", "none"), v
    assert v["target"] == "active", v


@pytest.mark.rebuild   # a second build: make asan skips it (LAPIS_SKIP_REBUILD)
def test_iso_is_reproducible(cfg, built, tmp_path_factory):
    """A second build, later, with another umask, cwd and TMPDIR: the same ISO
    and raw bytes."""
    time.sleep(1.5)
    out = tmp_path_factory.mktemp("iso2") / "out"
    cwd = tmp_path_factory.mktemp("iso-elsewhere")
    other_tmp = cwd / "tmpdir"
    other_tmp.mkdir()
    again = build(cfg, out, cwd=cwd, umask=0o077, tmpdir=other_tmp)
    for fmt in ("iso", "raw"):
        assert sha256(again[fmt]) == sha256(built[fmt]), "%s differs between builds" % fmt
        print("%s: %d bytes sha256 %s" % (fmt, built[fmt].stat().st_size, sha256(built[fmt])))


def test_iso_without_kernel_fails_with_one_clear_line(testdist_repo, lapis_image, tmp_path):
    cfg = tmp_path / "nokernel.yaml"
    cfg.write_text(f"""name: nokernel
version: "1"
releasever: "12"
repos:
  - file: {testdist_repo}
packages:
  install: [bash, base-files]
output:
  formats: [iso]
""")
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, cfg)
    assert r.rc != 0, r
    assert len(r.error_lines) == 1, r
    assert "no kernel in the image" in r.error_lines[0] and "iso" in r.error_lines[0], r
    assert not out.exists() or not list(out.glob("*.iso"))
