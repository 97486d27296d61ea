"""The finalize stage (src/image/finalize*.c) on a root installed from the
test distribution by the real lapis, driven through build/finalize_driver
until `lapis image build` exists: users, services, sysctl, hardening, the
setuid allow-list, os-release, machine-id, cleanup, and a finalized tree
that is the same bytes and metadata every run.

LAPIS_TESTDIST points at build-testdist's OUTDIR (default build/testdist).
"""

import hashlib
import os
import pathlib
import platform
import shutil
import stat
import socket
import subprocess
import tempfile
import time

import pytest

SRCROOT = pathlib.Path(__file__).resolve().parents[3]
LAPIS_BIN = pathlib.Path(os.environ.get("LAPIS_BIN") or SRCROOT / "build" / "lapis").resolve()
DRIVER = LAPIS_BIN.parent / "finalize_driver"
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or SRCROOT / "build" / "testdist").resolve()
ARCH = platform.machine()
EPOCH = 1767225600
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly alice@test"
HASH = "$6$salt$Zm9vYmFy"
PACKAGES = ["kernel", "systemd", "openssh-server", "dash", "bash", "coreutils", "util-linux",
            "passwd", "login", "mawk", "ca-certificates", "kmod", "iproute2"]

pytestmark = pytest.mark.skipif(
    not (TESTDIST / ARCH / ".stamp").exists() or not DRIVER.exists(),
    reason="test distribution or finalize_driver not built (make all; make testdist)")


def run(argv, **kw):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def base_root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finalize-base")
    reposd = tmp / "repos.d"
    reposd.mkdir()
    shutil.copy(TESTDIST / "testdist.repo", reposd / "testdist.repo")
    root = tmp / "root"
    r = run([LAPIS_BIN, "--installroot=%s" % root, "--setopt=reposdir=%s" % reposd,
             "--setopt=cachedir=%s" % (tmp / "cache"), "--releasever=1", "-y", "install"] + PACKAGES,
            env=dict(os.environ, HOME=str(tmp)))
    assert r.returncode == 0, r.stderr
    return root


def kver(root):
    return sorted(os.listdir(root / "usr/lib/modules"))[0]


def finalize(base_root, tmp_path, *args, name="root", env=None, cwd=None, umask=0o022):
    root = tmp_path / name
    r = run(["cp", "-a", base_root, root])
    assert r.returncode == 0, r.stderr
    r = run([DRIVER, root, EPOCH, "--kver", kver(root)] + list(args), env=env, cwd=cwd,
            preexec_fn=lambda: os.umask(umask))
    return root, r


SERVER_ARGS = ["--hostname", "box", "--group", "wheel", "--user", "alice",
               "--hash", "alice=" + HASH, "--key", "alice=" + KEY, "--member", "alice=wheel",
               "--member", "alice=sudo", "--user", "bob:2000", "--enable", "systemd-networkd.service",
               "--disable", "e2scrub_all.timer", "--sysctl", "vm.swappiness=10",
               "--cmdline", "console=ttyS0", "--file", "/etc/motd:600:hello\n",
               "--dir", "/srv/data:750"]


