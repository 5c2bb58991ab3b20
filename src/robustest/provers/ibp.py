"""IBP: interval bounds, one batched pass; the loosest and cheapest prover."""

from __future__ import annotations

import time
from typing import List

from .base import Prover, ProofTask, ProverOutcome, decide


class IbpProver(Prover):
    name = rung = "ibp"
    batched = True

    def prove(self, task: ProofTask, *, deadline: float) -> List[ProverOutcome]:
        from ..certify.api import spec_interval
        from ..certify.ibp import interval_bounds

        t0 = time.perf_counter()
        lo, hi = interval_bounds(task.graph, *task.ball.box(task.x0))[-1]
        low = (spec_interval(task.C, lo.flatten(1), hi.flatten(1))[0] + task.d).cpu().numpy()
        share = (time.perf_counter() - t0) / max(1, len(task))
        return [decide(self.name, task.best(n, low[n]), task.groups, seconds=share) for n in range(len(task))]
