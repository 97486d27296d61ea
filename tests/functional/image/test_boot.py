"""The boot and disk stages, proven by booting (src/image/boot.c, disk.c).

A root is installed from the test distribution (build/testdist, or
LAPIS_TESTDIST) with `lapis --installroot`; the image driver
(build/image_disk_driver) runs the boot stage (dracut initrd, UKI,
systemd-boot) and the disk stage (GPT raw, qcow2, VHD, vhdx) on it, until
`lapis image build` drives them. One UEFI boot under QEMU TCG + OVMF serves
every runtime check: a unit prints a marker on the serial port after
multi-user.target, the root found by systemd-gpt-auto-generator without an
fstab has grown to the qcow2 resized to 2 GiB, and SSH answers with the
image's hostname. Two builds at different times, umasks, cwds and TMPDIRs
give the same raw, qcow2 and VHD bytes.
"""

import hashlib
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent.parent
BUILD = pathlib.Path(os.environ.get("LAPIS_BUILD") or SRCROOT / "build")
LAPIS = os.path.abspath(os.environ.get("LAPIS_BIN") or BUILD / "lapis")
DRIVER = BUILD / "image_disk_driver"
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or BUILD / "testdist")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
EPOCH = "1700000000"
MARKER = b"LAPIS-BOOT-OK"
BOOT_TIMEOUT = 300
PACKAGES = ["linux-image-amd64", "systemd", "systemd-sysv", "udev", "kmod", "openssh-server",
            "systemd-boot", "base-passwd", "bash", "coreutils", "dash", "login", "passwd",
            "util-linux", "mount", "grep", "sed", "findutils", "gzip", "iproute2"]
FORMATS = "raw,qcow2,vhd,vhdx"

MARKER_UNIT = """[Unit]
Description=Print the boot marker on the serial console
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo LAPIS-BOOT-OK uptime=$(cut -d" " -f1 /proc/uptime) rootsize=$(df -B1 --output=size / | tail -1 | tr -d " ") > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
"""

NETWORK = "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n"


def testdist():
    if not (TESTDIST / "testdist.repo").exists():
        subprocess.run([str(SRCROOT / "tests/fixtures/build-testdist"), "--arch", "x86_64",
                        str(TESTDIST)], check=True)
    return TESTDIST


def enable(root, unit, target="multi-user.target", where="usr/lib/systemd/system"):
    wants = root / "etc/systemd/system" / (target + ".wants")
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit
    if not link.is_symlink():
        link.symlink_to(f"/{where}/{unit}")


def prepare_root(root, key):
    """What image-finalize will do for the config (users, sshd, services,
    hostname), done by hand so this stage can be tested on its own."""
    etc = root / "etc"
    (etc / "hostname").write_text("lapis-disk-test\n")
    (etc / "machine-id").write_text("")
    (etc / "systemd/system").mkdir(parents=True, exist_ok=True)
    (etc / "systemd/system/lapis-marker.service").write_text(MARKER_UNIT)
    enable(root, "lapis-marker.service", where="etc/systemd/system")
    default = etc / "systemd/system/default.target"
    if default.is_symlink() or default.exists():
        default.unlink()
    default.symlink_to("/usr/lib/systemd/system/multi-user.target")
    (etc / "systemd/network").mkdir(parents=True, exist_ok=True)
    (etc / "systemd/network/50-dhcp.network").write_text(NETWORK)
    enable(root, "systemd-networkd.service")
    enable(root, "ssh.service")
    if not (etc / "ssh/sshd_config").exists():
        shutil.copy(root / "usr/share/openssh/sshd_config", etc / "ssh/sshd_config")
    subprocess.run(["ssh-keygen", "-A", "-f", str(root)], check=True, capture_output=True)
    passwd = (etc / "passwd").read_text()
    if "\nsshd:" not in passwd:
        with open(etc / "passwd", "a") as f:
            f.write("sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n")
    ssh = root / "root/.ssh"
    ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    (ssh / "authorized_keys").write_text(pathlib.Path(str(key) + ".pub").read_text())
    os.chmod(ssh / "authorized_keys", 0o600)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    for tool in ("qemu-system-x86_64", "qemu-img", "sgdisk", "mkfs.vfat", "mcopy", "dracut",
                 "mkfs.ext4", "debugfs", "objcopy", "ssh"):
        assert shutil.which(tool), f"{tool} missing: run scripts/install-deps"
    assert DRIVER.exists(), "build/image_disk_driver missing: run make all"
    base = tmp_path_factory.mktemp("image-root")
    repos = base / "repos.d"
    repos.mkdir()
    shutil.copy(testdist() / "testdist.repo", repos / "testdist.repo")
    root = base / "root"
    subprocess.run([LAPIS, "--installroot", str(root), f"--setopt=reposdir={repos}",
                    f"--setopt=cachedir={base / 'cache'}", "-y", "install", *PACKAGES],
                   check=True, capture_output=True)
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    prepare_root(root, key)
    return root, key


