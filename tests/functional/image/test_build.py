"""`lapis image build|lock|inspect`: the orchestration (src/image/build.c,
publish.c, compose.c) and bad input (issue 12 section 2).

Every bad input gives one clear error line, exit 1, nothing in OUTDIR (no
staging dir), and the next build succeeds.
"""

import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

from .conftest import FIXTURES, LAPIS_BIN, image_env, sha256

SMALL = ["bash"]
BIGGER = ["systemd", "bash", "coreutils", "util-linux"]


def write_config(tmp_path, testdist_repo, install=SMALL, formats=("oci",), extra="", name="c.yaml"):
    cfg = tmp_path / name
    cfg.write_text('name: t\nversion: "1"\nreleasever: "12"\nrepos:\n  - file: %s\n'
                   'packages:\n  install: [%s]\noutput:\n  formats: [%s]\n%s'
                   % (testdist_repo, ", ".join(install), ", ".join(formats), extra))
    return cfg


def leftovers(outdir):
    """What a failed build left in OUTDIR: everything (there was nothing before)."""
    return sorted(p.name for p in pathlib.Path(outdir).iterdir()) if pathlib.Path(outdir).exists() else []


def assert_one_error(r, *words, rc=1):
    assert r.rc == rc, r
    assert len(r.error_lines) == 1, r
    for w in words:
        assert w in r.error_lines[0], r
    assert "(null)" not in r.err and "no error" not in r.err, r


def assert_next_build_works(lapis_image, cfg, outdir):
    """The build after a failure succeeds; OUTDIR holds no staging dir."""
    r = lapis_image("build", "-o", outdir, cfg)
    assert not [n for n in leftovers(outdir) if n.startswith(".lapis-build-")], r
    assert r.rc == 0, r
    assert (pathlib.Path(outdir) / "SHA256SUMS").exists(), r
    return r


# ---- bad input -------------------------------------------------------------

def test_bad_yaml(tmp_path, testdist_repo, lapis_image):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('name: t\nversion: "1"\npackages: {install: [bash\n')
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, cfg)
    assert_one_error(r, str(cfg))
    assert leftovers(out) == []
    assert_next_build_works(lapis_image, write_config(tmp_path, testdist_repo, name="good.yaml"), out)


def test_unknown_key(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo, extra="hostnme: x\n")
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, cfg)
    assert_one_error(r, "%s:10: hostnme: unknown key" % cfg)
    assert leftovers(out) == []


