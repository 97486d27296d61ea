"""The install root itself: a root reached through a symlink, a host with no
rpmdb, the rpmdb layout lapis creates (the root's own rpm must read it), and
preconditions checked before anything in the root changes."""

import os
import pathlib

import pytest

from conftest import LAPIS_BIN, NEVRA_QF, run_cmd

SYSIMAGE = "usr/lib/sysimage/rpm"
FEDORA_MACROS = "%_usr\t\t\t/usr\n%_dbpath\t\t%{_usr}/lib/sysimage/rpm\n"


def rpm_names(lapis, root, dbpath):
    r = run_cmd(["rpm", "--root", root, "--dbpath", dbpath, "-qa", "--qf", NEVRA_QF],
                env=lapis.env)
    assert r.rc == 0 and not r.err.strip(), r
    return sorted(l.rsplit("-", 2)[0] for l in r.out.split() if not l.startswith("gpg-pubkey-"))


def test_symlinked_installroot(lapis):
    (lapis.tmp / "real" / "root").mkdir(parents=True)
    (lapis.tmp / "link").symlink_to("real")
    root = lapis.tmp / "link" / "root"
    lapis.yes("install", "hello", root=root)
    lapis.yes("install", "pkga", root=root)
    lapis.root = lapis.tmp / "real" / "root"
    assert "hello" in lapis.names() and "pkga" in lapis.names()
    rows = lapis.sql("SELECT cmdline, result FROM trans ORDER BY id")
    assert [r[1] for r in rows] == ["ok", "ok"], rows
    out = lapis.ok("history", root=root).out
    assert "install pkga" in out and "install hello" in out, out
    lapis.yes("remove", "pkga", root=root)
    assert "pkga" not in lapis.names()


@pytest.mark.parametrize("blocker", ["history-dir", "history-symlink", "lapis-dir-file"])
def test_failed_precondition_changes_nothing(lapis_file, blocker):
    """The history database cannot be opened: refused before a key is imported
    or an rpmdb created."""
    lapis = lapis_file
    lib = lapis.root / "var" / "lib"
    lib.mkdir(parents=True)
    if blocker == "lapis-dir-file":
        (lib / "lapis").write_text("not a directory\n")
    else:
        (lib / "lapis").mkdir()
        if blocker == "history-dir":
            (lib / "lapis" / "history.sqlite").mkdir()
        else:
            (lib / "lapis" / "history.sqlite").symlink_to(lapis.tmp / "elsewhere.sqlite")
    r = lapis.run("-y", "install", "hello")
    assert r.rc != 0, r
    assert len(r.error_lines) == 1 and "no error" not in r.err, r
    assert "Imported OpenPGP key" not in r.err, r
    assert sorted(p.name for p in lib.iterdir()) == ["lapis"], list(lib.iterdir())
    assert not (lapis.tmp / "elsewhere.sqlite").exists()


@pytest.mark.parametrize("how", ["tsflags-test", "tampered"])
def test_run_that_stops_before_rpm_leaves_fresh_root_alone(lapis_file, how):
    """A run that does not reach rpm's real transaction (a test run; a package
    refused) leaves no rpmdb and no imported key in a fresh root."""
    if how == "tsflags-test":
        r = lapis_file.run("-y", "--setopt=tsflags=test", "install", "hello")
        assert r.rc == 0, r
    else:
        r = lapis_file.run("-y", "--enablerepo=tampered", "install", "tamperedpkg", "pkga")
        assert r.rc == 1 and len(r.error_lines) == 1, r
    assert "Imported OpenPGP key" not in r.err, r
    lib = lapis_file.root / "var" / "lib"
    assert sorted(p.name for p in lib.iterdir()) == ["lapis"], list(lib.iterdir())


def test_key_is_imported_for_the_real_run(lapis_file):
    lapis_file.yes("install", "hello")
    assert any(p.startswith("gpg-pubkey-") for p in lapis_file.rpm_qa())
    # A second install from the same repo finds the key there and imports nothing.
    r = lapis_file.yes("install", "pkga")
    assert "Imported OpenPGP key" not in r.err, r


# --------------------------------------------------------------------------
# No rpmdb: an empty installed set for every read command
# --------------------------------------------------------------------------

READS = [("info", "hello"), ("list", "installed"), ("repoquery", "--installed"),
         ("list", "hello"), ("check-update",)]


def host_has_rpmdb():
    return any(os.path.exists("/var/lib/rpm/" + f) for f in ("rpmdb.sqlite", "Packages", "Packages.db"))


