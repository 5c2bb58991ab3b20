"""The row-wise rounding bound (robustest.certify.float_rows): sound on sampled float32 computations, at
least the crafted nets' true error, and much tighter than the a-priori bound on deep nets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustest.certify.crown import intermediate_bounds
from robustest.certify.float_error import region_boxes, row_slack
from robustest.certify.float_rows import row_errors
from robustest.graph import read_model
from robustest.graph.rounding import node_errors
from robustest.ladder import ProverRung, StepContext
from robustest.layers.rounding import Precision
from robustest.spec import LpBall

from .test_float_guard import EPS, X0, NETS

F32 = Precision.of(torch.float32, torch.device("cpu"))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 16), nn.Linear(16, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.c(torch.relu(x + self.b(h)))


def _nets() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3)).eval()
    with torch.no_grad():
        conv[1].running_mean.uniform_(-5, 5), conv[1].running_var.uniform_(0.1, 2)
    return {
        "relu": (nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 3)), (6,)),
        "leaky": (nn.Sequential(nn.Linear(6, 20), nn.LeakyReLU(0.2), nn.Linear(20, 3)), (6,)),
        "sigmoid": (nn.Sequential(nn.Linear(6, 20), nn.Sigmoid(), nn.Linear(20, 20), nn.Tanh(), nn.Linear(20, 3)),
                    (6,)),
        "residual": (Residual(), (6,)),
        "conv-bn": (conv, (1, 6, 6)),
    }


@pytest.mark.parametrize("name", list(_nets()))
def test_the_bound_contains_the_float32_rounding_on_sampled_points(name):
    """Large inputs (so float32 rounding is visible); every row's sampled |C (y32 - y_exact)| is within."""
    net, shape = _nets()[name]
    net = net.eval()
    torch.manual_seed(1)
    x0 = (torch.rand((2,) + shape) * 200 - 100).double()
    ball = LpBall(2.0, "linf", None)
    g = read_model(net, x0.float())
    C = torch.randn(2, 4, 3, dtype=torch.float64)
    boxes = region_boxes(g, x0, ball)
    rows = row_errors(g, boxes, C, F32)
    assert rows is not None and bool(torch.isfinite(rows).all())
    pts = (x0.unsqueeze(0) + (2 * torch.rand((128,) + tuple(x0.shape), dtype=torch.float64) - 1) * 2.0).float()
    with torch.no_grad():
        y32 = net(pts.reshape((-1,) + shape)).double().reshape(128, 2, 3)
    y = g(pts.reshape((-1,) + shape).double()).reshape(128, 2, 3)
    gap = torch.einsum("nrk,pnk->pnr", C, y32 - y).abs()
    assert float(gap.max()) > 0
    assert bool((gap <= rows.unsqueeze(0)).all())


@pytest.mark.parametrize("net_name", list(NETS))
def test_the_crafted_flips_stay_covered(net_name):
    """``(x + 2**24) - 2**24``: the true error reaches ~0.5 per row; the bound must say at least that."""
    net = NETS[net_name]()
    x0 = torch.tensor([[X0]], dtype=torch.float64)
    ball = LpBall(EPS, "linf", None)
    g = read_model(net, x0.float())
    C = torch.tensor([[[1.0, -1.0]]], dtype=torch.float64)
    rows = row_errors(g, intermediate_bounds(g, x0, ball), C, F32)
    assert rows is not None
    pts = torch.linspace(X0 - EPS, X0 + EPS, 401).unsqueeze(1)
    with torch.no_grad():
        y32 = net(pts).double()
    y = g(pts.double())
    gap = ((y32 - y) @ C[0].T).abs()
    assert float(rows.min()) >= float(gap.max()) > 0.45


def test_deep_nets_get_a_much_smaller_bound_than_the_a_priori_one():
    """6 x 50 ReLU layers at a small eps (most neurons stable): the a-priori bound multiplies |W| per
    layer, the row-wise one follows the signs along the stable paths."""
    torch.manual_seed(2)
    layers: list[nn.Module] = [nn.Linear(5, 50), nn.ReLU()]
    for _ in range(5):
        layers += [nn.Linear(50, 50), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(50, 5)).eval()
    x0 = torch.rand(1, 5, dtype=torch.float64)
    ball = LpBall(1e-3, "linf", None)
    g = read_model(net, x0.float())
    boxes = intermediate_bounds(g, x0, ball)
    C = torch.eye(5, dtype=torch.float64).unsqueeze(0)
    errors, _ = node_errors(g, boxes, F32)
    prior = row_slack(C, errors[-1].flatten(1))
    rows = row_errors(g, boxes, C, F32)
    assert rows is not None and float((rows / prior).max()) < 0.2


def test_the_ladder_bounds_the_rounding_again_on_crowns_bounds():
    """check()'s subject: the first slack is on interval bounds; after CROWN learnt per-node bounds of a
    sample it left open, the slack is recomputed on them, never larger."""
    torch.manual_seed(4)
    layers: list[nn.Module] = [nn.Linear(5, 40), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Linear(40, 40), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(40, 3)).eval()
    x = torch.rand(3, 5)
    y = net(x).argmax(1)
    ctx = StepContext(model=net, inputs=x, labels=y, ball=LpBall(0.5, "linf", None), seed=0, timeout=20,
                      spent=[0.0] * 3, escalate="crown")
    ctx.guard([0, 1, 2])
    before = {i: ctx.slack[i][0].copy() for i in range(3)}
    out = ProverRung("crown").run(ctx, [0, 1, 2])
    open_ = [i for i in range(3) if out[i].verdict is None]
    assert open_, "the case needs a sample CROWN leaves open"
    for i in range(3):
        assert bool((ctx.slack[i][0] <= before[i]).all())
    assert any(bool((ctx.slack[i][0] < 0.5 * before[i]).all()) for i in open_)


def test_the_input_split_judges_each_sub_box_on_its_own_rounding():
    """A 2-input net on a wide box: the whole box's slack (0.015) exceeds the exact margin (0.01), so a
    search judged on it never closes; each sub-box's own, smaller slack lets the input split prove it."""
    import numpy as np

    from robustest.provers import PROVERS, Known, ProofTask

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                        nn.Linear(16, 1)).eval()
    x0 = torch.zeros(1, 2, dtype=torch.float64)
    ball = LpBall(1000.0, "linf", None)
    g = read_model(net, x0.float())
    pts = (torch.rand(200000, 2, dtype=torch.float64) * 2 - 1) * 1000.0
    d = torch.tensor([[-(float(g(pts).min()) - 0.01)]], dtype=torch.float64)
    task = ProofTask(g, x0, ball, torch.ones(1, 1, 1, dtype=torch.float64), d, (0,),
                     known=(Known(np.full(1, -np.inf)),))
    slack, _ = task.float_slack(F32)
    assert float(slack) > 0.01
    (plain,) = PROVERS["bab"].prove(task, deadline=float("inf"))
    assert plain.status == "proved"
    (whole,) = PROVERS["bab"].prove(task.guarded(slack), deadline=float("inf"))
    assert whole.status != "proved"
    (split,) = PROVERS["bab"].prove(task.guarded(slack, F32), deadline=float("inf"))
    assert split.status == "proved", split.reason
