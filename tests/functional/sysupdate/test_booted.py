"""lapis-sysupdate on a booted A/B host (issue 13, "Proved by booting" 1-5):
QEMU (OVMF, TCG) on a host image that `lapis image build` makes with the
A/B layout. The bundles are a second virtual disk (an ext4 image, mkfs.ext4
-d) holding the signed indexes, the bundles and the driver script; the
image's sysupdate.conf points the agent at it as a file:// URL, so the guest
needs no network. A unit of the image runs the driver after
lapis-sysupdate-mark-good.service on every boot; it prints what it sees on
the serial port as "LAPIS-T KEY VALUE" lines. Five boots in two QEMU runs:

  boot 1 (1.0, factory): status says slot a good and booted, slot b empty;
    the agent's units ran; `update` stages 2.0 in slot b, writes the UKI
    lapis_2.0+3.efi into the mounted ESP and /run/reboot-required (also seen
    as /var/run/reboot-required: /var/run -> ../run); reboot.
  boot 2 (2.0): /usr is slot b's verity device, systemd-boot chose 2.0,
    boot-complete.target was reached, systemd-bless-boot renamed the UKI to
    lapis_2.0.efi and mark-good made slot b good; `update` stages 3.0 (whose
    /usr carries a failing health check) in slot a with one try (2.0's image
    config has sysupdate.tries: 1: lapis_3.0+1.efi); reboot.
  boot 3 (3.0): the check fails, boot-complete.target is not reached,
    lapis-sysupdate-fallback.service reboots; systemd-boot counts +1 down.
  boot 4 (2.0): systemd-boot skipped lapis_3.0+0-1.efi by itself; `boot`
    marked 3.0 failed and rolled back; `update` does not retry it. Test 5:
    five bad bundles are refused with slot a's sha256 unchanged, and a byte
    flipped in slot a is an I/O error through veritysetup open. Test 4: the
    agent stages 4.0 into slot a and is stopped (SIGSTOP) once it recorded
    progress; the test kills QEMU (-9): the power cut.
  boot 5 (2.0, a new QEMU on the same disk and EFI variables): slot a is
    "writing"; the same update resumes, verifies and stages 4.0; poweroff.
"""

import base64
import json
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent.parent
BUILD = pathlib.Path(os.environ.get("LAPIS_BIN") or SRCROOT / "build" / "lapis").parent
LAPIS = os.path.abspath(BUILD / "lapis")
AGENT = os.path.abspath(BUILD / "lapis-sysupdate")
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or SRCROOT / "build" / "testdist")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
SESSION_TIMEOUT = 1800     # five TCG boots and three updates inside the guest, on a loaded machine
BUILD_TIMEOUT = 1500
PACKAGES = ["kernel", "systemd", "systemd-sysv", "systemd-boot", "udev", "dracut", "kmod", "dmsetup",
            "cryptsetup-bin", "e2fsprogs", "lapis-sysupdate", "bash", "dash", "coreutils", "util-linux",
            "mount", "login", "passwd", "grep", "sed"]

