"""CROWN (backward linear bounds) and alpha-CROWN (the same with optimised ReLU slopes), batched."""

from __future__ import annotations

import time
from typing import List, Tuple

import numpy as np
import torch

from ..certify.encode import numpy_boxes
from .base import Prover, ProofTask, ProverOutcome, decide


def stacked_boxes(task: ProofTask) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """The known per-node bounds of every sample, stacked back into batched tensors."""
    known = task.known or ()
    out = []
    for j, node in enumerate(task.graph.nodes):
        shape = (len(known),) + tuple(node.shape)
        lo, hi = (torch.as_tensor(np.stack([k.boxes[j][side] for k in known]),  # type: ignore[index]
                                  device=task.x0.device).reshape(shape) for side in (0, 1))
        out.append((lo, hi))
    return out


class CrownProver(Prover):
    """Plain CROWN over the whole batch; the per-node bounds it computes are kept for LP and MILP."""

    name = rung = "crown"
    batched = True
    alpha = False

    def prove(self, task: ProofTask, *, deadline: float) -> List[ProverOutcome]:
        from ..certify.crown import crown

        t0 = time.perf_counter()
        boxes = None
        if self.alpha and task.known is not None and all(k.boxes is not None for k in task.known):
            # the intermediate bounds of the plain CROWN pass before, stacked back into a batch
            boxes = stacked_boxes(task)
        steps = task.settings.alpha_steps if self.alpha else 0
        res = crown(task.graph, task.x0, task.ball, task.C, alpha_steps=steps, boxes=boxes, deadline=deadline)
        low = (res.lower.detach() + task.d).cpu().numpy()
        share = (time.perf_counter() - t0) / max(1, len(task))
        return [decide(self.name, task.best(n, low[n]), task.groups, seconds=share,
                       boxes=None if self.alpha else numpy_boxes(res.boxes, n)) for n in range(len(task))]
