"""list, info, search, provides, repoquery and check-update against the
base + updates repositories (over file:// and http://)."""

import re

import pytest

from conftest import list_sections, nevra

HELLO_VERSIONS = ["hello-0:1.0-1.x86_64", "hello-0:2.0-1.x86_64", "hello-0:2.1-1.x86_64"]
INSTALLED = ("hello-1.0-1.x86_64.rpm", "libfoo-1.0-1.x86_64.rpm", "kernel-5.0.0-1.x86_64.rpm")
UPGRADES = {("hello.x86_64", "2.1-1", "updates"), ("libfoo.x86_64", "1.1-1", "updates"),
            ("kernel.x86_64", "5.2.0-1", "updates")}


@pytest.fixture
def installed(lapis):
    """An install root whose rpmdb holds hello-1.0, libfoo-1.0.x86_64, kernel-5.0.0."""
    lapis.rpm_install(*INSTALLED)
    return lapis


def available(r):
    return list_sections(r.out).get("Available packages", [])


# ---- list -------------------------------------------------------------------

def test_list_available_newest_per_name_arch(lapis):
    r = lapis.ok("list")
    secs = list_sections(r.out)
    assert list(secs) == ["Available packages"], r
    rows = secs["Available packages"]
    names = [row[0] for row in rows]
    assert len(names) == len(set(names)), "one row per name.arch: %s" % r
    assert ("hello.x86_64", "2.1-1", "updates") in rows, r
    assert ("libfoo.x86_64", "1.1-1", "updates") in rows, r
    assert ("libfoo.i686", "1.1-1", "updates") in rows, r
    assert ("epochpkg.noarch", "1:1.0-1", "base") in rows, r
    assert ("kernel.x86_64", "5.2.0-1", "updates") in rows, r
    assert ("newname.noarch", "2.0-1", "updates") in rows, r
    assert ("oldname.noarch", "1.0-1", "base") in rows, r
    assert len(rows) == 26, r   # distinct name.arch in base + updates
    assert not any(row[0].startswith(("escape", "unsigned", "badsig")) for row in rows), r


def test_list_available_keyword(lapis):
    a = lapis.ok("list", "available")
    assert available(a) == available(lapis.ok("list")), a


def test_list_showduplicates(lapis):
    r = lapis.ok("list", "--showduplicates", "hel*")
    assert available(r) == [("hello.x86_64", "1.0-1", "base"),
                            ("hello.x86_64", "2.0-1", "updates"),
                            ("hello.x86_64", "2.1-1", "updates")], r
    r = lapis.ok("list", "--showduplicates", "epochpkg")
    assert sorted(available(r)) == [("epochpkg.noarch", "1:1.0-1", "base"),
                                    ("epochpkg.noarch", "2.0-1", "base")], r


@pytest.mark.parametrize("globs,expected", [
    (["hel*"], {("hello.x86_64", "2.1-1", "updates")}),
    (["libfoo.i686"], {("libfoo.i686", "1.1-1", "updates")}),
    (["libfoo"], {("libfoo.i686", "1.1-1", "updates"), ("libfoo.x86_64", "1.1-1", "updates")}),
    (["hello-2.0*"], {("hello.x86_64", "2.0-1", "updates")}),
    (["mta-?", "pkg[ab]"], {("mta-a.noarch", "1.0-1", "base"), ("mta-b.noarch", "1.0-1", "base"),
                            ("pkga.noarch", "1.0-1", "base"), ("pkgb.noarch", "1.0-1", "base")}),
])
def test_list_globs(lapis, globs, expected):
    r = lapis.ok("list", *globs)
    assert set(available(r)) == expected, r


def test_list_no_match(lapis):
    r = lapis.run("list", "doesnotexist*")
    assert r.rc == 1, r
    assert r.out.strip() == "", r
    assert len(r.error_lines) == 1, r


