"""Gurobi backend (``gurobipy``, optional: ``pip install robustest[gurobi]``): LPs, MILPs, QPs and MIQPs.

The pip wheel ships a size-limited licence (2000 variables and 2000 constraints); a larger problem
raises :class:`SolverUnavailable` saying so and how to go on (HiGHS, or a full licence).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import SolverError, SolverUnavailable
from .base import Kind, Problem, Solver, SolveResult

#: The limit of the licence that comes with ``pip install gurobipy``.
PIP_LICENCE_LIMIT = 2000

_FIX = ("Fix: use solver='highs' (installed with robustest), or install a full Gurobi licence "
        "(free for academics: https://www.gurobi.com/academia/) and set GRB_LICENSE_FILE.")


class GurobiSolver(Solver):
    name = "gurobi"
    kinds: frozenset[Kind] = frozenset({"lp", "milp", "qp", "miqp"})
    #: the licence that comes with pip; problems whose size is known up front can be checked against it
    size_limit = PIP_LICENCE_LIMIT

    def __init__(self, problem: Problem, *, threads: int = 1) -> None:
        super().__init__(problem, threads=threads)
        try:
            import gurobipy as gp
            from gurobipy import GRB
        except ImportError as err:
            raise SolverUnavailable("solver='gurobi' needs gurobipy, which is not installed. "
                                    "Fix: pip install gurobipy, or use solver='highs'.") from err
        self._gp, self._GRB = gp, GRB
        lb, ub, integer, (indptr, idx, val), rlo, rhi = problem.arrays()
        try:
            env = gp.Env(empty=True)
            env.setParam("OutputFlag", 0)
            env.start()
            m = gp.Model(env=env)
            m.Params.Threads = int(threads)
            vtype = np.where(integer, GRB.INTEGER, GRB.CONTINUOUS)
            x = m.addMVar(lb.size, lb=lb, ub=ub, vtype=vtype)
            rows = np.repeat(np.arange(rlo.size), np.diff(indptr))
            A = sp.csr_matrix((val, (rows, idx)), shape=(rlo.size, lb.size))
            eq = rlo == rhi
            up = ~eq & np.isfinite(rhi)
            down = ~eq & np.isfinite(rlo)
            #: (row mask, constraints) per sense, to put the multipliers back in row order
            self._constrs = [(mask, m.addMConstr(A[mask], x, sense, rhs[mask]))
                             for mask, sense, rhs in ((eq, "=", rhi), (up, "<", rhi), (down, ">", rlo))
                             if mask.any()]
            m.update()
            self._default_gap = float(m.Params.MIPGap)
        except gp.GurobiError as err:
            raise self._translate(err, problem) from err
        self._m, self._x, self._n = m, x, int(lb.size)
        self._integer = bool(integer.any())

    @staticmethod
    def _translate(err: Exception, problem: Problem) -> Exception:
        text = str(err)
        if "size-limited" in text or "too large" in text.lower() or getattr(err, "errno", None) == 10010:
            return SolverUnavailable(
                f"the Gurobi licence does not cover this model ({problem.num_vars} variables, "
                f"{problem.num_rows} constraints; the pip licence allows {PIP_LICENCE_LIMIT} of each). {_FIX}")
        return SolverError(f"Gurobi failed: {text}")

    def minimize(self, cost: Mapping[int, float], *, quadratic: Mapping[int, float] | None = None,
                 offset: float = 0.0, time_limit: float = float("inf"), stop_below: float | None = None,
                 stop_above: float | None = None, cutoff: float | None = None,
                 gap: float | None = None) -> SolveResult:
        kind = self.kind_of(quadratic)
        gp, GRB, m = self._gp, self._GRB, self._m
        c = np.zeros(self._n)
        for j, v in cost.items():
            c[int(j)] += float(v)
        objective = c @ self._x + float(offset)
        if quadratic:
            cols = np.fromiter((int(j) for j in quadratic), dtype=np.int64, count=len(quadratic))
            q = np.fromiter((float(v) for v in quadratic.values()), dtype=np.float64, count=len(quadratic))
            Q = sp.csr_matrix((0.5 * q, (cols, cols)), shape=(self._n, self._n))
            objective = self._x @ Q @ self._x + objective
        m.setObjective(objective, GRB.MINIMIZE)
        m.Params.TimeLimit = float(max(time_limit, 1e-3)) if np.isfinite(time_limit) else GRB.INFINITY
        m.Params.MIPGap = self._default_gap if gap is None else float(gap)
        m.Params.Cutoff = GRB.INFINITY if cutoff is None else float(cutoff)

        def callback(model: Any, where: int) -> None:
            if where == GRB.Callback.MIP:
                best, bnd = model.cbGet(GRB.Callback.MIP_OBJBST), model.cbGet(GRB.Callback.MIP_OBJBND)
                if (stop_below is not None and best < stop_below) or (stop_above is not None and bnd > stop_above):
                    model.terminate()

        t0 = time.perf_counter()
        try:
            m.optimize(callback if self._integer else None)
        except gp.GurobiError as err:
            raise self._translate(err, self.problem) from err
        seconds = time.perf_counter() - t0
        st = m.Status
        has_x = m.SolCount > 0
        x = np.asarray(self._x.X, dtype=np.float64) if has_x else None
        obj = float(m.ObjVal) if has_x else float("inf")
        bound = float(m.ObjBound) if self._integer else (obj if st == GRB.OPTIMAL else -float("inf"))
        iterations = int(m.BarIterCount if kind == "qp" else m.IterCount)
        if st == GRB.OPTIMAL:
            duals = None if self._integer else self._duals()
            return SolveResult("optimal", obj, bound, x, seconds, duals=duals, iterations=iterations)
        if st == GRB.CUTOFF:  # nothing below the cutoff (a status only a given cutoff leads to)
            proven = -float("inf") if cutoff is None else float(cutoff)
            return SolveResult("interrupted", float("inf"), proven, None, seconds, iterations=iterations)
        if st in (GRB.INFEASIBLE, GRB.INF_OR_UNBD):
            return SolveResult("infeasible", float("inf"), float("inf"), None, seconds, iterations=iterations)
        if st == GRB.TIME_LIMIT:
            return SolveResult("time_limit", obj, bound, x, seconds, iterations=iterations)
        if st == GRB.INTERRUPTED:
            return SolveResult("interrupted", obj, bound, x, seconds, iterations=iterations)
        return SolveResult("error", obj, -float("inf"), x, seconds, f"Gurobi status {st}",
                           iterations=iterations)

    def _duals(self) -> np.ndarray:
        """Row multipliers in row order (a ranged row is two constraints, of which one is active)."""
        out = np.zeros(self.problem.num_rows)
        for mask, constrs in self._constrs:
            np.add.at(out, np.flatnonzero(mask), np.asarray(constrs.Pi, dtype=np.float64))
        return out
