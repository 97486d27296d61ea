"""The parallel primary.xml parse (src/pkg/mdparse.c) and the expat-free one
(src/pkg/mdfast.c) give the same cache as libsolv's serial parse
(LAPIS_MD_FAST=0 LAPIS_MD_THREADS=1): every package's NEVRA, checksum-bearing location, deps, files
and texts, over the fixtures (always) and the 63k-package benchmark repo (when
build/bench/debrepo exists). LAPIS_MD_THREADS=1 forces the serial parse;
LAPIS_MD_CHUNK=1 cuts a chunk at every <package>, so the small fixtures go
through the splitter and the merge as much as the big repo does. Hostile
primary.xml (markup-like text in CDATA and comments, '<' in an attribute, a
truncated document) parses as serially, or fails the same way, and a failed
refresh leaves the old cache as it was."""

import gzip
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, SRCROOT, write_repo

QF = ("%{full_nevra}|%{repoid}|%{summary}|%{description}|%{url}|%{license}|%{sourcerpm}|"
      "%{installsize}|%{downloadsize}|%{buildtime}|%{location}|%{requires}|%{provides}|"
      "%{recommends}|%{suggests}|%{conflicts}|%{obsoletes}|%{files}\\n")
SERIAL = {"LAPIS_MD_THREADS": "1"}
LIBSOLV = {"LAPIS_MD_THREADS": "1", "LAPIS_MD_FAST": "0"}
PARALLEL = {"LAPIS_MD_THREADS": "4", "LAPIS_MD_CHUNK": "1"}
# libsolv's own parse first: the one every other must equal
MODES = (("libsolv", LIBSOLV), ("serial", SERIAL), ("parallel", PARALLEL))
BENCH_REPO = pathlib.Path(os.environ.get("LAPIS_BENCH_REPO") or SRCROOT / "build" / "bench" / "debrepo")


def run_with(lapis, knobs, *args, cache, **kw):
    saved = dict(lapis.env)
    lapis.env.update(knobs)
    try:
        return lapis.run(*args, cache=cache, **kw)
    finally:
        lapis.env.clear()
        lapis.env.update(saved)


def query_all(lapis, knobs, cache, *opts, reposd=None, timeout=60):
    r = run_with(lapis, knobs, *opts, "makecache", cache=cache, reposd=reposd, timeout=timeout)
    assert r.rc == 0, r
    r = run_with(lapis, knobs, *opts, "repoquery", "--qf", QF, "*", cache=cache, reposd=reposd,
                 timeout=timeout)
    assert r.rc == 0, r
    return r.out


def test_parallel_equals_serial_fixtures(lapis_file, tmp_path):
    repos = "--enablerepo=base,updates,many1,many2,termtext,nobest"
    out = {name: query_all(lapis_file, knobs, tmp_path / name, repos) for name, knobs in MODES}
    assert out["libsolv"].count("\n") > 100, out
    assert out["serial"] == out["libsolv"]
    assert out["parallel"] == out["libsolv"]


@pytest.mark.skipif(not (BENCH_REPO / "repodata" / "repomd.xml").exists(),
                    reason="no benchmark repo (bench/run makes build/bench/debrepo)")
def test_parallel_equals_serial_bench_repo(lapis_file, tmp_path):
    rd = write_repo(tmp_path / "bench.d", "debian", "file://%s" % BENCH_REPO,
                    gpgcheck=0, repo_gpgcheck=0)
    out = {}
    for name, knobs in (("libsolv", LIBSOLV), ("serial", SERIAL),
                        ("parallel", {"LAPIS_MD_THREADS": "2"})):
        cache = tmp_path / name
        for cmd in (("makecache",), ("repoquery", "--qf", QF, "*")):
            r = run_with(lapis_file, knobs, *cmd, cache=cache, reposd=rd, timeout=600)
            assert r.rc == 0, r
        out[name] = r.out
    assert out["libsolv"].count("|debian|") > 60000
    assert out["serial"] == out["libsolv"]
    assert out["parallel"] == out["libsolv"]


