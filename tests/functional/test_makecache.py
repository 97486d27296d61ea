"""makecache, the metadata cache, -C/--cacheonly, --refresh and clean."""

import os
import re
import shutil
import subprocess

import httpserver
import pytest

from conftest import FIXTURES, list_sections, write_repo, write_reposd

EXPECTED_COUNTS = {"base": 26, "updates": 10}


def cache_files(cache):
    """Every file in the cache but CACHEDIR/lock (the cache lock stays)."""
    out = []
    for dirpath, _dirs, files in os.walk(cache):
        out += [os.path.join(dirpath, f) for f in files]
    return sorted(f for f in out if f != os.path.join(cache, "lock"))


def test_makecache_text(lapis):
    r = lapis.ok("makecache")
    lines = r.out.splitlines()
    assert lines[-1] == "Metadata cache created.", r
    for rid, n in EXPECTED_COUNTS.items():
        assert any(l.startswith("Lapis test repository %s " % rid) and re.search(r"\b%d packages$" % n, l)
                   for l in lines), r
    assert r.error_lines == [], r


def test_makecache_json(lapis):
    doc = lapis.json("makecache")
    assert set(doc) == {"repos"}
    repos = {x["id"]: x for x in doc["repos"]}
    assert sorted(repos) == sorted(EXPECTED_COUNTS)
    for rid, x in repos.items():
        assert x["skipped"] is False
        assert x["packages"] == EXPECTED_COUNTS[rid]
        assert isinstance(x["timestamp"], int) and x["timestamp"] > 1_700_000_000


def test_makecache_cache_layout(lapis):
    lapis.ok("makecache")
    for rid, codec in (("base", "gz"), ("updates", "xz")):
        d = lapis.cache_dir(rid)
        assert re.fullmatch(r"%s-[0-9a-f]{8,64}" % re.escape(rid), d.name), d
        rd = d / "repodata"
        names = os.listdir(rd)
        assert "repomd.xml" in names, names
        assert "lapis-main.solv" in names, names
        assert any(n.startswith("primary.xml") or n.endswith("primary.xml." + codec) for n in names), names
        # The cached repomd.xml is the repository's own.
        assert (rd / "repomd.xml").read_bytes() == (FIXTURES / "repos" / rid / "repodata" / "repomd.xml").read_bytes()
    # Nothing is written into the install root when cachedir is explicit.
    assert not (lapis.root / "var" / "cache").exists()


def test_cache_dir_depends_on_baseurl(lapis_file, tmp_path):
    """A different baseurl for the same repo id gets a different cache dir."""
    lapis_file.ok("--repo=base", "makecache")
    first = lapis_file.cache_dir("base")
    rd = write_repo(tmp_path / "other.d", "base", "file://%s/repos/base/" % FIXTURES)
    lapis_file.ok("--repo=base", "makecache", reposd=rd)
    dirs = lapis_file.cache_dirs("base")
    assert len(dirs) == 2 and first in dirs, dirs


def test_filelists_are_fetched_lazily(lapis):
    lapis.ok("makecache")
    lapis.ok("list", "hello")
    lapis.ok("repoquery", "--requires", "hello")
    for rid in EXPECTED_COUNTS:
        names = os.listdir(lapis.cache_dir(rid) / "repodata")
        assert not any("filelists" in n for n in names), (rid, names)
    r = lapis.ok("provides", "/usr/share/hello/data.txt")
    assert "hello-1.0-1.x86_64" in r.out and "hello-2.1-1.x86_64" in r.out, r
    for rid in EXPECTED_COUNTS:
        names = os.listdir(lapis.cache_dir(rid) / "repodata")
        assert any(n.startswith("filelists.xml") for n in names), (rid, names)


def test_second_makecache_does_no_network_io(lapis_http, http):
    lapis_http.ok("makecache")
    mark = http.mark()
    lapis_http.ok("makecache")
    lapis_http.ok("list", "hello")
    assert http.since(mark) == []


