"""lapis-sysupdate on a booted A/B host (issue 13, "Proved by booting" 1-3):
one QEMU session (OVMF, TCG) of a host image that `lapis image build`
makes with the A/B layout. The bundles are a second virtual disk (an ext4
image, mkfs.ext4 -d) holding the signed index, version 2.0's bundle and
the driver script; the image's sysupdate.conf points the agent at it as a
file:// URL, so the guest needs no network. A unit of the image runs the
driver after lapis-sysupdate-mark-good.service on every boot; it prints
what it sees on the serial port as "LAPIS-T KEY VALUE" lines:

  boot 1 (1.0, factory): status says slot a good and booted, slot b empty;
    the agent's units ran; `update` stages 2.0 in slot b, writes the UKI
    lapis_2.0+3.efi into the mounted ESP and /run/reboot-required; reboot.
  boot 2 (2.0): /usr is slot b's verity device, systemd-boot chose 2.0,
    boot-complete.target was reached, systemd-bless-boot renamed the UKI to
    lapis_2.0.efi and mark-good made slot b good; `update` stages 3.0 (whose
    /usr carries a failing health check) in slot a; reboot.
  boots 3-5 (3.0): the check fails, boot-complete.target is not reached,
    lapis-sysupdate-fallback.service reboots; systemd-boot counts +3 down.
  boot 6 (2.0): systemd-boot skipped lapis_3.0+0-3.efi by itself; `boot`
    marked 3.0 failed and rolled back; `update` does not retry it; poweroff.
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
SESSION_TIMEOUT = 1800     # two TCG boots and an update inside the guest, on a loaded machine
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
    say status-staged "$(lapis-sysupdate --json status 2>&1)"
    say ukis-staged "$(ls /efi/EFI/Linux | tr '\n' ' ')"
    say reboot now
    systemctl reboot
}
case "$v" in
1.0) echo "$st" | grep -q '"slot": "b", "version": null' && stage p1 ;;
2.0) if echo "$st" | grep -q '"rolled_back": "3.0"'; then
         say update-again "$(lapis-sysupdate --json --url file:///run/bundles/p2/ update 2>&1)"
         say end "$v"
         systemctl poweroff
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


def config(tmp, version, formats, failing=False):
    def block(text, indent):
        return "\n".join(indent + line for line in text.rstrip("\n").split("\n"))
    check = f"""
    - destination: /usr/lib/lapis-sysupdate/health.d/50-fail
      permissions: "0755"
      content: |
{block(FAILING_CHECK, "        ")}""" if failing else ""
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
  url: file:///run/bundles/
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


def build(tmp, version, formats, failing=False):
    cfg = tmp / ("abhost-%s.yaml" % version)
    cfg.write_text(config(tmp, version, formats, failing))
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


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    for tool in ("qemu-system-x86_64", "mkfs.ext4", "sgdisk", "mkfs.vfat", "mcopy", "dracut", "mkfs.erofs",
                 "veritysetup", "openssl"):
        if not shutil.which(tool):
            pytest.skip("%s missing: run scripts/install-deps" % tool)
    if not (TESTDIST / "x86_64" / ".stamp").exists():
        pytest.skip("test distribution not built: run `make testdist`")
    tmp = tmp_path_factory.mktemp("booted")
    ok(["openssl", "genpkey", "-algorithm", "ed25519", "-out", tmp / "release.key"])
    ok(["openssl", "pkey", "-in", tmp / "release.key", "-pubout", "-out", tmp / "release.pem"])
    v1 = build(tmp, "1.0", "raw")
    v2 = build(tmp, "2.0", "bundle")
    v3 = build(tmp, "3.0", "bundle", failing=True)
    raw = next(v1.glob("*.raw"))
    # p1 offers 2.0, p2 offers 2.0 and 3.0 (each directory its own signed index).
    www = tmp / "bundles"
    for d, versions in (("p1", [v2]), ("p2", [v2, v3])):
        for out in versions:
            shutil.copytree(next(out.glob("*.bundle")), www / d, dirs_exist_ok=True)
        ok([AGENT, "index", "--key", tmp / "release.key", www / d])
    (www / "driver.sh").write_text(DRIVER)
    size = sum(p.stat().st_size for p in www.rglob("*") if p.is_file())
    bdisk = tmp / "bundles.ext4"
    ok(["mkfs.ext4", "-q", "-L", "bundles", "-d", www, bdisk, "%dk" % (size // 1024 + 65536)])
    disk = tmp / "host.raw"
    shutil.move(raw, disk)
    vars_fd = tmp / "vars.fd"
    shutil.copy(OVMF_VARS, vars_fd)
    serial = tmp / "serial.log"
    start = time.monotonic()
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-m", "1536", "-machine", "q35", "-smp", "2",
        "-drive", "if=pflash,format=raw,readonly=on,file=%s" % OVMF_CODE,
        "-drive", "if=pflash,format=raw,file=%s" % vars_fd,
        "-drive", "file=%s,if=virtio,format=raw" % disk,
        "-drive", "file=%s,if=virtio,format=raw,readonly=on" % bdisk,
        "-nic", "none", "-nographic", "-monitor", "none", "-serial", "file:%s" % serial],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        qemu.wait(timeout=SESSION_TIMEOUT)
    except subprocess.TimeoutExpired:
        qemu.kill()
        qemu.wait()
    wall = time.monotonic() - start
    log = serial.read_bytes() if serial.exists() else b""
    print("QEMU session: %.0f s wall" % wall)
    if os.environ.get("LAPIS_BOOT_LOG"):        # keep the serial log for a look afterwards
        shutil.copy(serial, os.environ["LAPIS_BOOT_LOG"])
    return {"boots": parse(log), "log": log.decode(errors="replace"), "wall": wall, "tmp": tmp}


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


def test_3_failing_v3_falls_back_to_v2_not_retried(booted):
    """3.0's own health check fails: its boots are never blessed, the fallback unit
    reboots each, systemd-boot counts the tries down and then boots 2.0 by itself;
    boot records the fallback, update does not retry 3.0."""
    boots, log = booted["boots"], booted["log"]
    assert len(boots) >= 3 and boots[-1]["version"] == "2.0", \
        "%s; serial tail:\n%s" % ([b["version"] for b in boots], log[-4000:])
    b2, last = boots[1], boots[-1]
    assert json.loads(b2["update"]) == {"staged": True, "version": "3.0", "slot": "a", "reason": None}, b2
    assert b2["ukis-staged"].split() == ["lapis_2.0.efi", "lapis_3.0+3.efi"], b2["ukis-staged"]
    root3 = json.loads(b2["status-staged"])["slots"][0]["verity_root_hash"]
    # Three tries of 3.0 (the kernel prints each command line), then 2.0 again.
    tries = len(re.findall(r"Command line: .*usrhash=" + root3, log))
    assert tries == 3, tries
    # The fallback unit rebooted them (systemd's console status lines are not
    # all printed on a loaded TCG guest, so at least one is seen), and none of
    # the tries reached boot-complete.target: 1.0, 2.0, 2.0 again did.
    assert re.search(r"Finished .*lapis-sysupdate-f.*unblessed boot", log), log[-4000:]
    assert len(re.findall(r"Reached target .*boot-comple", log)) == 3
    for b in boots[2:-1]:
        assert b["version"] == "3.0"
        assert json.loads(b["health"])["healthy"] is False
        assert "50-fail" in b["health"]
    st = json.loads(last["status"])
    assert [(s["slot"], s["version"], s["status"], s["booted"]) for s in st["slots"]] == \
        [("a", "3.0", "bad", False), ("b", "2.0", "good", True)], last["status"]
    assert st["failed"] == ["3.0"] and st["rolled_back"] == "3.0"
    assert last["ukis"].split() == ["lapis_2.0.efi"], last["ukis"]
    again = json.loads(last["update-again"])
    assert again["staged"] is False and "3.0 failed its boot before" in again["reason"], again
    assert last["end"] == "2.0"
