"""SIGINT/SIGTERM during a run (docs/reliability.md, "Interrupted runs"):
one line says what was kept, the exit code is 130/143, and nothing else
changes. A download stops at once and keeps its .part for the next run to
resume; the lock wait stops; the rpm transaction is never cut: a signal
during it waits until it has completed."""

import json
import signal
import subprocess
import threading
import time

import pytest

from conftest import FIXTURES, write_repo

BIG = "bigpkg-1.0-1.x86_64.rpm"
SLOW_BPS = 400000          # bigpkg (2 MiB) takes ~5 s; the metadata a few 0.05 s steps
SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


def start(lapis, *args, reposd=None):
    return subprocess.Popen(lapis.argv(*args, reposd=reposd), env=lapis.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(what, pred, proc, timeout=30):
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail("lapis exited (%s) before %s:\n%s\n%s" % (proc.returncode, what, out, err))
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for %s" % what)
        time.sleep(0.02)


def finish(proc, timeout=20):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("lapis did not stop after the signal:\n%s\n%s" % (out, err))
    return proc.returncode, out, [l for l in err.splitlines() if l.startswith("lapis:")]


def history_rows(lapis):
    if not lapis.history_db().exists():
        return []
    return lapis.sql("SELECT id, result FROM trans ORDER BY id")


@pytest.mark.parametrize("sig,rc", SIGNALS)
def test_signal_during_download(lapis_http, http, tmp_path, sig, rc):
    lapis = lapis_http
    rd = write_repo(tmp_path / "rd", "base", "%s/_slow/%d/repos/base" % (http.url, SLOW_BPS))
    lapis.ok("makecache", reposd=rd)
    part = lapis.cache_dir("base") / "packages" / (BIG + ".part")
    p = start(lapis, "-y", "install", "bigpkg", reposd=rd)
    wait_for("the download to start", lambda: part.exists() and part.stat().st_size > 100000, p)
    p.send_signal(sig)
    code, out, lines = finish(p)
    assert code == rc, (code, out, lines)
    kept = part.stat().st_size
    assert lines == ["lapis: interrupted: nothing was changed; 1 partial download (%d bytes) kept "
                     "in %s, the next run resumes it" % (kept, lapis.cache)], lines
    assert "Complete!" not in out
    assert 0 < kept < (FIXTURES / "repos" / "base" / BIG).stat().st_size
    # the root is as it was: no rpmdb entries (not even a key), no history, no files
    assert lapis.rpm_qa() == []
    assert history_rows(lapis) == []
    assert not (lapis.root / "usr/share/bigpkg").exists()

    mark = http.mark()
    lapis.yes("install", "bigpkg", reposd=rd, timeout=120)
    got = [(e["status"], e["range"]) for e in http.since(mark) if e["path"].endswith(BIG)]
    assert got == [(206, "bytes=%d-" % kept)], got
    assert lapis.names() == ["bigpkg"]
    assert lapis.rpm("-V", "bigpkg").rc == 0
    assert [r[1] for r in history_rows(lapis)] == ["ok"]


@pytest.mark.parametrize("sig,rc", SIGNALS)
def test_signal_during_download_json(lapis_http, http, tmp_path, sig, rc):
    """--json: the error document on stdout, the one line on stderr."""
    lapis = lapis_http
    rd = write_repo(tmp_path / "rd", "base", "%s/_slow/%d/repos/base" % (http.url, SLOW_BPS))
    lapis.ok("makecache", reposd=rd)
    part = lapis.cache_dir("base") / "packages" / (BIG + ".part")
    p = start(lapis, "--json", "-y", "install", "bigpkg", reposd=rd)
    wait_for("the download to start", lambda: part.exists() and part.stat().st_size > 0, p)
    p.send_signal(sig)
    code, out, lines = finish(p)
    assert code == rc and len(lines) == 1 and "interrupted" in lines[0], (code, out, lines)
    doc = json.loads(out)
    assert doc["error"] == {"message": lines[0][len("lapis: "):], "code": -1040}, doc
    assert lapis.rpm_qa() == [] and part.stat().st_size > 0


@pytest.mark.parametrize("sig,rc", SIGNALS)
def test_signal_during_refresh_keeps_the_old_metadata(lapis_http, http, tmp_path, sig, rc):
    """Each request waits 1.5 s; the signal comes during the first one. With
    skip_if_unavailable=1 the repo is still not 'skipped': the run stops."""
    lapis = lapis_http
    rd = write_repo(tmp_path / "rd", "base", "%s/_latency/1500/repos/base" % http.url,
                    skip_if_unavailable=1)
    lapis.ok("makecache", reposd=rd)
    before = sorted(p.name for p in (lapis.cache_dir("base") / "repodata").iterdir())
    p = start(lapis, "makecache", "--refresh", reposd=rd)
    time.sleep(0.7)
    p.send_signal(sig)
    code, out, lines = finish(p)
    assert code == rc, (code, out, lines)
    assert lines == ["lapis: interrupted: nothing was changed (metadata not yet refreshed "
                     "stays as it was)"], lines
    assert "Metadata cache created" not in out
    cdir = lapis.cache_dir("base")
    assert sorted(p.name for p in (cdir / "repodata").iterdir()) == before
    assert not [p for p in cdir.iterdir() if p.name.startswith("repodata.new-")]
    assert "hello.x86_64" in lapis.ok("-C", "list", "hello", reposd=rd).out


@pytest.mark.parametrize("sig,rc", SIGNALS)
def test_signal_while_waiting_for_the_lock(lapis_file, hold_lock, sig, rc):
    holder = hold_lock(30)
    p = start(lapis_file, "-y", "--setopt=lock_timeout=30", "install", "pkga")
    first = []
    reader = threading.Thread(target=lambda: first.append(p.stderr.readline()), daemon=True)
    reader.start()
    reader.join(20)
    assert first and "waiting for process %d" % holder.pid in first[0], first
    t0 = time.monotonic()
    p.send_signal(sig)
    code, out, lines = finish(p)
    assert time.monotonic() - t0 < 5
    assert code == rc, (code, out, lines)
    assert lines == ["lapis: interrupted: nothing was changed (it was waiting for process %d "
                     "to finish with %s)" % (holder.pid, lapis_file.root)], lines
    assert lapis_file.installed() == []


@pytest.mark.parametrize("sig,rc", SIGNALS)
def test_signal_during_the_transaction_waits_for_it(lapis_file, sig, rc):
    """slowpost's %post sleeps 3 s inside rpm: the signal comes then, and the
    transaction and its history record still complete."""
    started = lapis_file.root / "var/lib/slowpost/started"
    p = start(lapis_file, "-y", "--repo=slowtx", "install", "slowpost")
    wait_for("the scriptlet to start", started.exists, p)
    p.send_signal(sig)
    code, out, lines = finish(p)
    assert code == rc, (code, out, lines)
    assert lines == ["lapis: interrupted: the transaction had already started and was "
                     "completed; nothing is left half-done"], lines
    assert "Complete!" in out
    assert lapis_file.names() == ["slowpost"]
    assert lapis_file.rpm("-V", "slowpost").rc == 0
    assert [r[1] for r in history_rows(lapis_file)] == ["ok"]
