"""ISO output (src/image/iso.c, issue 12): a UEFI-bootable ISO 9660 image
that boots the composed root live (erofs root image + tmpfs overlay).

Until `lapis image build` drives the stages, the root is made with
`lapis --installroot` from the test distribution and the stage is run by
build/lapis-iso-driver (tests/image/iso_driver.c). One QEMU boot (TCG, OVMF)
checks the whole chain; a marker unit prints what the test asserts.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent.parent
BUILD = SRCROOT / "build"
LAPIS_BIN = os.path.abspath(os.environ.get("LAPIS_BIN") or BUILD / "lapis")
DRIVER = pathlib.Path(LAPIS_BIN).parent / "lapis-iso-driver"
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or BUILD / "testdist").resolve()
OVMF_CODE = pathlib.Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = pathlib.Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
TOOLS = ("xorriso", "mkfs.erofs", "mkfs.vfat", "mcopy", "dracut", "qemu-system-x86_64")

EPOCH = "1767225600"   # 2026-01-01
NAME, VERSION, ARCH = "isotest", "1.0", "x86_64"
LABEL = "ISOTEST-1.0"
PACKAGES = ("linux-image-amd64", "systemd", "systemd-sysv", "udev", "systemd-boot",
            "bash", "coreutils", "util-linux", "mount", "dracut", "kmod", "dash",
            "base-passwd", "base-files", "grep", "sed", "findutils", "gzip", "login")
BOOT_TIMEOUT = 400     # seconds: TCG on a machine shared by several builds

pytestmark = [
    pytest.mark.skipif(not (TESTDIST / "testdist.repo").exists(),
                       reason="test distribution not built: run `make testdist`"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS) or not OVMF_CODE.exists(),
                       reason="image tools missing: run scripts/install-deps"),
]

MARKER_UNIT = """\
[Unit]
Description=Lapis test marker (prints what test_iso.py checks)
After=multi-user.target

[Service]
Type=oneshot
StandardOutput=tty
TTYPath=/dev/ttyS0
ExecStart=/bin/sh -c 'echo LAPIS-MARKER-BEGIN; \
echo "root=$(findmnt -no FSTYPE,SOURCE /)"; \
echo "lower=$(findmnt -no FSTYPE /run/lapis-live/ro)"; \
echo "medium=$(findmnt -no FSTYPE,SOURCE /run/lapis-live/medium)"; \
echo "hostname=$(cat /etc/hostname)"; \
echo "cmdline=$(cat /proc/cmdline)"; \
echo "target=$(systemctl is-active multi-user.target)"; \
touch /written && echo "writable=yes"; \
echo LAPIS-MARKER-END'

