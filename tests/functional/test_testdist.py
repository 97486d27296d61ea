"""The test distribution (tests/fixtures/build-testdist): a real userland,
Debian bookworm repackaged as signed RPMs, installed with the real lapis.

LAPIS_TESTDIST points at build-testdist's OUTDIR (default build/testdist);
`make check` builds it first. Without it these tests are skipped.
"""

import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import sys

import pytest

from conftest import LAPIS_BIN, SRCROOT, clean_env, run_cmd

sys.path.insert(0, str(SRCROOT / "tests" / "fixtures"))
import httpserver  # noqa: E402

TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or SRCROOT / "build" / "testdist").resolve()
ARCH = platform.machine()
REPO = TESTDIST / ARCH
TOOL = SRCROOT / "tests" / "fixtures" / "build-testdist"
CACHE = pathlib.Path(os.environ.get("LAPIS_TESTDIST_CACHE") or "/var/cache/lapis-testdist")
DEBARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(ARCH)

SERVER_SET = ["kernel", "systemd", "openssh-server", "dash", "bash", "coreutils",
              "util-linux", "dracut", "lapis"]

pytestmark = pytest.mark.skipif(
    not (REPO / ".stamp").exists(),
    reason="test distribution not built: run `make testdist` "
           "(tests/fixtures/build-testdist %s)" % TESTDIST)


class Root:
    """An install root filled from the test distribution by lapis."""

    def __init__(self, tmp, baseurl=None):
        self.tmp = pathlib.Path(tmp)
        self.path = self.tmp / "root"
        self.reposd = self.tmp / "repos.d"
        self.reposd.mkdir(parents=True, exist_ok=True)
        text = (TESTDIST / "testdist.repo").read_text()
        if baseurl:
            text = text.replace("file://%s" % TESTDIST, baseurl)
        (self.reposd / "testdist.repo").write_text(text)
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        self.env = clean_env(home)

    def lapis(self, *args, timeout=600):
        return run_cmd([LAPIS_BIN, "--installroot=%s" % self.path,
                        "--setopt=reposdir=%s" % self.reposd,
                        "--setopt=cachedir=%s" % (self.tmp / "cache"),
                        "--releasever=1"] + list(args), env=self.env, timeout=timeout)

    def dbpath(self):
        """Where lapis put the rpmdb (the path inside the root)."""
        for d in ("usr/lib/sysimage/rpm", "var/lib/rpm"):
            p = self.path / d
            if (p / "rpmdb.sqlite").exists() and not p.is_symlink():
                return "/" + d
        raise AssertionError("no rpmdb in %s" % self.path)

    def rpm(self, *args, timeout=300):
        return run_cmd(["rpm", "--root", self.path, "--dbpath", self.dbpath()] + list(args),
                       env=self.env, timeout=timeout)

    def chroot(self, *argv):
        return run_cmd(["chroot", self.path] + list(argv), env=self.env)


def installed_names(root):
    r = root.rpm("-qa", "--qf", "%{NAME}\\n")
    assert r.rc == 0, r
    return set(r.out.split()) - {"gpg-pubkey"}


