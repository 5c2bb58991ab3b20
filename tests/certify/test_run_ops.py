"""Runs of conv layers applied as convolutions (run_ops) instead of dense matrices: the same linear map,
the same root bounds (CROWN on the interval-unstable neurons, chunked), bounds that hold on sampled points,
and a BaB on them that proves just below the exact minimum and never above it."""

from __future__ import annotations

import time

import pytest
import torch
from certify_nets import exact_min
from torch import nn

from robustest.certify.bab import bab_mlp
from robustest.certify.mlp import dense_mlp, root_bounds
from robustest.certify.run_ops import RunOps, with_run_ops
from robustest.graph import read_model
from robustest.layers.scale import ConstantAffine


def _conv_net(seed: int) -> nn.Module:
    """Normalisation, strided padded conv, ReLU, average pooling, conv, ReLU, Flatten, Linear, ReLU, Linear."""
    torch.manual_seed(seed)
    norm = ConstantAffine(scale=torch.tensor(1 / 0.3), shift=torch.tensor(-0.1 / 0.3))
    return nn.Sequential(norm, nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Conv2d(4, 6, 2), nn.ReLU(), nn.Flatten(), nn.Linear(6, 5), nn.ReLU(),
                         nn.Linear(5, 3)).double().eval()


def _nets(seed: int):  # type: ignore[no-untyped-def]
    model = _conv_net(seed)
    graph = read_model(model, torch.zeros(1, 2, 8, 8, dtype=torch.float64))
    dense = dense_mlp(graph)
    return model, graph, dense, with_run_ops(graph, dense, settings=RunOps(max_density=1.0))


def _box(seed: int, radius: float) -> tuple[torch.Generator, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(128, generator=g, dtype=torch.float64)
    return g, x0 - radius, x0 + radius


def _assert_holds(dense, pts: torch.Tensor, ls: list, us: list) -> None:  # type: ignore[no-untyped-def]
    """Every ReLU layer's pre-activation at every point is within its bounds (the dense read is the model)."""
    h = pts
    for i, (w, b) in enumerate(zip(dense.weights[:-1], dense.biases[:-1])):
        z = h @ w.T + b
        assert bool((z >= ls[i] - 1e-9).all() and (z <= us[i] + 1e-9).all()), f"layer {i + 1}"
        h = torch.relu(z)


@pytest.mark.parametrize("seed", range(2))
def test_the_layer_form_is_the_dense_map(seed):
    _, _, dense, ops = _nets(seed)
    assert all(op is not None for op in ops.ops)
    x = torch.rand(7, 128, dtype=torch.float64)
    torch.testing.assert_close(ops.forward(x), dense.forward(x), rtol=1e-12, atol=1e-12)
    for i, w in enumerate(dense.weights):
        A = torch.randn(3, 4, w.shape[0], dtype=torch.float64)
        torch.testing.assert_close(ops.pull(i, A), A @ w, rtol=1e-12, atol=1e-12)
    f32 = ops.to(torch.float32)
    torch.testing.assert_close(f32.forward(x.float()), dense.forward(x).float(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_root_bounds_hold_on_sampled_points_and_equal_the_dense_ones(seed):
    model, _, dense, ops = _nets(seed)
    g, lo, hi = _box(seed, 0.1)
    ls, us = root_bounds(ops, lo, hi, alpha_steps=5)
    dl, du = root_bounds(dense, lo, hi, alpha_steps=5)
    for a, b in zip(ls + us, dl + du):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    pts = lo + (hi - lo) * torch.rand(2000, 128, generator=g, dtype=torch.float64)
    pts = torch.cat([pts, torch.where(torch.rand(500, 128, generator=g) < 0.5, lo, hi)])
    _assert_holds(dense, pts, ls, us)
    # the pre-activations really are the network's (the dense read is the model)
    with torch.no_grad():
        torch.testing.assert_close(dense.forward(pts[:5]), model(pts[:5].reshape(5, 2, 8, 8)))


def test_a_deadline_in_the_past_leaves_interval_bounds():
    _, _, _, ops = _nets(0)
    x0 = torch.rand(128, dtype=torch.float64)
    ls, us = root_bounds(ops, x0 - 0.1, x0 + 0.1, deadline=0.0)  # sound, only looser
    full_l, full_u = root_bounds(ops, x0 - 0.1, x0 + 0.1)
    for a, b, c, d in zip(ls, us, full_l, full_u):
        assert bool((a <= c + 1e-12).all() and (b >= d - 1e-12).all())


@pytest.mark.parametrize("seed", range(2))
def test_bab_on_the_layer_form_proves_below_the_exact_minimum_and_never_above(seed):
    _, graph, _, ops = _nets(seed)
    _, lo, hi = _box(seed, 0.05)
    c = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    true_min = exact_min(graph, lo.reshape(2, 8, 8), hi.reshape(2, 8, 8), c)
    C = c.reshape(1, 1, 3)
    below = bab_mlp(ops, lo, hi, C, torch.tensor([[true_min - 1e-3]], dtype=torch.float64),
                    deadline=time.perf_counter() + 20, root_alpha_steps=5)
    assert below.proved, below.reason
    above = bab_mlp(ops, lo, hi, C, torch.tensor([[true_min + 1e-3]], dtype=torch.float64),
                    deadline=time.perf_counter() + 20)
    assert not above.proved
    assert above.candidate is not None
    assert float(ops.forward(above.candidate[None])[0] @ c) <= true_min + 1e-3


def test_refinement_on_the_layer_form_stays_sound_and_its_point_search_stops_at_the_deadline():
    from robustest.certify.refine import _reached, refine_bounds

    _, _, dense, ops = _nets(1)
    x0 = torch.rand(128, dtype=torch.float64)
    lo, hi = x0 - 0.1, x0 + 0.1
    rows = torch.eye(3, dtype=torch.float64)
    assert not bool(_reached(ops, lo, hi, rows, deadline=0.0).any())  # no step taken: nothing claimed
    ls, us = root_bounds(ops, lo, hi)
    rl, ru = refine_bounds(ops, lo, hi, ls, us, deadline=time.perf_counter() + 5)
    pts = lo + (hi - lo) * torch.rand(2000, 128, dtype=torch.float64)
    _assert_holds(dense, pts, rl, ru)
    for a, b, c, d in zip(rl, ru, ls, us):
        assert bool((a >= c - 1e-12).all() and (b <= d + 1e-12).all())
