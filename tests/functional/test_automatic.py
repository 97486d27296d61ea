"""`lapis automatic` (the unattended update run, dnf-automatic's job) and
`lapis needs-restarting` against real install roots.

Every run is checked where it matters: the root's rpmdb (through the real
rpm), the history database, the download cache, the reboot-required sentinel,
what the reboot command did (a fake one that appends to a log), and the report
each emitter writes (stdio, motd, json:/PATH, global --json)."""

import json
import mmap  # noqa: F401  (the stale-process child uses it; fail early if missing)
import os
import re
import shlex
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import DEAD_URL, write_repo

SETUP_PKGS = ("hello-1.0", "openssl-1.0", "kernel-5.0.0", "glibc-1.0", "systemd-1.0", "libfoo-1.0")

# hello's weak dependencies come along with the first install (and are not updated)
WEAK = ["weakdep-rec-0:1.0-1.noarch", "weakpkg-0:1.0-1.noarch"]
BASE_SET = sorted(["glibc-0:1.0-1.x86_64", "hello-0:1.0-1.x86_64", "kernel-0:5.0.0-1.x86_64",
                   "libfoo-0:1.0-1.x86_64", "openssl-0:1.0-1.x86_64",
                   "systemd-0:1.0-1.x86_64"] + WEAK)
DEFAULT_AFTER = sorted(["glibc-0:1.1-1.x86_64", "hello-0:2.1-1.x86_64", "kernel-0:5.0.0-1.x86_64",
                        "kernel-0:5.2.0-1.x86_64", "libfoo-0:1.1-1.x86_64",
                        "openssl-0:1.1-1.x86_64", "systemd-0:1.1-1.x86_64"] + WEAK)
SECURITY_AFTER = sorted(["glibc-0:1.1-1.x86_64", "hello-0:2.1-1.x86_64",
                         "kernel-0:5.0.0-1.x86_64", "kernel-0:5.2.0-1.x86_64",
                         "libfoo-0:1.0-1.x86_64", "openssl-0:1.1-1.x86_64",
                         "systemd-0:1.0-1.x86_64"] + WEAK)
HELLO_BEFORE = sorted(["hello-0:1.0-1.x86_64", "libfoo-0:1.0-1.x86_64"] + WEAK)
HELLO_AFTER = sorted(["hello-0:2.1-1.x86_64", "libfoo-0:1.1-1.x86_64"] + WEAK)
AFTER = {"default": DEFAULT_AFTER, "security": SECURITY_AFTER}

# (action, name, arch, evr, from_evr, repo) of every update, sorted by name
DEFAULT_UPDATES = [
    ("upgrade", "glibc", "x86_64", "1.1-1", "1.0-1", "updates"),
    ("upgrade", "hello", "x86_64", "2.1-1", "1.0-1", "updates"),
    ("install", "kernel", "x86_64", "5.2.0-1", None, "updates"),
    ("upgrade", "libfoo", "x86_64", "1.1-1", "1.0-1", "updates"),
    ("upgrade", "openssl", "x86_64", "1.1-1", "1.0-1", "updates"),
    ("upgrade", "systemd", "x86_64", "1.1-1", "1.0-1", "updates"),
]
SECURITY_UPDATES = [u for u in DEFAULT_UPDATES if u[1] not in ("libfoo", "systemd")]
UPDATES = {"default": DEFAULT_UPDATES, "security": SECURITY_UPDATES}

ALL_ADVISORIES = ["LAPIS-2026-0001", "LAPIS-2026-0002", "LAPIS-2026-0003",
                  "LAPIS-2026-0004", "LAPIS-2026-0005", "LAPIS-2026-0006"]
SECURITY_ADVISORIES = ["LAPIS-2026-0001", "LAPIS-2026-0002", "LAPIS-2026-0005",
                       "LAPIS-2026-0006"]
ADVISORIES = {"default": ALL_ADVISORIES, "security": SECURITY_ADVISORIES}

REBOOT_PKGS = {"default": ["glibc", "kernel", "openssl", "systemd"],
               "security": ["glibc", "kernel", "openssl"]}
CMDLINE = {"default": "automatic", "security": "automatic (upgrade_type=security)"}
RPMS = {t: sorted("%s-%s.%s.rpm" % (u[1], u[3], u[2]) for u in UPDATES[t]) for t in UPDATES}

REPORT_KEYS = {"system_name", "time", "upgrade_type", "status", "updates", "advisories",
               "reboot_required", "reboot_pkgs", "reboot", "history_id"}
SENTINEL_TEXT = "*** System restart required ***\n"


# ---- helpers ------------------------------------------------------------------

def setup_root(lapis, pkgs=SETUP_PKGS):
    lapis.yes("--repo", "base", "install", *pkgs)
    return lapis


def report_path(lapis):
    return lapis.tmp / "report.json"


def reboot_log(lapis):
    return lapis.tmp / "reboot.log"


