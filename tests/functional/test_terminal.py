"""Package text never drives the terminal (docs/reliability.md, "Terminal
output"): C0/C1 controls (an 8-bit CSI, an 8-bit OSC 52 clipboard write),
DEL and bidi overrides/isolates from repository metadata (the termtext repo)
or an installed rpm header (termraw, with ill-formed UTF-8 that repository
XML cannot carry) are replaced in every command's output; --json escapes
them as \\uXXXX and replaces ill-formed UTF-8 with U+FFFD, so the document
stays valid JSON. Valid multibyte text is kept.

Output is checked as bytes: the Result helper decodes text and would hide
(or choke on) exactly what is tested here."""

import json
import subprocess

import pytest

TERM = "--repo=termtext"
KEPT = "caf\u00e9 \u4e2d\u6587"
FFFD = "\ufffd"
RAW = "termraw-1.0-1.noarch.rpm"


def unsafe(ch):
    c = ord(ch)
    return ((c < 0x20 and ch != "\n") or 0x7f <= c <= 0x9f or 0x202a <= c <= 0x202e
            or 0x2066 <= c <= 0x2069)


def run_bytes(lapis, *args, rc=0):
    cp = subprocess.run(lapis.argv(*args), capture_output=True, env=lapis.env,
                        stdin=subprocess.DEVNULL, timeout=60)
    assert cp.returncode == rc, (args, cp)
    return cp


def terminal_text(data):
    """DATA decoded as strict UTF-8, asserted free of terminal controls."""
    text = data.decode("utf-8")          # ill-formed UTF-8 raises here
    bad = sorted({"U+%04X" % ord(ch) for ch in text if unsafe(ch)})
    assert not bad, "terminal controls in the output: %s\n%r" % (bad, text)
    return text


def lapis_text(lapis, *args):
    cp = run_bytes(lapis, *args)
    terminal_text(cp.stderr)
    return terminal_text(cp.stdout)


def lapis_json(lapis, *args):
    cp = run_bytes(lapis, "--json", *args)
    for raw in (b"\xc2\x9b", b"\xc2\x9d", b"\xe2\x80\xae", b"\xe2\x81\xa6", b"\x7f", b"\x1b"):
        assert raw not in cp.stdout, (raw, cp.stdout)
    terminal_text(cp.stdout)
    return json.loads(cp.stdout.decode("utf-8"))


SUMMARY = "Term ?31mred?0m ?52;c;SGVsbG8=? ?txt.exe? ?iso? " + KEPT
SUMMARY_RAW = ("Term \u009b31mred\u009b0m \u009d52;c;SGVsbG8=\u009c \u202etxt.exe\u202c "
               "\u2066iso\u2069 " + KEPT)


def test_repo_text_in_info_search_repoquery(lapis):
    out = lapis_text(lapis, TERM, "info", "termpkg")
    lines = out.splitlines()
    assert "Summary        : " + SUMMARY in lines, out
    assert "URL            : https://lapis.invalid/?2J" in lines, out
    assert "Description    : First line ?2J?H cleared the screen." in lines, out
    assert "               : Clipboard: ?52;c;cm0gLXJmIH4=?" in lines, out
    assert "               : Reversed: ?gnp.exe? and ?isolated?" in lines, out
    assert "               : Kept: " + KEPT in lines, out
    assert lapis_text(lapis, TERM, "repoquery", "--info", "termpkg") == out.split("\n", 1)[1]
    out = lapis_text(lapis, TERM, "search", "Term")
    assert out.split() == ["Matched", "fields:", "name,", "summary", "termpkg.noarch:"] + \
        SUMMARY.split(), out
    out = lapis_text(lapis, TERM, "repoquery", "-l", "termpkg")
    assert "/usr/share/termpkg/file-?31m-?gpj.exe" in out.splitlines(), out
    for args in (("provides", "termpkg"), ("list", "termpkg"),
                 ("repoquery", "--location", "termpkg")):
        lapis_text(lapis, TERM, *args)


def test_repo_text_in_json(lapis):
    pkg = lapis_json(lapis, TERM, "info", "termpkg")["packages"][0]
    assert pkg["summary"] == SUMMARY_RAW
    assert pkg["url"] == "https://lapis.invalid/\u009b2J"
    assert "Clipboard: \u009d52;c;cm0gLXJmIH4=\u009c" in pkg["description"]
    assert lapis_json(lapis, TERM, "search", "Term")["packages"][0]["summary"] == SUMMARY_RAW
    files = lapis_json(lapis, TERM, "repoquery", "-l", "termpkg")["packages"][0]["files"]
    assert "/usr/share/termpkg/file-\u009b31m-\u202egpj.exe" in files, files


def test_advisory_text(lapis):
    out = lapis_text(lapis, "-y", TERM, "install", "termpkg")
    assert "Complete!" in out
    out = lapis_text(lapis, TERM, "updateinfo", "info", "--all")
    lines = out.splitlines()
    assert "  " + SUMMARY in lines, out
    assert "       CVEs: CVE-2026-?7777" in lines, out
    assert "Description: %s. This is a Lapis test advisory." % SUMMARY in lines, out
    lapis_text(lapis, TERM, "updateinfo", "list", "--all")
    lapis_text(lapis, TERM, "info", "termpkg")             # now from the rpmdb
    adv = lapis_json(lapis, TERM, "updateinfo", "info", "--all")["advisories"][0]
    assert adv["title"] == SUMMARY_RAW
    assert adv["cves"] == ["CVE-2026-\u009b7777"]


@pytest.fixture
def raw_installed(lapis_file):
    lapis_file.rpm_install(RAW)
    return lapis_file


def test_installed_header_text(raw_installed):
    lapis = raw_installed
    out = lapis_text(lapis, "info", "termraw")
    lines = out.splitlines()
    # URL and License come from the header as they are: ESC and a raw 0x9b byte.
    assert "URL             : https://lapis.invalid/?[2J%sH" % FFFD in lines, out
    assert "License         : MIT %s2J" % FFFD in lines, out
    # libsolv reads ill-formed summaries as Latin-1: 0x9b becomes U+009B, a C1 CSI.
    summary = [l for l in lines if l.startswith("Summary")][0]
    assert summary.startswith("Summary         : Raw ?]0;title?\\ ?31mred "), out
    # termraw is in no repo: repoquery sees it with --installed (dnf5's default is available)
    assert lapis_text(lapis, "repoquery", "--installed", "--info", "termraw") == \
        out.split("\n", 1)[1]
    out = lapis_text(lapis, "repoquery", "--installed", "-l", "termraw")
    assert "/usr/share/termraw/file-%s31m-%s" % (FFFD, FFFD * 6) in out.splitlines(), out
    for args in (("list", "installed"), ("repoquery", "--installed", "termraw")):
        lapis_text(lapis, *args)


def test_installed_header_json(raw_installed):
    lapis = raw_installed
    pkg = lapis_json(lapis, "info", "termraw")["packages"][0]
    assert pkg["url"] == "https://lapis.invalid/\x1b[2J%sH" % FFFD
    assert pkg["license"] == "MIT %s2J" % FFFD
    assert pkg["summary"].startswith("Raw \x1b]0;title\x1b\\ \u009b31mred ")
    files = lapis_json(lapis, "repoquery", "--installed", "-l", "termraw")["packages"][0]["files"]
    assert "/usr/share/termraw/file-%s31m-%s" % (FFFD, FFFD * 6) in files, files