@pytest.fixture(scope="module")
def server(base_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finalize-server")
    root, r = finalize(base_root, tmp, *SERVER_ARGS)
    assert r.returncode == 0, r.stderr
    return root, r.stdout.split()


def lines(path):
    return path.read_text().splitlines()


def entry(path, name):
    for line in lines(path):
        if line.split(":")[0] == name:
            return line.split(":")
    raise AssertionError("%s not in %s" % (name, path))


def test_users_groups_shadow(server):
    root, _ = server
    alice = entry(root / "etc/passwd", "alice")
    # wheel took 1000 (first free gid), so alice's uid skips it: her private group matches.
    assert alice[2:4] == ["1001", "1001"] and alice[5:] == ["/home/alice", "/bin/bash"]
    assert entry(root / "etc/passwd", "bob")[2:4] == ["2000", "2000"]
    assert entry(root / "etc/passwd", "root")[2] == "0"          # existing lines kept
    assert entry(root / "etc/group", "wheel")[2:] == ["1000", "alice"]
    assert "alice" in entry(root / "etc/group", "sudo")[3].split(",")
    assert "alice" in entry(root / "etc/gshadow", "sudo")[3].split(",")
    assert entry(root / "etc/shadow", "alice")[1] == HASH
    assert entry(root / "etc/shadow", "bob")[1] == "!"              # locked
    assert entry(root / "etc/shadow", "root")[1] == "*"
    # sysusers dates entries today; clamped to the epoch's day.
    days = {int(f[2]) for f in (l.split(":") for l in lines(root / "etc/shadow")) if f[2]}
    assert max(days) <= EPOCH // 86400
    st = (root / "etc/shadow").stat()
    assert oct(st.st_mode & 0o7777) == "0o640"
    assert st.st_gid == int(entry(root / "etc/group", "shadow")[2])
    # sysusers.d users, and openssh-server's postinst user.
    entry(root / "etc/passwd", "systemd-network")
    assert entry(root / "etc/passwd", "sshd")[5:] == ["/run/sshd", "/usr/sbin/nologin"]
    for backup in ("passwd-", "group-", "shadow-", "gshadow-"):
        assert not (root / "etc" / backup).exists()


def test_authorized_keys(server):
    root, _ = server
    home = root / "home/alice"
    ak = home / ".ssh/authorized_keys"
    assert ak.read_text() == KEY + "\n"
    bashrc = home / ".bashrc"                                       # from /etc/skel
    assert bashrc.read_bytes() == (server[0] / "etc/skel/.bashrc").read_bytes()
    assert (bashrc.stat().st_uid, bashrc.stat().st_gid) == (1001, 1001)
    for p, mode in ((home, 0o700), (home / ".ssh", 0o700), (ak, 0o600)):
        st = p.stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, 1001, 1001), p


def test_services(server):
    root, _ = server
    etc = root / "etc/systemd/system"
    assert (etc / "multi-user.target.wants/ssh.service").is_symlink()
    assert not (etc / "sockets.target.wants/ssh.socket").exists()   # conflicts with ssh.service
    assert (etc / "multi-user.target.wants/systemd-networkd.service").is_symlink()
    net = (root / "usr/lib/systemd/network/89-lapis-ethernet.network").read_text()
    assert "Type=ether" in net and "DHCP=yes" in net
    assert (etc / "getty.target.wants/getty@tty1.service").is_symlink()   # preset-all ran
    assert not (etc / "timers.target.wants/e2scrub_all.timer").exists()   # disable list
    # First boot (empty machine-id) re-runs preset-all: the lists are presets too.
    presets = (root / "etc/systemd/system-preset/00-lapis-image.preset").read_text()
    assert "enable systemd-networkd.service\n" in presets
    assert "disable e2scrub_all.timer\n" in presets
    # sshd starts without baked-in host keys: keys made on first boot.
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    unit = (root / "usr/lib/systemd/system/lapis-ssh-keygen.service").read_text()
    assert "ExecStart=/usr/bin/ssh-keygen -A" in unit
    dropin = root / "usr/lib/systemd/system/ssh.service.d/50-lapis-keygen.conf"
    assert "After=lapis-ssh-keygen.service" in dropin.read_text()
    assert "Include /etc/ssh/sshd_config.d/*.conf" in (root / "etc/ssh/sshd_config").read_text()


def test_sysctl_sshd_hardening(server):
    root, removed = server
    hard = (root / "usr/lib/sysctl.d/50-lapis-hardening.conf").read_text()
    for k in ("kernel.kptr_restrict = 2", "kernel.dmesg_restrict = 1",
              "kernel.unprivileged_bpf_disabled = 1", "fs.protected_symlinks = 1",
              "fs.protected_regular = 2", "net.ipv4.conf.all.rp_filter = 1"):
        assert k in hard
    assert "vm.swappiness = 10" in (root / "etc/sysctl.d/90-lapis-image.conf").read_text()
    sshd = (root / "etc/ssh/sshd_config.d/50-lapis-hardening.conf").read_text()
    for k in ("PermitRootLogin no", "PasswordAuthentication no", "KbdInteractiveAuthentication no"):
        assert k in sshd
    assert removed == sorted(removed)
    assert "/usr/lib/openssh/ssh-keysign" in removed and "/usr/bin/chage" in removed
    assert not (root / "usr/lib/openssh/ssh-keysign").stat().st_mode & 0o6000
    assert (root / "usr/bin/passwd").stat().st_mode & 0o4000       # allow-listed
    assert (root / "usr/bin/su").stat().st_mode & 0o4000
    left = run(["find", root, "-xdev", "-type", "f", "-perm", "/6000"]).stdout.split()
    allowed = {"/usr/bin/" + n for n in ("passwd", "su", "mount", "umount", "newgrp", "chsh",
                                          "chfn", "gpasswd")} | {"/usr/sbin/unix_chkpwd"}
    assert {"/" + os.path.relpath(p, root) for p in left} <= allowed


