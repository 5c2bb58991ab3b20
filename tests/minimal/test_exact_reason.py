"""``radius(exact=True)`` says why a sample has no exact minimum (JSON null has a reason beside it)."""

from __future__ import annotations

import json

import pytest
import torch

import robustest
from robustest.minimal import exact as exact_module
from robustest.minimal.exact import ExactResult


def constant_net():
    """Logits (5, 0) whatever the input: label 0 never changes, the radius is infinite."""
    first, last = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        first.weight.zero_()
        first.bias.copy_(torch.tensor([5.0, 0.0]))
        last.weight.copy_(torch.eye(2))
        last.bias.zero_()
    return torch.nn.Sequential(first, torch.nn.ReLU(), last).eval()


def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2)).eval()


@pytest.mark.filterwarnings("ignore:Health check gradients")  # a constant net has zero gradients
def test_an_infinite_minimum_is_null_in_json_with_its_reason():
    net = constant_net()
    x = torch.rand(2, 2)
    rep = robustest.radius(net, x, torch.zeros(2, dtype=torch.long), norm="linf", exact=True, timeout=5)
    for s in json.loads(json.dumps(rep.to_dict()))["samples"]:
        assert s["exact"] is None and "infinite" in s["exact_reason"]


def test_a_time_limit_says_so(monkeypatch):
    def timed_out(*args, upper, **kwargs):
        return ExactResult(value=upper, bound=0.0, status="time_limit", point=None, seconds=0.0)

    monkeypatch.setattr(exact_module, "exact_minimum", timed_out)
    net = small_net()
    x = torch.rand(3, 2, generator=torch.Generator().manual_seed(1))
    rep = robustest.radius(net, x, net(x).argmax(1), norm="linf", exact=True, timeout=0.5,
                           certifier=None)
    found = [s for s in rep.samples if s.exact is None and s.upper < float("inf")]
    assert found and all(s.exact_reason.startswith("time limit of 0.5 s reached; the minimum lies in [")
                         for s in found)
    assert all(s.seconds >= 0 for s in rep.samples)
