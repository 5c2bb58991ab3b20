"""Branch and bound over ReLU splits: sound (a proof survives sampling), and it proves more than CROWN."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from robustest.certify.bab import bab
from robustest.certify.crown import crown
from robustest.graph import read_model
from robustest.spec import LpBall


def _setup(seed: int, width: float):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2)).eval()
    x0 = torch.rand(1, 3, dtype=torch.float64)
    ball = LpBall(width, "linf", None)
    return net, read_model(net, x0.float()), x0, ball


@settings(max_examples=25)
@given(seed=st.integers(0, 10_000), width=st.floats(0.05, 1.0), offset=st.floats(-2.0, 2.0))
def test_proofs_survive_sampling(seed, width, offset):
    net, graph, x0, ball = _setup(seed, width)
    a = torch.tensor([[1.0, -1.0]], dtype=torch.float64)  # property: y0 - y1 <= b is unreachable
    with torch.no_grad():
        y = net(x0.float()).double()
    b = torch.tensor([float((a @ y[0])) - offset], dtype=torch.float64)
    stats = bab(graph, x0, ball, a, b, deadline=float("inf"), max_domains=4000)
    if stats.proved:
        g = torch.Generator().manual_seed(seed)
        lo, hi = ball.box(x0)
        xs = lo + (hi - lo) * torch.rand(20_000, 3, generator=g, dtype=torch.float64)
        corners = torch.cartesian_prod(*[torch.stack([lo[0, i], hi[0, i]]) for i in range(3)])
        with torch.no_grad():
            ys = net(torch.cat([xs, corners]).float()).double()
        assert bool(((ys @ a.T).squeeze(1) > b - 1e-5).all())


def test_proves_what_one_crown_pass_cannot():
    import time

    found = 0
    for seed in range(6):
        net, graph, x0, ball = _setup(seed, 0.5)
        a = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
        crown_low = float(crown(graph, x0, ball, a.unsqueeze(0)).lower[0, 0])
        g = torch.Generator().manual_seed(seed)
        lo, hi = ball.box(x0)
        with torch.no_grad():
            ys = net((lo + (hi - lo) * torch.rand(20_000, 3, generator=g, dtype=torch.float64)).float()).double()
        sampled = float((ys @ a.T).min())
        # a threshold between CROWN's bound and the sampled minimum: CROWN alone cannot refute it
        b = torch.tensor([crown_low + 0.5 * (sampled - crown_low)], dtype=torch.float64)
        if bab(graph, x0, ball, a, b, deadline=time.perf_counter() + 5, max_domains=20_000).proved:
            found += 1
    assert found >= 1
