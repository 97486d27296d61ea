"""Transactions against real install roots: install (every kind of spec),
reinstall, remove, upgrade, downgrade, distro-sync, autoremove, mark and the
transaction options. Every test checks what happened to the root: the rpmdb
(through the real rpm), files on disk, the history database, exit codes.
Where dnf is installed, a few requests are replayed with dnf into a second
root and the installed package sets are compared."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import FIXTURES, NEVRA_QF, files_named, nevra, run_cmd, run_on_tty

NOWEAK = "--setopt=install_weak_deps=0"
BASE_ONLY = "--disablerepo=updates"

HELLO_SET = ["hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64",
             "weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]



def fixture_key_id():
    """Short id of the fixture signing key (generated per fixture build)."""
    key = str(FIXTURES / "keys" / "RPM-GPG-KEY-lapis-test")
    out = subprocess.run(["gpg", "--batch", "--with-colons", "--show-keys", key],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("pub:"):
            return line.split(":")[4][-8:].lower()
    raise AssertionError("no key in %s" % key)

def progress_names(out, verb="Installing"):
    """Names from the per-package lines `[ i/ n] Installing NAME-EPOCH:VERSION-RELEASE.ARCH`."""
    return sorted(m.group(1) for m in
                  re.finditer(r"^\[\s*\d+/\s*\d+\] %s\s+(\S+)-\d+:[^-\s]+-\S+$" % verb,
                              out, re.M))


def section(out, title):
    """Names listed under a section title of the transaction table."""
    names, cur = [], False
    for line in out.splitlines():
        if line.strip().endswith(":") and not line.startswith("   "):
            cur = line.strip() == title
        elif cur and line.startswith(" ") and not line.startswith("   replacing"):
            names.append(line.split()[0])
        elif not line.strip():
            cur = False
    return names


def actions(doc):
    return {p["name"]: p["action"] for p in doc["transaction"]}


def history_count(lapis):
    if not lapis.history_db().exists():
        return 0
    return lapis.sql("SELECT count(*) FROM trans")[0][0]


def cached_rpms(lapis):
    return sorted(os.path.basename(p) for p in
                  (str(x) for x in lapis.cache.rglob("*.rpm")) if p.endswith(".rpm"))


def put_shell(root):
    """A working /bin/sh in ROOT, so shell scriptlets can run in the chroot."""
    for d in ("bin", "lib64", "lib/x86_64-linux-gnu"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/dash", root / "bin" / "sh")
    shutil.copy("/lib64/ld-linux-x86-64.so.2", root / "lib64")
    shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", root / "lib" / "x86_64-linux-gnu")


# ---- confirmation ------------------------------------------------------------

def test_refused_without_tty_and_without_y(lapis_file):
    r = lapis_file.run("install", "hello")
    assert r.rc == 1, r
    assert r.err.endswith("Operation aborted by the user.\n"), r
    assert "Complete!" not in r.out, r
    assert lapis_file.installed() == []
    assert not (lapis_file.root / "usr" / "bin" / "hello").exists()
    assert history_count(lapis_file) == 0


def test_refused_json_error_document(lapis_file):
    """--json never prompts: without -y it is one clear error (before loading anything)."""
    r = lapis_file.run("--json", "install", "pkga")
    assert r.rc == 2, r
    err = r.json()["error"]
    assert "--json cannot ask for confirmation" in err["message"] and err["code"], r
    assert len(r.error_lines) == 1 and "Is this ok" not in r.err, r
    assert lapis_file.installed() == []


@pytest.mark.parametrize("answers,installed", [
    ("n\n", []),                    # no to the transaction
    ("y\nn\n", []),                 # yes to it, no to importing the key
    ("y\ny\n", ["pkga"]),
])
def test_confirmation_on_a_terminal(lapis_file, answers, installed):
    cp = run_on_tty(lapis_file, answers, "install", "pkga")
    assert "Is this ok [y/N]" in cp.stderr, cp
    assert cp.returncode == (0 if installed else 1), cp
    assert lapis_file.names() == installed
    if answers.startswith("y"):
        assert "Fingerprint" in cp.stderr, cp


def test_assumeno_changes_nothing(lapis_file):
    lapis_file.yes(NOWEAK, "install", "pkga", "hello-2.0")
    before, nhist = lapis_file.installed(), history_count(lapis_file)
    for args in (("install", "richdep"), ("remove", "pkga"), ("upgrade",),
                 ("downgrade", "hello"), ("reinstall", "pkga"), ("distro-sync",)):
        r = lapis_file.run("--assumeno", *args)
        assert r.rc == 1, r
        assert "Operation aborted by the user." in r.err, r
        assert "Complete!" not in r.out, r
    assert lapis_file.installed() == before
    assert history_count(lapis_file) == nhist


# ---- install: every kind of spec --------------------------------------------

def test_install_by_name(lapis):
    r = lapis.yes("install", "hello")
    assert lapis.installed() == HELLO_SET
    hello = lapis.root / "usr" / "bin" / "hello"
    assert hello.is_file() and os.access(hello, os.X_OK)
    assert "hello 2.1-1" in hello.read_text()
    assert (lapis.root / "usr" / "lib64" / "libfoo.so.1").is_file()
    assert (lapis.root / "usr" / "share" / "doc" / "hello" / "README").is_file()
    # dnf5 layout, per-package progress, then Complete!
    assert r.out_lines[0].split() == ["Package", "Arch", "Version", "Repository", "Size"], r
    assert section(r.out, "Installing:") == ["hello"], r
    assert section(r.out, "Installing dependencies:") == ["libfoo"], r
    assert section(r.out, "Installing weak dependencies:") == ["weakdep-rec", "weakpkg"], r
    assert "Transaction Summary:" in r.out_lines, r
    assert progress_names(r.out) == ["hello", "libfoo", "weakdep-rec", "weakpkg"], r
    assert r.out_lines[-1] == "Complete!", r
    assert r.error_lines == [], r
    # the signing key went into the root's rpm keyring on first use
    assert "gpg-pubkey-%s" % fixture_key_id() in " ".join(lapis.rpm_qa())


def test_install_glob(lapis_file):
    lapis_file.yes("install", "mta-*")
    assert lapis_file.names() == ["mta-a", "mta-b"]


def test_install_name_version(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello-2.0")
    assert lapis_file.installed() == ["hello-0:2.0-1.x86_64", "libfoo-0:1.1-1.x86_64"]
    assert "hello 2.0-1" in (lapis_file.root / "usr/bin/hello").read_text()


def test_install_capability(lapis_file):
    doc = lapis_file.json("-y", "install", "mta")
    names = lapis_file.names()
    assert len(names) == 1 and names[0] in ("mta-a", "mta-b"), names
    assert actions(doc) == {names[0]: "install"}
    # a package requiring the capability is satisfied by what is there
    doc = lapis_file.json("-y", "install", "needs-mta")
    assert actions(doc) == {"needs-mta": "install"}
    assert lapis_file.names() == sorted(names + ["needs-mta"])


def test_install_needs_capability_pulls_one_provider(lapis_file):
    doc = lapis_file.json("-y", "install", "needs-mta")
    deps = [n for n, a in actions(doc).items() if a == "install-dep"]
    assert len(deps) == 1 and deps[0] in ("mta-a", "mta-b"), doc
    assert lapis_file.names() == sorted(["needs-mta"] + deps)


@pytest.mark.parametrize("path", ["/usr/bin/hello", "/usr/share/hello/data.txt"])
def test_install_file_path(lapis_file, path):
    """/usr/bin is in primary; /usr/share/hello/data.txt only in filelists."""
    lapis_file.yes(NOWEAK, "install", path)
    assert lapis_file.installed() == ["hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64"]
    assert (lapis_file.root / path.lstrip("/")).is_file()


def test_install_local_rpm_file(lapis_file):
    rpm = FIXTURES / "rpms" / "hello-1.0-1.x86_64.rpm"
    doc = lapis_file.json("-y", NOWEAK, "install", rpm)
    acts = {p["name"]: (p["action"], p["repo"]) for p in doc["transaction"]}
    assert acts["hello"][0] == "install" and acts["libfoo"] == ("install-dep", "updates"), doc
    assert lapis_file.installed() == ["hello-0:1.0-1.x86_64", "libfoo-0:1.1-1.x86_64"]
    assert "hello 1.0-1" in (lapis_file.root / "usr/bin/hello").read_text()
    rows = lapis_file.sql("SELECT name, repo FROM trans_item WHERE action='install'")
    assert rows == [("hello", "@commandline")]
    # the local file is used in place: not copied into the cache, not deleted
    assert rpm.is_file()
    assert "hello-1.0-1.x86_64.rpm" not in cached_rpms(lapis_file)


def test_install_local_rpm_from_repo_dir(lapis_file):
    lapis_file.yes("install", FIXTURES / "repos" / "base" / "pkgb-1.0-1.noarch.rpm")
    assert lapis_file.installed() == ["pkgb-0:1.0-1.noarch"]


def test_install_already_installed_nothing_to_do(lapis_file):
    lapis_file.yes("install", "pkga")
    before = lapis_file.installed()
    r = lapis_file.yes("install", "pkga")
    assert "Nothing to do" in r.out, r
    assert r.error_lines == [], r
    assert lapis_file.installed() == before == ["pkga-0:1.0-1.noarch"]
    assert history_count(lapis_file) == 1
    doc = lapis_file.json("-y", "install", "pkga")
    assert doc["result"] == "nothing-to-do" and doc["transaction"] == []


def test_install_nonexistent_fails_cleanly(lapis_file):
    lapis_file.yes("install", "pkga")
    r = lapis_file.run("-y", "install", "pkgb", "doesnotexist")
    assert r.rc == 1, r
    assert r.error_lines == [] and "No match for argument: doesnotexist" in r.resolve_failure, r
    assert lapis_file.installed() == ["pkga-0:1.0-1.noarch"]


def test_install_json_classification_and_reasons(lapis_file):
    doc = lapis_file.json("-y", "install", "hello")
    assert doc["result"] == "ok" and doc["history_id"] == 1, doc
    assert actions(doc) == {"hello": "install", "libfoo": "install-dep",
                            "weakpkg": "install-weak", "weakdep-rec": "install-weak"}
    assert sorted(nevra(p) for p in doc["transaction"]) == [
        "hello-2.1-1.x86_64", "libfoo-1.1-1.x86_64", "weakdep-rec-1.0-1.noarch",
        "weakpkg-1.0-1.noarch"]
    for p in doc["transaction"]:
        assert isinstance(p["size"], int) and p["size"] > 0, p
    assert lapis_file.installed() == HELLO_SET
    reasons = dict(((n, a), r) for n, a, r in lapis_file.sql("SELECT name, arch, reason FROM reason"))
    assert reasons == {("hello", "x86_64"): "user", ("libfoo", "x86_64"): "dependency",
                       ("weakpkg", "noarch"): "weak-dependency",
                       ("weakdep-rec", "noarch"): "weak-dependency"}


def test_install_weak_deps_off(lapis_file):
    doc = lapis_file.json("-y", NOWEAK, "install", "hello")
    assert actions(doc) == {"hello": "install", "libfoo": "install-dep"}
    assert lapis_file.installed() == ["hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64"]


def test_multilib_picks_native_arch(lapis_file):
    doc = lapis_file.json("-y", "install", "libfoo")
    assert [nevra(p) for p in doc["transaction"]] == ["libfoo-1.1-1.x86_64"]
    assert lapis_file.installed() == ["libfoo-0:1.1-1.x86_64"]
    assert (lapis_file.root / "usr/lib64/libfoo.so.1").is_file()
    assert not (lapis_file.root / "usr/lib/libfoo.so.1").exists()


def test_multilib_side_by_side(lapis_file):
    lapis_file.yes("install", "libfoo")
    # asked for by arch, the i686 build installs next to it (shared identical file)
    r = lapis_file.yes("install", "libfoo.i686")
    assert "Removing" not in r.out, r
    assert lapis_file.installed() == ["libfoo-0:1.1-1.i686", "libfoo-0:1.1-1.x86_64"]
    assert "i686" in (lapis_file.root / "usr/lib/libfoo.so.1").read_text()
    assert "x86_64" in (lapis_file.root / "usr/lib64/libfoo.so.1").read_text()


def test_epoch_wins_over_version(lapis_file):
    doc = lapis_file.json("-y", "install", "epochpkg")
    p = doc["transaction"][0]
    assert (p["epoch"], p["version"]) == (1, "1.0"), doc
    assert lapis_file.installed() == ["epochpkg-1:1.0-1.noarch"]
    assert (lapis_file.root / "usr/share/epochpkg/VERSION").read_text().strip() == "epochpkg 1:1.0-1"


def test_epoch_upgrade_from_higher_version(lapis_file):
    """0:2.0 -> 1:1.0 is an upgrade, though the version goes down."""
    lapis_file.yes("install", "epochpkg-0:2.0-1")
    assert lapis_file.installed() == ["epochpkg-0:2.0-1.noarch"]
    doc = lapis_file.json("-y", "upgrade")
    assert [(p["name"], p["action"], p["epoch"]) for p in doc["transaction"]] == [
        ("epochpkg", "upgrade", 1)]
    assert lapis_file.installed() == ["epochpkg-1:1.0-1.noarch"]


def test_kernel_installonly_side_by_side(lapis_file):
    lapis_file.yes("install", "kernel-5.0.0")
    lapis_file.yes("install", "kernel-5.1.0")
    assert lapis_file.installed() == ["kernel-0:5.0.0-1.x86_64", "kernel-0:5.1.0-1.x86_64"]
    doc = lapis_file.json("-y", "upgrade")
    assert [(nevra(p), p["action"]) for p in doc["transaction"]] == [
        ("kernel-5.2.0-1.x86_64", "install")], doc
    assert lapis_file.installed() == ["kernel-0:5.0.0-1.x86_64", "kernel-0:5.1.0-1.x86_64",
                                      "kernel-0:5.2.0-1.x86_64"]
    assert sorted(os.listdir(lapis_file.root / "boot")) == [
        "vmlinuz-5.0.0", "vmlinuz-5.1.0", "vmlinuz-5.2.0"]
    assert sorted(os.listdir(lapis_file.root / "lib/modules")) == ["5.0.0", "5.1.0", "5.2.0"]


def test_installonly_limit_removes_oldest(lapis_file):
    lapis_file.yes("install", "kernel-5.0.0")
    lapis_file.yes("install", "kernel-5.1.0")
    r = lapis_file.yes("--setopt", "installonly_limit=2", "install", "kernel-5.2.0")
    assert section(r.out, "Installing:") == ["kernel"], r
    assert lapis_file.installed() == ["kernel-0:5.1.0-1.x86_64", "kernel-0:5.2.0-1.x86_64"]
    assert sorted(os.listdir(lapis_file.root / "boot")) == ["vmlinuz-5.1.0", "vmlinuz-5.2.0"]
    assert not (lapis_file.root / "lib/modules/5.0.0").exists()


def test_installonly_limit_on_upgrade(lapis_file):
    lapis_file.yes("install", "kernel-5.0.0", "kernel-5.1.0")
    lapis_file.yes("--setopt=installonly_limit=2", "upgrade")
    assert lapis_file.installed() == ["kernel-0:5.1.0-1.x86_64", "kernel-0:5.2.0-1.x86_64"]


def test_obsoletes_on_upgrade(lapis_file):
    lapis_file.yes("--setopt=obsoletes=0", "install", "oldname")
    assert lapis_file.installed() == ["oldname-0:1.0-1.noarch"]
    r = lapis_file.yes("upgrade", "oldname")
    assert section(r.out, "Upgrading:") == ["newname"], r
    assert re.search(r"^\s+replacing oldname\s+noarch\s+1\.0-1", r.out, re.M), r
    assert lapis_file.installed() == ["newname-0:2.0-1.noarch"]
    assert (lapis_file.root / "usr/share/newname/README").is_file()
    assert not (lapis_file.root / "usr/share/oldname").exists()
    rows = lapis_file.sql("SELECT action, name FROM trans_item WHERE trans_id=2 ORDER BY seq")
    assert sorted(rows) == [("obsoleted", "oldname"), ("upgrade", "newname")]


def test_obsoletes_json_replaces(lapis_file):
    lapis_file.yes("--setopt=obsoletes=0", "install", "oldname")
    doc = lapis_file.json("--assumeno", "upgrade", rc=1)
    (p,) = doc["transaction"]
    assert (p["name"], p["action"], p["replaces"]["name"]) == ("newname", "upgrade", "oldname")


def test_conflict_fails_then_allowerasing(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    before = lapis_file.installed()
    r = lapis_file.run("-y", "install", "conflictor")
    assert r.rc == 1, r
    fail = r.resolve_failure
    assert r.error_lines == [] and fail, r
    assert "  --allowerasing to allow erasing of installed packages to resolve problems" in fail, r
    # dnf5's problem lines say, in plain words, who conflicts with whom
    assert fail[0].startswith("Problem: "), r
    assert ("  - package conflictor-1.0-1.noarch from base conflicts with hello provided by "
            "hello-2.1-1.x86_64 from @System") in fail, r
    assert "Traceback" not in r.err and "Complete!" not in r.out, r
    assert lapis_file.installed() == before

    r = lapis_file.yes("--allowerasing", "install", "conflictor")
    assert section(r.out, "Installing:") == ["conflictor"], r
    assert "hello" in r.out[r.out.index("Removing"):], r
    names = lapis_file.names()
    assert "conflictor" in names and "hello" not in names, names
    assert not (lapis_file.root / "usr/bin/hello").exists()


def test_conflict_in_one_request(lapis_file):
    r = lapis_file.run("-y", "install", "hello", "conflictor")
    assert r.rc == 1, r
    assert r.resolve_failure and "conflict" in r.err, r
    assert lapis_file.installed() == []


def test_skip_broken(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    r = lapis_file.run("-y", "install", "conflictor", "pkga")
    assert r.rc == 1, r
    assert lapis_file.names() == ["hello", "libfoo"]
    # dnf5 reports what it skipped: a section of the table and a summary line
    r = lapis_file.run("--assumeno", "--skip-broken", "install", "conflictor", "pkga")
    assert r.rc == 1, r
    lines = r.out.splitlines()
    i = lines.index("Skipping packages with broken dependencies:")
    assert lines[i + 1].split()[:3] == ["conflictor", "noarch", "1.0-1"], r
    assert re.search(r"^ Skipping:\s+1 package$", r.out, re.M), r
    doc = lapis_file.json("-y", "--skip-broken", "install", "conflictor", "pkga")
    assert actions(doc) == {"pkga": "install"}, doc
    assert [p["name"] for p in doc["skipped"]] == ["conflictor"], doc
    assert lapis_file.names() == ["hello", "libfoo", "pkga"]
    # all of it skipped: still said, then nothing to do
    r = lapis_file.run("-y", "--skip-broken", "install", "conflictor")
    assert r.rc == 0 and "Skipping packages with broken dependencies:" in r.out, r
    assert r.out.splitlines()[-1] == "Nothing to do.", r


# ---- reinstall, remove, autoremove, mark --------------------------------------

def test_reinstall_restores_files(lapis_file):
    lapis_file.yes("install", "hello")
    before = lapis_file.installed()
    hello = lapis_file.root / "usr/bin/hello"
    hello.unlink()
    doc = lapis_file.json("-y", "reinstall", "hello")
    assert actions(doc) == {"hello": "reinstall"}, doc
    assert hello.is_file() and "hello 2.1-1" in hello.read_text()
    assert lapis_file.installed() == before


def test_reinstall_touches_only_the_package(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    doc = lapis_file.json("-y", "reinstall", "hello")
    assert actions(doc) == {"hello": "reinstall"}, doc
    assert lapis_file.names() == ["hello", "libfoo"]


def test_reinstall_not_installed_fails(lapis_file):
    r = lapis_file.run("-y", "reinstall", "pkga")
    assert r.rc == 1, r
    assert r.resolve_failure[0] == "No match for argument: pkga", r
    assert lapis_file.installed() == []


def test_remove_with_dependents(lapis_file):
    lapis_file.yes(NOWEAK, "install", "filedep", "pkga")
    r = lapis_file.yes("remove", "libfoo")
    assert section(r.out, "Removing:") == ["libfoo"], r
    assert sorted(section(r.out, "Removing dependent packages:")) == ["filedep", "hello"], r
    assert lapis_file.names() == ["pkga"]
    assert not (lapis_file.root / "usr/bin/hello").exists()


def test_remove_clean_requirements(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello", "pkga")
    r = lapis_file.yes("remove", "hello")
    assert section(r.out, "Removing:") == ["hello"], r
    assert section(r.out, "Removing unused dependencies:") == ["libfoo"], r
    assert progress_names(r.out, "Removing") == ["hello", "libfoo"], r
    assert lapis_file.names() == ["pkga"]
    assert not (lapis_file.root / "usr/lib64/libfoo.so.1").exists()


def test_remove_clean_requirements_off(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    doc = lapis_file.json("-y", "--setopt", "clean_requirements_on_remove=0", "remove", "hello")
    assert actions(doc) == {"hello": "remove"}, doc
    assert lapis_file.names() == ["libfoo"]


def test_remove_keeps_user_installed_dependency(lapis_file):
    lapis_file.yes("install", "libfoo")
    lapis_file.yes(NOWEAK, "install", "hello")
    doc = lapis_file.json("-y", "remove", "hello")
    assert actions(doc) == {"hello": "remove"}, doc
    assert lapis_file.names() == ["libfoo"]


def test_remove_json_actions(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    doc = lapis_file.json("-y", "erase", "hello")
    assert actions(doc) == {"hello": "remove", "libfoo": "remove-unused"}, doc
    assert doc["result"] == "ok" and doc["history_id"] == 2
    assert lapis_file.installed() == []


def test_remove_not_installed(lapis_file):
    lapis_file.yes("install", "pkga")
    r = lapis_file.run("-y", "remove", "pkgb")
    assert r.rc in (0, 1), r
    if r.rc == 1:
        assert len(r.error_lines) == 1 and "pkgb" in r.error_lines[0], r
    assert lapis_file.names() == ["pkga"]


def test_autoremove_after_mark(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello", "richdep")
    provider = [n for n in lapis_file.names() if n in ("pkga", "pkgb")]
    assert len(provider) == 1
    r = lapis_file.yes("autoremove")
    assert "Nothing to do" in r.out, r
    assert len(lapis_file.names()) == 4

    r = lapis_file.yes("mark", "remove", "hello")
    assert "1 package" in r.out, r
    assert lapis_file.sql("SELECT reason FROM reason WHERE name='hello'") == [("dependency",)]
    lapis_file.yes("mark", "install", "libfoo")
    assert lapis_file.sql("SELECT reason FROM reason WHERE name='libfoo'") == [("user",)]

    r = lapis_file.yes("autoremove")
    assert section(r.out, "Removing unused dependencies:") == ["hello"], r
    # libfoo is user-installed now; richdep (user) still needs its provider
    assert lapis_file.names() == sorted(["libfoo", "richdep"] + provider)


def test_autoremove_json(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    lapis_file.yes("mark", "remove", "hello")
    doc = lapis_file.json("-y", "autoremove")
    assert actions(doc) == {"hello": "remove-unused", "libfoo": "remove-unused"}, doc
    assert lapis_file.installed() == []


def test_mark_unknown_package(lapis_file):
    lapis_file.yes("install", "pkga")
    r = lapis_file.run("mark", "install", "pkgb")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "pkgb" in r.error_lines[0], r


# ---- upgrade, downgrade, distro-sync -----------------------------------------

def test_upgrade_one_then_all(lapis_file):
    lapis_file.yes(BASE_ONLY, "install", "hello", "glibc", "openssl", "systemd")
    assert lapis_file.installed() == [
        "glibc-0:1.0-1.x86_64", "hello-0:1.0-1.x86_64", "libfoo-0:1.0-1.x86_64",
        "openssl-0:1.0-1.x86_64", "systemd-0:1.0-1.x86_64",
        "weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]
    doc = lapis_file.json("-y", "upgrade", "openssl")
    assert [(nevra(p), p["action"], p["replaces"]["version"]) for p in doc["transaction"]] == [
        ("openssl-1.1-1.x86_64", "upgrade", "1.0")]
    assert "1.1-1" in (lapis_file.root / "usr/share/openssl/VERSION").read_text()
    assert "glibc-0:1.0-1.x86_64" in lapis_file.installed()

    r = lapis_file.yes("update")
    assert sorted(section(r.out, "Upgrading:")) == ["glibc", "hello", "libfoo", "systemd"], r
    assert lapis_file.installed() == [
        "glibc-0:1.1-1.x86_64", "hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64",
        "openssl-0:1.1-1.x86_64", "systemd-0:1.1-1.x86_64",
        "weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]
    assert "hello 2.1-1" in (lapis_file.root / "usr/bin/hello").read_text()
    r = lapis_file.yes("upgrade")
    assert "Nothing to do" in r.out, r


def test_upgrade_to_specific_version(lapis_file):
    lapis_file.yes(BASE_ONLY, NOWEAK, "install", "hello")
    lapis_file.yes(NOWEAK, "upgrade", "hello-2.0")
    assert "hello-0:2.0-1.x86_64" in lapis_file.installed()


def test_downgrade(lapis_file):
    lapis_file.yes("install", "hello")
    doc = lapis_file.json("-y", "downgrade", "hello")
    assert [(nevra(p), p["action"], nevra(p["replaces"])) for p in doc["transaction"]
            if p["name"] == "hello"] == [("hello-2.0-1.x86_64", "downgrade", "hello-2.1-1.x86_64")]
    assert "hello-0:2.0-1.x86_64" in lapis_file.installed()
    r = lapis_file.yes("downgrade", "hello")
    assert section(r.out, "Downgrading:") == ["hello"], r
    assert "hello-0:1.0-1.x86_64" in lapis_file.installed()
    assert "hello 1.0-1" in (lapis_file.root / "usr/bin/hello").read_text()
    assert "libfoo-0:1.1-1.x86_64" in lapis_file.installed()
    r = lapis_file.run("-y", "downgrade", "hello")
    assert r.rc in (0, 1), r   # nothing lower than 1.0: no change either way
    assert "hello-0:1.0-1.x86_64" in lapis_file.installed()


def test_downgrade_to_specific_version(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    lapis_file.yes(NOWEAK, "downgrade", "hello-1.0")
    assert lapis_file.installed() == ["hello-0:1.0-1.x86_64", "libfoo-0:1.1-1.x86_64"]


def test_distro_sync_returns_to_repo_versions(lapis_file):
    lapis_file.yes("install", "hello", "epochpkg")
    lapis_file.yes("downgrade", "hello")
    lapis_file.yes("downgrade", "hello")
    assert "hello-0:1.0-1.x86_64" in lapis_file.installed()
    lapis_file.yes("distro-sync")
    assert lapis_file.installed() == sorted(HELLO_SET + ["epochpkg-1:1.0-1.noarch"])


def test_distro_sync_touches_only_what_differs(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello", "pkga")
    lapis_file.yes(NOWEAK, "downgrade", "hello")
    doc = lapis_file.json("-y", NOWEAK, "distro-sync")
    assert actions(doc) == {"hello": "upgrade"}, doc


# ---- options -------------------------------------------------------------------

def test_downloadonly_cache(lapis_file):
    lapis_file.yes("install", "pkga")
    before, nhist = lapis_file.installed(), history_count(lapis_file)
    r = lapis_file.yes(NOWEAK, "--downloadonly", "install", "hello")
    assert "Complete!" in r.out, r
    assert lapis_file.installed() == before
    assert history_count(lapis_file) == nhist
    assert not (lapis_file.root / "usr/bin/hello").exists()
    assert cached_rpms(lapis_file) == ["hello-2.1-1.x86_64.rpm", "libfoo-1.1-1.x86_64.rpm"]
    # the next real install uses them (and, keepcache=0, then drops them)
    lapis_file.yes(NOWEAK, "install", "hello")
    assert "hello-0:2.1-1.x86_64" in lapis_file.installed()
    assert cached_rpms(lapis_file) == []


def test_downloadonly_downloaddir_json(lapis_file, tmp_path):
    dl = tmp_path / "dl"
    doc = lapis_file.json("-y", NOWEAK, "--downloadonly", "--downloaddir", dl, "install", "hello")
    assert doc["result"] == "downloaded", doc
    assert sorted(doc["downloaded"]) == [str(dl / "hello-2.1-1.x86_64.rpm"),
                                         str(dl / "libfoo-1.1-1.x86_64.rpm")]
    for p in doc["downloaded"]:
        assert os.path.getsize(p) == os.path.getsize(FIXTURES / "rpms" / os.path.basename(p))
    assert lapis_file.installed() == []
    assert history_count(lapis_file) == 0
    assert cached_rpms(lapis_file) == []


def test_downloaddir_needs_downloadonly(lapis_file, tmp_path):
    r = lapis_file.run("-y", "--downloaddir", tmp_path / "dl", "install", "pkga")
    assert r.rc == 2, r
    assert len(r.error_lines) == 1 and "--downloadonly" in r.error_lines[0], r
    assert lapis_file.installed() == []


@pytest.mark.parametrize("opt", ["--nodocs", "--no-docs"])  # dnf 4's and dnf5's spelling
def test_nodocs(lapis_file, opt):
    lapis_file.yes(NOWEAK, opt, "install", "hello")
    assert lapis_file.names() == ["hello", "libfoo"]
    assert (lapis_file.root / "usr/bin/hello").is_file()
    docs = lapis_file.root / "usr/share/doc"
    assert not docs.exists() or [p for p in docs.rglob("*") if p.is_file()] == []


def test_scriptlet_output_to_terminal(lapis_file):
    put_shell(lapis_file.root)
    r = lapis_file.yes("install", "scriptpkg")
    assert lapis_file.names() == ["lapis-sh", "scriptpkg"]
    assert "scriptlet-output-marker" in r.out, r
    assert "failed" not in r.err, r


def test_scriptlet_output_to_stderr_under_json(lapis_file):
    put_shell(lapis_file.root)
    r = lapis_file.run("-y", "--json", "install", "scriptpkg")
    assert r.rc == 0, r
    doc = r.json()  # stdout is exactly one JSON document
    assert doc["result"] == "ok"
    assert "scriptlet-output-marker" not in r.out, r
    assert "scriptlet-output-marker" in r.err, r
    assert "Bad file descriptor" not in r.err, r


def test_failing_post_scriptlet_warns(lapis_file):
    """No shell in the root: %post fails (127). As with rpm/dnf the package
    stays installed, and the failure is reported as a warning."""
    r = lapis_file.yes("install", "scriptpkg")
    assert lapis_file.names() == ["lapis-sh", "scriptpkg"]
    warn = [l for l in r.warning_lines if "scriptlet" in l and "scriptpkg" in l]
    assert warn, r
    assert r.error_lines == [], r


def test_failing_post_scriptlet_exit_status(lapis_file):
    r = lapis_file.yes("install", "scriptpkg")
    (line,) = [l for l in r.warning_lines if l.startswith("lapis: warning: a scriptlet")]
    assert "exit 0" not in line, r


def test_noscripts(lapis_file):
    put_shell(lapis_file.root)
    r = lapis_file.yes("--noscripts", "install", "scriptpkg")
    assert lapis_file.names() == ["lapis-sh", "scriptpkg"]
    assert "scriptlet-output-marker" not in r.out + r.err, r


def test_lua_scriptlet_runs_in_root(lapis_file):
    lapis_file.yes("install", "luapkg")
    assert (lapis_file.root / "var/lib/luapkg/post-ran").read_text() == "luapkg post ran\n"


def test_lua_scriptlet_noscripts(lapis_file):
    lapis_file.yes("--noscripts", "install", "luapkg")
    assert lapis_file.names() == ["luapkg"]
    assert not (lapis_file.root / "var/lib/luapkg/post-ran").exists()


def test_keepcache_off_drops_packages(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    assert lapis_file.names() == ["hello", "libfoo"]
    assert cached_rpms(lapis_file) == []
    assert list(lapis_file.cache.rglob("*.part")) == []


def test_keepcache_on_keeps_packages(lapis_file):
    lapis_file.yes(NOWEAK, "--setopt", "keepcache=1", "install", "hello")
    assert cached_rpms(lapis_file) == ["hello-2.1-1.x86_64.rpm", "libfoo-1.1-1.x86_64.rpm"]
    for p in lapis_file.cache.rglob("*.rpm"):
        assert p.read_bytes() == (FIXTURES / "rpms" / p.name).read_bytes()


def test_exclude(lapis_file):
    r = lapis_file.run("-y", "-x", "kernel*", "install", "kernel")
    assert r.rc == 1, r
    assert r.resolve_failure[0] == "No match for argument: kernel", r
    # the only provider of a dependency excluded: not installable
    r = lapis_file.run("-y", "--exclude", "hello", "install", "filedep")
    assert r.rc == 1, r
    assert lapis_file.installed() == []
    # a weak dependency excluded is simply left out
    lapis_file.yes("--exclude", "weakpkg", "install", "hello")
    assert lapis_file.names() == ["hello", "libfoo"]
    # an excluded newer version is not an upgrade candidate
    lapis_file.yes(BASE_ONLY, "install", "glibc")
    r = lapis_file.yes("--exclude", "glibc", "upgrade", "glibc")
    assert "glibc-0:1.0-1.x86_64" in lapis_file.installed()


def test_key_imported_once(lapis_file):
    r = lapis_file.yes("install", "pkga")
    fpr = dict(l.split() for l in (FIXTURES / "keys" / "fingerprints").read_text().splitlines())
    assert fpr["test"] in r.err, r
    keys = [p for p in lapis_file.rpm_qa() if p.startswith("gpg-pubkey-")]
    assert len(keys) == 1 and keys[0].startswith("gpg-pubkey-%s" % fixture_key_id()), keys
    r = lapis_file.yes("install", "pkgb")
    assert fpr["test"] not in r.err, r
    assert len([p for p in lapis_file.rpm_qa() if p.startswith("gpg-pubkey-")]) == 1


def test_key_import_notice_readable(lapis_file):
    r = lapis_file.yes("install", "pkga")
    assert "?" not in "".join(l for l in r.err.splitlines() if "Importing OpenPGP key" in l), r
    assert any(l.strip().startswith("Fingerprint") for l in r.err.splitlines()), r


def test_repo_option_accumulates(lapis_file):
    doc = lapis_file.json("-y", "--repo", "base", "--repo", "updates", NOWEAK, "install", "hello")
    assert {p["repo"] for p in doc["transaction"]} == {"updates"}
    lapis_file.yes("--repo", "base", "--repo", "updates", "install", "pkga")
    assert "pkga" in lapis_file.names()


def test_json_error_on_failed_resolution(lapis_file):
    lapis_file.yes(NOWEAK, "install", "hello")
    r = lapis_file.run("--json", "-y", "install", "conflictor")
    assert r.rc == 1, r
    err = r.json()["error"]
    assert "--allowerasing" in err["message"] and err["code"], r
    assert lapis_file.names() == ["hello", "libfoo"]


# ---- the same requests through dnf ----------------------------------------------

DNF = shutil.which("dnf")

DNF_SCENARIOS = [
    pytest.param([("install", "hello")], id="install-hello"),
    pytest.param([("install", "needs-mta")], id="install-needs-mta"),
    pytest.param([("install", "libfoo", "epochpkg", "richdep")], id="multilib-epoch-rich"),
    pytest.param([(BASE_ONLY, "install", "hello", "oldname", "kernel"), ("upgrade",)],
                 id="upgrade-from-base"),
    pytest.param([(BASE_ONLY, NOWEAK, "install", "hello"), ("upgrade",)],
                 id="upgrade-from-base-noweak"),
    pytest.param([(NOWEAK, "install", "filedep", "pkga"), ("remove", "libfoo")],
                 id="remove-with-dependents"),
    pytest.param([(NOWEAK, "install", "hello", "pkga"), ("remove", "hello")],
                 id="remove-clean-requirements"),
    pytest.param([("install", "kernel-5.0.0", "kernel-5.1.0"),
                  ("--setopt=installonly_limit=2", "upgrade")],
                 id="installonly-limit-upgrade"),
]


def dnf_installed(lapis, steps):
    root, cache = lapis.tmp / "dnfroot", lapis.tmp / "dnfcache"
    for step in steps:
        r = run_cmd([DNF, "-y", "-q", "--installroot=%s" % root,
                     "--setopt=reposdir=%s" % lapis.reposd, "--setopt=cachedir=%s" % cache,
                     "--releasever=1"] + list(step), env=lapis.env, timeout=120)
        assert r.rc == 0, r
    # dnf's rpm uses the host's %_dbpath inside the root (Debian: ~/.rpmdb)
    dbs = files_named(root, "rpmdb.sqlite")
    assert len(dbs) == 1, dbs
    dbpath = "/" + os.path.relpath(os.path.dirname(dbs[0]), root)
    r = run_cmd(["rpm", "--root", root, "--dbpath", dbpath, "-qa", "--qf", NEVRA_QF], env=lapis.env)
    assert r.rc == 0, r
    return sorted(l for l in r.out.split() if not l.startswith("gpg-pubkey-"))


@pytest.mark.skipif(not DNF, reason="dnf is not installed")
@pytest.mark.parametrize("steps", DNF_SCENARIOS)
def test_same_result_as_dnf(lapis_file, steps):
    for step in steps:
        lapis_file.yes(*step)
    mine = lapis_file.installed()
    assert mine, "lapis installed nothing"
    assert mine == dnf_installed(lapis_file, steps)


def test_failing_scriptlet_warning_names_package(lapis_file):
    """lapis's own warning line names the package whose scriptlet failed."""
    r = lapis_file.yes("install", "scriptpkg")
    (line,) = [l for l in r.warning_lines if l.startswith("lapis: warning: a scriptlet")]
    assert "%post of scriptpkg-1.0-1.noarch" in line, r
    assert "(null)" not in r.err, r
