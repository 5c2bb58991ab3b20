"""LP: the triangle relaxation of every ReLU, one LP per unproved row, per sample."""

from __future__ import annotations

import time
from typing import List

import numpy as np

from .base import Prover, ProofTask, ProverOutcome, decide
from .known import prepared


class LpProver(Prover):
    name = rung = "lp"

    def prove(self, task: ProofTask, *, deadline: float) -> List[ProverOutcome]:
        from ..certify.lp import lp_margins

        out = []
        for n in range(len(task)):
            t0 = time.perf_counter()
            known = prepared(task, n, deadline=deadline)
            rows = [int(m) for m in np.argsort(known.lower) if not known.lower[m] > 0]
            spec = task.C[n].cpu().numpy()
            low, reason = lp_margins(task.graph, task.x0[n], task.ball, spec, known.boxes or [], rows=rows,
                                     solver=task.solver, deadline=deadline)
            low = low + task.d[n].cpu().numpy()
            out.append(decide(self.name, task.best(n, low), task.groups,
                              seconds=time.perf_counter() - t0, reason=reason))
        return out