def test_list_json(lapis):
    doc = lapis.json("list", "hello", "epochpkg", "libfoo")
    assert set(doc) == {"installed", "available"}
    assert doc["installed"] == []
    pk = {nevra(p): p for p in doc["available"]}
    assert sorted(pk) == ["epochpkg-1:1.0-1.noarch", "hello-2.1-1.x86_64",
                          "libfoo-1.1-1.i686", "libfoo-1.1-1.x86_64"]
    h = pk["hello-2.1-1.x86_64"]
    assert h == {"name": "hello", "epoch": 0, "version": "2.1", "release": "1",
                 "arch": "x86_64", "repo": "updates"}
    assert pk["epochpkg-1:1.0-1.noarch"]["epoch"] == 1
    assert all(isinstance(p["epoch"], int) for p in doc["available"])


def test_list_installed(installed):
    r = installed.ok("list", "installed")
    secs = list_sections(r.out)
    assert list(secs) == ["Installed packages"], r
    # rpm installed them, so the history knows no repo: dnf5's "<unknown>"
    assert secs["Installed packages"] == [("hello.x86_64", "1.0-1", "<unknown>"),
                                          ("kernel.x86_64", "5.0.0-1", "<unknown>"),
                                          ("libfoo.x86_64", "1.0-1", "<unknown>")], r


def test_list_installed_json(installed):
    doc = installed.json("list", "installed")
    assert sorted(nevra(p) for p in doc["installed"]) == [
        "hello-1.0-1.x86_64", "kernel-5.0.0-1.x86_64", "libfoo-1.0-1.x86_64"]
    assert all(p["repo"] == "@System" for p in doc["installed"])
    assert doc.get("available", []) == []


def test_list_all_with_installed(installed):
    r = installed.ok("list", "hello")
    secs = list_sections(r.out)
    assert secs["Installed packages"] == [("hello.x86_64", "1.0-1", "<unknown>")], r
    assert ("hello.x86_64", "2.1-1", "updates") in secs.get("Available packages", []), r


def test_list_updates(installed):
    r = installed.ok("list", "updates")
    rows = [row for rows in list_sections(r.out).values() for row in rows]
    assert set(rows) == UPGRADES, r
    doc = installed.json("list", "updates")
    assert sorted(nevra(p) for p in doc["upgrades"]) == [
        "hello-2.1-1.x86_64", "kernel-5.2.0-1.x86_64", "libfoo-1.1-1.x86_64"]


def test_list_updates_empty_root(lapis):
    doc = lapis.json("list", "updates")
    assert doc["upgrades"] == []


def test_list_installed_empty_root(lapis):
    r = lapis.ok("list", "installed")
    assert r.out.strip() == "", r


# ---- check-update -------------------------------------------------------------

def test_check_update_exit_100(installed):
    r = installed.run("check-update")
    assert r.rc == 100, r
    rows = {tuple(l.split()) for l in r.out.splitlines() if l.strip()}
    assert rows == UPGRADES, r


def test_check_update_json(installed):
    r = installed.run("--json", "check-update")
    assert r.rc == 100, r
    doc = r.json()
    assert sorted(nevra(p) for p in doc["upgrades"]) == [
        "hello-2.1-1.x86_64", "kernel-5.2.0-1.x86_64", "libfoo-1.1-1.x86_64"]
    assert all(p["repo"] == "updates" for p in doc["upgrades"])


def test_check_update_glob(installed):
    r = installed.run("check-update", "hello")
    assert r.rc == 100, r
    assert {tuple(l.split()) for l in r.out.splitlines() if l.strip()} == {
        ("hello.x86_64", "2.1-1", "updates")}, r


def test_check_update_none(lapis):
    r = lapis.run("check-update")
    assert r.rc == 0, r
    assert r.out.strip() == "", r
    r = lapis.run("--json", "check-update")
    assert r.rc == 0, r
    assert r.json() == {"upgrades": []}


# ---- info -------------------------------------------------------------------------

def info_fields(text):
    blocks, cur = [], None
    for line in text.splitlines():
        m = re.match(r"^(\S[^:]*?)\s*: (.*)$", line)
        if m:
            if m.group(1) == "Name":
                cur = {}
                blocks.append(cur)
            cur[m.group(1)] = m.group(2)
    return blocks


