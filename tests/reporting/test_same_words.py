"""The terminal summary, the HTML report and pytest say the same thing about each check (#14.4)."""

from __future__ import annotations

import dataclasses
import re

from robustest.reporting import RESULT_WORDS, record_from_report
from robustest.reporting.html import HtmlTest, render_html
from robustest.reporting.terminal import summary_lines


def test_terminal_and_html_use_the_same_result_words_and_totals(make_report):
    ok = record_from_report("ok", make_report(["certified", "unknown"]), nodeid="t.py::ok")
    bad = record_from_report("bad", make_report(["falsified"]), nodeid="t.py::bad")
    weak = dataclasses.replace(record_from_report("weak", make_report(["falsified"]), nodeid="t.py::weak"),
                               xfail="known")
    loose = record_from_report("loose", make_report(["falsified"]), nodeid="t.py::loose", enforced=False)
    records = [ok, bad, weak, loose]
    assert [r.result for r in records] == list(RESULT_WORDS)
    lines = summary_lines(records)
    terminal = {line.split()[0]: line.rsplit("  ", 1)[-1].strip() for line in lines[1:-1]}
    page = render_html([HtmlTest(r) for r in records])
    row = r"<tr><td>(\w+)</td><td>[^<]*</td><td>[^<]*</td><td class=\"\w+\">([^<]+)</td>"
    html_words = dict(re.findall(row, page))
    assert {k.split("::")[1]: v for k, v in terminal.items()} == html_words == {
        "ok": "passed", "bad": "FAILED", "weak": "xfailed", "loose": "not met"}
    total = "1 passed, 1 FAILED, 1 xfailed, 1 not met"
    assert lines[-1].endswith(total) and f"{total}</b>" in page


def test_an_attack_only_pass_says_nothing_was_proved(make_report):
    rec = record_from_report("t", make_report(["unknown", "unknown", "falsified"]), min_pass=0.5)
    assert rec.summary.startswith("robustness passed (not falsified by attacks; 0 proved): 66.7% of 3")
    certified = record_from_report("t", make_report(["unknown", "falsified"]), require="certified")
    assert certified.summary.startswith("robustness FAILED: 0.0% of 2")  # no caveat: unknown fails there
