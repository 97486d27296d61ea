"""--offline and `lapis offline` (dnf5's offline transactions): a transaction
resolved, downloaded and verified now, stored under
ROOT/usr/lib/sysimage/lapis/offline, and applied by `offline _execute` (what
lapis-offline-transaction.service runs at the next boot). The roots here are
install roots, so nothing ever reboots the host."""

import json
import re

import pytest

from conftest import FIXTURES

STATE = ("usr", "lib", "sysimage", "lapis", "offline")


def state_dir(lapis):
    return lapis.root.joinpath(*STATE)


def link(lapis):
    return lapis.root / "system-update"


def store_hello(lapis, schedule=False):
    r = lapis.yes("--offline", "install", "hello")
    assert "Transaction stored to be performed offline. Run `lapis offline reboot`" in r.out, r
    if schedule:
        lapis.ok("offline", "reboot")
    return r


def test_offline_install_stores_then_execute_applies(lapis):
    store_hello(lapis)
    # nothing installed now; the packages and the transaction are stored
    assert lapis.installed() == []
    doc = json.loads((state_dir(lapis) / "transaction.json").read_text())
    stored = {i["nevra"]: i for i in doc["items"]}
    assert stored["hello-2.1-1.x86_64"]["action"] == "install", doc
    assert stored["libfoo-1.1-1.x86_64"]["action"] == "install-dep", doc
    assert "--offline install hello" in doc["cmdline"], doc
    for item in doc["items"]:
        assert (state_dir(lapis) / "packages" / item["file"]).is_file(), item

    st = lapis.ok("offline", "status")
    assert "install hello-2.1-1.x86_64" in st.out, st
    assert "lapis offline reboot" in st.out, st

    rb = lapis.ok("offline", "reboot")
    assert "Not running `systemctl reboot`" in rb.out, rb
    assert link(lapis).is_symlink(), rb
    assert str(link(lapis).readlink()) == "/usr/lib/sysimage/lapis/offline"
    assert "will run at the next boot" in lapis.ok("offline", "status").out

    ex = lapis.ok("offline", "_execute", "--no-reboot")
    assert "hello-2.1-1.x86_64" in ex.out, ex
    assert "Not running `systemctl reboot` (--no-reboot)" in ex.out, ex
    assert "hello" in lapis.names() and "libfoo" in lapis.names(), ex
    assert not link(lapis).exists() and not link(lapis).is_symlink()
    assert not state_dir(lapis).exists()
    rows = lapis.sql("SELECT cmdline, result FROM trans")
    assert len(rows) == 1 and "--offline install hello" in rows[0][0] and rows[0][1] == "ok", rows
    assert lapis.ok("offline", "status").out.strip() == "No offline transaction is stored."


def test_offline_dependency_reason_kept(lapis_file):
    lapis = lapis_file
    store_hello(lapis, schedule=True)
    lapis.ok("offline", "_execute")
    ui = lapis.ok("repoquery", "--userinstalled", "--qf", "%{name}\n")
    assert "hello" in ui.out.split() and "libfoo" not in ui.out.split(), ui
    # history names the repositories the packages came from, not "@commandline"
    info = lapis.ok("history", "info", "last")
    assert re.search(r"Install\s+hello-2.1-1.x86_64\s+User\s+updates$", info.out, re.M), info
    assert "@commandline" not in info.out, info
    assert re.search(r"^hello.x86_64\s+2.1-1\s+updates$",
                     lapis.ok("list", "--installed").out, re.M)


def test_offline_execute_needs_the_link(lapis_file):
    """_execute applies only what `offline reboot` scheduled (another tool's
    /system-update, or none, is not a reason to run it)."""
    lapis = lapis_file
    store_hello(lapis)
    r = lapis.run("offline", "_execute")
    assert r.rc == 1 and "not scheduled" in r.err, r
    assert "Not running `systemctl" not in r.out, r
    link(lapis).symlink_to("/var/lib/other-updater")
    r = lapis.run("offline", "_execute")
    assert r.rc == 1 and "not scheduled" in r.err, r
    assert lapis.installed() == []
    assert str(link(lapis).readlink()) == "/var/lib/other-updater"
    r = lapis.run("offline", "reboot")
    assert r.rc == 1 and "another tool" in r.err, r


