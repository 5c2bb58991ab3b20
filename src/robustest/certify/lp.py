"""LP bounds: the triangle relaxation of every ReLU (and the convex relaxation of MaxPool), built on the
tightest intermediate bounds available (CROWN ∩ IBP), one LP per bound, solved with HiGHS or Gurobi.

Tighter than CROWN (which is one feasible dual point of this LP), much slower; meant for the samples CROWN
leaves undecided. l1 balls are encoded exactly; l2 balls are relaxed to their outer box. LP optima are floating-point: every lower
bound is lowered by :data:`LP_TOL` (relative + absolute) before use, so solver tolerances cannot produce a
false certificate.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ..graph import Graph
from ..layers.base import Box
from ..solvers import open_solver
from ..spec import LpBall
from .encode import OutOfTime, encode_ball, numpy_boxes

LP_TOL = 1e-6


def safe(value: float) -> float:
    """A solver's optimum lowered by the numerical tolerance (a sound lower bound)."""
    return value - LP_TOL * (1.0 + abs(value))


def lp_margins(graph: Graph, x0: torch.Tensor, ball: LpBall, spec: np.ndarray, boxes: Sequence[tuple[np.ndarray,
               np.ndarray]], *, rows: Sequence[int] | None = None, solver: str = "highs",
               deadline: float = float("inf"), upper: bool = False) -> tuple[np.ndarray, str]:
    """Lower bounds (and with ``upper``, also upper bounds) of ``spec[m] @ f(x)`` for one sample ``x0``
    (batch-free) over its ball, for the rows ``rows`` (default all); other rows get -inf. Returns the bounds
    (M,) or (2, M) and a reason ("" or why some bound is missing: time limit, solver error)."""
    M = spec.shape[0]
    out = np.full((2, M), -np.inf)
    out[1] = np.inf
    try:
        enc = encode_ball(graph, x0, ball, boxes, exact=False, deadline=deadline)
    except OutOfTime:
        return (out if upper else out[0]), "lp time limit (building the LP)"
    handle = open_solver(enc.problem, solver)
    reason = ""
    for m in (range(M) if rows is None else rows):
        for side, sign in ((0, 1.0), (1, -1.0)) if upper else ((0, 1.0),):
            left = deadline - time.perf_counter()
            if left <= 0:
                return (out if upper else out[0]), "lp time limit"
            res = handle.minimize({int(v): sign * float(c) for v, c in zip(enc.outputs, spec[m]) if c != 0},
                                  time_limit=left)
            if res.status == "optimal":
                out[side, m] = sign * safe(res.objective) if side == 0 else -safe(res.objective)
            elif res.status == "infeasible":  # the ball is empty of the encoding: cannot happen when sound
                reason = "lp infeasible (numerical trouble)"
            else:
                reason = "lp time limit" if res.status == "time_limit" else f"solver error: {res.message}"
    return (out if upper else out[0]), reason


def lp_bounds(graph: Graph, x: torch.Tensor, ball: LpBall, spec: torch.Tensor, boxes: list[Box], *,
              solver: str = "highs") -> tuple[torch.Tensor, torch.Tensor]:
    """Batched LP lower and upper bounds of ``spec @ f(x)`` (N, M) (-inf/inf where an LP failed)."""
    lows, ups = [], []
    for i in range(x.shape[0]):
        both, _ = lp_margins(graph, x[i], ball, spec[i].detach().double().cpu().numpy(), numpy_boxes(boxes, i),
                             solver=solver, upper=True)
        lows.append(both[0])
        ups.append(both[1])
    as_t = (lambda a: torch.as_tensor(np.stack(a), dtype=x.dtype, device=x.device))
    return as_t(lows), as_t(ups)