def test_identity_and_boot_files(server):
    root, _ = server
    osr = dict(l.split("=", 1) for l in lines(root / "usr/lib/os-release"))
    assert osr["ID"] == "testimage" and osr["ID_LIKE"] == "fedora"
    assert osr["VERSION_ID"] == "1.0" and osr["BUILD_ID"] == "%d.abababababab" % EPOCH
    assert os.readlink(root / "etc/os-release") == "../usr/lib/os-release"
    assert (root / "etc/machine-id").read_bytes() == b""
    assert (root / "etc/hostname").read_text() == "box\n"
    assert (root / "etc/kernel/cmdline").read_text() == "rw console=ttyS0\n"
    assert (root / "etc/locale.conf").read_text() == "LANG=C.UTF-8\n"
    # Set, so systemd-firstboot (first boot, tty) prompts for neither; UTC without tzdata.
    assert os.readlink(root / "etc/localtime") == "../usr/share/zoneinfo/UTC"
    assert (root / "etc/motd").read_text() == "hello\n"
    assert (root / "etc/motd").stat().st_mode & 0o7777 == 0o600
    assert (root / "srv/data").stat().st_mode & 0o7777 == 0o750
    assert os.readlink(root / "usr/bin/awk") == "mawk"                # mawk's alternative
    bundle = (root / "etc/ssl/certs/ca-certificates.crt").read_text()
    assert bundle.count("BEGIN CERTIFICATE") > 100
    k = kver(root)
    assert (root / "usr/lib/modules" / k / "modules.dep.bin").exists()   # depmod
    assert (root / "etc/ld.so.cache").exists()                           # ldconfig


def test_no_caches_logs_history(server):
    root, _ = server
    for d in ("var/cache", "var/log", "var/lib/lapis", "tmp", "var/tmp"):
        files = [p for p in (root / d).rglob("*") if not p.is_dir()]
        assert files == [], (d, files)
    assert not list((root / "var/lib/rpm").glob("__db*"))
    assert not (root / "var/lib/rpm/rpmdb.sqlite-shm").exists()
    newer = run(["find", root, "-newermt", "@%d" % EPOCH]).stdout.split()
    assert newer == []                                     # every mtime clamped


def test_rpm_verify_differs_only_where_expected(server):
    root, removed = server
    r = run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-Va"])
    changed = {line.split()[-1]: line.split()[0] for line in r.stdout.splitlines()}
    expected = {"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow",
                "/usr/lib/os-release"} | set(removed)
    assert set(changed) <= expected, r.stdout
    for p in removed:
        assert changed[p][1] == "M"


def tree_listing(root):
    out = run(["find", ".", "-printf", r"%p %m %U %G %T@ %s %l\n"], cwd=root).stdout
    digests = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.isfile(p) and not os.path.islink(p):
                digests.append("%s %s" % (os.path.relpath(p, root),
                                          hashlib.sha256(open(p, "rb").read()).hexdigest()))
    return sorted(out.splitlines()), sorted(digests)


def test_reproducible(base_root, tmp_path):
    env_b = dict(os.environ, TMPDIR=str(tmp_path), TZ="Asia/Tokyo")
    a, ra = finalize(base_root, tmp_path, *SERVER_ARGS, name="a")
    (tmp_path / "cwd").mkdir()
    b, rb = finalize(base_root, tmp_path, *SERVER_ARGS, name="b", env=env_b, cwd=tmp_path / "cwd",
                     umask=0o077)
    assert ra.returncode == 0 and rb.returncode == 0, (ra.stderr, rb.stderr)
    la, lb = tree_listing(a), tree_listing(b)
    assert la[0] == lb[0]
    assert la[1] == lb[1]


def test_hardening_off(base_root, tmp_path):
    root, r = finalize(base_root, tmp_path, "--no-hardening", "--selinux", "permissive")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert not (root / "usr/lib/sysctl.d/50-lapis-hardening.conf").exists()
    assert not (root / "etc/ssh/sshd_config.d/50-lapis-hardening.conf").exists()
    assert (root / "usr/lib/openssh/ssh-keysign").stat().st_mode & 0o4000
    assert (root / "etc/machine-id").read_bytes() == b""        # the rest still done
    assert "SELINUX=permissive\n" in (root / "etc/selinux/config").read_text()


