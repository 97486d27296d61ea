"""history list/info/undo/redo/rollback against real roots: what the
history database records, and what undoing it does to the rpmdb."""

import os
import re

import pytest

NOWEAK = "--setopt=install_weak_deps=0"
BASE_ONLY = "--disablerepo=updates"
KEEP = "--setopt=keepcache=1"


def trans_rows(lapis):
    return lapis.sql("SELECT id, cmdline, result FROM trans ORDER BY id")


def items(lapis, tid):
    return sorted(lapis.sql("SELECT action, name, epoch || ':' || version || '-' || release, arch "
                            "FROM trans_item WHERE trans_id=?", tid))


@pytest.fixture
def three(lapis_file):
    """1: install hello from base, 2: install pkga, 3: upgrade (to updates)."""
    lapis_file.yes(NOWEAK, BASE_ONLY, "install", "hello")
    lapis_file.yes("install", "pkga")
    lapis_file.yes(NOWEAK, "upgrade")
    assert lapis_file.installed() == ["hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64",
                                      "pkga-0:1.0-1.noarch"]
    return lapis_file


def test_history_rows(three):
    rows = trans_rows(three)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[2] for r in rows] == ["ok", "ok", "ok"]
    assert rows[0][1].endswith("install hello") and "install pkga" in rows[1][1], rows
    assert rows[2][1].endswith("upgrade"), rows
    assert items(three, 1) == [("install", "hello", "0:1.0-1", "x86_64"),
                               ("install-dep", "libfoo", "0:1.0-1", "x86_64")]
    assert items(three, 3) == [("upgrade", "hello", "0:2.1-1", "x86_64"),
                               ("upgrade", "libfoo", "0:1.1-1", "x86_64"),
                               ("upgraded", "hello", "0:1.0-1", "x86_64"),
                               ("upgraded", "libfoo", "0:1.0-1", "x86_64")]
    begin, end = three.sql("SELECT begin, end FROM trans WHERE id=3")[0]
    assert begin > 1.7e9 and end >= begin


def test_history_list_human(three):
    r = three.ok("history")
    assert r.out_lines[0].split()[:3] == ["ID", "Command", "line"], r
    body = r.out_lines[1:]
    assert [l.split()[0] for l in body] == ["3", "2", "1"], r
    assert "upgrade" in body[0] and "install pkga" in body[1] and "install hello" in body[2], r
    for line in body:
        assert line.rstrip().endswith("ok"), r
    assert re.search(r"\bUpgrade\b.*\b4\s+ok$", body[0]), r
    r2 = three.ok("history", "list")
    assert r2.out == r.out


def test_history_list_json(three):
    doc = three.json("history", "list")
    h = doc["history"]
    assert [t["id"] for t in h] == [3, 2, 1]
    assert [t["result"] for t in h] == ["ok"] * 3
    assert [t["altered"] for t in h] == [4, 1, 2]
    assert h[1]["cmdline"].endswith("install pkga")


def test_history_info(three):
    """dnf5's layout: key/value lines, then Packages altered with its words."""
    r = three.ok("history", "info", "1")
    assert re.search(r"^Transaction ID : 1$", r.out, re.M), r
    assert re.search(r"^Status         : Ok$", r.out, re.M), r
    assert re.search(r"^Releasever     : 1$", r.out, re.M), r
    assert re.search(r"^User           : %d\b" % os.getuid(), r.out, re.M), r
    assert re.search(r"^Description    : .* install hello$", r.out, re.M), r
    assert re.search(r"^Comment        :$", r.out, re.M), r
    assert re.search(r"^  Action +Package +Reason +Repository$", r.out, re.M), r
    assert re.search(r"^  Install +hello-1\.0-1\.x86_64 +User +base$", r.out, re.M), r
    assert re.search(r"^  Install +libfoo-1\.0-1\.x86_64 +Dependency +base$", r.out, re.M), r
    last = three.ok("history", "info", "last")
    assert re.search(r"^Transaction ID : 3$", last.out, re.M), last
    assert re.search(r"^  Replaced +hello-1\.0-1\.x86_64 +User +@System$", last.out, re.M), last
    assert re.search(r"^  Upgrade +hello-2\.1-1\.x86_64 +User +updates$", last.out, re.M), last
    doc = three.json("history", "info", "2")
    assert doc["id"] == 2 and doc["result"] == "ok" and doc["releasever"] == "1", doc
    assert doc["user_id"] == os.getuid() and doc["comment"] == "", doc
    assert [(p["action"], p["name"], p["reason"], p["repo"]) for p in doc["packages"]] == [
        ("install", "pkga", "user", "base")]


