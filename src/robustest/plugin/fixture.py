"""The ``robustness`` fixture: run checks inside a test body and have them recorded and reported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import pytest

from .hooks import _ITEM_RECORDS, _STATE, _failure_text, _health, _record, derive_seed, scale_plugin
from .marker import validate_marker_args

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Report
    from ..settings import Settings


class Robustness:
    """The ``robustness`` fixture: run checks inside a test body and have them reported.

    Options left out come from the run's settings; the seed derives from the run's seed, the test id and
    the call's position in the test, so reruns and xdist give the same verdicts.
    """

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        self._calls = 0

    @property
    def settings(self) -> "Settings":
        """The run's settings (after config file, profile and command line)."""
        return self._item.config.stash[_STATE].settings

    def check(self, model: Any, inputs: Any, labels: Any, *, eps: float, name: Optional[str] = None,
              min_pass: Optional[float] = None, require: Optional[str] = None, **kwargs: Any) -> "Report":
        """Run :func:`robustest.check`, record the report (JUnit, summary) and return it. Never fails.

        ``name`` labels the check in the reports (default: ``#2``, ``#3``... after the first);
        ``min_pass``/``require`` only decide how the reports show it.

            >>> report = robustness.check(model, x, y, eps=0.05, norm="l2")     # doctest: +SKIP
        """
        return self._run(model, inputs, labels, eps=eps, name=name, min_pass=min_pass, require=require,
                         enforced=False, **kwargs)

    def _run(self, model: Any, inputs: Any, labels: Any, *, eps: float, name: Optional[str],
             min_pass: Optional[float], require: Optional[str], enforced: bool, **kwargs: Any) -> "Report":
        import robustest

        given = {k: v for k, v in (("min_pass", min_pass), ("require", require)) if v is not None}
        validate_marker_args(given, where="robustness")
        s = self.settings
        self._calls += 1
        salt = self._item.nodeid if self._calls == 1 else f"{self._item.nodeid}#{self._calls}"
        options = {"escalate": s.escalate, "timeout": s.timeout, "seed": derive_seed(s.seed, salt),
                   "cache": scale_plugin(self._item).cache, **_health(s), **kwargs}
        from ..reporting.live import live_progress

        with live_progress(self._item.config):
            report = robustest.check(model, inputs, labels, eps=eps, **options)
        _record(self._item, report, min_pass=s.min_pass if min_pass is None else min_pass,
                require=s.require if require is None else require, label=name, enforced=enforced,
                inputs=inputs)
        return report

    def require(self, model: Any, inputs: Any, labels: Any, *, eps: float, min_pass: Optional[float] = None,
                require: Optional[str] = None, name: Optional[str] = None, **kwargs: Any) -> "Report":
        """Like :meth:`check`, then fail the test when fewer than ``min_pass`` of the samples pass.

            >>> robustness.require(model, x, y, eps=0.05, min_pass=0.9, require="certified")  # doctest: +SKIP
        """
        report = self._run(model, inputs, labels, eps=eps, name=name, min_pass=min_pass, require=require,
                           enforced=True, **kwargs)
        record = self._item.stash[_ITEM_RECORDS][-1]
        if not record.passed:
            pytest.fail(_failure_text(report, record, record.require, []), pytrace=False)
        return report


@pytest.fixture
def robustness(request: pytest.FixtureRequest) -> Robustness:
    """Run robustness checks inside a test: ``robustness.check(...)`` and ``robustness.require(...)``."""
    return Robustness(request.node)