DRIVER_UNIT = r"""[Unit]
Description=test_booted.py's driver (runs the script of the bundle disk)
After=multi-user.target lapis-sysupdate-mark-good.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for i in $(seq 60); do [ -e /dev/disk/by-label/bundles ] && break; sleep 1; done; mkdir -p /run/bundles && mount -o ro /dev/disk/by-label/bundles /run/bundles && exec /bin/sh /run/bundles/driver.sh'
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""

DRIVER = r"""#!/bin/sh
# test_booted.py: what this boot sees, on the serial port; then update and
# reboot (1.0) or power off.
say() { printf 'LAPIS-T %s %s\n' "$1" "$2" > /dev/ttyS0; }
v=$(sed -n 's/^IMAGE_VERSION=//p' /usr/lib/os-release)
say version "$v"
say status "$(lapis-sysupdate --json status 2>&1)"
say ukis "$(ls /efi/EFI/Linux | tr '\n' ' ')"
say active "$(systemctl is-active lapis-sysupdate-boot.service lapis-sysupdate-health.service lapis-sysupdate-mark-good.service boot-complete.target systemd-bless-boot.service | tr '\n' ' ')"
say enabled "$(systemctl is-enabled lapis-sysupdate.timer lapis-sysupdate-boot.service lapis-sysupdate-health.service lapis-sysupdate-mark-good.service | tr '\n' ' ')"
say usr "$(findmnt -no SOURCE,FSTYPE,OPTIONS /usr | tr -s ' ' ' ')"
say cmdline "$(cat /proc/cmdline)"
say health "$(lapis-sysupdate --json health 2>&1)"
say mountinfo "$(base64 -w0 /proc/self/mountinfo)"
say partuuids "$(ls -l /dev/disk/by-partuuid/ | sed -n 's/.* \([0-9a-f-]*\) -> .*\/\(vda[0-9]*\)$/\2=\1/p' | tr '\n' ' ')"
st=$(lapis-sysupdate --json status)
stage() {   # stage the newest version of $1 and reboot into it
    say check "$(lapis-sysupdate --json --url file:///run/bundles/$1/ check 2>&1)"
    start=$(cut -d' ' -f1 /proc/uptime)
    say update "$(lapis-sysupdate --json --url file:///run/bundles/$1/ update 2>&1)"
    say update-seconds "$start $(cut -d' ' -f1 /proc/uptime)"
    say reboot-required "$(cat /run/reboot-required.pkgs) $(cat /run/reboot-required)"
    say varrun "$(readlink /var/run) $(cat /var/run/reboot-required.pkgs)"
    say status-staged "$(lapis-sysupdate --json status 2>&1)"
    say ukis-staged "$(ls /efi/EFI/Linux | tr '\n' ' ')"
    say reboot now
    systemctl reboot
}
slot_a() { sha256sum /dev/disk/by-partlabel/usr-a /dev/disk/by-partlabel/usr-a-verity | cut -c1-64 | tr '\n' ' '; }
refusals() {   # test 5: each bundle is refused, slot a (inactive) is not written
    say sha-before "$(slot_a)"
    for d in badsig unknown trunc mismatch old; do
        say refuse-$d "$(lapis-sysupdate --json --url file:///run/bundles/p4-$d/ update 2>&1 | tr '\n' ' ')"
    done
    say sha-after "$(slot_a)"
}
verity_flip() {   # test 5: a flipped byte of slot a (3.0) is an I/O error through dm-verity
    root=$(echo "$st" | sed -n 's/.*"slot": "a"[^}]*"verity_root_hash": "\([0-9a-f]\{64\}\)".*/\1/p')
    dev=/dev/disk/by-partlabel/usr-a
    printf '\377\377\377\377' | dd of=$dev bs=1 seek=1048676 count=4 conv=notrunc,fsync status=none
    say flipped "$(dd if=$dev bs=1 skip=1048676 count=4 status=none | od -An -tx1)"
    veritysetup open $dev lapis-t-flip /dev/disk/by-partlabel/usr-a-verity "$root"; say verity-open "$?"
    dd if=/dev/mapper/lapis-t-flip of=/dev/null bs=4096 count=1 iflag=direct status=none; say verity-read-good "$?"
    say verity-read-bad "$(dd if=/dev/mapper/lapis-t-flip of=/dev/null bs=4096 skip=256 count=1 iflag=direct 2>&1; echo rc=$?)"
    veritysetup close lapis-t-flip
    say verity-dmesg "$(dmesg | grep -i 'verity' | grep -i 'corrupt' | tail -1)"
}
power_cut() {   # test 4: stop the agent in the middle of writing 4.0; the host kills QEMU
    lapis-sysupdate --json --url file:///run/bundles/p4/ update > /run/cut.out 2>&1 &
    pid=$!
    n=0
    while [ $n -lt 900 ] && ! lapis-sysupdate --json status 2>/dev/null | grep -q '"frames_done": [1-9]'; do
        sleep 0.2; n=$((n+1))
    done
    kill -STOP $pid
    say cut-status "$(lapis-sysupdate --json status 2>&1)"
    say cut now
    sleep 900
}
resume() {   # test 4: after the power cut, the same update resumes and verifies
    say update-resume "$(lapis-sysupdate --json --url file:///run/bundles/p4/ update 2>&1)"
    s2=$(lapis-sysupdate --json status 2>&1)
    say status-resumed "$s2"
    say ukis-resumed "$(ls /efi/EFI/Linux | tr '\n' ' ')"
    root=$(echo "$s2" | sed -n 's/.*"slot": "a"[^}]*"verity_root_hash": "\([0-9a-f]\{64\}\)".*/\1/p')
    veritysetup verify /dev/disk/by-partlabel/usr-a /dev/disk/by-partlabel/usr-a-verity "$root"
    say verity-verify "$?"
}
case "$v" in
1.0) echo "$st" | grep -q '"slot": "b", "version": null' && stage p1 ;;
2.0) if echo "$st" | grep -q '"status": "writing"'; then
         resume
         say end "$v"
         systemctl poweroff
     elif echo "$st" | grep -q '"rolled_back": "3.0"'; then
         say update-again "$(lapis-sysupdate --json --url file:///run/bundles/p2/ update 2>&1)"
         refusals
         verity_flip
         power_cut
     else
         stage p2
     fi ;;