def test_first_makecache_fetches_signed_repomd(lapis_http, http):
    mark = http.mark()
    lapis_http.ok("makecache")
    paths = [e["path"] for e in http.since(mark)]
    for rid in ("base", "updates"):
        assert "/repos/%s/repodata/repomd.xml" % rid in paths, paths
        assert "/repos/%s/repodata/repomd.xml.asc" % rid in paths, paths
        assert any(re.fullmatch(r"/repos/%s/repodata/[0-9a-f]+-primary\.xml\.\w+" % rid, p) for p in paths), paths
    assert not any("filelists" in p for p in paths), paths
    assert all(e["status"] == 200 for e in http.since(mark)), http.since(mark)


def test_refresh_refetches_repomd(lapis_http, http):
    lapis_http.ok("makecache")
    mark = http.mark()
    lapis_http.ok("makecache", "--refresh")
    paths = [e["path"] for e in http.since(mark)]
    assert "/repos/base/repodata/repomd.xml" in paths, paths
    assert "/repos/updates/repodata/repomd.xml" in paths, paths


def test_metadata_expire_zero_refetches(lapis_http, http):
    lapis_http.ok("makecache")
    mark = http.mark()
    lapis_http.ok("--setopt=metadata_expire=0", "makecache")
    paths = [e["path"] for e in http.since(mark)]
    assert "/repos/base/repodata/repomd.xml" in paths, paths


def test_refresh_file_transport_keeps_cache_valid(lapis_file):
    lapis_file.ok("makecache")
    lapis_file.ok("makecache", "--refresh")
    r = lapis_file.ok("-C", "list", "hello")
    assert ("hello.x86_64", "2.1-1", "updates") in list_sections(r.out)["Available packages"], r


def test_cacheonly_without_cache_fails(lapis):
    r = lapis.run("-C", "list")
    assert r.rc == 1, r
    assert "makecache" in r.err, r
    assert len(r.error_lines) == 1, r
    assert r.out == "", r
    assert not lapis.cache_dirs("base") or not os.path.exists(lapis.cache_dir("base") / "repodata" / "repomd.xml")


def test_cacheonly_works_offline(transport, tmp_path, lapis_file):
    """makecache, then take the repositories away: -C (and a plain query
    within metadata_expire) still answer from the cache."""
    lapis = lapis_file
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES / "repos" / "base", mirror / "base")
    shutil.copytree(FIXTURES / "repos" / "updates", mirror / "updates")
    server = None
    if transport == "http":
        server, port = httpserver.start(str(mirror))
        base = "http://127.0.0.1:%d" % port
    else:
        base = "file://%s" % mirror
    rd = write_reposd(tmp_path / "mirror.d", base, ids=("base", "updates"))
    try:
        lapis.ok("makecache", reposd=rd)
    finally:
        if server:
            httpserver.stop(server)
    shutil.rmtree(mirror)
    for args in (("-C", "list"), ("--cacheonly", "list"), ("list",)):
        r = lapis.run(*args, reposd=rd)
        assert r.rc == 0, r
        avail = list_sections(r.out)["Available packages"]
        assert ("hello.x86_64", "2.1-1", "updates") in avail, r
        assert ("epochpkg.noarch", "1:1.0-1", "base") in avail, r
    # Only --refresh insists on the network, and then it fails.
    r = lapis.run("--setopt=retries=1", "--refresh", "makecache", reposd=rd)
    assert r.rc == 1, r


def test_cacheonly_dead_port(lapis_file, tmp_path):
    """The brief's variant: same baseurl, server now dead."""
    server, port = httpserver.start(str(FIXTURES))
    rd = write_reposd(tmp_path / "dead.d", "http://127.0.0.1:%d/repos" % port, ids=("base", "updates"))
    try:
        lapis_file.ok("makecache", reposd=rd)
    finally:
        httpserver.stop(server)
    r = lapis_file.run("-C", "list", "hello", reposd=rd)
    assert r.rc == 0, r
    assert ("hello.x86_64", "2.1-1", "updates") in list_sections(r.out)["Available packages"], r
    r = lapis_file.run("-C", "--json", "repoquery", "hello", reposd=rd)
    assert r.rc == 0, r
    assert len(r.json()["packages"]) == 3


