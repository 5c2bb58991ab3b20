"""Picking the repaired model from the candidate pool: Pareto filter, then a weighted sum (eq. 19).

Both objectives are minimised: V (violation on the adversarial points) and L (training loss). They are
min-max scaled over the whole pool, and the Pareto point minimising ``omega * L~ + (1 - omega) * V~``
wins, so ``omega = 0`` picks the least violation and larger ``omega`` favours the training loss. Ties go
to the lower loss, then the lower violation, then the earlier candidate.

    >>> select([3.0, 0.0, 1.0], [0.1, 0.5, 0.2], omega=0.0)
    1
    >>> select([3.0, 0.0, 1.0], [0.1, 0.5, 0.2], omega=1.0)
    0
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from ..errors import invalid_argument


def pareto(violations: Sequence[float], losses: Sequence[float]) -> List[int]:
    """Indices of the candidates no other candidate dominates (no worse in both, better in one)."""
    v, l_ = np.asarray(violations, dtype=float), np.asarray(losses, dtype=float)
    keep = []
    for i in range(len(v)):
        dominated = np.any((v <= v[i]) & (l_ <= l_[i]) & ((v < v[i]) | (l_ < l_[i])))
        if not dominated:
            keep.append(i)
    return keep


def _scale(a: np.ndarray) -> np.ndarray:
    span = float(a.max() - a.min())
    return np.zeros_like(a) if span <= 0 else (a - a.min()) / span


def select(violations: Sequence[float], losses: Sequence[float], *, omega: float) -> Optional[int]:
    """Index of the chosen candidate (``None`` for an empty pool); see the module doc."""
    if not (isinstance(omega, (int, float)) and 0.0 <= float(omega) <= 1.0):
        raise invalid_argument("omega", omega, "a number in [0, 1]",
                               "use omega=0 for the least violation, 0.2 (default) or 0.4 to favour the loss")
    if len(violations) != len(losses):
        raise invalid_argument("losses", len(losses), f"one loss per violation ({len(violations)})",
                               "pass matching lists")
    if not len(violations):
        return None
    v, l_ = np.asarray(violations, dtype=float), np.asarray(losses, dtype=float)
    score = omega * _scale(l_) + (1.0 - omega) * _scale(v)
    front = pareto(v.tolist(), l_.tolist())
    if omega == 0.0:  # exact at the ends (scaling can round tiny differences away)
        return min(front, key=lambda i: (v[i], l_[i], i))
    if omega == 1.0:
        return min(front, key=lambda i: (l_[i], v[i], i))
    return min(front, key=lambda i: (score[i], l_[i], v[i], i))


__all__ = ["pareto", "select"]
