"""The man page renders cleanly and keeps its text."""

import shutil

import pytest

from conftest import SRCROOT, run_cmd

MAN_PAGE = SRCROOT / "docs" / "lapis.8"


@pytest.mark.skipif(not shutil.which("man"), reason="man is not installed")
def test_man_page_renders_without_warnings():
    r = run_cmd(["man", "--warnings", "-l", str(MAN_PAGE)],
                env={"MANWIDTH": "200", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin",
                     "MANPAGER": "cat", "PAGER": "cat"})
    assert r.rc == 0, r
    assert r.err == "", r
    text = " ".join(r.out.split())
    # A continuation line starting with ".repo" was eaten by troff as an unknown request.
    assert ("after the .repo files are read. --repo uses only the repositories named."
            in text), text[:2000]
