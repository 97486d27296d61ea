"""The disk stage's overlaps (src/image/disk.c, build.c, publish.c's finisher).

One cold raw+qcow2 build with sgdisk, mkfs.ext4, qemu-img, depmod,
systemctl, dracut and mkfs.vfat behind wrappers in PATH that log when each ran. qemu-img runs twice:
once on the disk before its ESP (beside dracut), once to add the ESP
(--target-is-zero). After the second, the wrapper waits (up to a minute) for
what must happen while qemu-img runs: the raw's copy in the image cache's
temporary dir at its full size, and the composed root gone. A build that does
them only after the disk stage makes the wrapper wait out its minute and log
"no".
"""

import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from .conftest import LAPIS_BIN, TESTDIST, image_env, sha256

PACKAGES = ["kernel", "systemd", "systemd-sysv", "systemd-boot", "udev", "dracut", "bash",
            "coreutils", "util-linux", "kmod", "login", "passwd"]

WRAPPER = r'''#!/usr/bin/python3
import glob, json, os, subprocess, sys, time
name = os.path.basename(sys.argv[0])
real = os.environ["WRAP_REAL_" + name.replace(".", "_").replace("-", "_")]
log = os.environ["WRAP_LOG"]
t0 = time.time()
rc = subprocess.run([real] + sys.argv[1:]).returncode
t1 = time.time()
rec = {"tool": name, "start": t0, "end": t1, "args": sys.argv[1:]}
if name == "qemu-img" and rc == 0 and "--target-is-zero" in sys.argv:
    out, cache = os.environ["WRAP_OUT"], os.environ["WRAP_CACHE"]
    raw = glob.glob(os.path.join(out, ".lapis-build-*", "*.raw"))[0]
    size = os.path.getsize(raw)
    cached = gone = False
    deadline = time.time() + 60
    while time.time() < deadline and not (cached and gone):
        cached = any(os.path.getsize(p) == size for p in
                     glob.glob(os.path.join(cache, "images", ".tmp-*", os.path.basename(raw))))
        gone = not glob.glob(os.path.join(out, ".lapis-build-*", "*", "root"))
        time.sleep(0.2)
    rec.update(raw_cached=cached, root_gone=gone)
with open(log, "a") as f:
    f.write(json.dumps(rec) + "\n")
sys.exit(rc)
'''

