"""lapis-sysupdate offline (--image DISK) against a 127.0.0.1 update server
(docs/sysupdate.md): a real GPT A/B disk image (sgdisk, mkfs.vfat, mtools),
real erofs /usr images (mkfs.erofs), dm-verity trees (veritysetup), zstd
bundles signed with an Ed25519 key made here (openssl genpkey), served by
tests/fixtures/httpserver.py. Each refusal: one error line, exit 1, and the
inactive slot's bytes unchanged.
"""

import hashlib
import json
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent.parent
sys.path.insert(0, str(SRCROOT / "tests" / "fixtures"))
import httpserver  # noqa: E402

AGENT = os.path.abspath(os.environ.get("LAPIS_SYSUPDATE_BIN")
                        or pathlib.Path(os.environ.get("LAPIS_BIN") or SRCROOT / "build" / "lapis").parent
                        / "lapis-sysupdate")
TOOLS = ("sgdisk", "mkfs.vfat", "mcopy", "mkfs.erofs", "veritysetup", "openssl")
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS) or not os.access(AGENT, os.X_OK),
                                reason="needs %s and %s" % (", ".join(TOOLS), AGENT))

MIB = 1 << 20
USR_TYPE = "8484680c-9521-48c6-9c11-b0720656f69e"
VERITY_TYPE = "77ff5f63-e7b6-4633-acf4-1565b864c0e6"
# start MiB, size MiB, label, type
LAYOUT = [(1, 8, "esp", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),
          (9, 12, "usr-a", USR_TYPE), (21, 1, "usr-a-verity", VERITY_TYPE),
          (22, 12, "usr-b", USR_TYPE), (34, 1, "usr-b-verity", VERITY_TYPE),
          (35, 4, "root", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709")]
CHUNK = 64 * 1024   # small frames: a few MiB of usr are many frames (resume points)


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kw)


def ok(cmd, **kw):
    r = run(cmd, **kw)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r


def part(label):
    return next((s * MIB, n * MIB) for s, n, lab, _ in LAYOUT if lab == label)


def digest(disk, label):
    off, size = part(label)
    with open(disk, "rb") as f:
        f.seek(off)
        return hashlib.sha256(f.read(size)).hexdigest()


def make_disk(path, usr_a, verity_a, uki_a):
    with open(path, "wb") as f:
        f.truncate(40 * MIB)
    args = ["sgdisk", "-Z"]
    for i, (start, size, label, typ) in enumerate(LAYOUT, 1):
        args += ["-n", "%d:%d:%d" % (i, start * 2048, (start + size) * 2048 - 1),
                 "-t", "%d:%s" % (i, typ), "-c", "%d:%s" % (i, label)]
    ok(args + [path])
    esp = path.parent / "esp.img"
    ok(["mkfs.vfat", "-C", esp, str(8 * 1024)])
    ok(["mmd", "-i", esp, "::/EFI", "::/EFI/Linux"])
    ok(["mcopy", "-i", esp, uki_a, "::/EFI/Linux/lapis_1.0.efi"])
    with open(path, "r+b") as f:
        for label, src in (("esp", esp), ("usr-a", usr_a), ("usr-a-verity", verity_a)):
            f.seek(part(label)[0])
            f.write(pathlib.Path(src).read_bytes())


def esp_names(disk):
    r = ok(["mdir", "-b", "-i", "%s@@%d" % (disk, part("esp")[0]), "::/EFI/Linux"],
           env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    return sorted(os.path.basename(line) for line in r.stdout.split())


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.www = tmp / "www"
        self.www.mkdir()
        self.keys = tmp / "keys"
        self.keys.mkdir()
        self.key = tmp / "release.key"
        ok(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.key])
        ok(["openssl", "pkey", "-in", self.key, "-pubout", "-out", self.keys / "release.pem"])
        self.disk = tmp / "host.raw"
        self.state = tmp / "state"
        self.server, self.port = httpserver.start(str(self.www))

    def url(self, knobs=""):
        return "http://127.0.0.1:%d%s/" % (self.port, knobs)

    def usr(self, version, payload_bytes):
        root = self.tmp / ("usr-" + version)
        shutil.rmtree(root, ignore_errors=True)
        (root / "lib").mkdir(parents=True)
        (root / "lib" / "os-release").write_text("VERSION_ID=%s\n" % version)
        # incompressible, so the payload has many frames
        (root / "lib" / "blob").write_bytes(random.Random(version).randbytes(payload_bytes))
        img = self.tmp / ("usr-%s.erofs" % version)
        ok(["mkfs.erofs", "--quiet", "-T0", "-U", "6d8d3a7c-1b1e-4c5e-9b0e-2f6a4c0e9d11", "--all-root",
            img, root])
        uki = self.tmp / ("uki-%s.efi" % version)
        uki.write_bytes(b"MZ fake UKI " + version.encode() * 5000)
        return img, uki

    def bundle(self, version, size=MIB, key=None, min_from=None):
        img, uki = self.usr(version, size)
        args = [AGENT, "bundle", "--key", key or self.key, "--version", version, "--arch", "x86_64",
                "--usr", img, "--uki", uki, "--chunk-size", CHUNK, "-o", self.www]
        if min_from:
            args += ["--min-from", min_from]
        r = ok(args)
        return r.stdout.split("verity root hash ")[1].strip()

    def index(self, issued=None, valid=86400, key=None):
        ok([AGENT, "index", "--key", key or self.key, "--issued", issued or int(time.time()),
            "--valid", valid, self.www])

    def host_v1(self):
        """The disk with 1.0 in slot a (its verity tree made by veritysetup directly)."""
        img, uki = self.usr("1.0", 256 * 1024)
        verity = self.tmp / "verity-1.0"
        out = ok(["veritysetup", "format", img, verity]).stdout
        self.root_v1 = out.split("Root hash:")[1].split()[0]
        make_disk(self.disk, img, verity, uki)
        ok(self.agent("init", "--version", "1.0"))

    def agent(self, *args, url=None):
        return [AGENT, "--json", "--image", self.disk, "--state-dir", self.state, "--keys", self.keys,
                "--url", url or self.url(), "--arch", "x86_64"] + list(args)

    def status(self):
        return json.loads(ok(self.agent("status")).stdout)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    httpserver.stop(e.server)


def refused(env, args, words, url=None):
    """The update is refused: exit 1, one error line naming words, slot b untouched."""
    before = digest(env.disk, "usr-b"), digest(env.disk, "usr-b-verity")
    r = run(env.agent(*args, url=url))
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), r.stderr
    assert json.loads(r.stdout)["error"] in lines[0]
    assert (digest(env.disk, "usr-b"), digest(env.disk, "usr-b-verity")) == before
    return lines[0]


