"""Bad input to robustest.repair gets a clear robustest error (argument, value, expectation, fix)."""

from __future__ import annotations

import pytest
import torch

import robustest
from robustest.errors import InvalidArgument, ModelError


def _setup():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    x = torch.rand(40, 6)
    y = net(x).argmax(1)
    x_adv = torch.rand(4, 6)
    y_adv = (net(x_adv).argmax(1) + 1) % 3
    return net, (x, y), (x_adv, y_adv)


def test_no_adversarial_points():
    net, train, _ = _setup()
    with pytest.raises(InvalidArgument, match="adversarial=.*at least one adversarial point"):
        robustest.repair(net, (torch.zeros(0, 6), torch.zeros(0, dtype=torch.long)), train)
    with pytest.raises(InvalidArgument, match="adversarial=None.*eps="):
        robustest.repair(net, None, train)


def test_labels_out_of_range():
    net, train, (x_adv, _) = _setup()
    with pytest.raises(InvalidArgument, match=r"adversarial labels=\[7\].*\[0, 2\]"):
        robustest.repair(net, (x_adv, torch.tensor([0, 1, 7, 2])), train)
    with pytest.raises(InvalidArgument, match="train labels"):
        robustest.repair(net, (x_adv, torch.zeros(4, dtype=torch.long)), (train[0], train[1] + 5))


def test_points_already_correct_say_nothing_to_fix():
    net, train, (x_adv, _) = _setup()
    right = net(x_adv).argmax(1)
    with pytest.raises(InvalidArgument, match="nothing to fix"):
        robustest.repair(net, (x_adv, right), train)


def test_model_with_frozen_parameters_or_buffers_only():
    net, train, adv = _setup()
    for p in net.parameters():
        p.requires_grad_(False)
    with pytest.raises(ModelError, match="no trainable parameters.*requires_grad_"):
        robustest.repair(net, adv, train)

    class BufferOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w", torch.randn(6, 3))

        def forward(self, x):
            return x @ self.w

    with pytest.raises(ModelError, match="no trainable parameters"):
        robustest.repair(BufferOnly(), adv, train)


def test_infeasible_cuts_report_the_slack_instead_of_failing():
    net, train, (x_adv, _) = _setup()
    # the same input with two different labels and a positive margin: no weights satisfy both
    x2 = torch.cat([x_adv[:1], x_adv[:1]])
    z = net(x2).argmax(1)
    y2 = torch.stack([(z[0] + 1) % 3, (z[0] + 2) % 3])
    res = robustest.repair(net, (x2, y2), train, iterations=2, steps=2, margin=0.1, penalty=10.0)
    assert any(q.status == "elastic" for q in res.qp)
    assert res.max_slack > 0.05
    assert any("could not all be met" in n for n in res.notes)


@pytest.mark.parametrize("kwargs, match", [
    ({"omega": 2.0}, "omega=2.0"), ({"iterations": 0}, "iterations=0"), ({"solver": "cplex"}, "solver="),
    ({"margin": -1.0}, "margin=-1.0"), ({"wrong_classes": 0}, "wrong_classes=0"),
    ({"block": 1.0}, "block=1.0"), ({"eps": -0.1}, "eps=-0.1"),
])
def test_bad_options(kwargs, match):
    net, train, adv = _setup()
    with pytest.raises(InvalidArgument, match=match):
        robustest.repair(net, adv, train, iterations=kwargs.pop("iterations", 1), **kwargs)


def test_not_a_module_and_no_train():
    _, train, adv = _setup()
    with pytest.raises(ModelError, match="torch.nn.Module"):
        robustest.repair(lambda x: x, adv, train)
    net, _, _ = _setup()
    with pytest.raises(InvalidArgument, match="train=None"):
        robustest.repair(net, adv)
