"""Reporting: per-sample JUnit XML (:mod:`.junit`) and the terminal summary (:mod:`.terminal`).

Both work on :class:`TestRecord`, a torch-free, plain-data copy of one test's :class:`~robustest.Report`
(plus its pass criterion). Records travel from pytest-xdist workers to the controller as dicts
(:meth:`TestRecord.to_dict` / :meth:`TestRecord.from_dict`), so the controller alone writes the files.

    >>> from robustest.reporting import record_from_report        # doctest: +SKIP
    >>> rec = record_from_report("test_digits", report, classname="tests.test_digits")  # doctest: +SKIP
    >>> rec.counts()["falsified"]                                  # doctest: +SKIP
    3
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

from ..results import VERDICTS

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Report

__all__ = ["SampleRecord", "TestRecord", "record_from_report", "VERDICTS", "RESULT_WORDS", "totals_text"]

#: The words for a check's result, the same in the terminal summary, the HTML report and the JUnit file:
#: "passed" and "FAILED" as pytest says them for the test; "xfailed" for a failure the test expected
#: (``pytest.mark.xfail``); "not met" for a ``robustness.check`` whose criterion failed without failing
#: its test (recorded, not enforced).
RESULT_WORDS: Tuple[str, ...] = ("passed", "FAILED", "xfailed", "not met")



@dataclass(frozen=True)
class SampleRecord:
    """One sample's outcome, with its one-line ``message`` already rendered."""

    index: int
    verdict: str
    method: str
    label: int
    seconds: float
    message: str
    predicted: Optional[int] = None
    distance: Optional[float] = None
    figure: Optional[float] = None
    reason: str = ""
    cached: bool = False  # the verdict was reused from the verdict cache

    def properties(self) -> Tuple[Tuple[str, str], ...]:
        """(name, value) pairs for the JUnit ``<properties>`` of this sample's testcase. ``figure`` is
        written as ``margin``, the word the HTML report and the messages use."""
        out = [("verdict", self.verdict), ("method", self.method), ("label", str(self.label))]
        for name, shown in (("predicted", "predicted"), ("distance", "distance"), ("figure", "margin")):
            value = getattr(self, name)
            if value is not None:
                out.append((shown, f"{value:.6g}" if isinstance(value, float) else str(value)))
        if self.reason:
            out.append(("reason", self.reason))
        if self.cached:
            out.append(("cached", "true"))
        return tuple(out)


@dataclass(frozen=True)
class TestRecord:
    """One robustness check made by one test: what JUnit and the terminal summary need.

    ``name`` is the testcase stem (``test_digits[linf-0.05]``), ``nodeid`` the full pytest id (plus a
    suffix when a test makes several checks), ``classname`` the dotted module/class path. ``passed`` is
    whether the criterion (``min_pass``, ``require``) held; ``enforced`` whether the test failed on it.
    """

    __test__ = False  # not a pytest test class, despite the name

    name: str
    nodeid: str
    classname: str
    threat: str
    escalate: str
    seed: int
    seconds: float
    min_pass: float
    require: str
    passed: bool
    summary: str
    samples: Tuple[SampleRecord, ...]
    properties: Tuple[Tuple[str, str], ...] = ()
    notes: Tuple[str, ...] = ()
    enforced: bool = True  # False for robustness.check(): recorded, but the test does not fail on it
    xfail: str = ""  # the reason, when the test was an expected failure (pytest.mark.xfail) and failed

    def counts(self) -> Dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for s in self.samples:
            out[s.verdict] = out.get(s.verdict, 0) + 1
        return out

    @property
    def result(self) -> str:
        """One of :data:`RESULT_WORDS`: what became of the test because of this check."""
        if self.passed:
            return "passed"
        if self.xfail:
            return "xfailed"
        return "FAILED" if self.enforced else "not met"

    def sample_fails(self, sample: SampleRecord) -> bool:
        """Whether ``sample`` fails the criterion's ``require`` (misclassified always does)."""
        if self.require == "certified":
            return sample.verdict != "certified"
        return sample.verdict in ("falsified", "misclassified")

    def excuse(self) -> str:
        """Why the failing samples of this check do not fail CI, or "" when they do: the check met its
        allowance (``min_pass``), the test was an expected failure, or the check was not enforced.

        Every reader that turns a failure element into a red check (GitHub's JUnit actions, GitLab) must
        agree with pytest, which passed such a test; so these samples are reported as skipped with this
        text first.
        """
        if self.passed:
            return f"tolerated by min_pass={self.min_pass:g}"
        if self.xfail:
            return f"xfail ({self.xfail})"
        if not self.enforced:
            return "not enforced (robustness.check records; robustness.require enforces)"
        return ""

    def to_dict(self) -> Dict[str, Any]:
        """Plain data (str/float/int/None/lists) that execnet and json can carry."""
        data = asdict(self)
        data["samples"] = [asdict(s) for s in self.samples]
        data["properties"] = [list(p) for p in self.properties]
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TestRecord":
        values = dict(data)
        for name in ("name", "nodeid", "classname", "threat", "escalate", "require", "summary", "xfail"):
            if not isinstance(values.get(name, ""), str):
                raise TypeError(f"test field {name}={values[name]!r} must be a string")
        for name in ("passed", "enforced"):
            if not isinstance(values.get(name, True), bool):
                raise TypeError(f"test field {name}={values[name]!r} must be true or false")
        for name in ("seed", "seconds", "min_pass"):
            value = values.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"test field {name}={value!r} must be a number")
        values["samples"] = tuple(_sample_from_dict(s) for s in data["samples"])
        values["properties"] = tuple((str(k), str(v)) for k, v in data.get("properties", ()))
        values["notes"] = tuple(data.get("notes", ()))
        return cls(**values)


