"""repoclosure (dnf5's plugin command): packages whose requirements nothing
available provides, in dnf5's layout and exit code (over file:// and http://).
The fixtures' base + updates are closed; excluding libfoo opens them (every
hello requires libfoo)."""

import pytest


def blocks(out):
    found, cur = {}, None
    for line in out.splitlines():
        if line.startswith("package: "):
            nevra, _, repo = line[len("package: "):].partition(" from ")
            cur = found.setdefault((nevra, repo), [])
        elif line.startswith("    "):
            cur.append(line.strip())
    return found


def test_closed_repos_exit_0(lapis):
    r = lapis.ok("repoclosure")
    assert r.out == "", r          # filedep's /usr/bin/hello is found in the file lists


def test_unresolved_listed_exit_1(lapis):
    r = lapis.run("-x", "libfoo*", "repoclosure")
    assert r.rc == 1, r
    assert blocks(r.out) == {("hello-1.0-1.x86_64", "base"): ["libfoo"],
                             ("hello-2.0-1.x86_64", "updates"): ["libfoo"],
                             ("hello-2.1-1.x86_64", "updates"): ["libfoo"]}, r
    assert "  unresolved deps (1):" in r.out.splitlines()[1], r
    assert r.error_lines == ["lapis: error: Repoclosure ended with unresolved dependencies (3) "
                             "across 3 packages."], r


@pytest.mark.parametrize("args,expected", [
    (["--newest"], [("hello-1.0-1.x86_64", "base"), ("hello-2.1-1.x86_64", "updates")]),
    (["--check", "base"], [("hello-1.0-1.x86_64", "base")]),
    (["--check=upd*", "--newest"], [("hello-2.1-1.x86_64", "updates")]),
    (["--arch", "noarch"], []),
    (["hello-2.0"], [("hello-2.0-1.x86_64", "updates")]),
])
def test_repoclosure_filters(lapis, args, expected):
    r = lapis.run("-x", "libfoo*", "repoclosure", *args)
    assert r.rc == (1 if expected else 0), r
    assert sorted(blocks(r.out)) == expected, r


def test_repoclosure_no_match(lapis):
    r = lapis.run("repoclosure", "nosuchpkg")
    assert r.rc == 1 and 'No match for argument "nosuchpkg"' in r.err, r


def test_repoclosure_json(lapis):
    r = lapis.run("--json", "-x", "libfoo*", "repoclosure", "--newest", "--check", "updates")
    assert r.rc == 1, r
    (item,) = r.json()["unresolved"]
    assert item["name"] == "hello" and item["version"] == "2.1" and item["unresolved"] == ["libfoo"]