def write_conf(lapis, commands=None, emitters=None, base=None, text=None, name="automatic.conf"):
    """An automatic.conf in tmp_path. Unless told otherwise the report goes to
    stdio and to json:TMP/report.json, and reboot_command appends to TMP/reboot.log."""
    path = lapis.tmp / name
    if text is None:
        cmds = {"reboot_command": "echo rebooted >> %s" % shlex.quote(str(reboot_log(lapis)))}
        cmds.update(commands or {})
        emits = {"emit_via": "stdio json:%s" % report_path(lapis)}
        emits.update(emitters or {})
        lines = ["[commands]"] + ["%s = %s" % kv for kv in cmds.items()]
        lines += ["", "[emitters]"] + ["%s = %s" % kv for kv in emits.items()]
        if base:
            lines += ["", "[base]"] + ["%s = %s" % kv for kv in base.items()]
        text = "\n".join(lines) + "\n"
    path.write_text(text)
    return path


def automatic(lapis, conf, *args, **kw):
    return lapis.run(*args, "automatic", "-c", conf, **kw)


def report(lapis):
    assert report_path(lapis).exists(), "the json emitter wrote no report"
    return json.loads(report_path(lapis).read_text())


def updates(doc):
    return sorted(((u["action"], u["name"], u["arch"], u["evr"], u["from_evr"], u["repo"])
                   for u in doc["updates"]), key=lambda u: (u[1], u[2], u[3]))


def reboots(lapis):
    p = reboot_log(lapis)
    return p.read_text().splitlines() if p.exists() else []


def history_rows(lapis):
    if not lapis.history_db().exists():
        return []
    return lapis.sql("SELECT id, cmdline, result FROM trans ORDER BY id")


def cached_rpms(lapis):
    """Names of the package files in the cache's per-repo packages/ dirs."""
    if not lapis.cache.is_dir():
        return []
    return sorted(p.name for p in lapis.cache.glob("*/packages/*.rpm"))


def sentinel(lapis, where="var/run"):
    return lapis.root / where / "reboot-required"


def sentinel_pkgs(lapis, where="var/run"):
    return lapis.root / where / "reboot-required.pkgs"


def snapshot(lapis):
    return lapis.rpm_qa(), history_rows(lapis)


# ---- automatic.conf: malformed files are refused, nothing is touched ------------

BAD_CONFS = [
    # (id, text, line number of the bad line, words the error must carry)
    ("garbled", "[commands]\napply_updates = yes\nthis is not ini\n", 3, []),
    ("unknown-key", "[commands]\napply_update = yes\n", 2, ["apply_update"]),
    ("upgrade-type", "[commands]\napply_updates = yes\nupgrade_type = sometimes\n", 3,
     ["sometimes", "upgrade_type"]),
    ("reboot-always", "[commands]\napply_updates = yes\nreboot = always\n", 3,
     ["always", "reboot"]),
    ("bool-maybe", "[commands]\ndownload_updates = yes\napply_updates = maybe\n", 3,
     ["maybe", "apply_updates"]),
    ("sleep-negative", "[commands]\napply_updates = yes\nrandom_sleep = -5\n", 3,
     ["-5", "random_sleep"]),
    ("sleep-abc", "[commands]\napply_updates = yes\nrandom_sleep = abc\n", 3,
     ["abc", "random_sleep"]),
    ("key-before-section", "apply_updates = yes\n[commands]\napply_updates = yes\n", 1,
     ["apply_updates"]),
    ("emit-email", "[commands]\napply_updates = yes\n[emitters]\nemit_via = stdio, email\n", 4,
     ["email", "stdio", "motd", "json:/PATH"]),
    ("emit-json-relative",
     "[commands]\napply_updates = yes\n[emitters]\nemit_via = json:relative/path\n", 4,
     ["json:relative/path"]),
]


@pytest.mark.parametrize("text,lineno,words", [b[1:] for b in BAD_CONFS],
                         ids=[b[0] for b in BAD_CONFS])
def test_malformed_conf_refused(lapis_file, text, lineno, words):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    before = snapshot(lapis)
    conf = write_conf(lapis, text=text)
    r = automatic(lapis, conf)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    err = r.error_lines[0]
    assert "%s:%d:" % (conf, lineno) in err, r
    for w in words:
        assert w in err, r
    assert r.out == "", r
    assert snapshot(lapis) == before
    assert cached_rpms(lapis) == []
    assert not (lapis.tmp / "relative").exists()


def test_unknown_emitter_error_names_the_supported_ones(lapis_file):
    conf = write_conf(lapis_file, text="[emitters]\nemit_via = email\n")
    r = automatic(lapis_file, conf)
    assert r.rc == 1, r
    assert r.error_lines == [r.error_lines[0]], r
    assert re.search(r"unknown emitter 'email'.*stdio, motd and json:/PATH", r.error_lines[0]), r