3.0) say waiting "the health check fails; lapis-sysupdate-fallback reboots" ;;
*) say end "$v"; systemctl poweroff ;;
esac
"""


def run(cmd, timeout=600, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


def ok(cmd, **kw):
    r = run(cmd, **kw)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr[-3000:])
    return r


FAILING_CHECK = """#!/bin/sh
echo "3.0 is unhealthy (test_booted.py)" >&2
exit 1
"""


def config(tmp, version, formats, failing=False, tries=None):
    def block(text, indent):
        return "\n".join(indent + line for line in text.rstrip("\n").split("\n"))
    check = f"""
    - destination: /usr/lib/lapis-sysupdate/health.d/50-fail
      permissions: "0755"
      content: |
{block(FAILING_CHECK, "        ")}""" if failing else ""
    tries = "\n  tries: %d" % tries if tries else ""
    return f"""name: abhost
version: "{version}"
arch: x86_64
releasever: "12"
repos:
  - file: {TESTDIST / "testdist.repo"}
packages:
  install: [{", ".join(PACKAGES)}]
os:
  hostname: abhost
  kernelCommandLine:
    # no_timer_check: a TCG guest on a loaded host can fail the kernel's IO-APIC
    # timer check and panic ("IO-APIC + timer doesn't work!", seen on a 5th boot).
    extraCommandLine: console=ttyS0 no_timer_check
  services:
    enable: [lapis-test-driver.service]
  additionalFiles:
    - destination: /etc/systemd/system/lapis-test-driver.service
      content: |
{block(DRIVER_UNIT, "        ")}{check}
sysupdate:
  publicKeys: [{tmp / "release.pem"}]
  signingKey: {tmp / "release.key"}
  url: file:///run/bundles/{tries}
storage:
  bootLoader: uki
  disks:
    - partitions:
        - {{id: esp, type: esp, size: 256M}}
        - {{id: usr-a, type: usr, size: 768M}}
        - {{id: usr-a-verity, type: usr-verity, size: 64M}}
        - {{id: usr-b, type: usr, size: 768M}}
        - {{id: usr-b-verity, type: usr-verity, size: 64M}}
        - {{id: root, type: root, size: grow}}
output:
  formats: [{formats}]
