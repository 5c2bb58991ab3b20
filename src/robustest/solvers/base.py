"""The matrix-level solver interface: a :class:`Problem` (bounded, possibly integer variables and
``lo <= A x <= hi`` rows), loaded once into a :class:`Solver` that minimises one objective after another.

Certifiers build one problem per sample and minimise each margin in turn on the same loaded model, so
the solver keeps its presolve/basis work between objectives. Equality rows have ``lo == hi``; a plain
``A x <= b`` row has ``lo = -inf``.

    >>> p = Problem()
    >>> x = p.add_vars([0.0], [2.0])
    >>> open_solver(p, "highs").minimize({int(x[0]): 1.0}, offset=3.0).objective
    3.0
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import invalid_argument

Status = Literal["optimal", "infeasible", "time_limit", "interrupted", "error"]

#: name -> "module:Class" of each backend (imported only when used, so gurobipy stays optional).
BACKENDS: dict[str, str] = {"highs": "robustest.solvers.highs:HighsSolver",
                            "gurobi": "robustest.solvers.gurobi:GurobiSolver"}


@dataclass(frozen=True)
class SolveResult:
    """One minimisation. ``bound`` is a proven lower bound on the optimum (the MIP dual bound; equal to
    ``objective`` for a solved LP); ``objective`` is the best feasible value found (``inf`` if none) and
    ``x`` its point. ``status`` is "optimal", "infeasible", "time_limit", "interrupted" (stopped early on
    request because the answer was already known) or "error" (``message`` says what)."""

    status: Status
    objective: float
    bound: float
    x: np.ndarray | None
    seconds: float
    message: str = ""


class Problem:
    """A growing LP/MILP in matrix form. Variables are added in blocks and named by their indices."""

    def __init__(self) -> None:
        self._lb: list[np.ndarray] = []
        self._ub: list[np.ndarray] = []
        self._int: list[np.ndarray] = []
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._row_lo: list[np.ndarray] = []
        self._row_hi: list[np.ndarray] = []
        self._tight: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.num_vars = 0
        self.num_rows = 0
        self.num_integer = 0

    def add_vars(self, lb: Sequence[float] | np.ndarray, ub: Sequence[float] | np.ndarray, *,
                 integer: bool = False) -> np.ndarray:
        """Add ``len(lb)`` variables with bounds ``lb <= x <= ub``; return their indices."""
        lb = np.asarray(lb, dtype=np.float64).ravel()
        ub = np.asarray(ub, dtype=np.float64).ravel()
        if lb.shape != ub.shape:
            raise invalid_argument("ub", ub.shape, f"the shape of lb {lb.shape}", "pass one bound per variable")
        idx = np.arange(self.num_vars, self.num_vars + lb.size)
        self._lb.append(lb)
        self._ub.append(ub)
        self._int.append(np.full(lb.size, integer))
        self.num_vars += lb.size
        self.num_integer += lb.size if integer else 0
        return idx

    def tighten(self, idx: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> None:
        """Intersect the bounds of existing variables ``idx`` with ``[lb, ub]``."""
        self._tight.append((np.asarray(idx, dtype=np.int64).ravel(), np.asarray(lb, dtype=np.float64).ravel(),
                            np.asarray(ub, dtype=np.float64).ravel()))

    def add_rows(self, rows: Sequence[int] | np.ndarray, cols: Sequence[int] | np.ndarray,
                 vals: Sequence[float] | np.ndarray, *, lo: Sequence[float] | np.ndarray,
                 hi: Sequence[float] | np.ndarray) -> np.ndarray:
        """Add ``len(lo)`` rows ``lo <= A x <= hi`` given as triplets (local row, column, value)."""
        lo = np.asarray(lo, dtype=np.float64).ravel()
        hi = np.asarray(hi, dtype=np.float64).ravel()
        r = np.asarray(rows, dtype=np.int64).ravel()
        c = np.asarray(cols, dtype=np.int64).ravel()
        v = np.asarray(vals, dtype=np.float64).ravel()
        if r.size and (r.max() >= lo.size or c.max() >= self.num_vars or r.min() < 0 or c.min() < 0):
            raise invalid_argument("rows/cols", (int(r.max()), int(c.max())),
                                   f"row < {lo.size} and column < {self.num_vars}",
                                   "add the variables first and number rows from 0")
        self._rows.append((r + self.num_rows, c, v))
        self._row_lo.append(lo)
        self._row_hi.append(hi)
        out = np.arange(self.num_rows, self.num_rows + lo.size)
        self.num_rows += lo.size
        return out

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray],
                              np.ndarray, np.ndarray]:
        """``lb, ub, integer, (indptr, indices, values) CSR rows, row_lo, row_hi``."""
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
        r = cat([t[0] for t in self._rows], np.int64)
        c = cat([t[1] for t in self._rows], np.int64)
        v = cat([t[2] for t in self._rows], np.float64)
        keep = v != 0
        r, c, v = r[keep], c[keep], v[keep]
        order = np.lexsort((c, r))
        r, c, v = r[order], c[order], v[order]
        indptr = np.zeros(self.num_rows + 1, dtype=np.int64)
        np.add.at(indptr, r + 1, 1)
        indptr = np.cumsum(indptr)
        lb, ub = cat(self._lb, np.float64), cat(self._ub, np.float64)
        for idx, lo, hi in self._tight:
            np.maximum.at(lb, idx, lo)
            np.minimum.at(ub, idx, hi)
        return (lb, ub, cat(self._int, bool),
                (indptr, c, v), cat(self._row_lo, np.float64), cat(self._row_hi, np.float64))


class Solver(ABC):
    """A loaded problem. ``minimize`` may be called many times with different objectives."""

    name = ""

    def __init__(self, problem: Problem, *, threads: int = 1) -> None:
        self.problem = problem
        self.threads = threads

    @abstractmethod
    def minimize(self, cost: Mapping[int, float], *, offset: float = 0.0, time_limit: float = float("inf"),
                 stop_below: float | None = None, stop_above: float | None = None) -> SolveResult:
        """Minimise ``sum(cost[j] * x[j]) + offset``.

        ``stop_below``: stop as soon as a feasible point with objective < this is found.
        ``stop_above``: stop as soon as the proven lower bound exceeds this.
        Both only matter for MILPs; the status is then "interrupted" and the figures are valid.
        """


def open_solver(problem: Problem, solver: str = "highs", *, threads: int = 1) -> Solver:
    """Load ``problem`` into the backend named ``solver`` ("highs" or "gurobi")."""
    if solver not in BACKENDS:
        raise invalid_argument("solver", solver, f"one of {sorted(BACKENDS)}",
                               "use solver='highs' (installed with robustest) or solver='gurobi'")
    module, cls = BACKENDS[solver].split(":")
    return getattr(importlib.import_module(module), cls)(problem, threads=threads)
