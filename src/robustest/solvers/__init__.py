"""LP/MILP solvers behind one small matrix-level interface (HiGHS by default, Gurobi optional).

    >>> from robustest.solvers import Problem, open_solver
    >>> p = Problem()
    >>> x = p.add_vars([0.0, 0.0], [1.0, 1.0], integer=True)
    >>> _ = p.add_rows([0, 0], [int(x[0]), int(x[1])], [1.0, 1.0], lo=[-float("inf")], hi=[1.5])
    >>> open_solver(p, "highs").minimize({int(x[0]): -1.0, int(x[1]): -1.0}).objective
    -1.0
"""

from .base import Problem, Solver, SolveResult, open_solver

__all__ = ["Problem", "SolveResult", "Solver", "open_solver"]
