"""dnf5's command names and options: check-upgrade, repo list|info
(--all/--enabled/--disabled, globs), repolist --disabled, and the advisory
filters --advisory-severities, --with-cve, --with-bz, --contains-pkgs.
Where dnf 4 behaves the same, the result sets are compared with it."""

import shutil

import pytest

from conftest import ALL_REPOS, DEFAULT_REPOS, DISABLED_REPOS, FIXTURES, nevra, run_cmd

DNF = shutil.which("dnf")
OLD = ("hello-1.0", "openssl-1.0", "kernel-5.0.0", "glibc-1.0", "systemd-1.0", "libfoo-1.0")


def table_ids(out):
    lines = [l for l in out.splitlines() if l.strip()]
    return [l.split()[0] for l in lines[1:]]


def dnf(lapis, *args, root=None):
    return run_cmd([DNF, "--installroot=%s" % (root or lapis.tmp / "dnfroot"),
                    "--setopt=reposdir=%s" % lapis.reposd,
                    "--setopt=cachedir=%s" % (lapis.tmp / "dnfcache"), "--releasever=1"]
                   + list(args), env=lapis.env, timeout=120)


# ---- check-upgrade -------------------------------------------------------------

def test_check_upgrade_exit_100_like_check_update(lapis):
    lapis.rpm_install("hello-1.0-1.x86_64.rpm", "libfoo-1.0-1.x86_64.rpm")
    r = lapis.run("check-upgrade")
    assert r.rc == 100, r
    # dnf5 starts with the table; check-update keeps dnf 4's blank line first
    assert "\n" + r.out == lapis.run("check-update").out
    assert r.out.startswith("hello.x86_64 "), r
    assert {l.split()[0] for l in r.out.splitlines() if l.strip()} == {"hello.x86_64",
                                                                      "libfoo.x86_64"}, r
    doc = lapis.json("check-upgrade", "hello", rc=100)
    assert [nevra(p) for p in doc["upgrades"]] == ["hello-2.1-1.x86_64"]


@pytest.mark.parametrize("filt, says", [
    (("--advisory=LAPIS-2026-0005",), True),   # kernel's advisory: kernel is not installed
    (("--security", "--advisory-severities=Low"), True),
    (("--enhancement", "hello"), False),       # dnf5's condition leaves --enhancement out
])
def test_check_upgrade_filters_that_match_nothing(lapis_file, filt, says):
    lapis_file.rpm_install("hello-2.0-1.x86_64.rpm", "libfoo-1.0-1.x86_64.rpm")
    r = lapis_file.run("-q", "check-upgrade", *filt)
    assert r.rc == 0, r
    assert r.out == ("No security updates needed, but 2 update(s) available\n" if says else ""), r


def test_check_upgrade_nothing_exit_0(lapis):
    r = lapis.run("check-upgrade")
    assert r.rc == 0 and r.out.strip() == "", r


@pytest.mark.skipif(not DNF, reason="dnf is not installed")
def test_check_upgrade_same_set_as_dnf(lapis_file):
    pkgs = ("--setopt=install_weak_deps=False", "-y", "install", "hello-1.0",
            "libfoo-1.0-1.x86_64", "kernel-5.0.0")
    lapis_file.ok(*pkgs)
    mine = lapis_file.run("check-upgrade")
    droot = lapis_file.tmp / "dnfroot"
    r = dnf(lapis_file, "-q", *pkgs, root=droot)
    assert r.rc == 0, r
    theirs = dnf(lapis_file, "check-update", root=droot)
    assert mine.rc == theirs.rc == 100, (mine, theirs)

    def rows(out):
        return {tuple(l.split()[:3]) for l in out.splitlines()
                if len(l.split()) == 3 and "." in l.split()[0]}
    assert len(rows(mine.out)) == 3 and rows(mine.out) == rows(theirs.out), (mine, theirs)


# ---- repo list / info ---------------------------------------------------------------

def test_repo_list_is_repolist(lapis):
    r = lapis.ok("repo", "list")
    assert r.out == lapis.ok("repolist").out == lapis.ok("repo").out
    assert table_ids(r.out) == sorted(DEFAULT_REPOS)


@pytest.mark.parametrize("args,expected,status", [
    (["--all"], ALL_REPOS, True),
    (["--disabled"], DISABLED_REPOS, False),
    (["--enabled"], DEFAULT_REPOS, False),
    (["--all", "bad*"], [r for r in ALL_REPOS if r.startswith("bad")], True),
    (["--disabled", "*KEY"], ["wrongkey"], False),         # globs ignore case, as dnf5's
])
def test_repo_list_filters(lapis, args, expected, status):
    r = lapis.ok("repo", "list", *args)
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert lines[0].split()[-1] == ("status" if status else "name"), r
    assert table_ids(r.out) == sorted(expected), r