def build(root, out, cwd, umask=0o022, tmpdir=None):
    env = dict(os.environ)
    if tmpdir:
        env["TMPDIR"] = str(tmpdir)
    old = os.umask(umask)
    try:
        start = time.monotonic()
        r = subprocess.run([str(DRIVER), str(root), str(out), "test", "1.0", "x86_64", EPOCH,
                            FORMATS, "--", "console=ttyS0"],
                           cwd=cwd, env=env, capture_output=True, text=True)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    print(f"build took {time.monotonic() - start:.1f} s")
    return {p.suffix[1:]: p for p in out.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def disk(image_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("disk1")
    return build(image_root[0], out, cwd=out)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_gpt_layout(disk):
    """Discoverable partition types, fixed GUIDs, grow flag on the root."""
    out = subprocess.run(["sgdisk", "-p", "-i", "2", str(disk["raw"])], capture_output=True,
                         text=True, check=True).stdout
    assert "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" in out      # root-x86-64
    assert "0800000000000000" in out                          # attribute 59: grow-file-system
    esp = subprocess.run(["sgdisk", "-i", "1", str(disk["raw"])], capture_output=True,
                         text=True, check=True).stdout
    assert "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in esp
    assert os.path.getsize(disk["raw"]) % (1 << 20) == 0


def test_vhd_footer_valid(disk):
    raw, vhd = os.path.getsize(disk["raw"]), os.path.getsize(disk["vhd"])
    assert vhd == raw + 512                                   # fixed VHD: data + footer
    with open(disk["vhd"], "rb") as f:
        f.seek(-512, os.SEEK_END)
        foot = f.read()
    assert foot[:8] == b"conectix"
    assert struct.unpack(">I", foot[24:28])[0] == int(EPOCH) - 946684800
    csum = struct.unpack(">I", foot[64:68])[0]
    assert csum == (~(sum(foot[:64]) + sum(foot[68:]))) & 0xFFFFFFFF
    assert struct.unpack(">Q", foot[48:56])[0] == raw           # current size
    info = subprocess.run(["qemu-img", "info", "-f", "vpc", str(disk["vhd"])],
                          capture_output=True, text=True, check=True).stdout
    assert "vpc" in info


def test_reproducible(image_root, disk, tmp_path_factory):
    """Another time, umask, cwd and TMPDIR: the same raw, qcow2 and VHD."""
    time.sleep(1.5)
    out = tmp_path_factory.mktemp("disk2")
    cwd = tmp_path_factory.mktemp("elsewhere")
    again = build(image_root[0], out, cwd=cwd, umask=0o077, tmpdir=cwd)
    for fmt in ("raw", "qcow2", "vhd"):
        assert sha256(disk[fmt]) == sha256(again[fmt]), f"{fmt} differs between builds"
        print(f"{fmt}: {os.path.getsize(disk[fmt])} bytes sha256 {sha256(disk[fmt])}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh(port, key, *cmd):
    return subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", "-o",
                           "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o",
                           "ConnectTimeout=10", "-i", str(key), "-p", str(port), "root@127.0.0.1",
                           *cmd], capture_output=True, text=True, timeout=60)


def test_boot_qcow2_grown(image_root, disk, tmp_path):
    """UEFI boot of the qcow2 grown to 2 GiB: marker, grown root, SSH."""
    root, key = image_root
    img = tmp_path / "boot.qcow2"
    shutil.copy(disk["qcow2"], img)
    subprocess.run(["qemu-img", "resize", "-q", str(img), "2G"], check=True)
    vars_fd = tmp_path / "vars.fd"
    shutil.copy(OVMF_VARS, vars_fd)
    serial = tmp_path / "serial.log"
    port = free_port()
    start = time.monotonic()
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-machine", "q35", "-smp", "2",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={vars_fd}",
        "-drive", f"file={img},if=virtio,format=qcow2",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
        "-nographic", "-monitor", "none", "-serial", f"file:{serial}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        line = b""
        while time.monotonic() - start < BOOT_TIMEOUT and qemu.poll() is None:
            data = serial.read_bytes() if serial.exists() else b""
            if MARKER in data:
                line = data[data.index(MARKER):].split(b"\n")[0]
                break
            time.sleep(2)
        wall = time.monotonic() - start
        log = serial.read_bytes().decode(errors="replace") if serial.exists() else ""
        assert line, f"no boot marker after {wall:.0f} s; serial tail:\n{log[-3000:]}"
        fields = dict(f.split("=", 1) for f in line.decode().split()[1:])
        print(f"boot marker after {wall:.1f} s wall, uptime {fields['uptime']} s")
        rootsize = int(fields["rootsize"])
        assert rootsize > 1500 * (1 << 20), f"root not grown: {rootsize} bytes\n{log[-3000:]}"
        assert "Failed to start" not in log, log[-3000:]

        r = None
        while time.monotonic() - start < BOOT_TIMEOUT + 120:
            r = ssh(port, key, "hostname; id -un; systemctl is-active ssh systemd-networkd "
                    "lapis-growfs-root systemd-repart; findmnt -no FSTYPE /; "
                    "systemctl show -P Result lapis-marker; cat /proc/cmdline")
            if r.returncode == 0:
                break
            time.sleep(5)
        assert r and r.returncode == 0, r.stderr if r else "no ssh"
        out = r.stdout.split("\n")
        assert out[0] == "lapis-disk-test"
        assert out[1] == "root"
        assert out[2:6] == ["active"] * 4, r.stdout
        assert out[6] == "ext4", r.stdout                     # found without an fstab
        assert out[7] == "success", r.stdout
        assert "console=ttyS0" in out[8] and "root=" not in out[8], r.stdout   # UKI .cmdline
    finally:
        qemu.kill()
        qemu.wait()
