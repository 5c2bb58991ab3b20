"""The repair QP backends: the dual active-set solver against HiGHS (and Gurobi where licensed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.errors import InvalidArgument, SolverError, SolverUnavailable
from robustest.repair.qp import get_solver
from robustest.solvers.dual import DualQP


def _instance(seed: int, p: int, n: int, infeasible: bool = False):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(p, n, generator=g, dtype=torch.float64)
    r = torch.randn(p, generator=g, dtype=torch.float64).numpy()
    if infeasible:  # a row and its negation that both ask for >= 1: no d meets both
        A = torch.cat([A, A[:1], -A[:1]])
        r = np.concatenate([r, [1.0, 1.0]])
    return A, r


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), p=st.integers(1, 40), n=st.integers(2, 30),
       penalty=st.sampled_from([1e6, 3.0, 0.5]))
def test_dual_agrees_with_highs(seed, p, n, penalty):
    if p > n:  # probably infeasible: HiGHS's QP solver fails ("Solve error") on a 1e6 slack cost there
        penalty = min(penalty, 3.0)
    A, r = _instance(seed, p, n)
    dual = get_solver("dual")(A, r, penalty=penalty)
    try:
        highs = get_solver("highs")(A, r, penalty=penalty)
    except SolverError:
        # HiGHS's QP solver can stop with "Solve error" on a 1e6 slack cost even for feasible cuts (seed=140,
        # p=7, n=16): the reference is missing there, and the dual is still judged by its KKT conditions below
        if penalty < 1e5:
            raise
        highs = None
    if highs is not None:
        assert torch.allclose(dual.d, highs.d, atol=1e-6, rtol=1e-6)
    # KKT of the dual: mu in [0, C], complementarity with the row residuals
    resid = (A @ dual.d).numpy() - r
    assert np.all(dual.mu >= 0) and np.all(dual.mu <= penalty * (1 + 1e-12))
    interior = (dual.mu > 1e-9) & (dual.mu < penalty * (1 - 1e-9))
    assert np.allclose(resid[interior], 0.0, atol=1e-7)
    assert np.all(resid[dual.mu <= 1e-12] >= -1e-7) or dual.status == "elastic"
    assert torch.allclose(dual.d, A.T @ torch.as_tensor(dual.mu), atol=1e-9)


def test_infeasible_cuts_report_slack_instead_of_failing():
    A, r = _instance(3, 5, 4, infeasible=True)
    sol = get_solver("dual")(A, r, penalty=10.0)
    ref = get_solver("highs")(A, r, penalty=10.0)
    assert sol.status == "elastic" and sol.slack > 0.5
    assert torch.allclose(sol.d, ref.d, atol=1e-6)


def test_warm_started_increments_equal_a_solve_from_scratch():
    A, r = _instance(7, 60, 25)
    qp = DualQP()
    for lo, hi in ((0, 20), (20, 40), (40, 60)):
        qp.add_rows(A[lo:hi], r[lo:hi])
        inc = qp.solve()
    cold = get_solver("dual")(A, r)
    assert torch.allclose(inc.d, cold.d, atol=1e-8)


def test_float32_rows_are_solved_in_float64():
    A, r = _instance(11, 30, 200)
    sol = get_solver("dual")(A.float(), r)
    ref = get_solver("highs")(A.float().double(), r)
    assert sol.d.dtype == torch.float64
    assert torch.allclose(sol.d, ref.d, atol=1e-6)


def test_gurobi_agrees_or_says_why_not():
    pytest.importorskip("gurobipy")
    A, r = _instance(5, 8, 6)
    try:
        sol = get_solver("gurobi")(A, r, penalty=100.0)
    except SolverUnavailable as exc:  # no licence at all on this machine
        pytest.skip(str(exc))
    assert torch.allclose(sol.d, get_solver("dual")(A, r, penalty=100.0).d, atol=1e-4)


def test_badly_scaled_infeasible_elastic_qp_agrees_with_gurobi():
    pytest.importorskip("gurobipy")
    A, r = _instance(200, 38, 24)  # 38 random cuts in 24 variables, slack cost 1e6
    sol = get_solver("dual")(A, r, penalty=1e6)
    try:
        ref = get_solver("gurobi")(A, r, penalty=1e6)
    except SolverUnavailable as exc:
        pytest.skip(str(exc))
    assert sol.status == ref.status == "elastic"
    assert torch.allclose(sol.d, ref.d, atol=1e-6)


def test_gurobi_size_limit_is_a_clear_error():
    pytest.importorskip("gurobipy")
    A, r = _instance(1, 3, 2500)
    with pytest.raises(SolverUnavailable, match="2000.*solver='dual'"):
        get_solver("gurobi")(A, r)


def test_bad_solver_name_and_bad_rows():
    with pytest.raises(InvalidArgument, match="solver='cplex'"):
        get_solver("cplex")
    with pytest.raises(InvalidArgument, match="one entry per row"):
        get_solver("dual")(torch.ones(3, 2), np.ones(2))
    with pytest.raises(InvalidArgument, match="non-finite"):
        get_solver("dual")(torch.tensor([[float("nan"), 1.0]]), np.ones(1))
