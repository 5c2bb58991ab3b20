"""rLR-QP and DeepFool: closed form on affine models, brute force on 2-input ReLU nets, forward re-checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustest.minimal.deepfool import deepfool
from robustest.minimal.lr_qp import LrQpSettings, lr_qp
from robustest.spec import lp_norm

FAST = LrQpSettings(n1=4, n2=6, n3=2, n4=2, timeout=20.0)
DUAL = {"l2": 2, "linf": 1, "l1": np.inf}


def _affine_distance(net: torch.nn.Linear, x: torch.Tensor, label: int, norm: str) -> float:
    """min over targets t of the distance to the half-space {f_t >= f_label}: the exact answer."""
    W, b = net.weight.detach().double(), net.bias.detach().double()
    best = np.inf
    for t in range(W.shape[0]):
        if t == label:
            continue
        g = (W[label] - W[t]).detach().numpy()
        m = float((W[label] - W[t]) @ x.double() + b[label] - b[t])
        best = min(best, m / np.linalg.norm(g, ord=DUAL[norm]))
    return best


@settings(max_examples=12)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 5), k=st.integers(2, 4),
       norm=st.sampled_from(["l2", "linf", "l1"]))
def test_lr_qp_on_an_affine_model_is_the_closed_form_distance(seed: int, d: int, k: int, norm: str) -> None:
    torch.manual_seed(seed)
    net = torch.nn.Linear(d, k).eval()
    x = torch.randn(1, d)
    y = net(x).argmax(1)
    out = lr_qp(net, x, y, norm=norm, domain=None, settings=FAST, seed=seed)
    expected = _affine_distance(net, x[0], int(y[0]), norm)
    assert bool(out.success[0])
    # never closer than the true minimum; farther only by the small margin aimed past the boundary
    assert expected * (1 - 1e-7) <= float(out.distance[0]) <= expected * (1 + 1e-3) + 5e-4
    assert int(net(out.adversarial).argmax(1)[0]) != int(y[0])


def test_deepfool_on_an_affine_binary_model_reaches_the_hyperplane() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 2).eval()
    x = torch.randn(8, 5)
    y = net(x).argmax(1)
    for norm in ("l2", "linf"):
        adv, ok = deepfool(net, x, y, norm=norm, domain=None)
        assert bool(ok.all())
        assert bool((net(adv).argmax(1) != y).all())
        d = lp_norm((adv - x), norm)
        for i in range(8):
            assert float(d[i]) == pytest.approx(_affine_distance(net, x[i], int(y[i]), norm), rel=1e-3)


def _tiny(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 3)).eval()


@pytest.mark.parametrize("norm", ["l2", "linf", "l1"])
@pytest.mark.parametrize("seed", [1, 2])
def test_lr_qp_matches_a_dense_grid_on_a_two_input_net(norm: str, seed: int) -> None:
    net = _tiny(seed)
    n = 401
    axis = torch.linspace(0, 1, n)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        pred_grid = net(grid).argmax(1)
    x = torch.tensor([[0.37, 0.61], [0.7, 0.2]])
    y = net(x).argmax(1)
    out = lr_qp(net, x, y, norm=norm, domain=(0.0, 1.0), seed=seed,
                settings=LrQpSettings(n1=5, n2=8, n3=3, n4=3))
    spacing = 1.0 / (n - 1)
    for i in range(2):
        adv_grid = grid[pred_grid != y[i]]
        if adv_grid.shape[0] == 0:
            assert not bool(out.success[i])
            continue
        g = float(lp_norm(adv_grid - x[i], norm).min())
        found = float(out.distance[i])
        assert int(net(out.adversarial[i:i + 1]).argmax(1)[0]) != int(y[i])
        assert found == pytest.approx(float(lp_norm(out.adversarial[i:i + 1] - x[i:i + 1], norm)[0]),
                                      rel=1e-6)
        # never worse than the best grid point, never better than the grid allows
        assert found <= g + 1e-6
        assert found >= g - 2 * spacing


def test_lr_qp_never_worse_than_its_warm_start_on_digits() -> None:
    from digits import load_model, test_data

    model = load_model("mlp")
    x, y = test_data("mlp", 2)
    for norm in ("l2", "linf"):
        warm, ok = deepfool(model, x, y, norm=norm)
        out = lr_qp(model, x, y, norm=norm, warm_start=warm, settings=LrQpSettings(n1=2, n2=4, n3=1, n4=1))
        assert bool(out.success.all())
        assert bool((model(out.adversarial).argmax(1) != y).all())
        assert torch.allclose(lp_norm(out.adversarial - x, norm).double(), out.distance.double(), rtol=1e-5)
        assert bool((out.distance <= lp_norm(warm - x, norm) + 1e-6)[ok].all())
        assert bool(((out.adversarial >= 0) & (out.adversarial <= 1)).all())