"""


def image_env(tmp):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "source_date_epoch")}
    (tmp / "home").mkdir(exist_ok=True)
    env.update(HOME=str(tmp / "home"), LC_ALL="C.UTF-8", no_proxy="*")
    return env


def build(tmp, version, formats, failing=False, tries=None):
    cfg = tmp / ("abhost-%s.yaml" % version)
    cfg.write_text(config(tmp, version, formats, failing, tries))
    out = tmp / ("out-" + version)
    start = time.monotonic()
    r = run([LAPIS, "image", "build", "--cachedir", tmp / "cache", "-o", out, cfg], timeout=BUILD_TIMEOUT,
            env=image_env(tmp))
    assert r.returncode == 0, r.stderr[-5000:]
    print("build %s: %.0f s" % (version, time.monotonic() - start))
    return out


def parse(serial):
    """The driver's lines, per boot: [{key: value}, ...]."""
    boots, cur = [], None
    for line in serial.decode(errors="replace").splitlines():
        m = re.search(r"LAPIS-T (\S+) ?(.*)$", line)
        if not m:
            continue
        key, value = m.group(1), m.group(2).rstrip("\r")
        if key == "version":
            cur = {}
            boots.append(cur)
        if cur is not None:
            cur[key] = value
    return boots


def bundles_for_tests_4_5(tmp, www, b2):
    """p4: a good 4.0 (2.0's /usr plus one block, so its own root hash); p4-*:
    4.0 with a bad signature, an index of an unknown key, a truncated and a
    corrupted usr payload (both in frame 0, so nothing may be written), and
    1.0 (a downgrade). Unchanged files are hard links (mkfs.ext4 -d keeps them)."""
    usr, uki = tmp / "usr-4.img", tmp / "uki-4.efi"
    ok(["zstd", "-q", "-d", "-f", b2 / "usr.zst", "-o", usr])
    ok(["zstd", "-q", "-d", "-f", b2 / "uki.zst", "-o", uki])
    with open(usr, "ab") as f:
        f.write(b"\x5a" * 4096)
    key = tmp / "release.key"
    for version, d in (("4.0", "p4"), ("1.0", "p4-old")):
        ok([AGENT, "bundle", "--key", key, "--version", version, "--arch", "x86_64", "--usr", usr, "--uki", uki,
            "-o", www / d])
    for d in ("badsig", "unknown", "trunc", "mismatch"):
        shutil.copytree(www / "p4", www / ("p4-" + d), copy_function=os.link)
    def rewrite(path, fn):
        data = fn(path.read_bytes())
        path.unlink()       # a hard link: never write through it
        path.write_bytes(data)
    rewrite(www / "p4-badsig" / "4.0" / "manifest.sig",
            lambda b: b[:-3] + (b"0" if b[-3:-2] != b"0" else b"1") + b[-2:])
    rewrite(www / "p4-trunc" / "4.0" / "usr.zst", lambda b: b[:1000])
    rewrite(www / "p4-mismatch" / "4.0" / "usr.zst", lambda b: b[:100] + bytes([b[100] ^ 0xff]) + b[101:])
    other = tmp / "other.key"
    ok(["openssl", "genpkey", "-algorithm", "ed25519", "-out", other])
    for d, k in (("p4-badsig", key), ("p4-unknown", other), ("p4-trunc", key), ("p4-mismatch", key),
                 ("p4-old", key), ("p4", key)):
        ok([AGENT, "index", "--key", k, www / d])


KERNEL_STALL = 300     # seconds of serial silence before /init that count as a hung TCG kernel
KERNEL_RESETS = 2


def kernel_stalled(log, quiet_for):
    """A TCG kernel that went silent before it ran /init (seen once in CI:
    "tsc: Unable to calibrate against PIT", then nothing after "IP idents hash
    table entries" for the whole session). Nothing of Lapis runs that early
    and nothing is written to the disk, so the harness resets the machine as
    a hardware watchdog would (systemd-boot counts that as one of the entry's
    tries, as on hardware); userspace silences are never reset."""
    last = log.rfind(b"Linux version ")
    return last >= 0 and b"Run /init as init process" not in log[last:] and quiet_for > KERNEL_STALL


