"""The terminal summary table."""

from __future__ import annotations

from robustest.reporting import record_from_report
from robustest.reporting.terminal import summary_lines


def test_table_rows_counts_and_totals(make_report):
    a = record_from_report("a", make_report(["certified", "falsified", "unknown"]), nodeid="t.py::a")
    b = record_from_report("b", make_report(["unknown", "misclassified"]), nodeid="t.py::b", min_pass=0.5)
    lines = summary_lines([a, b])
    assert lines[0].split() == ["test", "certified", "falsified", "unknown", "miscls", "time", "result"]
    assert lines[1].split() == ["t.py::a", "1", "1", "1", "0", "1.5s", "FAILED"]
    assert lines[2].split() == ["t.py::b", "0", "0", "1", "1", "1.5s", "passed"]
    assert lines[3].split() == ["total", "1", "1", "2", "1", "3.0s", "1", "passed,", "1", "FAILED"]
    assert len({len(line.rstrip()) for line in lines[:3]}) <= 2  # aligned columns


def test_long_names_are_shortened_from_the_left(make_report):
    rec = record_from_report("x", make_report(["certified"]), nodeid="a/" * 80 + "test_end")
    lines = summary_lines([rec], width=80)
    assert len(lines[1].split()[0]) < len(rec.nodeid)
    assert lines[1].startswith("...") and lines[1].split()[0].endswith("/a/test_end")


def test_unenforced_checks_say_not_met(make_report):
    rec = record_from_report("c", make_report(["falsified"]), nodeid="t.py::c", enforced=False)
    lines = summary_lines([rec])
    assert lines[1].split()[-2:] == ["not", "met"]
    assert lines[2].split()[-3:] == ["1", "not", "met"]  # the test itself did not fail


def test_no_records_no_table():
    assert summary_lines([]) == []


def test_expected_failures_say_xfailed(make_report):
    import dataclasses

    rec = record_from_report("x", make_report(["falsified"]), nodeid="t.py::x")
    lines = summary_lines([dataclasses.replace(rec, xfail="known")])
    assert lines[1].split()[-1] == "xfailed" and lines[2].split()[-2:] == ["1", "xfailed"]