def test_bad_base_value_refused_naming_file_and_line(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    before = snapshot(lapis)
    conf = write_conf(lapis, text="[commands]\napply_updates = yes\n\n[base]\nbest = notabool\n")
    r = automatic(lapis, conf)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    err = r.error_lines[0]
    assert "[base]" in err and "notabool" in err, r
    assert "%s:5:" % conf in err, r
    assert snapshot(lapis) == before


def test_unknown_base_option_refused_naming_file(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    before = snapshot(lapis)
    conf = write_conf(lapis, text="[commands]\napply_updates = yes\n[base]\nnosuchopt = 1\n")
    r = automatic(lapis, conf)
    assert r.rc == 1 and len(r.error_lines) == 1, r
    assert "nosuchopt" in r.error_lines[0] and "[base]" in r.error_lines[0], r
    assert "%s:4:" % conf in r.error_lines[0], r
    assert snapshot(lapis) == before


def test_bad_base_value_refused(lapis_file):
    """What does hold today: exit 1, one error naming the value, root untouched."""
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    before = snapshot(lapis)
    conf = write_conf(lapis, text="[commands]\napply_updates = yes\n[base]\nbest = notabool\n")
    r = automatic(lapis, conf)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "notabool" in r.error_lines[0], r
    assert snapshot(lapis) == before
    assert not report_path(lapis).exists()


def test_missing_conf_file_is_an_error(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    before = snapshot(lapis)
    missing = lapis.tmp / "no-such-automatic.conf"
    r = automatic(lapis, missing)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and str(missing) in r.error_lines[0], r
    assert snapshot(lapis) == before


@pytest.mark.skipif(os.path.exists("/etc/lapis/automatic.conf"),
                    reason="the host has an /etc/lapis/automatic.conf")
def test_missing_default_conf_means_defaults(lapis_file):
    """No -c and no /etc/lapis/automatic.conf: download yes, apply no, stdio."""
    lapis = setup_root(lapis_file)
    before = snapshot(lapis)
    r = lapis.run("automatic")
    assert r.rc == 0, r
    assert r.out_lines[0] == "The following updates have been downloaded on '%s':" % \
        socket.gethostname(), r
    assert cached_rpms(lapis) == RPMS["default"]
    assert snapshot(lapis) == before
    assert not sentinel(lapis).exists()


def test_arguments_refused(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes"})
    r = lapis.run("automatic", "-c", conf, "hello")
    assert r.rc == 2 and len(r.error_lines) == 1, r
    assert lapis.installed() == HELLO_BEFORE


def test_dnf_automatic_sections_are_accepted(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    text = textwrap.dedent("""\
        # dnf-automatic's own file, as shipped
        [commands]
        upgrade_type = default
        random_sleep = 0
        network_online_timeout = 60
        download_updates = yes
        apply_updates = no

        [emitters]
        emit_via = json:%s
        system_name = host-a

        [email]
        email_from = root@example.com
        email_to = root
        email_host = localhost

        [command]
        command_format = "cat"

        [command_email]
        email_from = root@example.com

        [base]
        keepcache = 0
        """) % report_path(lapis)
    conf = write_conf(lapis, text=text)
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["system_name"] == "host-a"
    assert doc["status"] == "downloaded"
    assert [u[1] for u in updates(doc)] == ["hello", "libfoo"]


# ---- the run: available / downloaded / applied / none ----------------------------

def test_available_downloads_nothing(lapis_file):
    lapis = setup_root(lapis_file)
    before = snapshot(lapis)
    conf = write_conf(lapis, {"download_updates": "no", "apply_updates": "no"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["status"] == "available"
    assert updates(doc) == DEFAULT_UPDATES
    assert doc["advisories"] == ALL_ADVISORIES
    assert doc["history_id"] is None and doc["reboot"] == "not-needed"
    assert doc["reboot_required"] is False and doc["reboot_pkgs"] == []
    assert cached_rpms(lapis) == []
    assert snapshot(lapis) == before
    assert r.out_lines[0] == "The following updates are available on '%s':" % doc["system_name"]


def test_downloaded_keeps_root(lapis):
    """Both transports: the packages land in the cache, the root is untouched."""
    setup_root(lapis)
    before = snapshot(lapis)
    conf = write_conf(lapis, {"download_updates": "yes", "apply_updates": "no"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["status"] == "downloaded"
    assert updates(doc) == DEFAULT_UPDATES
    assert cached_rpms(lapis) == RPMS["default"]
    assert all(p.parent.parent.name.startswith("updates-")
               for p in lapis.cache.glob("*/packages/*.rpm"))
    assert snapshot(lapis) == before
    assert doc["history_id"] is None
    assert not sentinel(lapis).exists() and reboots(lapis) == []


@pytest.mark.parametrize("upgrade_type", ["default", "security"])
def test_apply(lapis, upgrade_type):
    """Both transports: the updates are installed, the history records them."""
    setup_root(lapis)
    rows = history_rows(lapis)
    conf = write_conf(lapis, {"upgrade_type": upgrade_type, "apply_updates": "yes"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    assert lapis.installed() == AFTER[upgrade_type]
    doc = report(lapis)
    assert doc["status"] == "applied" and doc["upgrade_type"] == upgrade_type
    assert updates(doc) == UPDATES[upgrade_type]
    assert doc["advisories"] == ADVISORIES[upgrade_type]
    new = history_rows(lapis)
    assert new[:-1] == rows and len(new) == len(rows) + 1
    assert new[-1][1:] == (CMDLINE[upgrade_type], "ok")
    assert doc["history_id"] == new[-1][0]
    assert sorted(doc["reboot_pkgs"]) == REBOOT_PKGS[upgrade_type]
    assert doc["reboot_required"] is True
    assert sentinel(lapis).read_text() == SENTINEL_TEXT
    assert sorted(sentinel_pkgs(lapis).read_text().splitlines()) == REBOOT_PKGS[upgrade_type]
    assert sentinel_pkgs(lapis).read_text().endswith("\n")


def test_security_leaves_non_security_packages(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"upgrade_type": "security", "download_updates": "no"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["status"] == "available" and doc["upgrade_type"] == "security"
    names = [u["name"] for u in doc["updates"]]
    assert "libfoo" not in names and "systemd" not in names, doc
    kernel = [u for u in doc["updates"] if u["name"] == "kernel"]
    assert kernel == [{"action": "install", "name": "kernel", "arch": "x86_64", "evr": "5.2.0-1",
                       "from_evr": None, "repo": "updates"}]
    assert "LAPIS-2026-0003" not in doc["advisories"] and "LAPIS-2026-0004" not in doc["advisories"]


def test_security_none_when_only_bugfixes_pending(lapis_file):
    lapis = setup_root(lapis_file, ("libfoo-1.0", "systemd-1.0"))
    before = snapshot(lapis)
    conf = write_conf(lapis, {"upgrade_type": "security", "apply_updates": "yes",
                              "reboot": "when-changed"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["status"] == "none" and doc["updates"] == [] and doc["advisories"] == []
    assert snapshot(lapis) == before
    assert reboots(lapis) == []
    # the default type does see them
    conf = write_conf(lapis, {"upgrade_type": "default", "download_updates": "no"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["status"] == "available"
    assert sorted(u["name"] for u in doc["updates"]) == ["libfoo", "systemd"]
    assert doc["advisories"] == ["LAPIS-2026-0003", "LAPIS-2026-0004"]


def test_apply_without_download_still_applies(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"download_updates": "no", "apply_updates": "yes"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    assert report(lapis)["status"] == "applied"
    assert lapis.installed() == DEFAULT_AFTER


def test_none_when_up_to_date(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-changed"})
    assert automatic(lapis, conf).rc == 0
    assert reboots(lapis) == ["rebooted"]
    before = snapshot(lapis)
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["status"] == "none"
    assert doc["updates"] == [] and doc["advisories"] == [] and doc["history_id"] is None
    assert doc["reboot"] == "not-needed" and doc["reboot_required"] is False
    assert r.out == "No updates are available on '%s'.\n" % doc["system_name"], r
    assert snapshot(lapis) == before
    assert reboots(lapis) == ["rebooted"]      # when-changed: nothing changed this time


def test_none_on_empty_root(lapis_file):
    conf = write_conf(lapis_file, {"apply_updates": "yes"}, {"system_name": "empty-box"})
    r = automatic(lapis_file, conf)
    assert r.rc == 0, r
    assert r.out == "No updates are available on 'empty-box'.\n", r
    assert report(lapis_file)["status"] == "none"
    assert lapis_file.installed() == []


def test_base_section_overrides_main_options(lapis_file):
    """[base] keepcache = yes keeps the applied packages; exclude= hides one."""
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes"}, base={"keepcache": "yes"})
    assert automatic(lapis, conf).rc == 0
    assert lapis.installed() == HELLO_AFTER
    assert cached_rpms(lapis) == ["hello-2.1-1.x86_64.rpm", "libfoo-1.1-1.x86_64.rpm"]


def test_apply_without_keepcache_cleans_cache(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes"})
    assert automatic(lapis, conf).rc == 0
    assert lapis.installed() == HELLO_AFTER
    assert cached_rpms(lapis) == []


# ---- reboot-required sentinel ------------------------------------------------------

def test_no_sentinel_when_nothing_core_applied(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-needed"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert doc["status"] == "applied"
    assert doc["reboot_required"] is False and doc["reboot_pkgs"] == []
    assert doc["reboot"] == "not-needed"
    assert not sentinel(lapis).exists() and not sentinel_pkgs(lapis).exists()
    assert reboots(lapis) == []
    assert lapis.installed() == HELLO_AFTER


def test_no_sentinel_when_only_downloaded(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"apply_updates": "no", "reboot": "when-needed"})
    assert automatic(lapis, conf).rc == 0
    assert not sentinel(lapis).exists() and not (lapis.root / "run" / "reboot-required").exists()


def _var_run_symlink(lapis):
    (lapis.root / "var").mkdir(parents=True, exist_ok=True)
    os.symlink("/run", lapis.root / "var" / "run")


def test_sentinel_follows_absolute_var_run_symlink_inside_root(lapis_file):
    host = "/run/reboot-required"
    host_before = os.path.lexists(host)
    lapis = lapis_file
    _var_run_symlink(lapis)
    setup_root(lapis)
    conf = write_conf(lapis, {"apply_updates": "yes"})
    r = automatic(lapis, conf)
    try:
        assert os.path.lexists(host) == host_before, "the host's /run was written"
        assert r.rc == 0, r
        assert lapis.installed() == DEFAULT_AFTER
        assert report(lapis)["status"] == "applied"
        assert os.path.islink(lapis.root / "var" / "run")
        assert (lapis.root / "run" / "reboot-required").read_text() == SENTINEL_TEXT
        assert sorted((lapis.root / "run" / "reboot-required.pkgs").read_text().split()) == \
            REBOOT_PKGS["default"]
    finally:
        assert os.path.lexists(host) == host_before


def test_sentinel_never_escapes_to_host_run(lapis_file):
    """Whatever else happens, an absolute /var/run -> /run link in the root never
    leads lapis to the host's /run; the updates themselves are installed."""
    hosts = ("/run/reboot-required", "/run/reboot-required.pkgs")
    before = [os.path.lexists(h) for h in hosts]
    lapis = lapis_file
    _var_run_symlink(lapis)
    setup_root(lapis)
    conf = write_conf(lapis, {"apply_updates": "yes"})
    automatic(lapis, conf)
    assert [os.path.lexists(h) for h in hosts] == before
    assert os.readlink(lapis.root / "var" / "run") == "/run"
    assert lapis.installed() == DEFAULT_AFTER


def test_sentinel_via_symlink_when_root_run_exists(lapis_file):
    lapis = lapis_file
    _var_run_symlink(lapis)
    (lapis.root / "run").mkdir()
    host_before = os.path.lexists("/run/reboot-required")
    setup_root(lapis)
    conf = write_conf(lapis, {"upgrade_type": "security", "apply_updates": "yes"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    assert (lapis.root / "run" / "reboot-required").read_text() == SENTINEL_TEXT
    assert sorted((lapis.root / "run" / "reboot-required.pkgs").read_text().split()) == \
        REBOOT_PKGS["security"]
    assert os.path.lexists("/run/reboot-required") == host_before


# ---- reboot policy ---------------------------------------------------------------

@pytest.mark.parametrize("reboot", ["never", "when-changed", "when-needed"])
@pytest.mark.parametrize("apply", ["no", "yes"])
@pytest.mark.parametrize("upgrade_type", ["default", "security"])
def test_reboot_policy(lapis_file, upgrade_type, apply, reboot):
    lapis = setup_root(lapis_file)
    before = snapshot(lapis)
    conf = write_conf(lapis, {"upgrade_type": upgrade_type, "download_updates": "yes",
                              "apply_updates": apply, "reboot": reboot})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    doc = report(lapis)
    assert updates(doc) == UPDATES[upgrade_type]
    if apply == "no":
        assert doc["status"] == "downloaded"
        assert snapshot(lapis) == before
        assert cached_rpms(lapis) == RPMS[upgrade_type]
        assert reboots(lapis) == []
        assert doc["reboot"] == "not-needed"
        assert doc["reboot_required"] is False and doc["reboot_pkgs"] == []
        assert not sentinel(lapis).exists()
        return
    assert doc["status"] == "applied"
    assert lapis.installed() == AFTER[upgrade_type]
    assert doc["reboot_required"] is True
    assert sorted(doc["reboot_pkgs"]) == REBOOT_PKGS[upgrade_type]
    assert sentinel(lapis).read_text() == SENTINEL_TEXT
    if reboot == "never":
        assert reboots(lapis) == []
        assert doc["reboot"] == "never"
    else:
        assert reboots(lapis) == ["rebooted"]
        assert doc["reboot"] == "scheduled"


def test_when_needed_not_run_for_non_core_updates(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-needed"})
    assert automatic(lapis, conf).rc == 0
    assert lapis.installed() == HELLO_AFTER
    assert reboots(lapis) == []
    assert report(lapis)["reboot"] == "not-needed"


def test_when_changed_runs_for_non_core_updates(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-changed"})
    assert automatic(lapis, conf).rc == 0
    assert reboots(lapis) == ["rebooted"]
    doc = report(lapis)
    assert doc["reboot"] == "scheduled" and doc["reboot_required"] is False
    assert not sentinel(lapis).exists()


def test_failing_reboot_command(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-needed",
                              "reboot_command": "exit 3"})
    r = automatic(lapis, conf)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "reboot command" in r.error_lines[0], r
    doc = report(lapis)
    assert doc["reboot"] == "failed"
    assert isinstance(doc["history_id"], int) and doc["history_id"] == history_rows(lapis)[-1][0]
    assert lapis.installed() == DEFAULT_AFTER
    assert sentinel(lapis).read_text() == SENTINEL_TEXT


def test_reboot_command_runs_on_host_shell(lapis_file):
    """reboot_command is a /bin/sh -c command line: pipes and quoting work."""
    lapis = setup_root(lapis_file, ("glibc-1.0",))
    out = lapis.tmp / "cmd.out"
    cmd = "printf '%%s|%%s\\n' 'a b' \"$((1+2))\" | tr a A > %s" % shlex.quote(str(out))
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-needed",
                              "reboot_command": cmd})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    assert out.read_text() == "A b|3\n"
    assert report(lapis)["reboot"] == "scheduled"


# ---- emitters --------------------------------------------------------------------

def test_stdio_text(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"upgrade_type": "security", "apply_updates": "yes"},
                      {"system_name": "web-01"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    lines = r.out_lines
    assert lines[0] == "The following updates have been applied on 'web-01':", r
    body = [l for l in lines[1:] if l.startswith("  ")]
    assert len(body) == len(SECURITY_UPDATES), r
    for action, name, arch, evr, from_evr, repo in SECURITY_UPDATES:
        hits = [l for l in body if " %s.%s " % (name, arch) in l]
        assert len(hits) == 1, r
        assert hits[0].split()[0] == action and evr in hits[0] and repo in hits[0], r
        if from_evr:
            assert from_evr in hits[0], r
    for adv in SECURITY_ADVISORIES:
        assert adv in r.out, r
    assert "LAPIS-2026-0003" not in r.out


def test_motd_matches_stdio(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"download_updates": "no"},
                      {"emit_via": "stdio,motd", "system_name": "motd-box"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    motd = lapis.root / "etc" / "motd.d" / "lapis-automatic"
    text = motd.read_text()
    assert text == r.out
    assert text.startswith("The following updates are available on 'motd-box':\n")
    assert not report_path(lapis).exists()     # no json emitter configured


def test_motd_only_prints_nothing(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes"}, {"emit_via": "motd", "system_name": "m"})
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    assert r.out == ""
    text = (lapis.root / "etc" / "motd.d" / "lapis-automatic").read_text()
    assert text.startswith("The following updates have been applied on 'm':\n")
    assert "hello.x86_64" in text and "libfoo.x86_64" in text


def test_json_emitter_document(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"apply_updates": "yes"}, {"emit_via": "json:%s" % report_path(lapis)})
    t0 = time.time()
    r = automatic(lapis, conf)
    assert r.rc == 0, r
    assert r.out == ""
    doc = report(lapis)
    assert set(doc) == REPORT_KEYS, doc
    assert doc["system_name"] == socket.gethostname()
    assert isinstance(doc["time"], int) and t0 - 5 <= doc["time"] <= time.time() + 5
    assert doc["upgrade_type"] == "default" and doc["status"] == "applied"
    for u in doc["updates"]:
        assert set(u) == {"action", "name", "arch", "evr", "from_evr", "repo"}, u
    assert updates(doc) == DEFAULT_UPDATES
    assert doc["advisories"] == ALL_ADVISORIES
    assert doc["reboot"] == "never"
    assert isinstance(doc["history_id"], int)


def test_global_json_prints_the_report(lapis_file):
    lapis = setup_root(lapis_file)
    conf = write_conf(lapis, {"upgrade_type": "security", "download_updates": "no"},
                      {"system_name": "j"})
    r = automatic(lapis, conf, "--json")
    assert r.rc == 0, r
    doc = r.json()
    assert "The following" not in r.out
    assert doc == report(lapis)
    assert doc["status"] == "available" and doc["upgrade_type"] == "security"
    assert doc["system_name"] == "j"
    assert updates(doc) == SECURITY_UPDATES


def test_several_json_emitters(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    other = lapis.tmp / "second.json"
    conf = write_conf(lapis, {"download_updates": "no"},
                      {"emit_via": "json:%s, json:%s" % (report_path(lapis), other)})
    r = automatic(lapis, conf)
    assert r.rc == 0 and r.out == "", r
    assert json.loads(other.read_text()) == report(lapis)


# ---- --timer and random_sleep -------------------------------------------------------

def test_random_sleep_ignored_without_timer(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"random_sleep": "3600", "download_updates": "no"})
    r = automatic(lapis, conf, timeout=60)
    assert r.rc == 0, r
    assert r.elapsed < 30, r.elapsed
    assert report(lapis)["status"] == "available"


@pytest.mark.serial   # wall time: not beside other tests
def test_timer_applies_random_sleep(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"download_updates": "no"})
    base = automatic(lapis, conf)
    assert base.rc == 0, base
    conf = write_conf(lapis, {"random_sleep": "2", "download_updates": "no"})
    r = lapis.run("automatic", "--timer", "-c", conf)
    assert r.rc == 0, r
    assert report(lapis)["status"] == "available"
    assert r.elapsed <= base.elapsed + 2 + 2.5, (r.elapsed, base.elapsed)
    m = re.search(r"Waiting (\d+) s", r.err)
    if m:
        assert r.elapsed >= int(m.group(1)) - 0.1, (r.elapsed, r.err)


def test_timer_waits_before_touching_the_root(lapis_file):
    """random_sleep = 604800 with --timer: the run is still asleep after 3 s (the
    odds of a draw under 3 s are 3 in 604801) and has changed nothing yet."""
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    before = snapshot(lapis)
    conf = write_conf(lapis, {"random_sleep": "604800", "apply_updates": "yes"})
    with pytest.raises(subprocess.TimeoutExpired):
        lapis.run("automatic", "--timer", "-c", conf, timeout=3)
    assert snapshot(lapis) == before
    assert not report_path(lapis).exists()


def test_timer_with_zero_sleep(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    conf = write_conf(lapis, {"apply_updates": "yes"})
    r = lapis.run("automatic", "--timer", "-c", conf)
    assert r.rc == 0, r
    assert r.elapsed < 20
    assert lapis.installed() == HELLO_AFTER


# ---- failing runs ----------------------------------------------------------------

def test_failed_run_dead_repo(lapis_file):
    lapis = setup_root(lapis_file)
    before = snapshot(lapis)
    rd = write_repo(lapis.tmp / "dead.d", "dead", DEAD_URL + "/x", skip_if_unavailable=0)
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-changed"},
                      base={"reposdir": rd, "retries": "0"})
    r = automatic(lapis, conf)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "dead" in r.error_lines[0], r
    doc = report(lapis)
    assert doc["status"] == "failed"
    assert isinstance(doc["error"], str) and "dead" in doc["error"]
    assert doc["updates"] == [] and doc["history_id"] is None
    assert snapshot(lapis) == before
    assert reboots(lapis) == []
    assert "failed" in r.out, r    # the stdio emitter reports the failure too


def test_failed_run_dead_repo_honours_repo_retries(lapis_file):
    lapis = lapis_file
    rd = write_repo(lapis.tmp / "dead.d", "dead", DEAD_URL + "/x", skip_if_unavailable=0,
                    retries=0)
    conf = write_conf(lapis, {"apply_updates": "yes"}, base={"reposdir": rd})
    try:
        r = automatic(lapis, conf, timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("a dead repo with retries=0 still failing after 10 s") from None
    assert r.rc == 1, r
    assert report(lapis)["status"] == "failed"


def test_failed_run_part_in_the_way(lapis_file):
    """A directory where an update's .part goes: the run ends (bounded by a
    timeout) as failed, naming the path, and installs nothing."""
    lapis = setup_root(lapis_file)
    before = snapshot(lapis)
    lapis.ok("--repo=updates", "makecache")
    part = lapis.cache_dir("updates") / "packages" / "hello-2.1-1.x86_64.rpm.part"
    (part / "sub").mkdir(parents=True)
    # keepcache=1: through the cache (a file:// repo's packages are otherwise read into memory).
    conf = write_conf(lapis, {"apply_updates": "yes"}, base={"lock_timeout": "2", "keepcache": "1"})
    r = automatic(lapis, conf, timeout=30)
    assert r.rc == 1 and len(r.error_lines) == 1, r
    assert str(part) in r.error_lines[0] and "Is a directory" in r.error_lines[0], r
    assert report(lapis)["status"] == "failed"
    assert snapshot(lapis) == before


def test_failed_run_lock_held(lapis_file, hold_lock):
    lapis = setup_root(lapis_file)
    before = snapshot(lapis)
    conf = write_conf(lapis, {"apply_updates": "yes", "reboot": "when-changed"},
                      base={"lock_timeout": "0"})
    holder = hold_lock(60)
    r = automatic(lapis, conf, "--json")
    assert r.rc == 1, r
    doc = r.json()
    assert doc["status"] == "failed", doc
    assert str(holder.pid) in doc["error"] or "lock" in doc["error"].lower(), doc
    assert report(lapis) == doc
    assert len(r.error_lines) == 1, r
    assert snapshot(lapis) == before
    assert reboots(lapis) == []


# ---- needs-restarting -r ------------------------------------------------------------

CORE_MSG = "Core libraries or services have been updated since boot-up:"
NO_CORE_MSG = "No core libraries or services have been updated since boot-up."


def last_boot(lapis, t):
    p = lapis.root / "var" / "lib" / "lapis" / "last-boot"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("%d\n" % t)


def starred(out):
    return sorted(re.findall(r"^  \* (\S+)$", out, re.M))


def test_reboothint_never_booted_root(lapis_file):
    lapis = setup_root(lapis_file, ("glibc-1.0", "hello-1.0", "libfoo-1.0"))
    r = lapis.run("needs-restarting", "-r")
    assert r.rc == 1, r
    assert r.out_lines[0] == CORE_MSG, r
    assert starred(r.out) == ["glibc"], r
    assert "Reboot is required to fully utilize these updates." in r.out_lines, r
    r2 = lapis.run("needs-restarting", "--reboothint")
    assert (r2.rc, r2.out) == (1, r.out), r2
    r = lapis.run("--json", "needs-restarting", "-r")
    assert r.rc == 1, r
    assert r.json() == {"reboot_required": True, "packages": ["glibc"], "boot_time": 0}


def test_reboothint_follows_boot_time(lapis_file):
    lapis = setup_root(lapis_file, ("glibc-1.0",))
    last_boot(lapis, int(time.time()) + 5)
    r = lapis.run("needs-restarting", "-r")
    assert r.rc == 0, r
    assert r.out_lines[0] == NO_CORE_MSG, r
    assert starred(r.out) == []
    # a boot after the install, then an upgrade of glibc after the boot
    time.sleep(1.1)
    boot = int(time.time())
    last_boot(lapis, boot)
    assert lapis.run("needs-restarting", "-r").rc == 0
    time.sleep(1.1)
    lapis.yes("upgrade", "glibc")
    assert lapis.installed() == ["glibc-0:1.1-1.x86_64"]
    r = lapis.run("needs-restarting", "-r")
    assert r.rc == 1, r
    assert starred(r.out) == ["glibc"], r
    doc = lapis.json("needs-restarting", "-r", rc=1)
    assert doc == {"reboot_required": True, "packages": ["glibc"], "boot_time": boot}


def test_reboothint_non_core_packages(lapis_file):
    lapis = lapis_file
    boot = int(time.time()) - 100
    last_boot(lapis, boot)
    setup_root(lapis, ("hello-1.0", "libfoo-1.0"))
    r = lapis.run("needs-restarting", "-r")
    assert r.rc == 0, r
    assert NO_CORE_MSG in r.out_lines, r
    doc = lapis.json("needs-restarting", "-r")
    assert doc["reboot_required"] is False and doc["packages"] == []
    assert doc["boot_time"] == boot


def test_reboothint_after_automatic_apply(lapis_file):
    lapis = setup_root(lapis_file)
    time.sleep(1.1)
    last_boot(lapis, int(time.time()))
    assert lapis.run("needs-restarting", "-r").rc == 0
    time.sleep(1.1)
    conf = write_conf(lapis, {"upgrade_type": "security", "apply_updates": "yes"})
    assert automatic(lapis, conf).rc == 0
    doc = lapis.json("needs-restarting", "-r", rc=1)
    assert sorted(doc["packages"]) == REBOOT_PKGS["security"], doc


def test_needs_restarting_refuses_arguments(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    for args in (("needs-restarting", "hello"), ("needs-restarting", "-r", "glibc")):
        r = lapis.run(*args)
        assert r.rc == 2, r
        assert len(r.error_lines) == 1, r
        assert r.out == "", r


# ---- needs-restarting: processes mapping deleted files ---------------------------------

CHILD = textwrap.dedent("""
    import mmap, sys, time
    f = open(sys.argv[1], "rb")
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print("mapped", flush=True)
    time.sleep(120)
""")


def test_needs_restarting_lists_stale_process(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    data = lapis.root / "usr" / "share" / "hello" / "data.txt"
    assert data.stat().st_size > 0
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(data)], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "mapped"
        r = lapis.ok("needs-restarting")
        assert not re.search(r"^%d : " % p.pid, r.out, re.M), r
        doc = lapis.json("needs-restarting")
        assert p.pid not in [x["pid"] for x in doc["processes"]], doc

        lapis.yes("upgrade", "hello")
        assert "hello-0:2.1-1.x86_64" in lapis.installed()
        r = lapis.ok("needs-restarting")
        line = [l for l in r.out_lines if l.startswith("%d : " % p.pid)]
        assert len(line) == 1, r
        assert sys.executable.rsplit("/", 1)[-1] in line[0] or "python" in line[0], r
        doc = lapis.json("needs-restarting")
        mine = [x for x in doc["processes"] if x["pid"] == p.pid]
        assert len(mine) == 1, doc
        assert set(mine[0]) == {"pid", "cmdline", "files"}
        assert mine[0]["files"] == ["/usr/share/hello/data.txt"]
        assert "python" in mine[0]["cmdline"]
    finally:
        p.kill()
        p.wait()


def test_needs_restarting_nothing_stale(lapis_file):
    lapis = setup_root(lapis_file, ("hello-1.0", "libfoo-1.0"))
    r = lapis.ok("needs-restarting")
    assert r.out == "", r
    assert lapis.json("needs-restarting") == {"processes": []}
