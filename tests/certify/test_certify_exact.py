"""The MILP is exact: on tiny networks (1-2 inputs) its optimum equals brute force over a dense grid, and
its point attains the objective. Certificates from every rung are never falsified by attacks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from certify_nets import extreme_points, nets
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import robustest
from robustest.certify.crown import intermediate_bounds
from robustest.certify.encode import numpy_boxes
from robustest.certify.milp import milp_minimum, milp_verify
from robustest.graph import read_model
from robustest.spec import LpBall, margin_matrix


def tiny(d: int, h: int, seed: int, maxpool: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 3)).double().eval()


def grid(lo: torch.Tensor, hi: torch.Tensor, n: int) -> torch.Tensor:
    axes = [torch.linspace(float(a), float(b), n, dtype=torch.float64) for a, b in zip(lo, hi)]
    return torch.cartesian_prod(*axes).reshape(-1, len(axes))


def lipschitz(model: nn.Module, c: torch.Tensor) -> float:
    """An upper bound on the l2 Lipschitz constant of ``c @ model`` (product of spectral norms)."""
    L = float(c.norm())
    for m in model:
        if isinstance(m, nn.Linear):
            L *= float(torch.linalg.matrix_norm(m.weight.detach(), 2))
    return L


@settings(max_examples=12)
@given(d=st.sampled_from([1, 2]), h=st.integers(2, 6), seed=st.integers(0, 10_000),
       eps=st.sampled_from([0.05, 0.2, 0.5]), label=st.integers(0, 2))
def test_milp_optimum_equals_brute_force(d, h, seed, eps, label):
    model = tiny(d, h, seed)
    x = torch.rand((1, d), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ball = LpBall(eps, "linf")
    graph = read_model(model, x)
    boxes = numpy_boxes(intermediate_bounds(graph, x, ball), 0)
    C = margin_matrix(torch.tensor([label]), 3).double()[0]
    lo, hi = ball.box(x)
    n = 2001 if d == 1 else 201
    pts = grid(lo[0], hi[0], n)
    with torch.no_grad():
        vals = model(pts) @ C.T
    spacing = float(((hi - lo)[0] / (n - 1)).norm())
    for m in range(C.shape[0]):
        res, point = milp_minimum(graph, x[0], ball, C[m].numpy(), boxes)
        assert res.status == "optimal"
        with torch.no_grad():
            attained = float(C[m] @ model(point.unsqueeze(0))[0])
        assert attained == pytest.approx(res.objective, abs=1e-6)
        assert bool(((point >= lo[0] - 1e-7) & (point <= hi[0] + 1e-7)).all())
        brute = float(vals[:, m].min())
        # the grid is feasible: the proven bound <= grid minimum; the objective is a reachable value, so it is
        # >= the true minimum >= grid minimum - L * spacing / 2; HiGHS stops within a 1e-4 relative gap
        assert res.bound <= brute + 1e-9
        assert res.objective <= brute + 1e-6 + 1e-4 * abs(brute)
        assert res.objective >= brute - lipschitz(model, C[m]) * spacing / 2 - 1e-9


@settings(max_examples=10)
@given(net=nets, eps=st.sampled_from([0.01, 0.05, 0.15]), seed=st.integers(0, 1000))
def test_certified_samples_are_never_falsified(net, eps, seed):
    model, shape = net
    x = torch.rand((4,) + shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    # random nets can be flat (dead ReLUs): the gradient health check would warn, rightly, but it is moot here
    report = robustest.check(model, x, y, eps=eps, escalate="milp", timeout=20.0, seed=seed,
                             suppress_health_check=["gradients"])
    cert = [s.index for s in report.samples if s.verdict == "certified"]
    for s in report.samples:
        if s.verdict == "falsified":
            assert s.figure is not None and s.figure < 0
    if not cert:
        return
    idx = torch.tensor(cert)
    adv = robustest.attack(model, x[idx], y[idx], eps=eps, method="pgd", seed=seed)
    assert not bool(adv.success.any())
    # and our own PGD on every margin: no point of the ball has a negative margin
    C = margin_matrix(y[idx], 3).double()
    _, vals = extreme_points(model, x[idx], LpBall(eps, "linf"), C, seed=seed)
    figures = torch.tensor([report.samples[i].figure for i in cert], dtype=torch.float64)
    assert bool((vals.amin((1, 2)) >= figures - 1e-6).all())


def boundary_net(seed: int) -> nn.Module:
    """A tiny net whose decision boundaries cross the unit square (first layer centred on it)."""
    model = tiny(2, 8, seed)
    with torch.no_grad():
        model[0].weight.mul_(8)
        model[0].bias.copy_(-model[0].weight @ torch.full((2,), 0.5, dtype=torch.float64))
    return model


def test_lp_and_milp_rungs_resolve_what_crown_leaves():
    model = boundary_net(4)
    x = torch.rand((16, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    crown_only = robustest.check(model, x, y, eps=0.1, escalate="crown", attacks=["fgsm"], timeout=20.0)
    full = robustest.check(model, x, y, eps=0.1, escalate="milp", attacks=["fgsm"], timeout=20.0)
    assert crown_only.counts()["unknown"] > 0
    assert full.counts()["unknown"] == 0
    assert full.counts()["certified"] > crown_only.counts()["certified"]
    assert {s.method for s in full.samples} & {"lp", "milp"}


def test_milp_counterexample_has_the_reported_negative_margin():
    model = boundary_net(4)
    x = torch.rand((16, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    graph = read_model(model, x)
    ball = LpBall(0.1, "linf")
    found = 0
    for i in range(16):
        boxes = numpy_boxes(intermediate_bounds(graph, x[i:i + 1], ball), 0)
        spec = margin_matrix(y[i:i + 1], 3).double()[0].numpy()
        out = milp_verify(graph, x[i], ball, spec, np.full(2, -1.0), boxes)
        assert out.verdict in ("certified", "falsified")
        if out.verdict == "falsified":
            found += 1
            with torch.no_grad():
                z = model(out.counterexample.unsqueeze(0))[0]
            assert int(z.argmax()) != int(y[i])
            assert bool(ball.contains(out.counterexample.unsqueeze(0), x[i:i + 1])[0])
            assert float((torch.as_tensor(spec) @ z).min()) == pytest.approx(out.figure, abs=1e-5)
    assert found > 0


def test_milp_time_limit_leaves_the_sample_unknown_with_the_reason():
    model = tiny(2, 6, 0)
    x = torch.full((1, 2), 0.5, dtype=torch.float64)
    graph = read_model(model, x)
    ball = LpBall(0.5, "linf")
    boxes = numpy_boxes(intermediate_bounds(graph, x, ball), 0)
    spec = margin_matrix(torch.tensor([0]), 3).double()[0].numpy()
    out = milp_verify(graph, x[0], ball, spec, np.full(2, -1.0), boxes, time_limit=0.0)
    assert out.verdict is None and "time limit" in out.reason


def test_eps_larger_than_the_domain_is_clipped_and_sound():
    model = tiny(2, 5, 7)
    x = torch.rand((3, 2), dtype=torch.float64)
    b = robustest.bounds(model, x, eps=10.0, method="crown")
    pts = grid(torch.zeros(2), torch.ones(2), 41)
    with torch.no_grad():
        out = model(pts)
    assert bool((out.min(0).values >= b.lower - 1e-6).all()) and bool((out.max(0).values <= b.upper + 1e-6).all())
    assert math.isfinite(float(b.lower.min()))


def test_l2_ladder_with_alpha_crown_is_sound():
    model = boundary_net(4)
    x = torch.rand((16, 2), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    ball = LpBall(0.1, "l2")
    report = robustest.check(model, x, y, eps=0.1, norm="l2", escalate="milp", attacks=["fgsm"], timeout=20.0,
                             alpha_crown=True)
    cert = [s.index for s in report.samples if s.verdict == "certified"]
    assert cert
    for s in report.samples:
        if s.verdict == "falsified":
            assert bool(ball.contains(s.counterexample.unsqueeze(0).double(), x[s.index:s.index + 1])[0])
        if s.verdict == "unknown":
            assert s.reason
    idx = torch.tensor(cert)
    C = margin_matrix(y[idx], 3).double()
    _, vals = extreme_points(model, x[idx], ball, C, seed=0, steps=30)
    figures = torch.tensor([report.samples[i].figure for i in cert], dtype=torch.float64)
    assert bool((vals.amin((1, 2)) >= figures - 1e-6).all())


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_lp_bounds_api_contains_outputs_and_is_inside_crown(norm):
    model = boundary_net(5)
    x = torch.rand((3, 2), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    lp = robustest.bounds(model, x, eps=0.1, norm=norm, method="lp", labels=y)
    cr = robustest.bounds(model, x, eps=0.1, norm=norm, method="crown", labels=y)
    tol = 1e-5  # LP optima are lowered by the solver tolerance (LP_TOL) before use
    assert bool((lp.margins_lower >= cr.margins_lower - tol).all())
    assert bool((lp.lower >= cr.lower - tol).all()) and bool((lp.upper <= cr.upper + tol).all())
    C = torch.cat([torch.eye(3, dtype=torch.float64).expand(3, 3, 3), margin_matrix(y, 3).double()], 1)
    _, vals = extreme_points(model, x, LpBall(0.1, norm), C, seed=5)
    lower = torch.cat([lp.lower, lp.margins_lower], 1).unsqueeze(1)
    upper = torch.cat([lp.upper, lp.margins_upper], 1).unsqueeze(1)
    assert bool((vals >= lower - 1e-6).all()) and bool((vals <= upper + 1e-6).all())
