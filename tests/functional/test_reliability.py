"""Reliability guarantees (docs/reliability.md): what a killed or faulty run
leaves behind is cleaned up or harmless, and limits hold."""

import os
import shutil
import sys
import time

import pytest


def _dead_pid():
    """A pid that no process has (pid_max is far below this on Linux)."""
    pid = 4194000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_stale_staging_dirs_are_swept(lapis_file):
    """A refresh killed mid-way leaves repodata.new-PID-XXXXXX; the next refresh
    removes it when its owner is dead and it is older than a minute, and leaves
    live owners' and fresh ones alone."""
    lapis_file.ok("--repo=base", "makecache")
    cdir = lapis_file.cache_dir("base")
    old = time.time() - 3600
    stale = cdir / ("repodata.new-%d-abcdef" % _dead_pid())
    live = cdir / ("repodata.new-%d-abcdef" % os.getpid())
    fresh = cdir / ("repodata.new-%d-ghijkl" % _dead_pid())
    legacy = cdir / "repodata.new-Xy12Zq"
    for d in (stale, live, fresh, legacy):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "primary.xml.gz").write_bytes(b"half a download")
    for d in (stale, live, legacy):
        os.utime(d, (old, old))
    lapis_file.ok("--repo=base", "makecache", "--refresh")
    assert not stale.exists()
    assert not legacy.exists()
    assert live.exists(), "a live owner's staging dir must survive"
    assert fresh.exists(), "a staging dir touched within the last minute must survive"
    # And no staging dir of this run is left behind.
    left = sorted(p.name for p in cdir.iterdir() if p.name.startswith("repodata.new-"))
    assert left == sorted([live.name, fresh.name]), left


def test_staging_sweep_does_not_follow_symlinks(lapis_file, tmp_path):
    """A symlink named like a staging dir is not followed into its target."""
    lapis_file.ok("--repo=base", "makecache")
    cdir = lapis_file.cache_dir("base")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("precious")
    link = cdir / ("repodata.new-%d-linkxx" % _dead_pid())
    os.symlink(victim, link)
    os.utime(link, (time.time() - 3600,) * 2, follow_symlinks=False)
    lapis_file.ok("--repo=base", "makecache", "--refresh")
    assert (victim / "keep").read_text() == "precious"


# --------------------------------------------------------------------------
# kill -9 at many points of a large install and upgrade
# --------------------------------------------------------------------------

import random  # noqa: E402
import subprocess  # noqa: E402

MANY = ["many-p%02d" % i for i in range(1, 41)]
KILL_LOOPS = int(os.environ.get("LAPIS_KILL_LOOPS", "8"))


def _rpmdb_rows(lapis):
    """(name, version) of every package in the root's rpmdb; asserts rpm can read it."""
    if not (lapis.root / "var/lib/rpm").exists():
        return []
    r = lapis.rpm("-qa", "--qf", "%{NAME} %{VERSION}\\n")
    assert r.rc == 0 and not r.err.strip(), "rpm cannot read the rpmdb after kill -9:\n%s" % r
    return sorted(tuple(l.split()) for l in r.out.splitlines() if not l.startswith("gpg-pubkey"))