def test_keep_and_allow_list(base_root, tmp_path):
    (base_root / "var/log/keepme.log").write_text("x")
    try:
        root, r = finalize(base_root, tmp_path, "--keep", "logs", "--keep", "history",
                           "--allow", "/usr/lib/openssh/ssh-keysign", "--allow", "/bin/su")
    finally:
        (base_root / "var/log/keepme.log").unlink()
    assert r.returncode == 0, r.stderr
    assert (root / "var/log/keepme.log").exists()
    assert (root / "var/lib/lapis/history.sqlite").exists()
    assert (root / "usr/lib/openssh/ssh-keysign").stat().st_mode & 0o4000
    assert (root / "usr/bin/su").stat().st_mode & 0o4000      # /bin/su means the merged path
    assert "/usr/bin/passwd" in r.stdout.split()               # not in this list


@pytest.mark.parametrize("args,message", [
    (["--user", "carol", "--member", "carol=nosuchgroup"],
     "os.users: carol: group nosuchgroup does not exist (add it under os.groups)"),
    (["--user", "dave:0"], "os.users: dave: uid 0 is taken"),
    (["--enable", "nosuch.service"],
     "os.services.enable: systemctl failed (exit status 1): Failed to enable unit, "
     "unit nosuch.service does not exist."),
    (["--timezone", "Mars/Olympus"], "os.timezone: Mars/Olympus is not in the image"),
])
def test_config_errors(base_root, tmp_path, args, message):
    _, r = finalize(base_root, tmp_path, *args)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_sshd_config_valid_after_first_boot_keygen(server, tmp_path):
    """What ssh.service does on first boot, run in a chroot of a copy: keys made,
    then `sshd -t` (its ExecStartPre) passes and the drop-in's values win."""
    src, _ = server
    root = tmp_path / "boot"
    assert run(["cp", "-a", src, root]).returncode == 0
    (root / "run/sshd").mkdir(parents=True, exist_ok=True)
    os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    r = run(["chroot", root, "/usr/bin/ssh-keygen", "-A"])
    assert r.returncode == 0, r.stderr
    r = run(["chroot", root, "/usr/sbin/sshd", "-t"])
    assert r.returncode == 0, r.stderr
    r = run(["chroot", root, "/usr/sbin/sshd", "-T"])
    assert r.returncode == 0, r.stderr
    conf = r.stdout.splitlines()
    for k in ("permitrootlogin no", "passwordauthentication no", "kbdinteractiveauthentication no"):
        assert k in conf


def test_foreign_arch_skips_ldconfig(base_root, tmp_path):
    """glibc's ldconfig reads only its own arch's ELF ("is for unknown machine 183"
    on an aarch64 root): a foreign root gets no cache, the rest is done."""
    other = "aarch64" if ARCH != "aarch64" else "x86_64"
    root, r = finalize(base_root, tmp_path, "--arch", other)
    assert r.returncode == 0, r.stderr
    assert not (root / "etc/ld.so.cache").exists()
    assert (root / "etc/machine-id").exists()


def test_hostile_symlinks_stay_in_root(base_root, tmp_path):
    """A package's absolute symlink (/etc/sysctl.d -> /HOSTDIR) resolves inside the
    root: nothing is written on the host, the files land in ROOT/HOSTDIR."""
    outside = pathlib.Path("/lapis-finalize-outside-%d" % os.getpid())
    assert not outside.exists()
    root = tmp_path / "hostile"
    assert run(["cp", "-a", base_root, root]).returncode == 0
    shutil.rmtree(root / "etc/sysctl.d")
    (root / "etc/sysctl.d").symlink_to(outside)
    (root / "etc/kernel").rename(root / "etc/kernel.orig")
    (root / "etc/kernel").symlink_to(outside)
    r = run([DRIVER, root, EPOCH, "--sysctl", "vm.swappiness=1"])
    assert not outside.exists()
    assert r.returncode == 0, r.stderr
    inside = root / outside.name
    assert (inside / "90-lapis-image.conf").read_text().endswith("vm.swappiness = 1\n")
    assert (inside / "cmdline").read_text() == "rw\n"