def test_info(lapis):
    r = lapis.ok("info", "hello")
    assert "Name           : hello" in r.out.splitlines(), r   # dnf5's key column: 14
    blocks = info_fields(r.out)
    assert len(blocks) == 1, r
    b = blocks[0]
    for key in ("Name", "Version", "Release", "Architecture", "Download size", "Installed size",
                "Repository", "Summary", "URL", "License", "Description"):
        assert key in b, (key, r)
    assert "Size" not in b, r
    assert b["Version"] == "2.1" and b["Release"] == "1" and b["Architecture"] == "x86_64", r
    assert b["Repository"] == "updates", r
    assert b["Summary"].startswith("A friendly greeting program"), r
    assert b["URL"] == "https://lapis.invalid/hello", r
    assert b["License"] == "MIT", r
    p = lapis.json("info", "hello")["packages"][0]
    assert b["Download size"] == dnf5_size(p["downloadsize"]), (b, p)
    assert b["Installed size"] == dnf5_size(p["installsize"]), (b, p)
    # dnf5's fields in its order (PackageInfoSections::add_package): Epoch even
    # when it is 0, the sizes between Architecture and Source, Vendor last
    keys = [l.split(":")[0].strip() for l in r.out.splitlines() if ":" in l]
    assert [k for k in keys if k] == ["Name", "Epoch", "Version", "Release", "Architecture",
                                      "Download size", "Installed size", "Source", "Repository",
                                      "Summary", "URL", "License", "Description", "Vendor"], keys
    assert b["Epoch"] == "0", b


def dnf5_size(n):
    """libdnf5-cli's format_size_aligned: divide by 1024 while above 999, one
    decimal, the unit right-aligned in 3 ("512.0   B", "1.2 KiB")."""
    units, v = ["B", "KiB", "MiB", "GiB", "TiB"], float(n)
    i = 0
    while v > 999:
        v, i = v / 1024, i + 1
    return "%.1f %3s" % (v, units[i])


def test_info_epoch(lapis):
    b = info_fields(lapis.ok("info", "epochpkg").out)
    assert len(b) == 1 and b[0].get("Epoch") == "1" and b[0]["Version"] == "1.0", b


def test_info_installed_and_available(installed):
    r = installed.ok("info", "hello")
    assert "Installed packages" in r.out and "Available packages" in r.out, r
    blocks = info_fields(r.out)   # dnf5: "From repository" for what is installed
    assert [b.get("From repository") for b in blocks] == ["<unknown>", None], r
    assert [b.get("Repository") for b in blocks] == [None, "updates"], r
    # dnf5: an installed package has only its installed size, an available one both
    assert [("Download size" in b, "Installed size" in b) for b in blocks] == \
        [(False, True), (True, True)], r
    assert not any("Size" in b for b in blocks), r
    # one key column for the whole output, as wide as its longest key (dnf5's table)
    lines = r.out.splitlines()
    assert "From repository : <unknown>" in lines and "Repository      : updates" in lines, r
    assert lines.count("Name            : hello") == 2, r


def test_info_json(lapis):
    doc = lapis.json("info", "hello")
    assert len(doc["packages"]) == 1
    p = doc["packages"][0]
    assert nevra(p) == "hello-2.1-1.x86_64"
    assert p["summary"].startswith("A friendly greeting program")
    assert "exercise install" in p["description"]
    assert p["url"] == "https://lapis.invalid/hello"
    assert p["license"] == "MIT"
    assert p["location"] == "hello-2.1-1.x86_64.rpm"
    assert p["repo"] == "updates"


def test_info_no_match(lapis):
    r = lapis.run("info", "doesnotexist")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r


# ---- search -------------------------------------------------------------------------

def search_groups(out):
    """dnf5's search output: [(matched fields, [" name.arch: summary" lines])]."""
    groups = []
    for l in out.splitlines():
        if l.startswith("Matched fields: "):
            groups.append((l[len("Matched fields: "):], []))
        else:
            assert groups and l.startswith(" "), out
            groups[-1][1].append(l)
    return groups


def test_search_summary(lapis):
    r = lapis.ok("search", "greeting")
    assert search_groups(r.out) == [
        ("summary", [" hello.x86_64: A friendly greeting program for Lapis tests"])], r


def test_search_name(lapis):
    r = lapis.ok("search", "mta")
    assert [(f, [l.split(":")[0].strip() for l in ls]) for f, ls in search_groups(r.out)] == [
        ("name, summary", ["needs-mta.noarch"]), ("name", ["mta-a.noarch", "mta-b.noarch"])], r


