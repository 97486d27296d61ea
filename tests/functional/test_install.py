"""install: resolution and the dnf5-style transaction table (mostly with
--assumeno, which must install nothing), confirmation without a terminal,
and -y. tests/functional/test_transaction.py covers executed transactions."""

import re

import pytest

from conftest import run_cmd

SECTION_TITLES = ("Installing:", "Installing dependencies:", "Installing weak dependencies:",
                  "Upgrading:", "Downgrading:", "Reinstalling:", "Removing:")


def parse_transaction(out):
    """{section title: [(name, arch, evr, repo), ...]} plus the header row."""
    lines = out.splitlines()
    header = lines[0].split()
    secs, cur = {}, None
    for line in lines[1:]:
        if line.startswith("Transaction Summary"):
            break
        if line.strip() in SECTION_TITLES:
            cur = line.strip()
            secs[cur] = []
        elif line.startswith(" ") and cur:
            f = line.split()
            secs[cur].append((f[0], f[1], f[2], f[3]))
    return header, secs


def test_install_assumeno_table(lapis):
    r = lapis.run("--assumeno", "install", "hello", "richdep")
    assert r.rc == 1, r
    header, secs = parse_transaction(r.out)
    assert header == ["Package", "Arch", "Version", "Repository", "Size"], r
    assert list(secs)[:2] == ["Installing:", "Installing dependencies:"], r
    assert secs["Installing:"] == [("hello", "x86_64", "2.1-1", "updates"),
                                   ("richdep", "noarch", "1.0-1", "base")], r
    deps = {row[0] for row in secs["Installing dependencies:"]}
    assert "libfoo" in deps, r
    assert len(deps & {"pkga", "pkgb"}) == 1, r
    assert ("libfoo", "x86_64", "1.1-1", "updates") in secs["Installing dependencies:"], r
    weak = {row[0] for row in secs.get("Installing weak dependencies:", [])}
    assert "weakpkg" in weak, r
    assert "Transaction Summary:" in r.out.splitlines(), r
    summary = r.out[r.out.index("Transaction Summary:"):]
    n = sum(len(v) for v in secs.values())
    assert re.search(r"Installing:\s+%d packages" % n, summary), r
    # Size column: a human-readable size on every package row.
    for line in r.out.splitlines():
        if line.startswith(" ") and not line.startswith(" Installing"):
            if line.split()[0] in {"hello", "richdep", "libfoo"}:
                assert re.search(r"\d+(\.\d+)? (B|KiB|MiB)$", line), line
    # aborted: nothing is installed
    assert lapis.rpm_qa() == []
    assert not (lapis.root / "usr" / "bin" / "hello").exists()


def test_resolve_from_cache_loads_no_libcurl(lapis_file):
    """A run that downloads nothing never loads libcurl, nor libarchive (only
    OCI outputs write tar files): with their dependencies they cost ~9 ms of
    CPU at every start (issue 15). ld.so's LD_DEBUG=libs names every library
    it loads, dlopen'ed ones too."""
    lapis_file.ok("makecache")
    env = dict(lapis_file.env, LD_DEBUG="libs")
    r = run_cmd(lapis_file.argv("--assumeno", "install", "hello"), env=env)
    assert r.rc == 1 and "Installing:" in r.out, r
    assert "libsolv" in r.err, r  # LD_DEBUG worked
    assert "libcurl" not in r.err, r
    assert "libarchive" not in r.err, r


def test_install_weak_deps_off(lapis):
    r = lapis.run("--setopt=install_weak_deps=0", "--assumeno", "install", "hello", "richdep")
    assert r.rc == 1, r
    _, secs = parse_transaction(r.out)
    assert "Installing weak dependencies:" not in secs, r
    assert "weakpkg" not in r.out and "weakdep-rec" not in r.out, r
    assert {row[0] for rows in secs.values() for row in rows} == {"hello", "richdep", "libfoo"} | (
        {row[0] for row in secs["Installing dependencies:"]} & {"pkga", "pkgb"}), r


def test_install_json(lapis):
    r = lapis.run("--json", "--assumeno", "install", "hello")
    assert r.rc == 1, r
    doc = r.json()
    assert doc["result"] == "aborted"
    acts = {p["name"]: p for p in doc["transaction"]}
    assert acts["hello"]["action"] == "install"
    assert acts["libfoo"]["action"] == "install-dep"
    assert acts["libfoo"]["arch"] == "x86_64"
    assert acts["weakpkg"]["action"] == "install-weak"
    assert acts["weakdep-rec"]["action"] == "install-weak"
    for p in doc["transaction"]:
        assert set(p) >= {"name", "epoch", "version", "release", "arch", "repo", "action", "size"}, p
        assert isinstance(p["size"], int) and p["size"] > 0, p
        assert p["action"] in ("install", "install-dep", "install-weak"), p
    assert acts["hello"]["version"] == "2.1" and acts["hello"]["repo"] == "updates"
    assert lapis.rpm_qa() == []


