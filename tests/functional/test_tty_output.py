"""Output on a terminal (issue 14, as dnf5 writes it): `info` values and
`search` summaries wrap at the terminal's width (TIOCGWINSZ on stdout, or
COLUMNS) with dnf5's continuation indent; the `history` table cuts its
command-line column instead of wrapping it; colours (dnf5's green search
matches, action colours in the transaction table) only on a terminal, and
never with NO_COLOR, --color=never or color=never; --color=always colours
a pipe. Output that is not a terminal is never wrapped: scripts read it.

stdout is a pseudo-terminal with a set window size; its bytes are read raw."""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios

import pytest

SGR = re.compile(rb"\x1b\[[0-9;]*m")
HELLO_DESC = ("hello prints a friendly greeting. It exists to exercise install, upgrade,",
              "downgrade, remove, file lists and advisories in the Lapis test suite.")


def run_pty(lapis, *args, cols=40, env=None, rc=0):
    """Run lapis with stdout on a pseudo-terminal COLS wide; (stdout bytes, stderr text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR            # keep "\n" as it is written
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    e = env_with(lapis, env)
    proc = subprocess.Popen(lapis.argv(*args), stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        assert ready, "lapis hung on the terminal"
        try:
            chunk = os.read(master, 65536)
        except OSError:                   # EIO: the slave side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == rc, (args, out, err)
    return out, err


def env_with(lapis, extra):
    """lapis's environment without the caller's COLUMNS and NO_COLOR, plus EXTRA."""
    e = {k: v for k, v in lapis.env.items() if k not in ("COLUMNS", "NO_COLOR")}
    e.update(extra or {})
    return e


def run_pipe(lapis, *args, env=None):
    e = env_with(lapis, env)
    cp = subprocess.run(lapis.argv(*args), capture_output=True, env=e,
                        stdin=subprocess.DEVNULL, timeout=60)
    assert cp.returncode == 0, cp
    return cp.stdout


def plain(data):
    return SGR.sub(b"", data).decode()


def widest(text):
    return max(len(l) for l in text.splitlines())


# ---- wrapping ---------------------------------------------------------------

def test_info_description_wraps_at_the_window(lapis_file):
    out, _ = run_pty(lapis_file, "info", "hello", cols=40)
    text = plain(out)
    assert widest(text) <= 40, text
    lines = text.splitlines()
    start = lines.index([l for l in lines if l.startswith("Description    : ")][0])
    desc = lines[start:]
    desc = desc[:[i for i, l in enumerate(desc) if not l.startswith(" ")][1]]  # to Vendor
    assert len(desc) > 2, text
    assert all(l.startswith("               : ") for l in desc[1:]), desc
    # The words are all there, in order: only the line breaks moved.
    words = " ".join(l[17:] for l in desc).split()
    assert words == " ".join(HELLO_DESC).split(), desc
    i = lines.index("Summary        : A friendly greeting")
    assert lines[i + 1] == "               : program for Lapis tests", text


def test_columns_wins_over_the_window(lapis_file):
    out, _ = run_pty(lapis_file, "info", "hello", cols=200, env={"COLUMNS": "50"})
    text = plain(out)
    assert widest(text) <= 50 and widest(text) > 40, text


def test_wide_terminal_and_pipe_do_not_wrap(lapis_file):
    """80+ columns fit dnf's description lines; a pipe is never wrapped, even with COLUMNS."""
    out, _ = run_pty(lapis_file, "info", "hello", cols=120)
    for line in HELLO_DESC:
        assert (" : " + line) in plain(out), out
    piped = run_pipe(lapis_file, "info", "hello", env={"COLUMNS": "30"}).decode()
    assert "Description    : " + HELLO_DESC[0] in piped.splitlines(), piped
    assert "               : " + HELLO_DESC[1] in piped.splitlines(), piped


def test_search_summary_wraps_under_its_column(lapis_file):
    """dnf5's " name.arch: summary" lines; on a terminal a long one wraps, its
    further lines hung two columns in, under the group's heading."""
    out, _ = run_pty(lapis_file, "--color=never", "search", "greeting", cols=40)
    text = out.decode()
    assert widest(text) <= 40, text
    lines = text.splitlines()
    first = [i for i, l in enumerate(lines) if l.startswith(" hello.x86_64: ")][0]
    assert lines[first - 1] == "Matched fields: summary", text
    cont = lines[first + 1]
    assert cont.startswith("  ") and cont.strip(), text
    joined = lines[first][len(" hello.x86_64: "):] + " " + cont.strip()
    assert joined.startswith("A friendly greeting program for Lapis"), text
    piped = run_pipe(lapis_file, "search", "greeting").decode()
    assert " hello.x86_64: A friendly greeting program for Lapis tests" in piped.splitlines()


def _history_with_a_long_command(lapis):
    lapis.ok("-y", "--setopt=install_weak_deps=0", "--exclude=nosuch-" + "x" * 120,
             "install", "hello")