def synthetic_packages(n):
    """A Debian Packages index of n made-up packages: deps on earlier ones,
    provides, alternatives (rich deps), conflicts."""
    out = []
    for i in range(n):
        deps = "p%05d (>= 1.%d)" % (i - 1, (i - 1) % 7) if i else "libc6"
        if i % 5 == 0 and i > 1:
            deps += ", p%05d | virt%d" % (i - 2, i % 11)
        out.append("Package: p%05d\nVersion: %d:1.%d-%d\nArchitecture: %s\n"
                   "Provides: virt%d\nDepends: %s\nConflicts: q%d (<< 2)\n"
                   "Installed-Size: %d\nSize: %d\nDescription: made-up package %d\n"
                   " Its text, line two.\n"
                   % (i, i % 3, i % 7, i % 4 + 1, "all" if i % 9 == 0 else "amd64",
                      i % 13, deps, i % 17, i + 1, 100 + i, i))
    return "\n".join(out)


def test_batches_equal_libsolv_synthetic_repo(lapis_file, tmp_path):
    """10k packages: the fast parser puts each 4096 into a repodata of its own,
    and file lists (one directory per package) extend the packages of every
    batch. The caches give what libsolv's one-repodata parse gives."""
    index = tmp_path / "Packages"
    index.write_text(synthetic_packages(10000))
    repo = tmp_path / "repo"
    subprocess.run([sys.executable, str(SRCROOT / "bench" / "gen-debian-repo.py"), str(repo),
                    str(index)], check=True, capture_output=True, env=dict(os.environ,
                    SOURCE_DATE_EPOCH="1767225600"))
    rd = write_repo(tmp_path / "syn.d", "syn", "file://%s" % repo, gpgcheck=0, repo_gpgcheck=0)
    out = {}
    for name, knobs in (("libsolv", LIBSOLV), ("serial", SERIAL), ("stream", {})):
        out[name] = query_all(lapis_file, knobs, tmp_path / name, reposd=rd)
    assert out["libsolv"].count("|syn|") == 10000
    assert out["libsolv"].count("/usr/share/doc/p09999/copyright") == 1
    assert out["serial"] == out["libsolv"]
    assert out["stream"] == out["libsolv"]
    # The file lists parsed in the same run as primary.xml, into the pool of
    # batches itself (no .solv between them), streamed and serially.
    for name, knobs in (("cold-stream", {}), ("cold-serial", {"LAPIS_MD_STREAM": "0"})):
        r = run_with(lapis_file, knobs, "repoquery", "--qf", QF, "*", cache=tmp_path / name,
                     reposd=rd, timeout=120)
        assert r.rc == 0, r
        assert r.out == out["libsolv"], name


# --- hostile primary.xml -----------------------------------------------------

def make_repo(dest, edit):
    """A copy of the base fixture repo whose primary.xml is edit(text), repomd.xml updated."""
    shutil.copytree(FIXTURES / "repos" / "base", dest)
    rd = dest / "repodata"
    (rd / "repomd.xml.asc").unlink()
    prim = next(p for p in rd.iterdir() if p.name.endswith("primary.xml.gz"))
    old_gz = prim.read_bytes()
    old_xml = gzip.decompress(old_gz)
    xml = edit(old_xml.decode()).encode()
    gz = gzip.compress(xml, mtime=0)
    prim.unlink()
    (rd / ("%s-primary.xml.gz" % hashlib.sha256(gz).hexdigest())).write_bytes(gz)
    md = (rd / "repomd.xml").read_text()
    for old, new in ((hashlib.sha256(old_gz).hexdigest(), hashlib.sha256(gz).hexdigest()),
                     (hashlib.sha256(old_xml).hexdigest(), hashlib.sha256(xml).hexdigest())):
        md = md.replace(old, new)
    md = md.replace("<size>%d</size>" % len(old_gz), "<size>%d</size>" % len(gz))
    md = md.replace("<open-size>%d</open-size>" % len(old_xml), "<open-size>%d</open-size>" % len(xml))
    (rd / "repomd.xml").write_text(md)
    return dest


