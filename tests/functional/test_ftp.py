"""Repositories and keys over ftp://, as dnf (through curl) allows."""

import pytest

from conftest import FIXTURES, write_repo

import ftpserver  # tests/fixtures/ftpserver.py (conftest puts it on sys.path)


@pytest.fixture(scope="module")
def ftp_url():
    server, port = ftpserver.start(str(FIXTURES))
    yield "ftp://127.0.0.1:%d" % port
    ftpserver.stop(server)


@pytest.mark.parametrize("repo_gpgcheck", [1, 0])  # 0: the key is fetched for the packages only
def test_ftp_baseurl_and_gpgkey_install(lapis_file, tmp_path, ftp_url, repo_gpgcheck):
    d = write_repo(tmp_path / "ftp.repos.d", "base", ftp_url + "/repos/base",
                   gpgkey=ftp_url + "/keys/RPM-GPG-KEY-lapis-test", repo_gpgcheck=repo_gpgcheck)
    r = lapis_file.ok("makecache", reposd=d)
    if repo_gpgcheck:  # fetched, and pinned, here
        assert any("over plain ftp (unencrypted)" in w and "no pin guards it yet" in w
                   for w in r.warning_lines), r
    r = lapis_file.yes("--setopt=install_weak_deps=0", "install", "hello", reposd=d)
    if not repo_gpgcheck:
        assert any("over plain ftp (unencrypted)" in w for w in r.warning_lines), r
    assert lapis_file.names() == ["hello", "libfoo"]


def test_ftp_missing_signature_is_absent_not_a_failure(lapis_file, tmp_path, ftp_url):
    """A 550 for repomd.xml.asc means "not signed", as a 404 does over http."""
    d = write_repo(tmp_path / "ftp.repos.d", "unsigned", ftp_url + "/repos/unsigned")
    r = lapis_file.run("makecache", reposd=d)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "is not signed" in r.error_lines[0], r


def test_ftps_baseurl_accepted(lapis_file, tmp_path):
    d = write_repo(tmp_path / "ftps.repos.d", "base", "ftps://127.0.0.1:1/repos/base")
    r = lapis_file.run("repolist", reposd=d)
    assert r.rc == 0, r
