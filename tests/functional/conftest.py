"""Shared fixtures for the Lapis functional suite.

The suite drives the real `lapis` binary (LAPIS_BIN) against the signed test
repositories built by tests/fixtures/build-repos (LAPIS_FIXTURES), over
file:// and over http:// (tests/fixtures/httpserver.py, started once per
session on 127.0.0.1).

Every test gets its own install root (tmp_path/root) and cache directory
(tmp_path/cache). The `lapis` fixture is parametrized over both transports;
`lapis_file` and `lapis_http` pin one of them.
"""

import json as jsonlib
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRCROOT = HERE.parent.parent
sys.path.insert(0, str(SRCROOT / "tests" / "fixtures"))

import httpserver  # noqa: E402  (tests/fixtures/httpserver.py)

LAPIS_BIN = os.path.abspath(os.environ.get("LAPIS_BIN") or SRCROOT / "build" / "lapis")
FIXTURES = pathlib.Path(os.environ.get("LAPIS_FIXTURES") or SRCROOT / "build" / "fixtures").resolve()

DEFAULT_REPOS = ("base", "updates")
HOSTILE_REPOS = ("unsigned", "wrongkey", "tampered", "badhref", "badhref-abs", "badsig",
                 "truncated", "corrupt", "badxml", "empty", "malformed-updateinfo",
                 "bomb")
# Disabled by default and well-formed: forty packages at 1.0 / 2.0 for kill loops,
# package text that must not drive a terminal, a slow transaction (signals),
# a newest version that cannot be installed (best), a long version (narrow tables).
EXTRA_REPOS = ("many1", "many2", "termtext", "slowtx", "nobest", "longver")
DISABLED_REPOS = HOSTILE_REPOS + EXTRA_REPOS
ALL_REPOS = DEFAULT_REPOS + DISABLED_REPOS
DEAD_URL = "http://127.0.0.1:1"   # nothing listens on port 1: connection refused

# The rpmdb location Lapis (libsolv) reads inside the install root. Debian's
# rpm defaults %_dbpath to ~/.rpmdb, so the rpm helpers below always pass it.
RPMDB_PATH = "/var/lib/rpm"
NEVRA_QF = "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n"


def pytest_configure(config):
    # `make functional` runs the suite in two passes: `-m "not serial"` spread
    # over the cores (pytest-xdist, one file per worker), then `-m serial` alone.
    config.addinivalue_line(
        "markers", "serial: asserts wall time or parallelism; runs in the serial pass, "
        "with no other test beside it")
    config.addinivalue_line(
        "markers", "rebuild: builds an image a second time to compare bytes; "
        "skipped under LAPIS_SKIP_REBUILD=1 (make asan)")
    if not os.access(LAPIS_BIN, os.X_OK):
        pytest.exit("lapis binary not found: %s (set LAPIS_BIN or build first)" % LAPIS_BIN, 2)
    if not (FIXTURES / ".stamp").exists():
        if os.environ.get("LAPIS_FIXTURES"):
            pytest.exit("LAPIS_FIXTURES=%s holds no fixtures; run tests/fixtures/build-repos" % FIXTURES, 2)
        # Convenience for a bare `pytest tests/functional`: build them (idempotent).
        subprocess.run([str(SRCROOT / "tests" / "fixtures" / "build-repos"), str(FIXTURES)], check=True)


# --------------------------------------------------------------------------
# Disk hygiene: the image tests write gigabytes (roots, disks, caches), and
# pytest 7.2 keeps every tmp dir of its last three runs. A passed test's
# tmp_path goes when it ends; what a module made with tmp_path_factory goes
# when its last test ends, unless one of its tests failed (kept to debug).
# --------------------------------------------------------------------------

_module_dirs = {}      # module -> (basetemp entries before it, its failed tests' tmp_paths)
_session_dirs = set()  # made by session-scoped fixtures: they outlive any module


def session_tmp(tmp_path_factory, name):
    d = tmp_path_factory.mktemp(name)
    _session_dirs.add(d)
    return d


def _basetemp(item):
    return item.config._tmp_path_factory.getbasetemp()


def _entries(item):
    return set(_basetemp(item).iterdir())


