"""Frozen results of :func:`robustest.repair`: the candidate pool, the pick, and before/after figures.

Every candidate is a point ``w0 + t (w*_k - w0)`` on the segment towards the k-th QP minimiser; the pool
keeps its two objectives (V: margin violation on the adversarial points, L: training loss) so that a
user can re-select with another ``omega`` via :func:`robustest.repair.select.select`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch


@dataclass(frozen=True)
class Candidate:
    """One point of the pool: ``w = w0 + step * (w*_iteration - w0)``.

    ``violation`` is V(w) (0 means every adversarial point is classified correctly, ties allowed) and
    ``loss`` is L(w), the training loss. ``fixed`` counts adversarial points with the right argmax.
    """

    iteration: int
    step: float
    violation: float
    loss: float
    fixed: int
    distance: float


@dataclass(frozen=True)
class QPRecord:
    """What one master QP did: rows, solver status, the largest remaining row violation (slack)."""

    iteration: int
    rows: int
    status: str
    slack: float
    objective: float
    seconds: float


@dataclass(frozen=True)
class RepairResult:
    """The outcome of :func:`robustest.repair`.

    ``model`` is the repaired copy (the input model is never modified). ``candidates`` is the pool, in
    generation order; ``chosen`` indexes it (``None`` when the pool was empty or no candidate beat the
    start, in which case ``model`` holds the original weights). Accuracies are fractions in [0, 1]:
    ``clean_accuracy_*`` on the evaluation data (the training data unless ``evaluate=`` was given),
    ``adversarial_accuracy_*`` on the adversarial points, ``robust_accuracy_*`` under PGD at ``eps`` on
    the evaluation data (``None`` when no ``eps`` was given). ``distance`` is ``||w - w0||_2``.
    ``start`` (w0) and ``directions`` (the QP steps ``w*_k - w0``) rebuild any candidate.
    """

    model: torch.nn.Module
    candidates: Tuple[Candidate, ...]
    chosen: Optional[int]
    distance: float
    violation_before: float
    violation_after: float
    loss_before: float
    loss_after: float
    clean_accuracy_before: float
    clean_accuracy_after: float
    adversarial_accuracy_before: float
    adversarial_accuracy_after: float
    robust_accuracy_before: Optional[float]
    robust_accuracy_after: Optional[float]
    n_adversarial: int
    n_parameters: int
    qp: Tuple[QPRecord, ...]
    qp_seconds: float
    gradient_seconds: float
    evaluation_seconds: float
    seconds: float
    solver: str
    omega: float
    notes: Tuple[str, ...] = ()
    start: Optional[torch.Tensor] = field(default=None, repr=False)
    directions: Tuple[torch.Tensor, ...] = field(default=(), repr=False)

    def candidate_model(self, index: int) -> torch.nn.Module:
        """A copy of the model at pool candidate ``index`` (``w0 + step * d_iteration``), e.g. to pick
        with another omega without repairing again::

            from robustest.repair.select import select
            i = select([c.violation for c in res.candidates], [c.loss for c in res.candidates], omega=0.0)
            model_0 = res.candidate_model(i)
        """
        from .jacobian import FlatModel

        if self.start is None or not 0 <= index < len(self.candidates):
            raise IndexError(f"candidate index {index} is outside the pool of {len(self.candidates)}")
        cand = self.candidates[index]
        model = copy.deepcopy(self.model)
        FlatModel(model).write(self.start + cand.step * self.directions[cand.iteration - 1])
        return model

    @property
    def candidate(self) -> Optional[Candidate]:
        """The chosen candidate, or ``None``."""
        return None if self.chosen is None else self.candidates[self.chosen]

    @property
    def max_slack(self) -> float:
        """Largest row violation left by any master QP (0 when every QP was feasible)."""
        return max((q.slack for q in self.qp), default=0.0)

    def summary(self) -> str:
        """One line: the before/after figures and where the time went."""
        rob = ""
        if self.robust_accuracy_before is not None and self.robust_accuracy_after is not None:
            rob = f", robust {self.robust_accuracy_before:.1%} -> {self.robust_accuracy_after:.1%}"
        return (f"repair ({self.solver}, omega={self.omega:g}): fixed "
                f"{self.adversarial_accuracy_after * self.n_adversarial:.0f}/{self.n_adversarial} adversarial "
                f"points, V {self.violation_before:.3g} -> {self.violation_after:.3g}, clean "
                f"{self.clean_accuracy_before:.1%} -> {self.clean_accuracy_after:.1%}{rob}, "
                f"|w-w0|={self.distance:.3g}; {self.seconds:.1f}s (qp {self.qp_seconds:.1f}s, gradients "
                f"{self.gradient_seconds:.1f}s, evaluation {self.evaluation_seconds:.1f}s)")


__all__ = ["Candidate", "QPRecord", "RepairResult"]
