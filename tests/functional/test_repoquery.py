"""repoquery with dnf5's filters, attributes and tags, on the signed fixture repos.

Where dnf 4 (installed here) shares dnf5's rules, the outputs are compared
line by line with it on the same repositories: the what<kind> filters,
--exactdeps, --recursive, --latest-limit, --arch, --file, the attribute
options and the tags both know. --leaves, --unneeded, --duplicates,
--installonly and --providers-of are checked against installed roots built
with rpm and lapis.
"""

import pytest

from conftest import FIXTURES, run_cmd
from test_transaction import DNF

NOWEAK = "--setopt=install_weak_deps=0"

# Arguments whose output dnf 4 and dnf5 agree on; each is run by both tools.
SAME_AS_DNF = [
    ("--whatrequires", "libfoo"), ("--whatrequires", "hello"), ("--whatrequires", "mta"),
    ("--whatrequires", "/usr/bin/hello"), ("--whatrequires", "lib*"),
    ("--whatrequires", "libfoo(abi)"), ("--whatrequires", "libfoo.so.1()(64bit)"),
    ("--whatrequires", "pkga"), ("--whatrequires", "libfoo,mta"),
    ("--whatrequires", "libfoo", "--exactdeps"), ("--whatrequires", "hello", "--exactdeps"),
    ("--whatrequires", "libfoo", "--recursive"),
    ("--whatdepends", "hello"), ("--whatdepends", "hello", "--exactdeps"),
    ("--whatrecommends", "weakdep-rec"), ("--whatsuggests", "weakdep-sug"),
    ("--whatsupplements", "hello"), ("--whatenhances", "hello"),
    ("--whatobsoletes", "oldname"), ("--whatconflicts", "hello"),
    ("--whatprovides", "mta"), ("--whatprovides", "libfoo(abi) = 1"),
    ("--file", "/usr/bin/hello"), ("--arch", "i686"), ("--arch", "noarch", "hello*", "pkg*"),
    ("--latest-limit", "1", "hello"), ("--latest-limit=-1", "hello"), ("--latest-limit", "2"),
    ("--depends", "weakpkg"), ("--requires-pre", "*"), ("--supplements", "weakpkg"),
    ("--enhances", "enhancer"), ("--provides", "hello"), ("--requires", "*"),
]

# Tags dnf 4 prints as dnf5 does (dnf 4 differs on reponame, buildtime, url,
# reason and installtime of what is not installed).
SHARED_TAGS = ["name", "arch", "epoch", "version", "release", "evr", "debug_name",
               "source_name", "source_debug_name", "downloadsize", "installsize", "provides",
               "requires", "obsoletes", "conflicts", "sourcerpm", "description", "summary",
               "license", "from_repo"]


def dnf_query(lapis, *args):
    root, cache = lapis.tmp / "dnfroot", lapis.tmp / "dnfcache"
    r = run_cmd([DNF, "-y", "-q", "--installroot=%s" % root, "--setopt=reposdir=%s" % lapis.reposd,
                 "--setopt=cachedir=%s" % cache, "--releasever=1", "repoquery"] + list(args),
                env=lapis.env, timeout=120)
    assert r.rc == 0, r
    return r.out_lines


def lapis_query(lapis, *args):
    return lapis.ok("-q", "repoquery", *args).out_lines


@pytest.fixture
def dnf(lapis_file):
    if not DNF:
        pytest.skip("dnf is not installed")
    return lambda *args: dnf_query(lapis_file, *args)


def test_filters_and_attributes_same_as_dnf(lapis_file, dnf):
    differ = {}
    for args in SAME_AS_DNF:
        ours, theirs = lapis_query(lapis_file, *args), dnf(*args)
        if ours != theirs:
            differ[" ".join(args)] = (ours, theirs)
    assert not differ, differ


def test_shared_tags_same_as_dnf(lapis_file, dnf):
    differ = {}
    for tag in SHARED_TAGS:
        # dnf 4 ends every package's text with a newline of its own, and a list
        # value with one more than dnf5: the lines are compared, blank ones left out
        fmt = "%%{name}-%%{epoch}:%%{version}-%%{release}.%%{arch} %%{%s}" % tag
        ours = [l for l in lapis_query(lapis_file, "--qf", fmt) if l]
        theirs = [l for l in dnf("--qf", fmt) if l]
        if ours != theirs:
            differ[tag] = (ours[:4], theirs[:4])
    assert not differ, differ


