"""Scale out and re-run for free: sample shards, CI slices, the verdict cache and the regression baseline.

- ``--robust-shards=N|auto`` (or ``@robust(..., shards=N)``, ``shards =`` in the config) runs each
  ``@robust`` test as N items, each checking an interleaved slice of the samples (item K of N takes
  samples K-1, K-1+N, K-1+2N, ...: samples that are slow to decide, which cluster in a data set sorted
  by class or with appended variants, are spread evenly), so that pytest-xdist spreads one test over its
  workers ("auto": one item per worker). Each sample's random stream derives
  from the test's seed and the sample's position (:mod:`robustest.streams`), so the verdicts are those of
  a serial run whatever N is. The controller merges the items' records into one record judged on all
  the samples (one set of per-sample testcases, one summary row); the last item of the test to finish
  carries the test's verdict (the other items pass unless they error).
- ``--robust-shard=K/N`` (a CI matrix) runs only the K-th of N slices of every ``@robust`` test. A job
  fails a test when its slice alone already has more failing samples than ``min_pass`` allows over all
  samples, or on a baseline regression; ``robustest report --merge`` judges the criterion over all slices
  from the jobs' ``--robust-json`` files.
- ``--robust-cache=off|read|write|readwrite`` (``cache =`` in the config): the verdict cache under
  ``.robustest_cache/`` in the rootdir (:mod:`robustest.cache`).
- ``--robust-baseline=FILE`` compares every sample with a stored run; ``--robust-save-baseline`` writes
  this run to FILE instead (:mod:`robustest.reporting.baseline`).

Tests with ``min_radius`` are not sharded.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from ..cache import VerdictCache
    from ..reporting import TestRecord
    from ..results import Report
    from ..settings import Settings

_SHARD = pytest.StashKey["Shard"]()
_REPORT_KEY = "robustest_shard"


@dataclass(frozen=True)
class Shard:
    """Slice ``k`` of ``n`` of the samples of test ``nodeid``; ``items``: one of n pytest items (xdist),
    else one CI job's slice."""

    k: int
    n: int
    nodeid: str
    name: str
    items: bool

    def rows(self, total: int) -> range:
        """The slice's positions among ``total`` samples: every n-th from k-1 (sizes differ by at most one).

            >>> list(Shard(2, 3, "t", "t", items=True).rows(8))
            [1, 4, 7]
        """
        return range(self.k - 1, total, self.n)

    def properties(self) -> Tuple[Tuple[str, str], ...]:
        from ..reporting.merge import shard_properties

        return shard_properties(self.k, self.n, nodeid=self.nodeid, name=self.name)


def add_options(group: Any) -> None:
    """The options of this module (called from the plugin's pytest_addoption)."""
    from .._options import help_for

    group.addoption("--robust-cache", choices=("off", "read", "write", "readwrite"),
                    help=help_for("cache") + " (default: from the config, else readwrite)")
    group.addoption("--robust-shards", metavar="N|auto",
                    help="run every @robust test as N items, each a slice of its samples, for pytest-xdist "
                         "('auto': one per worker)")
    group.addoption("--robust-shard", metavar="K/N",
                    help="check only the K-th of N slices of every @robust test's samples (a CI matrix; "
                         "merge the jobs' --robust-json files with robustest report --merge)")
    group.addoption("--robust-json", metavar="PATH",
                    help="write the results (records, counterexample images) as JSON for robustest report")
    group.addoption("--robust-baseline", metavar="FILE",
                    help="fail a test whose samples got worse than in FILE (certified -> falsified, or a "
                         "certified margin dropping by more than the tolerance)")
    group.addoption("--robust-save-baseline", action="store_true",
                    help="write this run's verdicts to the --robust-baseline FILE instead of comparing")
    group.addoption("--robust-baseline-tolerance", type=float, metavar="FRACTION",
                    help=help_for("baseline_tolerance") + " (default 0.1)")


def _shards_value(text: Optional[str]) -> Any:
    if text is None or text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        return text  # refused, with the table's message, by the settings


def overrides(opt: Any) -> Dict[str, Any]:
    """The settings this module's options override (None: not given)."""
    return {"cache": opt.robust_cache, "shards": _shards_value(opt.robust_shards), "json": opt.robust_json,
            "baseline": opt.robust_baseline, "baseline_tolerance": opt.robust_baseline_tolerance}