def _run_killed(lapis, delay, *args):
    """Start lapis, SIGKILL it after delay seconds; True if it was still running."""
    p = subprocess.Popen(lapis.argv(*args), env=lapis.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return True


def _assert_complete(lapis, version):
    rows = _rpmdb_rows(lapis)
    assert rows == sorted((n, version) for n in MANY), rows
    r = lapis.rpm("-V", *MANY)
    assert r.rc == 0, "files of installed packages are missing or altered:\n%s" % r


def _timed(lapis, *args):
    t0 = time.monotonic()
    lapis.yes(*args)
    return time.monotonic() - t0


def test_kill9_loop_install_and_upgrade(lapis_file):
    """kill -9 at spread-out points of a 40-package install and of its upgrade
    (loading, download, verification, the rpm transaction): the rpmdb stays
    readable by rpm, and the next lapis run completes the work, leaving every
    package exactly once, at the right version, with its files intact."""
    lapis = lapis_file
    install = ("--repo=many1", "install", "many-*")
    upgrade = ("--repo=many1,many2", "upgrade")
    # How long the whole thing takes here, so kill points cover all of it.
    t_install = _timed(lapis, *install)
    t_upgrade = _timed(lapis, *upgrade)
    rng = random.Random(20261121)
    killed = 0
    for i in range(KILL_LOOPS):
        shutil.rmtree(lapis.root)
        d1 = t_install * (i + rng.random()) / KILL_LOOPS
        killed += _run_killed(lapis, d1, "-y", *install)
        rows = _rpmdb_rows(lapis)
        assert len(rows) == len(set(rows)) and all(v == "1.0" for _, v in rows), rows
        lapis.yes(*install)
        _assert_complete(lapis, "1.0")

        d2 = t_upgrade * (i + rng.random()) / KILL_LOOPS
        killed += _run_killed(lapis, d2, "-y", *upgrade)
        _rpmdb_rows(lapis)                 # readable, whatever state it is in
        r = lapis.yes(*upgrade)            # finishes the work (also removes leftover 1.0 copies)
        _assert_complete(lapis, "2.0")
        hist = lapis.json("history")["history"]
        # A kill after rpm finished but before history was closed leaves the
        # re-run nothing to do: then the newest entry is rightly "interrupted".
        if "Nothing to do" not in r.out:
            assert hist[0]["result"] == "ok", hist
        assert all(h["result"] in ("ok", "interrupted") for h in hist), hist
    assert killed >= KILL_LOOPS, "too few runs were actually interrupted (%d)" % killed


# --------------------------------------------------------------------------
# Disk full: a root or a cache on a small tmpfs
# --------------------------------------------------------------------------

import contextlib  # noqa: E402

from conftest import FIXTURES, write_repo  # noqa: E402


@contextlib.contextmanager
def _tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_disk_full_root_fails_before_anything_is_installed(lapis_file):
    """bigpkg (2 MiB of files) into a 1.5 MiB root: rpm's space check stops it
    with a clear error before a byte of it is written, and the rpmdb and
    history do not claim it."""
    with _tmpfs(lapis_file.root, "1500k"):
        r = lapis_file.run("-y", "--repo=base", "install", "bigpkg")
        assert r.rc == 1, r
        assert len(r.error_lines) == 1, r
        assert "more space" in r.error_lines[0] and "nothing was changed" in r.error_lines[0], r
        assert "bigpkg" not in " ".join(lapis_file.names())
        assert not (lapis_file.root / "usr").exists() or not any(
            p.name.startswith("big") for p in (lapis_file.root / "usr").rglob("*")), \
            "no file of bigpkg may be written"
        if lapis_file.history_db().exists():
            assert lapis_file.sql("SELECT COUNT(*) FROM trans WHERE result = 'ok'") == [(0,)]
        # The root still works: something small fits.
        lapis_file.yes("--repo=base", "install", "pkga")
        assert "pkga" in lapis_file.names()


def test_disk_full_cache_fails_cleanly(lapis_file, tmp_path):
    """A cache disk too small for the package: the download fails with a clear
    error naming the cause and the way out, and leaves no file (final or
    partial) behind for that package; the root is untouched."""
    cache = tmp_path / "smallcache"
    with _tmpfs(cache, "1m"):
        # keepcache=1: through the cache (a file:// repo's packages are otherwise read into memory).
        r = lapis_file.run("-y", "--setopt=keepcache=1", "--repo=base", "install", "bigpkg",
                           cache=cache)
        assert r.rc == 1, r
        assert len(r.error_lines) == 1, r
        assert "No space left on device" in r.error_lines[0], r
        assert "clean packages" in r.error_lines[0], r
        left = [p.name for p in cache.rglob("bigpkg*")]
        assert left == [], left
        assert lapis_file.names() == []


# --------------------------------------------------------------------------
# Endless bodies: bounded by the size the (signed) metadata gives
# --------------------------------------------------------------------------

def test_endless_repomd_is_cut_off(lapis_http, make_reposd):
    """A server that streams repomd.xml forever (no Content-Length): lapis
    stops at its repomd.xml cap and fails that repo with one clear error."""
    reposd = make_reposd("_endless", ids=("base",))
    r = lapis_http.run("--repo=base", "makecache", reposd=reposd, timeout=60)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "base" in r.error_lines[0], r
    assert "larger" in r.error_lines[0] or "size" in r.error_lines[0], r
    assert r.elapsed < 30, "the cut-off must not wait for the 50 MB body: %s" % r


def test_endless_package_body_is_cut_off(lapis_http, http, tmp_path):
    """First mirror streams every file forever, second is good: each endless
    body is cut at the size the signed metadata gives (repomd.xml at its cap),
    lapis falls over to the good mirror, and the install succeeds quickly."""
    reposd = write_repo(tmp_path / "repos.d", "base",
                        ["%s/base" % http.repos_url("_endless"), "%s/base" % http.repos_url()])
    mark = http.mark()
    r = lapis_http.run("-v", "-y", "--repo=base", "install", "pkga", reposd=reposd, timeout=60)
    assert r.rc == 0, r
    size = os.path.getsize(FIXTURES / "repos" / "base" / "pkga-1.0-1.noarch.rpm")
    # The endless copy was cut at exactly the size primary.xml gives.
    assert "pkga-1.0-1.noarch: larger than the %d bytes allowed" % size in r.err, r
    assert "pkga" in lapis_http.names()
    assert r.elapsed < 30, r
    asked = [p for p in http.since(mark) if "_endless" in str(p) and "pkga" in str(p)]
    assert asked, "the endless mirror was never asked for the package: %s" % http.since(mark)
    for p in lapis_http.cache.rglob("pkga*"):
        assert p.stat().st_size < 1 << 20, p


# --------------------------------------------------------------------------
# A .part file that cannot be created: the run ends, with one clear error
# --------------------------------------------------------------------------

def test_part_in_the_way_fails_once_and_clearly(lapis):
    """A directory where pkga's .part file goes: open() fails with EISDIR. The
    run must end (bounded here by a timeout, so a hang fails the test) with
    one error line naming the path and the errno, release the root's lock,
    and install nothing; once the directory is gone the install works."""
    lapis.ok("--repo=base", "makecache")
    pkgs = lapis.cache_dir("base") / "packages"
    part = pkgs / "pkga-1.0-1.noarch.rpm.part"
    (part / "sub").mkdir(parents=True)      # not empty: rmdir cannot clear it either
    # keepcache=1: through the cache (a file:// repo's packages are otherwise read into memory).
    r = lapis.run("-y", "--setopt=lock_timeout=2", "--setopt=keepcache=1", "--repo=base",
                  "install", "pkga", "pkgb", timeout=30)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    assert str(part) in r.error_lines[0] and "Is a directory" in r.error_lines[0], r
    assert lapis.names() == []
    shutil.rmtree(part)
    # The root's lock was released: this run neither waits nor times out.
    r = lapis.run("-y", "--setopt=lock_timeout=2", "--repo=base", "install", "pkga", "pkgb",
                  timeout=30)
    assert r.rc == 0 and "waiting" not in r.err, r
    assert lapis.names() == ["pkga", "pkgb"]


# --------------------------------------------------------------------------
# The cache lock: clean racing installs, a held cache
# --------------------------------------------------------------------------

RACE_ROUNDS = int(os.environ.get("LAPIS_RACE_ROUNDS", "20"))


def _one_line_or_ok(res, what):
    """res is (rc, stderr): rc 0, or rc 1 with exactly one clear error line."""
    rc, err = res
    lines = [l for l in err.splitlines() if l.startswith("lapis: error:")]
    assert rc == 0 or (rc == 1 and len(lines) == 1), "%s:\n%s" % (what, err)
    return rc, lines


def test_install_races_clean_all(lapis):
    """20 rounds of `install` racing `clean all` on the same cache, started a
    spread of delays apart. Both take the cache lock (the install shared for
    the run, clean exclusive), so each waits for the other and succeeds; no
    run hangs (each is bounded by a timeout), and the rpmdb and the cache
    stay usable."""
    rng = random.Random(20261201)
    lapis.yes("--repo=base", "install", "pkga")
    lapis.yes("remove", "pkga")
    t0 = time.monotonic()
    lapis.yes("--repo=base", "install", "pkga")
    t_install = time.monotonic() - t0
    lapis.yes("remove", "pkga")
    outcomes = []
    for i in range(RACE_ROUNDS):
        delay = t_install * rng.random()
        inst = subprocess.Popen(lapis.argv("-y", "--repo=base", "install", "pkga"), env=lapis.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        clean = subprocess.run(lapis.argv("clean", "all"), env=lapis.env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30)
        try:
            _, ierr = inst.communicate(timeout=30)
        finally:
            if inst.poll() is None:
                inst.kill()
                inst.wait()
        outcomes.append(((inst.returncode, ierr), (clean.returncode, clean.stderr)))
        if "pkga" in lapis.names():
            lapis.yes("remove", "pkga")
    for i, (inst, clean) in enumerate(outcomes):
        # Each run waits for the other, so both succeed.
        assert _one_line_or_ok(inst, "install, round %d" % i)[0] == 0, inst[1]
        assert _one_line_or_ok(clean, "clean all, round %d" % i)[0] == 0, clean[1]
    _rpmdb_rows(lapis)
    lapis.yes("--repo=base", "install", "pkga")
    assert lapis.names() == ["pkga"]
    lapis.ok("clean", "all")
    lapis.ok("--repo=base", "list", "available", "pkgb")


CACHE_HOLDER = """
import fcntl, os, struct, sys, time
path, kind, byte, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
t = fcntl.F_WRLCK if kind == "w" else fcntl.F_RDLCK
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhxxxxqqixxxx", t, os.SEEK_SET, byte, 1, 0))
if kind == "w":
    os.pwrite(fd, b"%15d\\n" % os.getpid(), 16 * byte)
print("locked", flush=True)
time.sleep(hold)
"""


@pytest.fixture
def hold_cache(lapis_file, lock_holders):
    def hold(kind, byte, seconds):
        lapis_file.cache.mkdir(exist_ok=True)
        return lock_holders(CACHE_HOLDER, lapis_file.cache / "lock", kind, byte, seconds)
    return hold


def test_clean_gives_up_while_the_cache_is_in_use(lapis_file, hold_cache):
    """A run using the cache holds CACHEDIR/lock byte 0 shared: clean all
    waits lock_timeout, then fails with one line saying so, and removes
    nothing; once the run is gone, clean works."""
    lapis_file.ok("--repo=base", "makecache")
    user = hold_cache("r", 0, 30)
    r = lapis_file.run("--setopt=lock_timeout=1", "clean", "all", timeout=30)
    assert r.rc == 1 and len(r.error_lines) == 1, r
    assert "using the cache %s" % lapis_file.cache in r.error_lines[0], r
    assert "lock_timeout" in r.error_lines[0], r
    assert (lapis_file.cache_dir("base") / "repodata" / "repomd.xml").exists()
    user.kill()
    user.wait()
    r = lapis_file.ok("--setopt=lock_timeout=1", "clean", "all", timeout=30)
    assert not lapis_file.cache_dirs("base"), r


def test_reader_waits_for_a_refresh(lapis_file, hold_cache):
    """A refresh holds the metadata byte exclusively (pid recorded): a reader
    of the same cache waits for it, naming it, then goes on; with a short
    lock_timeout it gives up with one line naming the pid."""
    lapis_file.ok("--repo=base", "makecache")
    refresher = hold_cache("w", 1, 30)
    r = lapis_file.run("--setopt=lock_timeout=1", "--repo=base", "list", "available", "pkga",
                       timeout=30)
    assert r.rc == 1 and len(r.error_lines) == 1, r
    assert "pid %d" % refresher.pid in r.error_lines[0], r
    refresher.kill()
    refresher.wait()
    refresher = hold_cache("w", 1, 1.5)
    r = lapis_file.run("--setopt=lock_timeout=15", "--repo=base", "list", "available", "pkga",
                       timeout=30)
    assert r.rc == 0 and "pkga" in r.out, r
    assert "waiting for process %d" % refresher.pid in r.err, r
