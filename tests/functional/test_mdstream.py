"""Parse while downloading (src/pkg/mdstream.c): the cache a streamed refresh
makes is the one the serial path (LAPIS_MD_STREAM=0) makes, byte for byte;
a primary that is corrupt, replaced or cut short on the wire leaves the old
cache exactly as it was, with the download's own error; a compression bomb
is still refused."""

import gzip
import hashlib
import lzma
import os
import pathlib
import shutil

import httpserver
import pytest

from conftest import FIXTURES, LAPIS_BIN, clean_env, run_cmd, write_repo

STREAMED = "metadata parsed while downloading"
NOT_STREAMED = "metadata not parsed while downloading"
# Everything a query shows of a package, file lists included (they load with %{files}).
QF = ("%{full_nevra} %{repoid} %{location} %{buildtime} %{downloadsize} %{installsize} "
      "%{sourcerpm} %{summary}\\n R %{requires}\\n P %{provides}\\n C %{conflicts}\\n"
      " O %{obsoletes}\\n F %{files}\\n")


class Served:
    """A private copy of fixture repos behind a server of its own (so that
    files can be changed and per-file faults set without touching others)."""

    def __init__(self, tmp_path, ids):
        self.root = tmp_path / "srv"
        for rid in ids:
            shutil.copytree(FIXTURES / "repos" / rid, self.root / rid, symlinks=True)
        self.server, port = httpserver.start(str(self.root))
        self.url = "http://127.0.0.1:%d" % port
        self.reposd = tmp_path / "repos.d"
        for rid in ids:
            write_repo(self.reposd, rid, "%s/%s" % (self.url, rid))
        self.env = clean_env(tmp_path)

    def file(self, rid, kind):
        (p,) = (self.root / rid / "repodata").glob("*-%s.xml*" % kind)
        return p

    def lapis(self, cache, *args, stream=True):
        env = dict(self.env, LAPIS_MD_STREAM="1" if stream else "0")
        return run_cmd([LAPIS_BIN, "-v", "--installroot=%s" % (cache.parent / "root"),
                        "--setopt=reposdir=%s" % self.reposd, "--setopt=cachedir=%s" % cache,
                        "--setopt=retries=1", "--releasever=1"] + list(args), env=env)


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path, ("base", "updates"))
    yield s
    httpserver.stop(s.server)


def snapshot(top):
    """Every file and directory under TOP but the lock file (its content is
    the last holder's): relative path -> sha256 (None: a dir)."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        files = [f for f in files if dirpath != str(top) or f != "lock"]
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), top)] = None
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, top)] = hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()
    return out


def repodata_files(cache):
    """repoid/name -> bytes of every file of the cache's repodata dirs."""
    return {"%s/%s" % (p.parent.parent.name.rsplit("-", 1)[0], p.name): p.read_bytes()
            for p in sorted(cache.glob("*/repodata/*"))}


def solv_lines(data, tmp_path):
    """dumpsolv's lines of a .solv, sorted: a dependency list's order follows
    the pool's string ids, which differ between a private pool and the shared
    one once another repo was parsed into it first."""
    f = tmp_path / "x.solv"
    f.write_bytes(data)
    r = run_cmd(["dumpsolv", f])
    assert r.rc == 0, r
    return sorted(l for l in r.out.splitlines() if " took " not in l)


def test_streamed_cache_equals_serial(served, tmp_path):
    results = {}
    for stream in (False, True):
        cache = tmp_path / ("cache-%d" % stream)
        r = served.lapis(cache, "repoquery", "--qf", QF, stream=stream)
        assert r.rc == 0, r
        assert (STREAMED in r.err) == stream, r
        assert r.err.count(STREAMED) == (2 if stream else 0), r  # base and updates
        results[stream] = (r.out, repodata_files(cache))
    serial, streamed = results[False], results[True]
    assert "hello" in serial[0] and " F /" in serial[0], serial[0]
    assert streamed[0] == serial[0]
    assert sorted(streamed[1]) == sorted(serial[1])
    assert any(k.endswith("lapis-filelists.solv") for k in streamed[1]), sorted(streamed[1])
    for name in serial[1]:
        if name.startswith("base/") or not name.endswith(".solv"):
            # base is parsed first, into an empty pool either way: the same bytes
            assert streamed[1][name] == serial[1][name], "%s differs" % name
        elif shutil.which("dumpsolv"):
            assert solv_lines(streamed[1][name], tmp_path) == solv_lines(serial[1][name], tmp_path)
    # and a later run reads the streamed cache as its own
    r = served.lapis(tmp_path / "cache-1", "-C", "repoquery", "--qf", QF)
    assert r.rc == 0 and r.out == serial[0], r


def cached(served, tmp_path):
    """A cache of both repos made by a streamed makecache, and its snapshot;
    then base's server has the next signed state (the updates fixture), so a
    refresh fetches its primary."""
    cache = tmp_path / "cache"
    r = served.lapis(cache, "makecache")
    assert r.rc == 0 and r.err.count(STREAMED) == 2, r
    before = snapshot(cache)
    shutil.rmtree(served.root / "base")
    shutil.copytree(FIXTURES / "repos" / "updates", served.root / "base", symlinks=True)
    return cache, before


def assert_untouched(served, cache, before, expect):
    r = served.lapis(cache, "--repo=base", "makecache", "--refresh")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    assert "base" in r.error_lines[0] and expect in r.error_lines[0], r
    assert STREAMED not in r.err, r
    assert snapshot(cache) == before
    r = served.lapis(cache, "-C", "--repo=base", "repoquery", "hello")
    assert r.rc == 0 and "hello-" in r.out, r


def test_corrupt_primary_leaves_old_cache(served, tmp_path):
    cache, before = cached(served, tmp_path)
    p = served.file("base", "primary")
    data = bytearray(p.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))
    assert_untouched(served, cache, before, "checksum mismatch")


def test_replaced_primary_parses_but_is_refused(served, tmp_path):
    """A well-formed primary of the same size but other content parses cleanly
    while it downloads; its digest does not match, so nothing of it is kept."""
    cache, before = cached(served, tmp_path)
    p = served.file("base", "primary")
    size = p.stat().st_size
    codec = lzma if p.name.endswith(".xz") else gzip
    xml = codec.decompress(p.read_bytes())
    assert b"<name>hello</name>" in xml
    other = codec.compress(xml.replace(b"<name>hello</name>", b"<name>hellp</name>"))
    assert len(other) <= size
    # both decoders stop at the end of the stream; the padding keeps the size
    p.write_bytes(other + b"\0" * (size - len(other)))
    assert_untouched(served, cache, before, "checksum mismatch")


def test_truncated_primary_leaves_old_cache(served, tmp_path):
    cache, before = cached(served, tmp_path)
    p = served.file("base", "primary")
    served.server.faults = {p.name: {"_truncate": p.stat().st_size // 2}}
    assert_untouched(served, cache, before, "base")
    log = [e for e in served.server.log if e["path"].endswith(p.name)]
    assert len(log) >= 3, log  # the first makecache, then two cut-short attempts


def test_bomb_still_refused(tmp_path):
    s = Served(tmp_path, ("bomb",))
    try:
        r = s.lapis(tmp_path / "cache", "makecache")
    finally:
        httpserver.stop(s.server)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "decompresses to more than" in r.error_lines[0], r
    assert NOT_STREAMED in r.err, r
    assert not list((tmp_path / "cache").glob("*/repodata"))