def parse_slice(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``--robust-shard=K/N`` as (K, N); a usage error naming the fix for anything else."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        from .marker import usage_error

        raise usage_error(f"robustest: --robust-shard={text!r} is not valid: expected K/N with 1 <= K <= N. "
                          "Fix: pass --robust-shard=1/4 in the first of four jobs")
    return int(m.group(1)), int(m.group(2))


class ScalePlugin:
    """The hooks of this module, registered by the plugin's pytest_configure with the run's settings."""

    def __init__(self, config: pytest.Config, settings: "Settings") -> None:
        from ..cache import CACHE_MODES, DEFAULT_DIR, VerdictCache

        self.config = config
        self.settings = settings
        self.slice = parse_slice(config.option.robust_shard)
        self.save = bool(config.option.robust_save_baseline)
        if self.save and not settings.baseline:
            from .marker import usage_error

            raise usage_error("robustest: --robust-save-baseline needs the file to write. "
                              "Fix: pass --robust-baseline=FILE with it")
        self.baseline: Optional[Dict[str, Any]] = None
        if settings.baseline and not self.save:
            from ..errors import RobustestError
            from ..reporting.baseline import load_baseline

            try:
                self.baseline = load_baseline(settings.baseline)
            except RobustestError as exc:
                from .marker import usage_error

                raise usage_error(f"robustest: {exc}") from None
        self.cache: Optional["VerdictCache"] = None
        if settings.cache in CACHE_MODES and settings.cache != "off":
            self.cache = VerdictCache(config.rootpath / DEFAULT_DIR, mode=settings.cache)
        elif settings.cache not in CACHE_MODES:  # a directory of its own
            self.cache = VerdictCache(config.rootpath / settings.cache)
        self.pending: Dict[str, List[Any]] = {}

    # -------------------------------------------------------------------------------- collection
    def _count(self, item: pytest.Item) -> int:
        from .marker import marker_args

        try:
            args = marker_args(item)
        except pytest.UsageError:
            return 1  # the marker's error is reported when the test runs
        if args is None or "min_radius" in args:
            return 1
        value = args.get("shards", self.settings.shards)
        if value == "auto":
            workerinput = getattr(self.config, "workerinput", None)
            if workerinput is not None:
                return max(1, int(workerinput.get("workercount", 1)))
            n = getattr(self.config.option, "numprocesses", None)
            return n if isinstance(n, int) and n > 0 else 1
        return value if isinstance(value, int) and value >= 1 else 1

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: List[pytest.Item]) -> None:
        out: List[pytest.Item] = []
        for item in items:
            if self.slice is not None and _is_robust(item):
                k, total = self.slice
                item.stash[_SHARD] = Shard(k, total, item.nodeid, item.name, items=False)
                out.append(item)
            elif isinstance(item, pytest.Function) and (n := self._count(item)) > 1:
                out += [_copy(item, Shard(k, n, item.nodeid, item.name, items=True)) for k in range(1, n + 1)]
            else:
                out.append(item)
        items[:] = out

    # ----------------------------------------------------------------- the controller's merge
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        shard = item.stash.get(_SHARD, None)
        if shard is None or not shard.items or call.when != "call":
            return
        from .hooks import _ITEM_RECORDS

        records = item.stash.get(_ITEM_RECORDS, [])
        setattr(outcome.get_result(), _REPORT_KEY,
                {"test": shard.nodeid, "n": shard.n, "records": [r.to_dict() for r in records]})

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        data = getattr(report, _REPORT_KEY, None)
        if data is not None and report.when == "call" and getattr(self.config, "workerinput", None) is None:
            self._arrived(report, data)
        yield

    def _arrived(self, report: pytest.TestReport, data: Dict[str, Any]) -> None:
        """Keep a shard item's records; when the test's last shard arrives, judge the merged record on it."""
        from ..reporting import TestRecord
        from ..reporting.merge import failure_lines, merge_group

        got = self.pending.setdefault(data["test"], [])
        got += [TestRecord.from_dict(d) for d in data["records"]]
        got.append(None)  # one marker per arrived item (an item that errored has no records)
        if got.count(None) < int(data["n"]):
            return
        records = [r for r in got if r is not None]
        del self.pending[data["test"]]
        try:
            merged = self.with_regressions(merge_group(records))
        except (ValueError, IndexError):
            return  # a shard errored: its own report says why
        if not merged.passed and report.outcome == "passed":
            report.outcome = "failed"
            report.longrepr = failure_lines(merged)

    # --------------------------------------------------------------------------- judging
    def with_regressions(self, record: "TestRecord") -> "TestRecord":
        """``record`` failed, with the lines, when the baseline has samples that got worse."""
        if self.baseline is None:
            return record
        from ..reporting.baseline import regressions

        lines = regressions(record, self.baseline, tolerance=self.settings.baseline_tolerance)
        if not lines:
            return record
        head = f"regression against the baseline {self.settings.baseline}, whatever min_pass says:"
        summary = record.summary.replace("robustness passed", "robustness FAILED", 1)
        summary += f"; {len(lines)} samples regressed against the baseline"
        return dataclasses.replace(record, passed=False, summary=summary,
                                   notes=record.notes + (head, *lines))

    def judge(self, item: pytest.Item, record: "TestRecord",
              total: int) -> Tuple["TestRecord", Optional[str]]:
        """(the record to keep, the failure text or None) for a marker test's check."""
        from ..reporting.merge import failure_lines
        from ..results import verdict_passes

        shard = item.stash.get(_SHARD, None)
        if shard is not None and shard.items:
            return record, None  # judged on all samples when the last shard arrives
        judged = self.with_regressions(record)
        regressed = judged is not record
        if shard is None:
            return judged, None if judged.passed else failure_lines(judged, regression_lines(judged))
        failing = sum(not verdict_passes(s.verdict, record.require) for s in record.samples)
        allowed = int((1.0 - record.min_pass) * total + 1e-9)
        if failing > allowed:
            line = (f"  slice {shard.k}/{shard.n} alone has {failing} failing samples; min_pass="
                    f"{record.min_pass:g} allows {allowed} of all {total}")
            judged = dataclasses.replace(judged, passed=False, notes=judged.notes + (line,))
            return judged, failure_lines(judged, [line] + regression_lines(judged))
        judged = dataclasses.replace(judged, passed=not regressed)
        return judged, failure_lines(judged, regression_lines(judged)) if regressed else None

    # ---------------------------------------------------------------------------- the end
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.cache is not None:
            self.cache.close()  # reopened on demand; this process checks nothing more
        if getattr(self.config, "workerinput", None) is not None:
            return
        from ..reporting.merge import merge_records, merge_tests, shard_of
        from .hooks import _STATE

        state = self.config.stash[_STATE]
        bases = {mark[2] for r in state.records if (mark := shard_of(r)) is not None}
        state.records = [self.with_regressions(r) if shard_of(r) is None and r.nodeid in bases else r
                         for r in merge_records(state.records, strict=False)]
        final = {r.nodeid: r for r in state.records}
        state.html_tests = [dataclasses.replace(t, record=final.get(t.record.nodeid, t.record))
                            for t in merge_tests(state.html_tests, strict=False)]
        if self.save and self.settings.baseline:
            from ..reporting.baseline import save_baseline

            save_baseline(self.settings.baseline, state.records)
        if self.settings.json:
            from ..reporting.formats import write_reports

            write_reports({"json": self.settings.json}, sorted(state.html_tests, key=lambda t: t.record.nodeid))

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        from .hooks import _STATE

        state = config.stash.get(_STATE, None)
        if state is None or not state.records or self.cache is None:
            return
        n = sum(len(r.samples) for r in state.records)
        reused = sum(s.cached for r in state.records for s in r.samples)
        terminalreporter.write_line(f"robustest cache: {reused} of {n} sample verdicts reused from "
                                    f"{self.cache.directory} ({self.cache.mode})")
        for what, path in (("results JSON", self.settings.json), ("baseline written", self.settings.baseline
                                                                   if self.save else None)):
            if path:
                terminalreporter.write_line(f"{what}: {path}")


