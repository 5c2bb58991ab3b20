"""Exact minimal adversarial perturbations of small ReLU networks (Tjeng et al.'s MILP, seeds/003's MIP).

For a sample ``x0`` with label ``y`` and each target ``t``, minimise ``||x - x0||_p`` over inputs ``x`` of
the domain whose logit ``t`` reaches logit ``y``; the smallest over the targets is the exact radius. The
network is the certifier's big-M encoding (:func:`robustest.certify.encode.encode_network`); this module
adds only the distance variables, the target row and the objective:

* linf: ``|x_i - x0_i| <= s``, minimise ``s`` — a MILP (HiGHS by default);
* l1: ``|x_i - x0_i| <= s_i``, minimise ``sum s_i`` — a MILP;
* l2: minimise ``sum (x_i - x0_i)^2`` — a MIQP, which needs Gurobi (the pip licence covers models up to
  2000 variables and constraints; larger ones raise :class:`~robustest.errors.SolverUnavailable`).

A known ``upper`` distance (from rLR-QP) shrinks the input box to ``x0 ± upper``, which makes the
pre-activation bounds (CROWN) and so the big-M constants tight, and lets targets whose proven bound
exceeds the best value so far stop early.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2)).eval()
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0], [-1.0]])); _ = net[0].bias.zero_()
    ...     _ = net[2].weight.copy_(torch.eye(2)); _ = net[2].bias.copy_(torch.tensor([0.0, 0.2]))
    >>> res = exact_minimum(net, torch.tensor([[0.5]]), torch.tensor([0]), norm="linf", domain=(-1.0, 1.0))
    >>> res.status, round(res.value, 4)
    ('optimal', 0.3)
"""

from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from ..errors import SolverError, SolverUnavailable, UnsupportedLayer, invalid_argument
from ..solvers import Problem, open_solver
from ..spec import Bound, LpBall, lp_norm

_FIX_L2 = ("Fix: pip install gurobipy (its pip licence covers models up to 2000 variables and "
           "constraints), or use norm='linf'/'l1', which HiGHS solves")


@dataclass(frozen=True)
class ExactResult:
    """``value``: the best distance found (``inf`` if none); ``bound``: a proven lower bound on the true
    minimum (equal to ``value`` up to the solver's gap when ``status == "optimal"``); ``point``: the
    minimiser (on the decision boundary); ``status``: "optimal", "time_limit" or "infeasible" (no input of
    the domain changes the label)."""

    value: float
    bound: float
    status: str
    point: Optional[torch.Tensor]
    seconds: float


def exact_minimum(model: torch.nn.Module, x: torch.Tensor, label: torch.Tensor, *, norm: str = "linf",
                  domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0), upper: float = math.inf,
                  time_limit: float = 60.0, solver: Optional[str] = None) -> ExactResult:
    """The exact minimal ``norm`` distance from ``x`` (one sample, shape (1, ...)) to an input of the
    domain where some other class's logit reaches the true one.

    ``upper`` (a distance known to be achievable, e.g. from :func:`robustest.radius`) bounds the search;
    ``solver`` defaults to "highs" for linf/l1 and "gurobi" for l2.
    """
    from ..certify.crown import intermediate_bounds
    from ..certify.encode import encode_network, numpy_boxes, relaxed_layers
    from ..graph import read_model

    ball = LpBall(eps=0.0, norm=norm, domain=domain)
    if x.dim() < 2 or x.shape[0] != 1:
        raise invalid_argument("x", tuple(x.shape), "one sample of shape (1, ...)", "pass x[i:i + 1]")
    if solver is None:
        solver = "gurobi" if ball.norm == "l2" else "highs"
    if ball.norm == "l2" and solver != "gurobi":
        raise invalid_argument("solver", solver, "'gurobi' for norm='l2' (a MIQP)", _FIX_L2)
    if ball.norm == "l2" and importlib.util.find_spec("gurobipy") is None:
        raise SolverUnavailable(f"norm='l2' exact minima are a MIQP and need gurobipy. {_FIX_L2}")
    start = time.perf_counter()
    graph = read_model(model, x)
    relaxed = relaxed_layers(graph)
    if relaxed:
        raise UnsupportedLayer(f"the exact minimum needs a piecewise-linear network; {', '.join(relaxed[:3])} has "
                               "no exact MILP encoding. Fix: use the certified lower radius and the attack's upper one")
    x64 = x.detach().double()
    y = int(label.reshape(-1)[0])
    if not math.isfinite(upper):
        upper = _farthest(x64, ball)  # no radius known: the whole domain
    search = LpBall(eps=float(upper) * (1 + 1e-6) + 1e-9, norm=ball.norm, domain=domain)
    graph64 = graph.to(x64.device, torch.float64)
    boxes = numpy_boxes(intermediate_bounds(graph64, x64, search), 0)
    box_lo, box_hi = (t.reshape(-1).numpy() for t in search.box(x64))
    x0 = x64.reshape(-1).cpu().numpy()
    logits = boxes[-1]
    best_value, best_point, timed_out = math.inf, None, False
    bounds = []
    # most promising targets first: the largest upper bound of logit_t - logit_y
    order = sorted((t for t in range(logits[0].size) if t != y), key=lambda t: -(logits[1][t] - logits[0][y]))
    for t in order:
        if logits[1][t] < logits[0][y]:
            bounds.append(math.inf)  # target t can never reach y inside the box: no solve needed
            continue
        remaining = time_limit - (time.perf_counter() - start)
        if remaining <= 0:
            bounds.append(0.0)
            timed_out = True
            break
        enc = encode_network(graph64, box_lo, box_hi, boxes, exact=True)
        out = enc.outputs
        enc.problem.add_rows([0, 0], [int(out[t]), int(out[y])], [1.0, -1.0], lo=[0.0], hi=[np.inf])
        value, bound, status, point = _solve(enc.problem, enc.inputs, x0, ball.norm, solver, remaining,
                                             best_value)
        bounds.append(bound)
        timed_out |= status == "time_limit"
        if value < best_value:
            best_value, best_point = value, point
    bound = min([best_value] + bounds)
    status = "time_limit" if timed_out else ("optimal" if math.isfinite(best_value) else "infeasible")
    pt = None if best_point is None else torch.as_tensor(best_point, dtype=x.dtype).view_as(x[0])
    return ExactResult(best_value, bound, status, pt, time.perf_counter() - start)


