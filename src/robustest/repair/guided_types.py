"""The test a guided repair must make pass and its frozen result.

:class:`RepairTest` is the failing robustness test: its samples, the :func:`robustest.check` options it
runs with and its pass criterion. :class:`GuidedRepairResult` is what :func:`robustest.repair` returns
when it is given a test. The rounds' knobs are :class:`~robustest.repair.guided_settings.GuidedSettings`.

    >>> import torch
    >>> test = RepairTest(torch.rand(4, 2), torch.zeros(4, dtype=torch.long), check={"eps": 0.1})
    >>> test.check["norm"], test.min_pass
    ('linf', 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from .._options import CHECK_OPTIONS, problem
from ..errors import invalid_argument
from ..results import REQUIRE_MODES, Report
from ..validate import as_inputs, as_labels
from .guided_settings import NOT_PASSING


@dataclass(frozen=True)
class RepairTest:
    """A robustness test: ``robustest.check(model, inputs, labels, **check)`` must pass with
    ``min_pass`` and ``require``. ``check`` takes the keyword options of :func:`robustest.check`
    (``eps`` is required; ``norm`` defaults to linf)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    check: Mapping[str, Any]
    min_pass: float = 1.0
    require: str = "not_falsified"

    def __post_init__(self) -> None:
        options = dict(self.check)
        if "eps" not in options:
            raise invalid_argument("test.check", sorted(options), "the check's options with an 'eps'",
                                   "pass check={'eps': 0.05, ...} (the options the test runs robustest.check with)")
        for name, value in options.items():
            if name not in CHECK_OPTIONS:
                raise invalid_argument("test.check", name, f"options of robustest.check: {', '.join(CHECK_OPTIONS)}",
                                       f"remove {name!r} from the test's check options")
            found = problem(name, value)
            if found is not None:
                raise invalid_argument(f"test.check[{name!r}]", value, *found)
        options.setdefault("norm", "linf")
        object.__setattr__(self, "check", options)
        x = as_inputs(self.inputs, options.get("domain", (0.0, 1.0)))
        object.__setattr__(self, "inputs", x)
        object.__setattr__(self, "labels", as_labels(self.labels, x.shape[0], x.device))
        found = problem("min_pass", self.min_pass)
        if found is not None:
            raise invalid_argument("test.min_pass", self.min_pass, *found)
        if self.require not in REQUIRE_MODES:
            raise invalid_argument("test.require", self.require, f"one of {REQUIRE_MODES}",
                                   "pass require='not_falsified'")

    @property
    def eps(self) -> float:
        return float(self.check["eps"])

    def run(self, model: Any, *, attacks_only: bool = False) -> Report:
        """The test's check on ``model`` (``attacks_only``: the ladder's attack rung alone)."""
        from ..api import check

        options = dict(self.check)
        if attacks_only:
            options["escalate"] = "attack"
        return check(model, self.inputs, self.labels, **options)

    def passes(self, report: Report) -> bool:
        return report.passed(min_pass=self.min_pass, require=self.require)  # type: ignore[arg-type]

    def failing(self, report: Report) -> int:
        return len(report.failures(self.require))  # type: ignore[arg-type]


@dataclass(frozen=True)
class RoundRecord:
    """One round: counterexamples in the pool, failing test samples after it, held-out clean accuracy,
    whether it was kept (a round that drops held-out accuracy beyond the tolerance is not)."""

    round: int
    pool: int
    failing: int
    holdout_clean: Optional[float]
    kept: bool
    seconds: float


@dataclass(frozen=True)
class HoldoutFigures:
    """Clean accuracy (on ``samples``) and robust accuracy (same attacks and eps as the test, on the first
    ``robust_samples``) on data the repair did not see."""

    samples: int
    clean: float
    robust: float
    robust_samples: int = 0


@dataclass(frozen=True)
class GuidedRepairResult:
    """The outcome of a guided repair (``robustest.repair(model, test=...)``).

    ``model`` is the best model found (fewest failing test samples among the kept rounds; the input
    model is never modified); ``status`` is "fixed", "fits the test only" or "not passing";
    ``accepted`` says whether it may be saved as a fix. ``before``/``after`` are the test's full-ladder
    reports; ``holdout_before``/``holdout_after`` the held-out figures (None when there was no data to
    hold out); ``lost_certificates`` counts samples certified before and not after.
    """

    model: torch.nn.Module
    method: str
    status: str
    accepted: bool
    before: Report
    after: Report
    rounds: Tuple[RoundRecord, ...]
    stop_reason: str
    distance: float
    seconds: float
    holdout_before: Optional[HoldoutFigures]
    holdout_after: Optional[HoldoutFigures]
    lost_certificates: int
    remaining: Tuple[int, ...]
    notes: Tuple[str, ...] = ()
    details: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return self.status != NOT_PASSING

    def lines(self) -> List[str]:
        """The summary for a terminal: status, verdict counts, held-out figures, rounds, |w-w0|, time."""
        b, a = self.before.counts(), self.after.counts()
        out = [f"{self.method} repair: {self.status} ({self.stop_reason}); {len(self.rounds)} rounds, "
               f"|w-w0|={self.distance:.3g}, {self.seconds:.1f}s"]
        out.append("  verdicts before -> after: " + ", ".join(f"{v} {b[v]} -> {a[v]}" for v in b))
        hb, ha = self.holdout_before, self.holdout_after
        if hb is not None and ha is not None:
            out.append(f"  held-out ({hb.samples} samples): clean {hb.clean:.1%} -> {ha.clean:.1%}, "
                       f"robust (first {hb.robust_samples}) {hb.robust:.1%} -> {ha.robust:.1%}")
        if self.remaining:
            shown = ", ".join(map(str, self.remaining[:10])) + (" ..." if len(self.remaining) > 10 else "")
            out.append(f"  still failing: samples {shown}")
        if self.lost_certificates:
            out.append(f"  {self.lost_certificates} samples certified before are no longer certified")
        out.extend(f"  note: {n}" for n in self.notes)
        return out

    def summary(self) -> str:
        return "\n".join(self.lines())


__all__ = ["RepairTest", "GuidedRepairResult", "RoundRecord", "HoldoutFigures"]
