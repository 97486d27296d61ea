"""The agent's systemd units as shipped (docs/sysupdate.md "The agent"):
installed by CMake, listed in lapis.spec's lapis-sysupdate package, enabled
by their preset (systemctl --root preset), and loaded by systemd 252's own
`systemd-analyze verify` together with multi-user.target, boot-complete.target
and systemd-bless-boot.service: no ordering cycle, every dependency found.
"""

import os
import pathlib
import re
import shutil
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent.parent
BUILD = pathlib.Path(os.environ.get("LAPIS_BIN") or SRCROOT / "build" / "lapis").parent
AGENT = BUILD / "lapis-sysupdate"
SYSTEM = "usr/lib/systemd/system"
UNITS = ["lapis-sysupdate.service", "lapis-sysupdate.timer", "lapis-sysupdate-boot.service",
         "lapis-sysupdate-health.service", "lapis-sysupdate-fallback.service",
         "lapis-sysupdate-mark-good.service"]
pytestmark = pytest.mark.skipif(not shutil.which("systemd-analyze") or not (BUILD / "CMakeCache.txt").exists(),
                                reason="needs systemd-analyze and a CMake build directory")


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    d = tmp_path_factory.mktemp("inst")
    r = run(["cmake", "--install", BUILD, "--prefix", "/usr"], env=dict(os.environ, DESTDIR=str(d)))
    assert r.returncode == 0, r.stderr
    return d


def installed_sysupdate_files(dest):
    out = set()
    for p in dest.rglob("*"):
        rel = "/" + str(p.relative_to(dest))
        if "lapis-sysupdate" in rel and (p.is_file() or p.is_dir() and not any(p.iterdir())
                                         or rel.endswith(".d") or rel.endswith("lapis-sysupdate")):
            out.add(rel)
    return out


def spec_files(package):
    macros = {"%{_bindir}": "/usr/bin", "%{_prefix}": "/usr", "%{_sysconfdir}": "/etc"}
    lines, inside = [], False
    for line in (SRCROOT / "lapis.spec").read_text().splitlines():
        if line.startswith("%files"):
            inside = line.split()[1:] == ["-n", package]
            continue
        if inside and line.startswith("%") and not line.startswith(("%dir", "%config", "%{")):
            inside = False
        if inside and line.strip() and not line.startswith("#"):
            path = line.split()[-1]
            for k, v in macros.items():
                path = path.replace(k, v)
            lines.append(path)
    return set(lines)


def test_units_installed_and_packaged(dest):
    for u in UNITS:
        assert (dest / SYSTEM / u).is_file(), u
    assert (dest / "usr/lib/lapis-sysupdate/health.d").is_dir()
    assert (dest / "usr/lib/lapis-sysupdate/keys.d").is_dir()
    # Everything CMake installs for the agent is in its package, and no more.
    assert spec_files("lapis-sysupdate") == installed_sysupdate_files(dest) | {"/usr/bin/lapis-sysupdate"}


def unit(dest, name):
    """section -> key -> the values of every line with that key, joined by spaces."""
    sections, cur = {}, None
    for line in (dest / SYSTEM / name).read_text().splitlines():
        if line.startswith("["):
            cur = sections.setdefault(line.strip("[]"), {})
        elif "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            cur[k] = (cur.get(k, "") + " " + v).strip()
    return sections


def test_units_order_around_boot_complete(dest):
    health = unit(dest, "lapis-sysupdate-health.service")
    assert "boot-complete.target" in health["Unit"]["Before"]
    assert health["Install"]["RequiredBy"] == "boot-complete.target"
    assert health["Unit"]["OnFailure"] == "lapis-sysupdate-fallback.service"
    good = unit(dest, "lapis-sysupdate-mark-good.service")
    assert "boot-complete.target" in good["Unit"]["Requires"]
    assert "systemd-bless-boot.service" in good["Unit"]["After"]
    timer = unit(dest, "lapis-sysupdate.timer")
    assert timer["Timer"]["RandomizedDelaySec"]
    fallback = unit(dest, "lapis-sysupdate-fallback.service")
    assert fallback["Unit"]["SuccessAction"] == "reboot"
    assert "LoaderBootCountPath-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f" in fallback["Unit"]["ConditionPathExists"]


def test_units_verify_with_systemd(dest, tmp_path):
    """The preset enables them; systemd loads them with the targets they hang on."""
    root = tmp_path / "root"
    shutil.copytree(dest / "usr", root / "usr", symlinks=True)
    # systemd-analyze verify checks that ExecStart= exists on this machine: the built agent.
    for u in UNITS:
        p = root / SYSTEM / u
        p.write_text(p.read_text().replace("/usr/bin/lapis-sysupdate", str(AGENT)))
    # A unit of the admin's that runs after the boot is blessed (as test_abhost.py's check
    # does): with the health unit ordered after multi-user.target this was a cycle.
    (root / SYSTEM / "after-blessed.service").write_text(
        "[Unit]\nAfter=boot-complete.target systemd-bless-boot.service\nWants=boot-complete.target\n"
        "[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
    ok_enable = run(["systemctl", "--root", root, "enable", "after-blessed.service"])
    assert ok_enable.returncode == 0, ok_enable.stderr
    enable = [u for u in UNITS if u not in ("lapis-sysupdate.service", "lapis-sysupdate-fallback.service")]
    r = run(["systemctl", "--root", root, "preset"] + enable)
    assert r.returncode == 0, r.stderr
    etc = root / "etc/systemd/system"
    assert (etc / "boot-complete.target.requires/lapis-sysupdate-health.service").is_symlink()
    assert (etc / "multi-user.target.wants/lapis-sysupdate-mark-good.service").is_symlink()
    assert (etc / "multi-user.target.wants/lapis-sysupdate-boot.service").is_symlink()
    assert (etc / "timers.target.wants/lapis-sysupdate.timer").is_symlink()
    host = "/lib/systemd/system" if os.path.exists("/lib/systemd/system/multi-user.target") else "/usr/lib/systemd/system"
    env = dict(os.environ, SYSTEMD_UNIT_PATH="%s:%s:" % (etc, root / SYSTEM))
    targets = [host + "/multi-user.target", host + "/boot-complete.target"]
    if os.path.exists(host + "/systemd-bless-boot.service"):
        targets.append(host + "/systemd-bless-boot.service")
    r = run(["systemd-analyze", "verify"] + [root / SYSTEM / u for u in UNITS] + targets, env=env)
    assert r.returncode == 0 and not re.search(r"cycle|not found|[Uu]nknown", r.stderr), r.stderr


def test_rpm_file_list(dest):
    """The lapis-sysupdate RPM the test distribution carries (built from this tree's lapis.spec)."""
    testdist = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or SRCROOT / "build" / "testdist")
    rpms = sorted(testdist.glob("x86_64/**/lapis-sysupdate-[0-9]*.rpm"))
    if not rpms or not shutil.which("rpm"):
        pytest.skip("no lapis-sysupdate RPM in %s (make testdist)" % testdist)
    r = run(["rpm", "-qlp", rpms[-1]])
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == installed_sysupdate_files(dest) | {"/usr/bin/lapis-sysupdate"}
