"""Exact minima (MILP/MIQP on the certifier's encoding) equal brute force on 1- and 2-input networks, and
bracket what the searches find."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("robustest.certify.encode")

from robustest.minimal.exact import exact_minimum  # noqa: E402
from robustest.spec import lp_norm  # noqa: E402


def _net(seed: int, d: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6), torch.nn.ReLU(),
                               torch.nn.Linear(6, 3)).eval()


def _grid(d: int, n: int) -> torch.Tensor:
    axis = torch.linspace(0, 1, n)
    return axis[:, None] if d == 1 else torch.cartesian_prod(axis, axis)


def _solvers(norm: str) -> list:
    if norm == "l2":
        pytest.importorskip("gurobipy")
        return ["gurobi"]
    return ["highs"]


@pytest.mark.parametrize("norm", ["linf", "l1", "l2"])
@pytest.mark.parametrize("seed,d", [(0, 1), (1, 2), (2, 2)])
def test_exact_minimum_equals_brute_force(norm: str, seed: int, d: int) -> None:
    net = _net(seed, d)
    n = 20001 if d == 1 else 401
    grid = _grid(d, n)
    spacing = 1.0 / (n - 1)
    with torch.no_grad():
        pred = net(grid).argmax(1)
    x = torch.full((1, d), 0.45)
    y = net(x).argmax(1)
    adv = grid[pred != y[0]]
    res = exact_minimum(net, x, y, norm=norm, solver=_solvers(norm)[0])
    if adv.shape[0] == 0:
        assert res.status == "infeasible" and math.isinf(res.value)
        return
    g = float(lp_norm(adv - x, norm).min())
    assert res.status == "optimal"
    assert res.bound <= res.value + 1e-9
    assert res.value <= g + 1e-6  # no grid point is closer than the proven minimum
    assert res.value >= g - 2 * spacing  # and the grid finds a point as close, up to its spacing
    # the minimiser lies on the decision boundary: some other logit ties the true one
    assert res.point is not None
    z = net(res.point[None].float())[0]
    assert float(z.max() - z[y[0]]) >= -1e-4


def test_upper_bound_from_a_search_does_not_change_the_answer() -> None:
    net = _net(5, 2)
    x = torch.tensor([[0.3, 0.6]])
    y = net(x).argmax(1)
    free = exact_minimum(net, x, y, norm="linf")
    assert free.status == "optimal" and math.isfinite(free.value)
    boxed = exact_minimum(net, x, y, norm="linf", upper=free.value * 1.5)
    assert boxed.value == pytest.approx(free.value, rel=1e-4, abs=1e-6)