def markup_in_text(xml):
    """'<package' where a lexer that did not know comments and CDATA would cut."""
    xml = xml.replace("<description>", "<description><![CDATA[<package type=\"rpm\"> <!-- ]]>", 1)
    return xml.replace("</package>", "</package>\n<!-- <package type=\"rpm\"> -->", 3)


def lt_in_attribute(xml):
    return xml.replace('<package type="rpm">', '<package type="rpm" x="<package">', 5)


def entity_late(xml):
    """An undefined entity in the last package: the fast parser reads the
    others, libsolv fails on this one at its line."""
    i = xml.rindex("<summary>") + len("<summary>")
    return xml[:i] + "&undefined;" + xml[i:]


def truncated(xml):
    cut = [m.start() for m in re.finditer("<package ", xml)]
    return xml[:cut[len(cut) // 2] + 40]


def hostile_setup(lapis, tmp_path, edit):
    repo = make_repo(tmp_path / "repo", edit)
    return write_repo(tmp_path / "h.d", "hostile", "file://%s" % repo, gpgcheck=0, repo_gpgcheck=0)


def test_markup_in_cdata_and_comments_parses_as_serially(lapis_file, tmp_path):
    rd = hostile_setup(lapis_file, tmp_path, markup_in_text)
    out = {}
    for name, knobs in MODES:
        cache = tmp_path / name
        for cmd in (("makecache",), ("repoquery", "--qf", QF, "*")):
            r = run_with(lapis_file, knobs, *cmd, cache=cache, reposd=rd)
            assert r.rc == 0, r
        out[name] = r.out
    assert "<package" in out["libsolv"]  # the CDATA text is in a description
    assert out["serial"] == out["libsolv"]
    assert out["parallel"] == out["libsolv"]


@pytest.mark.parametrize("edit", [lt_in_attribute, truncated, entity_late],
                         ids=["lt-in-attribute", "truncated", "entity-late"])
def test_bad_primary_fails_as_serially(lapis_file, tmp_path, edit):
    rd = hostile_setup(lapis_file, tmp_path, edit)
    lines = {}
    for name, knobs in MODES:
        r = run_with(lapis_file, knobs, "makecache", cache=tmp_path / name, reposd=rd)
        assert r.rc == 1, r
        assert len(r.error_lines) == 1 and "malformed" in r.error_lines[0], r
        lines[name] = r.error_lines[0]
    assert lines["serial"] == lines["libsolv"]
    assert lines["parallel"] == lines["libsolv"]


def test_bad_primary_keeps_old_cache(lapis_file, tmp_path):
    good = make_repo(tmp_path / "good", lambda x: x)
    bad = make_repo(tmp_path / "bad", truncated)
    repo = tmp_path / "repo"
    repo.symlink_to(good)
    rd = write_repo(tmp_path / "h.d", "hostile", "file://%s" % repo, gpgcheck=0, repo_gpgcheck=0)
    cache = tmp_path / "cache"
    before = query_all(lapis_file, PARALLEL, cache, reposd=rd)
    files = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file() and p.name != "lock"}
    repo.unlink()
    repo.symlink_to(bad)
    r = run_with(lapis_file, PARALLEL, "makecache", "--refresh", cache=cache, reposd=rd)
    assert r.rc == 1 and "malformed" in r.err, r
    after = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file() and p.name != "lock"}
    assert after == files
    r = run_with(lapis_file, PARALLEL, "-C", "repoquery", "--qf", QF, "*", cache=cache, reposd=rd)
    assert r.rc == 0 and r.out == before, r