def test_history_comment(lapis_file):
    lapis_file.yes("--setopt=install_weak_deps=0", "--comment", "ticket 42: needs pkga", "install",
                   "pkga")
    r = lapis_file.ok("history", "info", "last")
    assert re.search(r"^Comment        : ticket 42: needs pkga$", r.out, re.M), r
    assert lapis_file.json("history", "info", "last")["comment"] == "ticket 42: needs pkga"


def test_history_from_before_releasever_and_comment_were_kept(lapis_file):
    """A history written before those columns existed gets them on open; its
    transactions show them empty."""
    import sqlite3
    db_path = lapis_file.history_db()
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    db.executescript(
        "CREATE TABLE trans (id INTEGER PRIMARY KEY AUTOINCREMENT, begin INTEGER NOT NULL,"
        " end INTEGER, cmdline TEXT NOT NULL, result TEXT NOT NULL, uid INTEGER);"
        "INSERT INTO trans(begin, end, cmdline, result, uid) VALUES (1, 2, 'install old', 'ok', 0);")
    db.close()
    r = lapis_file.ok("history", "info", "1")
    assert re.search(r"^Releasever     :$", r.out, re.M) and "install old" in r.out, r
    lapis_file.yes("--setopt=install_weak_deps=0", "install", "pkga")
    assert re.search(r"^Releasever     : 1$", lapis_file.ok("history", "info", "2").out, re.M)


def test_history_empty(lapis_file):
    r = lapis_file.run("history")
    assert r.rc == 0, r
    assert [l for l in r.out_lines[1:] if l.strip()] == [], r
    r = lapis_file.run("history", "undo", "last")
    assert r.rc == 1 and len(r.error_lines) == 1, r


def test_undo_install_removes_it(three):
    three.yes("history", "undo", "2")
    assert three.installed() == ["hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64"]
    assert not (three.root / "usr/share/pkga").exists()
    assert trans_rows(three)[-1][0] == 4
    assert items(three, 4) == [("remove", "pkga", "0:1.0-1", "noarch")]


def test_undo_upgrade_downgrades_back(three):
    r = three.yes(NOWEAK, "history", "undo", "last")
    assert "Downgrading:" in r.out, r
    assert three.installed() == ["hello-0:1.0-1.x86_64", "libfoo-0:1.0-1.x86_64",
                                 "pkga-0:1.0-1.noarch"]
    assert "hello 1.0-1" in (three.root / "usr/bin/hello").read_text()


