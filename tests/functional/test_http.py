"""HTTP transport: fault knobs of the test server, retries, redirects,
mirror failover, skip_if_unavailable and parallel downloads."""

import time

import httpserver
import pytest

from conftest import DEAD_URL, FIXTURES, list_sections, write_repo

RETRIES = "--setopt=retries=1"


def repomd_requests(log, repoid="base"):
    return [e for e in log if e["path"].endswith("/repos/%s/repodata/repomd.xml" % repoid)]


@pytest.fixture
def knob(lapis_http, make_reposd, http):
    """knob(KNOBS, *args) -> Result of `lapis --repo=base ARGS` with base's
    baseurl behind KNOBS (default args: makecache)."""
    def run(knobs, *args, repo="base"):
        rd = make_reposd(knobs, ids=("base", "updates"))
        return lapis_http.run(RETRIES, "--repo=%s" % repo, *(args or ("makecache",)), reposd=rd)
    return run


def test_status_500_fails_after_retries(knob, http):
    mark = http.mark()
    r = knob("_status/500")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "base" in r.error_lines[0], r
    assert "500" in r.error_lines[0], r
    tries = repomd_requests(http.since(mark))
    assert len(tries) == 2, "retries=1 means two attempts: %s" % tries
    assert not r.elapsed > 30, r


def test_status_500_retries_zero(lapis_http, make_reposd, http):
    rd = make_reposd("_status/500", ids=("base",))
    mark = http.mark()
    r = lapis_http.run("--setopt=retries=0", "--repo=base", "makecache", reposd=rd)
    assert r.rc == 1, r
    assert len(repomd_requests(http.since(mark))) == 1


def test_status_404_not_found(knob, http):
    mark = http.mark()
    r = knob("_status/404")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "base" in r.error_lines[0], r
    assert "not found" in r.error_lines[0], r
    # a 404 is permanent: no point in asking the same mirror again
    assert len(repomd_requests(http.since(mark))) == 1


def test_truncated_transfer(knob):
    r = knob("_truncate/100")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "base" in r.error_lines[0], r


def test_wrong_content_length(knob):
    r = knob("_wronglen")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "base" in r.error_lines[0], r


def test_first_request_fails_retry_succeeds(knob, http):
    http.reset()   # _fail counters are per server and per exact path
    r = knob("_fail/1")
    assert r.rc == 0, r
    assert r.error_lines == [], r
    statuses = [e["status"] for e in repomd_requests(http.since(0))]
    assert statuses == [500, 200], statuses
    r = knob("_fail/1", "-C", "list", "hello")
    assert r.rc == 0 and ("hello.x86_64", "1.0-1", "base") in list_sections(r.out)["Available packages"], r


def test_redirects_followed(knob, http):
    mark = http.mark()
    r = knob("_redirect/2")
    assert r.rc == 0, r
    assert r.error_lines == [], r
    paths = [e["path"] for e in http.since(mark)]
    assert "/_redirect/0/repos/base/repodata/repomd.xml" in paths, paths
    r = knob("_redirect/2", "-C", "--json", "list", "hello")
    assert r.rc == 0 and len(r.json()["available"]) == 1, r


def test_redirect_loop_fails(knob):
    r = knob("_redirectloop")
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "base" in r.error_lines[0], r
    assert r.elapsed < 30, r


def test_latency_ok(knob):
    r = knob("_latency/200")
    assert r.rc == 0, r
    r = knob("_latency/200", "-C", "list", "hello")
    assert r.rc == 0, r


def test_redirect_to_other_knobs_combined(knob):
    r = knob("_latency/50/_redirect/1")
    assert r.rc == 0, r


# ---- mirrors -------------------------------------------------------------------

@pytest.mark.parametrize("first", [
    DEAD_URL + "/repos/base",                 # connection refused
    "{url}/_status/404/repos/base",           # mirror without the repo
    "{url}/_status/503/repos/base",           # broken mirror
    "{url}/_truncate/100/repos/base",         # connection drops
    "file:///nonexistent/lapis/mirror",       # missing local mirror
])
def test_mirror_failover(lapis_http, http, tmp_path, first):
    good = http.repos_url() + "/base"
    rd = write_repo(tmp_path / "rd", "base", [first.format(url=http.url), good])
    r = lapis_http.run(RETRIES, "makecache", reposd=rd)
    assert r.rc == 0, r
    assert r.error_lines == [], r
    doc = lapis_http.json("-C", "list", "hello", reposd=rd)
    assert [(p["version"], p["repo"]) for p in doc["available"]] == [("1.0", "base")]


def test_all_mirrors_dead(lapis_http, tmp_path):
    rd = write_repo(tmp_path / "rd", "base", [DEAD_URL + "/a", DEAD_URL + "/b"])
    r = lapis_http.run(RETRIES, "makecache", reposd=rd)
    assert r.rc == 1, r
    assert len(r.error_lines) == 1 and "base" in r.error_lines[0], r
    assert r.elapsed < 30, r


def test_repolist_shows_all_mirrors(lapis_http, http, tmp_path):
    urls = [DEAD_URL + "/repos/base", http.repos_url() + "/base"]
    rd = write_repo(tmp_path / "rd", "base", urls)
    doc = lapis_http.json("repolist", reposd=rd)
    assert doc["repos"][0]["baseurl"] == urls