def test_history_cuts_the_command_line(lapis_file):
    _history_with_a_long_command(lapis_file)
    out, _ = run_pty(lapis_file, "history", "list", cols=70)
    lines = plain(out).splitlines()
    assert all(len(l) <= 70 for l in lines), lines
    assert len(lines) == 2, lines                 # header and one row: cut, not wrapped
    row = lines[1].split()
    assert row[0] == "1" and "Install" in lines[1], lines
    assert lines[0].split()[:3] == ["ID", "Command", "line"], lines
    # The date column stays whole.
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", lines[1]), lines
    piped = run_pipe(lapis_file, "history", "list").decode()
    assert "x" * 120 in piped, piped              # a pipe keeps the whole command line


def test_repo_list_fits_the_terminal(lapis_file):
    """dnf5's repo table fits the window: the repo name is cut (libsmartcols'
    TRUNC column), the ids and the status stay whole; a pipe is not cut."""
    piped = run_pipe(lapis_file, "repo", "list", "--all").decode().splitlines()
    assert max(len(l) for l in piped) > 70, piped  # too wide for the window below
    out, _ = run_pty(lapis_file, "repo", "list", "--all", cols=70)
    lines = plain(out).splitlines()
    assert len(lines) == len(piped) and all(len(l) <= 70 for l in lines), lines
    assert [l.split()[0] for l in lines] == [l.split()[0] for l in piped], lines
    assert [l.split()[-1] for l in lines] == [l.split()[-1] for l in piped], lines


# ---- colours ----------------------------------------------------------------

def test_search_highlights_the_match_on_a_terminal(lapis_file):
    out, _ = run_pty(lapis_file, "search", "greeting", cols=120)
    assert b"\x1b[32mgreeting\x1b[0m" in out, out
    assert plain(out) == run_pipe(lapis_file, "search", "greeting").decode()


def test_search_match_is_case_insensitive_and_keeps_its_case(lapis_file):
    out, _ = run_pty(lapis_file, "search", "FRIENDLY", cols=120)
    assert b"\x1b[32mfriendly\x1b[0m" in out, out


@pytest.mark.parametrize("how", [{"env": {"NO_COLOR": "1"}},
                                 {"args": ["--color=never"]},
                                 {"args": ["--setopt=color=never"]},
                                 {"args": ["--json"]}])
def test_no_colour_when_told(lapis_file, how):
    out, _ = run_pty(lapis_file, *how.get("args", []), "search", "greeting", cols=120,
                     env=how.get("env"))
    assert b"\x1b" not in out, out


def test_no_colour_in_a_pipe_unless_always(lapis_file):
    assert b"\x1b" not in run_pipe(lapis_file, "search", "greeting")
    out = run_pipe(lapis_file, "--color=always", "search", "greeting")
    assert b"\x1b[32mgreeting\x1b[0m" in out, out
    # always wins over NO_COLOR (no-color.org: an explicit option overrides it)
    out = run_pipe(lapis_file, "--color=always", "search", "greeting", env={"NO_COLOR": "1"})
    assert b"\x1b[32m" in out, out
    # --color on the command line wins over color= in the configuration
    out = run_pipe(lapis_file, "--setopt=color=never", "--color=always", "search", "greeting")
    assert b"\x1b[32m" in out, out


def test_empty_no_color_keeps_colours(lapis_file):
    out, _ = run_pty(lapis_file, "search", "greeting", cols=120, env={"NO_COLOR": ""})
    assert b"\x1b[32m" in out, out


def test_transaction_table_colours(lapis_file):
    out, _ = run_pty(lapis_file, "--assumeno", "install", "hello", cols=120, rc=1)
    assert b"\x1b[1mPackage\x1b[0m" in out, out
    assert b"\x1b[32m hello\x1b[0m" in out, out
    lapis_file.ok("-y", "install", "hello")
    out, _ = run_pty(lapis_file, "--assumeno", "remove", "hello", cols=120, rc=1)
    assert b"\x1b[31m hello\x1b[0m" in out, out
    out, _ = run_pty(lapis_file, "--assumeno", "--color=never", "remove", "hello", cols=120,
                     rc=1)
    assert b"\x1b" not in out, out


def test_bad_color_value(lapis):
    r = lapis.run("--color=sometimes", "search", "greeting")
    assert r.rc == 2 and "--color takes auto, always or never" in r.err, r
    r = lapis.run("--setopt=color=sometimes", "search", "greeting")
    assert r.rc == 2 and "color" in r.err, r


def test_color_key_in_lapis_conf(lapis_file, tmp_path):
    conf = tmp_path / "lapis.conf"
    conf.write_text("[main]\ncolor=always\n")
    out = run_pipe(lapis_file, "-c", conf, "search", "greeting")
    assert b"\x1b[32mgreeting\x1b[0m" in out, out
    conf.write_text("[main]\ncolor=never\n")
    out, _ = run_pty(lapis_file, "-c", conf, "search", "greeting", cols=120)
    assert b"\x1b" not in out, out
    out, _ = run_pty(lapis_file, "-c", conf, "--color=auto", "search", "greeting", cols=120)
    assert b"\x1b[32m" in out, out


