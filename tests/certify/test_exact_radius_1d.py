"""Every prover against an exact oracle on tiny networks: one input, one hidden ReLU layer, two classes.

The margin ``z_label - z_other`` is piecewise linear in the input with kinks only where a hidden
pre-activation is zero, so its minimum over an interval is attained at an end or at a kink: the exact
minimum (float64, from the float32 weights) and the exact radius (the nearest point where the margin hits
0) are computed directly. At ``eps`` just past the exact radius no rung may certify; just inside it no
rung may falsify."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import robustest


def _net(seed: int, width: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 2)).eval()


def _margin64(net: nn.Module, x: np.ndarray, label: int) -> np.ndarray:
    w1, b1 = net[0].weight.detach().double().numpy()[:, 0], net[0].bias.detach().double().numpy()
    w2, b2 = net[2].weight.detach().double().numpy(), net[2].bias.detach().double().numpy()
    h = np.maximum(0.0, np.outer(x, w1) + b1)
    z = h @ w2.T + b2
    return z[:, label] - z[:, 1 - label]


def _exact_radius(net: nn.Module, x0: float, label: int) -> float:
    """The distance from x0 to the nearest point with margin <= 0 (inf when there is none)."""
    w1, b1 = net[0].weight.detach().double().numpy()[:, 0], net[0].bias.detach().double().numpy()
    kinks = sorted(set((-b1[w1 != 0] / w1[w1 != 0]).tolist()))
    best = np.inf
    for direction in (-1.0, 1.0):
        pts = [x0] + [k for k in (kinks if direction > 0 else kinks[::-1]) if (k - x0) * direction > 0]
        pts.append(x0 + direction * 1e6)
        m = _margin64(net, np.array(pts), label)
        for a, b, ma, mb in zip(pts, pts[1:], m, m[1:]):
            if mb <= 0:  # the margin is linear on [a, b]: its zero
                root = a + (b - a) * ma / (ma - mb) if ma != mb else a
                best = min(best, abs(root - x0))
                break
    return best


@pytest.mark.parametrize("rung", ["ibp", "crown", "lp", "milp"])
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.integers(1, 4), x0=st.floats(-1.0, 1.0, width=32))
def test_no_certificate_past_the_exact_radius_and_no_counterexample_inside(rung, seed, width, x0):
    net = _net(seed, width)
    x = torch.tensor([[x0]], dtype=torch.float32)
    with torch.no_grad():
        label = int(net(x).argmax(1))
    r = _exact_radius(net, float(x[0, 0]), label)
    if not np.isfinite(r) or r < 1e-4 or r > 50:
        return
    past = robustest.check(net, x, torch.tensor([label]), eps=r * (1 + 1e-4), escalate=rung, domain=None,
                           timeout=20)
    assert past.verdicts[0] != "certified", (seed, width, x0, r, past.samples[0])
    inside = robustest.check(net, x, torch.tensor([label]), eps=r * (1 - 1e-3), escalate=rung, domain=None,
                             timeout=20)
    assert inside.verdicts[0] != "falsified", (seed, width, x0, r, inside.samples[0])
    if rung == "milp":  # complete on a net this small: both sides are decided, and rightly
        assert (inside.verdicts[0], past.verdicts[0]) == ("certified", "falsified"), (seed, width, x0, r)
