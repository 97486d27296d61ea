"""The --json contract: stdout is exactly one JSON document for every
command; an error gives {"error": {"message": ..., "code": ...}} and exit 1."""

import json

import pytest

# (arguments, expected exit code, top-level keys)
SUCCESS_CASES = [
    (["repolist"], 0, {"repos"}),
    (["repolist", "all"], 0, {"repos"}),
    (["repolist", "disabled"], 0, {"repos"}),
    (["makecache"], 0, {"repos"}),
    (["clean", "all"], 0, {"removed"}),
    (["clean", "metadata"], 0, {"removed"}),
    (["clean", "packages"], 0, {"removed"}),
    (["list"], 0, {"installed", "available"}),
    (["list", "installed"], 0, {"installed"}),
    (["list", "available", "hel*"], 0, {"available"}),
    (["list", "updates"], 0, {"upgrades"}),
    (["list", "--showduplicates", "hello"], 0, {"available"}),
    (["info", "hello"], 0, {"packages"}),
    (["search", "greeting"], 0, {"packages"}),
    (["search", "--all", "exercise"], 0, {"packages"}),
    (["search", "zzzznotthere"], 0, {"packages"}),
    (["provides", "mta"], 0, {"packages"}),
    (["provides", "/usr/share/hello/data.txt"], 0, {"packages"}),
    (["whatprovides", "/usr/bin/hell*"], 0, {"packages"}),
    (["repoquery"], 0, {"packages"}),
    (["repoquery", "--requires", "hello"], 0, {"packages", "deps"}),
    (["repoquery", "--provides", "hello"], 0, {"packages", "deps"}),
    (["repoquery", "--whatrequires", "mta"], 0, {"packages"}),
    (["repoquery", "--whatprovides", "mta"], 0, {"packages"}),
    (["repoquery", "--location", "hello"], 0, {"packages"}),
    (["repoquery", "-l", "hello"], 0, {"packages"}),
    (["repoquery", "--installed"], 0, {"packages"}),
    (["repoquery", "--available", "hello"], 0, {"packages"}),
    (["repoquery", "--upgrades"], 0, {"packages"}),
    (["check-update"], 0, {"upgrades"}),
    (["--assumeno", "install", "hello", "richdep"], 1, {"transaction", "result"}),
]


def ids(cases):
    return [" ".join(c[0]) for c in cases]


def assert_one_document(r):
    text = r.out
    assert text.strip(), "no JSON on stdout:\n%s" % r
    dec = json.JSONDecoder()
    doc, end = dec.raw_decode(text.lstrip())
    rest = text.lstrip()[end:]
    assert rest.strip() == "", "trailing data after the JSON document:\n%s" % r
    assert isinstance(doc, dict), r
    return doc


@pytest.mark.parametrize("args,rc,keys", SUCCESS_CASES, ids=ids(SUCCESS_CASES))
def test_json_success(lapis, args, rc, keys):
    r = lapis.run("--json", *args)
    assert r.rc == rc, r
    doc = assert_one_document(r)
    assert keys <= set(doc), (keys, r)
    assert "error" not in doc, r


def test_json_option_position_is_free(lapis_file):
    """dnf accepts global options after the command too."""
    a = lapis_file.run("list", "hello", "--json")
    b = lapis_file.run("--json", "list", "hello")
    assert a.rc == b.rc == 0, (a, b)
    assert a.json() == b.json()


def test_json_with_installed_packages(lapis_file):
    lapis_file.rpm_install("hello-1.0-1.x86_64.rpm", "libfoo-1.0-1.x86_64.rpm")
    for args, rc in ((["list"], 0), (["list", "installed"], 0), (["check-update"], 100),
                     (["info", "hello"], 0), (["repoquery", "--installed"], 0),
                     (["repoquery", "--location", "hello"], 0), (["list", "updates"], 0)):
        r = lapis_file.run("--json", *args)
        assert r.rc == rc, r
        assert_one_document(r)