[Install]
WantedBy=multi-user.target
"""


def make_root(root, cache):
    """The root a compose + finalize would make, minimally (no scriptlets)."""
    reposd = root.parent / (root.name + "-repos")
    reposd.mkdir(parents=True, exist_ok=True)
    (reposd / "testdist.repo").write_text((TESTDIST / "testdist.repo").read_text())
    subprocess.run([LAPIS_BIN, "--installroot", str(root), "--setopt=reposdir=%s" % reposd,
                    "--setopt=cachedir=%s" % cache, "-y", "-q", "install"] + list(PACKAGES),
                   check=True, timeout=600, stdout=subprocess.DEVNULL)
    kver = sorted(p.name for p in (root / "usr/lib/modules").iterdir())[0]
    subprocess.run(["depmod", "-b", str(root), kver], check=True)
    (root / "etc/hostname").write_text("lapis-live-test\n")
    (root / "etc/machine-id").write_text("")          # not first boot: no firstboot wizard
    (root / "etc/locale.conf").write_text("LANG=C.UTF-8\n")
    (root / "etc/localtime").symlink_to("../usr/share/zoneinfo/UTC")
    units = root / "etc/systemd/system"
    (units / "lapis-marker.service").write_text(MARKER_UNIT)
    (units / "multi-user.target.wants").mkdir(parents=True, exist_ok=True)
    (units / "multi-user.target.wants/lapis-marker.service").symlink_to("../lapis-marker.service")
    # A getty on the serial console would hang up the marker's tty mid-print.
    (units / "serial-getty@ttyS0.service").symlink_to("/dev/null")
    return kver


def build_iso(root, stage, kver, cwd, umask=0o022, tmpdir=None):
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    if tmpdir:
        env["TMPDIR"] = str(tmpdir)
    stage.mkdir(parents=True)
    old = os.umask(umask)
    try:
        t0 = time.monotonic()
        p = subprocess.run([str(DRIVER), str(root), str(stage), NAME, VERSION, ARCH, kver,
                            "console=ttyS0"], cwd=cwd, env=env, capture_output=True,
                           text=True, timeout=900)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["%s-%s.%s.iso" % (NAME, VERSION, ARCH)]
    return stage / p.stdout.strip(), time.monotonic() - t0


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def boot(iso, workdir, timeout=BOOT_TIMEOUT):
    """Boot iso as a CD-ROM under OVMF; return the serial console text once the
    marker's END line is there (or fail with the console's tail)."""
    vars_fd = workdir / "vars.fd"
    shutil.copyfile(OVMF_VARS, vars_fd)
    serial = workdir / "serial.log"
    q = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "1024",
         "-nographic", "-no-reboot", "-monitor", "none", "-display", "none",
         "-drive", "if=pflash,format=raw,readonly=on,file=%s" % OVMF_CODE,
         "-drive", "if=pflash,format=raw,file=%s" % vars_fd,
         "-drive", "media=cdrom,readonly=on,file=%s" % iso,
         "-serial", "file:%s" % serial],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = serial.read_text(errors="replace") if serial.exists() else ""
            if "LAPIS-MARKER-END" in text:
                return text
            if q.poll() is not None:
                break
            time.sleep(2)
        text = serial.read_text(errors="replace") if serial.exists() else ""
        pytest.fail("no marker on the serial console within %d s; console tail:\n%s"
                    % (timeout, text[-3000:]))
    finally:
        q.kill()
        q.wait()


def marker_values(text):
    body = text.split("LAPIS-MARKER-BEGIN", 1)[1].split("LAPIS-MARKER-END", 1)[0]
    # Kernel messages share the console: keep only the marker's own lines.
    keys = ("root", "lower", "medium", "hostname", "cmdline", "target", "writable")
    vals = {}
    for line in body.replace("\r", "").splitlines():
        k, sep, v = line.partition("=")
        if sep and k in keys:
            vals[k] = v.strip()
    return vals


def private_tmp():
    # Not pytest's numbered dirs: other pytest runs on the machine rotate them away.
    return pathlib.Path(tempfile.mkdtemp(prefix="lapis-test-iso-"))


@pytest.fixture(scope="module")
def built():
    tmp = private_tmp()
    root = tmp / "root"
    kver = make_root(root, tmp / "cache")
    iso, secs = build_iso(root, tmp / "stage", kver, cwd=tmp)
    yield {"tmp": tmp, "root": root, "kver": kver, "iso": iso, "seconds": secs}
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def own_tmp():
    tmp = private_tmp()
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


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
    esp = built["tmp"] / "efiboot.img"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract",
                    "/EFI/efiboot.img", str(esp)], check=True, capture_output=True)
    listing = subprocess.run(["mdir", "-i", str(esp), "-/", "-b", "::/"],
                             capture_output=True, text=True, check=True).stdout
    for f in ("::/EFI/BOOT/BOOTX64.EFI", "::/lapis/vmlinuz", "::/lapis/initrd.img",
              "::/loader/loader.conf", "::/loader/entries/%s-%s.%s.conf" % (NAME, VERSION, ARCH)):
        assert f in listing, listing
    entry = subprocess.run(["mtype", "-i", str(esp),
                            "::/loader/entries/%s-%s.%s.conf" % (NAME, VERSION, ARCH)],
                           capture_output=True, text=True, check=True).stdout
    assert "options lapis.live=%s " % LABEL in entry and "console=ttyS0" in entry
    # The root image is erofs and the root holds nothing of the build's scaffolding.
    img = built["tmp"] / "rootfs.img"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract",
                    "/LiveOS/rootfs.img", str(img)], check=True, capture_output=True)
    with open(img, "rb") as f:
        f.seek(1024)
        assert f.read(4) == b"\xe2\xe1\xf5\xe0"   # EROFS_SUPER_MAGIC_V1, little endian
    assert not (built["root"] / ".lapis-dracut").exists()
    img.unlink()


def test_iso_boots_live_to_multi_user(built):
    text = boot(built["iso"], built["tmp"])
    v = marker_values(text)
    # / is the overlay (tmpfs upper) on the read-only erofs image from the medium.
    assert v["root"].split()[0] == "overlay", v
    assert v["lower"] == "erofs", v
    assert v["medium"].split()[0] == "iso9660", v
    assert v["hostname"] == "lapis-live-test"
    assert "lapis.live=%s" % LABEL in v["cmdline"]
    assert v.get("writable") == "yes"
    assert v["target"] == "active", v


def test_iso_is_reproducible(built, own_tmp):
    """A second build, later, with another umask, cwd and TMPDIR, from the same
    root content whose directories and build-made files are newer (as in a
    rebuilt root; package files keep their mtimes), gives the same bytes.
    (Two composes do not give the same root content here: the rpmdb records
    install times; that is the compose stage's part.)"""
    root = own_tmp / "root"
    subprocess.run(["cp", "-a", str(built["root"]), str(root)], check=True)
    subprocess.run(["find", str(root), "(", "-type", "d", "-o", "-newermt", "@" + EPOCH, ")",
                    "-exec", "touch", "-h", "{}", "+"], check=True)
    other_tmp = own_tmp / "tmpdir"
    other_tmp.mkdir()
    (own_tmp / "cwd").mkdir()
    iso, _ = build_iso(root, own_tmp / "stage", built["kver"], cwd=own_tmp / "cwd",
                       umask=0o077, tmpdir=other_tmp)
    assert sha256(iso) == sha256(built["iso"])


def test_iso_without_kernel_fails_with_one_clear_line(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "stage").mkdir()
    p = subprocess.run([str(DRIVER), str(tmp_path / "root"), str(tmp_path / "stage"),
                        NAME, VERSION, ARCH, "0.0-none"],
                       env=dict(os.environ, SOURCE_DATE_EPOCH=EPOCH),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "add dracut to packages.install" in lines[0], p.stderr
    assert list((tmp_path / "stage").glob("*.iso")) == []
