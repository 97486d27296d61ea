"""The immutable A/B container host (src/image/abhost.c, disk.c, boot.c;
docs/sysupdate.md "Disk layout", "Boot entries and counting").

One build of a container host config (usr-a/usr-a-verity/usr-b/usr-b-verity
+ a growing ext4 root, a release key, the bundle output) serves the fast
checks: the GPT (types, labels, read-only flag), slot a's PARTUUIDs are the
halves of the verity root hash, which the UKI's .cmdline carries as usrhash=;
`veritysetup verify` of usr-a against usr-a-verity with that hash; the UKI is
/EFI/Linux/lapis_1.0+3.efi; the erofs holds the factory /etc, its tmpfiles
lines and the pinned key; the root partition has an empty /usr; the bundle's
signed manifest names the same root hash and UKI. A second build gives the
same bytes. One UEFI boot under TCG then shows, from a unit ordered after
boot-complete.target and systemd-bless-boot: /usr mounted read-only from
/dev/mapper/usr, `veritysetup status usr` verified, /etc from the factory
files (and a removed one copied back by tmpfiles), the UKI blessed to
lapis_1.0.efi, and a container run by runc.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

from .conftest import LAPIS_BIN, TESTDIST, image_env, sha256

EPOCH = "1700000000"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BOOT_TIMEOUT = 900
PACKAGES = ["kernel", "systemd", "systemd-sysv", "systemd-boot", "udev", "dracut", "kmod", "dash",
            "dmsetup", "cryptsetup-bin", "e2fsprogs", "runc", "containerd", "lapis-sysupdate",
            "bash", "coreutils", "util-linux", "mount", "login", "passwd", "sed", "grep",
            "diffutils", "findutils"]
PARTS = [("esp", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "256M"),
         ("usr-a", "8484680C-9521-48C6-9C11-B0720656F69E", "1G"),
         ("usr-a-verity", "77FF5F63-E7B6-4633-ACF4-1565B864C0E6", "64M"),
         ("usr-b", "8484680C-9521-48C6-9C11-B0720656F69E", "1G"),
         ("usr-b-verity", "77FF5F63-E7B6-4633-ACF4-1565B864C0E6", "64M"),
         ("root", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "grow")]

# Runs after boot-complete.target and bless-boot; everything it finds goes to
# the serial console as "LAPIS-AB key=value" lines, then the marker.
CHECK = r"""#!/bin/sh
out() { printf '\nLAPIS-AB %s\n' "$*" > /dev/ttyS0; }   # own line: getty prints too
out "start=$(cut -d' ' -f1 /proc/uptime)"
out "usr=$(findmnt -no SOURCE,FSTYPE,OPTIONS /usr | tr ' ' '|')"
out "verity=$(veritysetup status usr | sed -n 's/^ *status: *//p')"
out "uki=$(ls /efi/EFI/Linux | tr '\n' '|')"
# (os-release is a relative symlink, which only resolves from /etc: compare a file)
cmp -s /etc/hostname /usr/share/factory/etc/hostname && out factory=same || out factory=differs
rm -f /etc/issue.net
systemd-tmpfiles --create /usr/lib/tmpfiles.d/lapis-etc.conf
cmp -s /etc/issue.net /usr/share/factory/etc/issue.net && out restored=yes || out restored=no
touch /usr/x 2>/dev/null && out usrwrite=yes || out usrwrite=no
b=/run/ctr
mkdir -p $b/rootfs/usr $b/rootfs/proc $b/rootfs/dev $b/rootfs/sys $b/rootfs/tmp $b/rootfs/etc
for l in bin lib lib64 sbin; do ln -s usr/$l $b/rootfs/$l; done
mount --bind -o ro /usr $b/rootfs/usr
cd $b && runc spec
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e 's|"sh"|"/bin/sh", "-c", "echo hello-from-runc pid=$$"|' config.json
out "runc=$(timeout 300 runc run lapis-test 2>&1 | tr '\n' '|')"
echo "LAPIS-AB-OK uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
# containerd (Type=notify) may still be starting under TCG: wait for it after the marker.
for i in $(seq 150); do systemctl is-active -q containerd && break; sleep 2; done
out "containerd=$(systemctl is-active containerd) at=$(cut -d' ' -f1 /proc/uptime)"
"""

UNIT = """[Unit]
Description=Check the A/B host after boot-complete.target
After=boot-complete.target systemd-bless-boot.service
Wants=boot-complete.target

[Service]
Type=oneshot
ExecStart=/bin/bash /usr/lib/lapis-test/check.sh