def test_repolist_disabled_option(lapis):
    assert table_ids(lapis.ok("repolist", "--disabled").out) == sorted(DISABLED_REPOS)
    assert lapis.ok("repolist", "--disabled").out == lapis.ok("repolist", "disabled").out


def test_repo_list_conflicting_options(lapis):
    r = lapis.run("repo", "list", "--all", "--disabled")
    assert r.rc == 2 and "exclude each other" in r.err, r


def test_repo_list_no_match(lapis):
    r = lapis.run("repo", "list", "nosuchrepo")
    assert r.rc == 1, r
    assert "no repository matches 'nosuchrepo'" in r.err, r


def test_repo_bad_subcommand(lapis):
    r = lapis.run("repo", "frob")
    assert r.rc == 2 and "repo takes list or info" in r.err, r


def kv_blocks(out):
    blocks = []
    for chunk in out.strip().split("\n\n"):
        d = {}
        for line in chunk.splitlines():
            key, _, val = line.partition(":")
            d[key.strip()] = val.strip()
        blocks.append(d)
    return blocks


def test_repo_info_enabled(lapis):
    r = lapis.ok("repo", "info", "base")
    (b,) = kv_blocks(r.out)
    assert b["Repo ID"] == "base" and b["Status"] == "enabled", r
    assert b["Name"] == "Lapis test repository base"
    assert b["Priority"] == "99" and b["Cost"] == "1000"
    assert b["Base URL"] == "%s/base" % lapis.baseurl
    assert b["Verify repodata"] == "true" and b["Verify packages"] == "true"
    assert b["Config file"].endswith("base.repo")
    assert int(b["Total packages"]) == lapis.json("repo", "info", "base")["repos"][0]["pkgs"] > 10
    assert "unknown" not in b["Metadata expire"], r     # loaded: the last update is known


def test_repo_info_disabled_loads_nothing(lapis):
    r = lapis.ok("repo", "info", "--disabled", "wrongkey", "badsig")
    blocks = kv_blocks(r.out)
    assert [b["Repo ID"] for b in blocks] == ["badsig", "wrongkey"], r
    assert all(b["Status"] == "disabled" and "Total packages" not in b for b in blocks), r
    assert not lapis.cache.exists() or not any(lapis.cache.iterdir()), "metadata was fetched"


def test_repoinfo_json(lapis):
    doc = lapis.json("repoinfo")
    assert [x["id"] for x in doc["repos"]] == sorted(DEFAULT_REPOS)
    for x in doc["repos"]:
        assert x["enabled"] is True and x["pkg_gpgcheck"] is True and x["pkgs"] > 0, x


@pytest.mark.skipif(not DNF, reason="dnf is not installed")
@pytest.mark.parametrize("which", ["enabled", "disabled", "all"])
def test_repo_list_same_ids_as_dnf(lapis_file, which):
    mine = table_ids(lapis_file.ok("repo", "list", "--" + which).out)
    r = dnf(lapis_file, "repolist", "--" + which)
    assert r.rc == 0, r
    assert mine == sorted(table_ids(r.out)), (mine, r)


# ---- advisory filters (dnf5's names) -----------------------------------------------------

@pytest.fixture
def old(lapis_file):
    lapis_file.yes("--repo", "base", "install", *OLD)
    return lapis_file


def adv_ids(doc):
    return [a["id"] for a in doc["advisories"]]


@pytest.mark.parametrize("args,expected", [
    (["--advisory-severities=critical,low"], ["LAPIS-2026-0001", "LAPIS-2026-0006"]),
    # dnf5's "none": the advisories without a severity (the bugfix and the enhancement)
    (["--advisory-severities=none"], ["LAPIS-2026-0003", "LAPIS-2026-0004"]),
    (["--advisory-severities=None,moderate"], ["LAPIS-2026-0003", "LAPIS-2026-0004",
                                              "LAPIS-2026-0005"]),
    (["--security", "--advisory-severities", "Important"], ["LAPIS-2026-0002"]),
    (["--with-bz"], ["LAPIS-2026-0003"]),
    (["--with-cve"], ["LAPIS-2026-0001", "LAPIS-2026-0002", "LAPIS-2026-0005",
                      "LAPIS-2026-0006"]),
    (["--with-cve", "--advisory-severities=moderate"], ["LAPIS-2026-0005"]),
    (["--with-cve", "--with-bz"], []),
    (["--bugfix", "--with-cve"], []),
    (["--all", "--with-cve", "hello"], ["LAPIS-2025-0001", "LAPIS-2026-0001"]),
    (["--contains-pkgs=libfoo,openssl"], ["LAPIS-2026-0002", "LAPIS-2026-0003"]),
    (["--contains-pkgs", "k*", "--security"], ["LAPIS-2026-0005"]),
    (["--contains-pkgs", "hello", "LAPIS-2026-0002"], []),   # both must hold
])
def test_advisory_dnf5_filters(old, args, expected):
    for sub in ("list", "info"):
        assert adv_ids(old.json("advisory", sub, *args)) == expected, (sub, args)
    if "--with-cve" in args or "--with-bz" in args:
        return  # the text names the references instead (test_advisory.py)
    r = old.ok("advisory", "list", *args)
    assert [l.split()[0] for l in r.out.splitlines()[1:]] == expected, r


