"""Trust: which keys verify a repo (its gpgkey=, or the root's rpm keyring),
key pinning, keys over plain http, and the signature policy on top of
librpm's check (SHA-1, DSA, RSA < 2048, revoked keys and subkeys, signatures
made after the key expired). Fixtures: FIXTURES/policy/<case> (see
tests/fixtures/README.md)."""

import pytest

from conftest import FIXTURES, RPMDB_PATH, run_cmd, write_repo

# case: (key label, words the refusal must contain)
CASES = {
    "dsa": ("dsa", "DSA key"),
    "rsa1024": ("rsa1024", "1024-bit RSA key"),
    "sha1": ("test", "signature uses SHA-1"),
    "expired": ("expired", "expired on 2022-01-01"),
    "revoked": ("revoked", "which is revoked"),
    "revsub": ("revsub", "subkey"),
}
# Refused at the key itself: never imported into the root's rpm keyring.
KEY_REFUSED = ("dsa", "rsa1024", "revoked")
OVERRIDE = "--setopt=signature_policy=legacy"


def fingerprints():
    return dict(l.split() for l in (FIXTURES / "keys" / "fingerprints").read_text().splitlines())


def key_url(label):
    return "file://%s/keys/RPM-GPG-KEY-lapis-%s" % (FIXTURES, label)


def top_url(lapis):
    """file://FIXTURES or http://127.0.0.1:PORT (the server's root)."""
    return lapis.baseurl.rsplit("/repos", 1)[0]


def policy_repo(lapis, case, **opts):
    return write_repo(lapis.tmp / "repos.d", "p-" + case,
                      "%s/policy/%s" % (top_url(lapis), case), gpgkey=key_url(CASES[case][0]),
                      **opts)


def keyless_repo(lapis, repoid, src, **opts):
    """A repo with gpgcheck=1 and no gpgkey= line."""
    d = write_repo(lapis.tmp / "repos.d", repoid, "%s/%s" % (lapis.baseurl, src), **opts)
    f = d / ("%s.repo" % repoid)
    f.write_text("".join(l + "\n" for l in f.read_text().splitlines()
                         if not l.startswith("gpgkey=")))
    return d


def rpmkeys_import(lapis, label):
    lapis.root.mkdir(exist_ok=True)
    r = run_cmd(["rpmkeys", "--root", lapis.root, "--dbpath", RPMDB_PATH, "--import",
                 FIXTURES / "keys" / ("RPM-GPG-KEY-lapis-%s" % label)], env=lapis.env)
    assert r.rc == 0, r


def pubkeys(lapis):
    return [l for l in lapis.rpm_qa() if l.startswith("gpg-pubkey-")]


def pin(lapis, repoid):
    p = lapis.root / "var/lib/lapis/keys" / ("%s.fpr" % repoid)
    return p.read_text().split() if p.exists() else None


# --------------------------------------------------------------------------
# Signature policy
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_policy_refuses_repomd(lapis, case):
    d = policy_repo(lapis, case)
    r = lapis.run("--repo=p-" + case, "makecache", reposd=d)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1, r
    err = r.error_lines[0]
    assert "repo p-%s: repomd.xml" % case in err and CASES[case][1] in err, r
    assert "signature_policy=default" in err and OVERRIDE in err, r

    r = lapis.run(OVERRIDE, "--repo=p-" + case, "makecache", reposd=d)
    if case == "revsub":
        # librpm 4.18 itself cannot load a key with a revoked subkey.
        assert r.rc == 1 and "no usable OpenPGP public key" in r.err, r
    else:
        assert r.rc == 0, r


@pytest.mark.parametrize("case", sorted(CASES))
def test_policy_refuses_package(lapis, case):
    d = policy_repo(lapis, case, repo_gpgcheck=0)
    pkg = case + "pkg"
    r = lapis.run("-y", "--repo=p-" + case, "install", pkg, reposd=d)
    assert r.rc == 1, r
    err = r.error_lines[-1]
    assert "package %s-1.0-1.noarch (repo p-%s)" % (pkg, case) in err, r
    assert CASES[case][1] in err and OVERRIDE in err, r
    assert lapis.names() == [], r
    assert pubkeys(lapis) == [], r  # refused before any key is imported

    r = lapis.run(OVERRIDE, "-y", "--repo=p-" + case, "install", pkg, reposd=d)
    if case == "revsub":
        assert r.rc == 1 and "no usable OpenPGP public key" in r.err, r
    else:
        assert r.rc == 0, r
        assert lapis.names() == [pkg]


