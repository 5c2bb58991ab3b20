"""Health checks warn with numbers and a way to silence them."""

from __future__ import annotations

import warnings

import pytest
import torch

import robustest
from robustest.checks import HealthCheck, HealthCheckWarning


def model_and_data(tail=None):
    torch.manual_seed(0)
    layers = [torch.nn.Linear(4, 3)] + ([tail] if tail is not None else [])
    model = torch.nn.Sequential(*layers).eval()
    x = torch.rand(10, 4)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def caught(model, x, y, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        robustest.check(model, x, y, eps=0.01, **kw)
    return [str(m.message) for m in w if issubclass(m.category, HealthCheckWarning)]


def test_probabilities_are_flagged_and_can_be_silenced():
    model, x, y = model_and_data(torch.nn.Softmax(dim=1))
    msgs = caught(model, x, y)
    assert any("probabilities" in m and "suppress_health_check" in m for m in msgs)
    assert caught(model, x, y, suppress_health_check=[HealthCheck.probabilities]) == []


class Noisy(torch.nn.Module):
    def forward(self, x):
        return torch.cat([x[:, :1] + 0.01 * torch.randn(len(x), 1), -x[:, :1]], 1)


class Rounded(torch.nn.Module):
    def forward(self, x):
        z = torch.cat([x[:, :1], 1 - x[:, :1]], 1)
        return z.round()  # zero gradient everywhere


def test_nondeterministic_outputs_are_flagged():
    x = torch.rand(10, 3)
    msgs = caught(Noisy().eval(), x, torch.zeros(10, dtype=torch.long), suppress_health_check=["gradients"])
    assert any("nondeterministic" in m and "differ by up to" in m for m in msgs)


def test_zero_gradients_are_flagged():
    x = torch.rand(10, 3)
    y = Rounded()(x).argmax(1)
    msgs = caught(Rounded().eval(), x, y)
    assert any("zero input gradients on 10 of 10" in m for m in msgs)


def test_a_healthy_model_gives_no_warning(digits_mlp):
    model, x, y = digits_mlp
    assert caught(model, x[:20], y[:20]) == []


def test_unknown_health_check_name():
    model, x, y = model_and_data()
    with pytest.raises(robustest.InvalidArgument, match="suppress_health_check"):
        robustest.check(model, x, y, eps=0.1, suppress_health_check=["everything"])