[Install]
WantedBy=multi-user.target
"""


def block(text, indent):
    return "\n".join(indent + line for line in text.rstrip("\n").split("\n"))


def config_text(repo, pub, key, formats="[raw, qcow2, bundle]", parts=None):
    parts = parts or "\n".join(f"        - {{id: {i}, type: {t}, size: {s}}}" for i, t, s in (
        ("esp", "esp", "256M"), ("usr-a", "usr", "1G"), ("usr-a-verity", "usr-verity", "64M"),
        ("usr-b", "usr", "1G"), ("usr-b-verity", "usr-verity", "64M"),
        ("root", "root", "grow")))
    return f"""name: host
version: "1.0"
releasever: "12"
repos:
  - file: {repo}
packages:
  install: [{", ".join(PACKAGES)}]
os:
  hostname: ab-host
  kernelCommandLine:
    extraCommandLine: [console=ttyS0]
  services:
    enable: [containerd.service, lapis-ab-check.service]
  additionalFiles:
    - destination: /usr/lib/lapis-test/check.sh
      content: |
{block(CHECK, "        ")}
    - destination: /usr/lib/systemd/system/lapis-ab-check.service
      content: |
{block(UNIT, "        ")}
storage:
  disks:
    - partitions:
{parts}
sysupdate:
  publicKeys: [{pub}]
  url: http://updates.example.org/host/
  signingKey: {key}
  minFromVersion: "0.9"
output:
  formats: {formats}