# ---- skip_if_unavailable ---------------------------------------------------------

def test_skip_if_unavailable_on(lapis_http, tmp_path):
    rd = write_repo(tmp_path / "rd", "deadrepo", DEAD_URL + "/")
    r = lapis_http.run(RETRIES, "--setopt=deadrepo.skip_if_unavailable=1", "makecache", reposd=rd)
    assert r.rc == 0, r
    assert r.error_lines == [], r
    assert any("deadrepo" in w for w in r.warning_lines), r
    r = lapis_http.run(RETRIES, "--setopt=deadrepo.skip_if_unavailable=1", "--json", "makecache",
                       reposd=rd)
    assert r.rc == 0, r
    assert [(x["id"], x["skipped"]) for x in r.json()["repos"]] == [("deadrepo", True)]


def test_skip_if_unavailable_keeps_other_repos(lapis_http, http, tmp_path):
    rd = write_repo(tmp_path / "rd", "deadrepo", DEAD_URL + "/", skip_if_unavailable=1)
    write_repo(rd, "base", http.repos_url() + "/base")
    r = lapis_http.run(RETRIES, "list", "hello", reposd=rd)
    assert r.rc == 0, r
    assert ("hello.x86_64", "1.0-1", "base") in list_sections(r.out)["Available packages"], r
    assert any("deadrepo" in w for w in r.warning_lines), r


def test_skip_if_unavailable_off(lapis_http, tmp_path):
    rd = write_repo(tmp_path / "rd", "deadrepo", DEAD_URL + "/")
    for opts in ((), ("--setopt=deadrepo.skip_if_unavailable=0",)):
        r = lapis_http.run(RETRIES, *opts, "makecache", reposd=rd)
        assert r.rc == 1, r
        assert len(r.error_lines) == 1 and "deadrepo" in r.error_lines[0], r


# ---- parallel downloads ----------------------------------------------------------

class TimingHandler(httpserver.Handler):
    def _handle(self, head):
        t0 = time.monotonic()
        try:
            super()._handle(head)
        finally:
            with self.server.lock:
                self.server.spans.append((self.path, t0, time.monotonic()))


@pytest.fixture
def timing_server():
    srv, port = httpserver.start(str(FIXTURES))
    srv.RequestHandlerClass = TimingHandler
    srv.spans = []
    yield srv, port
    httpserver.stop(srv)


@pytest.mark.serial   # wall time: not beside other tests
def test_parallel_metadata_downloads(lapis_http, tmp_path, timing_server):
    srv, port = timing_server
    latency = 500
    rd = tmp_path / "rd"
    for rid in ("base", "updates"):
        write_repo(rd, rid, "http://127.0.0.1:%d/_latency/%d/repos/%s" % (port, latency, rid))
    t0 = time.monotonic()
    r = lapis_http.run("makecache", reposd=rd)
    elapsed = time.monotonic() - t0
    assert r.rc == 0, r
    spans = {p.split("/repos/")[1]: (a, b) for p, a, b in srv.spans}
    a = spans["base/repodata/repomd.xml"]
    b = spans["updates/repodata/repomd.xml"]
    assert a[0] < b[1] and b[0] < a[1], "repomd.xml requests of base and updates did not overlap: %s" % spans
    # Each repo needs at least two sequential round trips (repomd, then
    # primary/updateinfo); done one repo after the other that is >= 4 x latency.
    serial = 2 * 2 * latency / 1000.0
    assert elapsed < 0.9 * serial, "makecache took %.2fs, serial would be %.2fs" % (elapsed, serial)


@pytest.mark.serial   # wall time: not beside other tests
def test_max_parallel_downloads_one_is_serial(lapis_http, tmp_path, timing_server):
    """One transfer at a time, and the next starts as soon as the previous
    one is done (5 files, comps included, at 100 ms latency: well under 1.8 s)."""
    srv, port = timing_server
    rd = write_repo(tmp_path / "rd", "base", "http://127.0.0.1:%d/_latency/100/repos/base" % port)
    r = lapis_http.run("--setopt=max_parallel_downloads=1", "makecache", reposd=rd)
    assert r.rc == 0, r
    spans = sorted((a, b) for _p, a, b in srv.spans)
    assert len(spans) == 5, srv.spans
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
        assert b0 >= a1 - 0.01, "overlapping transfers with max_parallel_downloads=1: %s" % srv.spans
    gaps = ["%.2f" % (b0 - a1) for (a0, a1), (b0, b1) in zip(spans, spans[1:])]
    assert r.elapsed < 1.8, "took %.2fs for 5 x 100 ms; idle gaps between transfers: %s" % (
        r.elapsed, gaps)


@pytest.mark.serial   # wall time: not beside other tests
def test_mirror_failover_is_immediate(lapis_http, http, tmp_path):
    """A refused connection is instant; moving on to the next mirror must not
    wait (all four metadata files through a dead first mirror)."""
    rd = write_repo(tmp_path / "rd", "base", [DEAD_URL + "/repos/base", http.repos_url() + "/base"])
    r = lapis_http.run(RETRIES, "makecache", reposd=rd)
    assert r.rc == 0, r
    assert r.elapsed < 1.0, "failover took %.2fs" % r.elapsed
