"""The masking health check: it names masked gradients, with numbers, on a model behind an input rounding,
stays quiet on the plain model, and can be silenced."""

from __future__ import annotations

import warnings

import torch

import robustest
from robustest.checks import HealthCheckWarning, masking_check
from robustest.spec import LpBall


class Quantised(torch.nn.Module):
    """The digits MLP after rounding its input to the data's grey levels: zero input gradient."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 16) / 16)


def caught(model, x, y, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        report = robustest.check(model, x, y, eps=0.1, **kw)
    return report, [str(m.message) for m in w if issubclass(m.category, HealthCheckWarning)]


def test_masking_is_named_on_a_rounded_model_and_square_breaks_it(digits_mlp):
    model, x, y = digits_mlp
    masked = Quantised(model).eval()
    report, msgs = caught(masked, x[:40], y[:40], strength="fast")
    by_square = sum(s.method == "square" for s in report.samples)
    assert by_square > 0
    masking = [m for m in msgs if m.startswith("Health check masking")]
    assert len(masking) == 1
    assert f"broke {by_square} of " in masking[0] and "suppress_health_check=['masking']" in masking[0]
    for s in report.samples:  # every counterexample is sound: in the ball and domain, label flipped
        if s.verdict == "falsified":
            ce = s.counterexample.reshape(1, -1)
            assert float((ce - x[s.index]).abs().max()) <= 0.1 + 1e-6 and 0 <= float(ce.min())
            assert float(ce.max()) <= 1 and int(masked(ce).argmax(1)) != s.label
    _, quiet = caught(masked, x[:40], y[:40], strength="fast", suppress_health_check=["masking", "gradients"])
    assert quiet == []


def test_masking_stays_quiet_on_the_plain_model(digits_mlp):
    model, x, y = digits_mlp
    report, msgs = caught(model, x[:40], y[:40], strength="fast")
    assert report.counts()["falsified"] > 0 and msgs == []


def test_masking_probe_flags_a_model_gradient_attacks_cannot_move():
    """No gradient-free success reported, but PGD cannot even cross the domain: the probe says so."""
    torch.manual_seed(0)
    inner = torch.nn.Linear(3, 2).eval()
    rounded = torch.nn.Sequential(Rounder(), inner).eval()
    x = torch.rand(16, 3)
    y = rounded(x).argmax(1)
    msgs = masking_check(rounded, x, y, LpBall(0.05), gradient_free=0, attacked=16,
                         generator=torch.Generator().manual_seed(0))
    assert len(set(y.tolist())) > 1, "the batch must hold two classes for the unbounded probe"
    assert len(msgs) == 1 and "unbounded radius" in msgs[0]


class Rounder(torch.nn.Module):
    def forward(self, x):
        return torch.round(x * 4) / 4
