"""Per-sample JUnit XML: one testcase per (test, sample), written atomically.

CI renderers (GitHub Actions report actions, GitLab) show a testcase's name and the first line of its
failure message and ignore most else, and GitLab drops duplicate names. So every sample gets its own
testcase, named ``<test> sample <index>`` (zero-padded so names sort), whose failure message is the
sample's one-line verdict, e.g. ``falsified: eps=0.05 linf |d|=0.049 label 3 -> 5 by apgd``.

- certified -> passed; falsified and misclassified -> failure;
- unknown -> ``unknown="skipped"`` (default), ``"failure"`` or ``"pass"``; ``"failure"`` is asked for,
  so an unknown sample that the criterion lets pass (``require="not_falsified"``) is then a failure
  element even when pytest passes;
- the file agrees with pytest's verdict: a failure element appears only for a check that failed its
  test. The failing samples of a check that met its ``min_pass`` are skipped, with the first line
  ``falsified, tolerated by min_pass=0.9: eps=0.05 ...``; those of a test marked ``xfail`` that failed
  as expected are skipped (``falsified, xfail (reason): ...``, as pytest reports the test), and so are
  those of a ``robustness.check`` that does not fail its test (``not enforced``). A CI renderer that
  fails a check on any failure element (GitHub's JUnit actions) is then red exactly when pytest is;
- ``include="all"`` lists every sample, ``"failures"`` only the failure elements (falsified,
  misclassified, and unknown when ``unknown="failure"``, of checks that failed their test) to stay
  inside CI artefact limits, ``"none"`` one testcase per test (its summary) instead of per-sample ones.

Each test is a ``<testsuite>`` whose properties give the threat model, seed and criterion; each sample's
testcase carries ``<properties>`` (verdict, method, margin, ...) and its time. The file is written to a
temporary file in the same directory and moved into place with :func:`os.replace`, so a reader never
sees half a file.

    >>> from robustest.reporting.junit import write_junit          # doctest: +SKIP
    >>> write_junit("robustness.xml", [("test_digits", report)])   # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple, Union

from ..atomic import atomic_write_text
from ..errors import invalid_argument
from ..results import INCLUDE_MODES, UNKNOWN_MODES
from . import SampleRecord, TestRecord, record_from_report

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Report

__all__ = ["write_junit", "write_records", "sample_case_name"]

ReportLike = Union[TestRecord, Tuple[str, "Report"]]


def sample_case_name(test_name: str, index: int, width: int = 4) -> str:
    """``test_digits[linf-0.05] sample 0042``: unique per sample, sorts in index order."""
    return f"{test_name} sample {index:0{width}d}"


def _sample_outcome(sample: SampleRecord, unknown: str) -> str:
    """'passed' | 'failure' | 'skipped' for one sample's testcase, before the check's excuse."""
    if sample.verdict == "certified":
        return "passed"
    if sample.verdict == "unknown":
        return {"skipped": "skipped", "failure": "failure", "pass": "passed"}[unknown]
    return "failure"  # falsified, misclassified


def excused_message(sample: SampleRecord, excuse: str) -> str:
    """``falsified, tolerated by min_pass=0.9: eps=0.05 linf |d|=0.049 ...``: the excuse first."""
    head = f"{sample.verdict}: "
    rest = sample.message[len(head):] if sample.message.startswith(head) else sample.message
    return f"{sample.verdict}, {excuse}: {rest}"


def _unknown_message(sample: SampleRecord, record: TestRecord) -> str:
    """An unknown sample's line; after attacks alone it says so first (nothing was proved)."""
    if record.escalate == "attack" and sample.verdict == "unknown":
        return excused_message(sample, "not falsified by attacks; not proved")
    return sample.message


def classname_of(record: TestRecord) -> str:
    """The record's classname, or for one made outside pytest (CLI, library) ``robustest.<test>``: the
    test's name (its ``group`` property, e.g. the model file) without the ``[...]`` suffix, as a dotted
    name. CI renderers group testcases by it, and some drop testcases without one.

        >>> from robustest.reporting import TestRecord
        >>> rec = TestRecord("mlp.onnx[eps=0.1]", "mlp.onnx[eps=0.1]", "", "eps=0.1 linf", "attack", 0, 0.0,
        ...                  1.0, "not_falsified", True, "", ())
        >>> classname_of(rec)
        'robustest.mlp_onnx'
    """
    if record.classname:
        return record.classname
    stem = dict(record.properties).get("group") or re.sub(r"\[[^\]]*\]$", "", record.name)
    return "robustest." + (re.sub(r"\W+", "_", stem).strip("_") or "check")


