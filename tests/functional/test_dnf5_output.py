"""dnf5's messages, exit codes and options where scripts and people read
them (issue 14): the failed-resolve report and its hints, already installed,
removing what is not installed, the prompt's answers, --json without -y,
--best/--no-best, --skip-unavailable, --allow-downgrade, the --setopt keys
dnf5 accepts, and obsoletes. The texts are dnf5's (libdnf5's log_event.cpp,
solver_problems.cpp, dnf5's main.cpp hints); where dnf 4 behaves the same,
the result is compared with it."""

import json
import os
import re
import subprocess

import pytest

from conftest import list_sections, run_cmd, run_on_tty
from test_transaction import DNF, dnf_installed, section

NOWEAK = "--setopt=install_weak_deps=0"
NOBEST_REPO = "--enablerepo=nobest"
REPOSYNC = ["Updating and loading repositories:", "Repositories loaded."]


def same_as_dnf(lapis, *step):
    """What dnf 4 installs for STEP on the same repos (test_transaction's helper)."""
    if not DNF:
        pytest.skip("dnf is not installed")
    return dnf_installed(lapis, [step])


# ---- the failed resolve -----------------------------------------------------

def test_nothing_provides_and_no_best_hint(lapis):
    """best=1: dnf5's Problem block, the rule with its repo, and the --no-best hint."""
    r = lapis.run("--assumeno", NOBEST_REPO, "install", "nobest")
    assert r.rc == 1, r
    assert r.err.splitlines() == REPOSYNC + [
        "Failed to resolve the transaction:",
        "Problem: cannot install the best candidate for the job",
        "  - nothing provides lapis-missing-capability needed by nobest-2.0-1.noarch from nobest",
        "You can try to add to command line:",
        "  --no-best to not limit the transaction to the best candidates",
        "  --skip-broken to skip uninstallable packages"], r
    assert r.error_lines == [] and r.out == "", r


def test_every_unmatched_spec_is_reported(lapis):
    """dnf5 names every argument that matches nothing, then what the solver says."""
    r = lapis.run("--assumeno", NOBEST_REPO, "install", "nosuch1", "nobest", "nosuch2")
    assert r.rc == 1, r
    fail = r.resolve_failure
    assert fail[:3] == ["No match for argument: nosuch1", "No match for argument: nosuch2",
                        "Problem: cannot install the best candidate for the job"], r
    assert fail[-4:] == ["You can try to add to command line:",
                         "  --skip-unavailable to skip unavailable packages",
                         "  --no-best to not limit the transaction to the best candidates",
                         "  --skip-broken to skip uninstallable packages"], r


def test_hints_leave_out_what_is_given(lapis):
    """--skip-broken drops what cannot be installed; only the unmatched spec is left."""
    r = lapis.run("--assumeno", "--skip-broken", NOBEST_REPO, "install", "nosuch", "nobest")
    assert r.rc == 1, r
    assert r.resolve_failure == ["No match for argument: nosuch",
                                 "You can try to add to command line:",
                                 "  --skip-unavailable to skip unavailable packages"], r


@pytest.mark.parametrize("opt", ["--no-best", "--nobest", "--setopt=best=0", "--setopt=best=False"])
def test_no_best_falls_back(lapis_file, opt):
    r = lapis_file.run("-y", opt, NOBEST_REPO, "install", "nobest")
    assert r.rc == 0, r
    assert lapis_file.installed() == ["nobest-0:1.0-1.noarch"]


def test_no_best_same_as_dnf(lapis_file):
    """dnf 4 with best=0 falls back to the same version."""
    lapis_file.yes("--no-best", NOBEST_REPO, "install", "nobest")
    assert lapis_file.installed() == same_as_dnf(lapis_file, "--setopt=best=0", NOBEST_REPO,
                                                 "install", "nobest")


def test_best_option_overrides_config(lapis):
    r = lapis.run("--assumeno", "--setopt=best=0", "--best", NOBEST_REPO, "install", "nobest")
    assert r.rc == 1 and "cannot install the best candidate" in r.err, r


# ---- skip-unavailable -------------------------------------------------------

@pytest.mark.parametrize("opt", ["--skip-unavailable", "--setopt=skip_unavailable=1"])
def test_skip_unavailable(lapis_file, opt):
    r = lapis_file.run("-y", opt, NOWEAK, "install", "doesnotexist", "pkga")
    assert r.rc == 0, r
    assert "No match for argument: doesnotexist" in r.err.splitlines(), r
    assert "Failed to resolve" not in r.err and r.error_lines == [], r
    assert lapis_file.names() == ["pkga"]


