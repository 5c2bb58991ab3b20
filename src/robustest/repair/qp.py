"""The master QP of the repair: its backends are the solver registry's (:mod:`robustest.solvers`).

Every backend solves the same problem in the step ``d = w - w0`` (see
:mod:`robustest.solvers.least_norm`)::

    minimise  1/2 ||d||^2 + penalty * sum(s)   subject to   A d + s >= r,  s >= 0

A backend here is a callable ``solve(A, r, *, penalty) -> QPSolution``; :func:`get_solver` maps the
registry's names (``"dual"``, ``"highs"``, ``"gurobi"``) to them.

    >>> import torch, numpy as np
    >>> sol = get_solver("dual")(torch.eye(2, dtype=torch.float64), np.array([1.0, -1.0]), penalty=1e6)
    >>> sol.d.tolist(), sol.status
    ([1.0, 0.0], 'optimal')
"""

from __future__ import annotations

from functools import partial
from typing import Callable

from ..errors import invalid_argument
from ..solvers.base import BACKENDS
from ..solvers.least_norm import QPSolution, check_problem, finish, solve_least_norm

#: the names a repair accepts for ``solver`` (every registered backend solves the least-norm QP)
SOLVERS = BACKENDS

Solver = Callable[..., QPSolution]


def get_solver(name: str) -> Solver:
    """The ``solve(A, r, *, penalty)`` of backend ``name`` (highspy/gurobipy load on first use)."""
    if name not in SOLVERS:
        raise invalid_argument("solver", name, f"one of {sorted(SOLVERS)}",
                               "use solver='dual' (fast, no dependency) or 'highs' to cross-check")
    return partial(solve_least_norm, solver=name)


__all__ = ["QPSolution", "SOLVERS", "get_solver", "finish", "check_problem"]