def test_default_output_is_a_sorted_set(lapis_file):
    """dnf5 prints the NEVRA lines sorted as strings: i686 before x86_64 of one version."""
    lines = lapis_query(lapis_file, "libfoo")
    assert lines == sorted(lines) and len(lines) == 4, lines
    assert lines[:2] == ["libfoo-0:1.0-1.i686", "libfoo-0:1.0-1.x86_64"], lines


def test_whatrequires_names_a_package_not_its_provides(lapis_file):
    """dnf5: a spec naming a package also matches what requires its provides,
    and a capability matches only itself (bash's /bin/sh is not hello's)."""
    assert lapis_query(lapis_file, "--whatrequires", "hello") == ["filedep-0:1.0-1.noarch"]
    assert lapis_query(lapis_file, "--whatrequires", "hello", "--exactdeps") == []
    assert lapis_query(lapis_file, "--whatrequires", "/usr/bin/hello", "--exactdeps") == [
        "filedep-0:1.0-1.noarch"]


def test_recursive_follows_requires(lapis_file):
    direct = lapis_query(lapis_file, "--whatrequires", "libfoo")
    assert "filedep-0:1.0-1.noarch" not in direct, direct
    both = lapis_query(lapis_file, "--whatrequires", "libfoo", "--recursive")
    assert set(both) == set(direct) | {"filedep-0:1.0-1.noarch"}, both
    # the name globs narrow last: filedep is reached through hello, which they leave out
    assert lapis_query(lapis_file, "--whatrequires", "libfoo", "--recursive", "filedep") == [
        "filedep-0:1.0-1.noarch"]


def test_providers_of(lapis_file):
    libfoo = ["libfoo-0:1.0-1.i686", "libfoo-0:1.0-1.x86_64", "libfoo-0:1.1-1.i686",
              "libfoo-0:1.1-1.x86_64"]
    assert lapis_query(lapis_file, "--providers-of=requires", "hello-2.1") == libfoo
    # filedep needs /usr/bin/hello: its providers, and with --recursive theirs (libfoo)
    hellos = ["hello-0:1.0-1.x86_64", "hello-0:2.0-1.x86_64", "hello-0:2.1-1.x86_64"]
    assert lapis_query(lapis_file, "--providers-of=requires", "filedep") == hellos
    assert lapis_query(lapis_file, "--providers-of=requires", "--recursive", "filedep") == sorted(
        hellos + libfoo)
    assert lapis_query(lapis_file, "--providers-of=depends", "weakpkg") == [
        "hello-0:1.0-1.x86_64", "hello-0:2.0-1.x86_64", "hello-0:2.1-1.x86_64",
        "weakdep-rec-0:1.0-1.noarch", "weakdep-sug-0:1.0-1.noarch"]


def test_providers_of_rejects_an_unknown_attribute(lapis_file):
    r = lapis_file.run("repoquery", "--providers-of=files", "hello")
    assert r.rc == 2 and "--providers-of takes conflicts, depends" in r.err, r


def test_leaves_count_a_cycle_as_one(lapis_file):
    lapis_file.rpm_install("hello-2.1-1.x86_64.rpm", "libfoo-1.1-1.x86_64.rpm",
                           "richdep-1.0-1.noarch.rpm", "pkga-1.0-1.noarch.rpm",
                           "cycle-a-1.0-1.noarch.rpm", "cycle-b-1.0-1.noarch.rpm")
    assert lapis_query(lapis_file, "--leaves") == [
        "cycle-a-0:1.0-1.noarch", "cycle-b-0:1.0-1.noarch", "hello-0:2.1-1.x86_64",
        "richdep-0:1.0-1.noarch"]
    # a glob narrows the leaves, it does not make new ones
    assert lapis_query(lapis_file, "--leaves", "lib*") == []