@pytest.mark.skipif(host_has_rpmdb(), reason="this host has an rpmdb at /var/lib/rpm")
@pytest.mark.parametrize("args", READS, ids=lambda a: "-".join(a))
def test_host_without_rpmdb(lapis_file, args):
    r = run_cmd([LAPIS_BIN, "--setopt=reposdir=%s" % lapis_file.reposd,
                 "--setopt=cachedir=%s" % lapis_file.cache, "--releasever=1"] + list(args),
                env=lapis_file.env)
    assert r.rc in (0, 100) and not r.error_lines and "no error" not in r.err, r
    if args[0] == "info":
        assert "hello" in r.out, r


@pytest.mark.parametrize("args", READS, ids=lambda a: "-".join(a))
def test_empty_rpmdb_dir_is_empty_system(lapis_file, args):
    (lapis_file.root / "var" / "lib" / "rpm").mkdir(parents=True)
    r = lapis_file.run(*args)
    assert r.rc in (0, 100) and not r.error_lines and "no error" not in r.err, r
    if args == ("list", "installed"):
        assert "hello" not in r.out, r


def test_empty_rpmdb_dir_install(lapis_file):
    (lapis_file.root / "var" / "lib" / "rpm").mkdir(parents=True)
    lapis_file.yes("install", "hello")
    assert "hello" in lapis_file.names()


# --------------------------------------------------------------------------
# The rpmdb layout lapis creates follows the root's rpm
# --------------------------------------------------------------------------

@pytest.mark.parametrize("signal", ["macros", "sysimage-dir"])
def test_fedora_layout(lapis, signal):
    root = lapis.root
    if signal == "macros":
        (root / "usr/lib/rpm").mkdir(parents=True)
        (root / "usr/lib/rpm/macros").write_text(FEDORA_MACROS)
    else:
        (root / SYSIMAGE).mkdir(parents=True)
    lapis.yes("install", "hello")
    assert (root / SYSIMAGE / "rpmdb.sqlite").is_file()
    link = root / "var/lib/rpm"
    assert link.is_symlink() and os.readlink(link) == "../../usr/lib/sysimage/rpm"
    assert "hello" in rpm_names(lapis, root, "/usr/lib/sysimage/rpm")
    assert "hello" in rpm_names(lapis, root, "/var/lib/rpm")
    assert "hello" in lapis.ok("list", "installed").out
    lapis.yes("install", "pkga")
    assert "pkga" in rpm_names(lapis, root, "/usr/lib/sysimage/rpm")


def test_plain_layout(lapis_file):
    lapis_file.yes("install", "hello")
    db = lapis_file.root / "var/lib/rpm"
    assert db.is_dir() and not db.is_symlink() and (db / "rpmdb.sqlite").is_file()
    assert not (lapis_file.root / SYSIMAGE).exists()


def test_existing_link_is_used(lapis_file):
    """A root that already has var/lib/rpm -> ../../usr/lib/sysimage/rpm
    (dangling, as in a half-made root): the db goes where the link points."""
    (lapis_file.root / "var/lib").mkdir(parents=True)
    (lapis_file.root / "var/lib/rpm").symlink_to("../../usr/lib/sysimage/rpm")
    lapis_file.yes("install", "hello")
    assert (lapis_file.root / SYSIMAGE / "rpmdb.sqlite").is_file()
    assert "hello" in rpm_names(lapis_file, lapis_file.root, "/usr/lib/sysimage/rpm")


@pytest.mark.parametrize("kind", ["absolute", "escaping"])
def test_rpmdb_link_leaving_the_root_is_refused(lapis_file, kind):
    outside = lapis_file.tmp / "outside"
    (lapis_file.root / "var/lib").mkdir(parents=True)
    target = str(outside) if kind == "absolute" else "../../../outside"
    (lapis_file.root / "var/lib/rpm").symlink_to(target)
    r = lapis_file.run("-y", "install", "hello")
    assert r.rc != 0 and len(r.error_lines) == 1 and "symlink" in r.error_lines[0], r
    assert not outside.exists()
    assert "Imported OpenPGP key" not in r.err, r


def test_sysimage_db_without_link_is_reported(lapis_file):
    """An rpmdb only at usr/lib/sysimage/rpm is not taken for an empty system:
    a transaction would install everything again beside it."""
    root = lapis_file.root
    (root / SYSIMAGE).mkdir(parents=True)
    r = run_cmd(["rpm", "--root", root, "--dbpath", "/" + SYSIMAGE, "--initdb"], env=lapis_file.env)
    assert r.rc == 0, r
    r = lapis_file.run("list", "installed")
    assert r.rc == 1 and len(r.error_lines) == 1 and "ln -s ../../usr/lib/sysimage/rpm" in r.err, r