def test_offline_clean_removes_it(lapis_file):
    lapis = lapis_file
    store_hello(lapis)
    lapis.ok("offline", "reboot")
    assert link(lapis).is_symlink()
    lapis.ok("offline", "clean")
    assert not state_dir(lapis).exists()
    assert not link(lapis).is_symlink()
    assert lapis.ok("offline", "status").out.strip() == "No offline transaction is stored."
    r = lapis.run("offline", "_execute")
    assert r.rc == 1 and "no offline transaction is stored" in r.err, r
    assert lapis.installed() == []


def test_offline_tampered_package_refused(lapis_file):
    lapis = lapis_file
    store_hello(lapis)
    lapis.ok("offline", "reboot")
    pkg = next((state_dir(lapis) / "packages").glob("hello-*.rpm"))
    data = bytearray(pkg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pkg.write_bytes(bytes(data))
    r = lapis.run("offline", "_execute")
    assert r.rc == 1, r
    assert "hello-2.1-1.x86_64" in r.err and "was altered" in r.err, r
    assert lapis.installed() == []
    # removed first: a failing update does not run again at every boot
    assert not link(lapis).is_symlink()


def test_offline_signature_checked_again_when_applied(lapis_file):
    lapis = lapis_file
    store_hello(lapis, schedule=True)
    keys = [k for k in lapis.rpm("-qa", "gpg-pubkey*").out.split() if k]
    assert keys, "the store imports the repo key into the root"
    # the repo's key replaced by another one: the stored packages' signatures
    # no longer verify against the root's keyring
    r = lapis.rpm("-e", *keys)
    assert r.rc == 0, r
    r = lapis.rpm("--import", FIXTURES / "keys" / "RPM-GPG-KEY-lapis-other")
    assert r.rc == 0, r
    r = lapis.run("offline", "_execute")
    assert r.rc == 1, r
    assert "signed by a key that is not in" in r.err and "refusing it" in r.err, r
    assert lapis.installed() == []


def test_offline_changed_system_refused(lapis_file):
    lapis = lapis_file
    store_hello(lapis, schedule=True)
    lapis.yes("install", "pkga")
    before = lapis.installed()
    r = lapis.run("offline", "_execute")
    assert r.rc == 1, r
    assert "no longer applies" in r.err and "installed packages changed" in r.err, r
    assert lapis.installed() == before
    assert "hello" not in lapis.names()


def test_offline_remove(lapis_file):
    lapis = lapis_file
    lapis.yes("install", "hello")
    lapis.yes("--offline", "remove", "hello")
    assert "hello" in lapis.names()
    r = lapis.ok("offline", "reboot", "--poweroff")
    assert "Not running `systemctl reboot`" in r.out, r  # the reboot into the update
    assert lapis.json("offline", "status")["poweroff"] is True
    r = lapis.ok("offline", "_execute")
    assert "Not running `systemctl poweroff`" in r.out, r  # after it, as asked
    assert "hello" not in lapis.names()


@pytest.mark.parametrize("cmd,before,after", [
    (("upgrade",), "hello-0:1.0-1.x86_64", "hello-0:2.1-1.x86_64"),
    (("downgrade", "hello"), "hello-0:2.1-1.x86_64", "hello-0:2.0-1.x86_64"),
    (("distro-sync",), "hello-0:1.0-1.x86_64", "hello-0:2.1-1.x86_64"),
    (("reinstall", "hello"), "hello-0:2.1-1.x86_64", "hello-0:2.1-1.x86_64"),
])
def test_offline_upgrade_downgrade_sync_reinstall(lapis_file, cmd, before, after):
    """The other commands that take --offline: stored, nothing changed now,
    applied by _execute."""
    lapis = lapis_file
    lapis.yes("install", "hello-%s" % before.split(":")[1].rsplit(".", 1)[0])
    assert [n for n in lapis.installed() if n.startswith("hello-")] == [before]
    r = lapis.yes("--offline", *cmd)
    assert "Transaction stored to be performed offline" in r.out, r
    doc = json.loads((state_dir(lapis) / "transaction.json").read_text())
    assert any(i["nevra"].startswith("hello-") for i in doc["items"]), doc
    assert [n for n in lapis.installed() if n.startswith("hello-")] == [before]
    lapis.ok("offline", "reboot")
    ex = lapis.ok("offline", "_execute", "--no-reboot")
    assert [n for n in lapis.installed() if n.startswith("hello-")] == [after], ex
    assert not state_dir(lapis).exists()


def test_offline_assumeno_stores_nothing(lapis_file):
    lapis = lapis_file
    r = lapis.run("--assumeno", "--offline", "install", "hello")
    assert r.rc == 1, r
    assert not state_dir(lapis).exists()


def test_offline_json(lapis_file):
    lapis = lapis_file
    doc = lapis.json("-y", "--offline", "install", "hello")
    assert doc["result"] == "stored-offline", doc
    assert "hello" in {p["name"] for p in doc["transaction"]}, doc
    st = lapis.json("offline", "status")
    assert st["stored"] is True and "install hello-2.1-1.x86_64" in st["items"], st
    assert st["scheduled"] is False, st
    lapis.ok("offline", "reboot")
    ex = lapis.json("offline", "_execute")
    assert ex["result"] == "ok" and ex["history_id"] == 1, ex
    assert lapis.json("offline", "status") == {"stored": False}


@pytest.mark.parametrize("args,why", [
    (("--offline", "list"), "--offline works with install"),
    (("--offline", "--downloadonly", "-y", "install", "hello"), "--offline stores its packages"),
    (("offline",), "offline takes one of status, reboot, clean, _execute"),
    (("offline", "bogus"), "unknown offline subcommand 'bogus'"),
    (("offline", "status", "extra"), "offline takes one of"),
    (("offline", "status", "--poweroff"), "--poweroff is an option of offline reboot"),
])
def test_offline_usage_errors(lapis_file, args, why):
    r = lapis_file.run(*args)
    assert r.rc == 2, r
    assert r.err.count("\n") == 1 and why in r.err, r
    assert not state_dir(lapis_file).exists()


def test_offline_local_rpm_is_copied(lapis_file, tmp_path):
    """A command-line .rpm is copied into the state directory: the file named
    may be gone by the next boot."""
    lapis = lapis_file
    local = tmp_path / "hello-1.0-1.x86_64.rpm"
    local.write_bytes((FIXTURES / "rpms" / "hello-1.0-1.x86_64.rpm").read_bytes())
    lapis.yes("--offline", "install", local)
    local.unlink()
    assert (state_dir(lapis) / "packages" / "hello-1.0-1.x86_64.rpm").is_file()
    lapis.ok("offline", "reboot")
    lapis.ok("offline", "_execute")
    assert "hello-0:1.0-1.x86_64" in lapis.installed()


def test_offline_new_store_replaces_and_unschedules(lapis_file):
    lapis = lapis_file
    store_hello(lapis, schedule=True)
    r = lapis.yes("--offline", "install", "pkga")
    assert "this replaces the offline transaction stored by:" in r.err, r
    assert "--offline install hello" in r.err, r
    assert not link(lapis).is_symlink()
    st = lapis.json("offline", "status")
    assert st["scheduled"] is False and not any("hello" in i for i in st["items"]), st


def test_offline_state_dir_symlink_out_of_root_refused(lapis_file, tmp_path):
    """A symlink in the root on the way to the state directory must not make
    store's or clean's rm -rf remove anything outside the root."""
    lapis = lapis_file
    outside = tmp_path / "outside"
    (outside / "offline").mkdir(parents=True)
    (outside / "offline" / "keep").write_text("x")
    sysimage = lapis.root / "usr" / "lib" / "sysimage"
    sysimage.mkdir(parents=True)
    (sysimage / "lapis").symlink_to(outside)
    for args in (("offline", "clean"), ("-y", "--offline", "install", "hello"),
                 ("offline", "status")):
        r = lapis.run(*args)
        assert r.rc == 1 and "leads outside the root" in r.err, r
    assert (outside / "offline" / "keep").read_text() == "x"
    assert lapis.installed() == []