def test_search_exact_name_first(lapis):
    """dnf5's ranking: the exact name before partial name matches, those
    before summary-only ones; each group under its "Matched fields:" line."""
    r = lapis.ok("search", "hello")
    groups = search_groups(r.out)
    assert groups[0][0].startswith("name (exact)"), r
    assert [l.split(":")[0] for l in groups[0][1]] == [" hello.x86_64"], r
    fields = [f for f, _ in groups]
    assert len(fields) == len(set(fields)), r


def test_search_fields_json(lapis):
    doc = lapis.json("search", "hello")
    first = doc["packages"][0]
    assert first["name"] == "hello" and first["matched_fields"][0] == "name (exact)", doc
    doc = lapis.json("search", "greeting")
    assert [p["matched_fields"] for p in doc["packages"]] == [["summary"]], doc


def test_search_several_terms_all_must_match_unless_all(lapis):
    assert lapis.json("search", "greeting", "zzzznotthere") == {"packages": []}
    doc = lapis.json("search", "--all", "greeting", "zzzznotthere")
    assert [p["name"] for p in doc["packages"]] == ["hello"], doc


def test_search_glob_matches_whole_field(lapis):
    doc = lapis.json("search", "mta-?")
    assert sorted(p["name"] for p in doc["packages"]) == ["mta-a", "mta-b"], doc


def test_search_all_includes_description(lapis):
    r = lapis.run("search", "exercise")
    assert r.rc == 0 and "hello" not in r.out, r
    r = lapis.ok("search", "--all", "exercise")
    assert any(l.startswith(" hello.x86_64") for l in r.out.splitlines()), r
    assert "description" in search_groups(r.out)[0][0], r


def test_search_no_match(lapis):
    r = lapis.run("search", "zzzznotthere")
    assert r.rc == 0, r
    assert r.out == "", r
    assert "No matches found." in r.err, r


def test_search_json(lapis):
    doc = lapis.json("search", "greeting")
    assert [nevra(p) for p in doc["packages"]] == ["hello-2.1-1.x86_64"]
    assert doc["packages"][0]["summary"].startswith("A friendly greeting")
    assert lapis.json("search", "zzzznotthere") == {"packages": []}


# ---- provides -------------------------------------------------------------------------

def provided_nevras(out):
    return [l.split(" : ")[0] for l in out.splitlines()
            if " : " in l and not l.startswith(("Repo ", "Matched ", "Provide ", "Filename "))]


def provides_blocks(out):
    """Each blank-line separated block of `provides` as a list of (key, value)."""
    return [[tuple(p.strip() for p in l.split(" : ", 1)) for l in b.splitlines()]
            for b in out.strip("\n").split("\n\n")]


def test_provides_capability(lapis):
    r = lapis.ok("provides", "mta")
    assert provided_nevras(r.out) == ["mta-a-1.0-1.noarch", "mta-b-1.0-1.noarch"], r
    # dnf5's block: Repo, an empty "Matched From", then what matched
    assert provides_blocks(r.out)[0][1:] == [("Repo", "base"), ("Matched From", ""),
                                             ("Provide", "mta")], r
    assert "\nMatched From : \n" in r.out, r


def test_whatprovides_alias(lapis):
    assert lapis.ok("whatprovides", "mta").out == lapis.ok("provides", "mta").out


def test_provides_versioned_capability(lapis):
    r = lapis.ok("provides", "libfoo(abi) = 1")
    assert set(provided_nevras(r.out)) == {"libfoo-1.0-1.x86_64", "libfoo-1.1-1.x86_64",
                                           "libfoo-1.0-1.i686", "libfoo-1.1-1.i686"}, r


def test_provides_file_in_filelists(lapis):
    r = lapis.ok("provides", "/usr/share/hello/data.txt")
    assert provided_nevras(r.out) == ["hello-1.0-1.x86_64", "hello-2.0-1.x86_64",
                                      "hello-2.1-1.x86_64"], r
    assert ("Filename", "/usr/share/hello/data.txt") in provides_blocks(r.out)[0], r