@pytest.mark.parametrize("case", KEY_REFUSED)
def test_policy_refused_key_is_not_imported(lapis, case):
    """A repo listing a good key and a refused one: only the good one goes into
    the root's rpm keyring (rpm would trust the other for every package)."""
    d = write_repo(lapis.tmp / "repos.d", "two", "%s/base" % lapis.baseurl,
                   gpgkey="%s %s" % (key_url("test"), key_url(CASES[case][0])))
    r = lapis.yes("--repo=two", "install", "pkga", reposd=d)
    assert any("not importing it" in w for w in r.warning_lines), r
    keyid = fingerprints()["test"][-8:].lower()
    assert [k.rsplit("-", 1)[0] for k in pubkeys(lapis)] == ["gpg-pubkey-%s" % keyid], r
    assert lapis.names() == ["pkga"]


def test_policy_per_repo(lapis_file):
    """signature_policy is a repo option too: legacy for one repo only."""
    d = policy_repo(lapis_file, "sha1")
    policy_repo(lapis_file, "dsa")
    r = lapis_file.run("--setopt=p-sha1.signature_policy=legacy", "--repo=p-sha1",
                       "--repo=p-dsa", "makecache", reposd=d)
    assert r.rc == 1, r
    assert [e for e in r.error_lines if "p-dsa" in e] and \
        not [e for e in r.error_lines if "p-sha1" in e], r
    r = lapis_file.run("--setopt=signature_policy=bogus", "repolist", reposd=d)
    assert r.rc != 0 and "signature_policy" in r.err, r


def test_policy_good_repo_still_accepted(lapis):
    """The default policy changes nothing for a well-signed repo."""
    lapis.yes("install", "hello")
    assert "hello" in lapis.names()


# --------------------------------------------------------------------------
# Repos without gpgkey=: the root's rpm keyring
# --------------------------------------------------------------------------

def test_no_gpgkey_uses_root_keyring(lapis):
    d = keyless_repo(lapis, "nokey", "base")
    r = lapis.run("-y", "--repo=nokey", "install", "hello", reposd=d)
    assert r.rc == 1 and "rpmkeys --root %s --import" % lapis.root in r.err, r

    rpmkeys_import(lapis, "other")
    r = lapis.run("-y", "--repo=nokey", "install", "hello", reposd=d)
    assert r.rc == 1 and "rpm keyring of %s" % lapis.root in r.err, r
    assert "unknown key" in r.err, r

    rpmkeys_import(lapis, "test")
    lapis.yes("--repo=nokey", "install", "hello", reposd=d)
    assert "hello" in lapis.names()


@pytest.mark.parametrize("src,pkg,why", [
    ("unsigned", "unsignedpkg", "not signed"),
    ("wrongkey", "wrongkeypkg", "not in the rpm keyring"),
])
def test_no_gpgkey_still_refuses_bad_packages(lapis, src, pkg, why):
    d = keyless_repo(lapis, "nokey", src, repo_gpgcheck=0)
    rpmkeys_import(lapis, "test")
    r = lapis.run("-y", "--repo=nokey", "install", pkg, reposd=d)
    assert r.rc == 1 and why in r.error_lines[-1], r
    assert lapis.names() == []


def test_no_gpgkey_policy_applies(lapis):
    """Keys in the root's keyring get the same signature policy."""
    d = write_repo(lapis.tmp / "repos.d", "nokey", "%s/policy/sha1" % top_url(lapis))
    f = d / "nokey.repo"
    f.write_text(f.read_text().replace("gpgkey=", "#gpgkey="))
    rpmkeys_import(lapis, "test")
    r = lapis.run("--repo=nokey", "makecache", reposd=d)
    assert r.rc == 1 and "signature uses SHA-1" in r.err, r
    r = lapis.run("-y", "--setopt=nokey.repo_gpgcheck=0", "--repo=nokey", "install", "sha1pkg",
                  reposd=d)
    assert r.rc == 1 and "signature uses SHA-1" in r.err, r


def test_localpkg_gpgcheck_uses_root_keyring(lapis_file):
    lapis = lapis_file
    pkg = FIXTURES / "rpms" / "pkga-1.0-1.noarch.rpm"
    on = "--setopt=localpkg_gpgcheck=1"
    r = lapis.run("-y", on, "install", pkg)
    assert r.rc == 1 and "rpmkeys --root" in r.err, r
    rpmkeys_import(lapis, "test")
    r = lapis.run("-y", on, "install", FIXTURES / "rpms" / "unsignedpkg-1.0-1.noarch.rpm")
    assert r.rc == 1 and "not signed" in r.err, r
    r = lapis.run("-y", on, "install", FIXTURES / "rpms" / "wrongkeypkg-1.0-1.noarch.rpm")
    assert r.rc == 1 and "not in the rpm keyring" in r.err, r
    lapis.yes(on, "install", pkg)
    assert lapis.names() == ["pkga"]


