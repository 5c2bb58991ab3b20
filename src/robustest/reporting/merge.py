"""Shards of one test, merged: the records of the items (or CI jobs) that each checked a slice of a
test's samples become one record, judged on all the samples.

A shard's record carries three properties: ``robust_shard`` ("K/N"), ``robust_test`` (the test's own
node id) and ``robust_name``. :func:`merge_records` groups records by test, checks that every slice is
there exactly once, and judges ``min_pass``/``require`` over the union of the samples (whose indices are
already their positions in the whole set).

    >>> from robustest.reporting import SampleRecord, TestRecord
    >>> def shard(k, verdicts):
    ...     samples = tuple(SampleRecord(index=i, verdict=v, method="m", label=0, seconds=0.1, message=v)
    ...                     for i, v in verdicts)
    ...     return TestRecord(name="t[shard]", nodeid="t[shard]", classname="", threat="eps=0.1 linf",
    ...                       escalate="attack", seed=1, seconds=0.2, min_pass=0.5, require="not_falsified",
    ...                       passed=True, summary="", samples=samples,
    ...                       properties=shard_properties(k, 2, nodeid="test_x", name="test_x"))
    >>> (merged,) = merge_records([shard(2, [(2, "falsified"), (3, "falsified")]),
    ...                            shard(1, [(0, "falsified"), (1, "certified")])])
    >>> merged.nodeid, [s.index for s in merged.samples], merged.passed
    ('test_x', [0, 1, 2, 3], False)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import invalid_argument
from ..results import pass_fraction, summary_text
from . import TestRecord

__all__ = ["SHARD", "TEST", "NAME", "shard_properties", "shard_of", "merge_records", "merge_group",
           "merge_tests", "failure_lines", "results_document", "FORMAT"]

SHARD, TEST, NAME = "robust_shard", "robust_test", "robust_name"
#: the results file of ``robustest check --json`` and ``pytest --robust-json`` (read by ``robustest report``)
FORMAT = "robustest-results/1"
_SHOWN = 5


def shard_properties(k: int, n: int, *, nodeid: str, name: str) -> Tuple[Tuple[str, str], ...]:
    """The properties that mark a record as shard ``k`` of ``n`` of test ``nodeid``."""
    return ((SHARD, f"{k}/{n}"), (TEST, nodeid), (NAME, name))


def shard_of(record: TestRecord) -> Optional[Tuple[int, int, str, str]]:
    """(k, n, test node id, test name) of a shard's record; None for a whole test's."""
    props = dict(record.properties)
    if SHARD not in props:
        return None
    k, n = (int(v) for v in props[SHARD].split("/"))
    return k, n, props.get(TEST, record.nodeid), props.get(NAME, record.name)


def merge_group(records: Sequence[TestRecord]) -> TestRecord:
    """One record from the shard records of one test; every shard 1..N must be there exactly once."""
    marks = [shard_of(r) for r in records]
    if any(m is None for m in marks):
        raise ValueError("merge_group takes shard records only")  # a programming error
    n = marks[0][1]  # type: ignore[index]
    nodeid, name = marks[0][2], marks[0][3]  # type: ignore[index]
    seen = sorted(m[0] for m in marks)  # type: ignore[index]
    if seen != list(range(1, n + 1)) or any(m[1] != n for m in marks):  # type: ignore[index]
        missing = sorted(set(range(1, n + 1)) - set(seen))
        twice = sorted({k for k in seen if seen.count(k) > 1})
        raise invalid_argument(f"shards of {nodeid}", ", ".join(f"{k}/{n}" for k in seen),
                               f"each of the {n} shards exactly once (missing: {missing or 'none'}, "
                               f"repeated: {twice or 'none'})",
                               "merge the results of every job of the matrix, each once")
    first = records[0]
    threats = {r.threat for r in records}
    if len(threats) > 1:
        raise invalid_argument(f"shards of {nodeid}", sorted(threats), "one threat model for all shards",
                               "merge results of the same run only")
    samples = tuple(sorted((s for r in records for s in r.samples), key=lambda s: s.index))
    verdicts = [s.verdict for s in samples]
    passed = pass_fraction(verdicts, first.require) >= first.min_pass - 1e-12
    summary = summary_text(verdicts, threat=first.threat, min_pass=first.min_pass, require=first.require,
                           escalate=first.escalate, cached=sum(s.cached for s in samples), extra=f"; merged from {n} shards")
    properties = tuple(p for p in first.properties if p[0] not in (SHARD, TEST, NAME))
    notes = tuple(dict.fromkeys(note for r in records for note in r.notes))
    return dataclasses.replace(first, name=name, nodeid=nodeid, seconds=sum(r.seconds for r in records),
                               passed=passed, summary=summary, samples=samples, properties=properties,
                               notes=notes, enforced=all(r.enforced for r in records))


def _complete(group: Sequence[TestRecord]) -> bool:
    marks = [shard_of(r) for r in group]
    n = marks[0][1]  # type: ignore[index]
    return n > 1 and sorted(m[0] for m in marks) == list(range(1, n + 1))  # type: ignore[index]


def merge_records(records: Sequence[TestRecord], *, strict: bool = True) -> List[TestRecord]:
    """``records`` with the shards of each test merged into one record (whole tests pass through).

    ``strict``: a test with a missing or repeated shard is an error; otherwise its shard records are left
    as they are (a CI job's own slice, or an xdist item that errored). A whole (unsharded) test that
    several jobs ran is kept once."""
    groups: Dict[str, List[TestRecord]] = {}
    order: List[Tuple[Optional[TestRecord], str]] = []  # keep the order of first appearance
    whole = set()
    for r in records:
        mark = shard_of(r)
        if mark is None:
            if r.nodeid not in whole:  # a whole test that every job ran (e.g. a robustness fixture check)
                order.append((r, ""))
                whole.add(r.nodeid)
            continue
        if mark[2] not in groups:
            groups[mark[2]] = []
            order.append((None, mark[2]))
        groups[mark[2]].append(r)
    out: List[TestRecord] = []
    for record, key in order:
        if record is not None:
            out.append(record)
        elif strict or _complete(groups[key]):
            out.append(merge_group(groups[key]))
        else:
            out += groups[key]
    return out


def merge_tests(tests: Sequence[Any], *, strict: bool = True) -> List[Any]:
    """Like :func:`merge_records` for :class:`~robustest.reporting.html.HtmlTest` s (records plus
    counterexample images): a merged test has the images of all its slices."""
    records = merge_records([t.record for t in tests], strict=strict)
    merged = {r.nodeid: r for r in records if shard_of(r) is None}
    out: List[Any] = []
    joined: Dict[str, Any] = {}
    for t in tests:
        mark = shard_of(t.record)
        if mark is None or mark[2] not in merged:
            out.append(t)
        elif mark[2] not in joined:
            joined[mark[2]] = dataclasses.replace(t, record=merged[mark[2]], images=dict(t.images))
            out.append(joined[mark[2]])
        else:
            joined[mark[2]].images.update(t.images)
    return out


def results_document(tests: Sequence[Any]) -> Dict[str, Any]:
    """The JSON document for a list of :class:`~robustest.reporting.html.HtmlTest`."""
    from .. import __version__

    return {"format": FORMAT, "robustest": __version__, "tests": [t.to_dict() for t in tests]}


def failure_lines(record: TestRecord, extra: Sequence[str] = ()) -> str:
    """The failure text of a (merged) record: its summary and the first failing samples."""
    from ..results import verdict_passes

    lines = [record.summary]
    failing = [s for s in record.samples if not verdict_passes(s.verdict, record.require)]
    lines += [f"  sample {s.index}: {s.message}" for s in failing[:_SHOWN]]
    if len(failing) > _SHOWN:
        lines.append(f"  ... and {len(failing) - _SHOWN} more (all of them: --robust-junit=PATH)")
    return "\n".join(lines + list(extra))