def _farthest(x: torch.Tensor, ball: LpBall) -> float:
    """The largest distance from ``x`` to a point of the (bounded) domain."""
    if ball.domain is None:
        raise invalid_argument("domain", None, "a bounded domain (lo, hi) or a finite upper",
                               "pass upper= (e.g. from robustest.radius) or domain=(0.0, 1.0)")
    lo, hi = ball._domain_on(x)
    far = torch.maximum(x - lo, hi - x).reshape(1, -1)
    return float(lp_norm(far, ball.norm)[0])


def _solve(p: Problem, inputs: np.ndarray, x0: np.ndarray, norm: str, solver: str, time_limit: float,
           cutoff: float) -> Tuple[float, float, str, Optional[np.ndarray]]:
    """Add the distance objective to ``p`` and minimise: (value, proven bound, status, input point).

    linf/l1 minimise the auxiliary ``s``; l2 minimises ``||x - x0||^2 = sum x_i^2 - 2 x0 . x + ||x0||^2``
    (a MIQP: value and bound are the square roots of the solver's)."""
    d = inputs.size
    if norm == "l2":
        cost = {int(j): -2.0 * float(v) for j, v in zip(inputs, x0)}
        quadratic = {int(j): 2.0 for j in inputs}
        offset, gap, cut = float(x0 @ x0), _L2_GAP, cutoff * cutoff
    else:
        n_aux = 1 if norm == "linf" else d
        s = p.add_vars(np.zeros(n_aux), np.full(n_aux, np.inf))
        sv = np.full(d, s[0]) if norm == "linf" else s
        r = np.arange(d)
        # x - s <= x0 and x + s >= x0
        rows, cols, free = np.r_[r, r], np.r_[inputs, sv], np.full(d, np.inf)
        p.add_rows(rows, cols, np.r_[np.ones(d), -np.ones(d)], lo=-free, hi=x0)
        p.add_rows(rows, cols, np.r_[np.ones(d), np.ones(d)], lo=x0, hi=free)
        cost, quadratic, offset, gap, cut = {int(j): 1.0 for j in s}, None, 0.0, None, cutoff
    try:
        # nothing above the best distance so far is wanted: Gurobi prunes at the cutoff, HiGHS stops there
        res = open_solver(p, solver).minimize(cost, quadratic=quadratic, offset=offset, time_limit=time_limit,
                                              cutoff=cut if math.isfinite(cut) else None, gap=gap)
        if res.status == "error" and math.isfinite(cutoff):
            # seen with HiGHS ("status Not Set") when the early-stop callback fires at once: solve it fully
            res = open_solver(p, solver).minimize(cost, quadratic=quadratic, offset=offset,
                                                  time_limit=time_limit, gap=gap)
    except SolverUnavailable as err:
        if norm != "l2":
            raise
        raise SolverUnavailable(
            f"the exact l2 MIQP has {p.num_vars} variables and {p.num_rows} constraints, beyond the Gurobi "
            "pip licence (2000 each). Fix: a full Gurobi licence, a smaller network, or "
            "norm='linf'/'l1' (HiGHS)") from err
    if res.status == "infeasible" or (res.status == "error" and "infeasible" in res.message.lower()):
        return math.inf, math.inf, "optimal", None  # HiGHS may say "unbounded or infeasible": bounded here
    if res.status == "error":
        raise SolverError(f"the exact-minimum MILP failed: {res.message}")
    value, bound = float(res.objective), float(res.bound)
    if norm == "l2":  # squared distances
        value, bound = math.sqrt(max(value, 0.0)), math.sqrt(max(bound, 0.0))
    point = None if res.x is None else res.x[inputs]
    status = "time_limit" if res.status == "time_limit" else "optimal"
    return value, bound, status, point


#: the relative gap of the l2 MIQP (in squared distance), tighter than the solvers' default 1e-4
_L2_GAP = 1e-6


__all__ = ["exact_minimum", "ExactResult"]