def repo_packages():
    return sorted(p.name for p in (REPO / "Packages").glob("*.rpm"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The minimal server set, installed once for the module."""
    root = Root(tmp_path_factory.mktemp("server"))
    r = root.lapis("-y", "install", *server_set())
    assert r.rc == 0, r
    assert not r.warning_lines, r
    return root


def server_set():
    if any(n.startswith("lapis-") for n in repo_packages()):
        return SERVER_SET
    return [n for n in SERVER_SET if n != "lapis"]     # built with --no-lapis


def test_server_set_is_installed(server):
    names = installed_names(server)
    for want in ["systemd", "openssh-server", "dash", "bash", "coreutils", "util-linux",
                 "dracut", "filesystem", "base-passwd", "base-files", "libc6"]:
        assert want in names
    assert any(n.startswith("linux-image-6.1") for n in names)
    if ARCH == "x86_64":
        assert "lapis" in names


def test_rpm_verify_is_clean(server):
    r = server.rpm("-Va")
    assert r.rc == 0 and r.out == "", r


def test_bash_runs_in_root(server):
    r = server.chroot("/usr/bin/bash", "-c", "echo $((6*7)); /usr/bin/id -un")
    assert r.rc == 0, r
    assert r.out.split() == ["42", "root"]
    r = server.chroot("/bin/sh", "-c", "true")      # dash, through the /bin link
    assert r.rc == 0, r


def test_merged_usr_layout(server):
    for top in ("bin", "sbin", "lib", "lib64"):
        assert os.readlink(server.path / top) == "usr/" + top
    assert (server.path / "usr/bin/bash").is_file()
    assert os.readlink(server.path / "usr/bin/sh") == "dash"


def test_kernel_and_modules_in_place(server):
    vmlinuz = list(server.path.glob("usr/lib/modules/*/vmlinuz"))
    assert len(vmlinuz) == 1, vmlinuz
    kver = vmlinuz[0].parent.name
    boot = server.path / "boot" / ("vmlinuz-" + kver)
    assert vmlinuz[0].stat().st_size > 4 << 20
    assert os.path.samefile(boot, vmlinuz[0])
    mods = list((vmlinuz[0].parent / "kernel").rglob("*.ko*"))
    assert len(mods) > 1000
    assert list((vmlinuz[0].parent / "kernel").rglob("virtio_blk.ko*"))


def test_accounts_in_place(server):
    passwd = (server.path / "etc/passwd").read_text()
    assert passwd.startswith("root:*:0:0:root:/root:/bin/bash\n")
    assert "\nshadow:*:42:" in (server.path / "etc/group").read_text()
    shadow = server.path / "etc/shadow"
    st = shadow.stat()
    assert (st.st_mode & 0o777, st.st_gid) == (0o640, 42)
    assert shadow.read_text().startswith("root:*:")
    r = server.chroot("/usr/bin/id", "-gn", "root")
    assert r.rc == 0 and r.out.strip() == "root", r


def test_setuid_kept(server):
    st = (server.path / "usr/bin/passwd").stat()
    assert st.st_mode & 0o4000 and st.st_uid == 0


@pytest.mark.skipif(ARCH != "x86_64", reason="the chroot runs the host arch's lapis (x86_64)")
def test_lapis_runs_in_root(server):
    r = server.chroot("/usr/bin/lapis", "--version")
    assert r.rc == 0 and "lapis" in r.out, r
    for f in ("usr/share/man/man8", "usr/lib/systemd/system/lapis-automatic.timer",
              "usr/lib/systemd/system/lapis-automatic.service", "etc/lapis/automatic.conf",
              "usr/lib/systemd/system/lapis-offline-transaction.service",
              "usr/lib/systemd/system/system-update.target.wants/lapis-offline-transaction.service"):
        assert (server.path / f).exists(), f
    assert list((server.path / "usr/share/man/man8").glob("lapis.8*"))
    r = server.rpm("-q", "--requires", "lapis")
    assert "librpm.so.9()(64bit)" in r.out and "libsolv.so.1()(64bit)" in r.out, r


def test_every_package_installs_without_nodeps(tmp_path):
    """One transaction with every package of the repo, then rpm -Va."""
    root = Root(tmp_path)
    r = root.lapis("-y", "install", "*")
    assert r.rc == 0, r
    names = installed_names(root)
    want = {n.rsplit("-", 2)[0] for n in repo_packages()}
    assert names == want
    r = root.rpm("-Va")
    assert r.rc == 0 and r.out == "", r


def test_each_package_resolves_alone(tmp_path):
    """Each package on its own into an empty root: the solver finds a
    complete, conflict-free set (not only all of them together)."""
    root = Root(tmp_path)
    assert root.lapis("makecache").rc == 0
    failed = []
    for name in sorted({n.rsplit("-", 2)[0] for n in repo_packages()}):
        r = root.lapis("-C", "--assumeno", "install", name)
        if "Operation aborted by the user." not in r.err or r.error_lines:
            failed.append(str(r))
    assert not failed, "\n".join(failed)


def test_whole_repo_resolves_over_http(tmp_path):
    server, port = httpserver.start(str(TESTDIST))
    try:
        root = Root(tmp_path, baseurl="http://127.0.0.1:%d" % port)
        r = root.lapis("--assumeno", "install", "*")
        assert "Operation aborted by the user." in r.err, r
        assert "Installing:     %d packages" % len(repo_packages()) in r.out, r
        assert not r.error_lines, r
    finally:
        httpserver.stop(server)


def test_nodocs_leaves_out_docs_and_man_pages(tmp_path):
    with_docs, no_docs = Root(tmp_path / "docs"), Root(tmp_path / "nodocs")
    assert with_docs.lapis("-y", "install", "bash", "coreutils").rc == 0
    assert no_docs.lapis("-y", "--nodocs", "install", "bash", "coreutils").rc == 0
    assert (with_docs.path / "usr/share/man/man1/bash.1.gz").exists()
    assert (with_docs.path / "usr/share/doc/coreutils/copyright").exists()
    for d in ("usr/share/doc", "usr/share/man", "usr/share/info"):
        assert not (no_docs.path / d).exists(), d
    assert (no_docs.path / "usr/bin/bash").exists()
    r = no_docs.rpm("-Va")
    assert r.rc == 0 and r.out == "", r


def test_repo_is_signed():
    assert (REPO / "repodata/repomd.xml.asc").exists()
    assert "updateinfo" in (REPO / "repodata/repomd.xml").read_text()
    text = (TESTDIST / "testdist.repo").read_text()
    assert "gpgcheck=1" in text and "repo_gpgcheck=1" in text


def test_every_package_is_signed(tmp_path):
    root = tmp_path / "keys"
    r = run_cmd(["rpmkeys", "--root", root, "--import", TESTDIST / "RPM-GPG-KEY-lapis-testdist"])
    assert r.rc == 0, r
    pkgs = sorted((REPO / "Packages").glob("*.rpm"))
    r = run_cmd(["rpmkeys", "--root", root, "-K", "--define", "_pkgverify_level signature"]
                + pkgs, timeout=300)
    assert r.rc == 0, r
    assert r.out.count("signatures OK") == len(pkgs), r


def test_updateinfo_lists_advisories(server):
    r = server.lapis("updateinfo", "list", "--all")
    assert r.rc == 0, r
    assert "LAPIS-TD-" in r.out, r


def closure():
    """{name: (version, rpm file)} from REPO/closure.txt."""
    out = {}
    for line in (REPO / "closure.txt").read_text().splitlines():
        name, version, _sha, rpm = line.split()
        out[name] = (version, rpm)
    return out


def deb_of(name):
    version = closure()[name][0]
    found = list((CACHE / "debs" / DEBARCH).glob("%s_%s_*.deb" % (name, version.replace(":", "%3a"))))
    assert len(found) == 1, found
    return found[0]


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@pytest.mark.skipif(not (CACHE / "debs").is_dir(), reason="no testdist cache at %s" % CACHE)
def test_conversion_is_byte_reproducible(tmp_path):
    """Two conversions (other TMPDIR and umask) give the same bytes, and the
    same bytes as the RPMs in the repo. coreutils has /usr/bin/[, base-files
    /tmp with the sticky bit and conffiles."""
    debs = [deb_of("coreutils"), deb_of("base-files")]
    shas = []
    for i, umask in enumerate((0o022, 0o077)):
        tmp = tmp_path / ("tmp%d" % i)
        tmp.mkdir()
        out = tmp_path / ("out%d" % i)
        env = dict(os.environ, TMPDIR=str(tmp))
        cp = subprocess.run([str(TOOL), "--convert"] + [str(d) for d in debs] + ["--into", str(out)],
                            env=env, capture_output=True, text=True, timeout=600,
                            preexec_fn=lambda m=umask: os.umask(m))
        assert cp.returncode == 0, cp.stderr
        shas.append(sorted((p.name, sha256(p)) for p in out.glob("*.rpm")))
    assert len(shas[0]) == 2
    assert shas[0] == shas[1]
    for name, digest in shas[0]:
        assert sha256(REPO / "Packages" / name) == digest, name


OTHER_ARCH = {"x86_64": "aarch64", "aarch64": "x86_64"}.get(ARCH)

# build_lapis of build-testdist, run on its own: ARCH [sysroot for a cross build].
REBUILD_LAPIS = """
import importlib.machinery, importlib.util, os, sys, tempfile
loader = importlib.machinery.SourceFileLoader("btd", sys.argv[1])
btd = importlib.util.module_from_spec(importlib.util.spec_from_loader("btd", loader))
loader.exec_module(btd)
cache, arch = btd.cache_root(), sys.argv[2]
cross = None
if arch != btd.host_arch():
    cross = btd.Sysroot(cache, btd.Apt(cache, btd.ARCHES[arch]), arch)
    cross.ensure()
out = tempfile.mkdtemp()
for n in btd.build_lapis(out, btd.Key(cache), arch, cross):
    print(os.path.join(out, n))
"""


@pytest.mark.skipif(ARCH != "x86_64" or not (TESTDIST / "aarch64" / ".stamp").exists(),
                    reason="needs an x86_64 host and the aarch64 repo")
def test_cross_built_lapis_is_reproducible(tmp_path):
    """The aarch64 lapis and lapis-sysupdate, cross-built again from a copy of
    the tree at another path (other TMPDIR, umask and so another rpmbuild
    dir), are the repo's bytes. Before -ffile-prefix-map in lapis.spec: the
    build dir's path was in the debug info, so the build id (and 18 bytes of
    /usr/bin/lapis) differed. Before LAPIS_SOURCE_TREE_DATA=OFF there: the
    source tree's path was compiled in as the dracut module fallback, so a
    tree checked out elsewhere (CI's clone) built another lapis."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    src = tmp_path / "elsewhere" / "src"
    files = subprocess.run(["git", "-C", str(SRCROOT), "ls-files", "-z"], check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (SRCROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SRCROOT / name, src / name)
    tool = src / TOOL.relative_to(SRCROOT)
    cp = subprocess.run([sys.executable, "-c", REBUILD_LAPIS, str(tool), "aarch64"],
                        env=dict(os.environ, TMPDIR=str(tmp)), capture_output=True, text=True,
                        timeout=1200, preexec_fn=lambda: os.umask(0o077))
    assert cp.returncode == 0, cp.stderr
    built = [pathlib.Path(p) for p in cp.stdout.split()]
    assert len(built) == 2 and all(p.name.endswith(".aarch64.rpm") for p in built), built
    for p in built:
        assert sha256(p) == sha256(TESTDIST / "aarch64" / "Packages" / p.name), p.name


@pytest.mark.skipif(not (TESTDIST / str(OTHER_ARCH) / ".stamp").exists(),
                    reason="the other arch's repo (%s) was not built" % OTHER_ARCH)
def test_other_arch_repo_installs(tmp_path):
    """The foreign arch's repo: lapis resolves every package with
    --forcearch, and rpm installs them all (with dependency checks and
    signatures required) into a root where rpm -Va is clean. Its binaries
    cannot run here, and librpm refuses foreign packages in lapis'
    transaction, so rpm -i --ignorearch does the install."""
    root = Root(tmp_path)
    r = root.lapis("--forcearch=%s" % OTHER_ARCH, "--assumeno", "install", "*")
    pkgs = sorted((TESTDIST / OTHER_ARCH / "Packages").glob("*.rpm"))
    assert "Installing:     %d packages" % len(pkgs) in r.out, r
    root.path.mkdir()
    rpm = ["rpm", "--root", root.path, "--dbpath", "/var/lib/rpm"]
    r = run_cmd(rpm + ["--import", TESTDIST / "RPM-GPG-KEY-lapis-testdist"])
    assert r.rc == 0, r
    r = run_cmd(rpm + ["-i", "--ignorearch", "--define", "_pkgverify_level signature"] + pkgs,
                timeout=600)
    assert r.rc == 0, r
    r = run_cmd(rpm + ["-Va"], timeout=300)
    assert r.rc == 0 and r.out == "", r
    elf = (root.path / "usr/bin/bash").read_bytes()[:20]
    assert elf[18] == {"aarch64": 183, "x86_64": 62}[OTHER_ARCH]     # e_machine
    assert list(root.path.glob("usr/lib/modules/*/vmlinuz"))


@pytest.mark.skipif(not (TESTDIST / str(OTHER_ARCH) / ".stamp").exists(),
                    reason="the other arch's repo (%s) was not built" % OTHER_ARCH)
def test_forcearch_installs_foreign_packages(tmp_path):
    """lapis --forcearch installs the foreign arch's packages itself (like
    dnf --forcearch: rpm's arch and OS checks are waived for a forced arch);
    signatures are still enforced. Scriptlets cannot run here: --noscripts."""
    root = Root(tmp_path)
    r = root.lapis("--forcearch=%s" % OTHER_ARCH, "-y", "--noscripts", "install", "bash")
    assert r.rc == 0, r
    elf = (root.path / "usr/bin/bash").read_bytes()[:20]
    assert elf[18] == {"aarch64": 183, "x86_64": 62}[OTHER_ARCH]     # e_machine
    r = root.rpm("-q", "--qf", "%{ARCH}", "bash")
    assert r.rc == 0 and r.out == OTHER_ARCH, r