def test_skip_unavailable_nothing_left(lapis):
    r = lapis.run("-y", "--skip-unavailable", "install", "doesnotexist")
    assert r.rc == 0 and "Nothing to do." in r.out, r
    assert r.err.splitlines() == REPOSYNC + ["No match for argument: doesnotexist"], r


# ---- already installed, not installed ----------------------------------------

def test_already_installed(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    r = lapis_file.run("-y", "install", "hello")
    assert r.rc == 0, r
    assert 'Package "hello-2.1-1.x86_64" is already installed.' in r.err.splitlines(), r
    assert "Nothing to do." in r.out and r.error_lines == [], r


def test_remove_not_installed(lapis_file):
    """dnf5: a note, "Nothing to do.", exit status 0."""
    r = lapis_file.run("-y", "remove", "pkga")
    assert r.rc == 0, r
    assert r.err.splitlines() == REPOSYNC + ["No packages to remove for argument: pkga"], r
    assert "Nothing to do." in r.out, r


def test_remove_one_installed_one_not(lapis_file):
    lapis_file.yes("install", "pkga")
    r = lapis_file.run("-y", "remove", "pkga", "pkgb")
    assert r.rc == 0, r
    assert "No packages to remove for argument: pkgb" in r.err.splitlines(), r
    assert lapis_file.installed() == []


def test_upgrade_not_installed(lapis):
    r = lapis.run("-y", "upgrade", "pkga")
    assert r.rc == 1, r
    assert r.resolve_failure[0] == "Packages for argument 'pkga' available, but not installed.", r


# ---- the prompt ----------------------------------------------------------------

def test_answer_no_is_operation_aborted(lapis_file):
    cp = run_on_tty(lapis_file, "n\n", "install", "pkga")
    assert cp.returncode == 1, cp
    # the typed-ahead answer is not echoed, so the line follows the question
    assert cp.stderr.splitlines()[-1].endswith("Operation aborted by the user."), cp
    assert "lapis: error" not in cp.stderr and "terminal" not in cp.stderr, cp
    assert lapis_file.installed() == []


@pytest.mark.parametrize("answer,installed", [("y\ny\n", ["pkga-0:1.0-1.noarch"]), ("n\n", []),
                                              ("", [])], ids=["yes", "no", "end-of-input"])
def test_answer_read_from_a_pipe(lapis_file, answer, installed):
    """dnf5 reads the answers on stdin when it is not a terminal: `yes | dnf install`
    (the transaction, then the repo key to import)."""
    cp = subprocess.run(lapis_file.argv("install", "pkga"), input=answer, capture_output=True,
                        text=True, env=lapis_file.env, timeout=60)
    assert cp.returncode == (0 if installed else 1), cp
    assert "Is this ok [y/N]: \n" in cp.stderr, cp
    assert "lapis: error" not in cp.stderr and "terminal" not in cp.stderr, cp
    if not installed:
        assert cp.stderr.endswith("Operation aborted by the user.\n"), cp
    assert lapis_file.installed() == installed, cp


def test_json_never_prompts_on_a_terminal(lapis_file):
    cp = run_on_tty(lapis_file, "y\ny\n", "--json", "install", "pkga")
    assert cp.returncode == 2, cp
    assert "Is this ok" not in cp.stderr, cp
    assert "--json cannot ask for confirmation" in json.loads(cp.stdout)["error"]["message"]
    assert lapis_file.installed() == []


# ---- obsoletes ---------------------------------------------------------------------

def test_install_obsoleted_installs_obsoleter(lapis_file):
    """dnf with obsoletes=1: installing oldname installs newname, which obsoletes it."""
    r = lapis_file.run("-y", "install", "oldname")
    assert r.rc == 0, r
    assert lapis_file.names() == ["newname"]
    assert lapis_file.installed() == same_as_dnf(lapis_file, "install", "oldname")


def test_glob_gives_each_name_its_own_obsoleters(lapis_file):
    """dnf groups a glob's matches by name and adds each name's obsoleters to
    that name only: '*name' installs newname (for oldname, and as itself).
    Lapis used to keep only the last match's obsoleters, and found none, so it
    asked for oldname and newname both: a conflict."""
    r = lapis_file.run("-y", "install", "*name")
    assert r.rc == 0, r
    assert lapis_file.names() == ["newname"]
    assert lapis_file.installed() == same_as_dnf(lapis_file, "install", "*name")


def test_name_with_version_gets_no_obsoleters(lapis_file):
    """Only a bare name brings in obsoleters (dnf's has_just_name): asking for
    oldname-1.0 installs oldname-1.0."""
    r = lapis_file.run("-y", "install", "oldname-1.0")
    assert r.rc == 0, r
    assert lapis_file.names() == ["oldname"]
    assert lapis_file.installed() == same_as_dnf(lapis_file, "install", "oldname-1.0")


@pytest.mark.parametrize("mark,want", [(None, "User"), ("remove", "Dependency"),
                                       ("dependency", "Dependency"), ("weak", "Weak Dependency")])
def test_upgrade_across_obsoletes_keeps_the_reason(lapis_file, mark, want):
    """The obsoleter inherits the reason of what it replaces (dnf5 does the same);
    'mark remove' (dnf 4), 'mark dependency' and 'mark weak' (dnf5) change it first."""
    lapis_file.yes("--setopt=obsoletes=0", "install", "oldname")
    if mark:
        lapis_file.yes("mark", mark, "oldname")
    assert lapis_file.names() == ["oldname"]
    r = lapis_file.yes("upgrade")
    assert lapis_file.names() == ["newname"], r
    r = lapis_file.ok("repoquery", "--installed", "--qf", "%{name} %{reason}")
    assert r.out_lines == ["newname %s" % want], r


def test_obsoletes_off(lapis_file):
    lapis_file.yes("--setopt=obsoletes=0", "install", "oldname")
    assert lapis_file.names() == ["oldname"]
    r = lapis_file.run("-y", "--setopt=obsoletes=0", "upgrade")
    assert r.rc == 0, r
    assert lapis_file.names() == ["oldname"]


# ---- --setopt keys --------------------------------------------------------------------

def test_protected_packages(lapis_file):
    lapis_file.yes("install", "pkga")
    r = lapis_file.run("-y", "--setopt=protected_packages=pkga", "remove", "pkga")
    assert r.rc == 1, r
    assert ("Problem: The operation would result in removing the following protected "
            "packages: pkga") in r.resolve_failure, r
    assert lapis_file.names() == ["pkga"]


def test_installonlypkgs(lapis_file):
    """An installonly package is installed beside the older one, not upgraded."""
    lapis_file.yes(NOWEAK, "install", "hello-1.0")
    r = lapis_file.run("--assumeno", "--setopt=installonlypkgs=hello", NOWEAK, "install",
                       "hello-2.0")
    assert r.rc == 1 and "Installing:" in r.out and "Upgrading:" not in r.out, r
    r = lapis_file.run("--assumeno", NOWEAK, "install", "hello-2.0")
    assert r.rc == 1 and "Upgrading:" in r.out, r


@pytest.mark.parametrize("key", ["excludepkgs", "exclude"])
def test_excludepkgs(lapis, key):
    r = lapis.run("--assumeno", "--setopt=%s=pkga" % key, "install", "pkga")
    assert r.rc == 1 and "No match for argument: pkga" in r.err, r


def test_includepkgs(lapis):
    r = lapis.run("--setopt=includepkgs=pkga", "list", "available")
    assert r.rc == 0, r
    names = {l.split()[0].rsplit(".", 1)[0] for l in r.out.splitlines()[1:] if l.strip()}
    assert names == {"pkga"}, r


def test_destdir(lapis_file):
    dest = lapis_file.tmp / "dest"
    dest.mkdir()
    r = lapis_file.run("-y", "--downloadonly", "--setopt=destdir=%s" % dest, NOWEAK,
                       "install", "pkga")
    assert r.rc == 0, r
    assert [p.name for p in dest.iterdir()] == ["pkga-1.0-1.noarch.rpm"], r


def test_cacheonly_values(lapis_http):
    lapis_http.ok("makecache")
    r = lapis_http.run("-y", "--setopt=cacheonly=all", NOWEAK, "install", "pkga")
    assert r.rc == 1 and "Cache-only enabled but no cache for package pkga" in r.err, r
    r = lapis_http.run("-y", "--setopt=cacheonly=metadata", NOWEAK, "install", "pkga")
    assert r.rc == 0, r
    r = lapis_http.run("--setopt=cacheonly=bogus", "repolist")
    assert r.rc == 2 and "cacheonly" in r.err, r


def test_cacheonly_all_uses_a_file_repo_in_place(lapis_file):
    """A file:// repo's packages are read (and verified) where they are, as
    dnf does with local repos: cache-only needs no cached copy of them."""
    lapis_file.ok("makecache")
    r = lapis_file.run("-y", "--setopt=cacheonly=all", NOWEAK, "install", "pkga")
    assert r.rc == 0 and lapis_file.names() == ["pkga"], r


def test_unknown_setopt_key_stays_an_error(lapis):
    r = lapis.run("--setopt=no_such_key=1", "list")
    assert r.rc == 2 and "unknown option 'no_such_key'" in r.err, r


# ---- --allow-downgrade ----------------------------------------------------------

def test_allow_downgrade_accepted(lapis_file):
    """Accepted where dnf5 accepts it; an ordinary install is unchanged by it."""
    r = lapis_file.run("-y", "--allow-downgrade", NOWEAK, "install", "pkga")
    assert r.rc == 0 and lapis_file.names() == ["pkga"], r


NEEDS_OLD_SPEC = """Name: needsold
Version: 1.0
Release: 1
Summary: Lapis test package that needs the old libfoo
License: MIT
BuildArch: noarch
Requires: libfoo = 1.0-1
%description
Needs libfoo 1.0 exactly.
%files
"""


def build_needs_old(tmp_path):
    top = tmp_path / "rpmbuild"
    (top / "SPECS").mkdir(parents=True)
    spec = top / "SPECS" / "needsold.spec"
    spec.write_text(NEEDS_OLD_SPEC)
    r = run_cmd(["rpmbuild", "-bb", "--define", "_topdir %s" % top, str(spec)],
                env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"))
    assert r.rc == 0, r
    return next((top / "RPMS" / "noarch").glob("needsold-*.rpm"))


def test_allow_downgrade_downgrades_a_dependency(lapis_file, tmp_path):
    """A package that needs an older libfoo: refused as a plain install (a
    dependency is not downgraded behind the user's back), installed with
    --allow-downgrade, which takes libfoo back to 1.0."""
    rpm = build_needs_old(tmp_path)
    lapis_file.yes(NOWEAK, "install", "hello")
    assert lapis_file.names() == ["hello", "libfoo"]
    before = lapis_file.installed()
    for opts in ((), ("--no-allow-downgrade",)):
        r = lapis_file.run("-y", "--nogpgcheck", NOWEAK, *opts, "install", rpm)
        assert r.rc == 1 and "libfoo" in r.err, r
        assert lapis_file.installed() == before
    r = lapis_file.run("-y", "--nogpgcheck", NOWEAK, "--allow-downgrade", "install", rpm)
    assert r.rc == 0, r
    assert lapis_file.installed() == ["hello-0:2.1-1.x86_64", "libfoo-0:1.0-1.x86_64",
                                      "needsold-0:1.0-1.noarch"], r


# ---- the transaction's report ------------------------------------------------------

def test_done_lists_after_the_transaction(lapis_file):
    """dnf's Installed: / Upgraded: / Removed: lists, before Complete!"""
    r = lapis_file.yes(NOWEAK, "--disablerepo=updates", "install", "hello")
    assert r.out_lines[-4:] == ["Installed:", "  hello-1.0-1.x86_64", "  libfoo-1.0-1.x86_64",
                                "Complete!"], r
    r = lapis_file.yes(NOWEAK, "upgrade", "hello")
    assert r.out_lines[-3:] == ["Upgraded:", "  hello-2.1-1.x86_64", "Complete!"], r
    r = lapis_file.yes("remove", "hello")
    assert r.out_lines[-4:] == ["Removed:", "  hello-2.1-1.x86_64", "  libfoo-1.0-1.x86_64",
                                "Complete!"], r


def test_sizes_before_the_question(lapis_file):
    """dnf5's two lines: what to download, and the disk space it takes or frees."""
    r = lapis_file.run("--assumeno", NOWEAK, "install", "bigpkg")
    assert r.rc == 1, r
    assert re.search(r"^Total size of inbound packages is \S+ \S+\. Need to download \S+ \S+\.$",
                     r.out, re.M), r
    m = re.search(r"^After this operation, (\S+ \S+) extra will be used \(install (\S+ \S+), "
                  r"remove 0 B\)\.$", r.out, re.M)
    assert m and m.group(1) == m.group(2) and m.group(1).endswith("MiB"), r
    lapis_file.yes(NOWEAK, "install", "bigpkg")
    r = lapis_file.run("--assumeno", "remove", "bigpkg")
    assert re.search(r"^After this operation, 2(\.0)? MiB will be freed \(install 0 B, remove "
                     r"2(\.0)? MiB\)\.$", r.out, re.M), r
    assert "Total size of inbound packages" not in r.out, r   # dnf5: only when something comes in


def test_assumeno_says_aborted_on_stderr(lapis_file):
    """dnf5 answers --assumeno as it answers 'n': "Operation aborted by the user."
    on stderr, exit 1; the sizes stay on stdout with the table."""
    r = lapis_file.run("--assumeno", NOWEAK, "install", "bigpkg")
    assert r.rc == 1, r
    assert r.err.splitlines()[-1] == "Operation aborted by the user.", r
    assert "aborted" not in r.out and "After this operation" in r.out, r


def test_progress_names_the_version(lapis_file):
    """An upgrade's last progress line names the old version, not just "Removing hello"."""
    lapis_file.yes(NOWEAK, "--disablerepo=updates", "install", "hello")
    r = lapis_file.yes(NOWEAK, "upgrade", "hello")
    assert re.search(r"^\[\s*1/\s*2\] Installing hello-0:2\.1-1\.x86_64$", r.out, re.M), r
    assert re.search(r"^\[\s*2/\s*2\] Removing\s+hello-0:1\.0-1\.x86_64$", r.out, re.M), r


# ---- queries: --queryformat and the dnf5 filters ------------------------------------

QF_ALL = ("%{name}|%{epoch}|%{version}|%{release}|%{arch}|%{evr}|%{full_nevra}|%{repoid}|"
          "%{reason}|%{from_repo}|%{installsize}|%{sourcerpm}")


def test_queryformat_tags(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello", "epochpkg")
    r = lapis_file.ok("repoquery", "--installed", "--qf", QF_ALL, "hello", "epochpkg")
    assert r.out_lines == [
        "epochpkg|1|1.0|1|noarch|1:1.0-1|epochpkg-1:1.0-1.noarch|@System|User|base|17|"
        "epochpkg-1.0-1.src.rpm",
        "hello|0|2.1|1|x86_64|2.1-1|hello-0:2.1-1.x86_64|@System|User|updates|96|"
        "hello-2.1-1.src.rpm"], r
    r = lapis_file.ok("repoquery", "--installed", "--queryformat", "%{name} %{reason}", "libfoo")
    assert r.out_lines == ["libfoo Dependency"], r


@pytest.mark.parametrize("cmd", ["list", "info"])
def test_list_no_match_in_dnf5_words(lapis, cmd):
    r = lapis.run(cmd, "nosuchpkg")
    assert r.rc == 1, r
    assert r.error_lines == ["lapis: error: No matching packages to list"], r


def test_queryformat_more_dnf5_tags(lapis):
    """%{vendor} %{packager} %{source_name} %{supplements} %{enhances}, and
    tags in any case (dnf5 lowercases them)."""
    r = lapis.ok("repoquery", "--qf", "%{NAME}|%{vendor}|%{packager}|%{source_name}",
                 "weakpkg", "enhancer")
    assert r.out_lines == ["enhancer|Lapis Test|Lapis Fixtures <fixtures@lapis.invalid>|enhancer",
                           "weakpkg|Lapis Test|Lapis Fixtures <fixtures@lapis.invalid>|weakpkg"], r
    # lists: one item per line, as dnf5 prints them
    r = lapis.ok("repoquery", "--qf", "%{name}:%{supplements}%{Enhances}", "weakpkg", "enhancer")
    assert r.out == "enhancer:hello\nweakpkg:hello\n", r


def test_queryformat_reason_group_and_external(lapis_file):
    """dnf5's words: a group member is "Group", a package rpm installed by
    itself (no lapis transaction recorded it) "External User"."""
    lapis_file.rpm_install("pkgb-1.0-1.noarch.rpm")
    lapis_file.yes(NOWEAK, "--repo=base", "group", "install", "greeting")
    r = lapis_file.ok("repoquery", "--installed", "--qf", "%{name} %{reason}")
    assert r.out_lines == ["hello Group", "libfoo Dependency", "pkga Group",
                           "pkgb External User"], r


def test_queryformat_alignment_unknown_tag_and_escapes(lapis):
    r = lapis.ok("repoquery", "--qf", "[%-8{name}][%8{arch}]%{bogus}\\t%{repoid}", "hello-1.0")
    assert r.out_lines == ["[hello   ][  x86_64]%{bogus}\tbase"], r


def test_queryformat_lines_are_sorted_and_unique(lapis):
    r = lapis.ok("repoquery", "--qf", "%{name}", "hello")
    assert r.out_lines == ["hello"], r


def test_queryformat_same_as_dnf(lapis):
    """dnf 4 prints the same lines for the tags both know."""
    if not DNF:
        pytest.skip("dnf is not installed")
    qf = "%{name} %{epoch} %{version} %{release} %{arch} %{repoid} %{sourcerpm}"
    mine = lapis.ok("repoquery", "--qf", qf, "hello", "epochpkg", "libfoo").out_lines
    cp = subprocess.run([DNF, "-q", "-y", "--installroot=%s" % (lapis.tmp / "dnfroot"),
                         "--setopt=reposdir=%s" % lapis.reposd,
                         "--setopt=cachedir=%s" % (lapis.tmp / "dnfcache"), "--releasever=1",
                         "repoquery", "--qf", qf, "hello", "epochpkg", "libfoo"],
                        capture_output=True, text=True, timeout=300, env=lapis.env)
    assert cp.returncode == 0, cp
    assert sorted(set(cp.stdout.split("\n")) - {""}) == mine


def test_list_and_info_queryformat(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    r = lapis_file.ok("list", "--installed", "--qf", "%{name}-%{evr}")
    assert r.out_lines == ["hello-2.1-1", "libfoo-1.1-1"], r
    r = lapis_file.ok("info", "--available", "--qf", "%{name} %{repoid}", "pkga")
    assert r.out_lines == ["pkga base"], r


def test_info_and_repoquery_take_the_list_filters(lapis_file):
    """--upgrades, --extras and --installed mean for info and repoquery what
    they mean for list: the same packages."""
    lapis_file.yes(NOWEAK, "--disablerepo=updates", "install", "hello")
    qf = ("--qf", "%{name}-%{evr}")
    for opt, want, repos in (("--upgrades", ["hello-2.1-1", "libfoo-1.1-1"], ()),
                             ("--extras", ["hello-1.0-1", "libfoo-1.0-1"], ("--disablerepo=base",)),
                             ("--installed", ["hello-1.0-1", "libfoo-1.0-1"], ())):
        for cmd in ("list", "info", "repoquery"):
            r = lapis_file.ok(*repos, cmd, opt, *qf)
            assert r.out_lines == want, (cmd, opt, r)
    r = lapis_file.ok("info", "--upgrades", "hello")
    assert r.out.splitlines()[0] == "Available upgrades", r
    assert re.search(r"^Version\s*: 2\.1$", r.out, re.M), r


def test_userinstalled(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    r = lapis_file.ok("repoquery", "--userinstalled")
    assert r.out_lines == ["hello-0:2.1-1.x86_64"], r


def test_list_section_options(lapis_file):
    lapis_file.yes(NOWEAK, "--disablerepo=updates", "install", "hello")
    secs = list_sections(lapis_file.ok("list", "--installed").out)
    assert list(secs) == ["Installed packages"], secs
    for opt in ("--upgrades", "--updates"):
        secs = list_sections(lapis_file.ok("list", opt).out)
        assert list(secs) == ["Available upgrades"], secs
        assert ("hello.x86_64", "2.1-1", "updates") in secs["Available upgrades"], secs
    secs = list_sections(lapis_file.ok("list", "--available", "pkga").out)
    assert secs == {"Available packages": [("pkga.noarch", "1.0-1", "base")]}, secs


def test_installed_shows_the_repo_it_came_from(lapis_file):
    """dnf5: list's repo column and info's "From repository" name the repo an
    installed package came from (the history's), "<unknown>" when rpm put it
    there; %{repoid} stays "@System"."""
    lapis_file.yes(NOWEAK, "--disablerepo=updates", "install", "hello")
    lapis_file.yes(NOWEAK, "upgrade", "hello")
    lapis_file.rpm_install("pkga-1.0-1.noarch.rpm")
    secs = list_sections(lapis_file.ok("list", "--installed").out)
    assert secs == {"Installed packages": [("hello.x86_64", "2.1-1", "updates"),
                                           ("libfoo.x86_64", "1.0-1", "base"),
                                           ("pkga.noarch", "1.0-1", "<unknown>")]}, secs
    r = lapis_file.ok("info", "--installed", "hello")
    assert re.search(r"^From repository\s*: updates$", r.out, re.M), r
    assert not re.search(r"^Repository\s*:", r.out, re.M), r
    r = lapis_file.ok("info", "--available", "epochpkg")
    assert re.search(r"^Repository\s*: base$", r.out, re.M), r
    r = lapis_file.ok("repoquery", "--installed", "--qf", "%{name} %{repoid} %{from_repo}\n")
    assert r.out_lines == ["hello @System updates", "libfoo @System base",
                           "pkga @System <unknown>"], r


def test_list_extras(lapis_file):
    lapis_file.yes(NOWEAK, "--disablerepo=updates", "install", "hello")
    r = lapis_file.run("--disablerepo=base", "list", "--extras")
    assert r.rc == 0, r
    secs = list_sections(r.out)
    assert secs == {"Extra packages": [("hello.x86_64", "1.0-1", "base"),
                                       ("libfoo.x86_64", "1.0-1", "base")]}, r
    r = lapis_file.ok("list", "--extras")
    assert r.out == "", r


def test_list_recent(lapis):
    """--recent: built within `recent` days (the fixtures are from 2026-01-01)."""
    r = lapis.run("--setopt=recent=7", "list", "--recent", "pkga")
    assert r.rc == 1 and r.out == "", r
    r = lapis.ok("--setopt=recent=36500", "list", "--recent", "pkga")
    assert list_sections(r.out) == {"Recently added packages": [("pkga.noarch", "1.0-1", "base")]}


# ---- history: --reverse and ranges ----------------------------------------------------

def history_ids(out):
    return [int(l.split()[0]) for l in out.splitlines()[1:]]


def test_history_reverse_and_ranges(lapis_file):
    for p in ("pkga", "pkgb", "mta-a"):
        lapis_file.yes("install", p)
    assert history_ids(lapis_file.ok("history", "list").out) == [3, 2, 1]
    assert history_ids(lapis_file.ok("history", "list", "--reverse").out) == [1, 2, 3]
    assert history_ids(lapis_file.ok("history", "list", "2..3").out) == [3, 2]
    assert history_ids(lapis_file.ok("history", "list", "..2").out) == [2, 1]
    assert history_ids(lapis_file.ok("history", "list", "last").out) == [3]
    assert history_ids(lapis_file.ok("history", "list", "last-2").out) == [1]
    r = lapis_file.ok("history", "info", "1..2")
    assert [l for l in r.out_lines if l.startswith("Transaction ID")] == [
        "Transaction ID : 1", "Transaction ID : 2"], r
    r = lapis_file.ok("history", "info", "last-1")
    assert "Transaction ID : 2" in r.out_lines and "pkgb" in r.out, r
    r = lapis_file.run("history", "info", "last-9")
    assert r.rc == 1 and "no transaction last-9" in r.err, r


def test_mark_user_after_weak(lapis_file):
    """dnf5's mark user|dependency|weak set what %{reason} shows and autoremove follows."""
    lapis_file.yes(NOWEAK, "install", "pkga")
    for mark, want in (("weak", "Weak Dependency"), ("user", "User"), ("dependency", "Dependency")):
        r = lapis_file.ok("mark", mark, "pkga")
        assert r.out.startswith("1 package marked as "), r
        assert lapis_file.ok("repoquery", "--installed", "--qf", "%{reason}", "pkga").out_lines == [
            want]
    r = lapis_file.yes("autoremove")
    assert lapis_file.names() == [], r


def test_external_packages_stay_on_autoremove(lapis_file):
    """A package rpm installed by itself is dnf5's "External User": autoremove
    keeps it, as it keeps what the user installed, and takes the dependency
    nothing user-installed needs any more; remove takes the external one."""
    lapis_file.rpm_install("pkgb-1.0-1.noarch.rpm")
    lapis_file.yes(NOWEAK, "--repo=base", "install", "hello")
    lapis_file.yes("mark", "dependency", "hello")
    r = lapis_file.yes("autoremove")
    assert sorted(section(r.out, "Removing unused dependencies:")) == ["hello", "libfoo"], r
    assert lapis_file.names() == ["pkgb"], r
    r = lapis_file.yes("remove", "pkgb")
    assert lapis_file.names() == [], r