def test_advisory_summary_with_cve(old):
    doc = old.json("advisory", "summary", "--with-cve")
    assert doc["summary"]["security"] == 4 and doc["summary"]["bugfix"] == 0, doc


def test_advisory_severities_unknown(old):
    r = old.run("advisory", "list", "--advisory-severities=urgent")
    assert r.rc == 2 and "unknown severity" in r.err, r


# ---- dnf5's spellings of global options ---------------------------------------------

@pytest.mark.parametrize("dnf5, dnf4", [
    (("--enable-repo=nobest",), ("--enablerepo=nobest",)),
    (("--disable-repo", "updates"), ("--disablerepo", "updates")),
    (("--enable-repo=nobest", "--disable-repo=base"), ("--enablerepo=nobest", "--disablerepo=base")),
])
def test_repo_option_spellings(lapis_file, dnf5, dnf4):
    ours = lapis_file.ok(*dnf5, "repo", "list").out
    assert ours == lapis_file.ok(*dnf4, "repo", "list").out
    assert table_ids(ours) != table_ids(lapis_file.ok("repo", "list").out), ours


def test_no_gpgchecks_is_nogpgcheck(lapis_file):
    assert lapis_file.run("--repo=unsigned", "-y", "install", "unsignedpkg").rc == 1
    lapis_file.ok("--no-gpgchecks", "--repo=unsigned", "-y", "install", "unsignedpkg")
    assert "unsignedpkg" in lapis_file.names()


@pytest.mark.parametrize("opt", ["--noplugins", "--no-plugins"])
def test_no_plugins_is_accepted(lapis_file, opt):
    assert lapis_file.ok(opt, "repo", "list").out == lapis_file.ok("repo", "list").out


def test_minimal_only_on_upgrade(lapis_file):
    r = lapis_file.run("--minimal", "install", "hello")
    assert r.rc == 2 and "--minimal works with upgrade" in r.err, r


# ---- --repofrompath --------------------------------------------------------------------

def test_repofrompath_adds_an_enabled_repo(lapis):
    """A directory (file://) or, over http, a URL; --repo can then pick it alone."""
    where = lapis.baseurl + "/nobest"
    if lapis.transport == "file":
        where = where[len("file://"):]
    r = lapis.ok("--repofrompath=nb,%s" % where, "--repo=nb", "repoquery")
    assert r.out_lines == ["nobest-0:1.0-1.noarch", "nobest-0:2.0-1.noarch"], r
    assert "nb" in table_ids(lapis.ok("--repofrompath=nb,%s" % where, "repo", "list").out)


@pytest.mark.skipif(not DNF, reason="dnf is not installed")
def test_repofrompath_same_as_dnf(lapis_file):
    path = "%s/repos/updates" % FIXTURES
    ours = lapis_file.ok("-q", "--repofrompath=u2,%s" % path, "--repo=u2", "repoquery").out_lines
    r = dnf(lapis_file, "-q", "--repofrompath=u2,%s" % path, "--repo=u2", "repoquery")
    assert r.rc == 0, r
    assert ours == r.out_lines and len(ours) > 5, (ours, r.out_lines)


def test_repofrompath_checks_signatures(lapis_file):
    path = "%s/repos/unsigned" % FIXTURES
    r = lapis_file.run("-y", "--repofrompath=u,%s" % path, "--repo=u", "install", "unsignedpkg")
    assert r.rc == 1 and lapis_file.installed() == [], r


@pytest.mark.parametrize("arg, says", [
    ("nocomma", "takes ID,PATH"), ("bad id,/tmp", "takes ID,PATH"), ("x,", "takes ID,PATH"),
    ("base,/tmp", "repo 'base' is already defined"),
])
def test_repofrompath_bad_argument(lapis_file, arg, says):
    r = lapis_file.run("--repofrompath=%s" % arg, "repo", "list")
    assert r.rc == 2 and len(r.error_lines) == 1 and says in r.error_lines[0], r