def test_first_boot_wizard_has_nothing_to_ask(server, tmp_path):
    """systemd-firstboot.service (ConditionFirstBoot=yes: the empty machine-id)
    prompts on the console for what is unset; a prompt would hold the boot.
    The host's systemd-firstboot (the same 252) against a copy asks nothing."""
    src, _ = server
    root = tmp_path / "fb"
    assert run(["cp", "-a", src, root]).returncode == 0
    r = run(["systemd-firstboot", "--root=%s" % root, "--prompt-locale", "--prompt-timezone",
             "--prompt-root-password"], stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "Please enter" not in r.stdout + r.stderr
    assert entry(root / "etc/shadow", "root")[1] == "*"


YAML = """\
name: yamlbox
version: "2.5"
repos:
  - file: %(repo)s
packages:
  install: [systemd]
os:
  hostname: yamlbox
  hardening: false
  keep: [logs]
  sysctl: {net.ipv4.ip_forward: "1"}
  selinux: {mode: permissive}
  groups:
    - {name: ops, gid: 1500}
  users:
    - name: admin
      passwordHash: "$6$abc$def"
      sshPublicKeys: ["ssh-ed25519 AAAA admin@x"]
      secondaryGroups: [ops]
  services:
    disable: [e2scrub_all.timer]
  kernelCommandLine:
    extraCommandLine: console=ttyS0 quiet
  additionalFiles:
    - {destination: /etc/motd, content: "Welcome\\n", permissions: "0600"}
  additionalDirs:
    - {destination: /srv/data, permissions: "0750", owner: "1000:1000"}
"""


def test_yaml_config(base_root, tmp_path):
    """The same stage fed by image-config's loader (lapis_image_config_load):
    the YAML key names reach the files they should."""
    cfg = tmp_path / "box.yaml"
    cfg.write_text(YAML % {"repo": TESTDIST / "testdist.repo"})
    root, r = finalize(base_root, tmp_path, "--config", cfg)
    assert r.returncode == 0, r.stderr
    assert entry(root / "etc/passwd", "admin")[2:4] == ["1000", "1000"]
    assert entry(root / "etc/shadow", "admin")[1] == "$6$abc$def"
    assert entry(root / "etc/group", "ops")[2:] == ["1500", "admin"]
    assert (root / "home/admin/.ssh/authorized_keys").read_text() == "ssh-ed25519 AAAA admin@x\n"
    assert (root / "etc/hostname").read_text() == "yamlbox\n"
    assert (root / "etc/kernel/cmdline").read_text() == "rw console=ttyS0 quiet\n"
    assert "net.ipv4.ip_forward = 1" in (root / "etc/sysctl.d/90-lapis-image.conf").read_text()
    assert "SELINUX=permissive" in (root / "etc/selinux/config").read_text()
    assert (root / "etc/motd").read_text() == "Welcome\n"
    st = (root / "srv/data").stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o750, 1000, 1000)
    assert not (root / "etc/systemd/system/timers.target.wants/e2scrub_all.timer").exists()
    assert not (root / "usr/lib/sysctl.d/50-lapis-hardening.conf").exists()   # hardening: false
    assert r.stdout == ""
    osr = dict(l.split("=", 1) for l in lines(root / "usr/lib/os-release"))
    digest = hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert (osr["ID"], osr["VERSION_ID"], osr["BUILD_ID"]) == ("yamlbox", "2.5",
                                                               "%d.%s" % (EPOCH, digest[:12]))


UNIT = "[Unit]\nDescription=shipped by additionalFiles\n\n[Service]\nExecStart=/bin/true\n\n" \
       "[Install]\nWantedBy=multi-user.target\n"


def test_unit_from_additional_files_can_be_enabled(base_root, tmp_path):
    """Files are written before services are enabled: a unit shipped in
    additionalFiles can be listed in services.enable."""
    root, r = finalize(base_root, tmp_path, "--file", "/etc/systemd/system/lapis-extra.service:644:"
                       + UNIT, "--enable", "lapis-extra.service")
    assert r.returncode == 0, r.stderr
    link = root / "etc/systemd/system/multi-user.target.wants/lapis-extra.service"
    assert link.is_symlink(), r.stderr


def test_enable_sysv_unit_without_init_system_helpers(base_root, tmp_path):
    """ssh has an /etc/init.d script: Debian's systemctl would chroot into the
    root to run update-rc.d (init-system-helpers). Finalize skips the SysV
    half (SYSTEMCTL_SKIP_SYSV), so it works without it."""
    root = tmp_path / "nosysv"
    assert run(["cp", "-a", base_root, root]).returncode == 0
    assert (root / "etc/init.d/ssh").exists()
    (root / "usr/sbin/update-rc.d").unlink(missing_ok=True)
    r = run([DRIVER, root, EPOCH, "--kver", kver(root), "--enable", "ssh.service"])
    assert r.returncode == 0, r.stderr
    assert (root / "etc/systemd/system/multi-user.target.wants/ssh.service").is_symlink()
    assert not list((root / "etc").glob("rc?.d/S*ssh"))            # no SysV links made


