"""IBP: interval bounds, one batched pass; the loosest and cheapest prover."""

from __future__ import annotations

import time
from typing import List

import torch

from .base import Prover, ProofTask, ProverOutcome, decide


def rows_lower(C: torch.Tensor, d: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(N, R) the minimum of ``C f + d`` over the output box ``[lo, hi]`` (N, K): the interval margin rule."""
    return (C.clamp(min=0) @ lo.unsqueeze(2) + C.clamp(max=0) @ hi.unsqueeze(2)).squeeze(2) + d


class IbpProver(Prover):
    name = rung = "ibp"
    batched = True

    def prove(self, task: ProofTask, *, deadline: float) -> List[ProverOutcome]:
        from ..certify.ibp import interval_bounds

        t0 = time.perf_counter()
        lo, hi = interval_bounds(task.graph, *task.ball.box(task.x0))[-1]
        low = rows_lower(task.C, task.d, lo.flatten(1), hi.flatten(1)).cpu().numpy()
        share = (time.perf_counter() - t0) / max(1, len(task))
        return [decide(self.name, low[n], task.groups, seconds=share) for n in range(len(task))]
