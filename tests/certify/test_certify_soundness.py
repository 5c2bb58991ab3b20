"""Soundness of every bound (the product): on random small networks, every bound contains the outputs at
random and attacked points of the ball, and IBP ⊇ CROWN ⊇ LP ⊇ MILP optimum on margins."""

from __future__ import annotations

import torch
from certify_nets import build, extreme_points, nets
from hypothesis import example, given, settings
from hypothesis import strategies as st

import robustest
from robustest.certify.crown import crown, intermediate_bounds
from robustest.certify.encode import numpy_boxes
from robustest.certify.lp import lp_bounds
from robustest.certify.milp import milp_minimum
from robustest.graph import read_model
from robustest.spec import LpBall, margin_matrix

TOL = 1e-6


def _inputs(shape, n: int, seed: int) -> torch.Tensor:
    return torch.rand((n,) + shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@settings(max_examples=20)
@given(net=nets, eps=st.sampled_from([0.0, 0.02, 0.1, 0.3, 2.0]), norm=st.sampled_from(["linf", "l2", "l1"]),
       method=st.sampled_from(["ibp", "crown", "alpha-crown"]), seed=st.integers(0, 1000))
def test_bounds_contain_sampled_and_attacked_outputs(net, eps, norm, method, seed):
    model, shape = net
    x = _inputs(shape, 3, seed)
    y = torch.randint(0, 3, (3,), generator=torch.Generator().manual_seed(seed))
    b = robustest.bounds(model, x, eps=eps, norm=norm, method=method, labels=y)
    ball = LpBall(eps, norm)
    C = torch.cat([torch.eye(3, dtype=torch.float64).expand(3, 3, 3), margin_matrix(y, 3).double()], 1)
    pts, vals = extreme_points(model, x, ball, C, seed=seed)
    assert bool(ball.contains(pts.reshape((-1,) + shape), x.repeat_interleave(pts.shape[1], 0)).all())
    lower = torch.cat([b.lower, b.margins_lower], 1).unsqueeze(1)
    upper = torch.cat([b.upper, b.margins_upper], 1).unsqueeze(1)
    slack = TOL * (1 + vals.abs())
    assert bool((vals >= lower - slack).all()), float((lower - vals).max())
    assert bool((vals <= upper + slack).all()), float((vals - upper).max())


@settings(max_examples=10)
@given(net=nets, eps=st.sampled_from([0.03, 0.1]), norm=st.sampled_from(["linf", "l2", "l1"]),
       seed=st.integers(0, 1000))
# HiGHS's presolve called this feasible MILP infeasible for one margin (a false proof); the backend re-checks
@example(net=build(kind="conv", bn=True, residual=False, pool="avg", seed=27), eps=0.1, norm="linf", seed=79)
@example(net=build(kind="conv", bn=True, residual=False, pool="max", seed=20683), eps=0.1, norm="linf", seed=657)
def test_ibp_contains_crown_contains_lp_contains_milp(net, eps, norm, seed):
    model, shape = net
    x = _inputs(shape, 1, seed)
    y = torch.tensor([seed % 3])
    ball = LpBall(eps, norm)
    graph = read_model(model, x)
    C = margin_matrix(y, 3).double()
    ibp = robustest.bounds(model, x, eps=eps, norm=norm, method="ibp", labels=y)
    reported = robustest.bounds(model, x, eps=eps, norm=norm, method="crown", labels=y)
    boxes = intermediate_bounds(graph, x, ball)
    raw = crown(graph, x, ball, C, boxes=boxes)
    lp_lo, lp_hi = lp_bounds(graph, x, ball, C, boxes)
    nb = numpy_boxes(boxes, 0)
    mins, duals = [], []
    for m in range(C.shape[1]):
        res, point = milp_minimum(graph, x[0], ball, C[0, m].numpy(), nb)
        assert res.status == "optimal" and res.bound <= res.objective
        mins.append(res.objective)
        duals.append(res.bound)
        # the MILP's point lies in the ball's box, up to the solver's feasibility tolerance (2.4e-7 on the
        # conv/bn/max-pool example below; a counterexample is projected into the ball and re-checked before it
        # counts), and its margin is the reported objective
        lo, hi = ball.box(x)
        assert bool(((point >= lo[0] - 1e-6) & (point <= hi[0] + 1e-6)).all())
        if norm == "l1":  # encoded exactly: the optimum lies in the ball itself
            assert bool(ball.contains(point.unsqueeze(0), x)[0])
        with torch.no_grad():
            assert abs(float(C[0, m] @ model(point.unsqueeze(0))[0]) - res.objective) <= 1e-5 * (1 + abs(res.objective))
    milp = torch.tensor(mins, dtype=torch.float64)
    tol = 1e-5
    assert bool((ibp.margins_lower[0] <= reported.margins_lower[0] + tol).all())
    assert bool((ibp.margins_upper[0] >= reported.margins_upper[0] - tol).all())
    if norm != "l2":  # for l2, CROWN uses the ball itself (dual norm), LP/MILP its outer box: not nested
        assert bool((raw.lower[0] <= lp_lo[0] + tol * (1 + lp_lo[0].abs())).all())
        assert bool((raw.upper[0] >= lp_hi[0] - tol * (1 + lp_hi[0].abs())).all())
    assert bool((lp_lo[0] <= milp + tol * (1 + milp.abs())).all())
    if norm != "l2":  # the MILP is exact on linf and l1 balls, so its bound is below every attack
        _, vals = extreme_points(model, x, ball, C, seed=seed)
        # (HiGHS stops within a relative gap of 1e-4: its proven bound, not its objective, is the sound figure)
        assert bool((torch.tensor(duals, dtype=torch.float64) <= vals[0].min(0).values + 1e-9).all())