# --------------------------------------------------------------------------
# Pinning
# --------------------------------------------------------------------------

def swap_repo(lapis, src, label, **opts):
    return write_repo(lapis.tmp / "repos.d", "swap", "%s/%s" % (lapis.baseurl, src),
                      gpgkey=key_url(label), **opts)


def test_key_swap_on_refresh_is_refused(lapis):
    fpr = fingerprints()
    d = swap_repo(lapis, "base", "test")
    lapis.ok("--repo=swap", "makecache", reposd=d)
    assert pin(lapis, "swap") == [fpr["test"]]

    # The server now offers another key, and repomd.xml is signed with it.
    swap_repo(lapis, "wrongkey", "other")
    r = lapis.run("--repo=swap", "makecache", "--refresh", reposd=d)
    assert r.rc == 1, r
    err = r.error_lines[0]
    assert fpr["test"] in err and fpr["other"] in err, r
    assert "lapis --setopt=swap.pinned_key_reset=1 makecache --refresh" in err, r
    assert pin(lapis, "swap") == [fpr["test"]]

    lapis.ok("--setopt=swap.pinned_key_reset=1", "--repo=swap", "makecache", "--refresh",
             reposd=d)
    assert pin(lapis, "swap") == [fpr["other"]]
    lapis.ok("--repo=swap", "makecache", "--refresh", reposd=d)


def test_key_swap_at_install_is_refused(lapis):
    """Without repo_gpgcheck the key is fetched (and pinned) at install time."""
    fpr = fingerprints()
    d = swap_repo(lapis, "base", "test", repo_gpgcheck=0)
    lapis.yes("--repo=swap", "install", "pkga", reposd=d)
    assert pin(lapis, "swap") == [fpr["test"]]
    swap_repo(lapis, "wrongkey", "other", repo_gpgcheck=0)
    r = lapis.run("-y", "--repo=swap", "install", "wrongkeypkg", reposd=d)
    assert r.rc == 1 and fpr["other"] in r.err and "pinned_key_reset=1" in r.err, r
    assert lapis.names() == ["pkga"]


def test_read_commands_do_not_pin(lapis):
    """Only makecache and transactions write the pin; a query (which refreshes
    the metadata too) checks it but leaves the root untouched."""
    d = swap_repo(lapis, "base", "test")
    lapis.ok("--repo=swap", "list", "hello", reposd=d)
    assert pin(lapis, "swap") is None
    assert not (lapis.root / "var/lib/lapis").exists()
    lapis.ok("--repo=swap", "makecache", "--refresh", reposd=d)
    assert pin(lapis, "swap") == [fingerprints()["test"]]
    swap_repo(lapis, "wrongkey", "other")
    r = lapis.run("--repo=swap", "list", "--refresh", reposd=d)
    assert r.rc == 1 and "pinned_key_reset=1" in r.err, r


def test_failed_first_refresh_does_not_pin(lapis):
    """A key is pinned only once its signature verified."""
    d = swap_repo(lapis, "wrongkey", "test")
    r = lapis.run("--repo=swap", "makecache", reposd=d)
    assert r.rc == 1 and "unknown key" in r.err, r
    assert pin(lapis, "swap") is None


# --------------------------------------------------------------------------
# Keys over plain http
# --------------------------------------------------------------------------

def test_gpgkey_over_plain_http_warns(lapis_http, http):
    lapis = lapis_http
    url = "%s/keys/RPM-GPG-KEY-lapis-test" % http.url
    d = write_repo(lapis.tmp / "repos.d", "plain", "%s/base" % lapis.baseurl, gpgkey=url)
    r = lapis.ok("--repo=plain", "makecache", reposd=d)
    w = [l for l in r.warning_lines if url in l]
    assert len(w) == 1 and "unencrypted" in w[0] and "no pin guards it yet" in w[0], r
    r = lapis.ok("--repo=plain", "makecache", "--refresh", reposd=d)
    w = [l for l in r.warning_lines if url in l]
    assert len(w) == 1 and "unencrypted" in w[0] and "harmless" in w[0], r
    assert fingerprints()["test"] in w[0], r


