"""dnf5 exits 2 (ARGPARSER_ERROR) for every command-line usage error: an
unknown option, a missing or bad option value, a wrong number of arguments,
an unknown command or subcommand. Each gives exactly one clear line on
stderr, nothing on stdout, and changes nothing."""
import re

import pytest

USAGE_ERRORS = [
    ("-Z", "repolist"),                          # unknown short option
    ("--bogus", "list"),                         # unknown long option
    ("install", "--nope", "pkga"),               # unknown option after the command
    ("list", "--frob"),
    ("repolist", "--releasever"),                # missing value
    ("repoclosure", "--check"),
    ("--setopt=nokey=1", "list"),                # bad --setopt key
    ("--setopt=best=maybe", "list"),             # bad option value
    ("--color=sometimes", "search", "greeting"),
    ("upgrade", "--sec-severity=Bogus"),
    ("install",),                                # missing positional arguments
    ("remove",),
    ("reinstall",),
    ("downgrade",),
    ("download",),
    ("search",),
    ("provides",),
    ("group", "install"),
    ("history", "undo"),
    ("mark",),
    ("makecache", "extra"),                      # too many arguments
    ("needs-restarting", "x"),
    ("help", "install", "remove"),
    ("frobnicate",),                             # unknown command
    ("group", "frob"),                           # unknown subcommands
    ("history", "frob"),
    ("repo", "frob"),
    ("clean", "frob"),
    ("clean",),                                  # dnf5: an argument is required
    ("mark", "frob", "pkga"),
    ("image", "frob"),
    ("repoquery", "--requires", "--provides", "pkga"),   # options that exclude each other
    ("repo", "list", "--all", "--disabled"),
    ("list", "--security"),                      # advisory filters where none apply
    ("info", "--advisory-severities=low", "hello"),
    ("repoquery", "--cve", "CVE-2026-1111"),
    ("install", "--bugfix", "hello"),
    ("install", "--url", "hello"),               # options of other commands: never ignored
    ("install", "--resolve", "hello"),
    ("upgrade", "--alldeps"),
    ("list", "--arch=x86_64"),
    ("install", "--reverse", "hello"),
    ("list", "--disabled"),
    ("search", "--qf", "%{name}", "hello"),
    ("check-upgrade", "--extras"),
    ("search", "--recent", "hello"),
    ("remove", "--userinstalled", "hello"),
    ("install", "--with-optional", "hello"),
    ("list", "--hidden"),
    ("repoquery", "--newest"),
    ("repoquery", "--check=base"),
]


@pytest.mark.parametrize("args", [("install", "--url", "hello"), ("search", "--qf", "x", "hello")],
                         ids=" ".join)
def test_misplaced_option_names_its_commands(lapis_file, args):
    r = lapis_file.run(*args)
    assert r.rc == 2, r
    opt = "--queryformat" if args[1] == "--qf" else args[1]
    assert re.fullmatch(r"lapis: error: %s works with [a-z, ]+, not '%s'; see 'lapis %s --help'"
                        % (opt, args[0], args[0]), r.err.strip()), r


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=" ".join)
def test_usage_error_exits_2(lapis_file, args):
    before = lapis_file.installed()
    r = lapis_file.run(*args)
    assert r.rc == 2, r
    assert len(r.err.splitlines()) == 1 and len(r.error_lines) == 1, r
    assert r.out == "", r
    assert lapis_file.installed() == before


def test_usage_error_json_document(lapis_file):
    """With --json the usage error is still exit 2, and the one error document."""
    r = lapis_file.run("--json", "group", "frob")
    assert r.rc == 2 and '"error"' in r.out, r


def test_runtime_errors_stay_1(lapis_file, tmp_path):
    """Not usage errors: a package that does not exist, a bad .rpm file (exit 1)."""
    r = lapis_file.run("-y", "install", "no-such-package")
    assert r.rc == 1, r
    bad = tmp_path / "bad-1.0-1.x86_64.rpm"
    bad.write_bytes(b"not an rpm")
    r = lapis_file.run("-y", "install", str(bad))
    assert r.rc == 1 and "not a readable rpm package" in r.err, r