def test_undo_remove_reinstalls(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello", "pkga")
    lapis_file.yes("remove", "hello")
    assert lapis_file.names() == ["pkga"]
    lapis_file.yes(NOWEAK, "history", "undo", "last")
    assert lapis_file.names() == ["hello", "libfoo", "pkga"]
    assert (lapis_file.root / "usr/bin/hello").is_file()


def test_undo_remove_restores_reasons(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello", "pkga")
    lapis_file.yes("remove", "hello")
    lapis_file.yes(NOWEAK, "history", "undo", "last")
    assert lapis_file.sql("SELECT reason FROM reason WHERE name='libfoo'") == [("dependency",)]
    # removing hello again takes libfoo along
    doc = lapis_file.json("-y", "remove", "hello")
    assert sorted(p["name"] for p in doc["transaction"]) == ["hello", "libfoo"], doc


@pytest.mark.parametrize("how", [("undo", "last"), ("rollback", "1")])
def test_undo_restores_exact_state(three, how):
    three.yes("history", *how)
    assert three.installed() == ["hello-0:1.0-1.x86_64", "libfoo-0:1.0-1.x86_64"] + (
        ["pkga-0:1.0-1.noarch"] if how[0] == "undo" else [])


def test_undo_twice_is_redo(three):
    three.yes("history", "undo", "2")
    three.yes("history", "undo", "last")
    assert three.names() == ["hello", "libfoo", "pkga"]


def test_redo(three):
    three.yes("history", "undo", "2")
    assert "pkga" not in three.names()
    three.yes("history", "redo", "2")
    assert three.names() == ["hello", "libfoo", "pkga"]
    assert (three.root / "usr/share/pkga/README").is_file()
    assert items(three, 5) == [("install", "pkga", "0:1.0-1", "noarch")]


def test_redo_remove(lapis_file):
    lapis_file.yes("install", "pkga", "pkgb")
    lapis_file.yes("remove", "pkgb")
    lapis_file.yes("install", "pkgb")
    lapis_file.yes("history", "redo", "2")
    assert lapis_file.names() == ["pkga"]


def test_rollback(three):
    three.yes("install", "epochpkg")
    three.yes("remove", "pkga")
    three.yes(NOWEAK, "history", "rollback", "1")
    assert three.installed() == ["hello-0:1.0-1.x86_64", "libfoo-0:1.0-1.x86_64"]
    assert not (three.root / "usr/share/epochpkg").exists()
    assert "hello 1.0-1" in (three.root / "usr/bin/hello").read_text()
    assert trans_rows(three)[-1][2] == "ok"


def test_rollback_to_latest_is_nothing(three):
    r = three.yes("history", "rollback", "3")
    assert "Nothing to do" in r.out, r
    assert len(three.installed()) == 3


def test_undo_from_cache_when_repo_gone(lapis_file):
    lapis_file.yes(KEEP, NOWEAK, BASE_ONLY, "install", "hello")
    lapis_file.yes(KEEP, NOWEAK, "upgrade")
    assert "hello-0:2.1-1.x86_64" in lapis_file.installed()
    r = lapis_file.yes("--disablerepo=base", "history", "undo", "last")
    assert "Downgrading:" in r.out, r
    assert lapis_file.installed() == ["hello-0:1.0-1.x86_64", "libfoo-0:1.0-1.x86_64"]


def test_undo_fails_when_package_is_nowhere(lapis_file):
    lapis_file.yes(NOWEAK, BASE_ONLY, "install", "hello")
    lapis_file.yes(NOWEAK, "upgrade")
    before, n = lapis_file.installed(), len(trans_rows(lapis_file))
    r = lapis_file.run("-y", "--disablerepo=base", "history", "undo", "last")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    line = r.error_lines[0]
    assert "1.0-1" in line and ("hello" in line or "libfoo" in line), r
    assert "cache" in line and "repositor" in line, r
    assert lapis_file.installed() == before
    assert len(trans_rows(lapis_file)) == n


@pytest.mark.parametrize("args,needle", [
    (("undo", "999"), "999"),
    (("redo", "999"), "999"),
    (("rollback", "999"), "999"),
    (("info", "999"), "999"),
    (("undo", "abc"), "abc"),
    (("undo",), "id"),
    (("frobnicate",), "frobnicate"),
])
def test_history_bad_requests(three, args, needle):
    before = three.installed()
    r = three.run("-y", "history", *args)
    usage = args in (("undo", "abc"), ("undo",), ("frobnicate",))
    assert r.rc == (2 if usage else 1), r   # dnf5: a usage error is 2
    assert len(r.error_lines) == 1 and needle in r.error_lines[0], r
    assert three.installed() == before
    assert len(trans_rows(three)) == 3


def test_history_bad_request_json(three):
    r = three.run("--json", "-y", "history", "undo", "999")
    assert r.rc == 1, r
    err = r.json()["error"]
    assert "999" in err["message"] and err["code"], r


def test_history_undo_assumeno(three):
    r = three.run("--assumeno", "history", "undo", "2")
    assert r.rc == 1, r
    assert len(three.installed()) == 3
    assert len(trans_rows(three)) == 3


def test_mark_recorded_in_reasons(three):
    assert three.sql("SELECT reason FROM reason WHERE name='libfoo'") == [("dependency",)]
    three.yes("mark", "install", "libfoo")
    assert three.sql("SELECT reason FROM reason WHERE name='libfoo'") == [("user",)]
    doc = three.json("-y", "remove", "hello")
    assert [p["name"] for p in doc["transaction"]] == ["hello"]
    assert three.names() == ["libfoo", "pkga"]
