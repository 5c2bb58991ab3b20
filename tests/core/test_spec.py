"""LpBall geometry: projection, containment, random starts, the l1 projection, margins."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.errors import InvalidArgument
from robustest.spec import LpBall, dual_norm, lp_norm, margin_matrix, project_l1


@settings(max_examples=60)
@given(eps=st.floats(0.0, 2.0), norm=st.sampled_from(["linf", "l2", "l1"]), seed=st.integers(0, 1000),
       bounded=st.booleans())
def test_project_and_random_start_land_in_ball_and_domain(eps, norm, seed, bounded):
    g = torch.Generator().manual_seed(seed)
    ball = LpBall(eps, norm, (0.0, 1.0) if bounded else None)
    x0 = torch.rand(5, 7, generator=g)
    far = x0 + 3 * torch.randn(5, 7, generator=g)
    assert bool(ball.contains(ball.project(far, x0), x0).all())
    assert bool(ball.contains(ball.random_start(x0, g), x0).all())


@settings(max_examples=60)
@given(seed=st.integers(0, 1000), eps=st.floats(0.01, 3.0))
def test_l1_projection_is_the_euclidean_projection(seed, eps):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(3, 6, generator=g, dtype=torch.float64)
    p = project_l1(v, eps)
    assert bool((p.abs().sum(1) <= eps + 1e-9).all())
    # optimality: no random point of the l1 ball is closer to v
    for _ in range(50):
        q = project_l1(torch.randn(3, 6, generator=g, dtype=torch.float64) * 2, eps)
        assert bool(((v - p).norm(dim=1) <= (v - q).norm(dim=1) + 1e-9).all())


def test_linf_projection_is_exact():
    ball = LpBall(0.1, "linf", (0.0, 1.0))
    x0 = torch.tensor([[0.05, 0.5, 0.98]])
    assert torch.allclose(ball.project(torch.tensor([[-1.0, 0.9, 0.5]]), x0), torch.tensor([[0.0, 0.6, 0.88]]))


def test_box_contains_the_ball():
    ball = LpBall(0.3, "l2", (0.0, 1.0))
    x0 = torch.rand(4, 5)
    lo, hi = ball.box(x0)
    pts = ball.random_start(x0, torch.Generator().manual_seed(0))
    assert bool(((pts >= lo) & (pts <= hi)).all())


@pytest.mark.parametrize("eps", [-1, float("inf"), "0.1", True])
def test_bad_eps(eps):
    with pytest.raises(InvalidArgument, match="eps="):
        LpBall(eps)


def test_norm_aliases():
    assert LpBall(0.1, "inf").norm == "linf" and LpBall(0.1, 2).norm == "l2"
    with pytest.raises(InvalidArgument, match="norm="):
        LpBall(0.1, "l0")


def test_margin_matrix():
    y = torch.tensor([2, 0])
    c = margin_matrix(y, 3)
    z = torch.tensor([[1.0, 2.0, 5.0], [4.0, 1.0, 0.0]])
    margins = torch.einsum("nmk,nk->nm", c, z)
    assert torch.equal(margins, torch.tensor([[4.0, 3.0], [3.0, 4.0]]))


@settings(max_examples=40)
@given(norm=st.sampled_from(["linf", "l2", "l1"]), seed=st.integers(0, 1000))
def test_the_dual_norm_is_the_largest_move_of_a_linear_function_over_the_unit_ball(norm, seed):
    """``lp_norm(a, dual_norm(norm))`` bounds ``a . d`` over ``||d|| <= 1`` (sampled points of the
    ball) and is reached at the ball's steepest point for ``a``."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(1, 6, generator=g, dtype=torch.float64)
    q = float(lp_norm(a, dual_norm(norm))[0])
    ball = LpBall(1.0, norm, None)
    d = ball.random_start(torch.zeros(200, 6, dtype=torch.float64), g)
    assert float((d @ a[0]).max()) <= q * (1 + 1e-12)
    best = ball.steepest_direction(a)  # unit norm, a . best = ||a||_q (l1: its top 1% = one coordinate)
    assert float(lp_norm(best, norm)[0]) == pytest.approx(1.0)
    assert float(best[0] @ a[0]) == pytest.approx(q, rel=1e-9)