def test_update_v1_to_v2_offline(env):
    env.host_v1()
    root = env.bundle("2.0", min_from="1.0")
    env.index()
    active = digest(env.disk, "usr-a"), digest(env.disk, "usr-a-verity")
    check = json.loads(ok(env.agent("check")).stdout)
    assert check == {"current": "1.0", "available": "2.0", "reason": None}
    r = json.loads(ok(env.agent("update")).stdout)
    assert r == {"staged": True, "version": "2.0", "slot": "b", "reason": None}
    s = env.status()
    assert s["booted"] == "a" and s["progress"] is None
    assert [(x["slot"], x["version"], x["status"], x["booted"]) for x in s["slots"]] == \
        [("a", "1.0", "good", True), ("b", "2.0", "staged", False)]
    assert s["slots"][1]["verity_root_hash"] == root
    # Slot b holds the image byte for byte, and veritysetup agrees with the root hash.
    off, _ = part("usr-b")
    img = (env.tmp / "usr-2.0.erofs").read_bytes()
    data = env.disk.read_bytes()
    assert data[off:off + len(img)] == img
    (env.tmp / "b.data").write_bytes(img)
    voff = part("usr-b-verity")[0]
    (env.tmp / "b.hash").write_bytes(data[voff:voff + MIB])
    ok(["veritysetup", "verify", env.tmp / "b.data", env.tmp / "b.hash", root])
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.0+3.efi"]
    # The UKI's usrhash= finds slot b by PARTUUID: the root hash's halves (DPS).
    for label, half in (("usr-b", root[:32]), ("usr-b-verity", root[32:])):
        num = [i for i, p in enumerate(LAYOUT, 1) if p[2] == label][0]
        info = ok(["sgdisk", "-i", num, env.disk]).stdout
        uuid = "%s-%s-%s-%s-%s" % (half[:8], half[8:12], half[12:16], half[16:20], half[20:])
        assert "unique GUID: %s" % uuid.upper() in info, info
    ok(["sgdisk", "-v", env.disk])
    # Slot a (active) was never written; a second run has nothing to do.
    assert (digest(env.disk, "usr-a"), digest(env.disk, "usr-a-verity")) == active
    again = json.loads(ok(env.agent("update")).stdout)
    assert again["staged"] is False and "2.0 is staged in slot b already" in again["reason"], again


