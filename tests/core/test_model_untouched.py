"""robustest never changes a user's model: parameters, buffers (BatchNorm running statistics) and the
train/eval flags of every submodule are the same after every public function, for every rung."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import robustest
from robustest.errors import HealthCheckError


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 3))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.1, 0.1)
        net[1].running_var.uniform_(0.5, 1.5)
    return net.eval()


def _data(net):
    x = torch.rand(6, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, net(x).argmax(1)


def _snapshot(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, [m.training for m in net.modules()]


def _same(net, snap):
    state, flags = snap
    now = net.state_dict()
    assert state.keys() == now.keys()
    for k in state:
        assert torch.equal(state[k], now[k]), k
    assert [m.training for m in net.modules()] == flags


CALLS = {
    **{f"check-{rung}": (lambda net, x, y, rung=rung: robustest.check(net, x, y, eps=0.02, escalate=rung))
       for rung in ("attack", "ibp", "crown", "lp", "milp")},
    "attack": lambda net, x, y: robustest.attack(net, x, y, eps=0.05, method="pgd", steps=5),
    "bounds": lambda net, x, y: robustest.bounds(net, x, eps=0.02, method="crown"),
    "radius": lambda net, x, y: robustest.radius(net, x[:2], y[:2], norm="linf", certifier="crown"),
    "repair": lambda net, x, y: robustest.repair(net, adversarial=(x[:2], (y[:2] + 1) % 3), train=(x, y),
                                                 iterations=1, steps=2),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_public_functions_leave_the_model_as_it_was(name):
    net = _net()
    x, y = _data(net)
    snap = _snapshot(net)
    CALLS[name](net, x, y)
    _same(net, snap)


@pytest.mark.parametrize("name", ["check-attack", "attack", "radius"])
def test_a_train_mode_submodule_is_refused_before_any_forward_pass(name):
    """The top module in eval mode but its BatchNorm in train mode: a forward pass would overwrite the
    running statistics; robustest must refuse (naming the submodule) without touching them."""
    net = _net()
    x, y = _data(net)
    net[1].train()
    snap = _snapshot(net)
    with pytest.raises(HealthCheckError, match=r"train mode.*\b1\b.*model\.eval\(\)"):
        CALLS[name](net, x, y)
    _same(net, snap)


def test_suppressed_train_mode_check_still_leaves_buffers_unchanged():
    net = _net()
    x, y = _data(net)
    net[3].train()  # dropout only: the check runs through
    report = robustest.check(net, x, y, eps=0.02, suppress_health_check=["train_mode"])
    assert any("train_mode" in w for w in report.warnings)
    net[1].train()  # batch norm too: its statistics are put back whether or not the check gets through
    snap = _snapshot(net)
    try:
        robustest.check(net, x, y, eps=0.02, suppress_health_check=["train_mode"])
    except ValueError:  # torch refuses a train-mode BatchNorm on a batch of one inside the attacks
        pass
    _same(net, snap)
