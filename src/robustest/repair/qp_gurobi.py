"""The repair QP with Gurobi (gurobipy), the solver the paper used; for cross-checking.

The pip wheel's licence covers at most 2000 variables and 2000 linear constraints: beyond that this
backend says so (:class:`~robustest.errors.SolverUnavailable`) before building anything.

    >>> import torch, numpy as np
    >>> sol = solve(torch.tensor([[1.0, 1.0]], dtype=torch.float64), np.array([2.0]))  # doctest: +SKIP
    >>> [round(v, 6) for v in sol.d.tolist()]                                           # doctest: +SKIP
    [1.0, 1.0]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import SolverError, SolverUnavailable
from .qp import QPSolution, check_problem, finish

#: size limits of gurobipy's pip (restricted) licence
PIP_LICENCE_LIMIT = 2000


def solve(A: torch.Tensor, r: np.ndarray, *, penalty: float = 1e6, **_: object) -> QPSolution:
    """Solve ``min 1/2||d||^2 + penalty*sum(s) s.t. A d + s >= r, s >= 0`` with gurobipy."""
    r = check_problem(A, r, penalty)
    try:
        import gurobipy as gp
    except ImportError as exc:
        raise SolverUnavailable("solver='gurobi' needs gurobipy. Fix: pip install 'robustest[gurobi]', or "
                                "use solver='dual'") from exc
    p, n = A.shape
    elastic = math.isfinite(penalty)
    nvars = n + (p if elastic else 0)
    if nvars > PIP_LICENCE_LIMIT or p > PIP_LICENCE_LIMIT:
        raise SolverUnavailable(
            f"solver='gurobi': the QP has {nvars} variables and {p} constraints, over the "
            f"{PIP_LICENCE_LIMIT} the pip licence allows (unless you hold a full licence). Fix: use "
            "solver='dual' (exact, no size limit), or block=<fixed share> to shrink the free set")
    dense = A.detach().double().cpu().numpy()
    try:
        env = gp.Env(empty=True)
        env.setParam("OutputFlag", 0)
        env.start()
        m = gp.Model(env=env)
        d = m.addMVar(n, lb=-gp.GRB.INFINITY)
        cons_lhs = dense @ d
        obj = 0.5 * (d @ d)
        if elastic:
            s = m.addMVar(p, lb=0.0)
            cons = m.addConstr(cons_lhs + s >= r)
            obj = obj + penalty * s.sum()
        else:
            cons = m.addConstr(cons_lhs >= r)
        m.setObjective(obj, gp.GRB.MINIMIZE)
        m.optimize()
    except gp.GurobiError as exc:
        raise SolverUnavailable(f"Gurobi refused the problem: {exc}. Fix: use solver='dual'") from exc
    if m.Status == gp.GRB.INFEASIBLE:
        raise SolverError("Gurobi: the hard-cut QP (penalty=inf) is infeasible. Fix: pass a finite penalty")
    if m.Status != gp.GRB.OPTIMAL:
        raise SolverError(f"Gurobi stopped with status {m.Status}. Fix: use solver='dual'")
    x = torch.as_tensor(np.asarray(d.X), dtype=A.dtype, device=A.device)
    mu = np.abs(np.asarray(cons.Pi))
    slack_used = elastic and bool(np.any(np.asarray(s.X) > 1e-9))
    return finish(A, r, x, mu, status="elastic" if slack_used else "optimal", iterations=int(m.BarIterCount))


__all__ = ["solve", "PIP_LICENCE_LIMIT"]
