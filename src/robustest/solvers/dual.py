"""The fast repair QP: an active-set method on the dual, for few cuts and many parameters.

The primal ``min 1/2||d||^2 + C sum(s)  s.t. A d + s >= r, s >= 0`` has the dual

    minimise_mu  1/2 mu^T G mu - r^T mu   subject to   0 <= mu <= C,   with G = A A^T,  d = A^T mu,

a box QP in one multiplier per cut. There are a few thousand cuts at most while ``n`` (the parameter
count) is 10^4-10^6, so the dual is tiny. Usually few cuts are active at the optimum (the violated
margins and the loss cut), so a primal active-set method on the dual needs only the columns of G of
those cuts: each costs one product ``A a_i`` and is cached, and the free subproblem is a small dense
solve. Pricing frees up to 64 violated multipliers at once (robust cuts make many active together),
falling back to the single most violated one when that would stall. Rows are kept in float64 (float32
products make G indefinite at the level of near-duplicate cuts, and the active set then cycles).
:class:`DualQP` keeps the rows, the cache and the
multipliers between calls, so when the repair adds the cuts of a new iterate the next solve starts from
the previous active set (the warm start the paper suggests).

:class:`DualSolver` is this method's entry in the solver registry (``solver="dual"``): it solves only the
repair's least-norm QP (:func:`robustest.solvers.least_norm.solve_least_norm`), not general problems.

    >>> import torch, numpy as np
    >>> qp = DualQP(penalty=1e6)
    >>> qp.add_rows(torch.tensor([[1.0, 1.0]], dtype=torch.float64), np.array([2.0]))
    >>> qp.solve().d.tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Dict, List, Optional

import numpy as np
import scipy.linalg
import torch

from ..errors import SolverUnavailable
from .base import Kind, Problem, Solver, SolveResult
from .least_norm import QPSolution, check_problem, finish

_PREFETCH = 16  # columns of G computed together (one matrix product instead of many)
_MAX_ADD = 64  # multipliers freed together at most


class DualQP:
    """Incremental dual active-set solver (rows are appended; multipliers and G columns are kept).

    ``penalty`` is the elastic weight C (the box ``mu <= C``); ``tol`` the KKT tolerance relative to
    ``1 + max|r|``.
    """

    def __init__(self, *, penalty: float = 1e6, tol: float = 1e-10, max_iter: Optional[int] = None):
        self.penalty = float(penalty)
        self.tol = tol
        self.max_iter = max_iter
        self.A: Optional[torch.Tensor] = None
        self.r = np.zeros(0)
        self.mu = np.zeros(0)
        self._pos: Dict[int, int] = {}
        self._diag = np.zeros(0)  # squared row norms, for scale-aware tolerances
        self._cols = np.zeros((0, 0))  # (rows, cached) float64 columns of G

    @property
    def rows(self) -> int:
        return int(self.r.shape[0])

    def add_rows(self, A_new: torch.Tensor, r_new: np.ndarray) -> None:
        """Append cuts ``A_new d >= r_new``; cached G columns grow by the new rows' inner products."""
        r_new = check_problem(A_new, r_new, self.penalty)
        A_new = A_new.detach().to(torch.float64)  # G in float64: exactly PSD for the rounded rows
        if self.A is None:
            self.A = A_new
        else:
            if A_new.shape[1] != self.A.shape[1]:
                raise ValueError(f"new rows have {A_new.shape[1]} columns, the QP has {self.A.shape[1]}")
            if self._pos:
                cached = torch.as_tensor(list(self._pos), device=self.A.device)
                extra = (A_new @ self.A[cached].T).double().cpu().numpy()
                self._cols = np.vstack([self._cols, extra])
            self.A = torch.cat([self.A, A_new])
        self.r = np.concatenate([self.r, r_new])
        self._diag = np.concatenate([self._diag, A_new.double().pow(2).sum(1).cpu().numpy()])
        self.mu = np.concatenate([self.mu, np.zeros(r_new.shape[0])])
        if not self._pos:
            self._cols = np.zeros((self.rows, 0))

    # ------------------------------------------------------------------ the G cache
    def _ensure(self, idx: np.ndarray) -> None:
        missing = [int(i) for i in idx if int(i) not in self._pos]
        if not missing:
            return
        assert self.A is not None
        cols = (self.A @ self.A[torch.as_tensor(missing, device=self.A.device)].T).double().cpu().numpy()
        start = self._cols.shape[1]
        self._cols = np.hstack([self._cols, cols])
        for k, i in enumerate(missing):
            self._pos[i] = start + k

    def _g(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self._cols[np.ix_(rows, np.array([self._pos[int(c)] for c in cols], dtype=np.int64))]

    # ------------------------------------------------------------------ the solve
    def solve(self) -> QPSolution:
        """Solve the current QP from the last multipliers; returns d = A^T mu and the remaining slack."""
        if self.A is None or self.rows == 0:
            raise ValueError("the QP has no rows: call add_rows first")
        p, C, r = self.rows, self.penalty, self.r
        precision = self.tol
        row_scale = np.sqrt(self._diag)
        mu = np.clip(self.mu, 0.0, C)
        state = np.zeros(p, dtype=np.int8)  # 0: mu = 0, 1: free, 2: mu = C
        state[(mu > 0) & (mu < C)] = 1
        state[mu >= C] = 2
        mu[state == 0] = 0.0
        max_iter = self.max_iter or 4 * p + 200
        status = "iteration_limit"
        it = 0
        added = np.zeros(0, dtype=np.int64)  # multipliers freed together in the last pricing step
        added_from = np.zeros(0, dtype=np.int8)
        for it in range(1, max_iter + 1):
            F = np.flatnonzero(state == 1)
            U = np.flatnonzero(state == 2)
            if F.size:
                self._ensure(np.concatenate([F, U]))
                G_FF = self._g(F, F)
                G_FF = 0.5 * (G_FF + G_FF.T)
                rhs = r[F] - (self._g(F, U) @ mu[U] if U.size else 0.0)
                target = _spd_solve(G_FF, rhs, precision)
                low, high = target < 0.0, target > C
                if low.any() or high.any():
                    if added.size > 1 and bool(np.isin(F[low | high], added).any()):
                        # a jointly freed multiplier wants to go back at once (a zero step): free only
                        # the most violated one, for which the step is guaranteed to make progress
                        state[added[1:]] = added_from[1:]
                        added = added[:1]
                        continue
                    # step to the first bound on the way, then drop that multiplier
                    cur = mu[F]
                    alpha = np.full(F.size, np.inf)
                    alpha[low] = cur[low] / (cur[low] - target[low])
                    alpha[high] = (C - cur[high]) / (target[high] - cur[high])
                    a = float(np.clip(alpha.min(), 0.0, 1.0))
                    mu[F] = cur + a * (target - cur)
                    hit = alpha <= a * (1 + 1e-12) + 1e-300
                    to_low, to_high = F[hit & low], F[hit & high]
                    state[to_low], mu[to_low] = 0, 0.0
                    state[to_high], mu[to_high] = 2, C
                    added = np.zeros(0, dtype=np.int64)
                    continue
                mu[F] = target
            act = np.flatnonzero(state != 0)
            if act.size:
                self._ensure(act)
                g = self._cols[:, [self._pos[int(i)] for i in act]] @ mu[act] - r
            else:
                g = -r
            d_norm = math.sqrt(max(float(mu[act] @ (g[act] + r[act])), 0.0)) if act.size else 0.0
            tol = precision * (1.0 + np.abs(r) + row_scale * d_norm)
            viol = np.where(state == 0, -g - tol, np.where(state == 2, g - tol, -1.0))
            order = np.argsort(-viol)
            if viol[order[0]] <= 0.0:
                status = "elastic" if (state == 2).any() else "optimal"
                break
            # price several violated multipliers in at once (many cuts are often active together);
            # the most violated comes first so that the fallback above can keep just it
            top = order[: max(1, min(_MAX_ADD, int((viol > 0.1 * viol[order[0]]).sum())))]
            self._ensure(order[:_PREFETCH][viol[order[:_PREFETCH]] > 0.0])
            self._ensure(top)
            added, added_from = top, state[top].copy()
            state[top] = 1
        self.mu = mu
        act = np.flatnonzero(mu > 0)
        assert self.A is not None
        if act.size:
            idx = torch.as_tensor(act, device=self.A.device)
            d = self.A[idx].T @ torch.as_tensor(mu[act], dtype=self.A.dtype, device=self.A.device)
        else:
            d = torch.zeros(self.A.shape[1], dtype=self.A.dtype, device=self.A.device)
        sol = finish(self.A, r, d, mu, status=status, iterations=it)
        return sol


def _spd_solve(G: np.ndarray, rhs: np.ndarray, precision: float) -> np.ndarray:
    """Solve ``G x = rhs`` for a (numerically) positive semi-definite G with a ridge at G's precision."""
    ridge = precision * max(1e-12, float(np.abs(np.diag(G)).max()))
    try:
        factor = scipy.linalg.cho_factor(G + ridge * np.eye(G.shape[0]), check_finite=False)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(G, rhs, rcond=None)[0]  # type: ignore[no-any-return]
    x = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    for _ in range(2):  # iterative refinement removes the ridge's bias where G is well conditioned
        x = x + scipy.linalg.cho_solve(factor, rhs - G @ x, check_finite=False)
    return x  # type: ignore[no-any-return]


def solve(A: torch.Tensor, r: np.ndarray, *, penalty: float = 1e6, warm: Optional[np.ndarray] = None,
          tol: float = 1e-10) -> QPSolution:
    """One-shot dual solve of ``min 1/2||d||^2 + penalty*sum(s) s.t. A d + s >= r`` (see module doc)."""
    qp = DualQP(penalty=penalty, tol=tol)
    qp.add_rows(A, r)
    if warm is not None:
        qp.mu = np.asarray(warm, dtype=np.float64).copy()
    return qp.solve()


class DualSolver(Solver):
    """The registry entry of the dual active-set method: the least-norm QP only (see the module doc)."""

    name = "dual"
    kinds: frozenset[Kind] = frozenset()  # no general LP/MILP/QP: only least_norm below

    def __init__(self, problem: Problem, *, threads: int = 1) -> None:
        raise SolverUnavailable(_ONLY_LEAST_NORM)

    @staticmethod
    def least_norm(A: torch.Tensor, r: np.ndarray, *, penalty: float) -> QPSolution:
        """``min 1/2||d||^2 + penalty*sum(s) s.t. A d + s >= r`` from scratch (``r`` already checked)."""
        return solve(A, r, penalty=penalty)

    def minimize(self, cost: Mapping[int, float], *, quadratic: Mapping[int, float] | None = None,
                 offset: float = 0.0, time_limit: float = float("inf"), stop_below: float | None = None,
                 stop_above: float | None = None, cutoff: float | None = None,
                 gap: float | None = None) -> SolveResult:
        raise SolverUnavailable(_ONLY_LEAST_NORM)  # pragma: no cover - the constructor refuses already


_ONLY_LEAST_NORM = ("solver='dual' solves only the repair's least-norm QP "
                    "(robustest.solvers.least_norm.solve_least_norm), not LP/MILP/QP problems. "
                    "Fix: use solver='highs' or solver='gurobi'")


__all__: List[str] = ["DualQP", "DualSolver", "solve"]
