"""HiGHS backend (``highspy``, installed with robustest): the default LP/MILP/QP solver.

The time limit is HiGHS's own ``time_limit`` option; early stops use the MIP interrupt callback, which
HiGHS calls with the current primal and dual bounds. A quadratic objective is passed as HiGHS's Hessian
(lower triangle, column-wise; here only its diagonal); HiGHS has no MIQP solver.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

import numpy as np

from ..errors import SolverError, SolverUnavailable
from .base import Kind, Problem, Solver, SolveResult

try:
    import highspy
except ImportError:  # pragma: no cover - highspy is a dependency
    highspy = None  # type: ignore[assignment]


_BANNER_SHOWN = False

#: HiGHS's MIP presolve does not look at the clock: on eran's 9 x 200 MILP (454k nonzeros) it ran 4.7 s
#: under a 1.7 s limit (loaded core), about 1e-5 s per nonzero. A MILP whose time limit is below this
#: many seconds per nonzero runs without presolve, so the limit holds (the simplex checks the clock).
PRESOLVE_SECONDS_PER_NONZERO = 1e-5


def quiet_highs() -> "highspy.Highs":
    """A ``highspy.Highs`` with its log off. HiGHS prints its banner ("Running HiGHS ...") to the
    process's stdout when the first instance is made, before any option can be set, so the first one is
    made with file descriptor 1 pointed at /dev/null (a CLI's ``--json -`` output or pytest's captured
    output stays clean); the banner is printed once per process, so later ones need nothing.

        >>> isinstance(quiet_highs(), highspy.Highs)
        True
    """
    global _BANNER_SHOWN
    if highspy is None:  # pragma: no cover
        raise SolverUnavailable("solver='highs' needs highspy, which is not installed. "
                                "Fix: pip install highspy")
    if _BANNER_SHOWN:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _BANNER_SHOWN = True
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    return h


class HighsSolver(Solver):
    name = "highs"
    kinds: frozenset[Kind] = frozenset({"lp", "milp", "qp"})

    def __init__(self, problem: Problem, *, threads: int = 1) -> None:
        super().__init__(problem, threads=threads)
        if highspy is None:  # pragma: no cover
            raise SolverUnavailable("solver='highs' needs highspy, which is not installed. "
                                    "Fix: pip install highspy")
        lb, ub, integer, (indptr, idx, val), rlo, rhi = problem.arrays()
        self._integer = bool(integer.any())
        #: the model as the arrays of HiGHS's array-level passModel (one copy each, no per-entry conversion);
        #: rows are row-wise with one start per row; integrality: 1 integer, 0 continuous, one per column
        self._lp = (np.zeros(lb.size), lb, ub, rlo, rhi, indptr[:-1].astype(np.int32), idx.astype(np.int32),
                    val, integer.astype(np.int32))
        self._n, self._m, self._nnz = int(lb.size), int(rlo.size), int(val.size)
        self._stop: tuple = (None, None)
        self._until = float("inf")  # the wall-clock end of the current run (perf_counter)
        self._hessian: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # diagonal, see _set_hessian
        self._h: highspy.Highs | None = None  # loaded by the first minimize, with that call's Hessian

    def _load(self) -> highspy.Highs:
        """A fresh HiGHS instance holding the model (with the current Hessian, if any). MILPs get a new
        one per objective: after an interrupted run HiGHS hands the next run's callback stale bounds,
        which would stop it at once."""
        h = quiet_highs()
        h.setOptionValue("threads", int(self.threads))
        rowwise, minimize = int(highspy.MatrixFormat.kRowwise), int(highspy.ObjSense.kMinimize)
        cost, lb, ub, rlo, rhi, start, index, value, integrality = self._lp
        if self._hessian is None:
            status = h.passModel(self._n, self._m, self._nnz, rowwise, minimize, 0.0, cost, lb, ub, rlo, rhi,
                                 start, index, value, integrality)
        else:
            q_start, q_index, q_value = self._hessian
            triangular = int(highspy.HessianFormat.kTriangular)
            status = h.passModel(self._n, self._m, self._nnz, int(q_value.size), rowwise, triangular, minimize,
                                 0.0, cost, lb, ub, rlo, rhi, start, index, value, q_start, q_index, q_value,
                                 integrality)
        if status == highspy.HighsStatus.kError:
            raise SolverError(f"HiGHS rejected the model ({self._n} columns, {self._m} rows)")
        if self._integer:
            h.cbMipInterrupt.subscribe(self._on_mip)
        # HiGHS checks its own time limit seldom (a 1 s MILP limit ran 3.2 s on a loaded core): the
        # interrupt callbacks check the wall clock too
        h.cbSimplexInterrupt.subscribe(self._on_time)
        return h

    def _on_time(self, event: object) -> None:
        if time.perf_counter() >= self._until:
            event.data_in.user_interrupt = True  # type: ignore[attr-defined]

    def _on_mip(self, event: object) -> None:
        below, above = self._stop
        out = event.data_out  # type: ignore[attr-defined]
        if (below is not None and out.mip_primal_bound < below) or \
                (above is not None and out.mip_dual_bound > above) or time.perf_counter() >= self._until:
            event.data_in.user_interrupt = True  # type: ignore[attr-defined]

    def _objective(self, h: highspy.Highs, c: np.ndarray, offset: float, time_limit: float,
                   gap: float | None) -> None:
        """Set the cost vector, its constant, the time limit (at least 1 ms; inf for none) and the MIP gap."""
        h.changeColsCost(self._n, np.arange(self._n, dtype=np.int32), c)
        h.changeObjectiveOffset(float(offset))
        h.setOptionValue("time_limit", float(max(time_limit, 1e-3)) if np.isfinite(time_limit) else float("inf"))
        if self._integer:
            short = time_limit < PRESOLVE_SECONDS_PER_NONZERO * self._nnz
            h.setOptionValue("presolve", "off" if short else "choose")
        if gap is not None:
            h.setOptionValue("mip_rel_gap", float(gap))

    def _set_hessian(self, quadratic: Mapping[int, float] | None) -> bool:
        """Make ``quadratic`` the model's Hessian diagonal; True when the model must be loaded afresh."""
        if not quadratic and self._hessian is None:
            return False
        if not quadratic:
            self._hessian = None
            return True
        q = np.zeros(self._n)
        for j, v in quadratic.items():
            q[int(j)] += float(v)
        cols = np.flatnonzero(q)
        # lower triangle column-wise, here only the diagonal: one start per column
        self._hessian = (np.searchsorted(cols, np.arange(self._n)).astype(np.int32), cols.astype(np.int32),
                         q[cols])
        return True

    def minimize(self, cost: Mapping[int, float], *, quadratic: Mapping[int, float] | None = None,
                 offset: float = 0.0, time_limit: float = float("inf"), stop_below: float | None = None,
                 stop_above: float | None = None, cutoff: float | None = None,
                 gap: float | None = None) -> SolveResult:
        kind = self.kind_of(quadratic)
        if self._set_hessian(quadratic) or self._h is None or self._integer:  # a MIP: a fresh one (see _load)
            self._h = self._load()
        h = self._h
        c = np.zeros(self._n)
        for j, v in cost.items():
            c[int(j)] += float(v)
        self._objective(h, c, offset, time_limit, gap)
        above = [v for v in (stop_above, cutoff) if v is not None]
        self._stop = (stop_below, min(above) if above else None)
        t0 = time.perf_counter()
        self._until = t0 + time_limit if np.isfinite(time_limit) else float("inf")
        M = highspy.HighsModelStatus
        try:
            h.run()
            if h.getModelStatus() == M.kInfeasible:
                # Certifiers read "infeasible" as "no input reaches this": a proof. HiGHS 1.16's presolve has
                # declared a feasible MILP infeasible for one objective of a model it solved for others
                # (tests/certify/test_certify_soundness.py, conv/BN/avg-pool net seed 27); only an
                # infeasibility that a run without presolve confirms is reported.
                h = self._h = self._load()
                self._objective(h, c, offset, time_limit - (time.perf_counter() - t0), gap)
                h.setOptionValue("presolve", "off")
                h.run()
                h.setOptionValue("presolve", "choose")
        except Exception as err:  # noqa: BLE001 - any backend failure becomes a solver error result
            return SolveResult("error", float("inf"), -float("inf"), None, time.perf_counter() - t0, str(err))
        seconds = time.perf_counter() - t0
        ms = h.getModelStatus()
        info = h.getInfo()
        has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
        x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_x else None
        obj = float(info.objective_function_value) if has_x else float("inf")
        iterations = int(info.qp_iteration_count if kind == "qp" else info.simplex_iteration_count)
        if self._integer:
            bound = float(info.mip_dual_bound)
        else:
            bound = obj if ms == M.kOptimal else -float("inf")
        if ms == M.kOptimal:
            duals = None
            if self._integer and not (np.isfinite(bound) and bound <= obj):
                # HiGHS sometimes reports no dual bound when presolve solved the MIP: use the gap it guarantees
                slack = max(float(h.getOptionValue("mip_abs_gap")[1]),
                            float(h.getOptionValue("mip_rel_gap")[1]) * abs(obj))
                bound = obj - slack
            if not self._integer and info.dual_solution_status == 2:  # kSolutionStatusFeasible
                duals = np.asarray(h.getSolution().row_dual, dtype=np.float64)
            return SolveResult("optimal", obj, bound if self._integer else obj, x, seconds, duals=duals,
                               iterations=iterations)
        if ms == M.kInfeasible:
            return SolveResult("infeasible", float("inf"), float("inf"), None, seconds, iterations=iterations)
        if ms == M.kTimeLimit or (ms in (M.kInterrupt, getattr(M, "kHighsInterrupt", M.kInterrupt))
                                  and time.perf_counter() >= self._until):
            return SolveResult("time_limit", obj, bound, x, seconds, iterations=iterations)
        if ms in (M.kInterrupt, getattr(M, "kHighsInterrupt", M.kInterrupt)):
            return SolveResult("interrupted", obj, bound, x, seconds, iterations=iterations)
        message = f"HiGHS status {h.modelStatusToString(ms)}"
        return SolveResult("error", obj, -float("inf"), x, seconds, message, iterations=iterations)
