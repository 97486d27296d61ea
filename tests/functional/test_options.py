"""Global options, configuration files, variables and --installroot."""

import os
import shutil

import pytest

from conftest import FIXTURES, LAPIS_BIN, list_sections, run_cmd, write_repo


def test_help(lapis_file):
    for opt in ("--help", "-h"):
        r = lapis_file.run(opt)
        assert r.rc == 0, r
        assert "usage:" in r.out.lower(), r
        for cmd in ("repolist", "makecache", "clean", "list", "info", "search", "provides",
                    "repoquery", "check-update", "install"):
            assert cmd in r.out, (cmd, r)


def test_version(lapis_file):
    r = run_cmd([LAPIS_BIN, "--version"])
    assert r.rc == 0, r
    assert r.out.startswith("lapis "), r
    assert r.out.split()[1][0].isdigit(), r


def test_no_command(lapis_file):
    r = lapis_file.run()
    assert r.rc == 2, r


def test_unknown_option(lapis_file):
    r = lapis_file.run("--frobnicate", "repolist")
    assert r.rc == 2, r
    assert "--frobnicate" in r.err, r
    assert len(r.error_lines) == 1, r


def test_unknown_short_option(lapis_file):
    r = lapis_file.run("-Z", "repolist")
    assert r.rc == 2, r
    assert "-Z" in r.err, r


@pytest.mark.parametrize("mirror_opts,want", [
    ({"cost": 500}, "mirror"),                   # same priority: the lower cost wins
    ({"cost": 2000}, "base"),                    # base's default cost is 1000
    ({"cost": 500, "priority": 100}, "base"),   # priority first, cost only between equals
])
def test_repo_cost_breaks_priority_ties(lapis, tmp_path, mirror_opts, want):
    """dnf5: the same package in two repos comes from the better priority, and
    between equal priorities from the lower cost."""
    d = tmp_path / "cost.repos.d"
    write_repo(d, "base", lapis.baseurl + "/base")
    write_repo(d, "mirror", lapis.baseurl + "/base", **mirror_opts)
    doc = lapis.json("--assumeno", "install", "pkga", reposd=d, rc=1)
    assert [(p["name"], p["repo"]) for p in doc["transaction"]] == [("pkga", want)], doc


def test_option_missing_value(lapis_file):
    r = run_cmd([LAPIS_BIN, "repolist", "--releasever"], env=lapis_file.env)
    assert r.rc == 2, r
    assert "releasever" in r.err, r


def test_unknown_command(lapis_file):
    r = lapis_file.run("frobnicate")
    assert r.rc == 2, r     # dnf5's exit code for an unknown argument
    assert "frobnicate" in r.err, r


def test_quiet_suppresses_warnings(lapis):
    r = lapis.run("-q", "--repo=badhref", "makecache")
    assert r.rc == 0, r
    assert r.err == "" and r.out == "", r
    r = lapis.run("--quiet", "repolist")
    assert r.rc == 0 and r.err == "", r


def test_quiet_suppresses_no_matches_message(lapis):
    """'No matches found.' is informational: -q must silence it."""
    r = lapis.run("-q", "search", "zzzznotthere")
    assert r.rc == 0, r
    assert r.err == "", r


def test_quiet_keeps_errors(lapis):
    r = lapis.run("-q", "--repo=badsig", "makecache")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "badsig" in r.error_lines[0], r


def test_quiet_still_prints_results(lapis):
    r = lapis.run("-q", "list", "hello")
    assert r.rc == 0, r
    assert ("hello.x86_64", "2.1-1", "updates") in list_sections(r.out)["Available packages"], r


def test_setopt_unknown_key(lapis_file):
    r = lapis_file.run("--setopt=bogus=1", "repolist")
    assert r.rc == 2, r
    assert "unknown option" in r.err and "bogus" in r.err, r


def test_setopt_unknown_repo_key(lapis_file):
    r = lapis_file.run("--setopt=base.bogus=1", "repolist")
    assert r.rc == 2, r
    assert "bogus" in r.err, r


def test_setopt_bad_value(lapis_file):
    r = lapis_file.run("--setopt=base.priority=abc", "repolist")
    assert r.rc == 2, r
    assert "abc" in r.err and "priority" in r.err, r


@pytest.mark.parametrize("opt", ["--setopt=gpgcheck=maybe", "--setopt=retries=-5",
                                 "--setopt=max_parallel_downloads=0", "--setopt=metadata_expire=soon",
                                 "--setopt=noequals"])
