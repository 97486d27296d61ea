"""An aarch64 image built on this (x86_64) host, proven by booting it.

`lapis image build --arch aarch64 --format raw,qcow2,oci
data/images/minimal-server.yaml` -- the x86_64 server's config, its serial
console derived from the arch (serialConsole: ttyAMA0) -- makes raw, qcow2
and an OCI layout of the same root from the test distribution's arm64
kernel, systemd, systemd-boot and its cross-built `lapis` RPM. The disk has the root-arm64 partition type
and \\EFI\\BOOT\\BOOTAA64.EFI; its UKI was made with the cross objcopy
(the host's cannot edit an aarch64 stub); its initrd holds aarch64
binaries whose every DT_NEEDED library is in the initrd (the host's ldd
cannot list a foreign binary's libraries: dracut-install put none in, and
the kernel found no working init). The qcow2 boots under QEMU TCG + AAVMF
to the lapis-image-ready marker (before `dash` was in the config, nothing
that runs /bin/sh could start and the marker never came). A second build at another time, cwd and
TMPDIR gives the same raw and qcow2 bytes.

The lapis in the image is the aarch64 build (readelf on the RPM's and the OCI
layer's /usr/bin/lapis), and in the same boot a unit runs `lapis --version`,
`rpm -q` and `lapis list installed` in the guest and prints them on the console
(the test's copy of the config adds that unit, `rpm` and `lapis-sysupdate`).
Before the cross-built RPM the build failed: the aarch64 test distribution had
no `lapis`, so the separate minimal-server-aarch64.yaml left it out.
"""

import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import time

import pytest
import yaml

from .conftest import image_env, sha256

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent.parent
BUILD = pathlib.Path(os.environ.get("LAPIS_BUILD") or SRCROOT / "build")
LAPIS = os.path.abspath(os.environ.get("LAPIS_BIN") or BUILD / "lapis")
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or BUILD / "testdist").resolve()
EXAMPLE = SRCROOT / "data" / "images" / "minimal-server.yaml"
AAVMF_CODE = "/usr/share/AAVMF/AAVMF_CODE.fd"
AAVMF_VARS = "/usr/share/AAVMF/AAVMF_VARS.fd"
EPOCH = "1700000000"
MARKER = b"lapis-image-ready: minimal-server up"
CHECK = b"lapis-check:"
# The guest's report: lapis itself, the rpmdb through rpm and through lapis.
# --dbpath: the test distribution's rpm is Debian's, whose default is ~/.rpmdb.
CHECK_SCRIPT = """#!/bin/sh
v=$(lapis --version 2>&1)
q=$(rpm --dbpath /var/lib/rpm -q lapis lapis-sysupdate 2>&1 | tr '\\n' ' ')
l=$(lapis -C list installed 'lapis*' 2>&1 | tr '\\n' ' ')
s=$(lapis-sysupdate --help 2>&1 | head -1)
echo "lapis-check: arch=$(uname -m) version=[$v] rpm=[$q] list=[$l] sysupdate=[$s]" > /dev/console
"""
CHECK_UNIT = """[Unit]
Description=Run lapis in the guest and say what it printed
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/libexec/lapis-check
"""
BOOT_TIMEOUT = 900          # TCG emulating arm64 on a shared 2-core machine: minutes
ROOT_ARM64 = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
EM_AARCH64 = 183
TOOLS = ("qemu-system-aarch64", "qemu-img", "sgdisk", "mcopy", "mdir", "dracut", "mkfs.ext4",
         "aarch64-linux-gnu-objcopy", "readelf", "zstd", "cpio")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    if not (TESTDIST / "aarch64" / ".stamp").exists():
        pytest.skip("aarch64 test distribution not built: run `make testdist`")
    for tool in TOOLS:
        assert shutil.which(tool), f"{tool} missing: run scripts/install-deps"
    assert os.path.exists(AAVMF_CODE), "AAVMF missing: run scripts/install-deps (qemu-efi-aarch64)"
    conf = yaml.safe_load(EXAMPLE.read_text())
    assert conf["repos"] == [{"file": "../../build/testdist/testdist.repo"}]
    assert conf["arch"] == "x86_64" and "lapis" in conf["packages"]["install"]
    assert conf["os"]["kernelCommandLine"] == {"serialConsole": True}     # no ttyS0 of its own
    conf["repos"] = [{"file": str(TESTDIST / "testdist.repo")}]
    conf["packages"]["install"] += ["rpm", "lapis-sysupdate"]
    conf["os"]["additionalFiles"] += [
        {"destination": "/usr/libexec/lapis-check", "content": CHECK_SCRIPT, "permissions": "0755"},
        {"destination": "/usr/lib/systemd/system/lapis-check.service", "content": CHECK_UNIT},
        {"destination": "/usr/lib/systemd/system/multi-user.target.d/lapis-check.conf",
         "content": "[Unit]\nWants=lapis-check.service\n"}]
    cfg = tmp_path_factory.mktemp("config") / "minimal-server.yaml"
    cfg.write_text(yaml.safe_dump(conf, sort_keys=False))
    return cfg


