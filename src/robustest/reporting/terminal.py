"""The terminal summary: one row per robustness check, printed at the end of a pytest run.

    test                                  certified  falsified  unknown  miscls  time  result
    tests/test_digits.py::test_mlp[0.05]          0          3       44       3  1.9s  FAILED
    total                                         0          3       44       3  1.9s  1 FAILED

    >>> from robustest.reporting.terminal import summary_lines
    >>> summary_lines([])
    []
"""

from __future__ import annotations

from typing import List, Sequence

from . import VERDICTS, TestRecord, totals_text

__all__ = ["summary_lines"]

_HEAD = ("certified", "falsified", "unknown", "miscls")


def summary_lines(records: Sequence[TestRecord], *, width: int = 120) -> List[str]:
    """The table as lines (empty when no test made a robustness check).

    ``result`` is one of :data:`~robustest.reporting.RESULT_WORDS` (the words the HTML report uses too):
    "passed"/"FAILED" for enforced criteria (marker, ``robustness.require``), "xfailed" for an expected
    failure, "not met" for a ``robustness.check`` whose criterion failed without failing its test; the
    total counts the checks per word (``3 passed, 1 FAILED``). Names longer than the
    width allows are shortened from the left (the end of a node id is the informative part).
    """
    if not records:
        return []
    rows = []
    for r in records:
        c = r.counts()
        rows.append((r.nodeid, *(str(c[v]) for v in VERDICTS), f"{r.seconds:.1f}s", r.result))
    totals = {v: sum(r.counts()[v] for r in records) for v in VERDICTS}
    rows.append(("total", *(str(totals[v]) for v in VERDICTS), f"{sum(r.seconds for r in records):.1f}s",
                 totals_text(records)))
    numeric = [max(len(h), *(len(row[i + 1]) for row in rows)) for i, h in enumerate(_HEAD + ("time",))]
    fixed = sum(w + 2 for w in numeric) + 2 + max(len("result"), *(len(row[-1]) for row in rows))
    name_w = max(len("test"), min(max(len(row[0]) for row in rows), max(40, width - fixed)))

    def fmt(row: Sequence[str]) -> str:
        name = row[0] if len(row[0]) <= name_w else "..." + row[0][-(name_w - 3):]
        cells = "".join(f"  {cell:>{w}}" for cell, w in zip(row[1:-1], numeric))
        return f"{name:<{name_w}}{cells}  {row[-1]}"

    return [fmt(("test", *_HEAD, "time", "result"))] + [fmt(row) for row in rows]