def test_setopt_invalid(lapis_file, opt):
    r = lapis_file.run(opt, "repolist")
    assert r.rc == 2, r
    assert len(r.error_lines) == 1, r


def test_enablerepo_unknown(lapis_file):
    r = lapis_file.run("--enablerepo=doesnotexist", "repolist")
    assert r.rc == 1, r
    assert "doesnotexist" in r.err, r


def test_repo_unknown(lapis_file):
    r = lapis_file.run("--repo=doesnotexist", "repolist")
    assert r.rc == 1, r
    assert "doesnotexist" in r.err, r


def test_config_file_missing(lapis_file, tmp_path):
    r = lapis_file.run("-c", tmp_path / "missing.conf", "repolist")
    assert r.rc == 1, r
    assert "missing.conf" in r.err, r
    r = lapis_file.run("--config=%s" % (tmp_path / "missing.conf"), "repolist")
    assert r.rc == 1, r


def test_config_file_garbled_line(lapis_file, tmp_path):
    conf = tmp_path / "lapis.conf"
    conf.write_text("# a comment\n[main]\ngpgcheck=1\nthis line is garbage\n")
    r = lapis_file.run("-c", conf, "repolist")
    assert r.rc == 1, r
    assert "%s:4" % conf in r.err, r
    assert len(r.error_lines) == 1, r


def test_config_file_bad_value(lapis_file, tmp_path):
    conf = tmp_path / "lapis.conf"
    conf.write_text("[main]\ninstall_weak_deps=perhaps\n")
    r = lapis_file.run("-c", conf, "repolist")
    assert r.rc == 1, r
    assert "%s:2" % conf in r.err, r


def test_config_file_is_used(lapis_file, tmp_path):
    conf = tmp_path / "lapis.conf"
    conf.write_text("[main]\ninstall_weak_deps=0\n")
    doc = lapis_file.json("-c", conf, "--assumeno", "install", "hello", rc=1)
    assert sorted(p["name"] for p in doc["transaction"]) == ["hello", "libfoo"]


def test_repo_file_garbled_line(lapis_file, tmp_path):
    rd = tmp_path / "rd"
    rd.mkdir()
    shutil.copy(FIXTURES / "repos.d" / "base.repo", rd)
    (rd / "broken.repo").write_text("[broken]\nname=broken\nbaseurl=file:///nowhere\n= no key here\n")
    r = lapis_file.run("repolist", reposd=rd)
    assert r.rc == 1, r
    assert "%s:4" % (rd / "broken.repo") in r.err, r


def test_releasever_substitution(lapis_file, tmp_path):
    rd = write_repo(tmp_path / "rd", "rv", "http://example.invalid/rel/$releasever/$basearch/os",
                    name="Release $releasever")
    doc = lapis_file.json("repolist", reposd=rd)
    assert doc["repos"][0]["baseurl"] == ["http://example.invalid/rel/1/x86_64/os"]
    assert doc["repos"][0]["name"] == "Release 1"
    r = run_cmd([LAPIS_BIN, "--installroot=%s" % lapis_file.root, "--setopt=reposdir=%s" % rd,
                 "--releasever=42", "--json", "repolist"], env=lapis_file.env)
    assert r.rc == 0, r
    assert r.json()["repos"][0]["baseurl"] == ["http://example.invalid/rel/42/x86_64/os"]


def test_releasever_in_working_baseurl(lapis_file, tmp_path):
    """$releasever in a real baseurl: the substituted URL is fetched."""
    mirror = tmp_path / "mirror" / "7"
    shutil.copytree(FIXTURES / "repos" / "base", mirror / "base")
    rd = write_repo(tmp_path / "rd", "base", "file://%s/mirror/$releasever/base" % tmp_path)
    r = run_cmd([LAPIS_BIN, "--installroot=%s" % lapis_file.root, "--setopt=reposdir=%s" % rd,
                 "--setopt=cachedir=%s" % lapis_file.cache, "--releasever=7", "list", "hello"],
                env=lapis_file.env)
    assert r.rc == 0, r
    assert ("hello.x86_64", "1.0-1", "base") in list_sections(r.out)["Available packages"], r


