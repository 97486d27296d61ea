"""The SBOM stage (src/image/sbom.c) and the provenance record
(src/image/provenance.c) on a real root: packages from the test distribution
installed by lapis, the stages run by tests/image/sbom_driver.c (until
`lapis image build` composes). The SBOM must validate against the official
SPDX 2.3 schema (shared/spdx/spdx-schema.json, found as ../shared beside the
clone or via LAPIS_SHARED) and pass the checks the schema cannot make.
"""

import datetime
import hashlib
import json
import os
import pathlib
import platform
import re
import subprocess
import urllib.parse

import pytest

SRCROOT = pathlib.Path(__file__).resolve().parents[3]
BUILD = SRCROOT / "build"
LAPIS_BIN = pathlib.Path(os.environ.get("LAPIS_BIN") or BUILD / "lapis")
DRIVER = pathlib.Path(LAPIS_BIN).parent / "sbom_driver"
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or BUILD / "testdist").resolve()
ARCH = platform.machine()
REPO = TESTDIST / ARCH
PACKAGES = ["bash", "coreutils", "passwd", "procps"]  # passwd, procps: epochs 1 and 2
EPOCH = 1700000000

pytestmark = pytest.mark.skipif(
    not (REPO / ".stamp").exists(),
    reason="test distribution not built: run `make testdist` (%s)" % TESTDIST)


def shared_dir():
    """shared/ beside the clone (CI), beside the main worktree, or LAPIS_SHARED."""
    if os.environ.get("LAPIS_SHARED"):
        return pathlib.Path(os.environ["LAPIS_SHARED"])
    cands = [SRCROOT.parent / "shared"]
    r = subprocess.run(["git", "-C", str(SRCROOT), "rev-parse", "--path-format=absolute",
                        "--git-common-dir"], capture_output=True, text=True)
    if r.returncode == 0:  # a worktree: beside the main clone
        cands.append(pathlib.Path(r.stdout.strip()).parent.parent / "shared")
    for c in cands:
        if (c / "spdx" / "spdx-schema.json").exists():
            return c
    return cands[0]


SCHEMA = shared_dir() / "spdx" / "spdx-schema.json"


def run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, "%s: rc=%d\n%s%s" % (cmd, r.returncode, r.stdout, r.stderr)
    return r


class Build:
    """One root, the driver run on it three times."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.root = tmp / "root"
        reposd = tmp / "repos.d"
        reposd.mkdir()
        (reposd / "testdist.repo").write_text((TESTDIST / "testdist.repo").read_text())
        self.config = tmp / "image.yaml"
        self.config.write_text("name: server\nversion: '1.0'\n")
        run([LAPIS_BIN, "--installroot=%s" % self.root, "--setopt=reposdir=%s" % reposd,
             "--setopt=cachedir=%s" % (tmp / "cache"), "--releasever=1", "-y", "install"]
            + PACKAGES)

    def sbom(self, out, epoch, umask=0o022, cwd=None):
        out.mkdir()
        tmpdir = self.tmp / ("tmp-" + out.name)
        tmpdir.mkdir()
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), TMPDIR=str(tmpdir))
        r = run([DRIVER, self.root, REPO / "Packages", out, self.config, "server", "1.0", ARCH],
                env=env, cwd=cwd or self.tmp, preexec_fn=lambda: os.umask(umask))
        assert "output server-1.0.%s.spdx.json" % ARCH in r.stdout
        return out / ("server-1.0.%s.spdx.json" % ARCH)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if not DRIVER.exists():
        pytest.skip("%s not built (make all)" % DRIVER)
    return Build(tmp_path_factory.mktemp("sbom"))


@pytest.fixture(scope="module")
def sbom_path(build):
    return build.sbom(build.tmp / "out1", EPOCH)


@pytest.fixture(scope="module")
def doc(sbom_path):
    return json.loads(sbom_path.read_text())


def installed(root):
    """NAME -> (epoch, version, release, arch) from the root's rpmdb."""
    r = run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-qa", "--qf",
             "%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH}\\n"])
    rows = [line.split() for line in r.stdout.splitlines()]
    return {n: (int(e), v, rel, a) for n, e, v, rel, a in rows if n != "gpg-pubkey"}


def by_id(doc):
    return {p["SPDXID"]: p for p in doc["packages"]}


