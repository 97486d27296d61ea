"""dnf5's everyday experience: per repository metadata progress on a terminal
(never when redirected, with -q or --json), and what -v says lapis does:
config and repo files read, each repo's cache age, why each package of a
transaction was chosen, and a download resumed from its .part file."""

import os
import re
import subprocess
import threading

import pytest

from conftest import FIXTURES, write_repo

PROGRESS_LINE = re.compile(r"^ (base|updates) +(\d+%| ---) \| +[\d.]+ [KMG]?i?B/s \| +[\d.]+ [KMG]?i?B \| ")


def run_all_on_pty(lapis, *args):
    """stdin, stdout and stderr all on one pseudo-terminal; returns (rc, text)."""
    import pty
    master, slave = pty.openpty()
    chunks = []

    def reader():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                return
            if not b:
                return
            chunks.append(b)

    t = threading.Thread(target=reader)
    t.start()
    try:
        p = subprocess.Popen(lapis.argv(*args), stdin=slave, stdout=slave, stderr=slave,
                             env=lapis.env)
        rc = p.wait(timeout=60)
    finally:
        os.close(slave)
        t.join(timeout=10)
        os.close(master)
    return rc, b"".join(chunks).decode(errors="replace")


def screen_lines(text):
    """The lines a terminal ends up showing: cursor-up redraws folded away."""
    out = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        ups = [int(n) for n in re.findall(r"\x1b\[(\d+)A", raw)]
        for n in ups:
            del out[len(out) - n:]
        raw = re.sub(r"\x1b\[\d*[AK]", "", raw)
        out.append(raw.split("\r")[-1])
    return out


def assert_metadata_block(text):
    """The screen's progress block: a line per repo, every one at 100% in the
    final state, nothing half drawn after it. Returns the lines after it."""
    lines = screen_lines(text)
    start = lines.index("Updating and loading repositories:")
    end = lines.index("Repositories loaded.")
    block = lines[start + 1:end]
    assert sorted(PROGRESS_LINE.match(l).group(1) for l in block) == ["base", "updates"], lines
    assert all(" 100% " in l for l in block), block
    return lines[end:]


def test_metadata_progress_on_a_tty(lapis_http):
    rc, text = run_all_on_pty(lapis_http, "makecache")
    assert rc == 0, text
    assert_metadata_block(text)
    assert "\x1b[" in text  # redrawn in place


def test_metadata_progress_on_a_cold_install(lapis_http):
    """A cold install loads the metadata as makecache does: the same lines,
    before the transaction table."""
    rc, text = run_all_on_pty(lapis_http, "--assumeno", "install", "hello")
    assert rc == 1, text  # answered no
    after = assert_metadata_block(text)
    assert any(l.startswith("Installing:") for l in after), after


def frames(text):
    """Every progress line the terminal was sent, redrawn ones included."""
    lines = (raw.split("\r")[-1] for raw in text.replace("\r\n", "\n").split("\n"))
    return [re.sub(r"\x1b\[\d*[AK]", "", l) for l in lines if PROGRESS_LINE.match(
        re.sub(r"\x1b\[\d*[AK]", "", l))]


def test_metadata_progress_shows_an_eta_while_it_downloads(lapis_http, make_reposd):
    """A slow link (8 KB/s): the lines in between give percent and an ETA
    (dnf5's columns); the last one, at 100%, the time it took instead."""
    reposd = make_reposd("_slow/8000", ids=("base",))
    rc, text = run_all_on_pty(lapis_http, "--setopt=reposdir=%s" % reposd, "makecache")
    assert rc == 0, text
    seen = frames(text)
    eta = [l for l in seen if re.search(r"^ base +\d+% \|.*\| ETA \d\dm\d\ds$", l)]
    assert eta and any(" 100% " not in l for l in eta), seen
    assert re.search(r"^ base +100% \|.*\| \d\dm\d\ds$", seen[-1]), seen


@pytest.mark.parametrize("how", ["piped", "quiet", "json"])
def test_no_metadata_progress_when_not_a_tty(lapis_http, how):
    if how == "piped":
        r = lapis_http.run("makecache")
    else:
        rc, text = run_all_on_pty(lapis_http, "-q" if how == "quiet" else "--json", "makecache")
        assert rc == 0, text
        r = type("R", (), {"out": text, "err": ""})
    both = r.out + r.err
    assert "\x1b[" not in both and "B/s" not in both, both
    assert not any(PROGRESS_LINE.match(l) for l in both.splitlines()), both


def test_verbose_names_config_and_repo_files(lapis):
    r = lapis.ok("-v", "repolist")
    assert "lapis: debug: config file /etc/lapis/lapis.conf: absent, using defaults" in r.err or \
        "lapis: debug: reading config file " in r.err, r
    for f in sorted(os.listdir(lapis.reposd)):
        if f.endswith(".repo"):
            assert "lapis: debug: reading repo file %s" % (lapis.reposd / f) in r.err, r


def test_verbose_cache_age(lapis):
    r = lapis.ok("-v", "makecache")
    assert re.search(r"debug: repo base: enabled, baseurl \S+", r.err), r
    assert "debug: repo base: no cached metadata: fetching it" in r.err, r
    r = lapis.ok("-v", "list", "available")
    assert re.search(r"debug: repo base: cache is \d+ s old, metadata_expire 48 h: using it", r.err), r
    r = lapis.ok("-v", "--setopt=metadata_expire=0", "list", "available")
    assert re.search(r"debug: repo base: cache is \d+ s old, metadata_expire 0 s: expired: refreshing",
                     r.err), r


def test_verbose_says_why_a_dependency_is_installed(lapis):
    r = lapis.run("-v", "--assumeno", "install", "hello")
    assert r.rc == 1, r
    assert re.search(r"debug: hello-\S+ is installed: user request", r.err), r
    assert re.search(r"debug: libfoo-\S+ is installed as a dependency of hello-\S+ "
                     r"\(requires libfoo\)", r.err), r


def test_verbose_says_a_download_resumes(lapis_http, http):
    """A .part left by an interrupted run: -v says it is resumed, and it is (a range request)."""
    lapis = lapis_http
    big = "bigpkg-1.0-1.x86_64.rpm"
    lapis.ok("makecache")
    pkgdir = lapis.cache_dir("base") / "packages"
    pkgdir.mkdir(exist_ok=True)
    part = pkgdir / (big + ".part")
    part.write_bytes((FIXTURES / "repos" / "base" / big).read_bytes()[:100000])
    mark = http.mark()
    r = lapis.ok("-v", "-y", "install", "bigpkg", timeout=120)
    assert re.search(r"debug: repo base: bigpkg-1.0-1.x86_64: resuming the interrupted download "
                     r"\(100000 bytes kept in \S+\.part\)", r.err), r
    got = [(e["status"], e["range"]) for e in http.since(mark) if e["path"].endswith(big)]
    assert got == [(206, "bytes=100000-")], got