def test_search_lines_fit_the_terminal(lapis_file):
    """Every line fits; a hit starts with one blank, its wrapped rest with two,
    and a pipe gets each hit on one line."""
    out, _ = run_pty(lapis_file, "search", "Lapis", cols=45)
    lines = plain(out).splitlines()
    assert widest(plain(out)) <= 45, lines
    assert all(l.startswith(("Matched fields: ", " ")) for l in lines), lines
    hit = [i for i, l in enumerate(lines) if l.startswith(" conflictor.noarch: ")][0]
    assert lines[hit + 1].startswith("  ") and not lines[hit + 1].startswith("   "), lines
    piped = run_pipe(lapis_file, "search", "Lapis").decode().splitlines()
    assert " conflictor.noarch: Lapis test package that conflicts with hello" in piped, piped


# ---- key : value blocks of repo info, group info, environment info ----------

KV_INDENT = " " * 20 + ": "


def _kv_values(text):
    """[(key, value with its continuation lines)] of a key : value block,
    blanks left out (a wrap may break inside a long path or URL)."""
    out = []
    for line in text.splitlines():
        if line.startswith(KV_INDENT) and out:
            out[-1] = (out[-1][0], out[-1][1] + "".join(line[len(KV_INDENT):].split()))
        elif ":" in line:
            out.append((line[:20], "".join(line[22:].split())))
    return out


@pytest.mark.parametrize("args", [("repo", "info", "base"), ("group", "info", "greeting"),
                                  ("environment", "info", "web-stack")], ids=" ".join)
def test_kv_info_values_wrap_on_a_terminal(lapis_file, args):
    """Values longer than the terminal wrap under the value column, each further
    line KV_INDENT in (as `info` wraps): every line fits, no text is lost;
    a pipe keeps one line per value, even with COLUMNS."""
    out, _ = run_pty(lapis_file, "--color=never", *args, cols=40)
    text = plain(out)
    piped = run_pipe(lapis_file, *args, env={"COLUMNS": "30"}).decode()
    assert widest(text) <= 40, text
    assert any(l.startswith(KV_INDENT) for l in text.splitlines()), text
    assert not any(l.startswith(KV_INDENT) and len(l) > 22 and l[22] == " "
                   for l in text.splitlines()), text
    assert widest(piped) > 40, piped                         # the pipe is not wrapped
    assert _kv_values(text) == _kv_values(piped), (text, piped)
    wide, _ = run_pty(lapis_file, "--color=never", *args, cols=400)
    assert plain(wide) == piped, wide


def test_group_description_wraps_at_its_words(lapis_file):
    out, _ = run_pty(lapis_file, "group", "info", "greeting", cols=40)
    lines = plain(out).splitlines()
    i = lines.index("Description         : Programs that say")
    assert lines[i + 1] == KV_INDENT + "hello.", lines


# ---- the transaction table on a narrow terminal ---------------------------------

LONG_EVR = "20261202.1.2.3git0123abcdef-1"


def _longver_table(lapis, cols):
    out, _ = run_pty(lapis, "--color=never", "--repo=longver", "--assumeno", "install",
                     "longver", cols=cols, rc=1)
    lines = plain(out).splitlines()
    start = [i for i, l in enumerate(lines) if l.startswith("Package")][0]
    table = lines[start:lines.index("", start)]
    row = [l for l in table if l.startswith(" longver ")][0]
    return table, table[0], row


@pytest.mark.parametrize("cols", [50, 60, 64])
def test_transaction_table_cuts_the_version_on_a_narrow_terminal(lapis_file, cols):
    """dnf5's Version column is SCOLS_FL_TRUNC (a fifth of the width): on a
    terminal too narrow for the table its end is cut, the name, arch,
    repository id (never under its heading) and size stay whole."""
    lines, head, row = _longver_table(lapis_file, cols)
    assert widest("\n".join(lines)) <= cols, lines
    at = head.index("Version")
    assert head.index("Arch") == row.index("noarch"), (head, row)
    cell = row[at:].split()[0]
    assert LONG_EVR.startswith(cell) and len(cell) < len(LONG_EVR), (head, row)
    assert len(cell) >= len("Version"), row
    assert row[head.index("Repository"):].split()[0] == "longver", (head, row)
    assert re.search(r"\d+(\.\d)? (B|KiB)$", row), row


def test_transaction_table_version_whole_when_it_fits(lapis_file):
    _, head, row = _longver_table(lapis_file, 120)
    assert row[head.index("Version"):].split()[0] == LONG_EVR, row
    piped = subprocess.run(lapis_file.argv("--repo=longver", "--assumeno", "install",
                                           "longver"), capture_output=True, text=True,
                           env=env_with(lapis_file, {"COLUMNS": "40"}),
                           stdin=subprocess.DEVNULL, timeout=60)
    assert piped.returncode == 1 and LONG_EVR in piped.stdout, piped
