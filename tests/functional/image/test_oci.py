"""The OCI output of `lapis image` (src/image/oci.c, oci_layer.c).

A container root is installed from the test distribution (build/lapis
--installroot, no scriptlets) and given the awkward files a layer must carry
right: a file capability, a hard link, a long and a non-ASCII name, a numeric
owner without a passwd entry, an mtime after SOURCE_DATE_EPOCH, and kernel,
module and initrd files that a container must leave out. The stage is run by
tests/image/oci_driver (build/oci_driver) as the orchestrator would; the
outputs are checked with podman (runc, lowered ulimits: IMAGE-NOTES), skopeo
and umoci, and for byte-identical rebuilds.
"""

import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import struct
import subprocess
import tarfile
import time
import zlib

import pytest

SRCROOT = pathlib.Path(__file__).resolve().parents[3]
LAPIS_BIN = os.path.abspath(os.environ.get("LAPIS_BIN") or SRCROOT / "build" / "lapis")
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or SRCROOT / "build" / "testdist").resolve()
DRIVER = pathlib.Path(LAPIS_BIN).resolve().parent / "oci_driver"
EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"
VERSION = "1.0"
BASE = "box-%s.x86_64" % VERSION
# podman with its own image store under /tmp (vfs: no mounts left behind), so
# the images these tests pull do not pile up in the host's store.
STORE = pathlib.Path("/tmp/lapis-test-oci-podman-%d" % os.getpid())
PODMAN_BASE = ["podman", "--root", str(STORE / "root"), "--runroot", str(STORE / "run"),
               "--storage-driver", "vfs"]
PODMAN = PODMAN_BASE + ["run", "--rm", "--runtime", "runc",
                        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
LONG = "usr/share/lapis-test/" + "d" * 60 + "/" + "f" * 120         # name > 100 bytes: pax path
UTF8 = "usr/share/lapis-test/caf\u00e9-\u00fcber.txt"
# What a container leaves out: (kept as empty directories, left out entirely).
EMPTIED = ("boot", "efi", "dev", "proc", "sys", "run")
DROPPED = ("usr/lib/modules", "usr/lib/kernel", "usr/lib/systemd/boot")

pytestmark = [
    pytest.mark.skipif(not (TESTDIST / "x86_64" / ".stamp").exists(),
                       reason="test distribution not built: run `make testdist`"),
    pytest.mark.skipif(not DRIVER.exists(), reason="%s not built" % DRIVER),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, umoci unpack, setcap)"),
]


@pytest.fixture(scope="module", autouse=True)
def podman_store():
    yield
    subprocess.run(PODMAN_BASE + ["system", "reset", "-f"], capture_output=True, timeout=300)
    shutil.rmtree(STORE, ignore_errors=True)


def run(cmd, **kw):
    kw.setdefault("timeout", 300)
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, "%s failed (%d):\n%s\n%s" % (cmd, r.returncode, r.stdout, r.stderr)
    return r.stdout


def excluded(rel):
    return (any(rel == d or rel.startswith(d + "/") for d in DROPPED) or
            any(rel.startswith(d + "/") for d in EMPTIED))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    top = tmp_path_factory.mktemp("ociroot")
    reposd = top / "repos.d"
    reposd.mkdir()
    shutil.copy(TESTDIST / "testdist.repo", reposd)
    r = top / "root"
    run([LAPIS_BIN, "--installroot", r, "--setopt=reposdir=%s" % reposd,
         "--setopt=tsflags=nodocs,noscripts", "--releasever", "12", "-y",
         "install", "filesystem", "base-files", "base-passwd", "bash", "coreutils"])
    run(["setcap", "cap_net_raw+ep", r / "usr/bin/sleep"])
    os.link(r / "usr/bin/true", r / "usr/bin/true-hardlink")
    for name, text in ((LONG, "long\n"), (UTF8, "utf8\n"), ("opt/owned", "owned\n"),
                       ("opt/future", "future\n"), ("usr/lib/modules/6.1.0-test/vmlinuz", "k"),
                       ("usr/lib/modules/6.1.0-test/kernel/a.ko", "m"),
                       ("boot/initrd.img-6.1.0-test", "i"), ("boot/vmlinuz-6.1.0-test", "k"),
                       ("usr/lib/kernel/install.conf", "x"), ("run/stale.pid", "1"),
                       ("dev/null-ish", "")):
        p = r / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    os.chown(r / "opt/owned", 1234, 4321)
    os.utime(r / "opt/future", (EPOCH + 10**6, EPOCH + 10**6))
    return r


