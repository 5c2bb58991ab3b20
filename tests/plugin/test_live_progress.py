"""Progress of long tests: lines under -v in a log, nothing without -v, nothing from xdist workers, and a
transient note on a terminal that leaves pytest's own output as it was."""

from __future__ import annotations

import math

import pytest

from robustest.progress import Progress, listening, tell
from robustest.reporting.live import transient

TESTS = '''
from robustest import robust

@robust(eps=0.1, escalate="crown", attacks="fgsm", timeout=5, min_pass=0.5)
def test_a(model, data):
    pass

def test_b(robustness, model, data):
    robustness.check(model, *data, eps=0.1, attacks="fgsm")
'''


def test_verbose_log_gets_one_line_per_rung_and_pytest_lines_stay_whole(project):
    project.test_file(TESTS)
    result = project.run("-v")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "    robustest check: attack, 0/4 decided, <= 20 s of budget left",
        "    robustest check: ibp, 2/4 decided, <= * s of budget left",
        "test_it.py::test_a PASSED*",
        "    robustest check: attack, 0/4 decided, <= 40 s of budget left",
        "test_it.py::test_b PASSED*",
    ])
    assert "\b" not in out  # no terminal tricks in a log


def test_quiet_without_v(project):
    """(Under xdist, even with -v, too: tests/plugin/test_xdist.py checks it.)"""
    project.test_file(TESTS)
    result = project.run()
    result.assert_outcomes(passed=2)
    assert "robustest check:" not in result.stdout.str()


def test_the_transient_note_erases_itself():
    def screen(stream):
        """What a terminal line shows after ``stream`` (backspace moves left, characters overwrite)."""
        line, pos = [], 0
        for ch in stream:
            if ch == "\b":
                pos = max(0, pos - 1)
                continue
            if pos == len(line):
                line.append(ch)
            else:
                line[pos] = ch
            pos += 1
        return "".join(line).rstrip(), pos

    stream = "test_x.py " + transient(0, " robustest check: attack") + transient(24, " robustest crown")
    stream += transient(16, "")
    assert screen(stream) == ("test_x.py", len("test_x.py "))  # the line and the cursor as pytest left them


def test_events_reach_only_the_listener_of_their_context():
    seen = []
    with listening(seen.append):
        tell(Progress("check", "attack", 0, 4, 8.0))
        with listening(None):
            tell(Progress("check", "hidden", 0, 4))
    tell(Progress("check", "after", 4, 4))
    assert [e.step for e in seen] == ["attack"]
    assert Progress("radius", "exact minimum", 1, 3, math.inf).line() == "radius: exact minimum, 1/3 decided"


def test_a_broken_display_does_not_break_the_check(caplog):
    def broken(event):
        raise OSError("terminal went away")

    with listening(broken):
        tell(Progress("check", "attack", 0, 1))
    assert "progress display failed" in caplog.text


@pytest.mark.parametrize("verbose", [False, True])
def test_on_a_real_terminal_the_note_shows_and_leaves_pytest_lines_as_they_were(project, verbose):
    """pytest in a pseudo-terminal: the note appears in the stream, and the screen it leaves (backspaces
    applied, colours stripped) is pytest's own: the progress line reads ``test_it.py ..  [100%]``."""
    import os
    import pty
    import re
    import subprocess
    import sys

    project.test_file(TESTS)
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    args = ["-v"] if verbose else []
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args]
    proc = subprocess.Popen(command,
                            cwd=project.path, stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(main)
    stream = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    assert "robustest check: attack, 0/4 decided" in stream  # the note was shown
    screen = []
    for raw in stream.replace("\r\n", "\n").split("\n"):
        line, pos = [], 0
        for ch in raw:
            if ch == "\b":
                pos = max(0, pos - 1)
            elif ch == "\r":
                pos = 0
            else:
                line[pos:pos + 1] = [ch]
                pos += 1
        screen.append("".join(line).rstrip())
    screen = screen[:next(k for k, line in enumerate(screen) if "robustest summary" in line)]  # pytest's part
    if verbose:
        progress = [line for line in screen if re.match(r"test_it\.py::test_\w+ ", line)]
        assert [re.sub(r" +", " ", line) for line in progress] == [
            "test_it.py::test_a PASSED [ 50%]", "test_it.py::test_b PASSED [100%]"], progress
    else:
        progress = [line for line in screen if line.startswith("test_it.py ")]
        assert len(progress) == 1 and re.fullmatch(r"test_it\.py \.\. +\[100%\]", progress[0]), progress
    assert not any("robustest check:" in line for line in screen)  # erased, nothing left behind
    assert proc.returncode == 0