def test_clean_all(lapis):
    lapis.ok("makecache")
    lapis.ok("provides", "/usr/bin/hello")  # also pull in filelists
    before = cache_files(lapis.cache)
    assert before
    r = lapis.ok("clean", "all")
    assert r.out.strip() == "%d files removed" % len(before), (r, before)
    assert cache_files(lapis.cache) == []
    r = lapis.run("-C", "list")
    assert r.rc == 1 and "makecache" in r.err, r


def test_clean_needs_an_argument(lapis):
    """dnf5 has no default for clean: a bare `clean` is a usage error (exit 2)
    and removes nothing (lapis used to take it as `clean all`)."""
    lapis.ok("makecache")
    before = cache_files(lapis.cache)
    r = lapis.run("clean")
    assert r.rc == 2, r
    assert r.err.strip() == "lapis: error: clean needs an argument: all, metadata or packages", r
    assert r.out == "" and cache_files(lapis.cache) == before, r


def test_clean_metadata_json(lapis):
    lapis.ok("makecache")
    n = len(cache_files(lapis.cache))
    doc = lapis.json("clean", "metadata")
    assert doc == {"removed": n}
    assert cache_files(lapis.cache) == []
    assert lapis.json("clean", "metadata") == {"removed": 0}


def test_clean_packages_keeps_metadata(lapis):
    lapis.ok("makecache")
    before = cache_files(lapis.cache)
    r = lapis.ok("clean", "packages")
    assert r.out.strip() == "0 files removed", r
    assert cache_files(lapis.cache) == before
    lapis.ok("-C", "list", "hello")


def test_clean_packages_removes_downloaded_packages(lapis_file):
    lapis_file.ok("makecache")
    pkgdir = lapis_file.cache_dir("base") / "packages"
    pkgdir.mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "rpms" / "pkga-1.0-1.noarch.rpm", pkgdir)
    shutil.copy(FIXTURES / "rpms" / "pkgb-1.0-1.noarch.rpm", pkgdir)
    r = lapis_file.ok("clean", "packages")
    assert r.out.strip() == "2 files removed", r
    assert not pkgdir.exists() or os.listdir(pkgdir) == []
    lapis_file.ok("-C", "list", "hello")


def test_clean_one_file_singular(lapis_file):
    lapis_file.ok("makecache")
    pkgdir = lapis_file.cache_dir("base") / "packages"
    pkgdir.mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "rpms" / "pkga-1.0-1.noarch.rpm", pkgdir)
    r = lapis_file.ok("clean", "packages")
    assert r.out.strip() == "1 file removed", r


def test_clean_empty_cache(lapis):
    r = lapis.ok("clean", "all")
    assert r.out.strip() == "0 files removed", r


def test_clean_bad_argument(lapis):
    r = lapis.run("clean", "bogus")
    assert r.rc == 2 and "bogus" in r.err, r


@pytest.mark.parametrize("opt", ["-q", "--quiet"])
def test_makecache_quiet(lapis, opt):
    r = lapis.run(opt, "makecache")
    assert r.rc == 0, r
    assert r.out == "" and r.err == "", r