def run_until_cut(cmd, serial, timeout):
    """Run QEMU; kill -9 it (the power cut) when the guest says "cut now".
    A kernel that hangs before /init is reset (KERNEL_RESETS at most); the
    serial log is appended to across resets."""
    start = time.monotonic()
    resets = 0
    while True:
        qemu = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cut, stalled, size, grew = False, False, -1, time.monotonic()
        while qemu.poll() is None and time.monotonic() - start < timeout:
            log = serial.read_bytes() if serial.exists() else b""
            if b"LAPIS-T cut now" in log:
                cut = True
                break
            if len(log) != size:
                size, grew = len(log), time.monotonic()
            if resets < KERNEL_RESETS and kernel_stalled(log, time.monotonic() - grew):
                stalled = True
                break
            time.sleep(0.5)
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()
        if not stalled:
            return cut, resets
        resets += 1
        print("the guest kernel hung before /init (%d s silent): reset %d" % (KERNEL_STALL, resets))
        with open(serial, "ab") as f:
            f.write(b"\r\nLAPIS-HARNESS reset after a kernel hang\r\n")


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    for tool in ("qemu-system-x86_64", "mkfs.ext4", "sgdisk", "mkfs.vfat", "mcopy", "dracut", "mkfs.erofs",
                 "veritysetup", "openssl", "zstd"):
        if not shutil.which(tool):
            pytest.skip("%s missing: run scripts/install-deps" % tool)
    if not (TESTDIST / "x86_64" / ".stamp").exists():
        pytest.skip("test distribution not built: run `make testdist`")
    tmp = tmp_path_factory.mktemp("booted")
    ok(["openssl", "genpkey", "-algorithm", "ed25519", "-out", tmp / "release.key"])
    ok(["openssl", "pkey", "-in", tmp / "release.key", "-pubout", "-out", tmp / "release.pem"])
    v1 = build(tmp, "1.0", "raw")
    v2 = build(tmp, "2.0", "bundle", tries=1)     # 2.0 stages 3.0 with one try (sysupdate.tries)
    v3 = build(tmp, "3.0", "bundle", failing=True)
    raw = next(v1.glob("*.raw"))
    # p1 offers 2.0, p2 offers 2.0 and 3.0 (each directory its own signed index).
    www = tmp / "bundles"
    for d, versions in (("p1", [v2]), ("p2", [v2, v3])):
        for out in versions:
            shutil.copytree(next(out.glob("*.bundle")), www / d, dirs_exist_ok=True)
        ok([AGENT, "index", "--key", tmp / "release.key", www / d])
    bundles_for_tests_4_5(tmp, www, next(v2.glob("*.bundle")) / "2.0")
    (www / "driver.sh").write_text(DRIVER)
    size = sum(p.stat().st_size for p in www.rglob("*") if p.is_file())
    bdisk = tmp / "bundles.ext4"
    ok(["mkfs.ext4", "-q", "-L", "bundles", "-d", www, bdisk, "%dk" % (size // 1024 + 65536)])
    disk = tmp / "host.raw"
    shutil.move(raw, disk)
    vars_fd = tmp / "vars.fd"
    shutil.copy(OVMF_VARS, vars_fd)
    def qemu(serial):
        return ["qemu-system-x86_64", "-accel", "tcg", "-m", "1536", "-machine", "q35", "-smp", "2",
                "-drive", "if=pflash,format=raw,readonly=on,file=%s" % OVMF_CODE,
                "-drive", "if=pflash,format=raw,file=%s" % vars_fd,
                "-drive", "file=%s,if=virtio,format=raw" % disk,
                "-drive", "file=%s,if=virtio,format=raw,readonly=on" % bdisk,
                "-nic", "none", "-nographic", "-monitor", "none",
                "-chardev", "file,id=ser0,append=on,path=%s" % serial, "-serial", "chardev:ser0"]
    # Session 1: 1.0, 2.0, 3.0 (one try), 2.0 (refusals, then the power cut);
    # session 2, on the same disk and EFI variables: 2.0 resumes 4.0.
    serial, serial2 = tmp / "serial.log", tmp / "serial2.log"
    start = time.monotonic()
    cut, resets = run_until_cut(qemu(serial), serial, SESSION_TIMEOUT)
    wall1 = time.monotonic() - start
    if cut:
        resets += run_until_cut(qemu(serial2), serial2, SESSION_TIMEOUT - wall1)[1]
    wall = time.monotonic() - start
    log = b"".join(p.read_bytes() for p in (serial, serial2) if p.exists())
    print("QEMU sessions: %.0f s wall (%.0f s until the power cut), %d kernel resets" % (wall, wall1, resets))
    if os.environ.get("LAPIS_BOOT_LOG"):        # keep the serial log for a look afterwards
        pathlib.Path(os.environ["LAPIS_BOOT_LOG"]).write_bytes(log)
    return {"boots": parse(log), "log": log.decode(errors="replace"), "wall": wall, "tmp": tmp, "cut": cut,
            "resets": resets}


def test_kernel_stall_is_only_a_silence_before_init():
    kernel = b"[    0.000000] Linux version 6.1.0\r\n[    1.6] IP idents hash table entries\r\n"
    assert kernel_stalled(kernel, KERNEL_STALL + 1)
    assert not kernel_stalled(kernel, KERNEL_STALL - 1)
    assert not kernel_stalled(kernel + b"[    5.0] Run /init as init process\r\n", 10 * KERNEL_STALL)
    assert not kernel_stalled(b"BdsDxe: loading Boot0001\r\n", 10 * KERNEL_STALL)    # firmware, no kernel yet
    # The second boot of a session: only what follows its own "Linux version" counts.
    two = kernel + b"[    5.0] Run /init as init process\r\nLAPIS-T reboot now\r\n" + kernel
    assert kernel_stalled(two, KERNEL_STALL + 1)


def slots(status):
    return [(s["slot"], s["version"], s["status"], s["booted"]) for s in json.loads(status)["slots"]]


def test_1_v1_boots_slot_a_good_b_empty(booted):
    boots = booted["boots"]
    assert boots, "no driver output; serial tail:\n" + booted["log"][-4000:]
    b = boots[0]
    assert b["version"] == "1.0"
    assert slots(b["status"]) == [("a", "1.0", "good", True), ("b", None, "empty", False)], b
    # The agent's units ran (boot, health, mark-good), boot-complete.target was
    # reached and systemd-bless-boot blessed the factory UKI.
    assert b["active"].split() == ["active"] * 5, b["active"]
    assert b["enabled"].split() == ["enabled"] * 4, b["enabled"]
    assert "lapis_1.0.efi" in b["ukis"].split() and "+" not in b["ukis"], b["ukis"]
    assert "/dev/mapper/" in b["usr"] and "erofs" in b["usr"] and "ro" in b["usr"].split()[2].split(","), b["usr"]
    usrhash = re.search(r"usrhash=([0-9a-f]{64})", b["cmdline"]).group(1)
    assert json.loads(b["status"])["slots"][0]["verity_root_hash"] == usrhash
    assert json.loads(b["health"])["healthy"] is True
    mi = base64.b64decode(b["mountinfo"]).decode()
    assert re.search(r" /efi \S+ .* - vfat ", mi), mi


def test_2_update_to_v2_reboot_blessed(booted):
    boots = booted["boots"]
    assert len(boots) >= 2, "%d boots; serial tail:\n%s" % (len(boots), booted["log"][-4000:])
    b1, b2 = boots[0], boots[1]
    assert json.loads(b1["check"]) == {"current": "1.0", "available": "2.0", "reason": None}, b1["check"]
    assert json.loads(b1["update"]) == {"staged": True, "version": "2.0", "slot": "b", "reason": None}, b1
    t0, t1 = map(float, b1["update-seconds"].split())
    print("update inside the guest (TCG): %.1f s" % (t1 - t0))
    assert b1["reboot-required"].startswith("lapis_2.0 *** System restart required ***"), b1["reboot-required"]
    assert b1["varrun"] == "../run lapis_2.0", b1["varrun"]      # /var/run -> ../run (item 4)
    assert slots(b1["status-staged"]) == [("a", "1.0", "good", True), ("b", "2.0", "staged", False)]
    assert b1["ukis-staged"].split() == ["lapis_1.0.efi", "lapis_2.0+3.efi"], b1["ukis-staged"]
    root2 = json.loads(b1["status-staged"])["slots"][1]["verity_root_hash"]
    # Boot 2: 2.0 from slot b, chosen by systemd-boot, blessed, marked good.
    assert b2["version"] == "2.0", b2
    usrhash = re.search(r"usrhash=([0-9a-f]{64})", b2["cmdline"]).group(1)
    assert usrhash == root2
    assert slots(b2["status"]) == [("a", "1.0", "good", False), ("b", "2.0", "good", True)], b2["status"]
    assert b2["active"].split() == ["active"] * 5, b2["active"]
    assert b2["ukis"].split() == ["lapis_1.0.efi", "lapis_2.0.efi"], b2["ukis"]
    # usr-b's PARTUUID is the root hash's first half (the agent set it).
    uuid = "%s-%s-%s-%s-%s" % (root2[:8], root2[8:12], root2[12:16], root2[16:20], root2[20:32])
    assert uuid in b2["partuuids"], b2["partuuids"]
    log = booted["log"]
    before_v3 = log[:log.index("LAPIS-T reboot now", log.index("LAPIS-T reboot now") + 1)] \
        if log.count("LAPIS-T reboot now") > 1 else log
    assert "Failed to start" not in before_v3, before_v3[-4000:]


def rollback_boot(boots):
    """The first 2.0 boot after 3.0's: the fallback. (3.0's boot may print
    nothing: the fallback unit can reboot it before the driver runs.)"""
    return next(b for b in boots[2:] if b["version"] == "2.0")


def versions(boots):
    return [b["version"] for b in boots if b["version"] != "3.0"]


def test_3_failing_v3_falls_back_to_v2_not_retried(booted):
    """3.0's own health check fails: its boot is never blessed, the fallback unit
    reboots it, systemd-boot counts its one try (2.0's sysupdate.tries: 1) down
    and then boots 2.0 by itself; boot records the fallback, update does not
    retry 3.0."""
    boots, log = booted["boots"], booted["log"]
    assert versions(boots)[:3] == ["1.0", "2.0", "2.0"], \
        "%s; serial tail:\n%s" % ([b["version"] for b in boots], log[-4000:])
    b2, last = boots[1], rollback_boot(boots)
    assert json.loads(b2["update"]) == {"staged": True, "version": "3.0", "slot": "a", "reason": None}, b2
    assert b2["ukis-staged"].split() == ["lapis_2.0.efi", "lapis_3.0+1.efi"], b2["ukis-staged"]
    root3 = json.loads(b2["status-staged"])["slots"][0]["verity_root_hash"]
    # One try of 3.0 (the kernel prints each command line), then 2.0 again.
    tries = len(re.findall(r"Command line: .*usrhash=" + root3, log))
    assert tries == 1, tries
    # The fallback unit rebooted it, and 3.0 never reached boot-complete.target:
    # every other boot did.
    assert re.search(r"Finished .*lapis-sysupdate-f.*unblessed boot", log), log[-4000:]
    assert len(re.findall(r"Reached target .*boot-comple", log)) == \
        len([b for b in boots if b["version"] != "3.0"])
    for b3 in (b for b in boots if b["version"] == "3.0" and "health" in b):
        assert json.loads(b3["health"])["healthy"] is False and "50-fail" in b3["health"]
    st = json.loads(last["status"])
    assert [(s["slot"], s["version"], s["status"], s["booted"]) for s in st["slots"]] == \
        [("a", "3.0", "bad", False), ("b", "2.0", "good", True)], last["status"]
    assert st["failed"] == ["3.0"] and st["rolled_back"] == "3.0"
    assert last["ukis"].split() == ["lapis_2.0.efi"], last["ukis"]
    again = json.loads(last["update-again"])
    assert again["staged"] is False and "3.0 failed its boot before" in again["reason"], again


def test_4_power_cut_mid_write_then_resume(booted):
    """In the fallback boot the agent stages 4.0 into slot a; it is stopped after
    its first recorded progress and QEMU is killed (-9). The next boot is 2.0
    (the blessed slot b), status shows slot a half written, and the same update
    resumes, verifies (the agent, then veritysetup verify) and stages 4.0."""
    boots, log = booted["boots"], booted["log"]
    rb = rollback_boot(boots)
    assert booted["cut"], "no power cut; serial tail:\n" + log[-4000:]
    cut = json.loads(rb["cut-status"])
    assert cut["progress"]["slot"] == "a" and cut["progress"]["frames_done"] > 0, cut
    assert [(s["slot"], s["status"]) for s in cut["slots"]] == [("a", "writing"), ("b", "good")], cut
    assert versions(boots) == ["1.0", "2.0", "2.0", "2.0"], [b["version"] for b in boots]
    b = boots[-1]
    assert b is not rb and "update-resume" in b, b
    st = json.loads(b["status"])
    assert [(s["slot"], s["version"], s["status"], s["booted"]) for s in st["slots"]][1] == \
        ("b", "2.0", "good", True), st
    assert st["slots"][0]["status"] == "writing" and st["progress"]["slot"] == "a", st
    assert st["progress"]["frames_done"] >= cut["progress"]["frames_done"] - 8, (st, cut)
    assert "lapis_4.0" not in b["ukis"], b["ukis"]          # a half-written slot is no boot entry
    assert json.loads(b["update-resume"]) == {"staged": True, "version": "4.0", "slot": "a", "reason": None}, b
    done = json.loads(b["status-resumed"])
    assert [(s["slot"], s["version"], s["status"], s["booted"]) for s in done["slots"]] == \
        [("a", "4.0", "staged", False), ("b", "2.0", "good", True)] and done["progress"] is None, done
    assert b["ukis-resumed"].split() == ["lapis_2.0.efi", "lapis_4.0+1.efi"], b["ukis-resumed"]
    assert b["verity-verify"] == "0", b
    assert b["end"] == "2.0"


def test_5_refusals_inside_the_guest_and_verity_at_read_time(booted):
    """In the fallback boot: five bad bundles are refused and slot a (inactive)
    keeps its sha256; then a byte flipped in slot a's /usr is an I/O error when
    read through dm-verity, and the kernel logs the corruption."""
    rb = rollback_boot(booted["boots"])
    want = {"badsig": ["manifest", "BAD signature"], "unknown": ["index", "unknown key"],
            "trunc": ["usr.zst", "truncated"],
            "mismatch": ["usr.zst frame 0", "does not match the signed manifest"]}
    for d, words in want.items():
        out = rb["refuse-" + d]
        assert '"error"' in out and all(w in out for w in words), (d, out)
    old = json.loads(rb["refuse-old"])
    assert old["staged"] is False and "refusing to downgrade from 2.0 to 1.0" in old["reason"], old
    before, after = rb["sha-before"].split(), rb["sha-after"].split()
    assert len(before) == 2 and before == after, (before, after)
    assert rb["flipped"].split() == ["ff"] * 4, rb["flipped"]
    assert rb["verity-open"] == "0" and rb["verity-read-good"] == "0", rb
    bad = rb["verity-read-bad"]
    assert "Input/output error" in bad and not bad.endswith("rc=0"), bad
    assert "corrupted" in rb["verity-dmesg"], rb["verity-dmesg"]
