"""help [COMMAND], per-command --help (only that command's options), dnf's
command aliases, and the suggestion for a mistyped command (exit 2, as dnf5)."""

import re

import pytest

from conftest import LAPIS_BIN, run_cmd


def commands(lapis):
    out = lapis.ok("--help").out
    block = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in block.splitlines()]


def test_help_lists_commands_and_aliases(lapis_file):
    r = lapis_file.ok("help")
    assert r.out == lapis_file.ok("--help").out
    cmds = commands(lapis_file)
    for c in ("install", "download", "check-upgrade", "repo", "help"):
        assert c in cmds, r
    assert "in=install" in r.out and "rq=repoquery" in r.out, r


def test_every_command_has_its_own_help(lapis_file):
    for c in commands(lapis_file):
        if c == "image":
            continue    # parses its own options (lapis image --help)
        r = lapis_file.ok("help", c)
        assert r.out.startswith("usage: lapis [global options] %s" % c), r
        assert "--installroot" not in r.out, r     # global options stay in lapis --help


def test_command_help_shows_only_its_options(lapis_file):
    dl = lapis_file.ok("help", "download").out
    assert "--resolve" in dl and "--alldeps" in dl and "--url" in dl
    assert "--allowerasing" not in dl
    inst = lapis_file.ok("help", "install").out
    assert "--allowerasing" in inst and "--resolve" not in inst and "--security" not in inst
    up = lapis_file.ok("help", "upgrade").out
    assert "--security" in up and "--allowerasing" in up


@pytest.mark.parametrize("cmd", ["install", "remove", "download", "repo", "advisory"])
def test_dash_dash_help_is_help_command(lapis_file, cmd):
    """COMMAND --help prints the help and does nothing else (no args needed, nothing loaded)."""
    r = lapis_file.ok(cmd, "--help")
    assert r.out == lapis_file.ok("help", cmd).out
    assert r.out == lapis_file.ok("-h", cmd).out
    assert not lapis_file.cache.exists() and not lapis_file.root.exists(), r


def test_alias_help_names_the_alias(lapis_file):
    r = lapis_file.ok("rm", "--help")
    assert r.out.startswith("usage: lapis [global options] rm PACKAGE..."), r
    assert "(rm is an alias of remove)" in r.out, r


def test_help_unknown_command(lapis_file):
    r = lapis_file.run("help", "instal")
    assert r.rc == 2 and 'Did you mean "install"?' in r.err, r


# ---- aliases -----------------------------------------------------------------------

READ_ONLY_ALIASES = [
    (["se", "greeting"], ["search", "greeting"]),
    (["if", "hello"], ["info", "hello"]),
    (["rq", "hello"], ["repoquery", "hello"]),
    (["ls", "lib*"], ["list", "lib*"]),
    (["prov", "mta"], ["provides", "mta"]),
    (["wp", "mta"], ["provides", "mta"]),
    (["upif", "list", "--all"], ["updateinfo", "list", "--all"]),
    (["repoinfo", "base"], ["repo", "info", "base"]),
]


@pytest.mark.parametrize("alias,command", READ_ONLY_ALIASES, ids=[a[0][0] for a in READ_ONLY_ALIASES])
def test_alias_same_output(lapis, alias, command):
    mine = lapis.ok(*alias)
    assert mine.out == lapis.ok(*command).out
    assert mine.out.strip() or alias[0] == "upif", mine


def test_mc_is_makecache(lapis):
    r = lapis.ok("mc")
    assert "Metadata cache created." in r.out, r


def test_transaction_aliases(lapis_file):
    lapis_file.yes("--setopt=install_weak_deps=False", "in", "hello-1.0")
    assert lapis_file.names() == ["hello", "libfoo"]
    lapis_file.yes("up", "hello")
    assert "hello-0:2.1-1.x86_64" in lapis_file.installed()
    lapis_file.yes("dg", "hello")
    assert "hello-0:2.0-1.x86_64" in lapis_file.installed()
    lapis_file.yes("dsync")
    assert "hello-0:2.1-1.x86_64" in lapis_file.installed()
    lapis_file.yes("rei", "hello")
    lapis_file.yes("rm", "hello")
    assert lapis_file.names() == []
    r = lapis_file.ok("hist")
    assert len([l for l in r.out.splitlines() if re.match(r"^\s*\d+\s", l)]) == 6, r


# ---- typos -----------------------------------------------------------------------------

@pytest.mark.parametrize("typo,near", [
    ("instal", "install"), ("isntall", "install"), ("upgade", "upgrade"),
    ("repoqeury", "repoquery"), ("dowload", "download"), ("check-upgarde", "check-upgrade"),
])
def test_typo_suggests_nearest(lapis_file, typo, near):
    r = lapis_file.run(typo, "hello")
    assert r.rc == 2, r
    assert r.error_lines == ['lapis: error: unknown command "%s". Did you mean "%s"? '
                             "(see 'lapis --help')" % (typo, near)], r
    assert r.out == "" and not lapis_file.root.exists(), r


def test_far_word_no_suggestion(lapis_file):
    r = lapis_file.run("frobnicate")
    assert r.rc == 2, r
    assert "Did you mean" not in r.err and 'unknown command "frobnicate"' in r.err, r


def test_typo_json_error_document(lapis_file):
    r = lapis_file.run("--json", "instal", "hello")
    assert r.rc == 2, r
    assert 'Did you mean "install"?' in r.json()["error"]["message"], r


def test_no_command_still_usage_error():
    r = run_cmd([LAPIS_BIN])
    assert r.rc == 2 and "usage: lapis" in r.err, r