def test_bundle_and_index_are_reproducible(env):
    """Same image, key and SOURCE_DATE_EPOCH: the same bytes, signatures included (Ed25519 is
    deterministic; the verity salt and uuid come from the image's digest)."""
    def build():
        env.bundle("2.0")
        ok([AGENT, "index", "--key", env.key, env.www], env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"))
        files = {p.name: p.read_bytes() for p in (env.www / "2.0").iterdir()}
        files["index"] = (env.www / "index").read_bytes()
        files["index.sig"] = (env.www / "index.sig").read_bytes()
        shutil.rmtree(env.www / "2.0")
        return files
    first, second = build(), build()
    assert first == second
    assert sorted(first) == ["index", "index.sig", "manifest", "manifest.sig", "uki.zst", "usr-verity.zst",
                             "usr.zst"]
    assert b"issued 1700000000\nexpires 1700604800\n" in first["index"]


def test_refuses_bad_signature(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    m = env.www / "2.0" / "manifest"
    m.write_text(m.read_text().replace("arch x86_64", "arch x86_64 "))  # one byte more
    refused(env, ["update"], ["manifest", "BAD signature"])


def test_refuses_unknown_key(env):
    env.host_v1()
    other = env.tmp / "other.key"
    ok(["openssl", "genpkey", "-algorithm", "ed25519", "-out", other])
    env.bundle("2.0", key=other)
    env.index(key=other)
    refused(env, ["update"], ["index", "unknown key"])
    env.index()  # the index is ours, the manifest is not
    refused(env, ["update"], ["manifest", "unknown key"])


def test_refuses_truncated_bundle(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    z = env.www / "2.0" / "usr.zst"
    z.write_bytes(z.read_bytes()[:-1000])
    refused(env, ["update"], ["usr.zst", "truncated"])


def test_refuses_payload_not_matching_manifest(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    z = env.www / "2.0" / "usr.zst"
    b = bytearray(z.read_bytes())
    b[100] ^= 0xff
    z.write_bytes(bytes(b))
    refused(env, ["update"], ["usr.zst frame 0", "does not match the signed manifest"])


def test_mismatch_in_a_later_frame_never_makes_the_slot_bootable(env):
    """docs/sysupdate.md's guarantee for a frame after the first that does not
    match: the frames before it (verified bytes of 2.0) are written, the slot
    stays "writing" with no UKI, and the good bundle then stages over it."""
    env.host_v1()
    env.bundle("2.0", size=3 * MIB)
    env.index()
    z = env.www / "2.0" / "usr.zst"
    good = z.read_bytes()
    b = bytearray(good)
    b[len(b) // 2] ^= 0xff
    z.write_bytes(bytes(b))
    r = run(env.agent("update"))
    assert r.returncode == 1, r.stderr
    m = re.search(r"usr\.zst frame (\d+)", r.stderr)
    assert m and int(m.group(1)) > 0 and "does not match the signed manifest" in r.stderr, r.stderr
    assert esp_names(env.disk) == ["lapis_1.0.efi"]
    assert env.status()["slots"][1]["status"] == "writing"
    z.write_bytes(good)
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is True and r["slot"] == "b", r
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.0+3.efi"]


def test_refuses_downgrade_unless_asked(env):
    env.host_v1()
    env.bundle("0.9")
    env.index()
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is False and "refusing to downgrade from 1.0 to 0.9" in r["reason"]
    assert env.status()["slots"][1]["status"] == "empty"
    r = json.loads(ok(env.agent("update", "--allow-downgrade")).stdout)
    assert r["staged"] is True and r["version"] == "0.9"


def test_refuses_expired_index(env):
    env.host_v1()
    env.bundle("2.0")
    env.index(issued=int(time.time()) - 3 * 86400, valid=86400)
    refused(env, ["update"], ["index: expired", "frozen"])


def test_refuses_replayed_older_index(env):
    env.host_v1()
    env.bundle("2.0")
    env.index(issued=int(time.time()))
    ok(env.agent("update"))
    env.index(issued=int(time.time()) - 3600)
    refused(env, ["update"], ["older than", "replayed"])


def test_resume_after_dropped_connection(env):
    env.host_v1()
    env.bundle("2.0", size=3 * MIB)
    env.index()
    # The server sends 700 KB of each file and closes: the index and manifest
    # are whole, the usr payload is cut in its middle.
    r = run(env.agent("update", url=env.url("/_truncate/700000")))
    assert r.returncode == 1 and "run again to resume" in r.stderr, r.stderr
    prog = env.status()["progress"]
    assert prog["slot"] == "b" and prog["payload"] == "usr" and prog["frames_done"] > 0
    httpserver.reset(env.server)
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is True
    ranges = [x["range"] for x in env.server.log if x["path"].endswith("usr.zst")]
    assert ranges and ranges[0] and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-", ranges
    off, _ = part("usr-b")
    img = (env.tmp / "usr-2.0.erofs").read_bytes()
    assert env.disk.read_bytes()[off:off + len(img)] == img


def test_resume_checks_the_frames_an_earlier_run_wrote(env):
    """The written payloads are hashed as they are written; after a resume, the
    frames the first run wrote are read back from the slot. A byte of them
    changed in between (another program, a bad disk) fails the check: no UKI."""
    env.host_v1()
    env.bundle("2.0", size=3 * MIB)
    env.index()
    r = run(env.agent("update", url=env.url("/_truncate/700000")))
    assert r.returncode == 1 and "run again to resume" in r.stderr, r.stderr
    assert env.status()["progress"]["frames_done"] > 0
    off, _ = part("usr-b")
    with open(env.disk, "r+b") as f:
        f.seek(off + 5000)
        b = f.read(1)
        f.seek(off + 5000)
        f.write(bytes([b[0] ^ 0xff]))
    r = run(env.agent("update"))
    assert r.returncode == 1 and "slot b: the written usr does not match the manifest" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert esp_names(env.disk) == ["lapis_1.0.efi"]
    assert env.status()["slots"][1]["status"] == "writing"


def test_frames_that_are_not_whole_verity_blocks(env):
    """A chunk size that is not a multiple of 4096: the slot is hashed as it is
    written, frame by frame, and a verity block spans two frames."""
    env.host_v1()
    img, uki = env.usr("2.0", 300 * 1024)
    ok([AGENT, "bundle", "--key", env.key, "--version", "2.0", "--arch", "x86_64", "--usr", img, "--uki", uki,
        "--chunk-size", 10000, "-o", env.www])
    env.index()
    r = run(env.agent("update"))
    assert r.returncode == 0 and json.loads(r.stdout)["staged"] is True, r.stderr
    off, _ = part("usr-b")
    assert env.disk.read_bytes()[off:off + img.stat().st_size] == img.read_bytes()


def frames_done(state):
    """Frames of the usr payload the state records as written (-1: none)."""
    try:
        lines = state.read_text().splitlines()
    except FileNotFoundError:
        return -1
    prog = [l.split() for l in lines if l.startswith("progress ")]
    return int(prog[0][4]) if prog and prog[0][3] == "0" else -1


def test_resume_after_kill_mid_write(env):
    env.host_v1()
    env.bundle("2.0", size=3 * MIB)
    env.index()
    p = subprocess.Popen([str(c) for c in env.agent("update", url=env.url("/_slow/400000"))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and frames_done(env.state / "state") < 3:
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    prog = env.status()["progress"]
    assert prog and prog["payload"] == "usr" and prog["frames_done"] >= 2, prog
    httpserver.reset(env.server)
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is True
    # It continued where the state says, not from the start.
    ranges = [x["range"] for x in env.server.log if x["path"].endswith("usr.zst")]
    assert ranges[0] and ranges[0] != "bytes=0-", ranges
    off, _ = part("usr-b")
    img = (env.tmp / "usr-2.0.erofs").read_bytes()
    assert env.disk.read_bytes()[off:off + len(img)] == img
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.0+3.efi"]


def test_failed_version_is_not_retried_until_a_newer_one(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    ok(env.agent("update"))
    # systemd-boot fell back to slot a after 2.0's tries ran out.
    r = json.loads(ok(env.agent("mark-bad")).stdout)
    assert r == {"marked": "bad", "version": "2.0"}
    assert esp_names(env.disk) == ["lapis_1.0.efi"]
    s = env.status()
    assert s["failed"] == ["2.0"] and s["slots"][1]["status"] == "bad"
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is False and "2.0 failed its boot before" in r["reason"], r
    env.bundle("3.0")
    env.index()
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is True and r["version"] == "3.0"
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_3.0+3.efi"]


def test_newer_version_replaces_a_staged_one(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    ok(env.agent("update"))
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.0+3.efi"]
    env.bundle("2.1", size=2 * MIB)
    env.index()
    assert json.loads(ok(env.agent("check")).stdout)["available"] == "2.1"
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is True and r["version"] == "2.1"
    # 2.0's UKI went before slot b was overwritten: never a boot entry for a half-written slot.
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.1+3.efi"]
    assert [x["version"] for x in env.status()["slots"]] == ["1.0", "2.1"]


def sign(key, path):
    """What the bundle writer does, with openssl: 'ed25519 KEYID SIG' over the file's bytes."""
    pub = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout[-32:]
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(key), "-in", str(path)],
                         capture_output=True, check=True).stdout
    keyid = hashlib.sha256(pub).hexdigest()[:32]
    pathlib.Path(str(path) + ".sig").write_text("ed25519 %s %s\n" % (keyid, sig.hex()))


def test_written_slot_that_fails_verity_is_not_offered(env):
    """A correctly signed manifest whose verity root hash does not match its usr
    (a release-pipeline bug): every frame verifies, the read-back root hash does
    not, so no UKI is written and the slot stays 'writing'."""
    env.host_v1()
    root = env.bundle("2.0")
    m = env.www / "2.0" / "manifest"
    m.write_text(m.read_text().replace(root, "0" * 64))
    sign(env.key, m)   # openssl agrees with the agent's signature format
    env.index()
    r = run(env.agent("update"))
    assert r.returncode == 1 and "dm-verity root hash of the written usr is %s" % root in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert esp_names(env.disk) == ["lapis_1.0.efi"]
    assert env.status()["slots"][1]["status"] == "writing"


def test_one_writer_at_a_time(env):
    env.host_v1()
    env.bundle("2.0", size=3 * MIB)
    env.index()
    p = subprocess.Popen([str(c) for c in env.agent("update", url=env.url("/_slow/300000"))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and frames_done(env.state / "state") < 1:
            time.sleep(0.02)
        r = run(env.agent("update"))
        assert r.returncode == 1 and "(pid %d) is using the sysupdate state" % p.pid in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally:
        p.kill()
        p.wait()


def test_refuses_a_bundle_for_newer_hosts_only(env):
    env.host_v1()
    env.bundle("3.0", min_from="2.0")
    env.index()
    refused(env, ["update"], ["3.0 can only update from 2.0 or newer", "runs 1.0"])


def test_check_says_why_nothing_is_offered(env):
    env.host_v1()
    img, uki = env.usr("2.0", 64 * 1024)
    ok([AGENT, "bundle", "--key", env.key, "--version", "2.0", "--arch", "aarch64", "--usr", img,
        "--uki", uki, "--chunk-size", CHUNK, "-o", env.www])
    env.index()
    c = json.loads(ok(env.agent("check")).stdout)
    assert c == {"current": "1.0", "available": None, "reason": "the index has no version for x86_64"}
    r = run([AGENT, "--image", env.disk, "--state-dir", env.state, "--keys", env.keys, "--url",
             env.url(), "--arch", "x86_64", "check"])
    assert r.returncode == 0 and r.stdout == "no update: the index has no version for x86_64\n"


def test_cleanup_removes_ukis_of_no_slot(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    ok(env.agent("update"))
    stray = env.tmp / "stray.efi"
    stray.write_bytes(b"MZ old")
    ok(["mcopy", "-i", "%s@@%d" % (env.disk, part("esp")[0]), stray, "::/EFI/Linux/lapis_0.5+0-3.efi"],
       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    assert esp_names(env.disk) == ["lapis_0.5+0-3.efi", "lapis_1.0.efi", "lapis_2.0+3.efi"]
    r = json.loads(ok(env.agent("cleanup")).stdout)
    assert r == {"removed": ["lapis_0.5+0-3.efi"]}
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.0+3.efi"]
    assert json.loads(ok(env.agent("cleanup")).stdout) == {"removed": []}


def boot(env, roothash, *extra):
    """What the boot unit runs: the kernel command line says which slot runs."""
    cmdline = env.tmp / "cmdline"
    cmdline.write_text("BOOT_IMAGE=/EFI/Linux/x.efi usrhash=%s ro %s\n" % (roothash, " ".join(extra)))
    return json.loads(ok(env.agent("boot", cmdline)).stdout)


def test_new_slot_boots_then_next_update_goes_to_the_old_one(env):
    env.host_v1()
    assert env.status()["slots"][0]["verity_root_hash"] == env.root_v1   # init read the superblock
    root2 = env.bundle("2.0")
    env.index()
    ok(env.agent("update"))
    assert boot(env, root2) == {"booted": "b", "rolled_back": None}
    ok(env.agent("mark-good"))
    s = env.status()
    assert s["booted"] == "b" and [x["status"] for x in s["slots"]] == ["good", "good"]
    # 3.0 goes to slot a; slot b, now running, is not touched.
    running = digest(env.disk, "usr-b"), digest(env.disk, "usr-b-verity")
    env.bundle("3.0")
    env.index()
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is True and r["slot"] == "a"
    assert (digest(env.disk, "usr-b"), digest(env.disk, "usr-b-verity")) == running
    assert esp_names(env.disk) == ["lapis_2.0+3.efi", "lapis_3.0+3.efi"]   # 1.0's UKI went first


def test_fallback_after_tries_ran_out_is_recorded_and_not_retried(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    ok(env.agent("update"))
    # Boot without the tries running out: nothing is concluded.
    assert boot(env, env.root_v1) == {"booted": "a", "rolled_back": None}
    assert env.status()["slots"][1]["status"] == "staged"
    # systemd-boot counted 2.0's three tries down and fell back to 1.0.
    img = "%s@@%d" % (env.disk, part("esp")[0])
    ok(["mren", "-i", img, "::/EFI/Linux/lapis_2.0+3.efi", "::/EFI/Linux/lapis_2.0+0-3.efi"],
       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    assert boot(env, env.root_v1) == {"booted": "a", "rolled_back": "2.0"}
    s = env.status()
    assert s["rolled_back"] == "2.0" and s["failed"] == ["2.0"] and s["slots"][1]["status"] == "bad"
    assert esp_names(env.disk) == ["lapis_1.0.efi"]
    r = json.loads(ok(env.agent("update")).stdout)
    assert r["staged"] is False and "2.0 failed its boot before" in r["reason"]


def test_boot_from_an_unknown_usr_is_an_error(env):
    env.host_v1()
    cmdline = env.tmp / "cmdline"
    cmdline.write_text("root=/dev/sda2 ro\n")
    r = run(env.agent("boot", cmdline))
    assert r.returncode == 1 and "has no usrhash=" in r.stderr and len(r.stderr.splitlines()) == 1
    cmdline.write_text("usrhash=%s\n" % ("ab" * 32))
    r = run(env.agent("boot", cmdline))
    assert r.returncode == 1 and "is in neither slot" in r.stderr, r.stderr


def test_rollback_makes_the_other_good_slot_the_default(env):
    env.host_v1()
    r = run(env.agent("rollback"))   # slot b is empty: nothing to roll back to
    assert r.returncode == 1 and "slot b holds no good version to roll back to (it is empty)" in r.stderr
    root2 = env.bundle("2.0")
    env.index()
    ok(env.agent("update"))
    boot(env, root2)
    ok(env.agent("mark-good"))
    img = "%s@@%d" % (env.disk, part("esp")[0])
    ok(["mren", "-i", img, "::/EFI/Linux/lapis_2.0+3.efi", "::/EFI/Linux/lapis_2.0.efi"],   # bless-boot
       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    assert json.loads(ok(env.agent("rollback")).stdout) == {"from": "2.0", "to": "1.0"}
    # +0: no tries left, sorted after lapis_1.0.efi by systemd-boot, still in its menu.
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.0+0.efi"]
    assert boot(env, env.root_v1)["booted"] == "a"
    s = env.status()
    assert s["rolled_back"] == "2.0" and s["failed"] == ["2.0"]
    assert json.loads(ok(env.agent("update")).stdout)["staged"] is False


def test_server_url_from_the_configuration(env):
    env.host_v1()
    env.bundle("2.0")
    env.index()
    conf = env.tmp / "sysupdate.conf"
    conf.write_text("# the fleet's mirror\n[sysupdate]\nurl = %s\n" % env.url())
    base = [AGENT, "--json", "--image", env.disk, "--state-dir", env.state, "--keys", env.keys,
            "--arch", "x86_64", "--config", conf]
    assert json.loads(ok(base + ["check"]).stdout)["available"] == "2.0"
    conf.write_text("[sysupdate]\nurl = %s\nkeys = /tmp/evil\n" % env.url())   # keys come from /usr only
    r = run(base + ["check"])
    assert r.returncode == 1 and "sysupdate.conf line 3: only [sysupdate] url= and tries= are known" in r.stderr, \
        r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = run([AGENT, "--image", env.disk, "--state-dir", env.state, "--config", env.tmp / "none", "check"])
    assert r.returncode == 1 and "none" in r.stderr
    assert "usage: lapis-sysupdate" in ok([AGENT, "--help"]).stdout


def test_health_checks_decide_whether_a_slot_is_blessed(tmp_path):
    vendor, admin = tmp_path / "usr-health.d", tmp_path / "etc-health.d"
    vendor.mkdir()
    admin.mkdir()

    def check(d, name, body, mode=0o755):
        p = d / name
        p.write_text("#!/bin/sh\n" + body + "\n")
        p.chmod(mode)

    check(vendor, "10-containerd", "echo containerd is up")
    check(vendor, "20-disk", "echo /var is full >&2; exit 3")
    check(vendor, "30-notes", "exit 1", mode=0o644)        # not executable: not a check
    check(admin, "05-kubelet", "echo kubelet ready")
    r = run([AGENT, "--json", "health", vendor, admin])
    assert r.returncode == 1, r
    assert r.stderr.strip() == ("lapis-sysupdate: health check 20-disk failed (exit status 3): "
                                "/var is full: the slot is not blessed")
    doc = json.loads(r.stdout)
    assert doc["healthy"] is False
    assert [(c["name"], c["status"]) for c in doc["checks"]] == [("05-kubelet", 0), ("10-containerd", 0),
                                                                 ("20-disk", 3)]
    check(admin, "20-disk", "echo fine")                   # the admin's same name masks the vendor's
    r = run([AGENT, "--json", "health", vendor, admin])
    assert r.returncode == 0 and json.loads(r.stdout)["healthy"] is True, r
    assert run([AGENT, "health", tmp_path / "none"]).returncode == 0   # no checks: healthy


def test_tries_of_the_staged_uki_from_option_and_configuration(env):
    """systemd-sysupdate's TriesLeft=: the staged UKI is lapis_V+N.efi, N from
    --tries, else tries= of the configuration, else 3; out of 1..16 refused
    before anything is written."""
    env.host_v1()
    env.bundle("2.0")
    env.index()
    conf = env.tmp / "sysupdate.conf"
    for bad, where in (("0", "--tries 0"), ("17", "--tries 17"), ("x", "--tries x")):
        conf.write_text("[sysupdate]\nurl = %s\n" % env.url())
        refused(env, ("--config", conf, "--tries", bad, "update"), [where, "from 1 to 16"])
    conf.write_text("[sysupdate]\nurl = %s\ntries = 99\n" % env.url())
    refused(env, ("--config", conf, "update"), ["sysupdate.conf line 3: tries= must be a number from 1 to 16"])
    conf.write_text("[sysupdate]\nurl = %s\ntries = 2\n" % env.url())
    assert json.loads(ok(env.agent("--config", conf, "update")).stdout)["staged"] is True
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.0+2.efi"]
    s = env.status()
    assert (s["slots"][1]["uki"], s["slots"][1]["tries_left"]) == ("lapis_2.0+2.efi", 2)
    # --tries wins over the configuration (a newer version, staged over 2.0).
    env.bundle("2.1")
    env.index()
    assert json.loads(ok(env.agent("--config", conf, "update", "--tries", "1")).stdout)["staged"] is True
    assert esp_names(env.disk) == ["lapis_1.0.efi", "lapis_2.1+1.efi"]