def build(cfg, out, cwd, tmpdir=None):
    env = image_env(out.parent)
    env["SOURCE_DATE_EPOCH"] = EPOCH
    if tmpdir:
        env["TMPDIR"] = str(tmpdir)
    start = time.monotonic()
    r = subprocess.run([LAPIS, "image", "build", "--no-cache", "--cachedir",
                        str(out.parent / "cache"), "--arch", "aarch64", "--format",
                        "raw,qcow2,oci", "-o", str(out), str(cfg)],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr
    print(f"aarch64 build took {time.monotonic() - start:.1f} s")
    return {p.name.split(".aarch64.", 1)[1]: p for p in out.iterdir() if ".aarch64." in p.name}


@pytest.fixture(scope="module")
def disk(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("arm1") / "out"
    return build(config, out, cwd=out.parent)


def sgdisk_info(raw, n):
    return subprocess.run(["sgdisk", "-i", str(n), str(raw)], capture_output=True, text=True,
                          check=True).stdout


def esp_image(raw):
    """mtools' image@@offset form for the ESP (partition 1)."""
    info = sgdisk_info(raw, 1)
    first = int(info.split("First sector: ", 1)[1].split()[0])
    return f"{raw}@@{first * 512}"


def pe_sections(data):
    """(machine, {name: (vma, virtual size, file offset, raw size)}) of a PE image."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe:pe + 4] == b"PE\0\0"
    machine, nsec = struct.unpack_from("<HH", data, pe + 4)
    optsize = struct.unpack_from("<H", data, pe + 20)[0]
    secs, off = {}, pe + 24 + optsize
    for i in range(nsec):
        name = data[off:off + 8].rstrip(b"\0").decode()
        vsize, vma, rsize, roff = struct.unpack_from("<IIII", data, off + 8)
        secs[name] = (vma, vsize, roff, rsize)
        off += 40
    return machine, secs


def test_gpt_root_arm64_and_esp(disk):
    """The discoverable root type for arm64 (systemd-gpt-auto-generator finds it)."""
    assert ROOT_ARM64 in sgdisk_info(disk["raw"], 2)
    assert ESP_TYPE in sgdisk_info(disk["raw"], 1)
    listing = subprocess.run(["mdir", "-b", "-i", esp_image(disk["raw"]), "::/EFI/BOOT"],
                             capture_output=True, text=True, check=True).stdout
    assert "::/EFI/BOOT/BOOTAA64.EFI" in listing, listing


@pytest.fixture(scope="module")
def uki(disk, tmp_path_factory):
    dst = tmp_path_factory.mktemp("uki") / "uki.efi"
    subprocess.run(["mcopy", "-i", esp_image(disk["raw"]), "::/EFI/Linux/minimal-server-1.0.efi",
                    str(dst)], check=True)
    boot = dst.parent / "boot.efi"
    subprocess.run(["mcopy", "-i", esp_image(disk["raw"]), "::/EFI/BOOT/BOOTAA64.EFI",
                    str(boot)], check=True)
    return dst.read_bytes(), boot.read_bytes()


def test_uki_is_arm64_with_the_stub_layout(uki):
    """Before the cross objcopy: "objcopy: --change-section-vma .osrel=0x20000
    never used" and no image at all."""
    machine, secs = pe_sections(uki[0])
    assert machine == 0xAA64
    assert pe_sections(uki[1])[0] == 0xAA64                  # systemd-boot's arm64 build
    assert [n for n in secs if n.startswith(".")][-4:] == [".osrel", ".cmdline", ".linux", ".initrd"]
    assert secs[".osrel"][0] == 0x20000 and secs[".cmdline"][0] == 0x30000
    assert secs[".linux"][0] == 0x2000000
    assert secs[".initrd"][0] >= secs[".linux"][0] + secs[".linux"][1]    # no overlap
    stub_end = max(v + s for n, (v, s, _, _) in secs.items() if n in (".text", ".data"))
    assert stub_end <= 0x20000                                # added sections past the stub
    vma, _, off, size = secs[".cmdline"]
    cmdline = uki[0][off:off + size].rstrip(b"\0").decode()
    assert "console=ttyAMA0" in cmdline and "root=" not in cmdline
    vma, _, off, size = secs[".linux"]
    assert uki[0][off + 0x38:off + 0x3C] == b"ARM\x64"      # arm64 Image header magic


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    return struct.unpack_from("<H", head, 18)[0] if head[:4] == b"\x7fELF" else None


def readelf(path, opt):
    return subprocess.run(["readelf", opt, str(path)], capture_output=True, text=True).stdout


def tags(dyn, tag):
    return [l.split("[", 1)[1].rstrip("]") for l in dyn.splitlines() if f"({tag})" in l]


def unresolved(root, exe, dyn_of):
    """DT_NEEDED names of exe's load closure not found in the initrd root, as
    ld.so searches: a name already loaded counts; each object's RUNPATH
    ($ORIGIN expanded), then the system dirs."""
    libdirs = ["/usr/lib/aarch64-linux-gnu", "/usr/lib"]
    loaded, queue, missing = set(), [exe], []
    while queue:
        obj = queue.pop()
        dyn = dyn_of(obj)
        origin = "/" + str(obj.parent.relative_to(root))
        runpath = [d.replace("$ORIGIN", origin) for rp in tags(dyn, "RUNPATH") for d in rp.split(":")]
        for lib in tags(dyn, "NEEDED"):
            if lib in loaded:
                continue
            hit = next((root / d.lstrip("/") / lib for d in runpath + libdirs
                        if (root / d.lstrip("/") / lib).exists()), None)
            if hit is None:
                missing.append(f"{exe.relative_to(root)}: {lib}")
            else:
                loaded.add(lib)
                queue.append(hit.resolve())
    return missing


def test_initrd_has_aarch64_libraries_and_drivers(uki, tmp_path):
    """Every ELF file in the initrd is aarch64, every program's interpreter
    and library closure is in the initrd; the virtio and ext4 drivers are
    there. Before the foreign ldd: no library at all, and the kernel
    panicked with "No working init found"."""
    _, secs = pe_sections(uki[0])
    _, _, off, size = secs[".initrd"]
    (tmp_path / "initrd.zst").write_bytes(uki[0][off:off + size])
    root = tmp_path / "initrd"
    root.mkdir()
    cpio = subprocess.run(f"zstd -dc {tmp_path / 'initrd.zst'} | cpio -idm --quiet", shell=True,
                          cwd=root, capture_output=True, text=True)
    assert cpio.returncode == 0, cpio.stderr
    elves = [p for p in root.rglob("*")
             if p.is_file() and not p.is_symlink() and elf_machine(p) is not None]
    assert len(elves) > 50, [str(p) for p in elves]
    assert all(elf_machine(p) == EM_AARCH64 for p in elves), [str(p) for p in elves]
    cache = {}

    def dyn_of(p):
        return cache.setdefault(p, readelf(p, "-dW"))
    programs, missing = 0, []
    for p in elves:
        interp = [l.split(": ", 1)[1].rstrip("]") for l in readelf(p, "-lW").splitlines()
                  if "program interpreter:" in l]
        if not interp:
            continue                        # a library, or a static program
        programs += 1
        if not (root / interp[0].lstrip("/")).exists():
            missing.append(f"{p.relative_to(root)}: {interp[0]}")
        missing += unresolved(root, p, dyn_of)
    assert programs > 20 and not missing, missing
    assert (root / "usr/lib/systemd/systemd").exists()
    names = {p.name.split(".ko")[0] for p in root.rglob("*.ko*")}
    assert {"virtio_blk", "virtio_pci", "virtio_scsi", "ext4"} <= names, sorted(names)
    print(f"initrd: {len(elves)} aarch64 ELF files ({programs} programs), {len(names)} modules, "
          f"{size} bytes")


def test_oci_config_says_arm64(disk):
    lay = disk["oci"]
    idx = json.loads((lay / "index.json").read_text())

    def blob(digest):
        return json.loads((lay / "blobs" / "sha256" / digest.split(":", 1)[1]).read_text())
    desc = idx["manifests"][0]
    manifest = blob(desc["digest"])
    if "manifests" in manifest:                                # an index of one arch
        desc = manifest["manifests"][0]
        manifest = blob(desc["digest"])
    cfg = blob(manifest["config"]["digest"])
    assert cfg["architecture"] == "arm64" and cfg["os"] == "linux"
    assert desc.get("platform", {"architecture": "arm64"})["architecture"] == "arm64"


@pytest.mark.rebuild   # a second build: make asan skips it (LAPIS_SKIP_REBUILD)
def test_reproducible(config, disk, tmp_path_factory):
    """Another time, cwd and TMPDIR: the same raw and qcow2 bytes."""
    time.sleep(1.5)
    out = tmp_path_factory.mktemp("arm2") / "out"
    cwd = tmp_path_factory.mktemp("elsewhere")
    again = build(config, out, cwd=cwd, tmpdir=cwd)
    for fmt in ("raw", "qcow2"):
        assert sha256(disk[fmt]) == sha256(again[fmt]), f"{fmt} differs between builds"
        print(f"{fmt}: {os.path.getsize(disk[fmt])} bytes sha256 {sha256(disk[fmt])}")


@pytest.fixture(scope="module")
def booted(disk, tmp_path_factory):
    """One UEFI boot of the qcow2 under TCG: AAVMF code read-only, a vars copy."""
    tmp = tmp_path_factory.mktemp("armboot")
    img = tmp / "boot.qcow2"
    shutil.copy(disk["qcow2"], img)
    vars_fd = tmp / "vars.fd"
    shutil.copy(AAVMF_VARS, vars_fd)
    serial = tmp / "serial.log"
    start = time.monotonic()
    qemu = subprocess.Popen([
        # cortex-a72, not max: max emulates pointer authentication (QARMA),
        # which Debian's arm64 userland uses in every function; it made
        # the boot ~2.4x slower.
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-accel", "tcg", "-m", "1536",
        "-smp", "2",
        "-drive", f"if=pflash,format=raw,readonly=on,file={AAVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={vars_fd}",
        "-drive", f"file={img},if=virtio,format=qcow2",
        "-nic", "none", "-nographic", "-monitor", "none", "-serial", f"file:{serial}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    line = check = b""
    while time.monotonic() - start < BOOT_TIMEOUT and qemu.poll() is None:
        data = serial.read_bytes() if serial.exists() else b""
        if MARKER in data and not line:
            line = data[data.index(MARKER):].split(b"\n")[0]
            wall = time.monotonic() - start
        if CHECK in data and b"\n" in data[data.index(CHECK):]:
            check = data[data.index(CHECK):].split(b"\n")[0]
        if line and check:
            break
        time.sleep(3)
    if not line:
        wall = time.monotonic() - start
    try:
        yield {"line": line, "check": check, "wall": wall, "serial": serial}
    finally:
        qemu.kill()
        qemu.wait()


def test_boots_to_marker(booted):
    """AAVMF -> BOOTAA64.EFI (systemd-boot) -> the UKI -> initrd -> the root
    found by its partition type -> multi-user.target -> the marker."""
    log = booted["serial"].read_bytes().decode(errors="replace") if booted["serial"].exists() else ""
    assert booted["line"], f"no marker after {booted['wall']:.0f} s; serial tail:\n{log[-3000:]}"
    uptime = booted["line"].decode().rsplit(" ", 1)[1]
    print(f"aarch64 boot marker after {booted['wall']:.1f} s wall, uptime {uptime}")
    assert "Detected architecture arm64" in log
    assert "Failed to start" not in log, log[-3000:]
    assert "status=203/EXEC" not in log, log[-3000:]     # e.g. no /bin/sh in the root


def test_lapis_runs_in_the_guest(booted):
    """The cross-built lapis runs on (emulated) arm64: its version, the rpmdb
    as rpm and as lapis see it. Before: no aarch64 lapis RPM to install."""
    log = booted["serial"].read_bytes().decode(errors="replace") if booted["serial"].exists() else ""
    assert booted["check"], f"no lapis-check line; serial tail:\n{log[-3000:]}"
    check = booted["check"].decode(errors="replace").strip()
    print(check)
    ver = re.search(r"project\(lapis VERSION ([0-9.]+)", (SRCROOT / "CMakeLists.txt").read_text())[1]
    assert "arch=aarch64 " in check
    assert f"version=[lapis {ver}]" in check, check
    assert f"rpm=[lapis-{ver}-1.aarch64 lapis-sysupdate-{ver}-1.aarch64 ]" in check, check
    assert "lapis.aarch64" in check.split("list=[", 1)[1], check
    assert "usage: lapis-sysupdate" in check.split("sysupdate=[", 1)[1], check


def elf_facts(path):
    """(file's description, readelf's Machine, the program interpreter)."""
    desc = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True,
                          check=True).stdout
    hdr = readelf(path, "-hW")
    machine = next(l.split(":", 1)[1].strip() for l in hdr.splitlines() if "Machine:" in l)
    interp = [l.split(": ", 1)[1].rstrip("]") for l in readelf(path, "-lW").splitlines()
              if "program interpreter:" in l]
    return desc, machine, interp


def test_testdist_lapis_rpms_are_aarch64(tmp_path):
    """The test distribution's lapis and lapis-sysupdate for aarch64: signed,
    arch aarch64, and the binaries they hold are AArch64 ELF programs for
    Debian's arm64 loader. Before: no such RPMs (x86_64 only)."""
    if not (TESTDIST / "aarch64" / ".stamp").exists():
        pytest.skip("aarch64 test distribution not built: run `make testdist`")
    pkgs = TESTDIST / "aarch64" / "Packages"
    for name in ("lapis", "lapis-sysupdate"):
        rpm = next(pkgs.glob(f"{name}-[0-9]*.aarch64.rpm"))
        qf = subprocess.run(["rpm", "-qp", "--nosignature", "--qf",
                             "%{ARCH} %{RSAHEADER:pgpsig}", str(rpm)],
                            capture_output=True, text=True, check=True).stdout
        assert qf.startswith("aarch64 RSA/SHA512") and "Key ID" in qf, qf
        dest = tmp_path / name
        dest.mkdir()
        subprocess.run(f"rpm2cpio {rpm} | cpio -idm --quiet ./usr/bin/{name}", shell=True,
                       cwd=dest, check=True)
        desc, machine, interp = elf_facts(dest / "usr/bin" / name)
        print(f"{rpm.name}: {os.path.getsize(rpm)} bytes; {desc.strip()}")
        assert "ARM aarch64" in desc and machine == "AArch64", (desc, machine)
        assert interp == ["/lib/ld-linux-aarch64.so.1"], interp


def test_oci_layer_has_the_aarch64_lapis(disk, tmp_path):
    """The OCI output of the same config holds /usr/bin/lapis, an AArch64 ELF."""
    lay = disk["oci"]

    def blob(digest):
        return lay / "blobs" / "sha256" / digest.split(":", 1)[1]
    manifest = json.loads(blob(json.loads((lay / "index.json").read_text())
                               ["manifests"][0]["digest"]).read_text())
    if "manifests" in manifest:
        manifest = json.loads(blob(manifest["manifests"][0]["digest"]).read_text())
    found = None
    for layer in manifest["layers"]:
        unz = "zstd -dc" if layer["mediaType"].endswith("zstd") else "gzip -dc"
        r = subprocess.run(f"{unz} {blob(layer['digest'])} | tar -x -C {tmp_path} usr/bin/lapis",
                           shell=True, capture_output=True)
        if r.returncode == 0 and (tmp_path / "usr/bin/lapis").exists():
            found = tmp_path / "usr/bin/lapis"
    assert found, "no usr/bin/lapis in the OCI layers"
    desc, machine, _ = elf_facts(found)
    assert machine == "AArch64", desc
