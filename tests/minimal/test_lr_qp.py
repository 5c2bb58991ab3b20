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


def _two_valleys() -> torch.nn.Sequential:
    """1 input, label 0 at z = 0.05. Class 1 wins for z > 1 and its logit is the steepest at z: DeepFool
    goes there (distance 0.95). Class 2 wins for z < -10/13 (distance ~0.819, the true minimum), but near z
    its logit moves slowly (a linearised distance of 4) and steepens only past the kink at z = -0.5, a
    region Algorithm 1 never samples from the warm start: its points are x + S + eps with S = 0.95 and
    |eps| <= 0.95, all at z >= 0.05."""
    net = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3)).eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0], [-1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -0.5, 10.0]))  # relu(z), relu(-z - 0.5), relu(10 - z)
        net[2].weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 6.0, 0.5]]))
        net[2].bias.copy_(torch.tensor([0.0, -1.0, -7.0]))
    return net


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_lr_qp_reaches_a_class_whose_valley_the_warm_start_misses(norm: str) -> None:
    net = _two_valleys()
    x, y = torch.tensor([[0.05]]), torch.tensor([0])
    true_min = 0.05 + 10 / 13
    warm, ok = deepfool(net, x, y, norm=norm, domain=(-2.0, 2.0))
    assert bool(ok[0]) and int(net(warm).argmax(1)[0]) == 1  # the warm start is in class 1's valley
    for seed in range(4):
        old = lr_qp(net, x, y, norm=norm, domain=(-2.0, 2.0), warm_start=warm, seed=seed,
                    settings=LrQpSettings(class_starts=False))
        assert float(old.distance[0]) == pytest.approx(0.95, rel=1e-3)  # what the search found before
        out = lr_qp(net, x, y, norm=norm, domain=(-2.0, 2.0), warm_start=warm, seed=seed)
        assert bool(out.success[0])
        assert int(net(out.adversarial).argmax(1)[0]) == 2  # re-checked by a forward pass
        assert float(lp_norm(out.adversarial - x, norm)[0]) == pytest.approx(float(out.distance[0]), rel=1e-6)
        assert true_min * (1 - 1e-7) <= float(out.distance[0]) <= true_min * (1 + 1e-3)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_targeted_deepfool_on_an_affine_model_reaches_the_target_hyperplane(norm: str) -> None:
    torch.manual_seed(3)
    net = torch.nn.Linear(4, 5).eval()
    x = torch.randn(6, 4)
    y = net(x).argmax(1)
    t = (y + 1 + torch.arange(6) % 4) % 5
    adv, ok = deepfool(net, x, y, norm=norm, domain=None, targets=t)
    assert bool(ok.all())
    with torch.no_grad():
        out = net(adv)
    rows = torch.arange(6)
    assert bool((out[rows, t] > out[rows, y]).all())  # the target beats the label: an adversarial input
    W, b = net.weight.detach().double(), net.bias.detach().double()
    for i in range(6):
        g = W[y[i]] - W[t[i]]
        m = float(g @ x[i].double() + b[y[i]] - b[t[i]])
        expected = m / float(np.linalg.norm(g.numpy(), ord=DUAL[norm]))
        assert float(lp_norm(adv[i:i + 1] - x[i:i + 1], norm)[0]) == pytest.approx(expected, rel=1e-3)


def test_lr_qp_and_radius_accept_no_sample_to_search() -> None:
    import robustest

    net = _tiny(1)
    out = lr_qp(net, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), norm="linf")
    assert out.adversarial.shape == (0, 2) and out.distance.shape == (0,) and out.regions == ()
    x = torch.rand(3, 2)
    y = (net(x).argmax(1) + 1) % 3  # every sample misclassified: rLR-QP gets an empty batch
    rep = robustest.radius(net, x, y, norm="linf", certifier=None)
    assert [s.method for s in rep.samples] == ["clean"] * 3
