"""MILP: the exact big-M encoding, one minimisation per unproved row, per sample."""

from __future__ import annotations

import time
from typing import List

from .base import Prover, ProofTask, ProverOutcome
from .known import prepared


class MilpProver(Prover):
    """Exact for piecewise-linear networks: decides every row to the solver's tolerance unless time runs
    out. With smooth activations the encoding is their sound relaxation: its proofs hold, and a point it
    finds counts only once a forward pass confirms it (:func:`~robustest.certify.milp.milp_verify`).
    Handles conjunctions of rows ``C y + d > 0`` (robustness margins, single-row VNN-LIB disjuncts);
    disjuncts of several rows are left ``open`` with the reason."""

    name = rung = "milp"

    def prove(self, task: ProofTask, *, deadline: float) -> List[ProverOutcome]:
        from ..certify.milp import milp_verify

        out = []
        for n in range(len(task)):
            t0 = time.perf_counter()
            if not task.single_rows:
                out.append(ProverOutcome("open", self.name, reason="milp decides conjunctions of rows "
                                         "C y + d > 0 only (each disjunct one row)"))
                continue
            known = prepared(task, n, deadline=deadline)
            res = milp_verify(task.graph, task.x0[n], task.ball, task.C[n].cpu().numpy(), known.lower,
                              known.boxes or [], solver=task.solver, time_limit=deadline - time.perf_counter(),
                              offset=task.d[n].cpu().numpy())
            seconds = time.perf_counter() - t0
            if res.verdict == "falsified" and res.counterexample is not None:
                out.append(ProverOutcome("counterexample", self.name, seconds, res.figure,
                                         counterexample=res.counterexample))
            elif res.verdict == "certified":
                out.append(ProverOutcome("proved", self.name, seconds, res.figure))
            else:
                out.append(ProverOutcome("open", self.name, seconds, reason=res.reason))
        return out
