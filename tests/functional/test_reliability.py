"""Reliability guarantees (docs/reliability.md): what a killed or faulty run
leaves behind is cleaned up or harmless, and limits hold."""

import os
import time


def _dead_pid():
    """A pid that no process has (pid_max is far below this on Linux)."""
    pid = 4194000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_stale_staging_dirs_are_swept(lapis_file):
    """A refresh killed mid-way leaves repodata.new-PID-XXXXXX; the next refresh
    removes it when its owner is dead and it is older than a minute, and leaves
    live owners' and fresh ones alone."""
    lapis_file.ok("--repo=base", "makecache")
    cdir = lapis_file.cache_dir("base")
    old = time.time() - 3600
    stale = cdir / ("repodata.new-%d-abcdef" % _dead_pid())
    live = cdir / ("repodata.new-%d-abcdef" % os.getpid())
    fresh = cdir / ("repodata.new-%d-ghijkl" % _dead_pid())
    legacy = cdir / "repodata.new-Xy12Zq"
    for d in (stale, live, fresh, legacy):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "primary.xml.gz").write_bytes(b"half a download")
    for d in (stale, live, legacy):
        os.utime(d, (old, old))
    lapis_file.ok("--repo=base", "makecache", "--refresh")
    assert not stale.exists()
    assert not legacy.exists()
    assert live.exists(), "a live owner's staging dir must survive"
    assert fresh.exists(), "a staging dir touched within the last minute must survive"
    # And no staging dir of this run is left behind.
    left = sorted(p.name for p in cdir.iterdir() if p.name.startswith("repodata.new-"))
    assert left == sorted([live.name, fresh.name]), left


def test_staging_sweep_does_not_follow_symlinks(lapis_file, tmp_path):
    """A symlink named like a staging dir is not followed into its target."""
    lapis_file.ok("--repo=base", "makecache")
    cdir = lapis_file.cache_dir("base")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("precious")
    link = cdir / ("repodata.new-%d-linkxx" % _dead_pid())
    os.symlink(victim, link)
    os.utime(link, (time.time() - 3600,) * 2, follow_symlinks=False)
    lapis_file.ok("--repo=base", "makecache", "--refresh")
    assert (victim / "keep").read_text() == "precious"
