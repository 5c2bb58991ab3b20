"""LP/MILP/QP solvers behind one small matrix-level interface (HiGHS by default, Gurobi optional), and the
repair's least-norm QP on any of them (or on the dual active-set method, ``solver="dual"``).

    >>> from robustest.solvers import Problem, open_solver
    >>> p = Problem()
    >>> x = p.add_vars([0.0, 0.0], [1.0, 1.0], integer=True)
    >>> _ = p.add_rows([0, 0], [int(x[0]), int(x[1])], [1.0, 1.0], lo=[-float("inf")], hi=[1.5])
    >>> open_solver(p, "highs").minimize({int(x[0]): -1.0, int(x[1]): -1.0}).objective
    -1.0
"""

from .base import BACKENDS, Problem, Solver, SolveResult, backend, open_solver

__all__ = ["BACKENDS", "Problem", "SolveResult", "Solver", "backend", "open_solver"]
