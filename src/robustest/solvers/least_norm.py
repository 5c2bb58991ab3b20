"""The elastic least-norm QP of the repair, solved by any registered backend.

Every backend solves the same problem in the step ``d``::

    minimise  1/2 ||d||^2 + penalty * sum(s)   subject to   A d + s >= r,  s >= 0

(the elastic form: with a large ``penalty`` it is the exact QP ``min ||d||^2 s.t. A d >= r`` whenever
that is feasible, and otherwise the slack ``s`` says by how much the cuts cannot all be met; with
``penalty=inf`` the slacks are left out). ``A`` is a ``(rows, n)`` tensor, ``r`` a float64 numpy vector.
A backend class with a ``least_norm(A, r, *, penalty)`` method of its own (the dual active-set solver,
:mod:`robustest.solvers.dual`) solves it directly; every other backend gets it as a QP
:class:`~robustest.solvers.base.Problem` in ``(d, s)`` with the Hessian ``diag(1, .., 1, 0, .., 0)``.

    >>> import torch, numpy as np
    >>> A = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    >>> [round(v, 6) for v in solve_least_norm(A, np.array([2.0]), solver="highs").d.tolist()]
    [1.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SolverError, SolverUnavailable, invalid_argument
from .base import Problem, backend, open_solver


@dataclass(frozen=True)
class QPSolution:
    """A QP answer. ``d`` has A's dtype and device; ``mu`` are the row multipliers (float64, >= 0).

    ``slack`` is the largest remaining violation ``max(r - A d)`` (0 up to rounding when feasible);
    ``status`` is ``"optimal"``, ``"elastic"`` (some cut could not be met: see ``slack``) or
    ``"iteration_limit"``.
    """

    d: torch.Tensor
    mu: np.ndarray
    slack: float
    status: str
    iterations: int
    objective: float


def finish(A: torch.Tensor, r: np.ndarray, d: torch.Tensor, mu: np.ndarray, *, status: str,
           iterations: int) -> QPSolution:
    """Build a :class:`QPSolution`, measuring the remaining violation by a plain product ``A d``."""
    if A.shape[0]:
        resid = torch.as_tensor(r, dtype=A.dtype, device=A.device) - A @ d
        slack = float(resid.max().clamp_min(0.0))
    else:
        slack = 0.0
    return QPSolution(d=d, mu=np.asarray(mu, dtype=np.float64), slack=slack, status=status,
                      iterations=iterations, objective=float(d.double().pow(2).sum()))


def check_problem(A: torch.Tensor, r: np.ndarray, penalty: float) -> np.ndarray:
    """Validate the matrix-level arguments every backend shares; returns ``r`` as float64."""
    if not isinstance(A, torch.Tensor) or A.dim() != 2:
        raise invalid_argument("A", getattr(A, "shape", A), "a 2-D tensor (rows, n)",
                               "stack the cut rows into one tensor")
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    if r.shape[0] != A.shape[0]:
        raise invalid_argument("r", r.shape, f"one entry per row of A ({A.shape[0]})",
                               "pass one right-hand side per cut")
    if not np.all(np.isfinite(r)) or not bool(torch.isfinite(A).all()):
        raise invalid_argument("A, r", "non-finite entries", "finite cut rows",
                               "check the model's gradients for NaN/inf")
    if not penalty > 0:
        raise invalid_argument("penalty", penalty, "a number > 0 (float('inf') for hard cuts)",
                               "use penalty=1e6")
    return r


def solve_least_norm(A: torch.Tensor, r: np.ndarray, *, penalty: float = 1e6,
                     solver: str = "dual") -> QPSolution:
    """Solve ``min 1/2||d||^2 + penalty*sum(s) s.t. A d + s >= r, s >= 0`` with backend ``solver``."""
    cls = backend(solver)
    r = check_problem(A, r, penalty)
    if cls.least_norm is not None:
        return cls.least_norm(A, r, penalty=penalty)  # type: ignore[no-any-return]
    p, n = A.shape
    elastic = math.isfinite(penalty)
    limit = cls.size_limit
    nvars = n + (p if elastic else 0)
    if limit is not None and (nvars > limit or p > limit):  # checked before the dense rows are copied
        raise SolverUnavailable(
            f"solver='{solver}': the QP has {nvars} variables and {p} constraints, over the {limit} the pip "
            "licence allows (unless you hold a full licence). Fix: use solver='dual' (exact, no size "
            "limit), or block=<fixed share> to shrink the free set")
    problem, d, cost = _elastic_problem(A, r, penalty)
    try:
        res = open_solver(problem, solver).minimize(cost, quadratic={int(j): 1.0 for j in d})
    except SolverUnavailable as err:
        raise SolverUnavailable(f"{err} For the repair QP, solver='dual' has no size limit.") from err
    if res.status == "infeasible":
        raise SolverError(f"solver='{solver}': the hard-cut QP (penalty=inf) is infeasible. Fix: pass a "
                          "finite penalty (e.g. penalty=1e6) to get the elastic solution and its slack")
    if res.status != "optimal" or res.x is None or res.duals is None:
        raise SolverError(f"solver='{solver}' stopped with status {res.status} {res.message}. Fix: use "
                          "solver='dual', or scale the problem")
    x = res.x
    step = torch.as_tensor(x[:n], dtype=A.dtype, device=A.device)
    slack_used = elastic and bool(np.any(x[n:] > 1e-9))
    return finish(A, r, step, np.abs(res.duals), status="elastic" if slack_used else "optimal",
                  iterations=res.iterations)


def _elastic_problem(A: torch.Tensor, r: np.ndarray,
                     penalty: float) -> tuple[Problem, np.ndarray, dict[int, float]]:
    """The QP as a :class:`Problem` in ``(d, s)``: its rows, the indices of ``d`` and the slack costs."""
    p, n = A.shape
    problem = Problem()
    d = problem.add_vars(np.full(n, -math.inf), np.full(n, math.inf))
    dense = A.detach().double().cpu().numpy()
    rows, cols = np.nonzero(dense)
    values, cols = dense[rows, cols], d[cols]
    cost: dict[int, float] = {}
    if math.isfinite(penalty):  # one slack column per cut: A d + s >= r
        s = problem.add_vars(np.zeros(p), np.full(p, math.inf))
        rows, cols, values = np.r_[rows, np.arange(p)], np.r_[cols, s], np.r_[values, np.ones(p)]
        cost = {int(j): float(penalty) for j in s}
    problem.add_rows(rows, cols, values, lo=r, hi=np.full(p, math.inf))
    return problem, d, cost


__all__ = ["QPSolution", "check_problem", "finish", "solve_least_norm"]
