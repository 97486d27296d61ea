"""repolist [all|enabled|disabled] and its JSON form."""

from conftest import ALL_REPOS, DEFAULT_REPOS, DISABLED_REPOS


def test_repolist_default_shows_enabled(lapis):
    r = lapis.ok("repolist")
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert lines[0].split() == ["repo", "id", "repo", "name"], r
    ids = [l.split()[0] for l in lines[1:]]
    assert sorted(ids) == sorted(DEFAULT_REPOS), r
    assert any("Lapis test repository base" in l for l in lines), r


def test_repolist_enabled_equals_default(lapis):
    assert lapis.ok("repolist", "enabled").out == lapis.ok("repolist").out


def test_repolist_all_has_status_column(lapis):
    r = lapis.ok("repolist", "all")
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert lines[0].split() == ["repo", "id", "repo", "name", "status"], r
    status = {l.split()[0]: l.split()[-1] for l in lines[1:]}
    assert sorted(status) == sorted(ALL_REPOS), r
    for rid in DEFAULT_REPOS:
        assert status[rid] == "enabled", r
    for rid in DISABLED_REPOS:
        assert status[rid] == "disabled", r


def test_repolist_disabled(lapis):
    r = lapis.ok("repolist", "disabled")
    lines = [l for l in r.out.splitlines() if l.strip()]
    assert lines[0].split() == ["repo", "id", "repo", "name"], r
    assert sorted(l.split()[0] for l in lines[1:]) == sorted(DISABLED_REPOS), r


def test_repolist_bad_argument(lapis):
    r = lapis.run("repolist", "bogus")
    assert r.rc == 1, r
    assert "bogus" in r.err, r


def test_repolist_json(lapis):
    doc = lapis.json("repolist")
    assert set(doc) == {"repos"}
    repos = {x["id"]: x for x in doc["repos"]}
    assert sorted(repos) == sorted(DEFAULT_REPOS)
    for rid, x in repos.items():
        assert set(x) >= {"id", "name", "enabled", "priority", "baseurl"}, x
        assert x["enabled"] is True
        assert x["name"] == "Lapis test repository %s" % rid
        assert isinstance(x["priority"], int) and x["priority"] == 99
        assert x["baseurl"] == ["%s/%s" % (lapis.baseurl, rid)]


def test_repolist_json_all_and_disabled(lapis):
    every = {x["id"]: x["enabled"] for x in lapis.json("repolist", "all")["repos"]}
    assert sorted(every) == sorted(ALL_REPOS)
    assert {k for k, v in every.items() if v} == set(DEFAULT_REPOS)
    dis = lapis.json("repolist", "disabled")["repos"]
    assert sorted(x["id"] for x in dis) == sorted(DISABLED_REPOS)
    assert all(x["enabled"] is False for x in dis)


def test_repolist_repo_option_selects_one(lapis):
    doc = lapis.json("--repo=empty", "repolist")
    assert [x["id"] for x in doc["repos"]] == ["empty"]


def test_repolist_enablerepo_and_disablerepo(lapis):
    doc = lapis.json("--enablerepo=empty", "--disablerepo=updates", "repolist")
    assert sorted(x["id"] for x in doc["repos"]) == ["base", "empty"]
    doc = lapis.json("--enablerepo=bad*", "repolist")
    assert sorted(x["id"] for x in doc["repos"]) == sorted(
        ["base", "updates", "badhref", "badhref-abs", "badsig", "badxml"])


def test_repolist_setopt_priority(lapis):
    doc = lapis.json("--setopt=base.priority=10", "repolist")
    prio = {x["id"]: x["priority"] for x in doc["repos"]}
    assert prio == {"base": 10, "updates": 99}