def test_pam_common_files(server):
    """What libpam-runtime's postinst (pam-auth-update) writes: without
    common-* every service's PAM stack fails to load."""
    pam = server[0] / "etc/pam.d"
    auth = [l for l in lines(pam / "common-auth") if l and not l.startswith("#")]
    assert auth[0].split() == ["auth", "[success=1", "default=ignore]", "pam_unix.so", "nullok"]
    assert auth[1].split() == ["auth", "requisite", "pam_deny.so"]
    account = [l for l in lines(pam / "common-account") if l and not l.startswith("#")]
    assert account[0].split()[:4] == ["account", "[success=1", "new_authtok_reqd=done",
                                      "default=ignore]"]
    password = " ".join(lines(pam / "common-password"))
    assert "pam_unix.so obscure yescrypt" in password and "$password" not in password
    for f in ("common-session", "common-session-noninteractive"):
        session = [l.split() for l in lines(pam / f) if l and not l.startswith("#")]
        # No primary session module: pam_permit steps over pam_deny.
        assert session[0] == ["session", "[default=1]", "pam_permit.so"], session
        assert ["session", "required", "pam_unix.so"] in session


def test_ssh_login_with_config_key(base_root, tmp_path):
    """sshd in a chroot of the finalized root takes the config user's key and
    runs a command as that user (before: "PAM: initialisation failed")."""
    key = tmp_path / "id_ed25519"
    assert run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key]).returncode == 0
    pub = pathlib.Path(str(key) + ".pub").read_text().strip()
    root, r = finalize(base_root, tmp_path, "--user", "admin", "--key", "admin=" + pub)
    assert r.returncode == 0, r.stderr
    (root / "run/sshd").mkdir(parents=True, exist_ok=True)
    os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    assert run(["chroot", root, "/usr/bin/ssh-keygen", "-A"]).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sshd = subprocess.Popen(["chroot", str(root), "/usr/sbin/sshd", "-D", "-e", "-p", str(port),
                             "-o", "ListenAddress=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(50):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        r = run(["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                 "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-i", key, "-p", port,
                 "admin@127.0.0.1", "id -un; echo $HOME"])
    finally:
        sshd.terminate()
        err = sshd.communicate(timeout=30)[1]
    assert r.returncode == 0, r.stderr + err
    assert r.stdout.split() == ["admin", "/home/admin"]


def test_rpmdb_readable_by_users(server, tmp_path):
    """A user can query the rpmdb: finalize drops its -wal and -shm files, and
    a WAL-mode sqlite db cannot be opened by who cannot create them."""
    db = server[0] / "var/lib/rpm/rpmdb.sqlite"
    assert db.read_bytes()[18:20] == b"\x01\x01"                   # rollback journal
    pub = pathlib.Path(tempfile.mkdtemp(dir="/tmp"))              # a path nobody can reach
    try:
        os.chmod(pub, 0o755)
        shutil.copy(db, pub / "rpmdb.sqlite")
        os.chmod(pub / "rpmdb.sqlite", 0o644)
        r = run(["rpm", "--dbpath", pub, "-qa"],
                preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    finally:
        shutil.rmtree(pub)
    assert r.returncode == 0, r.stderr
    assert "openssh-server" in r.stdout and "error" not in r.stderr


@pytest.mark.parametrize("arch,console", [("x86_64", "ttyS0"), ("aarch64", "ttyAMA0")])
def test_serial_console_follows_the_arch(base_root, tmp_path, arch, console):
    """os.kernelCommandLine.serialConsole: the composer names the arch's serial
    port, last (so /dev/console is it), and one config serves both arches.
    Before: "os.kernelCommandLine.serialConsole: unknown key"."""
    cfg = tmp_path / "serial.yaml"
    cfg.write_text(f"""name: serial
version: "1"
repos:
  - file: {TESTDIST / "testdist.repo"}
packages:
  install: [systemd]
os:
  kernelCommandLine:
    extraCommandLine: quiet
    serialConsole: true
""")
    root, r = finalize(base_root, tmp_path, "--config", cfg, "--arch", arch)
    assert r.returncode == 0, r.stderr
    assert (root / "etc/kernel/cmdline").read_text() == f"rw quiet console={console}\n"
