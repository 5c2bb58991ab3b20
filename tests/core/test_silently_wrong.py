"""Inputs that used to give a plausible answer to the wrong question now give a clear error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robustest
from robustest.errors import InvalidArgument, ModelError, ShapeError


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    x = torch.rand(5, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = net(x).argmax(1)
    return net, x, y


def test_bool_labels_are_refused(tiny):
    net, x, y = tiny
    with pytest.raises(InvalidArgument, match=r"labels=.*True/False.*Fix: pass labels.long\(\)"):
        robustest.check(net, x, y == 1, eps=0.01)


@pytest.mark.parametrize("domain", [(float("nan"), 1.0), (0.0, torch.tensor([1.0, float("nan"), 1.0, 1.0]))])
def test_nan_in_domain_is_refused(tiny, domain):
    net, x, y = tiny
    with pytest.raises(InvalidArgument, match=r"domain=.*(NaN|lo < hi).*Fix:"):
        robustest.check(net, x, y, eps=0.01, domain=domain)
    with pytest.raises(InvalidArgument, match=r"domain=.*(NaN|lo < hi)"):
        robustest.attack(net, x, y, eps=0.01, domain=domain)


def test_empty_batch_is_refused(tiny):
    net, x, y = tiny
    with pytest.raises(ShapeError, match=r"inputs=.*at least one sample"):
        robustest.check(net, x[:0], y[:0], eps=0.01)


class _NanNet(nn.Module):
    def forward(self, x):
        out = torch.zeros(x.shape[0], 3)
        out[0, 1] = float("nan")
        return out


def test_nan_logits_are_an_error(tiny):
    _, x, y = tiny
    with pytest.raises(ModelError, match=r"NaN/Inf logits for sample\(s\) \[0\].*Fix:"):
        robustest.check(_NanNet().eval(), x, torch.zeros(5, dtype=torch.long), eps=0.01)


def test_unknown_solver_is_refused_even_when_no_rung_uses_it(tiny):
    net, x, y = tiny
    with pytest.raises(InvalidArgument, match=r"solver='cplex'.*Fix: .*solver='highs'"):
        robustest.check(net, x, y, eps=0.01, escalate="attack", solver="cplex")