def test_provides_file_glob(lapis):
    r = lapis.ok("provides", "/usr/bin/hell*")
    assert set(provided_nevras(r.out)) == {"hello-1.0-1.x86_64", "hello-2.0-1.x86_64",
                                           "hello-2.1-1.x86_64"}, r
    assert ("Filename", "/usr/bin/hello") in provides_blocks(r.out)[0], r


def test_provides_usrmove(lapis):
    """dnf5: /bin/X also finds /usr/bin/X (packages after UsrMove)."""
    r = lapis.ok("provides", "/bin/hello")
    assert "hello-2.1-1.x86_64" in provided_nevras(r.out), r
    assert ("Filename", "/usr/bin/hello") in provides_blocks(r.out)[0], r
    r = lapis.ok("provides", "hello")
    assert ("Provide", "hello = 2.1-1") in provides_blocks(r.out)[-1], r


def test_provides_bare_binary_name(lapis):
    """dnf5: a bare name no capability matches is looked for as a file in
    /bin, /sbin, /usr/bin and /usr/sbin (glibc ships /usr/sbin/ldconfig)."""
    r = lapis.ok("provides", "ldconfig")
    assert provided_nevras(r.out) == ["glibc-1.0-1.x86_64", "glibc-1.1-1.x86_64"], r
    for block in provides_blocks(r.out):
        assert block[1:] == [("Repo", block[1][1]), ("Matched From", ""),
                             ("Filename", "/usr/sbin/ldconfig")], r
    assert lapis.ok("provides", "ldconf*").out == r.out
    doc = lapis.json("provides", "ldconfig")
    assert {p["matched"] for p in doc["packages"]} == {"/usr/sbin/ldconfig"}, doc


def test_provides_bare_name_needs_a_file_not_a_virtual_path(lapis):
    """lapis-sh only Provides: /bin/sh (no file): as in dnf5, `provides sh`
    finds no binary, while the path itself is a capability it provides."""
    r = lapis.run("provides", "sh")
    assert r.rc == 1 and r.out == "", r
    assert "No matches found for sh." in r.error_lines[0], r
    assert provided_nevras(lapis.ok("provides", "/bin/sh").out) == ["lapis-sh-1.0-1.noarch"]


def test_provides_nonexistent(lapis):
    r = lapis.run("provides", "nonexistent")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "No matches found for nonexistent." in r.error_lines[0], r


def test_provides_prints_matches_then_fails_for_the_rest(lapis):
    r = lapis.run("provides", "mta", "nonexistent")
    assert r.rc == 1, r
    assert provided_nevras(r.out) == ["mta-a-1.0-1.noarch", "mta-b-1.0-1.noarch"], r
    assert len(r.error_lines) == 1 and "nonexistent" in r.error_lines[0], r


def test_provides_json(lapis):
    doc = lapis.json("provides", "mta")
    assert [nevra(p) for p in doc["packages"]] == ["mta-a-1.0-1.noarch", "mta-b-1.0-1.noarch"]


# ---- repoquery -------------------------------------------------------------------------

def test_repoquery_nevra_all_versions(lapis):
    r = lapis.ok("repoquery", "hello")
    assert r.out.splitlines() == HELLO_VERSIONS, r


def test_repoquery_everything(lapis):
    lines = lapis.ok("repoquery").out.splitlines()
    assert all(re.fullmatch(r"[\w.+-]+-\d+:[^-]+-[^-]+\.\w+", l) for l in lines), lines
    assert "epochpkg-1:1.0-1.noarch" in lines and "epochpkg-0:2.0-1.noarch" in lines
    assert len(lines) == 36  # 26 in base + 10 in updates


def test_repoquery_installed_and_available(installed):
    """dnf5: available packages by default, each NEVRA once; with --installed
    --available both, still once each (the installed 1.0 is in base too)."""
    lines = installed.ok("repoquery", "hello").out.splitlines()
    assert lines == HELLO_VERSIONS, lines
    both = installed.ok("repoquery", "--installed", "--available", "hello").out.splitlines()
    assert both == HELLO_VERSIONS, both
    # kernel 5.0.0 is installed and in base: not an extra line either
    assert "kernel-0:5.0.0-1.x86_64" in installed.ok("repoquery", "kernel").out
    assert installed.ok("repoquery", "--installed").out.splitlines() == [
        "hello-0:1.0-1.x86_64", "kernel-0:5.0.0-1.x86_64", "libfoo-0:1.0-1.x86_64"]
    avail = installed.ok("repoquery", "--available", "hello").out.splitlines()
    assert avail == HELLO_VERSIONS, avail