def write(root, outdir, *opts, arches=("x86_64",), env=None, cwd=None):
    outdir.mkdir(parents=True, exist_ok=True)
    args = [DRIVER, *opts]
    for a in arches:
        args += ["-a", a]
    return run(args + [root, outdir, "box", VERSION, EPOCH], env=env, cwd=cwd)


CONFIG_OPTS = ("-e", "/usr/bin/bash", "-e", "-c", "-c", "echo default-cmd",
               "-E", "FOO=bar baz", "-u", "1234", "-w", "/tmp", "-l", "org.example.team=lapis",
               "-l", "org.opencontainers.image.title=Box")


@pytest.fixture(scope="module")
def out(root, tmp_path_factory):
    d = tmp_path_factory.mktemp("ociout")
    write(root, d, *CONFIG_OPTS)
    return d


def layout(out, base=BASE):
    return out / ("%s.oci" % base)


def index_manifest(lay):
    idx = json.loads((lay / "index.json").read_text())
    (m,) = idx["manifests"]
    return idx, m


def blob(lay, digest):
    return (lay / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def manifest_and_config(lay):
    _, m = index_manifest(lay)
    man = json.loads(blob(lay, m["digest"]))
    return man, json.loads(blob(lay, man["config"]["digest"]))


def layer_tar(lay):
    man, _ = manifest_and_config(lay)
    (layer,) = man["layers"]
    return blob(lay, layer["digest"]), layer


@pytest.fixture(scope="module")
def pulled(out):
    """The layout pulled into podman's storage once; removed afterwards."""
    ref = "oci:%s:%s" % (layout(out), VERSION)
    yield run(PODMAN_BASE + ["pull", "-q", ref]).strip().splitlines()[-1]


def test_podman_runs_the_layout_and_honours_the_config(pulled):
    assert run(PODMAN + [pulled]).strip() == "default-cmd"
    got = run(PODMAN + [pulled, 'echo ok; id -u; pwd; echo "$FOO"; echo "$PATH"']).split("\n")
    assert got[:5] == ["ok", "1234", "/tmp", "bar baz",
                       "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    cfg = json.loads(run(PODMAN_BASE + ["image", "inspect", pulled]))[0]["Config"]
    assert cfg["Entrypoint"] == ["/usr/bin/bash", "-c"]
    assert cfg["Cmd"] == ["echo default-cmd"]
    assert cfg["User"] == "1234" and cfg["WorkingDir"] == "/tmp"
    assert cfg["Labels"]["org.opencontainers.image.title"] == "Box"   # the config's label wins
    assert cfg["Labels"]["org.example.team"] == "lapis"


def test_podman_runs_the_oci_archive(out):
    tar = out / ("%s.oci.tar" % BASE)
    got = run(PODMAN + ["--entrypoint", "", "oci-archive:%s:%s" % (tar, VERSION),
                        "/usr/bin/bash", "-c", "echo ok"])
    assert got.strip() == "ok"
    with tarfile.open(tar) as t:
        names = t.getnames()
        assert names[:2] == ["blobs", "blobs/sha256"] and names[-2:] == ["index.json", "oci-layout"]
        assert names[2:-2] == sorted(names[2:-2])
        assert all(m.mtime == EPOCH and m.uid == 0 and m.gid == 0 and not m.uname for m in t)


def test_config_json(out):
    lay = layout(out)
    idx, m = index_manifest(lay)
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["platform"] == {"architecture": "amd64", "os": "linux"}
    assert m["annotations"] == {"org.opencontainers.image.ref.name": VERSION}
    assert json.loads((lay / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    man, cfg = manifest_and_config(lay)
    assert man["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert list(cfg) == ["created", "architecture", "os", "config", "rootfs", "history"]
    assert cfg["created"] == CREATED
    assert cfg["history"] == [{"created": CREATED, "created_by": "lapis image build"}]
    assert cfg["config"]["Labels"] == {
        "org.example.team": "lapis", "org.opencontainers.image.created": CREATED,
        "org.opencontainers.image.title": "Box", "org.opencontainers.image.version": VERSION}
    assert cfg["config"]["Env"][1] == "FOO=bar baz"
    data, layer = layer_tar(lay)
    assert layer["size"] == len(data)
    assert cfg["rootfs"] == {"type": "layers",
                             "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()]}
    # canonical: what was written is what cJSON's unformatted print gives
    for raw in (blob(lay, m["digest"]), blob(lay, man["config"]["digest"]),
                (lay / "index.json").read_bytes()):
        assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode()


def test_skopeo_inspect(out):
    lay = layout(out)
    got = json.loads(run(["skopeo", "inspect", "oci:%s:%s" % (lay, VERSION)]))
    _, m = index_manifest(lay)
    man, _ = manifest_and_config(lay)
    assert got["Digest"] == m["digest"]
    assert got["Layers"] == [man["layers"][0]["digest"]]
    assert got["Architecture"] == "amd64" and got["Os"] == "linux" and got["Created"] == CREATED


def walk_sorted(root, rel=""):
    """The order the layer must have: each directory's names sorted bytewise,
    a directory before its contents, excluded paths left out."""
    d = os.path.join(root, rel) if rel else str(root)
    for name in sorted(os.listdir(os.fsencode(d))):
        name = os.fsdecode(name)
        path = rel + "/" + name if rel else name
        if excluded(path) or any(path == x for x in DROPPED):
            continue
        yield path
        full = os.path.join(d, name)
        if os.path.isdir(full) and not os.path.islink(full):
            yield from walk_sorted(root, path)


def test_layer_entries(out, root):
    data, _ = layer_tar(layout(out))
    raw = gzip.decompress(data)
    assert data[4:8] == b"\0\0\0\0"                      # gzip header mtime 0
    assert not data[3] & 0x08                            # and no file name
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        members = t.getmembers()
    names = [m.name for m in members]
    assert names == list(walk_sorted(root))
    by = {m.name: m for m in members}
    for d in EMPTIED:
        if (root / d).is_dir():
            assert by[d].isdir()
    assert not [n for n in names if excluded(n) or "vmlinuz" in n or "initrd" in n or ".ko" in n]
    assert by["usr/bin/true-hardlink"].islnk() and by["usr/bin/true-hardlink"].linkname == "usr/bin/true"
    assert by["bin"].issym() and by["bin"].linkname == "usr/bin"
    assert (by["opt/owned"].uid, by["opt/owned"].gid) == (1234, 4321)
    assert by["opt/future"].mtime == EPOCH
    assert all(m.mtime <= EPOCH and not m.uname and not m.gname for m in members)
    assert all(m.uid == 0 for m in members if m.name != "opt/owned")
    # pax headers only where ustar cannot say it; never a time, never a pid
    pax = {m.name: m.pax_headers for m in members if m.pax_headers}
    assert set(pax) == {"usr/bin/sleep", LONG, UTF8}, pax
    assert "SCHILY.xattr.security.capability" in pax["usr/bin/sleep"]
    keys = {k for h in pax.values() for k in h}
    assert not keys & {"mtime", "atime", "ctime"}
    assert b"PaxHeader/" in raw and b"PaxHeaders." not in raw


def test_umoci_unpack_matches_the_root(out, root, tmp_path):
    bundle = tmp_path / "bundle"
    run(["umoci", "unpack", "--image", "%s:%s" % (layout(out), VERSION), bundle])
    rootfs = bundle / "rootfs"
    got = sorted(os.path.relpath(os.path.join(d, n), rootfs)
                 for d, dirs, files in os.walk(rootfs) for n in dirs + files)
    want = sorted(walk_sorted(root))
    assert got == want
    assert "cap_net_raw=ep" in run(["getcap", rootfs / "usr/bin/sleep"])
    assert (rootfs / "usr/bin/true").stat().st_ino == (rootfs / "usr/bin/true-hardlink").stat().st_ino
    assert (rootfs / UTF8).read_text() == "utf8\n" and (rootfs / LONG).read_text() == "long\n"
    st = (rootfs / "opt/owned").stat()
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert not (rootfs / "usr/lib/modules").exists() and os.listdir(rootfs / "boot") == []


def tree_digests(d):
    got = {os.path.relpath(os.path.join(dp, n), d):
           hashlib.sha256(pathlib.Path(dp, n).read_bytes()).hexdigest()
           for dp, _, files in os.walk(d) for n in files}
    got.update({os.path.relpath(os.path.join(dp, n), d) + " mode":
                oct(os.lstat(os.path.join(dp, n)).st_mode)
                for dp, dirs, files in os.walk(d) for n in dirs + files})
    return got


def test_reproducible(out, root, tmp_path):
    """A second write at another time, umask, cwd and TMPDIR: the same bytes."""
    time.sleep(1.1)
    other = tmp_path / "again"
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    old = os.umask(0o077)
    try:
        write(root, other, *CONFIG_OPTS, env=dict(os.environ, TMPDIR=str(tmp), LANG="C", LC_ALL="C"),
              cwd=tmp)
    finally:
        os.umask(old)
    a, b = tree_digests(out), tree_digests(other)
    assert a == b
    assert len([k for k in a if "/blobs/sha256/" in k and " mode" not in k]) == 3
    assert {v for k, v in a.items() if k.endswith(" mode")} == {"0o40755", "0o100644"}
    print("\nOCI digests: archive sha256 %s" % a["%s.oci.tar" % BASE])


def test_size_ratio(out, root):
    data, _ = layer_tar(layout(out))
    tar_bytes = len(gzip.decompress(data))
    seen, file_bytes = set(), 0
    for rel in walk_sorted(root):
        st = os.lstat(root / rel)
        if os.path.isfile(root / rel) and not os.path.islink(root / rel) and st.st_ino not in seen:
            seen.add(st.st_ino)
            file_bytes += st.st_size
    ratio = tar_bytes / file_bytes
    print("\nOCI layer: %d tar bytes / %d file bytes = %.4f; gzip %d bytes"
          % (tar_bytes, file_bytes, ratio, len(data)))
    assert ratio <= 1.02


def chunked_gzip(data, level=4, chunk=1 << 20):
    """The layout of src/image/pgzip.c: one gzip member, raw deflate in 1 MiB
    chunks, each primed with the 32 KiB before it and ended by a sync flush."""
    out = [bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3])]
    pos = 0
    while True:
        part = data[pos:pos + chunk]
        last = pos + chunk >= len(data)
        dict_ = data[max(0, pos - 32768):pos]
        z = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY,
                             **({"zdict": dict_} if dict_ else {}))
        out.append(z.compress(part) + z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
        pos += chunk
        if last:
            break
    out.append(struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))
    return b"".join(out)


def test_gzip_layer_is_chunked_for_all_cores(out):
    """The gzip layer is compressed in fixed 1 MiB chunks (on every core),
    byte for byte what the layout gives, so it is the same on any machine;
    and it is one gzip member that gzip, Python and Go read."""
    data, _ = layer_tar(layout(out))
    tar = gzip.decompress(data)
    assert len(tar) > 3 << 20
    assert data == chunked_gzip(tar)
    d = zlib.decompressobj(31)
    assert d.decompress(data) == tar and d.eof and d.unused_data == b""      # a single member


def test_zstd_layer_runs_in_podman(root, tmp_path):
    write(root, tmp_path, "-z")
    lay = layout(tmp_path)
    data, layer = layer_tar(lay)
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert data[:4] == b"\x28\xb5\x2f\xfd"
    got = run(PODMAN + ["oci:%s:%s" % (lay, VERSION), "/usr/bin/bash", "-c", "echo zstd-ok"])
    assert got.strip() == "zstd-ok"
    gz = json.loads(run(["skopeo", "inspect", "oci:%s:%s" % (lay, VERSION)]))
    assert gz["Architecture"] == "amd64"


def test_multi_arch_index(root, tmp_path):
    write(root, tmp_path, arches=("x86_64", "aarch64"))
    lay = layout(tmp_path, "box-%s" % VERSION)
    _, top = index_manifest(lay)
    assert top["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert top["annotations"] == {"org.opencontainers.image.ref.name": VERSION}
    inner = json.loads(blob(lay, top["digest"]))
    assert [m["platform"] for m in inner["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "variant": "v8", "os": "linux"}]
    for m in inner["manifests"]:
        _, m_arch = index_manifest(layout(tmp_path, "box-%s.%s" % (VERSION, {
            "amd64": "x86_64", "arm64": "aarch64"}[m["platform"]["architecture"]])))
        assert m["digest"] == m_arch["digest"]
    ref = "oci:%s:%s" % (lay, VERSION)
    assert json.loads(run(["skopeo", "inspect", "--override-arch", "arm64", ref]))["Architecture"] == "arm64"
    assert run(PODMAN + [ref, "/usr/bin/bash", "-c", "echo multi-ok"]).strip() == "multi-ok"
    tar = tmp_path / ("box-%s.oci.tar" % VERSION)
    assert run(PODMAN + ["oci-archive:%s:%s" % (tar, VERSION), "/usr/bin/true"]) == ""


def test_unknown_arch_is_one_clear_error(root, tmp_path):
    r = subprocess.run([DRIVER, "-a", "mips", root, tmp_path, "box", VERSION, str(EPOCH)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == ("oci_driver: the arch 'mips' has no OCI platform name "
                                "(use x86_64 or aarch64)")


CLI_CONFIG = """\
name: box
version: "1.0"
arch: x86_64
releasever: "12"
repos:
  - file: %s
packages:
  install: [bash, coreutils]
container:
  entrypoint: [/bin/bash, -c]
  cmd: ["echo hello from lapis"]
  env:
    LANG: C.UTF-8
  user: "0"
  workingDir: /tmp
  labels:
    org.opencontainers.image.description: bash and coreutils
  layerCompression: %s
output:
  formats: [oci, oci-archive]
"""


def cli_build(lapis_image, config, outdir, env_extra, cwd=None):
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("source_date_epoch",)}
    env.update(env_extra, SOURCE_DATE_EPOCH=str(EPOCH))
    r = lapis_image("build", "--no-cache", "-o", outdir, config, env=env, cwd=cwd)
    assert r.rc == 0, str(r)
    return r


def build_twice(lapis_image, testdist_repo, tmp_path, compression, umask):
    """Two `lapis image build`s, the second at another time, cwd and TMPDIR
    (and umask): the outputs' directories."""
    config = tmp_path / "box.yaml"
    config.write_text(CLI_CONFIG % (testdist_repo, compression))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    for mask, out, env, cwd in ((0o022, "a", {}, None), (umask, "b", {"TMPDIR": str(tmp)}, tmp)):
        old = os.umask(mask)
        try:
            cli_build(lapis_image, config, tmp_path / out, env, cwd=cwd)
        finally:
            os.umask(old)
    a, b = tmp_path / "a", tmp_path / "b"
    assert hashlib.sha256((a / ("%s.oci.tar" % BASE)).read_bytes()).hexdigest() == \
        hashlib.sha256((b / ("%s.oci.tar" % BASE)).read_bytes()).hexdigest()
    assert tree_digests(layout(a)) == tree_digests(layout(b))
    return a


def test_cli_build_is_reproducible_under_another_umask(lapis_image, testdist_repo, tmp_path):
    """The build runs with umask 022 whatever the caller's, so a build under
    umask 077 gives the same bytes."""
    build_twice(lapis_image, testdist_repo, tmp_path, "gzip", 0o077)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_cli_build_runs_and_is_reproducible(lapis_image, testdist_repo, tmp_path, compression):
    """Through `lapis image build`: the outputs run in podman, and a second
    build (other time, cwd, TMPDIR) gives the same OCI bytes."""
    a = build_twice(lapis_image, testdist_repo, tmp_path, compression, 0o022)
    man, cfg = manifest_and_config(layout(a))
    assert man["layers"][0]["mediaType"].endswith("+" + compression)
    assert cfg["config"]["Labels"]["org.opencontainers.image.version"] == VERSION
    tar = a / ("%s.oci.tar" % BASE)
    assert run(PODMAN + ["oci-archive:%s:%s" % (tar, VERSION)]).strip() == "hello from lapis"
    got = run(PODMAN + ["oci:%s:%s" % (layout(a), VERSION), 'id -u; pwd; echo "$LANG"']).split()
    assert got == ["0", "/tmp", "C.UTF-8"]
    run(["skopeo", "inspect", "oci:%s:%s" % (layout(a), VERSION)])
