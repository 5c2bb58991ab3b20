"""The bounds a per-sample prover starts from: the task's known bounds, with CROWN's per-node bounds
computed when no earlier prover left them (LP and MILP encode the network with them)."""

from __future__ import annotations

import numpy as np

from ..certify.encode import numpy_boxes
from .base import Known, ProofTask


def prepared(task: ProofTask, n: int, *, deadline: float = float("inf")) -> Known:
    """Sample ``n``'s :class:`Known`, with per-node bounds (CROWN's, computed now if missing, cut short at
    ``deadline``)."""
    known = task.known[n] if task.known is not None else Known(np.full(task.d.shape[1], -np.inf))
    if known.boxes is None:
        from ..certify.crown import crown

        res = crown(task.graph, task.x0[n:n + 1], task.ball, task.C[n:n + 1], deadline=deadline)
        known.learn((res.lower[0].detach() + task.d[n]).cpu().numpy(), numpy_boxes(res.boxes, 0))
    return known