TOOLS = ["sgdisk", "mkfs.ext4", "qemu-img", "depmod", "systemctl", "dracut", "mkfs.vfat"]


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    if not (TESTDIST / "x86_64" / ".stamp").exists():
        pytest.skip("test distribution not built: run `make testdist`")
    base = tmp_path_factory.mktemp("pipeline")
    bindir, out, cache, log = base / "bin", base / "out", base / "cache", base / "tools.log"
    bindir.mkdir()
    env = image_env(base)
    for tool in TOOLS:
        real = shutil.which(tool)
        assert real, f"{tool} missing: run scripts/install-deps"
        env["WRAP_REAL_" + tool.replace(".", "_").replace("-", "_")] = real
        w = bindir / tool
        w.write_text(WRAPPER)
        w.chmod(w.stat().st_mode | stat.S_IXUSR)
    env.update(PATH=f"{bindir}:{env['PATH']}", WRAP_LOG=str(log), WRAP_OUT=str(out),
               WRAP_CACHE=str(cache), SOURCE_DATE_EPOCH="1767225600")
    cfg = base / "disk.yaml"
    cfg.write_text('name: pipe\nversion: "1"\nreleasever: "12"\nrepos:\n  - file: %s\n'
                   'packages:\n  install: [%s]\n  nodocs: true\n'
                   'output:\n  formats: [raw, qcow2]\n  qcow2Compression: none\n'
                   % (TESTDIST / "testdist.repo", ", ".join(PACKAGES)))
    cmd = [LAPIS_BIN, "-v", "image", "build", "--cachedir", str(cache), "-o", str(out), str(cfg)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    return {"runs": {x["tool"]: x for x in runs}, "all": runs, "out": out, "cache": cache, "cmd": cmd,
            "env": env, "stderr": r.stderr}


def test_sgdisk_runs_while_the_root_file_system_is_made(piped):
    sg, mkfs = piped["runs"]["sgdisk"], piped["runs"]["mkfs.ext4"]
    assert mkfs["start"] < sg["end"], "mkfs.ext4 waited for sgdisk (and its 1 s sleep)"


def test_depmod_runs_while_services_are_preset(piped):
    depmod = [x for x in piped["all"] if x["tool"] == "depmod" and x["args"][1].endswith("/root")]
    preset = [x for x in piped["all"] if x["tool"] == "systemctl" and "preset-all" in x["args"]]
    assert len(depmod) == 1 and len(preset) == 1, piped["all"]
    assert depmod[0]["start"] < preset[0]["end"] and preset[0]["start"] < depmod[0]["end"], \
        "depmod and systemctl preset-all ran one after the other"


def test_raw_cached_and_root_removed_while_qemu_img_converts(piped):
    q = piped["runs"]["qemu-img"]
    assert q["raw_cached"], "the raw reached the image cache only after qemu-img"
    assert q["root_gone"], "the composed root was still there after qemu-img"


def test_qcow2_compression_none_writes_plain_clusters(piped):
    """output.qcow2Compression: none: qemu-img runs without -c, every data
    cluster has a host offset (compressed ones have none) and the guest sees
    the raw's bytes. test_boot.py covers the zstd default."""
    runs = [x for x in piped["all"] if x["tool"] == "qemu-img"]
    assert len(runs) == 2, runs
    for q in runs:
        assert "-c" not in q["args"] and not any("compression_type" in a for a in q["args"]), q["args"]
    out = piped["out"]
    qcow2, raw = out / "pipe-1.x86_64.qcow2", out / "pipe-1.x86_64.raw"
    extents = json.loads(subprocess.run(["qemu-img", "map", "--output=json", str(qcow2)],
                                        capture_output=True, text=True, check=True).stdout)
    data = [e for e in extents if e["data"]]
    assert data and all("offset" in e for e in data), [e for e in data if "offset" not in e][:3]
    r = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", str(qcow2), str(raw)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Images are identical." in r.stdout, r.stdout + r.stderr


def root_fs_offset(raw):
    out = subprocess.run(["sgdisk", "-i", "2", str(raw)], capture_output=True, text=True, check=True).stdout
    return int([l for l in out.splitlines() if l.startswith("First sector")][0].split()[2]) * 512


def test_root_fs_inode_times_are_the_epoch(piped):
    """Every time field of the root file system's inodes is SOURCE_DATE_EPOCH
    (0x6955b900): what mkfs.ext4 -d copied (atime, ctime), stamped (crtime)
    or made itself (/, lost+found), and the grow files debugfs adds. Before
    ext4times.c and the "@" in debugfs's script, atime, ctime and crtime (and
    the grow files' mtime) were 0x827466e0, 1903: debugfs read the bare
    digits as a date."""
    raw = piped["out"] / "pipe-1.x86_64.raw"
    img = "%s?offset=%d" % (raw, root_fs_offset(raw))
    for path in ("/", "/lost+found", "/usr/bin/bash", "/etc/os-release", "/usr/lib/systemd/system",
                 "/usr/lib/repart.d/50-lapis-root.conf",
                 "/usr/lib/systemd/system/sysinit.target.wants/lapis-growfs-root.service"):
        out = subprocess.run(["debugfs", "-R", 'stat "%s"' % path, img], capture_output=True,
                             text=True, check=True).stdout
        times = dict(re.findall(r"^ *(\w+time): (0x[0-9a-f]+:[0-9a-f]+)", out, re.M))
        assert sorted(times) == ["atime", "crtime", "ctime", "mtime"], (path, out)
        assert set(times.values()) == {"0x6955b900:00000000"}, (path, times)


def test_qcow2_converted_beside_dracut(piped):
    """The qcow2 is converted from the disk while dracut runs (the ESP still a
    hole), and only the ESP is added after the boot stage: the first qemu-img
    starts before dracut ends and ends before the ESP's mkfs.vfat starts.
    Before: one qemu-img, after mkfs.vfat."""
    runs = [x for x in piped["all"] if x["tool"] == "qemu-img"]
    assert len(runs) == 2, runs
    first, second = runs
    assert "--target-is-zero" not in first["args"] and "--target-is-zero" in second["args"]
    dracut, vfat = piped["runs"]["dracut"], piped["runs"]["mkfs.vfat"]
    assert first["start"] < dracut["end"], "the qcow2 waited for dracut"
    assert first["end"] <= vfat["start"] < second["start"]


def test_verbose_build_times_tools_and_finalize_steps(piped):
    """-v: where a stage's time goes (a line per tool run and per finalize step)."""
    err = piped["stderr"]
    for what in ("x86_64 mkfs.ext4: ", "x86_64 qemu-img: ", "x86_64 dracut: ",
                 "finalize: services: ", "finalize: timestamps: "):
        assert re.search(re.escape(what) + r"[0-9]+\.[0-9]{2} s$", err, re.M), what


def test_outputs_sums_and_cache_entry_match(piped):
    out = piped["out"]
    sums = dict(reversed(line.split("  ", 1)) for line in
                (out / "SHA256SUMS").read_text().splitlines())
    assert sorted(sums) == ["pipe-1.x86_64.qcow2", "pipe-1.x86_64.raw", "pipe-1.x86_64.spdx.json"]
    for name, hexd in sums.items():
        assert sha256(out / name) == hexd, name
    entries = [p for p in (piped["cache"] / "images").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and not list((piped["cache"] / "images").glob(".tmp-*"))
    for name, hexd in sums.items():
        assert sha256(entries[0] / name) == hexd, f"cached {name}"
    assert not list(out.glob(".lapis-build-*")), "staging dir left behind"


def test_unchanged_rebuild_from_the_early_cache_copy(piped, tmp_path):
    out = tmp_path / "again"
    cmd = piped["cmd"][:-3] + ["-o", str(out), piped["cmd"][-1]]
    env = dict(piped["env"], PATH=os.environ["PATH"])
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "unchanged inputs" in r.stderr, r.stderr
    for name in ("pipe-1.x86_64.raw", "pipe-1.x86_64.qcow2"):
        assert sha256(out / name) == sha256(piped["out"] / name), name