def regression_lines(record: "TestRecord") -> List[str]:
    """The baseline-regression lines that :meth:`ScalePlugin.with_regressions` added to ``record``'s notes."""
    notes = list(record.notes)
    for i, note in enumerate(notes):
        if note.startswith("regression against the baseline"):
            return notes[i:]
    return []


def _is_robust(item: pytest.Item) -> bool:
    from .marker import marker_args

    try:
        args = marker_args(item)
    except pytest.UsageError:
        return False
    return args is not None and "min_radius" not in args


def _copy(item: pytest.Item, shard: Shard) -> pytest.Item:
    """Item ``item`` again, as shard ``shard.k`` of ``shard.n`` (same function, fixtures and marks)."""
    assert isinstance(item, pytest.Function)
    tag = f"shard{shard.k}of{shard.n}"
    name = f"{item.name[:-1]}-{tag}]" if item.name.endswith("]") else f"{item.name}[{tag}]"
    new = pytest.Function.from_parent(item.parent, name=name, callspec=getattr(item, "callspec", None),
                                      callobj=item.obj, fixtureinfo=item._fixtureinfo,
                                      keywords=item.keywords, originalname=item.originalname)
    new.stash[_SHARD] = shard
    return new


def shard_of_item(item: pytest.Item) -> Optional[Shard]:
    return item.stash.get(_SHARD, None)


def take(shard: Shard, inputs: Any, labels: Any) -> Tuple[Any, Any, range]:
    """The shard's slice of the samples and their positions in the whole set."""
    rows = shard.rows(len(labels))
    pick = slice(rows.start, None, rows.step)
    return inputs[pick], labels[pick], rows


def globalize(report: "Report", rows: range) -> "Report":
    """``report`` (of the samples at ``rows``) with its samples numbered by their positions in the set."""
    if rows == range(len(report.samples)):
        return report
    return dataclasses.replace(report, samples=tuple(dataclasses.replace(s, index=rows[s.index])
                                                     for s in report.samples))
