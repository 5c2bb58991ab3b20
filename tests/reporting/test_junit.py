"""Per-sample JUnit: parse the XML and check names, outcomes, messages, properties and the atomic write."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.errors import InvalidArgument
from robustest.reporting import TestRecord, record_from_report
from robustest.reporting.junit import render_junit, write_junit, write_records


def cases(path):
    root = ET.parse(path).getroot()
    return root, root.findall(".//testcase")


def test_one_testcase_per_sample_with_unique_sorted_names(tmp_path, make_report):
    rep = make_report(["certified", "falsified", "unknown", "misclassified"] * 3)
    out = tmp_path / "r.xml"
    write_junit(out, [("test_digits[linf-0.05]", rep), ("test_other", make_report(["falsified"]))])
    root, tcs = cases(out)
    names = [tc.get("name") for tc in tcs]
    assert len(names) == 13 and len(set(names)) == 13
    assert names[:12] == sorted(names[:12])
    assert names[0] == "test_digits[linf-0.05] sample 0000"
    assert names[11] == "test_digits[linf-0.05] sample 0011"
    assert float(tcs[1].get("time")) == pytest.approx(0.02)
    assert int(root.get("tests")) == 13


def test_outcomes_and_first_failure_line(tmp_path, make_report):
    rep = make_report(["certified", "falsified", "unknown", "misclassified"])
    out = tmp_path / "r.xml"
    write_junit(out, [("t", rep)])
    _, tcs = cases(out)
    assert tcs[0].find("failure") is None and tcs[0].find("skipped") is None
    fail = tcs[1].find("failure")
    assert fail.get("message") == "falsified: eps=0.05 linf |d|=0.049 label 3 -> 5 by apgd"
    assert fail.get("type") == "falsified"
    assert tcs[2].find("skipped").get("message").startswith(
        "unknown, not falsified by attacks; not proved: eps=0.05 linf label 3 unknown")
    assert tcs[3].find("failure").get("message").startswith("misclassified:")
    props = {p.get("name"): p.get("value") for p in tcs[1].find("properties")}
    assert props["method"] == "apgd" and float(props["margin"]) == pytest.approx(-0.3)
    assert props["predicted"] == "5"


@pytest.mark.parametrize("unknown, tag", [("failure", "failure"), ("pass", None), ("skipped", "skipped")])
def test_unknown_modes(tmp_path, unknown, tag, make_report):
    out = tmp_path / "r.xml"
    write_junit(out, [("t", make_report(["unknown"]))], unknown=unknown)
    _, tcs = cases(out)
    children = {c.tag for c in tcs[0]} - {"properties"}
    assert children == ({tag} if tag else set())


def test_include_failures_and_none(tmp_path, make_report):
    rep = make_report(["certified", "falsified", "unknown", "certified"])
    out = tmp_path / "r.xml"
    write_junit(out, [("t", rep)], include="failures")
    _, tcs = cases(out)
    assert [tc.get("name") for tc in tcs] == ["t sample 0001"]
    write_junit(out, [("t", rep)], include="failures", unknown="failure")
    _, tcs = cases(out)
    assert [tc.get("name") for tc in tcs] == ["t sample 0001", "t sample 0002"]
    write_junit(out, [("t", rep)], include="none")
    _, tcs = cases(out)
    assert [tc.get("name") for tc in tcs] == ["t"]
    assert tcs[0].find("failure").get("message").startswith(
        "robustness FAILED (not falsified by attacks; 2 proved): 75.0% of 4 samples pass")


def test_suite_properties_and_classname(tmp_path, make_report):
    rec = record_from_report("test_x[0.1]", make_report(["certified"], eps=0.1, norm="l2"),
                             nodeid="tests/test_m.py::test_x[0.1]", classname="tests.test_m",
                             min_pass=0.5, properties=[("repair", "ok")])
    out = write_records(tmp_path / "sub" / "r.xml", [rec])
    root, tcs = cases(out)
    suite = root.find("testsuite")
    assert suite.get("name") == "tests/test_m.py::test_x[0.1]"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["threat"] == "eps=0.1 l2" and props["seed"] == "7" and props["repair"] == "ok"
    assert props["min_pass"] == "0.5" and props["passed"] == "true"
    assert tcs[0].get("classname") == "tests.test_m"


def test_duplicate_names_are_made_unique(tmp_path, make_report):
    rep = make_report(["falsified"])
    out = tmp_path / "r.xml"
    write_junit(out, [("t", rep), ("t", rep)])
    _, tcs = cases(out)
    assert [tc.get("name") for tc in tcs] == ["t sample 0000", "t sample 0000 (2)"]


def test_record_round_trips_through_plain_data(make_report):
    rec = record_from_report("t", make_report(["certified", "falsified", "unknown"]), properties=[("a", "b")])
    again = TestRecord.from_dict(rec.to_dict())
    assert again == rec
    assert render_junit([again]) == render_junit([rec])


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch, make_report):
    out = tmp_path / "r.xml"
    write_junit(out, [("t", make_report(["falsified"]))])
    before = out.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_junit(out, [("t", make_report(["certified", "certified"]))])
    assert out.read_text() == before  # the old file is intact, never half-written
    assert [p.name for p in tmp_path.iterdir()] == ["r.xml"]


def test_bad_modes_name_the_argument(tmp_path, make_report):
    with pytest.raises(InvalidArgument, match="unknown='maybe'"):
        write_junit(tmp_path / "r.xml", [("t", make_report(["unknown"]))], unknown="maybe")
    with pytest.raises(InvalidArgument, match="include='some'"):
        write_junit(tmp_path / "r.xml", [("t", make_report(["unknown"]))], include="some")


def test_report_to_junit(tmp_path, make_report):
    out = tmp_path / "r.xml"
    import robustest

    robustest.write_junit(str(out), [("mytest", make_report(["falsified", "certified"]))])
    _, tcs = cases(out)
    assert [tc.get("name") for tc in tcs] == ["mytest sample 0000", "mytest sample 0001"]


@settings(max_examples=40)
@given(verdicts=st.lists(st.sampled_from(["certified", "falsified", "unknown", "misclassified"]),
                         max_size=30),
       unknown=st.sampled_from(["skipped", "failure", "pass"]), include=st.sampled_from(["all", "failures"]))
def test_counts_match_verdicts_for_any_report(verdicts, unknown, include, make_report):
    import xml.etree.ElementTree as ET

    from robustest.reporting.junit import render_junit

    rec = record_from_report("t", make_report(verdicts))
    root = ET.fromstring(render_junit([rec], unknown=unknown, include=include))
    failing = sum(v in ("falsified", "misclassified") for v in verdicts) + (
        verdicts.count("unknown") if unknown == "failure" else 0)
    skipped = verdicts.count("unknown") if unknown == "skipped" else 0
    listed = len(verdicts) if include == "all" else failing
    names = [tc.get("name") for tc in root.iter("testcase")]
    assert (int(root.get("failures")), int(root.get("tests"))) == (failing, listed)
    assert sum(tc.find("skipped") is not None for tc in root.iter("testcase")) == (
        skipped if include == "all" else 0)
    assert len(set(names)) == len(names) and names == sorted(names)