def rpm_packages(doc):
    return [p for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-Package-rpm-")]


def test_schema(doc):
    if not SCHEMA.exists():
        pytest.skip("SPDX schema not found at %s (put shared/ beside the clone or set LAPIS_SHARED)"
                    % SCHEMA)
    jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema not installed")
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join("%s: %s" % (list(e.path), e.message) for e in errors[:10])


def test_ids_dates_relationships(doc):
    check_ids_dates_relationships(doc, "server-1.0.%s" % ARCH, "OPERATING_SYSTEM")


def check_ids_dates_relationships(doc, name, purpose):
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["dataLicense"] == "CC0-1.0"
    assert doc["SPDXID"] == "SPDXRef-DOCUMENT"
    assert doc["name"] == name
    assert re.match(r"^https://[^\s#]+$", doc["documentNamespace"])
    created = doc["creationInfo"]["created"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", created)
    assert created == datetime.datetime.fromtimestamp(EPOCH, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    assert doc["creationInfo"]["creators"] == ["Tool: lapis-0.1.0"]

    ids = ["SPDXRef-DOCUMENT"] + [p["SPDXID"] for p in doc["packages"]]
    for i in ids:
        assert re.match(r"^SPDXRef-[A-Za-z0-9.-]+$", i), i
    assert len(ids) == len(set(ids))
    pkg_ids = [p["SPDXID"] for p in doc["packages"]]
    assert pkg_ids == sorted(pkg_ids)

    lic_ids = {e["licenseId"] for e in doc.get("hasExtractedLicensingInfos", [])}
    for e in lic_ids:
        assert re.match(r"^LicenseRef-[A-Za-z0-9.-]+$", e), e
    for p in rpm_packages(doc):
        lic = p["licenseDeclared"]
        assert lic == "NOASSERTION" or not lic.startswith("LicenseRef-") or lic in lic_ids, p

    known = set(ids)
    rels = doc["relationships"]
    for r in rels:
        assert r["spdxElementId"] in known, r
        assert r["relatedSpdxElement"] in known, r
    describes = [r for r in rels if r["relationshipType"] == "DESCRIBES"]
    assert len(describes) == 1 and describes[0]["spdxElementId"] == "SPDXRef-DOCUMENT"
    image = by_id(doc)[describes[0]["relatedSpdxElement"]]
    assert image["primaryPackagePurpose"] == purpose
    contained = {r["relatedSpdxElement"] for r in rels
                 if r["relationshipType"] == "CONTAINS" and r["spdxElementId"] == image["SPDXID"]}
    assert contained == {p["SPDXID"] for p in rpm_packages(doc)}


def test_one_package_per_installed_rpm(build, doc):
    inst = installed(build.root)
    pkgs = rpm_packages(doc)
    assert len(inst) >= 20
    assert sorted(p["name"] for p in pkgs) == sorted(inst)
    for p in pkgs:
        e, v, rel, _ = inst[p["name"]]
        assert p["versionInfo"] == ("%d:%s-%s" % (e, v, rel) if e else "%s-%s" % (v, rel))
        assert p["supplier"] == "Organization: Lapis Test Distribution"
        assert p["downloadLocation"] == "NOASSERTION" and p["filesAnalyzed"] is False
    assert any(":" in p["versionInfo"] for p in pkgs), "no package with an epoch in the set"


def test_checksums_are_the_repo_files(build, doc):
    inst = installed(build.root)
    for p in rpm_packages(doc):
        _, v, rel, a = inst[p["name"]]
        f = REPO / "Packages" / ("%s-%s-%s.%s.rpm" % (p["name"], v, rel, a))
        assert p["checksums"] == [{"algorithm": "SHA256",
                                   "checksumValue": hashlib.sha256(f.read_bytes()).hexdigest()}]


PURL = re.compile(r"^pkg:rpm/(?:(?P<ns>[^/@?#]+)/)?(?P<name>[^/@?#]+)@(?P<ver>[^?#]+)"
                  r"\?(?P<q>[^#]+)$")


def test_purls_parse(build, doc):
    inst = installed(build.root)
    for p in rpm_packages(doc):
        refs = [r for r in p["externalRefs"] if r["referenceType"] == "purl"]
        assert len(refs) == 1 and refs[0]["referenceCategory"] == "PACKAGE-MANAGER"
        m = PURL.match(refs[0]["referenceLocator"])
        assert m, refs[0]
        # every component percent-encoded: no raw reserved character left
        for part in ("ns", "name", "ver"):
            assert re.match(r"^[A-Za-z0-9._~%-]*$", m.group(part) or ""), m.group(part)
        q = urllib.parse.parse_qs(m.group("q"), strict_parsing=True)
        keys = [kv.split("=")[0] for kv in m.group("q").split("&")]
        assert keys == sorted(keys)
        e, v, rel, a = inst[p["name"]]
        assert urllib.parse.unquote(m.group("ns")) == "lapis test distribution"
        assert urllib.parse.unquote(m.group("name")) == p["name"]
        assert urllib.parse.unquote(m.group("ver")) == "%s-%s" % (v, rel)
        assert q["arch"] == [a]
        assert q.get("epoch") == ([str(e)] if e else None)


def test_free_text_licenses_are_extracted(doc):
    # the test distribution's License tags are "see /usr/share/doc/X/copyright"
    refs = {e["licenseId"]: e for e in doc["hasExtractedLicensingInfos"]}
    bash = [p for p in rpm_packages(doc) if p["name"] == "bash"][0]
    assert refs[bash["licenseDeclared"]]["extractedText"] == "see /usr/share/doc/bash/copyright"
    ids = [e["licenseId"] for e in doc["hasExtractedLicensingInfos"]]
    assert ids == sorted(ids) and len(ids) == len(set(ids))


def test_reproducible(build, sbom_path):
    other_cwd = build.tmp / "elsewhere"
    other_cwd.mkdir()
    again = build.sbom(build.tmp / "out2", EPOCH, umask=0o077, cwd=other_cwd)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == \
        hashlib.sha256(sbom_path.read_bytes()).hexdigest()

    later = build.sbom(build.tmp / "out3", EPOCH + 86400)
    a = sbom_path.read_text().splitlines()
    b = later.read_text().splitlines()
    assert len(a) == len(b)
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(diff) == 1 and '"created"' in diff[0][0], diff
    assert "2023-11-15T22:13:20Z" in diff[0][1]


def test_provenance(build):
    build.sbom(build.tmp / "out4", EPOCH, umask=0o077)  # the mode must not follow the umask
    path = build.root / "usr/lib/lapis/image.json"
    st = path.stat()
    assert st.st_mode & 0o7777 == 0o644
    assert int(st.st_mtime) == EPOCH
    prov = json.loads(path.read_text())
    assert list(prov) == ["format", "name", "version", "arch", "config_sha256", "lapis_version",
                          "build_time", "build_time_utc", "lock"]
    assert prov["format"] == 1
    assert (prov["name"], prov["version"], prov["arch"]) == ("server", "1.0", ARCH)
    assert prov["config_sha256"] == hashlib.sha256(build.config.read_bytes()).hexdigest()
    assert prov["lapis_version"] == "0.1.0"
    assert prov["build_time"] == EPOCH and prov["build_time_utc"] == "2023-11-14T22:13:20Z"
    assert prov["lock"]["configSha256"] == prov["config_sha256"]
    assert prov["lock"]["lockVersion"] == 1
    inst = installed(build.root)
    lock = {p["name"]: p for p in prov["lock"]["packages"]}
    assert [p["name"] for p in prov["lock"]["packages"]] == sorted(inst)
    for n, (e, v, rel, a) in inst.items():
        p = lock[n]
        assert (p["epoch"], p["version"], p["release"], p["arch"]) == (e, v, rel, a)
        assert list(p) == sorted(p)  # CONFIG.lock's package object (lockfile.c)
        f = REPO / "Packages" / ("%s-%s-%s.%s.rpm" % (n, v, rel, a))
        assert p["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()


# ---- through the CLI: `lapis image build` ------------------------------------

def cli_build(tmp, cfg, out, epoch, umask=0o022, cwd=None):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    tmpdir = tmp / ("tmp-" + out.name)
    tmpdir.mkdir()
    env.update(HOME=str(tmp), LC_ALL="C.UTF-8", SOURCE_DATE_EPOCH=str(epoch), TMPDIR=str(tmpdir))
    r = subprocess.run([str(LAPIS_BIN), "image", "build", "--cachedir", str(tmp / "cache"),
                        "-o", str(out), str(cfg)], capture_output=True, text=True, timeout=900,
                       env=env, cwd=cwd or tmp, stdin=subprocess.DEVNULL,
                       preexec_fn=lambda: os.umask(umask))
    assert r.returncode == 0, r.stdout + r.stderr
    return out / ("t-1.%s.spdx.json" % ARCH)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sbomcli")
    cfg = tmp / "c.yaml"
    cfg.write_text('name: t\nversion: "1"\nreleasever: "12"\nrepos:\n  - file: %s\n'
                   'packages:\n  install: [bash, passwd]\noutput:\n  formats: [oci]\n'
                   % (TESTDIST / "testdist.repo"))
    return tmp, cfg, cli_build(tmp, cfg, tmp / "out1", EPOCH)


def test_cli_sbom_valid_and_matches_the_lock(cli):
    tmp, cfg, path = cli
    doc = json.loads(path.read_text())
    if SCHEMA.exists():
        jsonschema = pytest.importorskip("jsonschema")
        errors = list(jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text())).iter_errors(doc))
        assert not errors, [e.message for e in errors[:5]]
    check_ids_dates_relationships(doc, "t-1.%s" % ARCH, "CONTAINER")
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    r = subprocess.run([str(LAPIS_BIN), "image", "lock", "--cachedir", str(tmp / "cache"), str(cfg)],
                       capture_output=True, text=True, timeout=600, env=dict(os.environ, HOME=str(tmp)),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    lock = json.loads((tmp / "c.yaml.lock").read_text())["packages"]
    pkgs = {p["name"]: p for p in rpm_packages(doc)}
    assert sorted(pkgs) == sorted(p["name"] for p in lock)
    for p in lock:
        s = pkgs[p["name"]]
        assert s["versionInfo"] == ("%d:%s-%s" % (p["epoch"], p["version"], p["release"])
                                    if p["epoch"] else "%s-%s" % (p["version"], p["release"]))
        f = REPO / "Packages" / ("%s-%s-%s.%s.rpm" % (p["name"], p["version"], p["release"], p["arch"]))
        assert s["checksums"][0]["checksumValue"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert p["sha256"] == s["checksums"][0]["checksumValue"]
    assert any(":" in p["versionInfo"] for p in pkgs.values())  # passwd has epoch 1


def test_cli_sbom_reproducible(cli):
    tmp, cfg, path = cli
    (tmp / "cwd").mkdir()
    again = cli_build(tmp, cfg, tmp / "out2", EPOCH, umask=0o077, cwd=tmp / "cwd")
    assert again.read_bytes() == path.read_bytes()
    later = cli_build(tmp, cfg, tmp / "out3", EPOCH + 86400)
    diff = [(x, y) for x, y in zip(path.read_text().splitlines(), later.read_text().splitlines())
            if x != y]
    assert len(diff) == 1 and '"created"' in diff[0][0], diff


def test_cli_provenance_in_the_image(cli):
    """/usr/lib/lapis/image.json in the OCI layer is lapis_image_write_provenance's."""
    import tarfile
    tmp, cfg, path = cli
    layout = path.parent / ("t-1.%s.oci" % ARCH)
    found = None
    for blob in sorted((layout / "blobs" / "sha256").iterdir()):
        try:
            with tarfile.open(blob, "r:*") as t:
                m = t.getmember("usr/lib/lapis/image.json")
                found = (m, json.loads(t.extractfile(m).read()))
        except (tarfile.TarError, KeyError):
            continue
    assert found, "no usr/lib/lapis/image.json in any layer of %s" % layout
    m, prov = found
    assert prov["config_sha256"] == hashlib.sha256(cfg.read_bytes()).hexdigest()
    assert (prov["name"], prov["version"], prov["arch"]) == ("t", "1", ARCH)
    assert m.mode & 0o7777 == 0o644 and m.mtime == EPOCH
    assert prov["lapis_version"] == "0.1.0" and prov["build_time"] == EPOCH
    sbom = json.loads(path.read_text())
    assert sorted(p["name"] for p in prov["lock"]["packages"]) == \
        sorted(p["name"] for p in rpm_packages(sbom))