def test_missing_repo(tmp_path, testdist_repo, lapis_image):
    """A repo whose baseurl has nothing: the repo's error, nothing left behind."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text('name: t\nversion: "1"\nrepos:\n  - id: gone\n    baseurl: file://%s/nothing\n'
                   '    gpgkey: file://%s/RPM-GPG-KEY-lapis-testdist\n'
                   'packages:\n  install: [bash]\noutput:\n  formats: [oci]\n'
                   % (tmp_path, testdist_repo.parent))
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, cfg)
    assert_one_error(r, "gone")
    assert leftovers(out) == []
    assert_next_build_works(lapis_image, write_config(tmp_path, testdist_repo, name="good.yaml"), out)


def test_missing_repo_file(tmp_path, lapis_image):
    cfg = tmp_path / "c.yaml"
    cfg.write_text('name: t\nversion: "1"\nrepos:\n  - file: nosuch.repo\n'
                   'packages:\n  install: [bash]\n')
    r = lapis_image("build", "-o", tmp_path / "out", cfg)
    assert_one_error(r, "nosuch.repo")
    assert leftovers(tmp_path / "out") == []


def test_unknown_package(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo, install=["bash", "no-such-package"])
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, cfg)
    assert_one_error(r, "no-such-package")
    assert leftovers(out) == []
    assert_next_build_works(lapis_image, write_config(tmp_path, testdist_repo, name="good.yaml"), out)


def test_unsigned_package(tmp_path, testdist_repo, lapis_image):
    """A repo of unsigned rpms is refused as `lapis install` refuses it."""
    if not (FIXTURES / "repos" / "unsigned").is_dir():
        pytest.skip("fixtures not built (tests/fixtures/build-repos)")
    cfg = tmp_path / "c.yaml"
    cfg.write_text('name: t\nversion: "1"\nrepos:\n  - id: unsigned\n    baseurl: file://%s\n'
                   '    gpgkey: file://%s\npackages:\n  install: [unsignedpkg]\n'
                   'output:\n  formats: [oci]\n'
                   % (FIXTURES / "repos" / "unsigned", FIXTURES / "keys" / "RPM-GPG-KEY-lapis-test"))
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, cfg)
    assert_one_error(r, "unsignedpkg")
    assert "sign" in r.error_lines[0].lower(), r
    assert leftovers(out) == []


def test_output_dir_is_a_file(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo)
    (tmp_path / "out").write_text("not a dir")
    r = lapis_image("build", "-o", tmp_path / "out", cfg)
    assert_one_error(r, "out", "-o")
    assert (tmp_path / "out").read_text() == "not a dir"


def test_output_dir_read_only(tmp_path, testdist_repo, lapis_image):
    """OUTDIR on a read-only mount: one line saying it is not writable."""
    cfg = write_config(tmp_path, testdist_repo)
    out = tmp_path / "ro"
    out.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", out]).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        r = lapis_image("build", "-o", out, cfg)
        assert_one_error(r, "not writable", str(out))
        assert leftovers(out) == []
    finally:
        subprocess.run(["umount", out])
    assert_next_build_works(lapis_image, cfg, out)


def start_build(lapis_image, tmp_path, cfg, out):
    # --no-cache: the warm-up build's outputs are cached; this one must really compose.
    cmd = [LAPIS_BIN, "image", "build", "--no-cache", "--cachedir", str(lapis_image.cachedir),
           "-o", str(out), str(cfg)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=image_env(tmp_path), stdin=subprocess.DEVNULL)


def wait_for_compose(out, proc, timeout=120):
    """Until the staging dir has a root with an rpmdb being written: compose runs."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        stages = [p for p in pathlib.Path(out).glob(".lapis-build-*/*/root/usr")] if out.exists() else []
        if stages:
            return stages[0].parents[2]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("compose did not start")


def test_kill9_during_compose_next_build_sweeps(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo, install=BIGGER)
    out = tmp_path / "out"
    # Warm the package cache first so the kill lands in the install, not the download.
    lapis_image("build", "-o", tmp_path / "warm", cfg)
    p = start_build(lapis_image, tmp_path, cfg, out)
    stage = wait_for_compose(out, p)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert stage.exists()                      # a dead owner's staging dir
    assert_next_build_works(lapis_image, cfg, out)
    assert not stage.exists()


def test_sigint_exits_130_and_removes_staging(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo, install=BIGGER)
    out = tmp_path / "out"
    lapis_image("build", "-o", tmp_path / "warm", cfg)
    p = start_build(lapis_image, tmp_path, cfg, out)
    wait_for_compose(out, p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err
    assert "interrupted" in err, err
    assert leftovers(out) == [], err
    assert_next_build_works(lapis_image, cfg, out)


def test_usage_errors(tmp_path, lapis_image):
    # Usage errors exit 2, as every lapis command's (dnf5's rule); a config that cannot be read is 1.
    r = lapis_image("build", cachedir=False)
    assert_one_error(r, "CONFIG", rc=2)
    r = lapis_image("frobnicate", cachedir=False)
    assert_one_error(r, "frobnicate", rc=2)
    r = lapis_image("build", "--format", "floppy", tmp_path / "x.yaml", cachedir=False)
    assert r.rc == 1 and "x.yaml" in r.err, r
    # Global options before "image" (with their values) are lapis', the rest image's.
    cp = subprocess.run([LAPIS_BIN, "-c", "/nonexistent", "--json", "image", "frobnicate"],
                        capture_output=True, text=True)
    assert cp.returncode == 2 and "frobnicate" in cp.stderr, cp.stderr
    assert json.loads(cp.stdout)["error"]["message"], cp.stdout


def test_relative_paths(tmp_path, testdist_repo, lapis_image):
    """-o, --cachedir and CONFIG relative to the current directory."""
    write_config(tmp_path, testdist_repo)
    r = lapis_image("build", "--cachedir", "cache", "-o", "out", "c.yaml", cachedir=False, cwd=tmp_path)
    assert "cachedir" not in r.err, r
    assert r.rc == 0, r
    assert (tmp_path / "out" / "SHA256SUMS").exists() and (tmp_path / "cache" / "images").is_dir()


def test_bad_format_names_the_format(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo)
    r = lapis_image("build", "--format", "raw,floppy", "-o", tmp_path / "out", cfg)
    assert_one_error(r, "floppy", rc=2)
    assert leftovers(tmp_path / "out") == []


# ---- lock ------------------------------------------------------------------


def test_lock_lists_every_package_with_its_rpm_sha256(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo)
    r = lapis_image("lock", cfg)
    assert r.rc == 0, r
    lock = json.loads((tmp_path / "c.yaml.lock").read_text())
    text = json.dumps(lock)
    assert '"bash"' in text, lock
    rpms = {p.name: sha256(p) for p in (testdist_repo.parent / "x86_64" / "Packages").glob("bash-[0-9]*.rpm")}
    assert rpms and all(h in text for h in rpms.values()), lock
    assert not list(tmp_path.glob("lapis-lock-*"))


def test_locked_build_fails_on_a_changed_sha256(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo)
    assert lapis_image("lock", cfg).rc == 0
    lockf = tmp_path / "c.yaml.lock"
    good = lockf.read_text()
    out = tmp_path / "out"
    r = lapis_image("build", "--locked", "-o", out, cfg)
    assert r.rc == 0, r                            # exactly the lock
    rpm = sorted((testdist_repo.parent / "x86_64" / "Packages").glob("bash-[0-9]*.rpm"))[0]
    lockf.write_text(good.replace(sha256(rpm), "0" * 64))
    r = lapis_image("build", "--locked", "-o", out, cfg)
    assert_one_error(r, "--locked", "bash", "0" * 64)
    assert not [n for n in leftovers(out) if n.startswith(".lapis-build-")]
    lockf.write_text(good.replace('"version": "5', '"version": "9'))
    r = lapis_image("build", "--locked", "-o", out, cfg)
    assert_one_error(r, "--locked", "bash")


def test_locked_without_a_lock(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo)
    r = lapis_image("build", "--locked", "-o", tmp_path / "out", cfg)
    assert_one_error(r, "c.yaml.lock", "lapis image lock")


# ---- finished builds (turn on when the stages land) --------------------------

@pytest.fixture
def oci_build(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo)
    out = tmp_path / "out"
    r = lapis_image("build", "--json", "-o", out, cfg)
    assert r.rc == 0, r
    return cfg, out, r


def test_oci_build_outputs_and_sums(oci_build):
    cfg, out, r = oci_build
    doc = r.json() if hasattr(r, "json") else json.loads(r.out)
    names = {o["name"] for o in doc["outputs"]}
    assert {"t-1.x86_64.spdx.json", "SHA256SUMS"} <= names, doc
    assert any(n.endswith(".oci") or n.endswith(".oci.tar") for n in names), doc
    c = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert c.returncode == 0, c.stdout + c.stderr
    assert [ln.split("  ")[1] for ln in (out / "SHA256SUMS").read_text().splitlines()] == \
        sorted(ln.split("  ")[1] for ln in (out / "SHA256SUMS").read_text().splitlines())
    assert not [n for n in leftovers(out) if n.startswith(".")]
    assert doc["packages"] > 0 and doc["stages"], doc


@pytest.mark.serial   # wall time: not beside other tests
def test_unchanged_rebuild_comes_from_the_cache(oci_build, lapis_image):
    cfg, out, cold = oci_build
    before = (out / "SHA256SUMS").read_text()
    warm = lapis_image("build", "--json", "-o", out, cfg)
    assert warm.rc == 0, warm
    doc = json.loads(warm.out)
    assert doc["cached"] is True, doc
    assert (out / "SHA256SUMS").read_text() == before
    assert warm.elapsed <= 0.5 * cold.elapsed, (warm.elapsed, cold.elapsed)
    print("cold %.2fs, unchanged rebuild %.2fs (%.2fx)" % (cold.elapsed, warm.elapsed,
                                                            warm.elapsed / cold.elapsed))


def test_inspect_oci_json(oci_build, lapis_image):
    cfg, out, r = oci_build
    layout = [p for p in out.iterdir() if p.name.endswith(".oci")]
    if not layout:
        pytest.skip("no OCI layout dir")
    i = lapis_image("inspect", "--json", layout[0], cachedir=False)
    assert i.rc == 0, i
    doc = json.loads(i.out)
    assert doc["type"] == "oci-layout" and doc["manifests"], doc


def test_failed_build_keeps_the_previous_outputs(oci_build, tmp_path, testdist_repo, lapis_image):
    """Same-named outputs are replaced only when a build succeeds."""
    cfg, out, r = oci_build
    before = (out / "SHA256SUMS").read_text()
    bad = write_config(tmp_path, testdist_repo, install=["bash", "no-such-package"])
    bad.rename(cfg)                                  # same name, so the same outputs
    r = lapis_image("build", "-o", out, cfg)
    assert_one_error(r, "no-such-package")
    assert (out / "SHA256SUMS").read_text() == before
    c = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert c.returncode == 0, c.stdout


def layer_members(out):
    """Names and first bytes of /usr/bin/bash in the OCI layout's single layer."""
    import tarfile
    layout = next(p for p in out.iterdir() if p.name.endswith(".oci"))
    index = json.loads((layout / "index.json").read_text())
    blob = lambda d: layout / "blobs" / "sha256" / d.split(":")[1]
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    with tarfile.open(blob(manifest["layers"][0]["digest"])) as t:
        names = set(t.getnames())
        bash = next(m for m in t.getmembers() if m.name.lstrip("./") == "usr/bin/bash")
        head = t.extractfile(bash).read(20)
    return {n.lstrip("./") for n in names}, head


def test_compose_installs_through_lapis_and_leaves_nothing_of_its_own(oci_build, testdist_repo):
    """The composed root: bash installed, no docs (nodocs default), none of
    lapis' history or lock, no package cache; the SBOM names each rpm's sha256."""
    cfg, out, r = oci_build
    names, head = layer_members(out)
    assert "usr/bin/bash" in names
    assert head[18] == {"x86_64": 62, "aarch64": 183}[os.uname().machine]
    assert not [n for n in names if n.startswith("usr/share/doc/") and n != "usr/share/doc/"], names
    assert not [n for n in names if "history.sqlite" in n or n.startswith("var/cache/lapis")], names
    sbom = (out / "t-1.x86_64.spdx.json").read_text()
    rpm = sorted((testdist_repo.parent / "x86_64" / "Packages").glob("bash-[0-9]*.rpm"))[0]
    assert sha256(rpm) in sbom


def test_nothing_written_outside_outdir_and_cache(tmp_path, testdist_repo, lapis_image):
    cfg = write_config(tmp_path, testdist_repo)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = image_env(tmp_path)
    env["TMPDIR"] = str(tmpdir)
    r = lapis_image("build", "-o", tmp_path / "out", cfg, env=env)
    assert r.rc == 0, r
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "cache", "home", "out", "tmp"]


OTHER = {"x86_64": "aarch64", "aarch64": "x86_64"}.get(os.uname().machine)


def test_cross_arch_oci_build(tmp_path, testdist_repo, lapis_image):
    """--arch aarch64 on an x86_64 host: the foreign root is installed through
    lapis (forced arch, no scriptlets) and its OCI image holds aarch64 binaries."""
    if not (testdist_repo.parent / OTHER / ".stamp").exists():
        pytest.skip("the %s test distribution was not built" % OTHER)
    cfg = write_config(tmp_path, testdist_repo)
    out = tmp_path / "out"
    r = lapis_image("build", "--arch", OTHER, "-o", out, cfg)
    assert r.rc == 0, r
    assert (out / ("t-1.%s.spdx.json" % OTHER)).exists(), r
    names, head = layer_members(out)
    assert head[18] == {"aarch64": 183, "x86_64": 62}[OTHER]


def test_signed_sums(tmp_path, testdist_repo, lapis_image):
    """output.signing: SHA256SUMS.asc, a detached armored signature gpg verifies."""
    import shutil
    home = tmp_path / "gnupg"
    shutil.copytree(FIXTURES / "gnupg", home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    fpr = next(ln.split(":")[9] for ln in subprocess.run(
        ["gpg", "--homedir", home, "-K", "--with-colons"], capture_output=True, text=True).stdout.splitlines()
        if ln.startswith("fpr:"))
    cfg = write_config(tmp_path, testdist_repo,
                       extra="  signing:\n    keyId: %s\n    gnupgHome: %s\n" % (fpr, home))
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, cfg)
    assert r.rc == 0, r
    assert (out / "SHA256SUMS.asc").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    v = subprocess.run(["gpg", "--homedir", home, "--verify", out / "SHA256SUMS.asc", out / "SHA256SUMS"],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)


def test_repo_change_invalidates_the_cached_image(tmp_path, lapis_image):
    """The rebuild cache is keyed by the resolved package set after a metadata
    refresh: a new package version in the repo means a new build, not the
    cached outputs."""
    import shutil
    repo = tmp_path / "repo"
    repo.mkdir()
    base = FIXTURES / "repos" / "base"
    if not base.is_dir():
        pytest.skip("fixtures not built")
    for p in base.glob("*.rpm"):
        shutil.copy(p, repo)
    subprocess.run(["createrepo_c", "-q", repo], check=True)
    cfg = tmp_path / "c.yaml"
    cfg.write_text('name: t\nversion: "1"\nrepos:\n  - id: r\n    baseurl: file://%s\n'
                   '    gpgkey: file://%s\n    repoGpgcheck: false\npackages:\n  install: [hello]\n'
                   'output:\n  formats: [oci]\n' % (repo, FIXTURES / "keys" / "RPM-GPG-KEY-lapis-test"))
    out = tmp_path / "out"
    r = lapis_image("build", "--json", "-o", out, cfg)
    assert r.rc == 0, r
    assert '"hello"' in (out / "t-1.x86_64.spdx.json").read_text()
    shutil.copy(FIXTURES / "repos" / "updates" / "hello-2.0-1.x86_64.rpm", repo)
    subprocess.run(["createrepo_c", "-q", "--update", repo], check=True)
    r2 = lapis_image("build", "--json", "-o", out, cfg)
    assert r2.rc == 0, r2
    assert json.loads(r2.out)["cached"] is False, r2
    assert json.loads(r2.out)["cache_key"] != json.loads(r.out)["cache_key"]
    assert "2.0-1" in (out / "t-1.x86_64.spdx.json").read_text()


def test_image_cache_keeps_the_newest_four(tmp_path, testdist_repo, lapis_image):
    out = tmp_path / "out"
    for v in range(1, 7):
        cfg = write_config(tmp_path, testdist_repo, name="c%d.yaml" % v)
        cfg.write_text(cfg.read_text().replace('version: "1"', 'version: "%d"' % v))
        r = lapis_image("build", "-o", out, cfg)
        assert r.rc == 0, r
    entries = [p for p in (lapis_image.cachedir / "images").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 4, entries


def test_same_bytes_whatever_the_umask(tmp_path, testdist_repo, lapis_image):
    """Two builds (umask 022 and 077, other cwd and TMPDIR, later): the same
    SHA256SUMS. The build runs with umask 022 whatever the caller's."""
    cfg = write_config(tmp_path, testdist_repo)
    sums = []
    for mask, name in ((0o022, "a"), (0o077, "b")):
        tmp = tmp_path / ("tmp-" + name)
        tmp.mkdir()
        env = image_env(tmp_path)
        env["TMPDIR"] = str(tmp)
        old = os.umask(mask)
        try:
            r = lapis_image("build", "--no-cache", "-o", tmp_path / name, cfg, env=env, cwd=tmp)
        finally:
            os.umask(old)
        assert r.rc == 0, r
        sums.append((tmp_path / name / "SHA256SUMS").read_text())
        time.sleep(1.1)
    assert sums[0] == sums[1]


def test_format_option_replaces_configured_formats(tmp_path, testdist_repo, lapis_image):
    """--format decides what every stage writes: the config asks for the OCI
    layout, the command line for the archive only (the OCI stage once read the
    config's list and recorded no output)."""
    cfg = write_config(tmp_path, testdist_repo, formats=("oci",))
    out = tmp_path / "out"
    r = lapis_image("build", "-o", out, "--format", "oci-archive", cfg)
    assert r.rc == 0, r
    names = sorted(p.name for p in out.iterdir())
    assert names == ["SHA256SUMS", "t-1.%s.oci.tar" % os.uname().machine,
                     "t-1.%s.spdx.json" % os.uname().machine], names
    r = lapis_image("build", "-o", tmp_path / "out2", "--format", "oci,oci-archive", cfg)
    assert r.rc == 0, r
    assert (tmp_path / "out2" / ("t-1.%s.oci" % os.uname().machine) / "index.json").exists(), r
    text = lapis_image("inspect", tmp_path / "out2" / ("t-1.%s.oci" % os.uname().machine),
                       cachedir=False)
    assert text.rc == 0, text
    assert any(l.startswith("  name=bash version=") for l in text.out.splitlines()), text
