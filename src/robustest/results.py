"""The vocabulary: verdicts, rungs, pass criteria, report modes and the frozen result types.

A sample is ``certified`` (a sound bound proves no input of the ball changes the label), ``falsified``
(a counterexample was found and re-checked by a forward pass), ``unknown`` (the budget ran out or every
step was inconclusive) or ``misclassified`` (wrong on the clean input, so robustness is moot).

This module is the bottom layer: it imports nothing of robustest's and no torch (tensors appear only in
type annotations), so the plugin, the settings and the option table can use it at start-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Sequence, Tuple

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .spec import LpBall

Verdict = Literal["certified", "falsified", "unknown", "misclassified"]
VERDICTS: Tuple[str, ...] = ("certified", "falsified", "unknown", "misclassified")
Require = Literal["certified", "not_falsified"]
#: what passing means for a sample: not falsified (unknown passes) or certified
REQUIRE_MODES: Tuple[str, ...] = ("not_falsified", "certified")
#: how unknown samples appear in the per-sample JUnit file, and which samples it lists
UNKNOWN_MODES: Tuple[str, ...] = ("skipped", "failure", "pass")
INCLUDE_MODES: Tuple[str, ...] = ("all", "failures", "none")

#: The rungs of the ladder, cheapest first; ``escalate`` names the highest one to run. "attack" only
#: falsifies; the others are the provers of :mod:`robustest.provers` (whose registry test checks that its
#: order is this one). Named here, torch-free, so that the plugin can validate ``--robust-escalate`` and
#: write its help at start-up without importing the provers.
RUNGS: Tuple[str, ...] = ("attack", "ibp", "crown", "lp", "milp", "bab")
#: LP/MILP solver backends (:mod:`robustest.solvers`; its registry test checks the names)
SOLVERS: Tuple[str, ...] = ("highs", "gurobi")
#: the profiles of the default attack sequence (:data:`robustest.attacks.sequence.STRENGTHS`), default first
STRENGTH_NAMES: Tuple[str, ...] = ("standard", "fast", "thorough")
#: every spelling of a norm that robustest accepts (``spec.normalize_norm`` maps them to linf/l2/l1)
NORM_ALIASES: Dict[str, str] = {"inf": "linf", "linf": "linf", "l_inf": "linf", "Linf": "linf", "2": "l2",
                                "l2": "l2", "L2": "l2", "1": "l1", "l1": "l1", "L1": "l1"}
NORM_SPELLINGS: Tuple[str, ...] = tuple(NORM_ALIASES)


@dataclass(frozen=True)
class SampleResult:
    """The outcome for one input.

    ``figure`` is the number behind the verdict: the certified lower bound of the smallest margin
    (certified), or the adversarial margin (falsified, negative). ``distance`` is ``||x' - x||`` of the
    counterexample. ``predicted`` is the label the model gives the counterexample.
    """

    index: int
    verdict: Verdict
    method: str
    label: int
    seconds: float
    counterexample: Optional["torch.Tensor"] = None
    predicted: Optional[int] = None
    distance: Optional[float] = None
    figure: Optional[float] = None
    reason: str = ""
    #: whether the verdict was reused from the verdict cache (:mod:`robustest.cache`)
    cached: bool = False

    def passed(self, require: Require = "not_falsified") -> bool:
        """Whether this sample counts as passing under ``require``."""
        return verdict_passes(self.verdict, require)

    def message(self, ball: "LpBall") -> str:
        """One line that says it all, e.g. ``falsified: eps=0.05 linf |d|=0.049 label 3 -> 5 by apgd``."""
        head = f"{self.verdict}: {ball.describe()}"
        if self.verdict == "falsified":
            return (f"{head} |d|={self.distance:.3g} label {self.label} -> {self.predicted} by {self.method}")
        if self.verdict == "certified":
            fig = f": margin >= {self.figure:.3g}" if self.figure is not None else ""
            return f"{head} label {self.label} certified by {self.method}{fig}"
        if self.verdict == "misclassified":
            return f"{head} label {self.label} misclassified on the clean input (predicted {self.predicted})"
        why = f" ({self.reason})" if self.reason else ""
        return f"{head} label {self.label} unknown after {self.method}{why}"


def verdict_passes(verdict: str, require: str = "not_falsified") -> bool:
    """Whether a sample with ``verdict`` passes under ``require`` (unknown passes only "not_falsified")."""
    if require == "certified":
        return verdict == "certified"
    return verdict in ("certified", "unknown")


def pass_fraction(verdicts: Sequence[str], require: str = "not_falsified") -> float:
    """Share of ``verdicts`` that pass under ``require`` (1.0 for none)."""
    if not verdicts:
        return 1.0
    return sum(verdict_passes(v, require) for v in verdicts) / len(verdicts)


def caveat_text(verdicts: Sequence[str], *, escalate: str, require: str) -> str:
    """See :meth:`Report.caveat`."""
    unknown, certified = sum(v == "unknown" for v in verdicts), sum(v == "certified" for v in verdicts)
    if require != "not_falsified" or not unknown:
        return ""
    if escalate == "attack" or escalate.endswith("/none"):  # attacks (or radius search) only
        return f"not falsified by attacks; {certified} proved"
    return f"{unknown} unknown count as passing; {certified} proved"


def summary_text(verdicts: Sequence[str], *, threat: str, min_pass: float, require: str, escalate: str,
                 cached: int = 0, extra: str = "") -> str:
    """The one-line summary of a check with these per-sample ``verdicts`` (also of merged shards)."""
    c = {v: 0 for v in VERDICTS}
    for v in verdicts:
        c[v] += 1
    frac = pass_fraction(verdicts, require)
    status = "passed" if frac >= min_pass - 1e-12 else "FAILED"
    caveat = caveat_text(verdicts, escalate=escalate, require=require)
    status += f" ({caveat})" if caveat else ""
    return (f"robustness {status}: {frac:.1%} of {len(verdicts)} samples pass "
            f"(require={require}, min_pass={min_pass:g}) at {threat}; "
            f"certified {c['certified']}, falsified {c['falsified']}, unknown {c['unknown']}, "
            f"misclassified {c['misclassified']}"
            + (f"; {cached} verdicts reused from the cache" if cached else "") + extra)


@dataclass(frozen=True)
class Report:
    """The result of :func:`robustest.check` for a batch of inputs."""

    samples: Tuple[SampleResult, ...]
    ball: "LpBall"
    escalate: str
    seed: int
    seconds: float
    warnings: Tuple[str, ...] = ()

    @property
    def verdicts(self) -> List[str]:
        return [s.verdict for s in self.samples]

    def counts(self) -> Dict[str, int]:
        out = {v: 0 for v in VERDICTS}
        for s in self.samples:
            out[s.verdict] += 1
        return out

    @property
    def cached(self) -> int:
        """How many verdicts were reused from the verdict cache."""
        return sum(s.cached for s in self.samples)

    def pass_fraction(self, require: Require = "not_falsified") -> float:
        """Share of samples that pass; misclassified samples fail (they are not robust)."""
        return pass_fraction(self.verdicts, require)

    def passed(self, *, min_pass: float = 1.0, require: Require = "not_falsified") -> bool:
        return self.pass_fraction(require) >= min_pass - 1e-12

    def summary(self, *, min_pass: float = 1.0, require: Require = "not_falsified") -> str:
        return summary_text(self.verdicts, threat=self.ball.describe(), min_pass=min_pass, require=require,
                            escalate=self.escalate, cached=self.cached)

    def caveat(self, require: Require = "not_falsified") -> str:
        """What a pass does not say, when unknown samples count as passing: "not falsified by attacks;
        0 proved" (only attacks ran) or "3 unknown count as passing; 44 proved" (the provers left some
        undecided); "" when every passing sample was proved or ``require="certified"``."""
        return caveat_text(self.verdicts, escalate=self.escalate, require=require)

    def failures(self, require: Require = "not_falsified") -> List[SampleResult]:
        return [s for s in self.samples if not s.passed(require)]

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready summary (counterexamples are left out)."""
        return {
            "ball": {"eps": self.ball.eps, "norm": self.ball.norm},
            "escalate": self.escalate, "seed": self.seed, "seconds": self.seconds,
            "samples": [
                {"index": s.index, "verdict": s.verdict, "method": s.method, "label": s.label,
                 "predicted": s.predicted, "distance": _num(s.distance), "figure": _num(s.figure),
                 "seconds": s.seconds, "reason": s.reason}
                for s in self.samples
            ],
        }


def _num(v: Optional[float]) -> Optional[float]:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass(frozen=True)
class AttackResult:
    """The outcome of :func:`robustest.attack` on a batch.

    ``adversarial`` holds, per sample, the re-checked counterexample where ``success`` is true and the
    clean input elsewhere. ``method`` names the attack that found each success ("" where none did).
    """

    adversarial: torch.Tensor
    success: torch.Tensor
    predicted: torch.Tensor
    distance: torch.Tensor
    method: Tuple[str, ...]
    seconds: float
    queries: int = 0

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean()) if self.success.numel() else 0.0

    def robust_accuracy(self, clean_correct: Optional[torch.Tensor] = None) -> float:
        ok = ~self.success if clean_correct is None else (~self.success & clean_correct)
        return float(ok.float().mean()) if ok.numel() else 0.0


@dataclass(frozen=True)
class Bounds:
    """Sound elementwise bounds ``lower <= f(x') <= upper`` for every ``x'`` in the ball.

    ``margins_lower``/``margins_upper`` bound ``C @ f(x')`` when labels or a spec matrix were given.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    method: str
    margins_lower: Optional[torch.Tensor] = None
    margins_upper: Optional[torch.Tensor] = None
    extra: Dict[str, Any] = field(default_factory=dict)