"""


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    if not (TESTDIST / "x86_64" / ".stamp").exists():
        pytest.skip("test distribution not built: run `make testdist`")
    for tool in ("sgdisk", "mcopy", "objcopy", "veritysetup", "mkfs.erofs", "dump.erofs",
                 "debugfs", "openssl"):
        assert shutil.which(tool), f"{tool} missing: run scripts/install-deps"
    base = tmp_path_factory.mktemp("keys")
    key, pub = base / "release.key", base / "release.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    return key, pub


def build(cfg, out, cwd=None, umask=0o022):
    env = image_env(out.parent)
    env["SOURCE_DATE_EPOCH"] = EPOCH
    old = os.umask(umask)
    try:
        start = time.monotonic()
        r = subprocess.run([LAPIS_BIN, "image", "build", "--no-cache", "--cachedir",
                            str(out.parent / "cache"), "-o", str(out), str(cfg)],
                           cwd=cwd or out.parent, env=env, capture_output=True, text=True,
                           timeout=1800)
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    print(f"build took {time.monotonic() - start:.1f} s\n{r.stderr[-1500:]}")
    return out


@pytest.fixture(scope="module")
def host(keys, tmp_path_factory):
    base = tmp_path_factory.mktemp("host")
    cfg = base / "host.yaml"
    cfg.write_text(config_text(TESTDIST / "testdist.repo", keys[1], keys[0]))
    out = build(cfg, base / "out")
    return {"cfg": cfg, "out": out, "raw": out / "host-1.0.x86_64.raw",
            "qcow2": out / "host-1.0.x86_64.qcow2", "bundle": out / "host-1.0.x86_64.bundle",
            "tmp": base}


def partitions(raw):
    """label -> (number, first byte, size in bytes, type GUID, unique GUID, attributes)."""
    out = subprocess.run(["sgdisk", "-p", str(raw)], capture_output=True, text=True,
                         check=True).stdout
    parts = {}
    for line in out.splitlines():
        m = re.match(r"\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+\S+\s+(\S+)$", line)
        if not m:
            continue
        n, first, last, label = int(m[1]), int(m[2]), int(m[3]), m[4]
        info = subprocess.run(["sgdisk", "-i", str(n), str(raw)], capture_output=True,
                              text=True, check=True).stdout
        field = lambda name: re.search(name + r": (\S+)", info)[1]
        parts[label] = (n, first * 512, (last - first + 1) * 512, field("Partition GUID code"),
                        field("Partition unique GUID"), field("Attribute flags"))
    return parts


def extract(raw, part, dst):
    _, off, size = part[:3]
    with open(raw, "rb") as f, open(dst, "wb") as o:
        f.seek(off)
        left = size
        while left:
            chunk = f.read(min(left, 8 << 20))
            if chunk.count(0) == len(chunk):
                o.seek(len(chunk), os.SEEK_CUR)     # keep it sparse
            else:
                o.write(chunk)
            left -= len(chunk)
        o.truncate(size)
    return dst


def esp_file(raw, parts, name, dst):
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    subprocess.run(["mcopy", "-n", "-i", f"{raw}@@{parts['esp'][1]}", f"::{name}", str(dst)],
                   env=env, check=True)
    return dst


def uki_cmdline(host, parts):
    uki = esp_file(host["raw"], parts, "/EFI/Linux/lapis_1.0+3.efi", host["tmp"] / "uki.efi")
    cmd = host["tmp"] / "cmdline"
    subprocess.run(["objcopy", "-O", "binary", "--only-section=.cmdline", str(uki), str(cmd)],
                   check=True)
    return cmd.read_bytes().decode().strip("\0\n ")


def test_gpt_slots(host):
    """DPS types, labels, fixed sizes, the read-only flag on the slots, the
    grow flag on the root. (Before: `type: usr` was an unknown value.)"""
    parts = partitions(host["raw"])
    assert list(parts) == [p[0] for p in PARTS]
    for label, guid, size in PARTS:
        assert parts[label][3] == guid, (label, parts[label])
        if size not in ("grow",):
            want = int(size[:-1]) << (30 if size.endswith("G") else 20)
            assert parts[label][2] == want, (label, parts[label])
    for label in ("usr-a", "usr-a-verity", "usr-b", "usr-b-verity"):
        assert parts[label][5] == "1000000000000000", (label, parts[label])   # bit 60
    assert parts["root"][5] == "0800000000000000"                             # bit 59
    print(f"raw {os.path.getsize(host['raw'])} bytes, qcow2 {os.path.getsize(host['qcow2'])}")


def test_partuuids_are_the_root_hash_and_verity_verifies(host):
    """usrhash= of the UKI's .cmdline: its halves are slot a's PARTUUIDs and
    `veritysetup verify` accepts usr-a against usr-a-verity with it; slot b is
    empty (zeros). (Before: no UKI lapis_1.0+3.efi, no usrhash=.)"""
    parts = partitions(host["raw"])
    cmdline = uki_cmdline(host, parts)
    m = re.search(r"usrhash=([0-9a-f]{64})", cmdline)
    assert m, cmdline
    h = m[1]
    assert "mount.usr=/dev/mapper/usr" in cmdline and "mount.usrfstype=erofs" in cmdline, cmdline
    assert "console=ttyS0" in cmdline and "root=" not in cmdline.replace("mount.usr", ""), cmdline
    uuid = lambda x: f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}".upper()
    assert parts["usr-a"][4] == uuid(h[:32]), parts["usr-a"]
    assert parts["usr-a-verity"][4] == uuid(h[32:]), parts["usr-a-verity"]
    assert parts["usr-b"][4] != parts["usr-a"][4]
    usr = extract(host["raw"], parts["usr-a"], host["tmp"] / "usr-a.img")
    ver = extract(host["raw"], parts["usr-a-verity"], host["tmp"] / "usr-a-verity.img")
    r = subprocess.run(["veritysetup", "verify", str(usr), str(ver), h], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = "0" * 64
    r = subprocess.run(["veritysetup", "verify", str(usr), str(ver), bad], capture_output=True,
                       text=True)
    assert r.returncode != 0                                  # the check can fail
    with open(host["raw"], "rb") as f:
        for label in ("usr-b", "usr-b-verity"):
            f.seek(parts[label][1])
            assert f.read(1 << 20) == bytes(1 << 20), f"{label} is not empty"
    host["usrhash"] = h


def test_usr_erofs_content(host):
    """/usr is an erofs holding the factory /etc, the tmpfiles lines that copy
    it back, the pinned key and server, the root-grow files; the root ext4 has
    /etc and /var and an empty /usr. (Before: no usr partition at all.)"""
    parts = partitions(host["raw"])
    usr = host["tmp"] / "usr-a.img"
    if not usr.exists():
        extract(host["raw"], parts["usr-a"], usr)
    for path in ("/share/factory/etc/os-release", "/lib/tmpfiles.d/lapis-etc.conf",
                 "/lib/lapis-sysupdate/keys.d/release.pem", "/lib/lapis-sysupdate/sysupdate.conf",
                 "/lib/repart.d/50-lapis-root.conf", "/bin/runc", "/bin/lapis-sysupdate",
                 "/lib/systemd/systemd-bless-boot"):
        r = subprocess.run(["dump.erofs", f"--path={path}", str(usr)], capture_output=True,
                           text=True)
        assert r.returncode == 0 and ("File :" in r.stdout or "Path :" in r.stdout), \
            f"{path} missing from /usr: {r.stdout}{r.stderr}"
    root = extract(host["raw"], parts["root"], host["tmp"] / "root.img")
    ls = lambda p: subprocess.run(["debugfs", "-R", f"ls -p {p}", str(root)], capture_output=True,
                                  text=True, check=True).stdout
    names = lambda p: {l.split("/")[5] for l in ls(p).splitlines() if l.count("/") >= 6}
    assert names("/usr") <= {".", ".."}, ls("/usr")
    assert {"etc", "var", "efi", "usr"} <= names("/"), ls("/")
    assert "os-release" in names("/etc") or "os-release" in ls("/etc"), ls("/etc")


def test_tmpfiles_lines_cover_etc(host):
    """Every /etc entry has its line ("d" with mode and owner, "C" otherwise),
    sorted, so the file is the same in every build."""
    parts = partitions(host["raw"])
    usr = host["tmp"] / "usr-a.img"
    if not usr.exists():
        extract(host["raw"], parts["usr-a"], usr)
    dst = host["tmp"] / "x"
    shutil.rmtree(dst, ignore_errors=True)
    r = subprocess.run(["fsck.erofs", f"--extract={dst}", str(usr)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = (dst / "lib/tmpfiles.d/lapis-etc.conf").read_text().splitlines()
    body = [l for l in lines if not l.startswith("#")]
    assert "C /etc/os-release - - - - -" in body or "C /etc/passwd - - - - -" in body, body[:20]
    assert any(re.match(r"d /etc/ssh 0755 0 0 -$", l) for l in body) or \
        any(l.startswith("d /etc/systemd 0755 0 0") for l in body), body[:20]
    paths = [l.split()[1] for l in body]
    assert len(paths) > 50 and paths == sorted(paths, key=lambda p: p.split("/")), paths[:20]


def test_bundle_matches_the_image(host):
    """The bundle output: a signed manifest whose root hash is the image's
    usrhash and whose UKI payload is the ESP's UKI. (Before: 'bundle' was an
    unknown format.)"""
    parts = partitions(host["raw"])
    h = host.get("usrhash") or re.search(r"usrhash=(\w+)", uki_cmdline(host, parts))[1]
    man = (host["bundle"] / "1.0" / "manifest").read_text()
    assert f"verity-root-hash {h}\n" in man, man
    assert "version 1.0\n" in man and "arch x86_64\n" in man and "min-from-version 0.9\n" in man
    assert (host["bundle"] / "1.0" / "manifest.sig").read_text().startswith("ed25519 ")
    uki = esp_file(host["raw"], parts, "/EFI/Linux/lapis_1.0+3.efi", host["tmp"] / "uki2.efi")
    m = re.search(r"^payload uki uki\.zst (\d+) ([0-9a-f]{64}) ", man, re.M)
    assert m and int(m[1]) == os.path.getsize(uki) and m[2] == sha256(uki), man
    sums = (host["out"] / "SHA256SUMS").read_text()
    assert "host-1.0.x86_64.bundle/1.0/manifest" in sums, sums


def test_reproducible(host, keys, tmp_path_factory):
    """Another build (umask, cwd): the same raw and the same bundle manifest."""
    time.sleep(1.5)
    base = tmp_path_factory.mktemp("host2")
    cfg = base / "host.yaml"
    cfg.write_text(host["cfg"].read_text())
    out = build(cfg, base / "out", cwd=tmp_path_factory.mktemp("elsewhere"), umask=0o077)
    a, b = sha256(host["raw"]), sha256(out / "host-1.0.x86_64.raw")
    print(f"raw sha256 {a}")
    assert a == b, "raw differs between builds"
    assert (host["bundle"] / "1.0" / "manifest").read_bytes() == \
        (out / "host-1.0.x86_64.bundle" / "1.0" / "manifest").read_bytes()


def test_slot_too_small(keys, tmp_path, lapis_image):
    """A usr slot smaller than /usr fails the build with one line naming it."""
    parts = "\n".join(f"        - {{id: {i}, type: {t}, size: {s}}}" for i, t, s in (
        ("esp", "esp", "256M"), ("usr-a", "usr", "64M"), ("usr-a-verity", "usr-verity", "64M"),
        ("root", "root", "grow")))
    cfg = tmp_path / "small.yaml"
    cfg.write_text(config_text(TESTDIST / "testdist.repo", keys[1], keys[0], "[raw]", parts))
    r = lapis_image("build", "--no-cache", "-o", tmp_path / "out", cfg)
    assert r.rc != 0
    assert any("partition usr-a (64 MiB) is too small for /usr" in l for l in r.error_lines), r
    assert not (tmp_path / "out" / "host-1.0.x86_64.raw").exists()


def test_bad_config_errors(keys, tmp_path, lapis_image):
    """One line naming the file, line and key, for the A/B rules."""
    base = 'name: t\nversion: "1"\npackages: {install: [bash]}\n'
    cases = [
        ("storage: {disks: [{partitions: [{id: esp, type: esp, size: 256M}, {id: usr-a, type: usr, "
         "size: 1G}, {id: root, type: root, size: grow}]}]}\n",
         "4: storage.disks[0].partitions[1]: usr-a has no hash partition"),
        ("output: {formats: [bundle]}\n", "4: output.formats: bundle is the A/B host's update"),
        ("sysupdate: {publicKeys: [nope.pem]}\n", "4: sysupdate.publicKeys[0]: cannot use"),
        ("sysupdate: {tries: 0}\n", "4: sysupdate.tries: invalid value '0' (expected a whole number from 1 to 16"),
        ("storage: {disks: [{partitions: [{id: esp, type: esp, size: 256M}, {id: usr-a, type: usr, size: 1G}, "
         "{id: usr-a-verity, type: usr-verity, size: 64M}, {id: root, type: root, size: grow}]}]}\n"
         "output: {formats: [raw, iso]}\n", "5: output.formats: iso cannot hold the A/B host"),
    ]
    for text, want in cases:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(base + text)
        r = lapis_image("build", "-o", tmp_path / "out", cfg)
        assert r.rc != 0 and len(r.error_lines) == 1, r
        assert r.error_lines[0].startswith(f"lapis: error: {cfg}:{want}"), r
        assert not (tmp_path / "out").exists()      # refused before anything is written


@pytest.fixture(scope="module")
def booted(host):
    """One UEFI boot of the qcow2 grown to 4 GiB under TCG."""
    tmp = host["tmp"] / "boot"
    tmp.mkdir()
    img = tmp / "boot.qcow2"
    shutil.copy(host["qcow2"], img)
    subprocess.run(["qemu-img", "resize", "-q", str(img), "4G"], check=True)
    vars_fd = tmp / "vars.fd"
    shutil.copy(OVMF_VARS, vars_fd)
    serial = tmp / "serial.log"
    start = time.monotonic()
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-m", "1536", "-machine", "q35", "-smp", "2",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={vars_fd}",
        "-drive", f"file={img},if=virtio,format=qcow2",
        "-nic", "none", "-nographic", "-monitor", "none", "-serial", f"file:{serial}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = b""

    def wait(what, timeout):
        nonlocal data
        while time.monotonic() - start < timeout and qemu.poll() is None:
            data = serial.read_bytes() if serial.exists() else b""
            if what in data:
                break
            time.sleep(3)

    def fields():
        text = data.decode(errors="replace")
        return text, dict(m.groups() for m in re.finditer(r"LAPIS-AB (\w+)=([^\r\n]*)", text))
    try:
        wait(b"LAPIS-AB-OK", BOOT_TIMEOUT)
        wall = time.monotonic() - start
        text, f = fields()
        yield {"text": text, "fields": f, "wall": wall, "wait": wait, "more": fields}
    finally:
        qemu.kill()
        qemu.wait()


def test_boot_verified_usr_factory_etc_blessed_runc(booted, host):
    """The booted host: /usr read-only from /dev/mapper/usr and verified, /etc
    from the factory, tmpfiles restores a removed file, /usr refuses writes,
    the UKI was blessed (lapis_1.0+3.efi -> lapis_1.0.efi), runc runs a
    container."""
    text, f = booted["text"], booted["fields"]
    assert "LAPIS-AB-OK" in text, f"no marker after {booted['wall']:.0f} s:\n{text[-4000:]}"
    up = re.search(r"LAPIS-AB-OK uptime=([\d.]+)", text)[1]
    print(f"marker after {booted['wall']:.1f} s wall, uptime {up} s")
    src, fstype, opts = [x for x in f["usr"].split("|") if x][:3]
    assert src == "/dev/mapper/usr" and fstype == "erofs", f
    assert opts.split(",")[0] == "ro", f
    assert f["verity"] == "verified", f
    assert f["factory"] == "same" and f["restored"] == "yes", f
    assert f["usrwrite"] == "no", f
    assert f["uki"] == "lapis_1.0.efi|", f                # blessed: the counter is gone
    assert "hello-from-runc pid=1" in f["runc"], f


def test_boot_containerd_active(booted):
    """containerd.service (Type=notify) comes up on the booted host."""
    assert "LAPIS-AB-OK" in booted["text"], "the host did not boot"
    booted["wait"](b"LAPIS-AB containerd=", BOOT_TIMEOUT + 400)
    text, f = booted["more"]()
    assert f.get("containerd", "").startswith("active "), f"{f}\n{text[-3000:]}"
    print(f"containerd {f['containerd']}")
