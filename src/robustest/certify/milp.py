"""Exact verification of one sample by mixed-integer programming (Tjeng et al. 2019).

The network is encoded with big-M ReLUs (and MaxPools) whose constants are the tightest intermediate
bounds available (CROWN/LP ∩ IBP): the tighter, the faster. Stable neurons get no binary. Only the
margins that cheaper bounds left unproven are solved, the most threatened first (smallest known lower
bound), each one stopping as soon as it is decided (a point with negative margin found, or the dual bound
above 0), and the whole sample stops at the first negative margin. The solver's own time limit is the
sample's remaining budget. A counterexample is returned for a forward-pass re-check.

l1 balls are encoded exactly (linear constraints); l2 balls by their outer box: a proof is sound, but a
point found outside the ball is not a counterexample and leaves the sample undecided.

A network with smooth activations (Sigmoid, Tanh, ...) has no exact MILP: their rows are a sound
relaxation (``Encoding.relaxed``). A proof over it is still sound (the relaxation contains the network),
but its minimum is only a lower bound: a point with a negative margin counts only when a forward pass of
the graph confirms it, and otherwise leaves the sample undecided.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..graph import Graph
from ..solvers import open_solver
from ..spec import LpBall
from .encode import OutOfTime, encode_ball
from .lp import safe


@dataclass(frozen=True)
class MilpOutcome:
    """``verdict`` is "certified", "falsified" or None (undecided, ``reason`` says why). ``figure`` is the
    certified lower bound of the smallest margin, or the counterexample's margin (objective)."""

    verdict: str | None
    figure: float | None
    counterexample: torch.Tensor | None
    reason: str
    solved: int


def milp_minimum(graph: Graph, x0: torch.Tensor, ball: LpBall, c: np.ndarray, boxes: Sequence[tuple[np.ndarray,
                 np.ndarray]], *, solver: str = "highs", time_limit: float = float("inf")):
    """Solve ``min c @ f(x)`` over the box of the ball to optimality; returns (SolveResult, point or None).
    The minimum is the network's only when every layer is piecewise linear (else a lower bound of it)."""
    enc = encode_ball(graph, x0, ball, boxes, exact=True)
    res = open_solver(enc.problem, solver).minimize(
        {int(v): float(w) for v, w in zip(enc.outputs, c) if w != 0}, time_limit=time_limit)
    point = None
    if res.x is not None:
        point = torch.as_tensor(res.x[enc.inputs], dtype=x0.dtype, device=x0.device).reshape(x0.shape)
    return res, point


def milp_verify(graph: Graph, x0: torch.Tensor, ball: LpBall, spec: np.ndarray, known: np.ndarray,
                boxes: Sequence[tuple[np.ndarray, np.ndarray]], *, solver: str = "highs",
                time_limit: float = float("inf"), offset: np.ndarray | None = None) -> MilpOutcome:
    """Decide ``spec @ f(x) + offset > 0`` (all rows; ``offset`` default 0) over the ball around ``x0``
    (batch-free), given ``known`` sound lower bounds of each row (rows with ``known > 0`` are not solved
    again). (Tightening the big-M constants by LP first did not pay for its LPs on the digits MLP,
    benchmarks/certification.md, and was removed.)"""
    start = time.perf_counter()
    deadline = start + time_limit
    off = np.zeros(spec.shape[0]) if offset is None else np.asarray(offset, dtype=np.float64)
    order = [int(m) for m in np.argsort(known) if not known[m] > 0]
    bounds = np.asarray(known, dtype=np.float64).copy()
    if not order:
        return MilpOutcome("certified", float(bounds.min()), None, "", 0)
    try:
        enc = encode_ball(graph, x0, ball, boxes, exact=True, deadline=deadline)
    except OutOfTime:
        return MilpOutcome(None, None, None, "milp time limit (building the MILP)", 0)
    handle = open_solver(enc.problem, solver)
    for n, m in enumerate(order):
        left = deadline - time.perf_counter()
        if left <= 0:
            return MilpOutcome(None, None, None, "milp time limit", n)
        res = handle.minimize({int(v): float(w) for v, w in zip(enc.outputs, spec[m]) if w != 0},
                              time_limit=left, stop_below=-off[m], stop_above=-off[m])
        objective, bound = res.objective + off[m], res.bound + off[m]
        if res.x is not None and objective < 0:
            point = torch.as_tensor(res.x[enc.inputs], dtype=x0.dtype, device=x0.device).reshape(x0.shape)
            point = ball.project(point.unsqueeze(0), x0.unsqueeze(0))[0]  # undo solver tolerance drift
            if not bool(ball.contains(point.unsqueeze(0), x0.unsqueeze(0))[0]):
                return MilpOutcome(None, None, None, f"milp found a point of the {ball.norm} ball's outer box "
                                   f"outside the ball (margin {objective:.3g})", n + 1)
            if enc.relaxed:  # the relaxation's minimiser: a counterexample only if the network agrees
                with torch.no_grad():
                    value = float(graph(point.unsqueeze(0).to(torch.float64))[0].cpu().numpy() @ spec[m]) + off[m]
                if not value < 0:
                    return MilpOutcome(None, None, None, f"the milp relaxes {', '.join(enc.relaxed[:3])}: its "
                                       f"minimum {objective:.3g} is a bound only, and the network's margin "
                                       f"at its minimiser is {value:.3g}", n + 1)
                return MilpOutcome("falsified", value, point, "", n + 1)
            return MilpOutcome("falsified", float(objective), point, "", n + 1)
        if res.status == "infeasible":
            bounds[m] = np.inf
        elif bound > 0 and res.status in ("optimal", "interrupted", "time_limit"):
            bounds[m] = max(bounds[m], safe(res.bound) + off[m])
            if not bounds[m] > 0:
                return MilpOutcome(None, None, None, f"milp margin {bound:.3g} too close to 0 to certify", n + 1)
        elif res.status == "time_limit":
            return MilpOutcome(None, None, None, "milp time limit", n + 1)
        elif res.status == "error":
            return MilpOutcome(None, None, None, f"solver error: {res.message}", n + 1)
        else:
            return MilpOutcome(None, None, None, f"milp margin in [{bound:.3g}, {objective:.3g}]: a tie "
                               f"at 0 cannot be certified", n + 1)
    return MilpOutcome("certified", float(bounds.min()), None, "", len(order))
