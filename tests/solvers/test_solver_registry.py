"""Every backend of the solver registry solves the same small LP, MILP, QP and MIQP to the same optimum
(worked out by hand below), or refuses the kinds it does not declare with an error that names one that
does; and every backend solves the repair's least-norm QP to the same step. Gurobi is skipped when
gurobipy is missing or its licence refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustest.errors import SolverUnavailable
from robustest.solvers import BACKENDS, Problem, backend, open_solver
from robustest.solvers.least_norm import solve_least_norm


def _available(name: str) -> None:
    if name == "gurobi":
        pytest.importorskip("gurobipy")


def _two_rows(integer: bool) -> Problem:
    """0 <= x, y <= 10 with ``x - y <= 1`` (row 0) and ``x + 2y >= 2`` (row 1)."""
    p = Problem()
    p.add_vars([0.0, 0.0], [10.0, 10.0], integer=integer)
    p.add_rows([0, 0, 1, 1], [0, 1, 0, 1], [1.0, -1.0, 1.0, 2.0], lo=[-np.inf, 2.0], hi=[1.0, np.inf])
    return p


# kind -> (integer variables, linear cost, quadratic diagonal, optimum, the optimum's row multipliers)
CASES = {
    # min -x + 2y: both rows active at (4/3, 1/3), value -2/3. Raising row 0's upper bound by t gives
    # -(2 + 4t)/3, raising row 1's lower bound (-2 + t)/3: the multipliers are -4/3 and 1/3.
    "lp": (False, {0: -1.0, 1: 2.0}, None, -2.0 / 3.0, [-4.0 / 3.0, 1.0 / 3.0]),
    # integer points: y = 0 breaks a row for every x, (2, 1) gives 0, a larger y more
    "milp": (True, {0: -1.0, 1: 2.0}, None, 0.0, None),
    # min 1/2 (2x^2 + y^2) - 2x: the unconstrained (1, 0) breaks row 1; on x + 2y = 2 the KKT conditions
    # 2x - 2 = lam, y = 2 lam give lam = 2/9, (x, y) = (10/9, 4/9) and the value -8/9
    "qp": (False, {0: -2.0}, {0: 2.0, 1: 1.0}, -8.0 / 9.0, [0.0, 2.0 / 9.0]),
    # its integer points: (1, 1) gives -1/2, (0, 1) and (2, 1) 1/2, (2, 0) breaks row 0
    "miqp": (True, {0: -2.0}, {0: 2.0, 1: 1.0}, -0.5, None),
}


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_backend_solves_each_kind_it_declares_to_the_same_optimum(name: str, kind: str) -> None:
    _available(name)
    integer, cost, quadratic, optimum, duals = CASES[kind]
    p = _two_rows(integer)
    if kind not in backend(name).kinds:
        with pytest.raises(SolverUnavailable, match=f"solver='{name}'.*Fix: use solver="):
            open_solver(p, name).minimize(cost, quadratic=quadratic)
        return
    try:
        res = open_solver(p, name).minimize(cost, quadratic=quadratic, offset=1.0)
    except SolverUnavailable as err:  # a licence that does not cover even this
        pytest.skip(str(err))
    assert res.status == "optimal"
    assert res.objective == pytest.approx(optimum + 1.0, abs=1e-6)
    assert res.bound <= res.objective + 1e-6
    assert res.x is not None
    value = sum(c * res.x[j] for j, c in cost.items()) + 0.5 * sum(q * res.x[j] ** 2
                                                                  for j, q in (quadratic or {}).items())
    assert value + 1.0 == pytest.approx(res.objective, abs=1e-6)  # the point has the value reported
    if duals is not None:
        assert res.duals == pytest.approx(duals, abs=1e-6)


def test_a_second_objective_on_a_loaded_model_drops_the_quadratic_part() -> None:
    s = open_solver(_two_rows(False), "highs")
    qp = s.minimize(CASES["qp"][1], quadratic=CASES["qp"][2])
    lp = s.minimize(CASES["lp"][1])
    assert qp.objective == pytest.approx(CASES["qp"][3], abs=1e-6)
    assert lp.objective == pytest.approx(CASES["lp"][3], abs=1e-6)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_backend_solves_the_least_norm_qp_to_the_same_step(name: str) -> None:
    _available(name)
    A = torch.tensor([[1.0, 1.0], [1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    # rows 2 and 3 ask for d_0 >= 3 and d_0 <= -3: slack 6 in total for every |d_0| <= 3, so the step is
    # the least norm meeting row 1, d = (1, 1), which leaves rows 2 and 3 short by 2 and 4
    r = np.array([2.0, 3.0, 3.0])
    try:
        sol = solve_least_norm(A, r, penalty=10.0, solver=name)
    except SolverUnavailable as err:
        pytest.skip(str(err))
    assert sol.status == "elastic"
    assert sol.d.tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert sol.slack == pytest.approx(4.0, abs=1e-6)
    assert sol.mu == pytest.approx([1.0, 10.0, 10.0], abs=1e-5)  # d = A^T mu: rows 2 and 3 at the box C
    exact = solve_least_norm(A[:1], r[:1], penalty=float("inf"), solver=name)
    assert exact.status == "optimal" and exact.d.tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


def test_highs_refuses_a_miqp_and_names_gurobi() -> None:
    with pytest.raises(SolverUnavailable, match="does not solve MIQPs.*'gurobi'"):
        open_solver(_two_rows(True), "highs").minimize({}, quadratic={0: 1.0})


def test_a_negative_quadratic_entry_is_refused() -> None:
    with pytest.raises(Exception, match="quadratic"):
        open_solver(_two_rows(False), "highs").minimize({}, quadratic={0: -1.0})


def test_the_vocabulary_names_exactly_the_registered_lp_milp_backends() -> None:
    """``results.SOLVERS`` (the torch-free list the option table validates ``solver=`` against) is the
    registry's LP/MILP backends: a new backend that certifiers can use must be added there too."""
    from robustest.results import SOLVERS

    able = {n for n in BACKENDS if {"lp", "milp"} <= backend(n).kinds}
    assert set(SOLVERS) == able


