"""Progress of long tests: lines under -v in a log, nothing without -v, nothing from xdist workers, and a
transient note on a terminal that leaves pytest's own output as it was."""

from __future__ import annotations

import math

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
    """(Under xdist, even with -v, too: tests/plugin/test_junit_agrees_with_pytest.py checks it.)"""
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
