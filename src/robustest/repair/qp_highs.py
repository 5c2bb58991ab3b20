"""The repair QP with HiGHS (highspy), the reference backend used to cross-check the dual solver.

HiGHS minimises ``1/2 x^T Q x + c^T x`` over ``x = (d, s)`` with ``Q = diag(1,..,1, 0,..,0)``, costs
``penalty`` on the slacks ``s >= 0`` (left out when ``penalty`` is infinite), and rows
``A d + s >= r``. The dense A is handed over column-wise, so this backend is meant for small and
medium problems; the dual backend is the one that scales.

    >>> import torch, numpy as np
    >>> sol = solve(torch.tensor([[1.0, 1.0]], dtype=torch.float64), np.array([2.0]))
    >>> [round(v, 6) for v in sol.d.tolist()]
    [1.0, 1.0]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import SolverError, SolverUnavailable
from .qp import QPSolution, check_problem, finish


def solve(A: torch.Tensor, r: np.ndarray, *, penalty: float = 1e6, **_: object) -> QPSolution:
    """Solve ``min 1/2||d||^2 + penalty*sum(s) s.t. A d + s >= r, s >= 0`` with highspy."""
    r = check_problem(A, r, penalty)
    try:
        import highspy
    except ImportError as exc:  # pragma: no cover - highspy is a core dependency
        raise SolverUnavailable("solver='highs' needs highspy. Fix: pip install highspy, or use "
                                "solver='dual'") from exc
    p, n = A.shape
    elastic = math.isfinite(penalty)
    ncol = n + (p if elastic else 0)
    dense = A.detach().double().cpu().numpy()
    inf = highspy.kHighsInf

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = ncol, p
    lp.col_cost_ = np.concatenate([np.zeros(n), np.full(p if elastic else 0, penalty)])
    lp.col_lower_ = np.concatenate([np.full(n, -inf), np.zeros(p if elastic else 0)])
    lp.col_upper_ = np.full(ncol, inf)
    lp.row_lower_ = r
    lp.row_upper_ = np.full(p, inf)
    # column-wise A: the n dense columns of A, then one unit column per slack
    starts = [np.arange(n) * p]
    index = [np.tile(np.arange(p), n)]
    value = [dense.T.reshape(-1)]
    if elastic:
        starts.append(n * p + np.arange(p))
        index.append(np.arange(p))
        value.append(np.ones(p))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate(starts + [np.array([n * p + (p if elastic else 0)])]).astype(np.int32)
    lp.a_matrix_.index_ = np.concatenate(index).astype(np.int32)
    lp.a_matrix_.value_ = np.concatenate(value)

    hess = highspy.HighsHessian()
    hess.dim_ = ncol
    hess.format_ = highspy.HessianFormat.kTriangular
    hess.start_ = np.concatenate([np.arange(n + 1), np.full(ncol - n, n)]).astype(np.int32)
    hess.index_ = np.arange(n, dtype=np.int32)
    hess.value_ = np.ones(n)

    model = highspy.HighsModel()
    model.lp_, model.hessian_ = lp, hess
    from ..solvers.highs import quiet_highs

    h = quiet_highs()
    h.passModel(model)
    h.run()
    state = h.getModelStatus()
    if state == highspy.HighsModelStatus.kInfeasible:
        raise SolverError("HiGHS: the hard-cut QP (penalty=inf) is infeasible. Fix: pass a finite penalty "
                          "(e.g. penalty=1e6) to get the elastic solution and its slack")
    if state != highspy.HighsModelStatus.kOptimal:
        raise SolverError(f"HiGHS stopped with status {h.modelStatusToString(state)}. Fix: use "
                          "solver='dual', or scale the problem")
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    mu = np.abs(np.asarray(sol.row_dual))
    d = torch.as_tensor(x[:n], dtype=A.dtype, device=A.device)
    slack_used = elastic and bool(np.any(x[n:] > 1e-9))
    return finish(A, r, d, mu, status="elastic" if slack_used else "optimal",
                  iterations=int(h.getInfo().qp_iteration_count))


__all__ = ["solve"]