@pytest.mark.parametrize("name", sorted(n for n in BACKENDS if "milp" in backend(n).kinds))
def test_a_cutoff_below_the_optimum_proves_nothing_is_below_it(name: str) -> None:
    _available(name)
    cost = CASES["milp"][1]  # optimum 0
    try:
        below = open_solver(_two_rows(True), name).minimize(cost, cutoff=-0.5)
        above = open_solver(_two_rows(True), name).minimize(cost, cutoff=0.5)
    except SolverUnavailable as err:
        pytest.skip(str(err))
    assert below.bound >= -0.5 - 1e-9
    assert below.status == "interrupted" or (below.status == "optimal" and below.objective >= -0.5)
    assert above.status == "optimal" and above.objective == pytest.approx(0.0, abs=1e-9)


def test_highs_skips_presolve_for_a_milp_whose_limit_is_shorter_than_presolve_takes() -> None:
    """HiGHS's MIP presolve ignores the clock (4.7 s under a 1.7 s limit on eran 9 x 200): a limit below
    ``PRESOLVE_SECONDS_PER_NONZERO`` per nonzero turns it off; a long one keeps HiGHS's choice."""
    from robustest.solvers.highs import PRESOLVE_SECONDS_PER_NONZERO

    s = open_solver(_two_rows(True), "highs")
    nnz = s._nnz  # type: ignore[attr-defined]
    short = s.minimize(CASES["milp"][1], time_limit=0.5 * PRESOLVE_SECONDS_PER_NONZERO * nnz)
    assert s._h.getOptionValue("presolve")[1] == "off"  # type: ignore[attr-defined]
    long = s.minimize(CASES["milp"][1], time_limit=60.0)
    assert s._h.getOptionValue("presolve")[1] == "choose"  # type: ignore[attr-defined]
    assert long.status == "optimal" and short.status in ("optimal", "time_limit", "interrupted")
