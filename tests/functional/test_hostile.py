"""Hostile repositories: refused with one clear error naming the repo, and a
failed refresh never damages the previous good cache."""

import os
import shutil

import httpserver
import pytest

from conftest import FIXTURES, files_named, list_sections, write_repo

# repo id -> (extra options, a substring the error must contain)
FAILING = {
    "unsigned": ((), "not signed"),
    "wrongkey": ((), "unknown key"),
    "badsig": ((), "BAD signature"),
    "truncated": ((), "does not match"),
    "corrupt": ((), "checksum mismatch"),
    "badxml": (("--nogpgcheck",), "malformed"),
    "malformed-updateinfo": ((), "malformed"),
    # 16 MiB of padding behind an open-size of a few KiB: stopped at the open-size.
    "bomb": ((), "decompresses to more than"),
}


@pytest.mark.parametrize("repoid", sorted(FAILING))
def test_hostile_repo_refused(lapis, repoid):
    opts, needle = FAILING[repoid]
    r = lapis.run(*opts, "--repo=%s" % repoid, "makecache")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, "want exactly one error line:\n%s" % r
    line = r.error_lines[0]
    assert repoid in line, r
    assert needle in line, r
    assert "Metadata cache created" not in r.out, r
    # Nothing half-verified was committed: a cache-only run still has nothing.
    r = lapis.run(*opts, "--repo=%s" % repoid, "-C", "list")
    assert r.rc == 1, r
    assert "makecache" in r.err, r
    assert ('Cache-only enabled but no cache for repository "%s"' % repoid) in r.err, r


def test_truncated_mentions_size(lapis):
    r = lapis.run("--repo=truncated", "makecache")
    assert r.rc == 1, r
    assert "size" in r.error_lines[0], r


def test_badxml_without_nogpgcheck_is_unsigned(lapis):
    r = lapis.run("--repo=badxml", "makecache")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "badxml" in r.error_lines[0], r
    assert "not signed" in r.error_lines[0], r


def test_hostile_repo_among_good_ones_fails_the_command(lapis):
    r = lapis.run("--enablerepo=badsig", "makecache")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "badsig" in r.error_lines[0], r


def test_hostile_repo_with_skip_if_unavailable_is_skipped_loudly(lapis):
    """As in dnf, skip_if_unavailable=1 skips a repo whose metadata fails
    verification, but says why, and nothing of it is used or cached."""
    r = lapis.run("--json", "--setopt=badsig.skip_if_unavailable=1", "--enablerepo=badsig",
                  "makecache")
    assert r.rc == 0, r
    assert "BAD signature" in r.err and "badsig" in r.err, r
    repos = {x["id"]: x for x in r.json()["repos"]}
    assert repos["badsig"]["skipped"] is True, r
    assert repos["base"]["skipped"] is False, r
    r = lapis.run("--setopt=badsig.skip_if_unavailable=1", "--enablerepo=badsig", "list", "badsigpkg")
    assert r.rc == 1, r


@pytest.mark.parametrize("repoid,href,pkg", [
    ("badhref", "../../escape.rpm", "escapepkg"),
    ("badhref-abs", "/etc/passwd", "escapeabspkg"),
])
def test_badhref(lapis, repoid, href, pkg, request):
    http = request.getfixturevalue("http") if lapis.transport == "http" else None
    mark = http.mark() if http else 0
    r = lapis.run("--repo=%s" % repoid, "makecache")
    assert r.rc == 0, r
    assert "outside the repository" in r.err, r
    assert any(repoid in w and pkg in w for w in r.warning_lines), r
    assert r.error_lines == [], r

    r = lapis.run("--repo=%s" % repoid, "list")
    assert r.rc == 0, r
    assert pkg not in r.out, r
    r = lapis.run("--repo=%s" % repoid, "list", pkg)
    assert r.rc == 1, r
    r = lapis.run("--repo=%s" % repoid, "repoquery", "--location")
    assert r.rc == 0, r
    assert r.out.strip() == "", r
    assert "escape.rpm" not in r.out and "passwd" not in r.out, r
    r = lapis.run("--repo=%s" % repoid, "--assumeno", "install", pkg)
    assert r.rc == 1, r
    assert "Transaction Summary" not in r.out, r

    # Nothing was written outside the cache (but the repo's key pin in the
    # root), nothing was fetched outside the repo.
    assert files_named(lapis.tmp, "escape.rpm") == []
    assert files_named(lapis.tmp, "passwd") == []
    stray = []
    pins = os.path.realpath(lapis.root / "var/lib/lapis/keys")
    for dirpath, _d, files in os.walk(lapis.tmp):
        if os.path.realpath(dirpath) == pins:
            assert files == ["%s.fpr" % repoid], files
            continue
        if not os.path.realpath(dirpath).startswith(os.path.realpath(lapis.cache)):
            stray += [os.path.join(dirpath, f) for f in files]
    assert stray == [], "files written outside the cache: %s" % stray
    assert not (FIXTURES / "repos" / "escape.rpm").exists()
    if http:
        paths = [e["path"] for e in http.since(mark)]
        assert not any("escape" in p or "passwd" in p for p in paths), paths