def test_gpgkey_fetched_once_per_install(lapis_http, http):
    """Without repo_gpgcheck the install fetches the gpgkey itself: once, so the
    key that verified the packages is the key imported and pinned (a second
    fetch could be served another key), and the warning is said once."""
    lapis = lapis_http
    url = "%s/keys/RPM-GPG-KEY-lapis-test" % http.url
    d = write_repo(lapis.tmp / "repos.d", "plain", "%s/base" % lapis.baseurl, gpgkey=url,
                   repo_gpgcheck=0)
    r = lapis.yes("--repo=plain", "install", "pkga", reposd=d)
    w = [l for l in r.warning_lines if url in l]
    assert len(w) == 1 and "unencrypted" in w[0], r
    assert lapis.names() == ["pkga"]


def test_gpgkey_over_file_does_not_warn(lapis):
    r = lapis.ok("makecache")
    assert not [l for l in r.warning_lines if "unencrypted" in l], r


@pytest.mark.parametrize("repo_gpgcheck", [1, 0])
def test_gpgkey_that_is_not_a_key(lapis, repo_gpgcheck):
    """A gpgkey file holding no key is refused as such (GnuPG finds none either)."""
    bogus = "file://%s/repos/base/repodata/repomd.xml" % FIXTURES
    d = write_repo(lapis.tmp / "repos.d", "bogus", "%s/base" % lapis.baseurl, gpgkey=bogus,
                   repo_gpgcheck=repo_gpgcheck)
    r = lapis.run("-y", "--repo=bogus", "install", "pkga", reposd=d)
    assert r.rc == 1 and "no usable OpenPGP public key" in r.error_lines[-1], r
    assert lapis.names() == []


def test_killed_runs_gnupg_homes_are_swept(lapis_file):
    """The policy's temporary GnuPG home is named by its owner's pid: one left by
    a run killed while gpg worked is removed by the next run, a live one is not."""
    import os
    import pathlib
    import time
    stale = pathlib.Path("/tmp/lapis-sigpolicy-999999999-stale0")
    live = pathlib.Path("/tmp/lapis-sigpolicy-%d-live00" % os.getpid())
    for p in (stale, live):
        p.mkdir(exist_ok=True)
        old = time.time() - 600
        os.utime(p, (old, old))
    try:
        lapis_file.ok("makecache")
        assert not stale.exists()
        assert live.exists()
    finally:
        for p in (stale, live):
            if p.exists():
                p.rmdir()


# Key facts cached on disk (CACHEDIR/keyfacts): gpg is asked once per key set

def failing_gpg_env(lapis):
    """PATH with a gpg that fails first: a run that asks gpg cannot succeed."""
    fake = lapis.tmp / "fakebin"
    fake.mkdir(exist_ok=True)
    gpg = fake / "gpg"
    gpg.write_text("#!/bin/sh\necho 'fake gpg: must not run' >&2\nexit 2\n")
    gpg.chmod(0o755)
    return dict(lapis.env, PATH="%s:%s" % (fake, lapis.env.get("PATH", "/usr/bin:/bin")))


def test_key_facts_cached_across_runs(lapis):
    lapis.yes("install", "pkga")
    facts = sorted((lapis.cache / "keyfacts").iterdir())
    assert facts and all(len(f.name) == 64 for f in facts), facts
    r = run_cmd(lapis.argv("-y", "install", "hello"), env=failing_gpg_env(lapis))
    assert r.rc == 0, r
    assert "hello" in lapis.names(), r


def test_cached_key_facts_still_refuse(lapis_file):
    """The policy is applied to cached facts the same way: a revoked key stays refused."""
    lapis = lapis_file
    d = policy_repo(lapis, "revoked", repo_gpgcheck=0)
    args = ("-y", "--repo=p-revoked", "install", "revokedpkg")
    first = lapis.run(*args, reposd=d)
    assert first.rc == 1 and "which is revoked" in first.err, first
    again = run_cmd(lapis.argv(*args, reposd=d), env=failing_gpg_env(lapis))
    assert again.rc == 1 and "which is revoked" in again.err, again
    assert "fake gpg" not in again.err, again


def test_unreadable_key_facts_are_rebuilt(lapis_file):
    lapis = lapis_file
    lapis.yes("install", "pkga")
    for f in (lapis.cache / "keyfacts").iterdir():
        f.write_text("not a key fact\n")
    lapis.yes("install", "hello")
    for f in (lapis.cache / "keyfacts").iterdir():
        assert f.read_text() != "not a key fact\n"
        assert all(len(line.split()) == 7 for line in f.read_text().splitlines()), f.read_text()
