"""Results files come from outside: `robustest report` validates them and the HTML escapes every value."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from robustest.cli import main
from robustest.cli.report import read_results
from robustest.errors import InvalidArgument
from robustest.reporting import record_from_report
from robustest.reporting.html import HtmlTest, render_html
from robustest.reporting.merge import results_document

SCRIPT = 'x"><script>alert(1)</script>'


def _document(make_report):
    record = record_from_report("t", make_report(["certified", "falsified", "unknown"]))
    return results_document([HtmlTest(record)])


def test_html_escapes_every_sample_value(make_report):
    """Even a record that skipped validation (built in code) cannot inject markup into the page."""
    record = record_from_report("t", make_report(["certified", "falsified"]))
    bad = replace(record.samples[0], method=SCRIPT, reason=SCRIPT, message=SCRIPT)
    page = render_html([HtmlTest(replace(record, samples=(bad, record.samples[1]), name=SCRIPT))])
    assert "alert(1)</script>" not in page
    assert '"><script>' not in page


@pytest.mark.parametrize("field,value,match", [
    ("verdict", SCRIPT, "verdict"), ("verdict", "bogus", "verdict"), ("index", '1"><b>', "index"),
    ("label", "<img src=x>", "label"), ("label", True, "label"), ("predicted", "5<b>", "predicted"),
    ("seconds", "fast", "seconds"), ("figure", "big", "figure"), ("method", ["x"], "method"),
])
def test_results_file_outside_the_vocabulary_is_refused(make_report, tmp_path, field, value, match):
    doc = _document(make_report)
    doc["tests"][0]["record"]["samples"][1][field] = value
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match=match):
        read_results(str(path))


def test_report_command_writes_no_page_for_a_crafted_file(make_report, tmp_path, capsys):
    doc = _document(make_report)
    doc["tests"][0]["record"]["samples"][0]["verdict"] = SCRIPT
    path, page = tmp_path / "results.json", tmp_path / "out.html"
    path.write_text(json.dumps(doc))
    assert main(["report", str(path), "--html", str(page)]) == 2
    assert not page.exists()
    assert "verdict" in capsys.readouterr().err


def test_valid_results_file_still_reads(make_report, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_document(make_report)))
    assert [s.verdict for s in read_results(str(path))[0].record.samples] == ["certified", "falsified", "unknown"]


@pytest.mark.parametrize("field,value", [("name", 5), ("threat", ["<b>"]), ("passed", "yes"), ("seed", "0")])
def test_results_file_with_bad_test_fields_is_refused(make_report, tmp_path, field, value):
    doc = _document(make_report)
    doc["tests"][0]["record"][field] = value
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidArgument, match=field):
        read_results(str(path))
