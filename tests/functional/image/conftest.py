"""Shared fixtures of the image composer's functional tests.

- `testdist`: build-testdist's OUTDIR (LAPIS_TESTDIST, default build/testdist);
  tests are skipped when it was not built (`make testdist`).
- `testdist_repo`: its ready .repo file.
- `lapis_image(*args, ...)`: runs `lapis image ARGS` with a clean environment
  and the test's own package cache (`--cachedir` is added to build/lock);
  returns a Result (rc, out, err, elapsed).
"""

import hashlib
import os
import pathlib
import platform
import subprocess
import time

import pytest

SRCROOT = pathlib.Path(__file__).resolve().parents[3]
LAPIS_BIN = os.path.abspath(os.environ.get("LAPIS_BIN") or SRCROOT / "build" / "lapis")
TESTDIST = pathlib.Path(os.environ.get("LAPIS_TESTDIST") or SRCROOT / "build" / "testdist").resolve()
FIXTURES = pathlib.Path(os.environ.get("LAPIS_FIXTURES") or SRCROOT / "build" / "fixtures").resolve()
ARCH = platform.machine()


class ImageResult:
    def __init__(self, cmd, cp, elapsed):
        self.cmd, self.rc, self.out, self.err, self.elapsed = cmd, cp.returncode, cp.stdout, cp.stderr, elapsed

    @property
    def error_lines(self):
        return [line for line in self.err.splitlines() if line.startswith("lapis: error:")]

    __repr__ = lambda self: str(self)

    def __str__(self):
        return "$ %s\n[rc=%d, %.1fs]\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(self.cmd), self.rc, self.elapsed, self.out, self.err)


def image_env(tmp):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                                "source_date_epoch")}
    home = pathlib.Path(tmp) / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), LC_ALL="C.UTF-8", no_proxy="*")
    return env


@pytest.fixture
def testdist():
    if not (TESTDIST / ARCH / ".stamp").exists():
        pytest.skip("test distribution not built: run `make testdist`")
    return TESTDIST


@pytest.fixture
def testdist_repo(testdist):
    return testdist / "testdist.repo"


@pytest.fixture
def lapis_image(tmp_path):
    cache = tmp_path / "cache"

    def run(*args, env=None, timeout=900, cachedir=True, cwd=None):
        args = [str(a) for a in args]
        if cachedir and args and args[0] in ("build", "lock"):
            args = [args[0], "--cachedir", str(cache)] + args[1:]
        cmd = [LAPIS_BIN, "image"] + args
        t0 = time.monotonic()
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                            env=env or image_env(tmp_path), stdin=subprocess.DEVNULL, cwd=cwd)
        return ImageResult(cmd, cp, time.monotonic() - t0)

    run.cachedir = cache
    return run


def sha256(path):
    """A file's sha256, read in 1 MiB pieces (disk images are GiBs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