_INT_FIELDS = ("index", "label")
_FLOAT_FIELDS = ("seconds",)
_OPTIONAL = {"predicted": int, "distance": float, "figure": float}
_STR_FIELDS = ("verdict", "method", "message", "reason")


def _sample_from_dict(data: Any) -> SampleRecord:
    """A :class:`SampleRecord` from plain data, checked against the vocabulary: a verdict from
    :data:`VERDICTS`, integers where indices and classes go, numbers where times and margins go.
    Raises ``ValueError``/``TypeError`` naming the field (results files come from outside)."""
    if not isinstance(data, dict):
        raise TypeError(f"a sample record must be a mapping, got {type(data).__name__}")
    unknown = set(data) - set(SampleRecord.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown sample field(s) {sorted(unknown)}")

    def number(name: str, value: Any, kind: type) -> Any:
        ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise TypeError(f"sample field {name}={value!r} must be {'an integer' if kind is int else 'a number'}")
        return kind(value)

    values: Dict[str, Any] = {}
    for name in _INT_FIELDS:
        values[name] = number(name, data.get(name), int)
    for name in _FLOAT_FIELDS:
        values[name] = number(name, data.get(name), float)
    for name, kind in _OPTIONAL.items():
        value = data.get(name)
        values[name] = None if value is None else number(name, value, kind)
    for name in _STR_FIELDS:
        value = data.get(name, "")
        if not isinstance(value, str):
            raise TypeError(f"sample field {name}={value!r} must be a string")
        values[name] = value
    if values["verdict"] not in VERDICTS:
        raise ValueError(f"sample verdict={values['verdict']!r} must be one of {list(VERDICTS)}")
    return SampleRecord(**values)


def totals_text(records: Sequence[TestRecord]) -> str:
    """``3 passed, 3 FAILED, 1 not met``: the checks per result word (the terminal's and the HTML's
    total), in :data:`RESULT_WORDS` order, leaving out the words with no check."""
    counts = {w: 0 for w in RESULT_WORDS}
    for r in records:
        counts[r.result] += 1
    return ", ".join(f"{n} {w}" for w, n in counts.items() if n) or "no checks"


def _finite(value: Optional[float]) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def record_from_report(name: str, report: "Report", *, nodeid: Optional[str] = None, classname: str = "",
                       min_pass: float = 1.0, require: str = "not_falsified",
                       properties: Sequence[Tuple[str, str]] = (), notes: Sequence[str] = (),
                       enforced: bool = True) -> TestRecord:
    """Copy ``report`` into a :class:`TestRecord` judged by ``min_pass``/``require``."""
    samples = tuple(
        SampleRecord(index=int(s.index), verdict=str(s.verdict), method=str(s.method), label=int(s.label),
                     seconds=float(s.seconds), message=s.message(report.ball),
                     predicted=None if s.predicted is None else int(s.predicted),
                     distance=_finite(s.distance), figure=_finite(s.figure), reason=str(s.reason or ""),
                     cached=bool(s.cached))
        for s in report.samples
    )
    return TestRecord(
        name=name, nodeid=nodeid or name, classname=classname, threat=report.ball.describe(),
        escalate=str(report.escalate), seed=int(report.seed), seconds=float(report.seconds),
        min_pass=float(min_pass), require=str(require),
        passed=bool(report.passed(min_pass=min_pass, require=require)),  # type: ignore[arg-type]
        summary=report.summary(min_pass=min_pass, require=require),  # type: ignore[arg-type]
        samples=samples, properties=tuple((str(k), str(v)) for k, v in properties), notes=tuple(notes),
        enforced=bool(enforced),
    )