ERROR_CASES = [
    (["-C", "list"], "makecache"),
    (["--repo=badsig", "makecache"], "badsig"),
    (["--enablerepo=doesnotexist", "repolist"], "doesnotexist"),
    (["--setopt=bogus=1", "repolist"], "bogus"),
    (["--setopt=base.priority=abc", "repolist"], "abc"),
    (["-c", "/nonexistent/lapis.conf", "repolist"], "/nonexistent/lapis.conf"),
    (["--assumeno", "install", "doesnotexist"], "No match for argument: doesnotexist"),
    (["list", "doesnotexist"], None),
    (["info", "doesnotexist"], None),
    (["provides", "doesnotexist"], "doesnotexist"),
    (["install", "hello"], None),
    (["--bogus-option", "repolist"], "--bogus-option"),
    (["bogus-command"], "bogus-command"),
    (["repolist", "bogus"], "bogus"),
    (["clean", "bogus"], "bogus"),
    (["search"], None),
    (["repoquery", "--requires", "--provides", "hello"], None),
]


USAGE_CASES = [["--setopt=bogus=1", "repolist"], ["--setopt=base.priority=abc", "repolist"],
               ["install", "hello"], ["--bogus-option", "repolist"], ["bogus-command"],
               ["clean", "bogus"], ["search"], ["repoquery", "--requires", "--provides", "hello"]]


@pytest.mark.parametrize("args,needle", ERROR_CASES, ids=ids(ERROR_CASES))
def test_json_error_document(lapis_file, args, needle):
    r = lapis_file.run("--json", *args)
    assert r.rc == (2 if args in USAGE_CASES else 1), r   # dnf5: a usage error is 2
    doc = assert_one_document(r)
    assert set(doc) == {"error"}, "expected an error document:\n%s" % r
    err = doc["error"]
    assert isinstance(err.get("message"), str) and err["message"], r
    assert "code" in err, "error document without a code:\n%s" % r
    if needle:
        assert needle in err["message"], r


def test_json_error_document_http(lapis_http, http):
    r = lapis_http.run("--json", "--setopt=retries=1", "--setopt=base.baseurl=%s/_status/500/repos/base" % http.url,
                       "--repo=base", "makecache")
    assert r.rc == 1, r
    doc = assert_one_document(r)
    assert set(doc) == {"error"} and "base" in doc["error"]["message"], r


def test_json_warnings_stay_off_stdout(lapis):
    r = lapis.run("--json", "--repo=badhref", "makecache")
    assert r.rc == 0, r
    doc = assert_one_document(r)
    assert [x["id"] for x in doc["repos"]] == ["badhref"]
    assert "outside the repository" in r.err, r


def test_installed_packages_name_the_repo_they_came_from(lapis_file):
    """An installed package's object keeps "repo": "@System" and adds
    "from_repo" (dnf5's %{from_repo}): the repo the history says it was
    installed from, null when rpm installed it. Available packages have none."""
    lapis_file.yes("--setopt=install_weak_deps=0", "--disablerepo=updates", "install", "hello")
    lapis_file.rpm_install("pkga-1.0-1.noarch.rpm")
    want = {"hello": "base", "libfoo": "base", "pkga": None}
    for args, key in ((["list", "--installed"], "installed"),
                      (["repoquery", "--installed"], "packages"),
                      (["info", "--installed"], "packages")):
        pkgs = lapis_file.json(*args)[key]
        got = {p["name"]: p.get("from_repo", "missing") for p in pkgs}
        assert got == want, (args, pkgs)
        assert all(p["repo"] == "@System" for p in pkgs), (args, pkgs)
    avail = lapis_file.json("list", "--available", "hello")["available"]
    assert avail and all("from_repo" not in p for p in avail), avail
    tx = lapis_file.json("-y", "remove", "hello")["transaction"]
    assert {p["name"]: p["from_repo"] for p in tx} == {"hello": "base", "libfoo": "base"}, tx
