"""Groups from the repos' comps.xml (createrepo_c --groupfile): group
list|info|install|remove|upgrade, @group specs, the "group" reason, and the
installed groups kept in the history database (over file:// and http://).

The fixtures: base defines greeting (hello mandatory, pkga default, enhancer
optional), mail-server (needs-mta, mta-a mandatory; nosuchpkg default, which
no repo has) and hidden-core (not user-visible: epochpkg); updates adds pkgb
to greeting's default packages."""

import shutil

import pytest

import os

from conftest import files_named, run_cmd

NOWEAK = "--setopt=install_weak_deps=False"
DNF = shutil.which("dnf")


def rows(out):
    return [l.split() for l in out.splitlines()[1:] if l.strip()]


def reasons(lapis):
    return dict((n, r) for n, _a, r in lapis.sql("SELECT name, arch, reason FROM reason"))


def test_group_list(lapis):
    r = lapis.ok("group", "list")
    assert r.out.splitlines()[0].split() == ["ID", "Name", "Installed"], r
    assert rows(r.out) == [["greeting", "Greeting", "Tools", "no"],
                           ["mail-server", "Mail", "Server", "no"]], r
    hidden = lapis.ok("group", "list", "--hidden")
    assert [x[0] for x in rows(hidden.out)] == ["greeting", "hidden-core", "mail-server"], hidden
    assert lapis.ok("grp", "list").out == r.out


def test_group_info_merges_repos(lapis):
    doc = lapis.json("group", "info", "greeting")
    (g,) = doc["groups"]
    assert g["id"] == "greeting" and g["name"] == "Greeting Tools" and not g["installed"]
    assert g["mandatory"] == ["hello"] and g["optional"] == ["enhancer"]
    assert sorted(g["default"]) == ["pkga", "pkgb"]      # pkgb comes from updates' comps
    only_base = lapis.json("--repo=base", "group", "info", "greeting")["groups"][0]
    assert only_base["default"] == ["pkga"]
    text = lapis.ok("group", "info", "Greeting*").out       # by name, a glob
    assert "Mandatory packages  : hello" in text and "Description         : Programs " \
        "that say hello." in text, text


def test_group_info_no_match(lapis):
    r = lapis.run("group", "info", "nosuchgroup")
    assert r.rc == 1 and "No match for argument: nosuchgroup" in r.err, r


def test_group_install_mandatory_and_default_reason_group(lapis):
    r = lapis.yes(NOWEAK, "--repo=base", "group", "install", "greeting")
    assert lapis.names() == ["hello", "libfoo", "pkga"], r
    assert reasons(lapis) == {"hello": "group", "pkga": "group", "libfoo": "dependency"}
    doc = lapis.json("group", "list", "--installed")
    assert [g["id"] for g in doc["groups"]] == ["greeting"]
    assert lapis.ok("group", "list", "--available").out.count("greeting") == 0


def test_group_install_with_optional(lapis):
    lapis.yes(NOWEAK, "--repo=base", "group", "install", "--with-optional", "greeting")
    assert "enhancer" in lapis.names()


def test_at_group_spec_in_install(lapis):
    r = lapis.yes(NOWEAK, "install", "@mail-server", "epochpkg")
    assert lapis.names() == ["epochpkg", "mta-a", "needs-mta"], r
    # the default package no repo has is skipped with dnf's warning
    assert any('No match for group package "nosuchpkg"' in l for l in r.warning_lines), r
    assert reasons(lapis) == {"mta-a": "group", "needs-mta": "group", "epochpkg": "user"}


def test_group_install_unknown(lapis):
    r = lapis.run("-y", "install", "@nosuchgroup")
    assert r.rc == 1 and "No match for argument: @nosuchgroup" in r.err, r
    assert lapis.names() == []


def test_group_install_already_there_records_group(lapis):
    """All packages present: nothing to do, yet the group is installed (dnf5)."""
    lapis.yes(NOWEAK, "--repo=base", "install", "hello", "pkga")
    r = lapis.yes("--repo=base", "group", "install", "greeting")
    assert "Nothing to do." in r.out, r
    assert [g["id"] for g in lapis.json("group", "list", "--installed")["groups"]] == ["greeting"]
    assert reasons(lapis)["hello"] == "user"      # installed by the user first: stays so


def test_group_install_assumeno_records_nothing(lapis):
    r = lapis.run("--assumeno", "group", "install", "greeting")
    assert r.rc == 1, r
    assert lapis.json("group", "list", "--installed")["groups"] == []


def test_group_remove_keeps_user_installed(lapis):
    lapis.yes(NOWEAK, "--repo=base", "install", "pkga")
    lapis.yes(NOWEAK, "--repo=base", "group", "install", "greeting")
    lapis.yes("group", "remove", "greeting")
    assert lapis.names() == ["pkga"]          # user-installed before the group
    assert lapis.json("group", "list", "--installed")["groups"] == []


def test_group_remove_at_spec_and_shared_package(lapis):
    lapis.yes(NOWEAK, "install", "@greeting", "@mail-server")
    lapis.yes("remove", "@mail-server")
    assert lapis.names() == ["hello", "libfoo", "pkga", "pkgb"]


def test_group_remove_not_installed(lapis):
    r = lapis.run("-y", "group", "remove", "greeting")
    assert r.rc == 1 and "group greeting is not installed" in r.err, r


