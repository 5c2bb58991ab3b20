"""The matrix-level solver interface on HiGHS (and Gurobi when installed): statuses, early stops, the
licence limit message."""

from __future__ import annotations

import numpy as np
import pytest

from robustest.errors import InvalidArgument, SolverUnavailable
from robustest.solvers import Problem, open_solver

BACKENDS = ["highs", "gurobi"]


def knapsack(n: int = 30) -> Problem:
    rng = np.random.default_rng(0)
    p = Problem()
    x = p.add_vars(np.zeros(n), np.ones(n), integer=True)
    p.add_rows(np.zeros(n, dtype=int), x, rng.uniform(1, 10, n), lo=[-np.inf], hi=[40.0])
    return p


def _open(p: Problem, name: str):
    if name == "gurobi":
        pytest.importorskip("gurobipy")
    return open_solver(p, name)


@pytest.mark.parametrize("name", BACKENDS)
def test_lp_mip_and_infeasible(name):
    p = Problem()
    x = p.add_vars([0.0, 0.0], [1.0, 1.0])
    p.add_rows([0, 0], x, [1.0, 1.0], lo=[-np.inf], hi=[1.5])
    s = _open(p, name)
    res = s.minimize({int(x[0]): -1.0, int(x[1]): -1.0})
    assert res.status == "optimal" and res.objective == pytest.approx(-1.5) and res.bound == pytest.approx(-1.5)
    res2 = s.minimize({int(x[0]): 1.0}, offset=2.0)  # a second objective on the same loaded model
    assert res2.objective == pytest.approx(2.0)
    q = Problem()
    y = q.add_vars([0.0], [1.0], integer=True)
    q.add_rows([0], y, [1.0], lo=[0.3], hi=[0.7])
    assert _open(q, name).minimize({int(y[0]): 1.0}).status == "infeasible"


@pytest.mark.parametrize("name", BACKENDS)
def test_mip_bound_is_below_objective_and_early_stop(name):
    rng = np.random.default_rng(1)
    p = knapsack()
    value = {int(j): -float(v) for j, v in enumerate(rng.uniform(1, 10, 30))}
    s = _open(p, name)
    full = s.minimize(value)
    assert full.status == "optimal" and full.bound <= full.objective + 1e-9
    stopped = s.minimize(value, stop_below=0.0)  # any point with objective < 0 ends the search
    assert stopped.status in ("interrupted", "optimal") and stopped.objective < 0
    assert stopped.bound <= full.objective + 1e-6


def test_highs_time_limit_status():
    rng = np.random.default_rng(2)
    n = 60
    p = Problem()
    x = p.add_vars(np.zeros(n), np.ones(n), integer=True)
    W = rng.uniform(1, 10, (8, n))
    for k in range(8):
        p.add_rows(np.zeros(n, dtype=int), x, W[k], lo=[-np.inf], hi=[float(W[k].sum() / 2)])
    res = open_solver(p, "highs").minimize({int(j): -float(v) for j, v in enumerate(rng.uniform(1, 10, n))},
                                           time_limit=1e-3)
    assert res.status in ("time_limit", "optimal")
    assert res.bound <= res.objective + 1e-9


def test_gurobi_size_limit_says_how_to_go_on():
    gp = pytest.importorskip("gurobipy")
    p = Problem()
    x = p.add_vars(np.zeros(2500), np.ones(2500))
    try:
        s = open_solver(p, "gurobi")
        res = s.minimize({int(j): 1.0 for j in x})
    except SolverUnavailable as err:
        assert "solver='highs'" in str(err) and "2000" in str(err)
    else:  # a full licence is installed: the model simply solves
        assert res.status == "optimal"
    del gp


def test_unknown_solver_and_bad_rows():
    p = Problem()
    p.add_vars([0.0], [1.0])
    with pytest.raises(InvalidArgument, match="solver"):
        open_solver(p, "cplex")
    with pytest.raises(InvalidArgument, match="rows/cols"):
        p.add_rows([0], [5], [1.0], lo=[0.0], hi=[1.0])
