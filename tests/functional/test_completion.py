"""Shell completion (data/completion/lapis.bash), driven in a real bash the way
readline drives it: COMP_WORDS split at COMP_WORDBREAKS, COMP_LINE, COMP_POINT,
COMP_CWORD, then _lapis, with bash-completion loaded as on a user's system.
Candidates come from the fixture system the command line names
(--installroot, --setopt=reposdir/cachedir), from the cache only."""

import fcntl
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from conftest import LAPIS_BIN, SRCROOT

SCRIPT = SRCROOT / "data" / "completion" / "lapis.bash"
ZSH_IN = SRCROOT / "data" / "completion" / "_lapis.in"
BASH_COMPLETION = pathlib.Path("/usr/share/bash-completion/bash_completion")
NOWEAK = "--setopt=install_weak_deps=0"

DRIVER = r'''
[[ $LOAD_BC == 1 ]] && . /usr/share/bash-completion/bash_completion
. "$SCRIPT" || exit 3
complete -p lapis | grep -q -- '-F _lapis' || exit 4
COMP_LINE=$1 COMP_POINT=${#1}
shift
COMP_WORDS=("$@") COMP_CWORD=$(($# - 1))
_lapis lapis "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def comp_words(line):
    """Split a command line as readline does for completion: at blanks, and
    '=' (in COMP_WORDBREAKS) as a word of its own; a trailing blank starts an
    empty word."""
    words = []
    for w in line.split():
        words += re.findall(r"=+|[^=]+", w)
    if line.endswith(" "):
        words.append("")
    return words


def lapis_on_path(tmp):
    bindir = tmp / "bin"
    if not bindir.exists():
        bindir.mkdir()
        (bindir / "lapis").symlink_to(LAPIS_BIN)
    return bindir


def completer(tmp):
    """A function completing a line in bash; 'lapis' on PATH is LAPIS_BIN."""
    assert BASH_COMPLETION.exists(), "bash-completion is not installed (scripts/install-deps)"
    bindir = lapis_on_path(tmp)

    def run(line, load_bc=True):
        env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]),
                   SCRIPT=str(SCRIPT), LOAD_BC="1" if load_bc else "0", LC_ALL="C.UTF-8")
        cp = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER, "drive", line]
                            + comp_words(line), capture_output=True, text=True, env=env,
                            timeout=30, stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, (line, cp)
        return set(cp.stdout.split())
    return run


@pytest.fixture
def complete(tmp_path):
    return completer(tmp_path)


@pytest.fixture
def system(lapis_file):
    """The fixture config on the command line, its metadata cached."""
    lapis_file.ok("-q", "makecache")
    return lapis_file, completer(lapis_file.tmp), "lapis " + " ".join(lapis_file.argv()[1:]) + " "


def test_command_names(complete):
    assert complete("lapis ins") == {"install"}
    assert complete("lapis re") == {"repolist", "reinstall", "remove", "repoquery", "repo",
                                    "repoinfo", "repoclosure", "rei"}
    assert complete("lapis -y --setopt=best=0 up") == {"upgrade", "update", "upgrade-minimal",
                                                       "update-minimal", "updateinfo", "up",
                                                       "upgrade-to", "update-to", "up-min", "upif"}
    assert complete("lapis help downl") == {"download"}
    assert complete("lapis env") == {"environment"}
    assert complete("lapis environment ") == {"list", "info"}
    assert complete("lapis of") == {"offline"}
    assert complete("lapis offline ") == {"status", "reboot", "clean"}


def test_command_names_without_bash_completion(complete):
    assert complete("lapis ins", load_bc=False) == {"install"}


def test_command_options(complete):
    assert complete("lapis install --no") == {"--no-allow-downgrade", "--no-best", "--nodocs",
                                                "--no-docs", "--noscripts"}
    assert complete("lapis download --a") == {"--alldeps", "--arch"}
    assert complete("lapis repoquery --whatr") == {"--whatrequires", "--whatrecommends"}
    assert complete("lapis --no") == {"--no-allow-downgrade", "--no-best", "--nodocs", "--no-docs",
                                      "--nogpgcheck", "--no-gpgchecks", "--noplugins",
                                      "--no-plugins", "--noscripts"}
    assert complete("lapis repoquery --whatd") == {"--whatdepends"}
    assert complete("lapis repoquery --lea") == {"--leaves"}
    assert complete("lapis --col") == {"--color"}
    assert complete("lapis --of") == {"--offline"}
    assert complete("lapis upgrade --of") == {"--offline"}
    assert complete("lapis autoremove --of") == set()
    assert complete("lapis offline --") == {"--poweroff", "--no-reboot"}


def test_color_values(complete):
    assert complete("lapis --color a") == {"auto", "always"}
    assert complete("lapis -y --color n") == {"never"}


def test_available_names_from_cache(system):
    lapis, complete, prefix = system
    assert complete(prefix + "install pk") == {"pkga", "pkgb"}
    assert complete(prefix + "install weakdep-") == {"weakdep-rec", "weakdep-sug"}
    assert complete(prefix + "in lapis") == {"lapis-sh"}
    # Cache-only: with the cache gone there is nothing to offer, and nothing is downloaded.
    shutil.rmtree(lapis.cache)
    assert complete(prefix + "install pk") == set()
    assert not lapis.cache.exists() or not any(lapis.cache.rglob("*.xml*"))


def test_installed_names_and_history_ids(system):
    lapis, complete, prefix = system
    assert complete(prefix + "remove ") == set()
    lapis.yes(NOWEAK, "--disablerepo=updates", "install", "hello")
    lapis.yes("install", "pkga")
    assert complete(prefix + "remove ") == {"hello", "libfoo", "pkga"}
    assert complete(prefix + "rm h") == {"hello"}
    assert complete(prefix + "history ") == {"list", "info", "undo", "redo", "rollback"}
    assert complete(prefix + "history info ") == {"1", "2", "last"}
    assert complete(prefix + "history undo 2") == {"2"}


def test_no_wait_on_a_locked_cache(system):
    """A run refreshing the metadata holds CACHEDIR/lock byte 1 exclusively;
    Tab answers at once (nothing) instead of waiting lock_timeout (60 s)."""
    lapis, complete, prefix = system
    with open(lapis.cache / "lock", "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1)
        t0 = time.monotonic()
        assert complete(prefix + "install pk") == set()
        assert time.monotonic() - t0 < 10
    assert complete(prefix + "install pk") == {"pkga", "pkgb"}


# zsh completes only inside a line editor: run an interactive zsh on a pty
# (zsh/zpty), type the line and Tab; compadd, wrapped, records what it is
# given (zsh then narrows it to the typed prefix itself, as we do below).
ZSH_DRIVER = r'''
zmodload zsh/zpty
zpty -b z 'zsh -f -i'
zpty -w z "PS1='> '; fpath=($FPATHDIR \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'compadd() { print -rl -- "${@[${@[(i)-]}+1,-1]}" >> $OUT; print done >> $OUT.done; builtin compadd "$@"; }'
zpty -w -n z "$1"$'\t'
for i in {1..100}; do [[ -e $OUT.done ]] && break; sleep 0.1; done
zpty -d z
'''


def zsh_completer(tmp):
    bindir = lapis_on_path(tmp)
    fpathdir = tmp / "zsh"
    fpathdir.mkdir(exist_ok=True)
    # What CMake's configure_file makes of it, pointing at the source tree's script.
    (fpathdir / "_lapis").write_text(ZSH_IN.read_text().replace("@LAPIS_BASH_COMPLETION@", str(SCRIPT)))

    def run(line):
        out = tmp / "zsh.out"
        for f in (out, tmp / "zsh.out.done"):
            f.unlink(missing_ok=True)
        env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]),
                   FPATHDIR=str(fpathdir), OUT=str(out), LC_ALL="C.UTF-8")
        subprocess.run(["zsh", "-f", "-c", ZSH_DRIVER, "drive", line], env=env, timeout=30,
                       capture_output=True, stdin=subprocess.DEVNULL)
        assert out.exists(), "zsh never called compadd for %r" % line
        word = line.split(" ")[-1]
        return {c for c in out.read_text().split() if c.startswith(word)}
    return run


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed (scripts/install-deps)")
def test_zsh_through_bashcompinit(system):
    lapis, _, prefix = system
    complete = zsh_completer(lapis.tmp)
    assert complete("lapis ins") == {"install"}
    assert complete("lapis install --no") == {"--no-allow-downgrade", "--no-best", "--nodocs",
                                                "--no-docs", "--noscripts"}
    assert complete(prefix + "install pk") == {"pkga", "pkgb"}


def test_completion_is_installed_where_the_shells_look(tmp_path):
    """`cmake --install` puts the bash script where bash-completion loads it
    by command name and the zsh function (#compdef lapis) in zsh's vendor
    directory; the lapis RPM ships both."""
    build = pathlib.Path(LAPIS_BIN).parent
    if not (build / "cmake_install.cmake").exists():
        pytest.skip("LAPIS_BIN is not in a CMake build directory")
    dest = tmp_path / "dest"
    r = subprocess.run(["cmake", "--install", str(build), "--prefix", "/usr"],
                       env=dict(os.environ, DESTDIR=str(dest)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    bash = dest / "usr/share/bash-completion/completions/lapis"
    zsh = dest / "usr/share/zsh/vendor-completions/_lapis"
    assert bash.read_text() == SCRIPT.read_text()
    assert zsh.read_text().startswith("#compdef lapis"), zsh.read_text()[:80]
    rpm = next((pathlib.Path(os.environ.get("LAPIS_TESTDIST") or SRCROOT / "build" / "testdist")
                / "x86_64" / "Packages").glob("lapis-[0-9]*.x86_64.rpm"), None)
    if rpm:
        files = subprocess.run(["rpm", "-qlp", "--nosignature", str(rpm)], capture_output=True,
                               text=True, check=True).stdout.split()
        assert "/usr/share/bash-completion/completions/lapis" in files, files
        assert any(f.endswith("/_lapis") for f in files), files