def test_install_json_no_weak(lapis):
    doc = lapis.json("--setopt=install_weak_deps=0", "--assumeno", "install", "hello", rc=1)
    assert sorted((p["name"], p["action"]) for p in doc["transaction"]) == [
        ("hello", "install"), ("libfoo", "install-dep")]


def test_install_file_dependency(lapis):
    doc = lapis.json("--setopt=install_weak_deps=0", "--assumeno", "install", "filedep", rc=1)
    acts = {p["name"]: p["action"] for p in doc["transaction"]}
    assert acts == {"filedep": "install", "hello": "install-dep", "libfoo": "install-dep"}


def test_install_by_path_provide(lapis):
    doc = lapis.json("--setopt=install_weak_deps=0", "--assumeno", "install", "/usr/bin/hello", rc=1)
    assert {p["name"]: p["action"] for p in doc["transaction"]}["hello"] == "install"


def test_install_specific_version(lapis):
    doc = lapis.json("--setopt=install_weak_deps=0", "--assumeno", "install", "hello-2.0-1", rc=1)
    h = [p for p in doc["transaction"] if p["name"] == "hello"]
    assert [(p["version"], p["action"]) for p in h] == [("2.0", "install")]


def test_install_nonexistent(lapis):
    """dnf5's stderr, line for line (its resolve-hints test), exit status 1."""
    r = lapis.run("--assumeno", "install", "doesnotexist")
    assert r.rc == 1, r
    assert r.err.splitlines() == [
        "Updating and loading repositories:", "Repositories loaded.",
        "Failed to resolve the transaction:", "No match for argument: doesnotexist",
        "You can try to add to command line:",
        "  --skip-unavailable to skip unavailable packages"], r
    assert "Transaction Summary" not in r.out, r


def test_install_nonexistent_json(lapis):
    r = lapis.run("--json", "--assumeno", "install", "doesnotexist")
    assert r.rc == 1, r
    err = r.json()["error"]
    assert "No match for argument: doesnotexist" in err["message"] and "code" in err, r


def test_install_conflict_reports_problem(lapis):
    r = lapis.run("--assumeno", "install", "hello", "conflictor")
    assert r.rc == 1, r
    assert "conflict" in r.err, r
    assert "Transaction Summary" not in r.out, r


def test_install_without_assumeno_refuses(lapis):
    """Without -y, the question is answered on stdin, as dnf5 reads it: at its
    end (no answer) that is no."""
    r = lapis.run("install", "hello")
    assert r.rc == 1, r
    assert "Is this ok [y/N]: \nOperation aborted by the user.\n" in r.err, r
    assert r.error_lines == [], r
    assert "Complete!" not in r.out, r
    assert lapis.rpm_qa() == []
    assert not (lapis.root / "usr" / "bin" / "hello").exists()
    assert not (lapis.root / "var" / "lib" / "lapis" / "history.sqlite").exists()


@pytest.mark.parametrize("yes", ["-y", "--assumeyes"])
def test_install_assumeyes_installs(lapis, yes):
    r = lapis.run(yes, "install", "pkga")
    assert r.rc == 0, r
    assert r.error_lines == [], r
    assert re.search(r"^\[\s*1/\s*1\] Installing\s+pkga-0:1\.0-1\.noarch$", r.out, re.M), r
    assert r.out_lines[-3:] == ["Installed:", "  pkga-1.0-1.noarch", "Complete!"], r
    assert [p for p in lapis.rpm_qa() if not p.startswith("gpg-pubkey-")] == ["pkga-1.0-1.noarch"]
    assert (lapis.root / "usr" / "share" / "pkga" / "README").is_file()


def test_install_already_installed_nothing_to_do(lapis):
    lapis.rpm_install("pkga-1.0-1.noarch.rpm")
    r = lapis.run("--assumeno", "install", "pkga")
    assert r.rc == 0, r
    assert "Nothing to do" in r.out, r
    assert lapis.rpm_qa() == ["pkga-1.0-1.noarch"]


def test_install_no_argument(lapis):
    r = lapis.run("--assumeno", "install")
    assert r.rc == 2, r
