"""Budgets are promises: every long loop checks its deadline. Each test gives a case that cannot finish in
its budget (a CROWN pass over wide conv layers, a MILP with hundreds of unstable ReLUs, a BaB on a box far
too wide, a check() on a conv net) a tight budget, and asserts that it returns within the budget plus a
generous slack (the suite runs on a loaded machine) with a sound, undecided or looser result."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

import robustest
from robustest.certify.bab import bab_mlp
from robustest.certify.crown import crown
from robustest.certify.encode import numpy_boxes
from robustest.certify.ibp import interval_bounds
from robustest.certify.milp import milp_verify
from robustest.certify.mlp import dense_mlp, root_bounds
from robustest.certify.refine import refine_bounds
from robustest.graph import read_model
from robustest.spec import LpBall, margin_matrix


def within(seconds: float, budget: float) -> bool:
    """The contract, with room for a loaded machine: the budget plus 2 s plus half of it."""
    return seconds <= budget * 1.5 + 2.0


def _conv_net() -> nn.Module:
    """Two conv layers of 4k-5k neurons: a full CROWN pass takes ~20 s on one loaded core."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(32 * 16 * 16, 10)).eval()


def _mlp(widths: list[int], d: int) -> nn.Module:
    torch.manual_seed(1)
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(d, w), nn.ReLU()]
        d = w
    return nn.Sequential(*layers, nn.Linear(d, 10)).double().eval()


def test_crown_stops_at_its_deadline_and_stays_sound():
    net = _conv_net()
    x = torch.rand(1, 1, 20, 20, dtype=torch.float64)
    graph = read_model(net, x.float())
    ball = LpBall(0.02, "linf", (0.0, 1.0))
    C = margin_matrix(torch.tensor([0]), 10).double()
    start = time.perf_counter()
    crown(graph, x, ball, C, deadline=start)  # the least any call does: interval bounds, the output pass
    floor = time.perf_counter() - start
    start = time.perf_counter()
    res = crown(graph, x, ball, C, deadline=start + 0.5)
    assert within(time.perf_counter() - start - floor, 0.5), floor
    lo, hi = ball.box(x)
    pts = lo + (hi - lo) * torch.rand((256,) + tuple(x.shape[1:]), dtype=torch.float64)
    with torch.no_grad():
        vals = torch.einsum("mk,nk->nm", C[0], net.double()(pts))
    assert bool((res.lower[0] <= vals.min(0).values + 1e-9).all())
    for (bl, bh), (il, ih) in zip(res.boxes, interval_bounds(graph, lo, hi)):  # never looser than IBP
        assert bool((bl >= il - 1e-9).all() and (bh <= ih + 1e-9).all())


def test_milp_that_cannot_finish_returns_at_its_time_limit():
    net = _mlp([100, 100, 100], 40)
    graph = read_model(net, torch.zeros(1, 40, dtype=torch.float64))
    x0 = torch.rand(40, dtype=torch.float64)
    ball = LpBall(0.5, "linf", None)
    lo, hi = ball.box(x0.unsqueeze(0))
    boxes = numpy_boxes(interval_bounds(graph, lo, hi), 0)  # loose big-M constants: a hard MILP
    label = int(net(x0.unsqueeze(0)).argmax())
    spec = margin_matrix(torch.tensor([label]), 10)[0].double().numpy()
    start = time.perf_counter()
    res = milp_verify(graph, x0, ball, spec, np.full(9, -np.inf), boxes, time_limit=1.0)
    assert within(time.perf_counter() - start, 1.0)
    assert res.verdict != "certified" or res.figure is not None


def test_bab_that_cannot_finish_stops_at_its_deadline():
    net = dense_mlp(read_model(_mlp([64, 64, 64], 10), torch.zeros(1, 10, dtype=torch.float64)))
    lo, hi = -torch.ones(10, dtype=torch.float64), torch.ones(10, dtype=torch.float64)
    C = torch.zeros(1, 1, 10, dtype=torch.float64)
    C[0, 0, 0] = 1.0
    with torch.no_grad():  # just below the smallest y_0 seen on 4096 points: hard to prove, hard to refute
        seen = net.forward(lo + (hi - lo) * torch.rand(4096, 10, dtype=torch.float64))[:, 0].min()
    b = (seen - 1e-3).reshape(1, 1)
    start = time.perf_counter()
    bounds = root_bounds(net, lo, hi, deadline=start + 1.0)
    bounds = refine_bounds(net, lo, hi, *bounds, deadline=start + 1.0)
    stats = bab_mlp(net, lo, hi, C, b, deadline=start + 1.0, bounds=bounds)
    assert within(time.perf_counter() - start, 1.0)
    assert stats.reason == "time is up"


def test_check_keeps_the_per_sample_budget_on_a_conv_net():
    net = _conv_net()
    x = torch.rand(1, 1, 20, 20)
    y = net(x).argmax(1)
    # crown only: the LP/MILP encoders stop between layers, but one conv layer's dense matrix (5k x 8k
    # here) is built in one go, and its time, predicted from the cheaper layers before it, can be 2-3 s
    # more than predicted on a loaded machine (the MILP case is test_milp_that_cannot_finish...)
    for escalate in ("crown",):
        start = time.perf_counter()
        report = robustest.check(net, x, y, eps=0.003, escalate=escalate, timeout=2.0, attacks=["pgd"])
        assert within(time.perf_counter() - start, 2.0), escalate
        assert within(report.samples[0].seconds, 2.0)