def test_duplicates_leave_out_installonly(lapis_file):
    lapis_file.root.mkdir(exist_ok=True)
    assert lapis_file.rpm("--initdb").rc == 0
    rpms = [FIXTURES / "rpms" / ("%s.rpm" % n) for n in ("hello-1.0-1.x86_64", "hello-2.0-1.x86_64",
                                        "kernel-5.0.0-1.x86_64", "kernel-5.1.0-1.x86_64",
                                        "pkga-1.0-1.noarch")]
    r = lapis_file.rpm("-i", "--nodeps", "--noscripts", "--nosignature", "--replacefiles", *rpms)
    assert r.rc == 0, r
    assert lapis_query(lapis_file, "--duplicates") == [
        "hello-0:1.0-1.x86_64", "hello-0:2.0-1.x86_64"]
    assert lapis_query(lapis_file, "--installonly") == [
        "kernel-0:5.0.0-1.x86_64", "kernel-0:5.1.0-1.x86_64"]


def test_unneeded_is_what_autoremove_removes(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    assert lapis_query(lapis_file, "--unneeded") == []
    lapis_file.ok("mark", "remove", "hello")
    assert lapis_query(lapis_file, "--unneeded") == [
        "hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64"]
    plan = lapis_file.run("--assumeno", "autoremove").out
    assert "hello" in plan and "libfoo" in plan, plan


def test_querytags_are_all_known(lapis_file):
    tags = lapis_file.ok("repoquery", "--querytags").out_lines
    assert tags == sorted(tags) and {"location", "group", "installtime", "depends",
                                     "requires_pre"} <= set(tags), tags
    lapis_file.rpm_install("hello-2.1-1.x86_64.rpm", "libfoo-1.1-1.x86_64.rpm")
    for tag in tags:
        out = lapis_file.ok("-q", "repoquery", "--installed", "--qf", "<%%{%s}>" % tag,
                            "hello").out
        # an unknown tag would stay as written
        assert "%{" not in out, (tag, out)


def test_new_tags(lapis_file):
    lapis_file.rpm_install("hello-2.1-1.x86_64.rpm")
    r = lapis_file.rpm("-q", "--qf", "%{INSTALLTIME}", "hello")
    assert r.rc == 0, r
    assert lapis_query(lapis_file, "--installed", "--qf", "%{installtime} %{location}", "hello") \
        == ["%s " % r.out]
    assert lapis_query(lapis_file, "--qf", "%{location}", "hello-2.1") == lapis_query(
        lapis_file, "--location", "hello-2.1")
    assert lapis_query(lapis_file, "--qf", "%{group}|%{installtime}", "pkga") == ["Unspecified|0"]
    assert lapis_query(lapis_file, "--qf", "%{debug_name} %{source_debug_name}", "hello-2.1") == [
        "hello-debuginfo hello-debuginfo"]
    reqs = lapis_query(lapis_file, "--qf", "%{requires_pre}|%{regular_requires}|%{depends}",
                       "weakpkg")
    # weakpkg has no requires; its depends are what it recommends, suggests, supplements
    assert reqs == ["||hello", "weakdep-rec", "weakdep-sug"], reqs


@pytest.mark.parametrize("opt", ["--leaves", "--whatdepends=hello", "--latest-limit=1",
                                 "--providers-of=requires", "--files", "--exactdeps"])
def test_repoquery_options_elsewhere_are_usage_errors(lapis_file, opt):
    r = lapis_file.run("list", opt)
    assert r.rc == 2, r
    assert "works with repoquery" in r.err, r


@pytest.mark.parametrize("value", ["0", "x", "1x", ""])
def test_latest_limit_needs_a_number(lapis_file, value):
    r = lapis_file.run("repoquery", "--latest-limit=%s" % value, "hello")
    assert r.rc == 2, r


def test_two_attributes_rejected(lapis_file):
    r = lapis_file.run("repoquery", "--depends", "--files", "hello")
    assert r.rc == 2 and "choose one of" in r.err, r


def test_files_attribute_is_a_sorted_set(lapis_file):
    lines = lapis_query(lapis_file, "--files", "hello")
    assert lines == sorted(set(lines)) and "/usr/bin/hello" in lines, lines
