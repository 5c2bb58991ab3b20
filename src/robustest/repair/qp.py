"""The master QP of the repair and its solver interface.

Every backend solves the same problem in the step ``d = w - w0``::

    minimise  1/2 ||d||^2 + penalty * sum(s)   subject to   A d + s >= r,  s >= 0

(the elastic form: with a large ``penalty`` it is the exact QP ``min ||d||^2 s.t. A d >= r`` whenever
that is feasible, and otherwise the slack ``s`` says by how much the cuts cannot all be met). ``A`` is a
``(rows, n)`` tensor, ``r`` a float64 numpy vector. A backend is a callable
``solve(A, r, *, penalty) -> QPSolution``; :func:`get_solver` maps the names ``"dual"``, ``"highs"`` and
``"gurobi"`` to them.

    >>> import torch, numpy as np
    >>> sol = get_solver("dual")(torch.eye(2, dtype=torch.float64), np.array([1.0, -1.0]), penalty=1e6)
    >>> sol.d.tolist(), sol.status
    ([1.0, 0.0], 'optimal')
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np
import torch

from ..errors import invalid_argument

#: solver name -> module defining ``solve``
SOLVERS: Dict[str, str] = {
    "dual": "robustest.repair.qp_dual",
    "highs": "robustest.repair.qp_highs",
    "gurobi": "robustest.repair.qp_gurobi",
}


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


Solver = Callable[..., QPSolution]


def get_solver(name: str) -> Solver:
    """The ``solve`` function of backend ``name`` (imported lazily: highspy/gurobipy load on use)."""
    if name not in SOLVERS:
        raise invalid_argument("solver", name, f"one of {sorted(SOLVERS)}",
                               "use solver='dual' (fast, no dependency) or 'highs' to cross-check")
    return importlib.import_module(SOLVERS[name]).solve  # type: ignore[no-any-return]


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


__all__ = ["QPSolution", "SOLVERS", "get_solver", "finish", "check_problem"]
