"""The shipped systemd units (data/systemd) are valid and run what the docs say."""

import re
import shutil
import subprocess

import pytest

from conftest import LAPIS_BIN, SRCROOT

UNITS = SRCROOT / "data" / "systemd"


def test_service_runs_automatic_with_timer_and_config():
    text = (UNITS / "lapis-automatic.service").read_text()
    assert re.search(r"^Type=oneshot$", text, re.M)
    assert re.search(r"^ExecStart=/usr/bin/lapis automatic --timer -c /etc/lapis/automatic.conf$",
                     text, re.M)
    assert re.search(r"^After=network-online.target$", text, re.M)


def test_timer_is_daily_persistent_with_jitter():
    text = (UNITS / "lapis-automatic.timer").read_text()
    assert re.search(r"^OnCalendar=\S+", text, re.M)
    assert re.search(r"^RandomizedDelaySec=\S+", text, re.M)
    assert re.search(r"^Persistent=true$", text, re.M)
    assert re.search(r"^WantedBy=timers.target$", text, re.M)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_verify(tmp_path):
    # systemd-analyze checks ExecStart exists and man pages resolve: point it at
    # the built binary and drop Documentation= (the man page is not installed here).
    for name in ("lapis-automatic.service", "lapis-automatic.timer"):
        text = (UNITS / name).read_text().replace("/usr/bin/lapis", LAPIS_BIN)
        text = "\n".join(l for l in text.splitlines() if not l.startswith("Documentation="))
        (tmp_path / name).write_text(text + "\n")
    cp = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "lapis-automatic.timer"),
                         str(tmp_path / "lapis-automatic.service")],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "lapis-automatic" not in cp.stderr, cp.stderr


def test_offline_unit_runs_execute_in_system_update_target():
    """systemd.offline-updates(7): early, only when /system-update exists, in system-update.target."""
    text = (UNITS / "lapis-offline-transaction.service").read_text()
    for line in ("DefaultDependencies=no", "Requires=sysinit.target",
                 "ConditionPathExists=/system-update", "Type=oneshot",
                 "ExecStart=/usr/bin/lapis offline _execute", "WantedBy=system-update.target",
                 "Before=shutdown.target system-update.target"):
        assert re.search(r"^%s$" % re.escape(line), text, re.M), line
    assert re.search(r"^After=sysinit.target\b", text, re.M)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_offline_unit_verifies(tmp_path):
    name = "lapis-offline-transaction.service"
    text = (UNITS / name).read_text().replace("/usr/bin/lapis", LAPIS_BIN)
    text = "\n".join(l for l in text.splitlines() if not l.startswith("Documentation="))
    (tmp_path / name).write_text(text + "\n")
    cp = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "lapis-offline" not in cp.stderr, cp.stderr


def test_shipped_automatic_conf_runs(lapis_file):
    """data/automatic.conf (apply_updates = no) checks and downloads, and changes nothing."""
    lapis_file.yes("--repo", "base", "install", "hello-1.0")
    before = lapis_file.installed()
    r = lapis_file.run("automatic", "-c", SRCROOT / "data" / "automatic.conf")
    assert r.rc == 0, r
    assert "have been downloaded on" in r.out, r
    assert "hello.x86_64 1.0-1 -> 2.1-1" in r.out, r
    assert lapis_file.installed() == before
