"""Advisories (updateinfo): `updateinfo`/`advisory` in its summary, list and
info modes and scopes, the advisory filters (--security ... --sec-severity),
`upgrade` and `upgrade-minimal` restricted by advisories, `check-update` with
filters, and a repo whose updateinfo.xml is broken.

Most tests start from a root holding the base (old) versions:
hello-1.0, libfoo-1.0 (x86_64 only), kernel-5.0.0, systemd/glibc/openssl-1.0.
Against the advisories of `base` and `updates` that gives:
  available: LAPIS-2026-0001 .. LAPIS-2026-0006
  installed: LAPIS-2025-0001 (names hello-1.0, which is installed)
Transactions are inspected with `--assumeno --json` (exit 1, result
"aborted"); a few are really run with -y and checked through rpm."""

import pytest

from conftest import nevra

OLD = ("hello-1.0", "openssl-1.0", "kernel-5.0.0", "glibc-1.0", "systemd-1.0", "libfoo-1.0")
# What the root holds after installing OLD (hello's weak deps come along).
OLD_INSTALLED = ["glibc-0:1.0-1.x86_64", "hello-0:1.0-1.x86_64", "kernel-0:5.0.0-1.x86_64",
                 "libfoo-0:1.0-1.x86_64", "openssl-0:1.0-1.x86_64", "systemd-0:1.0-1.x86_64",
                 "weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]

AVAILABLE_IDS = ["LAPIS-2026-0001", "LAPIS-2026-0002", "LAPIS-2026-0003",
                 "LAPIS-2026-0004", "LAPIS-2026-0005", "LAPIS-2026-0006"]
INSTALLED_IDS = ["LAPIS-2025-0001"]
ALL_IDS = INSTALLED_IDS + AVAILABLE_IDS

AVAILABLE_ROWS = [
    ["LAPIS-2026-0001", "Critical/Sec.", "hello-2.0-1.x86_64"],
    ["LAPIS-2026-0002", "Important/Sec.", "openssl-1.1-1.x86_64"],
    ["LAPIS-2026-0003", "bugfix", "libfoo-1.1-1.x86_64"],
    ["LAPIS-2026-0004", "enhancement", "systemd-1.1-1.x86_64"],
    ["LAPIS-2026-0005", "Moderate/Sec.", "kernel-5.1.0-1.x86_64"],
    ["LAPIS-2026-0006", "Low/Sec.", "glibc-1.1-1.x86_64"],
]

SUMMARY_AVAILABLE = """\
Updates Information Summary: available
    4 Security notice(s)
        1 Critical Security notice(s)
        1 Important Security notice(s)
        1 Moderate Security notice(s)
        1 Low Security notice(s)
    1 Bugfix notice(s)
    1 Enhancement notice(s)
"""

SUMMARY_INSTALLED = """\
Updates Information Summary: installed
    1 Security notice(s)
        1 Low Security notice(s)
"""

SUMMARY_ALL = """\
Updates Information Summary: all
    5 Security notice(s)
        1 Critical Security notice(s)
        1 Important Security notice(s)
        1 Moderate Security notice(s)
        2 Low Security notice(s)
    1 Bugfix notice(s)
    1 Enhancement notice(s)
"""


def setup_old(lapis):
    lapis.yes("--repo", "base", "install", *OLD)
    assert lapis.installed() == OLD_INSTALLED
    return lapis


@pytest.fixture
def old(lapis_file):
    """file:// environment, root with the old versions installed."""
    return setup_old(lapis_file)


@pytest.fixture
def old_any(lapis):
    """Same, over both transports."""
    return setup_old(lapis)


def rows(out):
    """The whitespace-split non-empty lines of a table."""
    return [l.split() for l in out.splitlines() if l.strip()]


def adv_ids(doc):
    return [a["id"] for a in doc["advisories"]]


def adv(doc, advid):
    found = [a for a in doc["advisories"] if a["id"] == advid]
    assert len(found) == 1, doc
    return found[0]


def tx(doc):
    """{(name, version, arch, action)} of an --assumeno --json transaction."""
    assert doc["result"] == "aborted", doc
    return sorted((p["name"], p["version"], p["arch"], p["action"]) for p in doc["transaction"])


def plan(lapis, *args):
    """What a transaction would do, without doing it."""
    r = lapis.run("--assumeno", "--json", *args)
    assert r.rc == 1, r
    return tx(r.json())


def info_blocks(out):
    """`updateinfo info` output -> {Update ID: [(label, value), ...]} where
    continuation lines (empty label) carry the previous label."""
    blocks, cur, label = {}, None, None
    for line in out.splitlines():
        if line[11:13] != ": ":     # not a "%11s: value" field (rule, title, blank)
            continue
        lab, val = line[:11].strip(), line[13:]
        lab = lab or label
        label = lab
        if lab == "Update ID":
            cur = blocks.setdefault(val, [])
        assert cur is not None, out
        cur.append((lab, val))
    return blocks


def values(block, label):
    return [v for l, v in block if l == label]


# ---- summary (the default mode) --------------------------------------------------

def test_summary_available_default(old_any):
    r = old_any.ok("updateinfo")
    assert r.out == SUMMARY_AVAILABLE, r
    assert r.err.splitlines() == ["Updating and loading repositories:", "Repositories loaded."], r


def test_summary_spellings_agree(old):
    expected = old.ok("updateinfo").out
    for args in (["updateinfo", "summary"], ["updateinfo", "--summary"],
                 ["updateinfo", "--available"], ["updateinfo", "--summary", "list"]):
        r = old.ok(*args)
        assert r.out == expected, r


@pytest.mark.parametrize("scope,expected", [
    ("--installed", SUMMARY_INSTALLED),
    ("--all", SUMMARY_ALL),
])
def test_summary_scopes(old, scope, expected):
    r = old.ok("updateinfo", scope)
    assert r.out == expected, r


def test_summary_with_type_filter(old):
    r = old.ok("updateinfo", "--security")
    assert r.out == ("Updates Information Summary: available\n"
                     "    4 Security notice(s)\n"
                     "        1 Critical Security notice(s)\n"
                     "        1 Important Security notice(s)\n"
                     "        1 Moderate Security notice(s)\n"
                     "        1 Low Security notice(s)\n"), r


def test_summary_with_spec(old):
    r = old.ok("updateinfo", "hello")
    assert r.out == ("Updates Information Summary: available\n"
                     "    1 Security notice(s)\n"
                     "        1 Critical Security notice(s)\n"), r


@pytest.mark.parametrize("scope,expected", [
    ("--available", {"security": 4, "bugfix": 1, "enhancement": 1, "newpackage": 0,
                     "severity": {"Critical": 1, "Important": 1, "Moderate": 1, "Low": 1}}),
    ("--installed", {"security": 1, "bugfix": 0, "enhancement": 0, "newpackage": 0,
                     "severity": {"Critical": 0, "Important": 0, "Moderate": 0, "Low": 1}}),
    ("--all", {"security": 5, "bugfix": 1, "enhancement": 1, "newpackage": 0,
               "severity": {"Critical": 1, "Important": 1, "Moderate": 1, "Low": 2}}),
])
def test_summary_json(old, scope, expected):
    doc = old.json("updateinfo", scope)
    assert doc == {"scope": scope.lstrip("-"), "summary": expected}


def test_empty_root_has_no_advisories(lapis_file):
    r = lapis_file.ok("updateinfo")
    assert r.out == "", r
    r = lapis_file.ok("updateinfo", "--all", "list")
    assert r.out == "", r
    assert lapis_file.json("updateinfo", "--all", "info") == {"scope": "all", "advisories": []}
    doc = lapis_file.json("updateinfo")
    assert doc == {"scope": "available",
                   "summary": {"security": 0, "bugfix": 0, "enhancement": 0, "newpackage": 0,
                               "severity": {"Critical": 0, "Important": 0, "Moderate": 0,
                                            "Low": 0}}}


# ---- list ------------------------------------------------------------------------

def test_list_available(old_any):
    r = old_any.ok("updateinfo", "list")
    assert rows(r.out) == AVAILABLE_ROWS, r
    assert "i686" not in r.out, r    # libfoo.i686 is not installed


def test_list_spellings_agree(old):
    expected = old.ok("updateinfo", "list").out
    for args in (["updateinfo", "--list"], ["updateinfo", "list", "--available"]):
        r = old.ok(*args)
        assert r.out == expected, r
    assert old.ok("advisory", "--list").out == old.ok("advisory", "list").out


def test_list_installed(old):
    r = old.ok("updateinfo", "--installed", "list")
    assert rows(r.out) == [["LAPIS-2025-0001", "Low/Sec.", "hello-1.0-1.x86_64"]], r


def test_list_all_marks_installed_rows(old):
    r = old.ok("updateinfo", "--all", "list")
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert len(lines) == 7, r
    marked = [l.split()[1:] for l in lines if l.split()[0] == "i"]
    unmarked = [l.split() for l in lines if l.split()[0] != "i"]
    assert marked == [["LAPIS-2025-0001", "Low/Sec.", "hello-1.0-1.x86_64"]], r
    assert unmarked == AVAILABLE_ROWS, r


@pytest.mark.parametrize("scope,expected", [
    ("--available", AVAILABLE_IDS),
    ("--installed", INSTALLED_IDS),
    ("--all", ALL_IDS),
])
def test_json_list_ids_sorted(old, scope, expected):
    doc = old.json("updateinfo", "list", scope)
    assert doc["scope"] == scope.lstrip("-")
    assert adv_ids(doc) == expected


@pytest.mark.parametrize("args,expected", [
    (["LAPIS-2026-0001"], ["LAPIS-2026-0001"]),
    (["LAPIS-2026-000[12]"], ["LAPIS-2026-0001", "LAPIS-2026-0002"]),
    (["*-0005"], ["LAPIS-2026-0005"]),
    (["hello"], ["LAPIS-2026-0001"]),
    (["lib*"], ["LAPIS-2026-0003"]),
    (["openssl", "systemd"], ["LAPIS-2026-0002", "LAPIS-2026-0004"]),
    (["LAPIS-2025-*"], []),                       # installed, not in the default scope
    (["--all", "LAPIS-2025-*"], ["LAPIS-2025-0001"]),
    (["--all", "hello"], ["LAPIS-2025-0001", "LAPIS-2026-0001"]),
    (["--installed", "h?llo"], ["LAPIS-2025-0001"]),
    (["nosuch"], []),
    (["newname"], []),                            # not an advisory package
])
def test_list_specs(old, args, expected):
    assert adv_ids(old.json("updateinfo", "list", *args)) == expected
    r = old.ok("updateinfo", "list", *args)
    assert [row[-3] for row in rows(r.out)] == expected, r


def test_scope_uses_newest_installed_of_same_arch(lapis_file):
    """libfoo.x86_64 1.0 (older than the advisory) and libfoo.i686 1.1 (the
    advisory's version): the x86_64 row is available, the i686 row installed."""
    lapis_file.rpm_install("libfoo-1.0-1.x86_64.rpm", "libfoo-1.1-1.i686.rpm")
    r = lapis_file.ok("updateinfo", "list")
    assert rows(r.out) == [["LAPIS-2026-0003", "bugfix", "libfoo-1.1-1.x86_64"]], r
    r = lapis_file.ok("updateinfo", "--installed", "list")
    assert rows(r.out) == [["LAPIS-2026-0003", "bugfix", "libfoo-1.1-1.i686"]], r
    doc = lapis_file.json("updateinfo", "--all", "list")
    states = {p["arch"]: p["state"] for p in adv(doc, "LAPIS-2026-0003")["packages"]}
    assert states == {"x86_64": "available", "i686": "installed"}
    # Only the older arch is upgraded.
    assert plan(lapis_file, "upgrade", "--bugfix") == [("libfoo", "1.1", "x86_64", "upgrade")]
    r = lapis_file.run("--json", "check-update", "--bugfix")
    assert r.rc == 100, r
    assert [nevra(p) for p in r.json()["upgrades"]] == ["libfoo-1.1-1.x86_64"]


def test_scope_newer_kernel_installed(lapis_file):
    """kernel 5.0.0 and 5.2.0 installed: the newest (5.2.0) already has the
    5.1.0 fix, so LAPIS-2026-0005 is installed, not available."""
    lapis_file.rpm_install("kernel-5.0.0-1.x86_64.rpm", "kernel-5.2.0-1.x86_64.rpm")
    assert adv_ids(lapis_file.json("updateinfo", "list")) == []
    assert adv_ids(lapis_file.json("updateinfo", "--installed", "list")) == ["LAPIS-2026-0005"]
    r = lapis_file.run("--assumeno", "--json", "upgrade", "--security")
    assert r.rc == 0 and r.json()["result"] == "nothing-to-do", r
    assert lapis_file.installed() == ["kernel-0:5.0.0-1.x86_64", "kernel-0:5.2.0-1.x86_64"]


# ---- filters -----------------------------------------------------------------------

FILTER_CASES = [
    (["--security"], ["LAPIS-2026-0001", "LAPIS-2026-0002", "LAPIS-2026-0005", "LAPIS-2026-0006"]),
    (["--bugfix"], ["LAPIS-2026-0003"]),
    (["--enhancement"], ["LAPIS-2026-0004"]),
    (["--newpackage"], []),
    (["--bugfix", "--enhancement"], ["LAPIS-2026-0003", "LAPIS-2026-0004"]),
    (["--advisory", "LAPIS-2026-0004"], ["LAPIS-2026-0004"]),
    (["--advisories=LAPIS-2026-0004,LAPIS-2026-0005"], ["LAPIS-2026-0004", "LAPIS-2026-0005"]),
    (["--advisory=LAPIS-2026-0006", "--advisory", "LAPIS-2026-0002"],
     ["LAPIS-2026-0002", "LAPIS-2026-0006"]),
    (["--cve", "CVE-2026-1112"], ["LAPIS-2026-0001"]),
    (["--cves=CVE-2026-1111,CVE-2026-6666"], ["LAPIS-2026-0001", "LAPIS-2026-0006"]),
    (["--cve", "CVE-2026-2222", "--cve", "CVE-2026-5555"], ["LAPIS-2026-0002", "LAPIS-2026-0005"]),
    (["--cve", "CVE-1999-0000"], []),
    (["--bz", "3"], ["LAPIS-2026-0003"]),
    (["--bzs=3"], ["LAPIS-2026-0003"]),
    (["--bz", "4"], []),
    # types, ids, CVEs and bugs add up
    (["--bugfix", "--cve", "CVE-2026-2222"], ["LAPIS-2026-0002", "LAPIS-2026-0003"]),
    (["--bz", "3", "--enhancement"], ["LAPIS-2026-0003", "LAPIS-2026-0004"]),
    (["--advisory", "LAPIS-2026-0004", "--cve", "CVE-2026-5555", "--bz", "3"],
     ["LAPIS-2026-0003", "LAPIS-2026-0004", "LAPIS-2026-0005"]),
    # severity narrows; alone it selects by severity
    (["--security", "--sec-severity=Critical"], ["LAPIS-2026-0001"]),
    (["--sec-severity=Low"], ["LAPIS-2026-0006"]),
    (["--secseverity", "low"], ["LAPIS-2026-0006"]),
    (["--sec-severity=IMPORTANT"], ["LAPIS-2026-0002"]),
    (["--sec-severity", "Critical,Low"], ["LAPIS-2026-0001", "LAPIS-2026-0006"]),
    (["--sec-severity", "Important", "--sec-severity", "Moderate"],
     ["LAPIS-2026-0002", "LAPIS-2026-0005"]),
    (["--bugfix", "--sec-severity", "Important"], []),
    (["--security", "--bugfix", "--sec-severity", "Important"], ["LAPIS-2026-0002"]),
    (["--advisory", "LAPIS-2026-0003", "--sec-severity", "Critical"], []),
    (["--cves", "CVE-2026-1111,CVE-2026-5555", "--sec-severity", "moderate"],
     ["LAPIS-2026-0005"]),
    (["--all", "--sec-severity=Low"], ["LAPIS-2025-0001", "LAPIS-2026-0006"]),
    (["--installed", "--security"], ["LAPIS-2025-0001"]),
    (["--installed", "--bugfix"], []),
]


@pytest.mark.parametrize("args,expected", FILTER_CASES, ids=[" ".join(c[0]) for c in FILTER_CASES])
def test_filters(old, args, expected):
    assert adv_ids(old.json("updateinfo", "list", *args)) == expected


def test_filter_text_list(old):
    r = old.ok("updateinfo", "list", "--bugfix", "--cve", "CVE-2026-2222")
    assert rows(r.out) == [["LAPIS-2026-0002", "Important/Sec.", "openssl-1.1-1.x86_64"],
                           ["LAPIS-2026-0003", "bugfix", "libfoo-1.1-1.x86_64"]], r


@pytest.mark.parametrize("value", ["bogus", "Urgent", "Low,Bogus", "nothing"])
def test_unknown_severity(old, value):
    r = old.run("updateinfo", "list", "--sec-severity=" + value)
    assert r.rc == 2, r
    assert len(r.error_lines) == 1 and "unknown severity" in r.error_lines[0], r
    assert r.out == "", r


def test_unknown_severity_refuses_upgrade(old):
    r = old.run("-y", "upgrade", "--sec-severity", "Severe")
    assert r.rc == 2, r
    assert len(r.error_lines) == 1 and "unknown severity" in r.error_lines[0], r
    assert old.installed() == OLD_INSTALLED


@pytest.mark.parametrize("opt", ["--sec-severity=", "--advisory=", "--cve=", "--bz=",
                                 "--sec-severity=,", "--cve= "])
def test_empty_filter_value_is_refused(old, opt):
    r = old.run("updateinfo", "list", opt)
    assert r.rc == 2, r
    assert len(r.error_lines) == 1 and "needs a value" in r.error_lines[0], r


@pytest.mark.parametrize("opt", ["--sec-severity=", "--advisory="])
def test_empty_filter_does_not_upgrade_everything(old, opt):
    """An empty filter must not turn a filtered upgrade into a full one."""
    before = old.installed()
    r = old.run("-y", "--json", "upgrade", opt)
    assert r.rc == 2, r
    assert "transaction" not in r.json(), r
    assert any("needs a value" in l for l in r.error_lines), r
    assert old.installed() == before


# ---- info --------------------------------------------------------------------------

def test_info_critical_hello(old_any):
    r = old_any.ok("updateinfo", "info", "LAPIS-2026-0001")
    lines = r.out.splitlines()
    assert "  Critical: hello security update" in lines, r
    body = [l for l in lines if l[11:13] == ": "]
    assert body == [
        "  Update ID: LAPIS-2026-0001",
        "       Type: security",
        "    Updated: 2026-01-01 00:00:00",
        "       CVEs: CVE-2026-1111",
        "           : CVE-2026-1112",
        "Description: Critical: hello security update. This is a Lapis test advisory.",
        "   Severity: Critical",
        "   Packages: hello-2.0-1.x86_64",
        " Repository: updates",
    ], r


def test_info_all_available_blocks(old):
    r = old.ok("updateinfo", "info")
    blocks = info_blocks(r.out)
    assert sorted(blocks) == AVAILABLE_IDS, r
    expect_type = {"LAPIS-2026-0001": "security", "LAPIS-2026-0002": "security",
                   "LAPIS-2026-0003": "bugfix", "LAPIS-2026-0004": "enhancement",
                   "LAPIS-2026-0005": "security", "LAPIS-2026-0006": "security"}
    for advid, block in blocks.items():
        assert values(block, "Type") == [expect_type[advid]], block
        assert values(block, "Updated") == ["2026-01-0%s 00:00:00" % advid[-1]], block
        assert values(block, "Repository") == ["updates"], block
        assert len(values(block, "Description")) == 1, block
    # Reboot only where the advisory suggests it.
    assert [a for a, b in blocks.items() if values(b, "Reboot")] == ["LAPIS-2026-0005"]
    assert values(blocks["LAPIS-2026-0005"], "Reboot") == ["suggested"]
    # Severity only for advisories that have one.
    assert values(blocks["LAPIS-2026-0003"], "Severity") == []
    assert values(blocks["LAPIS-2026-0004"], "Severity") == []
    assert values(blocks["LAPIS-2026-0006"], "Severity") == ["Low"]
    assert values(blocks["LAPIS-2026-0002"], "CVEs") == ["CVE-2026-2222"]
    assert values(blocks["LAPIS-2026-0004"], "CVEs") == []


def test_info_bugfix_bugs_and_packages(old):
    r = old.ok("updateinfo", "--info", "--bz", "3")
    blocks = info_blocks(r.out)
    assert list(blocks) == ["LAPIS-2026-0003"], r
    b = blocks["LAPIS-2026-0003"]
    assert len(values(b, "Bugs")) == 1 and values(b, "Bugs")[0].split()[0] == "3", r
    assert values(b, "CVEs") == [], r
    assert values(b, "Packages") == ["libfoo-1.1-1.x86_64", "libfoo-1.1-1.i686"], r


def test_info_installed_scope(old):
    r = old.ok("updateinfo", "--installed", "info")
    blocks = info_blocks(r.out)
    assert list(blocks) == ["LAPIS-2025-0001"], r
    b = blocks["LAPIS-2025-0001"]
    assert values(b, "Updated") == ["2025-06-01 00:00:00"], r
    assert values(b, "Repository") == ["base"], r
    assert values(b, "Severity") == ["Low"], r
    assert [v.split()[0] for v in values(b, "Packages")] == ["hello-1.0-1.x86_64"], r


def test_info_option_equals_info_mode(old):
    assert old.ok("updateinfo", "--info").out == old.ok("updateinfo", "info").out
    assert old.ok("advisory", "info", "kernel").out == \
        old.ok("advisory", "info", "LAPIS-2026-0005").out


# ---- JSON documents ------------------------------------------------------------------

REQUIRED_KEYS = {"id", "type", "severity", "title", "issued", "cves", "bugs", "references",
                 "packages", "description", "status", "reboot_suggested", "repo"}
PKG_KEYS = {"name", "epoch", "version", "release", "arch", "filename", "state",
            "reboot_suggested"}


def test_json_critical_hello(old_any):
    doc = old_any.json("updateinfo", "info", "LAPIS-2026-0001")
    assert doc["scope"] == "available"
    assert adv_ids(doc) == ["LAPIS-2026-0001"]
    a = doc["advisories"][0]
    assert REQUIRED_KEYS <= set(a), a
    assert a["id"] == "LAPIS-2026-0001"
    assert a["type"] == "security"
    assert a["severity"] == "Critical"
    assert a["title"] == "Critical: hello security update"
    assert a["issued"] == "2026-01-01 00:00:00"
    assert a["cves"] == ["CVE-2026-1111", "CVE-2026-1112"]
    assert a["bugs"] == []
    assert a["status"] == "stable"
    assert a["repo"] == "updates"
    assert a["reboot_suggested"] is False
    assert a["description"] == "Critical: hello security update. This is a Lapis test advisory."
    assert sorted((r["type"], r["id"], r["href"], r["title"]) for r in a["references"]) == [
        ("cve", "CVE-2026-1111", "https://cve.lapis.invalid/CVE-2026-1111", "CVE-2026-1111"),
        ("cve", "CVE-2026-1112", "https://cve.lapis.invalid/CVE-2026-1112", "CVE-2026-1112"),
    ]
    assert a["packages"] == [{"name": "hello", "epoch": 0, "version": "2.0", "release": "1",
                              "arch": "x86_64", "filename": "hello-2.0-1.x86_64.rpm",
                              "state": "available", "reboot_suggested": False}]


def test_json_bugfix_without_severity(old):
    a = adv(old.json("updateinfo", "list", "LAPIS-2026-0003"), "LAPIS-2026-0003")
    assert a["type"] == "bugfix"
    assert a["severity"] is None
    assert a["title"] == "libfoo bug fix update"
    assert a["issued"] == "2026-01-03 00:00:00"
    assert a["cves"] == []
    assert a["bugs"] == ["3"]
    assert a["references"] == [{"type": "bugzilla", "id": "3",
                                "href": "https://bugs.lapis.invalid/3", "title": "Lapis bug 3"}]
    pk = {(p["name"], p["version"], p["arch"]): p["state"] for p in a["packages"]}
    assert pk == {("libfoo", "1.1", "x86_64"): "available",
                  ("libfoo", "1.1", "i686"): "not-installed"}
    for p in a["packages"]:
        assert set(p) == PKG_KEYS, p


def test_json_all_scope_states(old):
    doc = old.json("updateinfo", "--all", "list")
    assert adv_ids(doc) == ALL_IDS
    for a in doc["advisories"]:
        assert REQUIRED_KEYS <= set(a), a
    assert [p["state"] for p in adv(doc, "LAPIS-2025-0001")["packages"]] == ["installed"]
    assert adv(doc, "LAPIS-2025-0001")["repo"] == "base"
    assert adv(doc, "LAPIS-2025-0001")["issued"] == "2025-06-01 00:00:00"
    assert [p["state"] for p in adv(doc, "LAPIS-2026-0005")["packages"]] == ["available"]
    sev = {a["id"]: a["severity"] for a in doc["advisories"]}
    assert sev == {"LAPIS-2025-0001": "Low", "LAPIS-2026-0001": "Critical",
                   "LAPIS-2026-0002": "Important", "LAPIS-2026-0003": None,
                   "LAPIS-2026-0004": None, "LAPIS-2026-0005": "Moderate",
                   "LAPIS-2026-0006": "Low"}


def test_json_reboot_suggested_advisory(old):
    doc = old.json("updateinfo", "info")
    reboot = {a["id"]: a["reboot_suggested"] for a in doc["advisories"]}
    assert reboot == {i: i == "LAPIS-2026-0005" for i in AVAILABLE_IDS}


def test_json_reboot_suggested_package(old):
    a = adv(old.json("updateinfo", "info", "LAPIS-2026-0005"), "LAPIS-2026-0005")
    assert [(p["name"], p["reboot_suggested"]) for p in a["packages"]] == [("kernel", True)]


# ---- upgrade / upgrade-minimal with filters ------------------------------------------

UPGRADE_CASES = [
    (["upgrade", "--security"],
     [("glibc", "1.1", "x86_64", "upgrade"), ("hello", "2.1", "x86_64", "upgrade"),
      ("kernel", "5.2.0", "x86_64", "install"), ("openssl", "1.1", "x86_64", "upgrade")]),
    (["upgrade-minimal", "--security"],
     [("glibc", "1.1", "x86_64", "upgrade"), ("hello", "2.0", "x86_64", "upgrade"),
      ("kernel", "5.1.0", "x86_64", "install"), ("openssl", "1.1", "x86_64", "upgrade")]),
    (["upgrade-minimal"],
     [("glibc", "1.1", "x86_64", "upgrade"), ("hello", "2.0", "x86_64", "upgrade"),
      ("kernel", "5.1.0", "x86_64", "install"), ("libfoo", "1.1", "x86_64", "upgrade"),
      ("openssl", "1.1", "x86_64", "upgrade"), ("systemd", "1.1", "x86_64", "upgrade")]),
    (["update-minimal", "--bugfix"], [("libfoo", "1.1", "x86_64", "upgrade")]),
    # dnf5's spelling of upgrade-minimal
    (["upgrade", "--minimal", "--security"],
     [("glibc", "1.1", "x86_64", "upgrade"), ("hello", "2.0", "x86_64", "upgrade"),
      ("kernel", "5.1.0", "x86_64", "install"), ("openssl", "1.1", "x86_64", "upgrade")]),
    (["upgrade", "--minimal", "--security", "hello"], [("hello", "2.0", "x86_64", "upgrade")]),
    (["upgrade", "--bz", "3"], [("libfoo", "1.1", "x86_64", "upgrade")]),
    (["upgrade", "--enhancement"], [("systemd", "1.1", "x86_64", "upgrade")]),
    (["upgrade", "--security", "hello"], [("hello", "2.1", "x86_64", "upgrade")]),
    (["upgrade-minimal", "--security", "hello"], [("hello", "2.0", "x86_64", "upgrade")]),
    (["upgrade", "--security", "hel*", "openssl"],
     [("hello", "2.1", "x86_64", "upgrade"), ("openssl", "1.1", "x86_64", "upgrade")]),
    (["upgrade", "--sec-severity", "Moderate"], [("kernel", "5.2.0", "x86_64", "install")]),
    (["upgrade-minimal", "--cve", "CVE-2026-5555"], [("kernel", "5.1.0", "x86_64", "install")]),
    (["upgrade", "--advisory", "LAPIS-2026-0001"], [("hello", "2.1", "x86_64", "upgrade")]),
    (["update-minimal", "--advisory=LAPIS-2026-0001"], [("hello", "2.0", "x86_64", "upgrade")]),
    (["upgrade", "--security", "--sec-severity=Critical,Important"],
     [("hello", "2.1", "x86_64", "upgrade"), ("openssl", "1.1", "x86_64", "upgrade")]),
    (["upgrade", "--bugfix", "--cve", "CVE-2026-6666"],
     [("glibc", "1.1", "x86_64", "upgrade"), ("libfoo", "1.1", "x86_64", "upgrade")]),
    (["upgrade-minimal", "--enhancement", "systemd"], [("systemd", "1.1", "x86_64", "upgrade")]),
]


@pytest.mark.parametrize("args,expected", UPGRADE_CASES, ids=[" ".join(c[0]) for c in UPGRADE_CASES])
def test_upgrade_plans(old, args, expected):
    assert plan(old, *args) == expected
    assert old.installed() == OLD_INSTALLED


def test_upgrade_security_plan_details(old_any):
    r = old_any.run("--assumeno", "--json", "upgrade", "--security")
    assert r.rc == 1, r
    doc = r.json()
    assert doc["result"] == "aborted"
    by_name = {p["name"]: p for p in doc["transaction"]}
    assert sorted(by_name) == ["glibc", "hello", "kernel", "openssl"], doc
    # kernel is installonly: the new one goes in beside the old one.
    assert by_name["kernel"]["action"] == "install" and "replaces" not in by_name["kernel"]
    assert by_name["kernel"]["repo"] == "updates"
    for name in ("glibc", "hello", "openssl"):
        rep = by_name[name]["replaces"]
        assert (rep["name"], rep["version"], rep["repo"]) == (name, "1.0", "@System"), doc


def test_upgrade_never_installs_missing_packages(lapis_file):
    """openssl and glibc are not installed: their advisories install nothing."""
    lapis_file.yes("--repo", "base", "install", "hello-1.0", "kernel-5.0.0", "systemd-1.0")
    assert plan(lapis_file, "upgrade", "--security") == [
        ("hello", "2.1", "x86_64", "upgrade"), ("kernel", "5.2.0", "x86_64", "install")]
    assert plan(lapis_file, "upgrade-minimal") == [
        ("hello", "2.0", "x86_64", "upgrade"), ("kernel", "5.1.0", "x86_64", "install"),
        ("libfoo", "1.1", "x86_64", "upgrade"), ("systemd", "1.1", "x86_64", "upgrade")]
    r = lapis_file.run("--assumeno", "--json", "upgrade", "--advisory", "LAPIS-2026-0002")
    assert r.rc == 0 and r.json() == {"transaction": [], "result": "nothing-to-do"}, r
    lapis_file.yes("upgrade", "--security")
    assert "openssl" not in lapis_file.names() and "glibc" not in lapis_file.names()


def test_upgrade_already_fixed_advisory_is_nothing_to_do(old):
    r = old.run("-y", "upgrade", "--advisory", "LAPIS-2025-0001")
    assert r.rc == 0, r
    assert "Nothing to do." in r.out, r
    assert "No packages need an upgrade for the given advisories" in r.err, r
    assert r.error_lines == [], r
    assert old.installed() == OLD_INSTALLED


@pytest.mark.parametrize("args", [
    ["upgrade", "--newpackage"],
    ["upgrade", "--cve", "CVE-1999-0000"],
    ["upgrade-minimal", "--security", "systemd"],
    ["upgrade", "--bugfix", "--sec-severity", "Low"],
])
def test_upgrade_no_matching_advisory(old, args):
    r = old.run("--assumeno", "--json", *args)
    assert r.rc == 0, r
    assert r.json() == {"transaction": [], "result": "nothing-to-do"}, r
    assert old.installed() == OLD_INSTALLED


@pytest.mark.parametrize("cmd", ["upgrade", "upgrade-minimal"])
def test_upgrade_not_installed_name(old, cmd):
    r = old.run("-y", cmd, "--security", "newname")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "newname" in r.error_lines[0], r
    assert "not installed" in r.error_lines[0], r
    assert old.installed() == OLD_INSTALLED


def test_upgrade_security_for_real(old_any):
    old_any.yes("upgrade", "--security")
    assert old_any.installed() == [
        "glibc-0:1.1-1.x86_64", "hello-0:2.1-1.x86_64", "kernel-0:5.0.0-1.x86_64",
        "kernel-0:5.2.0-1.x86_64", "libfoo-0:1.0-1.x86_64", "openssl-0:1.1-1.x86_64",
        "systemd-0:1.0-1.x86_64", "weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]
    # The security advisories are now installed; bugfix/enhancement still pending.
    assert adv_ids(old_any.json("updateinfo", "list")) == ["LAPIS-2026-0003", "LAPIS-2026-0004"]
    assert adv_ids(old_any.json("updateinfo", "--installed", "list", "--security")) == [
        "LAPIS-2025-0001", "LAPIS-2026-0001", "LAPIS-2026-0002", "LAPIS-2026-0005",
        "LAPIS-2026-0006"]
    # A second run finds nothing.
    r = old_any.run("-y", "upgrade", "--security")
    assert r.rc == 0 and "Nothing to do." in r.out, r


def test_upgrade_minimal_security_for_real(old_any):
    old_any.yes("upgrade-minimal", "--security")
    assert old_any.installed() == [
        "glibc-0:1.1-1.x86_64", "hello-0:2.0-1.x86_64", "kernel-0:5.0.0-1.x86_64",
        "kernel-0:5.1.0-1.x86_64", "libfoo-0:1.0-1.x86_64", "openssl-0:1.1-1.x86_64",
        "systemd-0:1.0-1.x86_64", "weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]
    r = old_any.ok("updateinfo", "--all", "list", "--security")
    marked = sorted(l.split()[1] for l in r.out.splitlines() if l.split() and l.split()[0] == "i")
    assert marked == ["LAPIS-2025-0001", "LAPIS-2026-0001", "LAPIS-2026-0002",
                      "LAPIS-2026-0005", "LAPIS-2026-0006"], r
    # hello-2.1 is still available as a plain upgrade, but no advisory wants it.
    r = old_any.run("--json", "check-update", "--security")
    assert r.rc == 0 and r.json() == {"upgrades": []}, r


def test_upgrade_minimal_all_advisories_for_real(old):
    old.yes("update-minimal")
    assert old.installed() == [
        "glibc-0:1.1-1.x86_64", "hello-0:2.0-1.x86_64", "kernel-0:5.0.0-1.x86_64",
        "kernel-0:5.1.0-1.x86_64", "libfoo-0:1.1-1.x86_64", "openssl-0:1.1-1.x86_64",
        "systemd-0:1.1-1.x86_64", "weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]
    assert old.ok("updateinfo").out == "", "no advisory left to apply"


def test_upgrade_bz_for_real(old):
    old.yes("upgrade", "--bz", "3")
    expected = [p.replace("libfoo-0:1.0-1", "libfoo-0:1.1-1") for p in OLD_INSTALLED]
    assert old.installed() == expected


# ---- check-update with filters ----------------------------------------------------

CHECK_CASES = [
    (["--security"], ["glibc-1.1-1.x86_64", "hello-2.1-1.x86_64", "kernel-5.2.0-1.x86_64",
                      "openssl-1.1-1.x86_64"]),
    (["--bugfix"], ["libfoo-1.1-1.x86_64"]),
    (["--enhancement", "--bugfix"], ["libfoo-1.1-1.x86_64", "systemd-1.1-1.x86_64"]),
    (["--security", "hello"], ["hello-2.1-1.x86_64"]),
    (["--sec-severity", "Moderate"], ["kernel-5.2.0-1.x86_64"]),
    (["--advisory", "LAPIS-2026-0001"], ["hello-2.1-1.x86_64"]),
    (["--cve", "CVE-2026-2222"], ["openssl-1.1-1.x86_64"]),
    (["--advisory", "LAPIS-2025-0001"], []),
    (["--newpackage"], []),
    (["--security", "nosuch"], []),
]


@pytest.mark.parametrize("args,expected", CHECK_CASES, ids=[" ".join(c[0]) for c in CHECK_CASES])
def test_check_update_filters(old, args, expected):
    r = old.run("--json", "check-update", *args)
    assert r.rc == (100 if expected else 0), r
    ups = r.json()["upgrades"]
    assert sorted(nevra(p) for p in ups) == expected, r
    for p in ups:
        assert p["repo"] == "updates", p


def test_check_update_security_text(old_any):
    r = old_any.run("check-update", "--security")
    assert r.rc == 100, r
    assert rows(r.out) == [["glibc.x86_64", "1.1-1", "updates"],
                           ["hello.x86_64", "2.1-1", "updates"],
                           ["kernel.x86_64", "5.2.0-1", "updates"],
                           ["openssl.x86_64", "1.1-1", "updates"]], r


def test_check_update_nothing_text(old):
    r = old.run("check-update", "--advisory", "LAPIS-2025-0001")
    assert r.rc == 0, r
    assert r.out.strip() == "", r


# ---- a broken updateinfo.xml ----------------------------------------------------

@pytest.mark.parametrize("args", [
    ["updateinfo"],
    ["updateinfo", "list"],
    ["advisory", "info"],
    ["updateinfo", "--all", "list", "--security"],
])
def test_malformed_updateinfo(lapis_file, args):
    r = lapis_file.run("--repo", "malformed-updateinfo", *args)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    assert "updateinfo" in r.error_lines[0] and "malformed" in r.error_lines[0], r
    assert "Traceback" not in r.err and "Segmentation" not in r.err, r
    assert r.out == "", r


def test_malformed_updateinfo_json(lapis):
    r = lapis.run("--json", "--repo", "malformed-updateinfo", "updateinfo", "list")
    assert r.rc == 1, r
    err = r.json()["error"]
    assert "updateinfo" in err["message"] and "malformed" in err["message"], r
    assert len(r.error_lines) == 1, r


# ---- advisory: dnf5's layouts (updateinfo keeps dnf 4's) ---------------------------

ADVISORY_SUMMARY_AVAILABLE = """\
Available advisory information summary:
Security    : 4
  Critical  : 1
  Important : 1
  Moderate  : 1
  Low       : 1
  Other     : 0
Bugfix      : 1
Enhancement : 1
Other       : 0
"""


def test_advisory_summary_dnf5_table(old):
    assert old.ok("advisory").out == ADVISORY_SUMMARY_AVAILABLE
    assert old.ok("advisory", "summary").out == ADVISORY_SUMMARY_AVAILABLE
    r = old.ok("advisory", "summary", "--installed")
    assert r.out.splitlines()[:3] == ["Installed advisory information summary:",
                                      "Security    : 1", "  Critical  : 0"], r


def test_advisory_list_dnf5_table(old):
    r = old.ok("advisory", "list")
    lines = r.out.splitlines()
    assert lines[0].split() == ["Name", "Type", "Severity", "Package", "Issued"], r
    assert lines[1].split() == ["LAPIS-2026-0001", "security", "Critical", "hello-2.0-1.x86_64",
                                "2026-01-01", "00:00:00"], r
    # no severity: the cell stays empty; Package and Issued are right-aligned
    assert lines[3].split() == ["LAPIS-2026-0003", "bugfix", "libfoo-1.1-1.x86_64",
                                "2026-01-03", "00:00:00"], r
    assert len({len(l) for l in lines}) == 1, r
    assert [l.split()[0] for l in lines[1:]] == AVAILABLE_IDS, r
    r = old.ok("advisory", "list", "--all")
    assert [l.split()[0] for l in r.out.splitlines()[1:]] == ALL_IDS, r


def test_advisory_list_with_cve_names_the_references(old):
    r = old.ok("advisory", "list", "--with-cve")
    lines = r.out.splitlines()
    assert lines[0].split()[0] == "CVE", r
    # sorted by the id, as dnf5's table is: LAPIS-2026-0006 lists CVE-2026-6666
    # before CVE-2026-0066, and is the last advisory
    assert [l.split()[0] for l in lines[1:]] == ["CVE-2026-0066", "CVE-2026-1111",
                                                 "CVE-2026-1112", "CVE-2026-2222",
                                                 "CVE-2026-5555", "CVE-2026-6666"], r
    assert lines[1].split()[3] == "glibc-1.1-1.x86_64", r


def test_advisory_info_dnf5_table(old):
    r = old.ok("advisory", "info", "LAPIS-2026-0001")
    lines = r.out.splitlines()
    assert lines[:7] == ["Name        : LAPIS-2026-0001",
                         "Title       : Critical: hello security update",
                         "Severity    : Critical",
                         "Type        : security",
                         "Status      : stable",
                         "Vendor      : security@lapis.invalid",
                         "Issued      : 2026-01-01 00:00:00"], r
    assert "Rights      : Copyright 2026 Lapis test fixtures" in lines, r
    i = lines.index("Reference   : ")
    assert lines[i + 1:i + 5] == ["  Title     : CVE-2026-1111", "  Id        : CVE-2026-1111",
                                  "  Type      : cve",
                                  "  Url       : https://cve.lapis.invalid/CVE-2026-1111"], r
    assert lines[-3:] == ["Collection  : ", "  Packages  : hello-2.0-1.x86_64", ""], r