def test_concurrent_refreshes_share_one_cache(lapis):
    """Several lapis processes refreshing the same cache at once all succeed,
    and they leave one consistent cache without temporary files behind."""
    procs = [subprocess.Popen(lapis.argv("-q", "makecache", "--refresh"), env=lapis.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(5)]
    procs += [subprocess.Popen(lapis.argv("-q", "list", "hello"), env=lapis.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, (p.args, out, err)
    assert sorted(d.name.rsplit("-", 1)[0] for d in lapis.cache.iterdir()
                  if d.is_dir() and d.name != "keyfacts") == ["base", "updates"]
    for f in cache_files(lapis.cache):
        assert not f.endswith(".part") and ".tmp" not in f, f
    r = lapis.ok("-C", "list", "hello")
    assert ("hello.x86_64", "2.1-1", "updates") in list_sections(r.out)["Available packages"], r


def test_zstd_metadata_is_read(lapis):
    """The unsigned repo's metadata is zstd-compressed (base: gz, updates: xz)."""
    r = lapis.ok("--nogpgcheck", "--repo=unsigned", "list")
    assert "unsignedpkg.noarch" in r.out, r
    rd = lapis.cache_dir("unsigned") / "repodata"
    assert "primary.xml.zst" in os.listdir(rd)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_warm_cache_reads_repomd_once_per_purpose(lapis_file):
    """A run on a fresh cache loads each repo from its .solv: repomd.xml is read
    once to parse it and once for the .solv cookie, not again for a details
    cookie only an XML parse needs."""
    lapis = lapis_file
    lapis.ok("makecache")
    log = lapis.tmp / "strace.log"
    r = run_strace(lapis, log, "-C", "list", "--available")
    assert r.returncode == 0, r
    opens = [l for l in log.read_text().splitlines()
             if "repodata/repomd.xml\"" in l and "openat(" in l and "= -1" not in l]
    repos = len(EXPECTED_COUNTS)
    assert len(opens) <= 2 * repos, "\n".join(opens)


def run_strace(lapis, log, *args):
    # LeakSanitizer cannot run under ptrace: under make asan the leak check is
    # off for this one traced run (every other run keeps it).
    env = dict(lapis.env)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    return subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log)] +
                          [str(a) for a in lapis.argv(*args)], env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


COUNT_REPOS = "--enablerepo=base,updates,many1,termtext,badhref,empty"


def makecache_counts(lapis, cache, *opts, stream=True):
    saved = dict(lapis.env)
    if not stream:
        lapis.env["LAPIS_MD_STREAM"] = "0"  # parsed after the download: always loaded
    try:
        r = lapis.run("-v", "--json", COUNT_REPOS, *opts, "makecache", cache=cache)
    finally:
        lapis.env.clear()
        lapis.env.update(saved)
    assert r.rc == 0, r
    counts = {x["id"]: (x["packages"], x["skipped"]) for x in r.json()["repos"]}
    unloaded = set(re.findall(r"debug: repo (\S+): \d+ packages, counted while parsing; not loaded",
                              r.err))
    return counts, unloaded, r.warning_lines


@pytest.mark.parametrize("opts,filtered", [
    ((), ()),
    (("--exclude=e*",), COUNT_REPOS.split("=")[1].split(",")),
    (("--setopt=base.includepkgs=hello,glibc",), ("base",)),
    (("--setopt=updates.excludepkgs=*",), ("updates",)),
])
def test_makecache_counts_without_loading(lapis, tmp_path, opts, filtered):
    """makecache counts a repo parsed while downloading without loading the
    .solv it wrote; what it prints equals what the load counts (advisories
    left out), and a repo an exclude or include may change, or whose unsafe
    locations the load warns of, is loaded as before."""
    counts, unloaded, warnings = makecache_counts(lapis, tmp_path / "stream", *opts)
    want, none, want_warnings = makecache_counts(lapis, tmp_path / "serial", *opts, stream=False)
    assert counts == want
    assert warnings == want_warnings and any("badhref" in w for w in warnings), warnings
    assert none == set()
    assert unloaded == set(counts) - set(filtered) - {"badhref"}, (unloaded, counts)
    if filtered:
        full, _, _ = makecache_counts(lapis, tmp_path / "full")
        assert any(counts[r][0] < full[r][0] for r in filtered), (counts, full)
    # The caches it did not load count the same when a later run loads them.
    again, none, _ = makecache_counts(lapis, tmp_path / "stream", *opts)
    assert again == counts and none == set()