def _build_suite(record: TestRecord, unknown: str, include: str, used: Dict[str, int]):
    from junit_xml import TestCase, TestSuite

    classname = classname_of(record)
    cases = []
    case_props: List[Tuple[Tuple[str, str], ...]] = []
    excuse = record.excuse()
    if include == "none":
        case = TestCase(_unique(record.name, used), classname=classname, elapsed_sec=record.seconds)
        if not record.passed and excuse:
            case.add_skipped_info(message=f"{excuse}: {record.summary}")
        elif not record.passed:
            case.add_failure_info(message=record.summary, output="\n".join(record.notes) or None,
                                  failure_type="robustness")
        cases.append(case)
        case_props.append(())
    else:
        width = max(4, len(str(max((s.index for s in record.samples), default=0))))
        for s in record.samples:
            outcome = _sample_outcome(s, unknown)
            if outcome == "failure" and excuse and record.sample_fails(s):  # an allowance pytest accepted
                outcome = "excused"
            if include == "failures" and outcome != "failure":
                continue
            case = TestCase(_unique(sample_case_name(record.name, s.index, width), used),
                            classname=classname, elapsed_sec=max(s.seconds, 1e-9))
            if outcome == "excused":
                case.add_skipped_info(message=excused_message(s, excuse))
            elif outcome == "failure":
                case.add_failure_info(message=s.message, output=s.message, failure_type=s.verdict)
            elif outcome == "skipped":
                case.add_skipped_info(message=_unknown_message(s, record))
            cases.append(case)
            case_props.append(s.properties())
    suite_props = {"threat": record.threat, "escalate": record.escalate, "seed": str(record.seed),
                   "require": record.require, "min_pass": f"{record.min_pass:g}",
                   "passed": str(record.passed).lower(), "result": record.result,
                   "summary": record.summary, "nodeid": record.nodeid,
                   "time": "a sample's time is its share of the batched phases (split equally among the "
                           "samples they worked on) plus the time of its own per-sample proofs"}
    suite_props.update(dict(record.properties))
    return TestSuite(record.nodeid, cases, properties=suite_props), case_props


def _unique(name: str, used: Dict[str, int]) -> str:
    """GitLab drops duplicate names, so a repeated name gets `` (2)``, `` (3)``..."""
    count = used.get(name, 0) + 1
    used[name] = count
    return name if count == 1 else f"{name} ({count})"


def render_junit(records: Sequence[TestRecord], *, unknown: str = "skipped", include: str = "all") -> str:
    """The JUnit XML document for ``records`` as a string."""
    from junit_xml import to_xml_report_string

    if unknown not in UNKNOWN_MODES:
        raise invalid_argument("unknown", unknown, "one of " + ", ".join(UNKNOWN_MODES),
                               "pass unknown='skipped' (default), 'failure' or 'pass'")
    if include not in INCLUDE_MODES:
        raise invalid_argument("include", include, "one of " + ", ".join(INCLUDE_MODES),
                               "pass include='all' (default), 'failures' or 'none'")
    used: Dict[str, int] = {}
    built = [_build_suite(r, unknown, include, used) for r in records]
    root = ET.fromstring(to_xml_report_string([s for s, _ in built], prettyprint=False))
    root.set("name", "robustest")
    # junit-xml has no per-testcase properties; add them (CI tools that read them find them here).
    for suite_el, (_, props) in zip(root.findall("testsuite"), built):
        for case_el, case_props in zip(suite_el.findall("testcase"), props):
            if case_props:
                holder = ET.Element("properties")
                for key, value in case_props:
                    ET.SubElement(holder, "property", {"name": key, "value": value})
                case_el.insert(0, holder)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_records(path: Union[str, os.PathLike], records: Sequence[TestRecord], *, unknown: str = "skipped",
                  include: str = "all") -> Path:
    """Write ``records`` to ``path`` atomically (temp file in the same directory, then os.replace)."""
    return atomic_write_text(path, render_junit(records, unknown=unknown, include=include))


def write_junit(path: Union[str, os.PathLike], reports: Sequence[ReportLike], *, unknown: str = "skipped",
                include: str = "all") -> Path:
    """Write one JUnit testcase per (test, sample) of ``reports`` to ``path``, atomically.

    ``reports`` holds ``(test_name, Report)`` pairs (judged with the default criterion: every sample
    not falsified) or ready :class:`~robustest.reporting.TestRecord` objects.

        >>> write_junit("out.xml", [("test_digits[linf-0.05]", report)], unknown="failure")  # doctest: +SKIP
    """
    records = [r if isinstance(r, TestRecord) else record_from_report(r[0], r[1]) for r in reports]
    return write_records(path, records, unknown=unknown, include=include)
