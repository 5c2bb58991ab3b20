"""Problem (3) of seeds/003: the smallest perturbation that reaches a target class inside one region.

On a linear region ``Q = {z : A z <= b}`` where the logits are ``W z + c``, the smallest ``delta`` with
``x + delta`` in ``Q``, in the input domain, and with the target logit above the true one is

    min ||delta||_p  s.t.  A (x + delta) <= b,  lo <= x + delta <= hi,
                           (W_y - W_t)(x + delta) + c_y - c_t <= -kappa

a convex QP for l2 and an LP for linf and l1, solved here with HiGHS (through :mod:`robustest.solvers`).
``kappa`` is a tiny margin so the solution lies strictly past the decision boundary (the caller re-checks
it with a forward pass anyway).

Before solving, the distance from ``x`` to the target's half-space alone (a closed form in the dual norm)
is a lower bound on the answer; targets whose bound cannot beat ``threshold`` are skipped unsolved, which
is exact: dropping constraints can only shrink the minimum.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..solvers import Problem, open_solver
from ..spec import NUMPY_ORD, dual_norm
from .deepfool import FLIP_TOL
from .regions import LinearRegion


def halfspace_bounds(W: np.ndarray, c: np.ndarray, x: np.ndarray, label: int, norm: str,
                     kappa: float) -> np.ndarray:
    """Per class ``t``: ``||delta||_p`` needed to reach ``(W_y - W_t)(x+delta) + c_y - c_t <= -kappa``
    ignoring every other constraint (``inf`` for the label itself and for parallel logits)."""
    G = W[label][None, :] - W
    m = G @ x + c[label] - c + kappa
    scale = np.linalg.norm(G, ord=NUMPY_ORD[dual_norm(norm)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lb = np.where(scale > 0, np.maximum(m, 0.0) / scale, np.where(m <= 0, 0.0, np.inf))
    lb[label] = np.inf
    return lb


def relaxed_target(g: np.ndarray, r: float, lo: np.ndarray, hi: np.ndarray,
                   norm: str) -> Optional[np.ndarray]:
    """The exact minimiser of ``||delta||_p`` s.t. ``g . delta <= r`` and ``lo <= delta <= hi`` (with
    ``lo <= 0 <= hi``): problem (3) without the region's rows. None when infeasible.

    Its norm is a lower bound for the region problem, and when the minimiser also satisfies the region's
    rows it *is* the region problem's minimiser (optimal for a relaxation and feasible for the original),
    so no QP/LP is needed. l2: ``delta = clip(-lam g)``; linf: ``delta = clip(-t sign g)``; in both
    ``g . delta`` decreases monotonically in the parameter, found by bisection. l1: greedy on ``|g_i|``.
    """
    if r >= 0:
        return np.zeros_like(g)
    reach = np.where(g > 0, lo, hi)  # the coordinates' extreme values in the helpful direction
    if float(g @ reach) > r:
        return None
    if norm == "l1":
        delta = np.zeros_like(g)
        need = r
        for i in np.argsort(-np.abs(g)):
            if g[i] == 0 or need >= 0:
                break
            step = max(need / g[i], reach[i]) if g[i] > 0 else min(need / g[i], reach[i])
            delta[i] = step
            need -= g[i] * step
        return delta

    def at(p: float) -> np.ndarray:
        d = -p * g if norm == "l2" else -p * np.sign(g)
        return np.clip(d, lo, hi)

    top = 1.0
    while float(g @ at(top)) > r:
        top *= 2.0
        if top > 1e30:
            return None
    bot = 0.0
    for _ in range(200):
        mid = (bot + top) / 2
        if float(g @ at(mid)) > r:
            bot = mid
        else:
            top = mid
        if top - bot <= 1e-15 * top:
            break
    return at(top)


def solve_target(region: LinearRegion, x: np.ndarray, label: int, target: int, *, norm: str,
                 lo: np.ndarray, hi: np.ndarray, kappa: float,
                 start: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """The minimal ``delta`` reaching ``target`` inside ``region`` (None when infeasible).

    Solved by constraint generation, which is exact: each round solves the problem with only the
    target row and the region rows violated so far (a relaxation), and stops when the relaxation's
    optimum satisfies every region row (then it is optimal for the full problem) or is infeasible
    (then so is the full problem). Region polytopes have hundreds of rows of which few are active, so
    the rounds are much smaller than the full problem. ``start`` is the relaxation's optimum without
    region rows, if known.
    """
    A = region.A.cpu().numpy()
    rhs = region.b.cpu().numpy() - A @ x
    W, c = region.W.cpu().numpy(), region.c.cpu().numpy()
    g = W[label] - W[target]
    r = -kappa - float(g @ x + c[label] - c[target])
    delta = start
    active = np.zeros(A.shape[0], dtype=bool)
    for _ in range(_ROUNDS):
        if delta is not None:
            excess = A @ delta - rhs
            excess[active] = -np.inf
            if not bool((excess > 1e-9).any()):
                return delta
            new = np.argsort(-excess)[:_BATCH]
            active[new[excess[new] > 1e-9]] = True
        delta = _min_norm(np.vstack([A[active], g[None, :]]), np.concatenate([rhs[active], [r]]),
                          lo - x, hi - x, norm)
        if delta is None:
            return None
    return _min_norm(np.vstack([A, g[None, :]]), np.concatenate([rhs, [r]]), lo - x, hi - x, norm)


#: constraint-generation rounds before solving with every row, and rows added per round
_ROUNDS, _BATCH = 25, 10


def _min_norm(rows: np.ndarray, upper: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              norm: str) -> Optional[np.ndarray]:
    """``argmin ||delta||_p`` s.t. ``rows @ delta <= upper`` and ``lo <= delta <= hi`` with HiGHS (a QP
    for l2, an LP with auxiliary variables for linf and l1); None when infeasible."""
    d = lo.shape[0]
    p = Problem()
    delta = p.add_vars(lo, hi)
    r, c = np.nonzero(rows)
    p.add_rows(r, delta[c], rows[r, c], lo=np.full(rows.shape[0], -np.inf), hi=upper)
    if norm == "l2":  # 1/2 ||delta||^2
        res = open_solver(p, "highs").minimize({}, quadratic={int(j): 1.0 for j in delta})
    else:
        # |delta_i| <= t (linf) or |delta_i| <= s_i (l1): delta - aux <= 0 and -delta - aux <= 0
        n_aux = 1 if norm == "linf" else d
        aux = p.add_vars(np.zeros(n_aux), np.full(n_aux, np.inf))
        per = np.full(d, aux[0]) if norm == "linf" else aux
        i = np.arange(d)
        for sign in (1.0, -1.0):
            p.add_rows(np.r_[i, i], np.r_[delta, per], np.r_[np.full(d, sign), -np.ones(d)],
                       lo=np.full(d, -np.inf), hi=np.zeros(d))
        res = open_solver(p, "highs").minimize({int(j): 1.0 for j in aux})
    return None if res.status != "optimal" or res.x is None else res.x[delta]


def solve_region(region: LinearRegion, x: np.ndarray, label: int, *, norm: str, lo: np.ndarray,
                 hi: np.ndarray, threshold: float, targets: Optional[np.ndarray] = None,
                 kappa: Optional[float] = None,
                 collect: Optional[List[np.ndarray]] = None) -> Tuple[Optional[np.ndarray], int]:
    """Problem (2): the smallest ``delta`` over the targets whose norm is below ``threshold``.

    Returns ``(delta or None, number of QPs/LPs solved)``. Targets are visited in order of their
    half-space bound, and the threshold tightens with every solution found. ``kappa`` (logit units)
    defaults to three times the re-check's flip tolerance. With ``collect``, every target's solution
    below the (fixed) threshold is appended to it. The solver only runs when
    the box-constrained relaxation (:func:`relaxed_target`) can beat the threshold but leaves the region.
    """
    W = region.W.cpu().numpy()
    c = region.c.cpu().numpy()
    if kappa is None:  # a margin well past the rounding noise the forward re-check tolerates
        kappa = 3 * FLIP_TOL * (1 + float(np.abs(W @ x + c).max()))
    lb = halfspace_bounds(W, c, x, label, norm, kappa)
    if targets is not None:
        mask = np.full(lb.shape, np.inf)
        mask[targets] = 0.0
        lb = lb + mask
    best, solved = None, 0
    for t in np.argsort(lb):
        if not lb[t] < threshold:
            break
        g = W[label] - W[t]
        r = -kappa - float(g @ x + c[label] - c[t])
        relaxed = relaxed_target(g, r, lo - x, hi - x, norm)
        if relaxed is None or not float(np.linalg.norm(relaxed, ord=NUMPY_ORD[norm])) < threshold:
            continue  # infeasible even without the region's rows, or cannot beat the threshold
        A, b = region.A.cpu().numpy(), region.b.cpu().numpy()
        delta: Optional[np.ndarray] = relaxed
        if A.shape[0] and not bool((A @ (x + relaxed) <= b + 1e-10).all()):
            # the relaxation's optimum leaves the region; when it stays inside, it is the region's optimum
            delta = solve_target(region, x, label, int(t), norm=norm, lo=lo, hi=hi, kappa=kappa,
                                 start=relaxed)
            solved += 1
        if delta is not None:
            size = float(np.linalg.norm(delta, ord=NUMPY_ORD[norm]))
            if collect is not None:
                collect.append(delta)  # every target's solution, the threshold stays as given
                if best is None or size < float(np.linalg.norm(best, ord=NUMPY_ORD[norm])):
                    best = delta
            elif size < threshold:
                best, threshold = delta, size
    return best, solved


__all__ = ["halfspace_bounds", "relaxed_target", "solve_target", "solve_region"]