def test_repoquery_installed_empty_root(lapis):
    r = lapis.ok("repoquery", "--installed")
    assert r.out == "", r


def test_repoquery_upgrades(installed):
    lines = installed.ok("repoquery", "--upgrades").out.splitlines()
    assert sorted(lines) == ["hello-0:2.1-1.x86_64", "kernel-0:5.2.0-1.x86_64",
                             "libfoo-0:1.1-1.x86_64"], lines


def test_repoquery_requires(lapis):
    assert lapis.ok("repoquery", "--requires", "hello").out.splitlines() == ["libfoo"]
    assert lapis.ok("repoquery", "--requires", "needs-mta").out.splitlines() == ["mta"]
    assert lapis.ok("repoquery", "--requires", "filedep").out.splitlines() == ["/usr/bin/hello"]


def test_repoquery_provides(lapis):
    lines = lapis.ok("repoquery", "--provides", "libfoo.x86_64").out.splitlines()
    assert "libfoo(abi) = 1" in lines and "libfoo.so.1()(64bit)" in lines, lines
    assert "libfoo.so.1" not in lines, lines
    lines = lapis.ok("repoquery", "--provides", "newname").out.splitlines()
    assert "oldname = 2.0" in lines, lines


def test_repoquery_whatrequires(lapis):
    assert lapis.ok("repoquery", "--whatrequires", "mta").out.splitlines() == [
        "needs-mta-0:1.0-1.noarch"]
    assert lapis.ok("repoquery", "--whatrequires", "/usr/bin/hello").out.splitlines() == [
        "filedep-0:1.0-1.noarch"]


def test_repoquery_whatprovides(lapis):
    assert lapis.ok("repoquery", "--whatprovides", "mta").out.splitlines() == [
        "mta-a-0:1.0-1.noarch", "mta-b-0:1.0-1.noarch"]


def test_repoquery_location(lapis):
    lines = lapis.ok("repoquery", "--location", "hello").out.splitlines()
    assert sorted(lines) == [
        "%s/base/hello-1.0-1.x86_64.rpm" % lapis.baseurl,
        "%s/updates/hello-2.0-1.x86_64.rpm" % lapis.baseurl,
        "%s/updates/hello-2.1-1.x86_64.rpm" % lapis.baseurl], lines


def test_repoquery_list_files(lapis):
    lines = lapis.ok("repoquery", "-l", "hello-2.1").out.splitlines()
    assert "/usr/bin/hello" in lines and "/usr/share/hello/data.txt" in lines, lines
    assert "/usr/share/doc/hello/README" in lines, lines
    lines = lapis.ok("repoquery", "--list", "hello").out.splitlines()
    assert "/usr/bin/hello" in lines and "/usr/share/hello/data.txt" in lines, lines


def test_repoquery_json(lapis):
    doc = lapis.json("repoquery", "hello")
    assert [nevra(p) for p in doc["packages"]] == ["hello-1.0-1.x86_64", "hello-2.0-1.x86_64",
                                                   "hello-2.1-1.x86_64"]
    doc = lapis.json("repoquery", "--requires", "hello")
    assert doc["deps"] == ["libfoo"]
    assert len(doc["packages"]) == 3
    doc = lapis.json("repoquery", "--whatrequires", "mta")
    assert [nevra(p) for p in doc["packages"]] == ["needs-mta-1.0-1.noarch"]
    doc = lapis.json("repoquery", "--location", "hello-2.1")
    assert [p["location"] for p in doc["packages"]] == [
        "%s/updates/hello-2.1-1.x86_64.rpm" % lapis.baseurl]
    doc = lapis.json("repoquery", "-l", "hello-2.1")
    assert "/usr/share/hello/data.txt" in doc["packages"][0]["files"]


def test_repoquery_two_dep_kinds_rejected(lapis):
    r = lapis.run("repoquery", "--requires", "--provides", "hello")
    assert r.rc == 2, r
