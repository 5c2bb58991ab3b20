"""Batched beta-CROWN branch and bound: every bound is sound (on sampled, corner and attacked points, for any
slopes/multipliers and split pattern), proofs survive sampling, and on tiny nets it proves a threshold just
below the exact minimum (MILP) while never proving one above it."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from certify_nets import exact_min
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from robustest.certify.bab import bab, bab_mlp
from robustest.certify.beta_crown import DomainBatch, bound, layer_bounds
from robustest.certify.crown import crown
from robustest.certify.mlp import dense_mlp, root_bounds
from robustest.errors import UnsupportedLayer
from robustest.graph import read_model
from robustest.spec import LpBall


def _mlp(seed: int, widths: list[int], d: int = 3, k: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    prev = d
    for w in widths:
        layers += [nn.Linear(prev, w), nn.ReLU()]
        prev = w
    layers.append(nn.Linear(prev, k))
    return nn.Sequential(*layers).double().eval()


def _box(seed: int, d: int, width: float) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed + 1)
    c = torch.rand(d, generator=g, dtype=torch.float64) * 2 - 1
    return c - width, c + width


def _points(model: nn.Module, lo: torch.Tensor, hi: torch.Tensor, C: torch.Tensor, seed: int, n: int = 4000
            ) -> torch.Tensor:
    """Random points, every corner, and PGD minimising each row of each polytope (C (P, M, K))."""
    d = lo.numel()
    g = torch.Generator().manual_seed(seed)
    pts = [lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=torch.float64)]
    corners = torch.cartesian_prod(*[torch.stack([lo[i], hi[i]]) for i in range(d)]).reshape(-1, d)
    pts.append(corners)
    rows = C.reshape(-1, C.shape[-1])
    x = (lo + (hi - lo) * torch.rand(rows.shape[0], 8, d, generator=g, dtype=torch.float64)).reshape(-1, d)
    r = rows.repeat_interleave(8, 0)
    for _ in range(30):
        x = x.detach().requires_grad_(True)
        (gr,) = torch.autograd.grad((model(x) * r).sum(), x)
        x = torch.minimum(torch.maximum(x - 0.1 * (hi - lo) * gr.sign(), lo), hi)
    pts.append(x.detach())
    return torch.cat(pts)


nets = st.tuples(st.integers(0, 10_000), st.lists(st.integers(2, 7), min_size=1, max_size=3),
                 st.floats(0.05, 1.0))


@settings(max_examples=30, deadline=None)
@given(net=nets, data=st.data())
def test_any_slopes_multipliers_and_splits_give_sound_domain_bounds(net, data):
    seed, widths, width = net
    model = _mlp(seed, widths)
    dn = dense_mlp(read_model(model, torch.zeros(1, 3, dtype=torch.float64)))
    lo, hi = _box(seed, 3, width)
    ls, us = root_bounds(dn, lo, hi, alpha_steps=data.draw(st.sampled_from([0, 5])))
    g = torch.Generator().manual_seed(seed + 2)
    D, N = 6, sum(widths)
    C = torch.randn(D, 2, 3, generator=g, dtype=torch.float64)
    state = DomainBatch(torch.randint(-1, 2, (D, N), generator=g).to(torch.int8),
                        torch.rand(D, 2, N, generator=g), torch.rand(D, 2, N, generator=g) * 3, torch.zeros(D).long())
    out = bound(dn, ls, us, lo, hi, C, state, optimise=data.draw(st.booleans()), iters=5)
    pts = _points(model, lo, hi, C[:1], seed)
    with torch.no_grad():
        vals = model(pts) @ C.reshape(-1, 3).T  # (n, D*2)
        pre = []
        h = pts
        for w, b in zip(dn.weights[:-1], dn.biases[:-1]):
            h = h @ w.T + b
            pre.append(h)
            h = torch.relu(h)
        z = torch.cat(pre, 1)  # (n, N)
    for i, (l, u) in enumerate(zip(torch.cat(ls), torch.cat(us))):  # root bounds contain the sampled values
        assert bool((z[:, i] >= l - 1e-9).all() and (z[:, i] <= u + 1e-9).all())
    for d in range(D):
        s = state.splits[d].double()
        inside = ((s * z) >= 0).all(1)  # the points of domain d
        if bool(inside.any()):
            assert bool((vals[inside, 2 * d:2 * d + 2] >= out.lower[d] - 1e-9).all())
    dl, du = layer_bounds(ls, us, state.splits)
    empty = torch.stack([(torch.cat(dl, 1) > torch.cat(du, 1)).any(1)])[0]  # contradictory splits: no point
    inside = ((state.splits.double().unsqueeze(1) * z.unsqueeze(0)) >= 0).all(2)  # (D, n)
    assert not bool(inside[empty].any())


@settings(max_examples=25, deadline=None)
@given(net=nets, offset=st.floats(-0.05, 0.3), polys=st.integers(1, 3))
def test_proofs_survive_sampling_corners_and_attacks(net, offset, polys):
    seed, widths, width = net
    model = _mlp(seed, widths)
    dn = dense_mlp(read_model(model, torch.zeros(1, 3, dtype=torch.float64)))
    lo, hi = _box(seed, 3, width)
    g = torch.Generator().manual_seed(seed + 3)
    C = torch.randn(polys, 2, 3, generator=g, dtype=torch.float64)
    with torch.no_grad():  # thresholds near each row's sampled minimum: proofs need branching
        ys = model(lo + (hi - lo) * torch.rand(500, 3, generator=g, dtype=torch.float64))
    b = torch.einsum("nk,pmk->pmn", ys, C).amin(2) - offset
    b[:, 1] = float("inf") if seed % 3 else b[:, 1]  # mostly one-row polytopes, padded with an inf row
    st_ = bab_mlp(dn, lo, hi, C, b, deadline=time.perf_counter() + 3, batch=32, max_domains=5000)
    pts = _points(model, lo, hi, C, seed)
    with torch.no_grad():
        ys = model(pts)
    reached = ((torch.einsum("nk,pmk->npm", ys, C) <= b).all(2)).any(1)  # some point inside some polytope
    if st_.proved:
        assert not bool(reached.any())
    if st_.candidate is not None:
        x = st_.candidate
        assert bool(((x >= lo) & (x <= hi)).all())
        with torch.no_grad():
            yc = model(x[None])[0]
        assert bool(((C @ yc) <= b).all(1).any())


def _exact_min(model: nn.Module, lo: torch.Tensor, hi: torch.Tensor, c: torch.Tensor) -> float:
    return exact_min(read_model(model, torch.zeros(1, lo.numel(), dtype=torch.float64)), lo, hi, c)


@pytest.mark.parametrize("seed", range(4))
def test_proves_just_below_the_exact_minimum_and_never_above(seed):
    model = _mlp(seed, [8, 8], d=2)
    dn = dense_mlp(read_model(model, torch.zeros(1, 2, dtype=torch.float64)))
    lo, hi = _box(seed, 2, 0.6)
    c = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    true_min = _exact_min(model, lo, hi, c)
    C = c.reshape(1, 1, 3)
    below = bab_mlp(dn, lo, hi, C, torch.tensor([[true_min - 1e-3]], dtype=torch.float64),
                    deadline=time.perf_counter() + 10)
    assert below.proved, below.reason
    above = bab_mlp(dn, lo, hi, C, torch.tensor([[true_min + 1e-3]], dtype=torch.float64),
                    deadline=time.perf_counter() + 10)
    assert not above.proved
    if above.candidate is not None:  # a real point below the threshold
        with torch.no_grad():
            assert float(model(above.candidate[None])[0] @ c) <= true_min + 1e-3


def test_proves_what_one_crown_pass_cannot():
    found = 0
    for seed in range(6):
        model = _mlp(seed, [10, 10])
        graph = read_model(model, torch.zeros(1, 3, dtype=torch.float64))
        x0 = torch.rand(1, 3, dtype=torch.float64)
        ball = LpBall(0.5, "linf", None)
        a = torch.tensor([[1.0, -1.0, 0.0]], dtype=torch.float64)
        crown_low = float(crown(graph, x0, ball, a.unsqueeze(0)).lower[0, 0])
        lo, hi = ball.box(x0)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            ys = model(lo + (hi - lo) * torch.rand(20_000, 3, generator=g, dtype=torch.float64))
        sampled = float((ys @ a.T).min())
        b = torch.tensor([crown_low + 0.5 * (sampled - crown_low)], dtype=torch.float64)
        if bab(graph, x0, ball, a, b, deadline=time.perf_counter() + 5).proved:
            found += 1
    assert found >= 4


def test_refuses_networks_that_are_not_linear_relu_chains():
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2)).eval()
    with pytest.raises(UnsupportedLayer, match="neither linear nor a ReLU.*Fix"):
        dense_mlp(read_model(pooled, torch.zeros(1, 1, 4, 4)))


def test_dense_forward_matches_the_model():
    model = _mlp(0, [5, 4])
    dn = dense_mlp(read_model(model, torch.zeros(1, 3, dtype=torch.float64)))
    x = torch.rand(7, 3, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(dn.forward(x).numpy(), model(x).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("carry", ["last", "best"])
def test_float32_steps_report_bounds_evaluated_in_the_bounds_dtype(carry):
    """The Adam steps run in float32 by default (``ascent_dtype``), but the bound returned is a float64
    evaluation of the slopes and multipliers returned with it (kept in float32, exactly): re-evaluating
    them without steps gives it exactly."""
    model = _mlp(3, [6, 5])
    dn = dense_mlp(read_model(model, torch.zeros(1, 3, dtype=torch.float64)))
    lo, hi = _box(3, 3, 0.6)
    ls, us = root_bounds(dn, lo, hi)
    g = torch.Generator().manual_seed(4)
    C = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
    splits = torch.randint(-1, 2, (4, 11), generator=g).to(torch.int8)
    state = DomainBatch(splits, torch.rand(4, 2, 11, generator=g), torch.zeros(4, 2, 11),
                        torch.zeros(4).long())
    out = bound(dn, ls, us, lo, hi, C, state, iters=10, carry=carry)
    assert out.lower.dtype == torch.float64
    again = bound(dn, ls, us, lo, hi, C, DomainBatch(splits, out.alpha, out.beta, state.prop), optimise=False)
    assert torch.equal(out.lower, again.lower)
