"""Per-sample JUnit XML: one testcase per (test, sample), written atomically.

CI renderers (GitHub Actions report actions, GitLab) show a testcase's name and the first line of its
failure message and ignore most else, and GitLab drops duplicate names. So every sample gets its own
testcase, named ``<test> sample <index>`` (zero-padded so names sort), whose failure message is the
sample's one-line verdict, e.g. ``falsified: eps=0.05 linf |d|=0.049 label 3 -> 5 by apgd``.

- certified -> passed; falsified and misclassified -> failure;
- unknown -> ``unknown="skipped"`` (default), ``"failure"`` or ``"pass"``;
- the failures of a test marked ``xfail`` that failed as expected -> skipped (as pytest reports it);
- ``include="all"`` lists every sample, ``"failures"`` only the failing ones (falsified, misclassified,
  and unknown when ``unknown="failure"``) to stay inside CI artefact limits, ``"none"`` one testcase
  per test (its summary) instead of per-sample ones.

Each test is a ``<testsuite>`` whose properties give the threat model, seed and criterion; each sample's
testcase carries ``<properties>`` (verdict, method, figure, ...) and its time. The file is written to a
temporary file in the same directory and moved into place with :func:`os.replace`, so a reader never
sees half a file.

    >>> from robustest.reporting.junit import write_junit          # doctest: +SKIP
    >>> write_junit("robustness.xml", [("test_digits", report)])   # doctest: +SKIP
"""

from __future__ import annotations

import os
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
    """'passed' | 'failure' | 'skipped' for one sample's testcase."""
    if sample.verdict == "certified":
        return "passed"
    if sample.verdict == "unknown":
        return {"skipped": "skipped", "failure": "failure", "pass": "passed"}[unknown]
    return "failure"  # falsified, misclassified


def _build_suite(record: TestRecord, unknown: str, include: str, used: Dict[str, int]):
    from junit_xml import TestCase, TestSuite

    cases = []
    case_props: List[Tuple[Tuple[str, str], ...]] = []
    if include == "none":
        case = TestCase(_unique(record.name, used), classname=record.classname, elapsed_sec=record.seconds)
        if not record.passed and record.xfail:
            case.add_skipped_info(message=f"xfail ({record.xfail}): {record.summary}")
        elif not record.passed:
            case.add_failure_info(message=record.summary, output="\n".join(record.notes) or None,
                                  failure_type="robustness")
        cases.append(case)
        case_props.append(())
    else:
        width = max(4, len(str(max((s.index for s in record.samples), default=0))))
        for s in record.samples:
            outcome = _sample_outcome(s, unknown)
            if include == "failures" and (outcome != "failure" or record.xfail):
                continue
            case = TestCase(_unique(sample_case_name(record.name, s.index, width), used),
                            classname=record.classname, elapsed_sec=max(s.seconds, 1e-9))
            if outcome == "failure" and record.xfail:  # as pytest's junitxml reports an xfail: skipped
                case.add_skipped_info(message=f"xfail ({record.xfail}): {s.message}")
            elif outcome == "failure":
                case.add_failure_info(message=s.message, output=s.message, failure_type=s.verdict)
            elif outcome == "skipped":
                case.add_skipped_info(message=s.message)
            cases.append(case)
            case_props.append(s.properties())
    suite_props = {"threat": record.threat, "escalate": record.escalate, "seed": str(record.seed),
                   "require": record.require, "min_pass": f"{record.min_pass:g}",
                   "passed": str(record.passed).lower(), "summary": record.summary,
                   "nodeid": record.nodeid}
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