@pytest.mark.parametrize("repoid", ["badhref", "badhref-abs"])
def test_badhref_package_count_excludes_refused(lapis, repoid):
    """The refused package is not in the repo as far as Lapis is concerned,
    so makecache must not count it."""
    doc = lapis.json("--repo=%s" % repoid, "makecache")
    assert doc["repos"] == [{"id": repoid, "skipped": False, "packages": 0,
                             "timestamp": doc["repos"][0]["timestamp"]}]


def test_empty_repo(lapis):
    r = lapis.run("--repo=empty", "makecache")
    assert r.rc == 0, r
    assert r.error_lines == [] and r.warning_lines == [], r
    assert "Metadata cache created." in r.out, r
    doc = lapis.json("--repo=empty", "makecache")
    assert [(x["id"], x["packages"], x["skipped"]) for x in doc["repos"]] == [("empty", 0, False)]
    r = lapis.run("--repo=empty", "list")
    assert r.rc == 0 and r.out.strip() == "", r
    assert lapis.json("--repo=empty", "repoquery") == {"packages": []}


def test_tampered_repo_metadata_is_fine(lapis):
    r = lapis.run("--repo=tampered", "makecache")
    assert r.rc == 0, r
    assert r.error_lines == [], r
    doc = lapis.json("--repo=tampered", "list")
    assert [(p["name"], p["repo"]) for p in doc["available"]] == [("tamperedpkg", "tampered")]


# ---- a failed refresh keeps the previous good cache --------------------------

def _break_with_repodata(src):
    def brk(mirror):
        shutil.rmtree(mirror / "repodata")
        shutil.copytree(FIXTURES / "repos" / src / "repodata", mirror / "repodata")
    return brk


def _remove_signature(mirror):
    os.unlink(mirror / "repodata" / "repomd.xml.asc")


def _edit_repomd_after_signing(mirror):
    p = mirror / "repodata" / "repomd.xml"
    p.write_text(p.read_text().replace("<revision>", "<revision>evil-", 1))


def _garble_repomd(mirror):
    p = mirror / "repodata" / "repomd.xml"
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])


BREAKAGES = {
    "badsig-repodata": (_break_with_repodata("badsig"), (), "BAD signature"),
    "wrongkey-repodata": (_break_with_repodata("wrongkey"), (), "unknown key"),
    "unsigned-repodata": (_break_with_repodata("unsigned"), (), "not signed"),
    "truncated-repodata": (_break_with_repodata("truncated"), (), "does not match"),
    "corrupt-repodata": (_break_with_repodata("corrupt"), (), "checksum mismatch"),
    "malformed-updateinfo-repodata": (_break_with_repodata("malformed-updateinfo"), (), "malformed"),
    "badxml-repodata": (_break_with_repodata("badxml"), ("--nogpgcheck",), "malformed"),
    "asc-removed": (_remove_signature, (), "not signed"),
    "repomd-edited": (_edit_repomd_after_signing, (), "BAD signature"),
    "repomd-garbled": (_garble_repomd, (), "BAD signature"),
    "repodata-gone": (lambda m: shutil.rmtree(m / "repodata"), (), "mirror"),
}


@pytest.fixture
def mirror(lapis, tmp_path):
    """A copy of repos/base at tmp_path/srv/mirror, configured as repo id
    'mirror' over the test's transport. Yields (reposdir, mirror path)."""
    top = tmp_path / "srv"
    m = top / "mirror"
    shutil.copytree(FIXTURES / "repos" / "base", m)
    server = None
    if lapis.transport == "http":
        server, port = httpserver.start(str(top))
        url = "http://127.0.0.1:%d/mirror" % port
    else:
        url = "file://%s" % m
    rd = write_repo(tmp_path / "mirror.d", "mirror", url)
    yield rd, m
    if server:
        httpserver.stop(server)


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_failed_refresh_keeps_good_cache(lapis, mirror, breakage):
    rd, m = mirror
    brk, opts, needle = BREAKAGES[breakage]
    lapis.ok(*opts, "makecache", reposd=rd)
    cdir = lapis.cache_dir("mirror")
    good_repomd = (cdir / "repodata" / "repomd.xml").read_bytes()
    good_files = sorted(os.listdir(cdir / "repodata"))

    brk(m)
    r = lapis.run(*opts, "--setopt=retries=1", "makecache", "--refresh", reposd=rd)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    assert "mirror" in r.error_lines[0], r
    if needle != "mirror":
        assert needle in r.error_lines[0], r

    # The old cache is untouched and still answers queries.
    assert lapis.cache_dirs("mirror") == [cdir]
    assert (cdir / "repodata" / "repomd.xml").read_bytes() == good_repomd
    assert sorted(os.listdir(cdir / "repodata")) == good_files
    r = lapis.run(*opts, "-C", "list", reposd=rd)
    assert r.rc == 0, r
    avail = list_sections(r.out)["Available packages"]
    assert ("hello.x86_64", "1.0-1", "mirror") in avail, r
    assert len(avail) == 25, r   # 26 packages, epochpkg twice
    r = lapis.run(*opts, "-C", "--json", "repoquery", "--requires", "hello", reposd=rd)
    assert r.rc == 0 and r.json()["deps"] == ["libfoo"], r