def test_group_upgrade_upgrades_and_installs_new_members(lapis):
    lapis.yes(NOWEAK, "--repo=base", "group", "install", "greeting")
    r = lapis.yes(NOWEAK, "group", "upgrade", "greeting")
    inst = lapis.installed()
    assert "hello-0:2.1-1.x86_64" in inst and "pkgb-0:1.0-1.noarch" in inst, r
    assert reasons(lapis)["pkgb"] == "group" and reasons(lapis)["hello"] == "group"
    assert lapis.json("group", "info", "greeting")["groups"][0]["installed"]
    lapis.yes("upgrade", "@greeting")           # the @ form: nothing left to do
    assert lapis.installed() == inst


def test_group_reason_kept_by_autoremove(lapis):
    lapis.yes(NOWEAK, "--repo=base", "group", "install", "greeting")
    r = lapis.yes("autoremove")
    assert "Nothing to do." in r.out and lapis.names() == ["hello", "libfoo", "pkga"], r


def test_group_bad_subcommand(lapis):
    r = lapis.run("group", "frob")
    assert r.rc == 2 and "group takes list, info" in r.err, r


@pytest.mark.skipif(not DNF, reason="dnf is not installed")
@pytest.mark.parametrize("group", ["greeting", "mail-server"])
def test_group_install_same_result_as_dnf(lapis_file, group):
    lapis_file.yes(NOWEAK, "group", "install", group)
    mine = sorted(lapis_file.names())
    root, cache = lapis_file.tmp / "dnfroot", lapis_file.tmp / "dnfcache"
    r = run_cmd([DNF, "-y", "-q", "--installroot=%s" % root,
                 "--setopt=reposdir=%s" % lapis_file.reposd, "--setopt=cachedir=%s" % cache,
                 "--releasever=1", NOWEAK, "group", "install", group],
                env=lapis_file.env, timeout=120)
    assert r.rc == 0, r
    (db,) = files_named(root, "rpmdb.sqlite")   # dnf's rpm: the host's %_dbpath in the root
    q = run_cmd(["rpm", "--root", root, "--dbpath", "/" + os.path.relpath(os.path.dirname(db), root),
                 "-qa", "--qf", "%{NAME}\\n"], env=lapis_file.env)
    theirs = sorted(n for n in q.out.split() if n != "gpg-pubkey")
    assert mine == theirs


# ---- environments (dnf5's environment list|info, @^ENV) ------------------------
# base's comps: web-stack requires greeting and hidden-core, mail-server is its
# optional group; the category tools (dnf5 shows no categories).

def test_environment_list(lapis):
    r = lapis.ok("environment", "list")
    assert r.out.splitlines()[0].split() == ["ID", "Name", "Installed"], r
    assert rows(r.out) == [["web-stack", "Web", "Stack", "no"]], r
    assert "tools" not in lapis.ok("group", "list", "--hidden").out   # a category is no group


def test_environment_info(lapis):
    text = lapis.ok("environment", "info", "web-stack").out
    for line in ("Id                  : web-stack", "Name                : Web Stack",
                 "Order               : 10", "Installed           : False",
                 "Required groups     : greeting", "Optional groups     : mail-server"):
        assert line in text, text
    (e,) = lapis.json("environment", "info", "Web*")["environments"]
    assert e["groups"] == ["greeting", "hidden-core"] and e["optional_groups"] == ["mail-server"]
    r = lapis.run("environment", "info", "nosuchenv")
    assert r.rc == 1 and "No match for argument: nosuchenv" in r.err, r


def test_environment_install_remove(lapis):
    """@^ENV installs each required group's mandatory and default packages (not
    the optional group); the groups, and so the environment, are installed."""
    r = lapis.yes(NOWEAK, "--repo=base", "install", "@^web-stack")
    assert lapis.names() == ["epochpkg", "hello", "libfoo", "pkga"], r
    assert set(reasons(lapis).values()) <= {"group", "dependency"}, reasons(lapis)
    groups = {g["id"]: g["installed"] for g in lapis.json("group", "list", "--hidden")["groups"]}
    assert groups == {"greeting": True, "hidden-core": True, "mail-server": False}, groups
    assert rows(lapis.ok("environment", "list").out) == [["web-stack", "Web", "Stack", "yes"]]
    r = lapis.yes("remove", "@^web-stack")
    assert lapis.names() == [], r
    r = lapis.run("-y", "install", "@^nosuchenv")
    assert r.rc == 1 and "No match for argument: @^nosuchenv" in r.err, r


@pytest.mark.skipif(not DNF, reason="dnf is not installed")
def test_environment_install_same_result_as_dnf(lapis_file):
    lapis_file.yes(NOWEAK, "install", "@^web-stack")
    mine = sorted(lapis_file.names())
    root, cache = lapis_file.tmp / "dnfroot", lapis_file.tmp / "dnfcache"
    r = run_cmd([DNF, "-y", "-q", "--installroot=%s" % root,
                 "--setopt=reposdir=%s" % lapis_file.reposd, "--setopt=cachedir=%s" % cache,
                 "--releasever=1", NOWEAK, "group", "install", "web-stack"],   # dnf 4's spelling
                env=lapis_file.env, timeout=120)
    assert r.rc == 0, r
    (db,) = files_named(root, "rpmdb.sqlite")
    q = run_cmd(["rpm", "--root", root, "--dbpath", "/" + os.path.relpath(os.path.dirname(db), root),
                 "-qa", "--qf", "%{NAME}\\n"], env=lapis_file.env)
    theirs = sorted(n for n in q.out.split() if n != "gpg-pubkey")
    assert mine == theirs
