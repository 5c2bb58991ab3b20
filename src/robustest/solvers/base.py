"""The matrix-level solver interface: a :class:`Problem` (bounded, possibly integer variables and
``lo <= A x <= hi`` rows), loaded once into a :class:`Solver` that minimises one objective after another.

Certifiers build one problem per sample and minimise each margin in turn on the same loaded model, so
the solver keeps its presolve/basis work between objectives. Equality rows have ``lo == hi``; a plain
``A x <= b`` row has ``lo = -inf``. An objective is linear (an LP or MILP) or has a separable
quadratic part ``1/2 sum q_j x_j^2`` (a convex QP, or a MIQP with integer variables).

    >>> p = Problem()
    >>> x = p.add_vars([0.0], [2.0])
    >>> open_solver(p, "highs").minimize({int(x[0]): 1.0}, offset=3.0).objective
    3.0
    >>> round(open_solver(p, "highs").minimize({int(x[0]): -1.0}, quadratic={int(x[0]): 1.0}).objective, 6)
    -0.5

Backends are registered in :data:`BACKENDS` (name -> "module:Class", imported on first use); each
declares the problem kinds it solves in ``Solver.kinds``. Adding one is one file and one line here (and,
for an LP/MILP backend that ``check(solver=...)`` should accept, its name in the torch-free
``results.SOLVERS``, which tests/solvers/test_solver_registry.py keeps equal to the registry's).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import SolverUnavailable, invalid_argument

Status = Literal["optimal", "infeasible", "time_limit", "interrupted", "error"]
#: what an objective on a problem makes of it: linear or quadratic, without or with integer variables
Kind = Literal["lp", "milp", "qp", "miqp"]

#: name -> "module:Class" of each backend (imported only when used, so gurobipy stays optional).
BACKENDS: dict[str, str] = {"highs": "robustest.solvers.highs:HighsSolver",
                            "gurobi": "robustest.solvers.gurobi:GurobiSolver",
                            "dual": "robustest.solvers.dual:DualSolver"}


@dataclass(frozen=True)
class SolveResult:
    """One minimisation. ``bound`` is a proven lower bound on the optimum (the MIP dual bound; equal to
    ``objective`` for a solved LP); ``objective`` is the best feasible value found (``inf`` if none) and
    ``x`` its point. ``status`` is "optimal", "infeasible", "time_limit", "interrupted" (stopped early on
    request because the answer was already known) or "error" (``message`` says what). ``duals`` are the
    row multipliers of a solved LP/QP (the optimum's derivative by each row's active bound: >= 0 for an
    active ``lo``, <= 0 for an active ``hi``), None for MIPs; ``iterations`` the backend's simplex, QP or
    barrier iteration count."""

    status: Status
    objective: float
    bound: float
    x: np.ndarray | None
    seconds: float
    message: str = ""
    duals: np.ndarray | None = None
    iterations: int = 0


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
    """A loaded problem. ``minimize`` may be called many times with different objectives.

    ``kinds`` are the problem kinds the backend solves; :meth:`kind_of` tells which one an objective makes
    and refuses the others with a clear error. ``size_limit``: the most variables or rows the backend's
    usual licence covers (None: no limit), which callers building big dense problems check up front.
    ``least_norm``: a backend's own method for the repair's least-norm QP
    (:func:`robustest.solvers.least_norm.solve_least_norm`; None: it is solved as a QP ``Problem``)."""

    name = ""
    kinds: frozenset[Kind] = frozenset()
    size_limit: int | None = None
    least_norm: Callable[..., Any] | None = None

    def __init__(self, problem: Problem, *, threads: int = 1) -> None:
        self.problem = problem
        self.threads = threads

    @abstractmethod
    def minimize(self, cost: Mapping[int, float], *, quadratic: Mapping[int, float] | None = None,
                 offset: float = 0.0, time_limit: float = float("inf"), stop_below: float | None = None,
                 stop_above: float | None = None, cutoff: float | None = None,
                 gap: float | None = None) -> SolveResult:
        """Minimise ``sum(cost[j] * x[j]) + 1/2 sum(quadratic[j] * x[j]**2) + offset``.

        ``quadratic``: the diagonal of the (convex: all entries >= 0) Hessian; None or empty for a linear
        objective. ``stop_below``: stop as soon as a feasible point with objective < this is found.
        ``stop_above``: stop as soon as the proven lower bound exceeds this. Both only matter for MIPs;
        the status is then "interrupted" and the figures are valid. ``cutoff``: points whose objective is
        not below this are of no interest; a backend may prune them (Gurobi's ``Cutoff``) or stop once the
        bound passes it (HiGHS: as ``stop_above``). Status "interrupted" then says that no point is below
        it (``bound >= cutoff``; ``objective`` inf or a point above it). ``gap``: the relative MIP gap at
        which the search ends (None: the backend's default).
        """

    def kind_of(self, quadratic: Mapping[int, float] | None) -> Kind:
        """The kind of problem this objective makes; a clear error if the backend cannot solve it."""
        integer = self.problem.num_integer > 0
        kind: Kind = ("miqp" if quadratic else "milp") if integer else ("qp" if quadratic else "lp")
        if any(float(v) < 0 for v in (quadratic or {}).values()):
            raise invalid_argument("quadratic", "a negative entry", "entries >= 0 (a convex objective)",
                                   "minimise a convex quadratic: 1/2 q x^2 with q >= 0")
        if kind not in self.kinds:
            able = sorted(n for n in BACKENDS if n != self.name and kind in backend(n).kinds)
            fix = " or ".join(f"solver='{n}'" for n in able) or "another backend"
            raise SolverUnavailable(f"solver='{self.name}' does not solve {kind.upper()}s. Fix: use {fix}")
        return kind


def backend(solver: str) -> type[Solver]:
    """The backend class registered as ``solver`` (its module is imported here, not before)."""
    if solver not in BACKENDS:
        raise invalid_argument("solver", solver, f"one of {sorted(BACKENDS)}",
                               "use solver='highs' (installed with robustest) or solver='gurobi'")
    module, cls = BACKENDS[solver].split(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def open_solver(problem: Problem, solver: str = "highs", *, threads: int = 1) -> Solver:
    """Load ``problem`` into the backend named ``solver`` (a key of :data:`BACKENDS`)."""
    return backend(solver)(problem, threads=threads)
