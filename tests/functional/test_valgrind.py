"""A representative run of lapis under valgrind memcheck: metadata refresh,
queries, advisories, an install and an upgrade with signature checks, history,
needs-restarting and an automatic run. No invalid access, no definite leak.
(The full suite runs under ASan/UBSan in `make asan`; valgrind also sees the
uninstrumented libraries: librpm, libsolv, libcurl, sqlite.)"""

import os
import shutil

import pytest

from conftest import run_cmd

pytestmark = pytest.mark.skipif(
    not shutil.which("valgrind") or "ASAN_OPTIONS" in os.environ,
    reason="needs valgrind and a build without ASan")

VALGRIND = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
            "--track-fds=no"]


def test_memcheck_representative_subset(lapis_file, tmp_path):
    lapis = lapis_file
    conf = tmp_path / "automatic.conf"
    conf.write_text("[commands]\nupgrade_type = security\napply_updates = yes\n"
                    "[emitters]\nemit_via = json:%s\n" % (tmp_path / "report.json"))
    steps = [
        ("makecache",),
        ("list", "available"),
        ("repoquery", "--requires", "hello"),
        ("-y", "--repo=base", "install", "hello-1.0", "kernel-5.0.0", "glibc-1.0"),
        ("updateinfo", "info", "--all"),
        ("--json", "check-update", "--security"),
        ("-y", "upgrade-minimal", "--security", "hello"),
        ("history", "info", "last"),
        ("needs-restarting", "-r"),
        ("automatic", "-c", conf),
    ]
    for args in steps:
        r = run_cmd(VALGRIND + lapis.argv(*args), env=lapis.env, timeout=300)
        assert r.rc != 99 and "Invalid " not in r.err and "uninitialised" not in r.err, r
        assert r.rc in (0, 1, 100), r
    assert "glibc" in lapis.names() and "hello" in lapis.names()