def _skip_rebuilds(items):
    """LAPIS_SKIP_REBUILD=1 (make asan) leaves out the tests marked `rebuild`:
    a second build of an image already built in the same module, only to
    compare its bytes. Under the sanitizers the first build ran the same code
    (one build per output format stays); `make check` compares the bytes."""
    if os.environ.get("LAPIS_SKIP_REBUILD") != "1":
        return
    skip = pytest.mark.skip(reason="LAPIS_SKIP_REBUILD=1: no second build (make check rebuilds)")
    for item in items:
        if item.get_closest_marker("rebuild"):
            item.add_marker(skip)


def pytest_collection_modifyitems(config, items):
    """LAPIS_SKIP_BOOT=1 (make asan) leaves out the QEMU boots: under the
    sanitizers it is lapis' own code that is checked, and the images built
    there are built (and checked) all the same; `make check` boots them."""
    _skip_rebuilds(items)
    if os.environ.get("LAPIS_SKIP_BOOT") != "1":
        return
    skip = pytest.mark.skip(reason="LAPIS_SKIP_BOOT=1: no QEMU boot (make check boots)")
    for item in items:
        if "booted" in getattr(item, "fixturenames", ()) or "boots" in item.name:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    _module_dirs.setdefault(item.module, (_entries(item), []))
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if outcome.get_result().failed and item.module in _module_dirs:   # not if setup's hook failed
        _module_dirs[item.module][1].append(item.funcargs.get("tmp_path"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    before, failed = _module_dirs.get(item.module, (set(), []))
    tmp = item.funcargs.get("tmp_path")
    if tmp is not None and tmp not in failed:
        shutil.rmtree(tmp, ignore_errors=True)
    if (nextitem is None or nextitem.module is not item.module) and not failed:
        for d in _entries(item) - before - _session_dirs:
            shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------
# Running lapis
# --------------------------------------------------------------------------

class Result:
    """Outcome of one lapis invocation."""

    def __init__(self, cmd, cp, elapsed=None):
        self.cmd = cmd
        self.rc = cp.returncode
        self.out = cp.stdout
        self.err = cp.stderr
        self.elapsed = elapsed

    def json(self):
        try:
            return jsonlib.loads(self.out)
        except ValueError as e:
            raise AssertionError("stdout is not one JSON document (%s):\n%s" % (e, self)) from None

    @property
    def error_lines(self):
        return [l for l in self.err.splitlines() if l.startswith("lapis: error:")]

    @property
    def resolve_failure(self):
        """dnf5's report of a failed resolve on stderr: the lines after
        'Failed to resolve the transaction:' (None when there is none)."""
        lines = self.err.splitlines()
        if "Failed to resolve the transaction:" not in lines:
            return None
        return lines[lines.index("Failed to resolve the transaction:") + 1:]

    @property
    def warning_lines(self):
        return [l for l in self.err.splitlines() if l.startswith("lapis: warning:")]

    @property
    def out_lines(self):
        return self.out.splitlines()

    def __str__(self):
        return "$ %s\n[rc=%s]\n--- stdout ---\n%s--- stderr ---\n%s" % (
            " ".join(self.cmd), self.rc, self.out, self.err)

    __repr__ = __str__


def clean_env(home):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy")}
    env["HOME"] = str(home)
    env["LC_ALL"] = "C.UTF-8"
    env["no_proxy"] = "*"
    return env


def run_cmd(cmd, env=None, timeout=60):
    t0 = time.monotonic()
    # stdin is never a terminal and at its end: lapis must not stop to ask
    # (the end of input answers no).
    cp = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                        timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return Result([str(c) for c in cmd], cp, time.monotonic() - t0)


class Lapis:
    """One test's lapis environment: install root, cache, reposdir."""

    def __init__(self, tmp_path, reposd, transport, baseurl):
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        self.cache = tmp_path / "cache"
        self.reposd = pathlib.Path(reposd)
        self.transport = transport
        self.baseurl = baseurl          # prefix for repo ids: BASEURL/<id>
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.env = clean_env(self.home)

    def argv(self, *args, reposd=None, cache=None, root=None):
        return [LAPIS_BIN,
                "--installroot=%s" % (root or self.root),
                "--setopt=reposdir=%s" % (reposd or self.reposd),
                "--setopt=cachedir=%s" % (cache or self.cache),
                "--releasever=1"] + [str(a) for a in args]

    def run(self, *args, reposd=None, cache=None, root=None, timeout=60):
        return run_cmd(self.argv(*args, reposd=reposd, cache=cache, root=root),
                       env=self.env, timeout=timeout)

    def ok(self, *args, **kw):
        """Run and assert exit code 0."""
        r = self.run(*args, **kw)
        assert r.rc == 0, r
        return r

    def json(self, *args, rc=0, **kw):
        """Run with --json, assert the exit code, return the parsed document."""
        r = self.run("--json", *args, **kw)
        assert r.rc == rc, r
        return r.json()

    def cache_dirs(self, repoid):
        if not self.cache.is_dir():
            return []
        return sorted(p for p in self.cache.iterdir()
                      if p.is_dir() and p.name.rsplit("-", 1)[0] == repoid)

    def cache_dir(self, repoid):
        dirs = self.cache_dirs(repoid)
        assert len(dirs) == 1, "expected one cache dir for %s, found %s" % (repoid, dirs)
        return dirs[0]

    # --- the install root's rpmdb, through the real rpm ---------------------
    def rpm(self, *args):
        return run_cmd(["rpm", "--root", self.root, "--dbpath", RPMDB_PATH] + list(args),
                       env=self.env)

    def rpm_install(self, *files):
        self.root.mkdir(exist_ok=True)
        r = self.rpm("--initdb")
        assert r.rc == 0, r
        r = self.rpm("-i", "--nodeps", "--noscripts", "--nosignature",
                     *[FIXTURES / "rpms" / f for f in files])
        assert r.rc == 0, r

    def rpm_qa(self):
        if not (self.root / RPMDB_PATH.lstrip("/")).exists():
            return []
        r = self.rpm("-qa")
        assert r.rc == 0, r
        return sorted(r.out.split())

    def installed(self):
        """NAME-EPOCH:VERSION-RELEASE.ARCH of every package in the root's rpmdb
        (gpg-pubkey entries left out), sorted."""
        if not (self.root / RPMDB_PATH.lstrip("/")).exists():
            return []
        r = self.rpm("-qa", "--qf", NEVRA_QF)
        assert r.rc == 0, r
        return sorted(l for l in r.out.split() if not l.startswith("gpg-pubkey-"))

    def names(self):
        """Names of the installed packages (gpg-pubkey left out), sorted."""
        return sorted(n.rsplit("-", 2)[0] for n in self.installed())

    def yes(self, *args, **kw):
        """Run a transaction with -y and assert exit code 0."""
        return self.ok("-y", *args, **kw)

    def history_db(self):
        return self.root / "var" / "lib" / "lapis" / "history.sqlite"

    def sql(self, query, *params):
        """Rows of QUERY against the root's history database."""
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % self.history_db(), uri=True)
        try:
            return db.execute(query, params).fetchall()
        finally:
            db.close()


# --------------------------------------------------------------------------
# Repo files
# --------------------------------------------------------------------------

def write_reposd(dest, baseurl, ids=ALL_REPOS):
    """Write .repo files from FIXTURES/repos.d.tmpl with @BASEURL@ replaced."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for rid in ids:
        text = (FIXTURES / "repos.d.tmpl" / ("%s.repo" % rid)).read_text()
        text = text.replace("@BASEURL@", baseurl)
        (dest / ("%s.repo" % rid)).write_text(text)
    return dest


def write_repo(dest, repoid, baseurls, **opts):
    """Write one .repo file for REPOID (baseurls: str or list)."""
    dest = pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if isinstance(baseurls, str):
        baseurls = [baseurls]
    o = {"name": "Test repo %s" % repoid, "enabled": "1", "gpgcheck": "1", "repo_gpgcheck": "1",
         "gpgkey": "file://%s/keys/RPM-GPG-KEY-lapis-test" % FIXTURES}
    o.update({k: str(v) for k, v in opts.items()})
    lines = ["[%s]" % repoid, "baseurl=" + baseurls[0]]
    lines += ["        " + u for u in baseurls[1:]]
    lines += ["%s=%s" % kv for kv in o.items()]
    (dest / ("%s.repo" % repoid)).write_text("\n".join(lines) + "\n")
    return dest


class Http:
    def __init__(self, server, port):
        self.server = server
        self.port = port
        self.url = "http://127.0.0.1:%d" % port

    def repos_url(self, knobs=""):
        """http://127.0.0.1:PORT[/KNOBS]/repos"""
        k = "/" + knobs.strip("/") if knobs else ""
        return "%s%s/repos" % (self.url, k)

    def mark(self):
        return len(self.server.log)

    def since(self, mark):
        with self.server.lock:
            return list(self.server.log[mark:])

    def reset(self):
        httpserver.reset(self.server)


@pytest.fixture(scope="session")
def fixtures():
    return FIXTURES


@pytest.fixture(scope="session")
def http():
    server, port = httpserver.start(str(FIXTURES))
    yield Http(server, port)
    httpserver.stop(server)


@pytest.fixture(scope="session")
def file_reposd():
    return FIXTURES / "repos.d"


@pytest.fixture(scope="session")
def http_reposd(http, tmp_path_factory):
    return write_reposd(session_tmp(tmp_path_factory, "http-repos.d"), http.repos_url())


@pytest.fixture
def make_reposd(tmp_path, http):
    """make_reposd(knobs) -> a reposdir whose http baseurls carry KNOBS."""
    n = [0]

    def make(knobs="", ids=ALL_REPOS):
        n[0] += 1
        return write_reposd(tmp_path / ("repos.d-%d" % n[0]), http.repos_url(knobs), ids)
    return make


def _lapis_for(transport, tmp_path, request):
    if transport == "file":
        return Lapis(tmp_path, request.getfixturevalue("file_reposd"), "file",
                     "file://%s/repos" % FIXTURES)
    http = request.getfixturevalue("http")
    return Lapis(tmp_path, request.getfixturevalue("http_reposd"), "http", http.repos_url())


@pytest.fixture(params=["file", "http"])
def transport(request):
    return request.param


@pytest.fixture
def lapis(transport, tmp_path, request):
    return _lapis_for(transport, tmp_path, request)


@pytest.fixture
def lapis_file(tmp_path, request):
    return _lapis_for("file", tmp_path, request)


@pytest.fixture
def lapis_http(tmp_path, request):
    return _lapis_for("http", tmp_path, request)


# --------------------------------------------------------------------------
# Small helpers used by several test modules
# --------------------------------------------------------------------------

def run_on_tty(lapis, answers, *args):
    """Run lapis with a pseudo-terminal on stdin that has ANSWERS typed ahead."""
    import pty
    master, slave = pty.openpty()
    try:
        os.write(master, answers.encode())
        cp = subprocess.run(lapis.argv(*args), stdin=slave, capture_output=True, text=True,
                            timeout=60, env=lapis.env)
    finally:
        os.close(slave)
        os.close(master)
    return cp


def list_sections(text):
    """Parse `list` output: {section title: [(name.arch, evr, repo), ...]}.
    A line that does not split into exactly three fields is a title."""
    secs, cur = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        f = line.split()
        if len(f) == 3 and cur is not None:
            secs[cur].append(tuple(f))
        else:
            cur = line.strip()
            secs.setdefault(cur, [])
    return secs


def nevra(p):
    """name-[epoch:]version-release.arch of a JSON package object."""
    e = "%d:" % p["epoch"] if p["epoch"] else ""
    return "%s-%s%s-%s.%s" % (p["name"], e, p["version"], p["release"], p["arch"])


def files_named(top, name):
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        if name in filenames:
            found.append(os.path.join(dirpath, name))
    return found


# --------------------------------------------------------------------------
# Holding the installroot lock from another process
# --------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import fcntl, os, struct, sys, time
    path, hold = sys.argv[1], float(sys.argv[2])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fl = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, fl)
    os.ftruncate(fd, 0)
    os.pwrite(fd, b"%d\\n" % os.getpid(), 0)
    print("locked", flush=True)
    time.sleep(hold)
""")


@pytest.fixture
def lock_holders():
    """start(script, *args): run a Python lock holder, return once it prints
    "locked"; every holder still running is killed after the test."""
    procs = []

    def start(script, *args):
        p = subprocess.Popen([sys.executable, "-c", script] + [str(a) for a in args],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "locked"
        procs.append(p)
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.fixture
def hold_lock(lapis_file, lock_holders):
    return lambda seconds: lock_holders(HOLDER, lapis_file.root / "var/lib/lapis/lock", seconds)