def test_installroot_default_reposdir_and_cachedir(lapis_file, tmp_path):
    root = tmp_path / "sysroot"
    (root / "etc" / "yum.repos.d").mkdir(parents=True)
    shutil.copy(FIXTURES / "repos.d" / "base.repo", root / "etc" / "yum.repos.d")
    argv = [LAPIS_BIN, "--installroot=%s" % root, "--releasever=1"]
    r = run_cmd(argv + ["--json", "repolist"], env=lapis_file.env)
    assert r.rc == 0, r
    assert [x["id"] for x in r.json()["repos"]] == ["base"]
    r = run_cmd(argv + ["makecache"], env=lapis_file.env)
    assert r.rc == 0, r
    cache = root / "var" / "cache" / "lapis"
    dirs = [d for d in os.listdir(cache) if d.startswith("base-")]
    assert len(dirs) == 1, os.listdir(cache)
    assert (cache / dirs[0] / "repodata" / "repomd.xml").is_file()
    r = run_cmd(argv + ["-C", "list", "hello"], env=lapis_file.env)
    assert r.rc == 0, r
    assert ("hello.x86_64", "1.0-1", "base") in list_sections(r.out)["Available packages"], r


def test_installroot_config_file_inside_root(lapis_file, tmp_path):
    """Without -c, the root's /etc/lapis/lapis.conf is read."""
    root = tmp_path / "sysroot"
    (root / "etc" / "yum.repos.d").mkdir(parents=True)
    (root / "etc" / "lapis").mkdir(parents=True)
    (root / "etc" / "lapis" / "lapis.conf").write_text("[main]\ninstall_weak_deps=False\n")
    for rid in ("base", "updates"):
        shutil.copy(FIXTURES / "repos.d" / ("%s.repo" % rid), root / "etc" / "yum.repos.d")
    r = run_cmd([LAPIS_BIN, "--installroot=%s" % root, "--releasever=1", "--json", "--assumeno",
                 "install", "hello"], env=lapis_file.env)
    assert r.rc == 1, r
    assert sorted(p["name"] for p in r.json()["transaction"]) == ["hello", "libfoo"]


def test_disablerepo_glob(lapis_file):
    doc = lapis_file.json("--disablerepo=*", "--enablerepo=upd*", "repolist")
    assert [x["id"] for x in doc["repos"]] == ["updates"]


def test_disabled_repos_are_not_loaded(lapis_file):
    doc = lapis_file.json("--disablerepo=updates", "list", "hello")
    assert [(p["version"], p["repo"]) for p in doc["available"]] == [("1.0", "base")]
    assert lapis_file.cache_dirs("updates") == []


def test_repo_priority_wins_over_version(lapis_file):
    """A lower priority number wins: base's hello-1.0 beats updates' 2.1."""
    doc = lapis_file.json("--setopt=base.priority=1", "--setopt=install_weak_deps=0",
                          "--assumeno", "install", "hello", rc=1)
    h = [p for p in doc["transaction"] if p["name"] == "hello"][0]
    assert (h["version"], h["repo"]) == ("1.0", "base")


def test_exclude(lapis_file):
    doc = lapis_file.json("--setopt=exclude=hello", "list")
    assert "hello" not in {p["name"] for p in doc["available"]}
    assert "libfoo" in {p["name"] for p in doc["available"]}


@pytest.mark.parametrize("base_prio,updates_prio,want", [
    (100, 200, ("1.0", "base")),     # above 99 (dnf takes any integer): lower still wins
    (-5, 0, ("1.0", "base")),        # negative beats zero
    (100, -1, ("2.1", "updates")),   # and a negative beats the default range
])
def test_repo_priority_any_integer(lapis, tmp_path, base_prio, updates_prio, want):
    """priority= takes any integer, as in dnf, given in the .repo file; a lower number wins."""
    d = tmp_path / "prio.repos.d"
    write_repo(d, "base", lapis.baseurl + "/base", priority=base_prio)
    write_repo(d, "updates", lapis.baseurl + "/updates", priority=updates_prio)
    doc = lapis.json("repolist", reposd=d)
    assert {x["id"]: x["priority"] for x in doc["repos"]} == {"base": base_prio,
                                                              "updates": updates_prio}
    doc = lapis.json("--setopt=install_weak_deps=0", "--assumeno", "install", "hello",
                     reposd=d, rc=1)
    h = [p for p in doc["transaction"] if p["name"] == "hello"][0]
    assert (h["version"], h["repo"]) == want


def test_option_missing_value(lapis_file):
    """An option given without its value says so (not "unknown option")."""
    for argv, name in ((["repolist", "--releasever"], "--releasever"),
                       (["repolist", "--installroot"], "--installroot"),
                       (["repolist", "-c"], "-c")):
        r = run_cmd([LAPIS_BIN] + argv, env=lapis_file.env)
        assert r.rc == 2, r
        assert r.error_lines == ["lapis: error: option '%s' requires a value; see 'lapis --help'"
                                 % name], r
