"""A regression baseline: each sample's verdict in a stored run, and the samples that got worse since.

``--robust-save-baseline`` writes the run's verdicts to the ``--robust-baseline`` file; a later run with
``--robust-baseline=FILE`` compares each sample of each test with it. A sample that was certified and is
now falsified, or whose certified margin (the number behind a certified verdict, ``figure``) dropped by
more than ``tolerance`` of its stored value, fails its test with a line naming the sample and both
verdicts, whatever ``min_pass`` says. Samples that got better, and tests or threat models the baseline
does not have, are not compared.

    >>> from robustest.reporting import SampleRecord, TestRecord
    >>> def rec(verdict, figure):
    ...     s = SampleRecord(index=3, verdict=verdict, method="crown", label=1, seconds=0.1, message=verdict,
    ...                      figure=figure)
    ...     return TestRecord(name="t", nodeid="t", classname="", threat="eps=0.1 linf", escalate="crown",
    ...                       seed=0, seconds=0.1, min_pass=0.0, require="not_falsified", passed=True,
    ...                       summary="", samples=(s,))
    >>> base = baseline_document([rec("certified", 0.8)])
    >>> regressions(rec("certified", 0.75), base, tolerance=0.1)
    []
    >>> regressions(rec("falsified", -0.2), base, tolerance=0.1)
    ['  sample 3: certified (margin >= 0.8) in the baseline, now falsified (margin -0.2) by crown']
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence

from ..errors import invalid_argument
from . import TestRecord

__all__ = ["FORMAT", "baseline_document", "save_baseline", "load_baseline", "read_document",
           "regressions"]

FORMAT = "robustest-baseline/1"


def baseline_document(records: Sequence[TestRecord]) -> Dict[str, Any]:
    """The baseline of a run: per test (node id) its threat model and each sample's verdict and figure."""
    from .. import __version__

    tests = {}
    for r in records:
        samples = {str(s.index): {"verdict": s.verdict, "figure": s.figure} for s in r.samples}
        tests[r.nodeid] = {"threat": r.threat, "samples": samples}
    return {"format": FORMAT, "robustest": __version__, "tests": tests}


def save_baseline(path: str, records: Sequence[TestRecord]) -> None:
    """Write the baseline of ``records`` to ``path`` (atomically)."""
    from ..atomic import atomic_write_text

    atomic_write_text(path, json.dumps(baseline_document(records), indent=1, sort_keys=True))


def read_document(path: str, *, argument: str, fmt: str, what: str, fix: str) -> Dict[str, Any]:
    """The JSON document at ``path`` with ``"format": fmt``; an :class:`~robustest.errors.InvalidArgument`
    naming ``argument`` for an unreadable file, bad JSON or another document (``fix`` says how to get one)."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise invalid_argument(argument, path, f"a readable file ({exc.strerror})", fix) from None
    except UnicodeDecodeError:  # a binary file (a model, an .npz) given by mistake
        raise invalid_argument(argument, path, "a UTF-8 JSON text file, not a binary one", fix) from None
    except json.JSONDecodeError as exc:
        raise invalid_argument(argument, path, f"JSON (line {exc.lineno}: {exc.msg})", fix) from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise invalid_argument(argument, path, f"{what} with format {fmt!r}", fix)
    return doc


def load_baseline(path: str) -> Dict[str, Any]:
    """A baseline file written by :func:`save_baseline`; a clear error for anything else."""
    doc = read_document(path, argument="--robust-baseline", fmt=FORMAT, what="a baseline document",
                        fix="write one first with --robust-save-baseline")
    if not isinstance(doc.get("tests"), dict):
        raise invalid_argument("--robust-baseline", path, "a 'tests' table",
                               "write it with --robust-save-baseline")
    return doc


def _verdict(verdict: str, figure: Any) -> str:
    if figure is None:
        return verdict
    return f"{verdict} (margin {'>= ' if verdict == 'certified' else ''}{figure:.3g})"


def regressions(record: TestRecord, baseline: Dict[str, Any], *, tolerance: float) -> List[str]:
    """One line per sample of ``record`` that got worse than in ``baseline`` (see the module doc)."""
    stored = baseline.get("tests", {}).get(record.nodeid)
    if not isinstance(stored, dict) or stored.get("threat") != record.threat:
        return []
    old_samples = stored.get("samples", {})
    lines = []
    for s in record.samples:
        old = old_samples.get(str(s.index))
        if not isinstance(old, dict) or old.get("verdict") != "certified":
            continue
        old_fig = old.get("figure")
        was = _verdict("certified", old_fig)
        if s.verdict == "falsified":
            lines.append(f"  sample {s.index}: {was} in the baseline, now {_verdict(s.verdict, s.figure)} "
                         f"by {s.method}")
        elif (s.verdict == "certified" and old_fig is not None and s.figure is not None
              and s.figure < old_fig - tolerance * abs(old_fig)):
            lines.append(f"  sample {s.index}: {was} in the baseline, now {_verdict(s.verdict, s.figure)}: "
                         f"the certified margin dropped by more than {tolerance:g} of its value")
    return lines
