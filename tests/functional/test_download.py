"""download (dnf5's command): the newest package per name.arch into
--destdir, verified as an install verifies it, nothing into the cache or the
root; --resolve, --alldeps, --arch, --url (over file:// and http://)."""

import os

import pytest

from conftest import FIXTURES


def rpms(d):
    return sorted(os.listdir(d)) if d.is_dir() else []


def cached_packages(lapis):
    if not lapis.cache.is_dir():
        return []
    return sorted(str(p) for p in lapis.cache.rglob("*.rpm"))


def test_download_newest_into_destdir(lapis):
    d = lapis.tmp / "dest"
    r = lapis.ok("download", "--destdir", d, "hello")
    assert rpms(d) == ["hello-2.1-1.x86_64.rpm"], r
    assert "Downloading Packages:" in r.out, r
    # byte-identical to the repo's file, nothing in the cache or the root
    assert (d / "hello-2.1-1.x86_64.rpm").read_bytes() == \
        (FIXTURES / "repos" / "updates" / "hello-2.1-1.x86_64.rpm").read_bytes()
    assert cached_packages(lapis) == []
    assert lapis.installed() == []


def test_download_default_is_current_directory(lapis):
    here = lapis.tmp / "cwd"
    here.mkdir()
    import subprocess
    cp = subprocess.run(lapis.argv("download", "epochpkg"), cwd=here, env=lapis.env,
                        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert rpms(here) == ["epochpkg-1.0-1.noarch.rpm"]


def test_download_every_arch_and_arch_filter(lapis):
    d = lapis.tmp / "dest"
    lapis.ok("download", "--destdir", d, "libfoo")
    assert rpms(d) == ["libfoo-1.1-1.i686.rpm", "libfoo-1.1-1.x86_64.rpm"]
    d2 = lapis.tmp / "dest2"
    lapis.ok("download", "--destdir", d2, "--arch", "i686", "libfoo")
    assert rpms(d2) == ["libfoo-1.1-1.i686.rpm"]


def test_download_nevra_and_capability(lapis):
    d = lapis.tmp / "dest"
    lapis.ok("download", "--destdir", d, "hello-1.0", "mta")
    assert rpms(d) == ["hello-1.0-1.x86_64.rpm", "mta-a-1.0-1.noarch.rpm",
                       "mta-b-1.0-1.noarch.rpm"]


def test_download_resolve_skips_installed_alldeps_does_not(lapis):
    lapis.yes("--setopt=install_weak_deps=False", "install", "libfoo.x86_64")
    d = lapis.tmp / "dest"
    lapis.ok("download", "--destdir", d, "--resolve", "--setopt=install_weak_deps=False", "hello")
    assert rpms(d) == ["hello-2.1-1.x86_64.rpm"]
    d2 = lapis.tmp / "dest2"
    lapis.ok("download", "--destdir", d2, "--resolve", "--alldeps",
             "--setopt=install_weak_deps=False", "hello")
    assert rpms(d2) == ["hello-2.1-1.x86_64.rpm", "libfoo-1.1-1.x86_64.rpm"]
    # the root is what the install left
    assert lapis.names() == ["libfoo"]


def test_download_resolve_brings_dependencies(lapis):
    d = lapis.tmp / "dest"
    lapis.ok("download", "--destdir", d, "--resolve", "filedep")
    assert "hello-2.1-1.x86_64.rpm" in rpms(d) and "filedep-1.0-1.noarch.rpm" in rpms(d)


def test_download_alldeps_needs_resolve(lapis):
    r = lapis.run("download", "--alldeps", "hello")
    assert r.rc == 2, r
    assert r.error_lines == ['lapis: error: Option "--alldeps" should be used with "--resolve"'], r


def test_download_no_match(lapis):
    d = lapis.tmp / "dest"
    r = lapis.run("download", "--destdir", d, "nosuchpkg")
    assert r.rc == 1, r
    assert r.error_lines == ['lapis: error: No package "nosuchpkg" available; You might want '
                             'to use --skip-unavailable option.'], r
    assert rpms(d) == []


@pytest.mark.parametrize("opt", ["--skip-unavailable", "--setopt=skip_unavailable=1"])
def test_download_skip_unavailable_drops_the_spec(lapis, opt):
    """dnf5: with skip_unavailable a spec nothing matches is dropped; the rest is fetched."""
    d = lapis.tmp / "dest"
    r = lapis.ok(opt, "download", "--destdir", d, "nosuchpkg", "hello")
    assert rpms(d) == ["hello-2.1-1.x86_64.rpm"], r
    assert r.error_lines == [], r


def test_download_setopt_destdir(lapis):
    """destdir= from --setopt is where download puts packages (--destdir still wins)."""
    d, e = lapis.tmp / "viaset", lapis.tmp / "viaopt"
    r = lapis.ok("--setopt=destdir=%s" % d, "download", "hello")
    assert rpms(d) == ["hello-2.1-1.x86_64.rpm"], r
    r = lapis.ok("--setopt=destdir=%s" % d, "download", "--destdir", e, "epochpkg")
    assert rpms(e) == ["epochpkg-1.0-1.noarch.rpm"] and rpms(d) == ["hello-2.1-1.x86_64.rpm"], r


def test_download_url_prints_and_fetches_nothing(lapis):
    d = lapis.tmp / "dest"
    r = lapis.ok("download", "--destdir", d, "--url", "hello", "epochpkg")
    assert r.out_lines == ["%s/updates/hello-2.1-1.x86_64.rpm" % lapis.baseurl,
                           "%s/base/epochpkg-1.0-1.noarch.rpm" % lapis.baseurl], r
    assert rpms(d) == [] and cached_packages(lapis) == []


def test_download_json(lapis):
    d = lapis.tmp / "dest"
    doc = lapis.json("download", "--destdir", d, "hello")
    assert doc == {"downloaded": [str(d / "hello-2.1-1.x86_64.rpm")]}


@pytest.mark.parametrize("repo,pkg,why", [
    ("tampered", "tamperedpkg", "checksum mismatch"),
    ("wrongkey", "wrongkeypkg", "signed by a key that is not the repo's gpgkey"),
    ("unsigned", "unsignedpkg", "package is not signed but gpgcheck is on"),
])
def test_download_refuses_what_install_refuses(lapis, repo, pkg, why):
    """The package checks of a transaction apply; a refused file is not left in destdir."""
    d = lapis.tmp / "dest"
    r = lapis.run("--enablerepo=%s" % repo, "--setopt=%s.repo_gpgcheck=0" % repo,
                  "download", "--destdir", d, pkg)
    assert r.rc == 1, r
    assert why in r.err, r
    assert rpms(d) == [], r


def test_download_reverifies_a_file_already_there(lapis):
    """A damaged file of the same name in destdir is fetched again, not kept."""
    d = lapis.tmp / "dest"
    d.mkdir()
    (d / "hello-2.1-1.x86_64.rpm").write_bytes(b"not an rpm")
    lapis.ok("download", "--destdir", d, "hello")
    assert (d / "hello-2.1-1.x86_64.rpm").read_bytes() == \
        (FIXTURES / "repos" / "updates" / "hello-2.1-1.x86_64.rpm").read_bytes()
