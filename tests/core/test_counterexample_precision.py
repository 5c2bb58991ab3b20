"""Counterexamples lie strictly inside the ball in the model's dtype (no rounding slack), and one whose
label flips only at float32 precision says so (the float64 re-check)."""

from __future__ import annotations

import torch
from torch import nn

from robustest.ladder import StepContext, StepOutcome
from robustest.spec import LpBall


class _Threshold(nn.Module):
    """Class 1 iff x0 > t (float32 logits (t - x0, x0 - t)); in float64 the same weights give the exact sign."""

    def __init__(self, t: float) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[-1.0], [1.0]]))
            self.lin.bias.copy_(torch.tensor([t, -t]))

    def forward(self, x):
        return self.lin(x)


def _ctx(model, x0, eps, norm="linf"):
    return StepContext(model=model.eval(), inputs=x0, labels=torch.zeros(len(x0), dtype=torch.long),
                       ball=LpBall(eps, norm, None), seed=0, timeout=10.0, spent=[0.0] * len(x0))


def test_counterexample_one_ulp_outside_is_pulled_strictly_inside():
    x0 = torch.tensor([[0.3]])
    eps = 1e-3
    outside = torch.nextafter(x0 + eps, torch.tensor(2.0))  # float32 rounding: |delta| = eps + 1 ulp
    while float((outside.double() - x0.double()).abs().max()) <= eps:
        outside = torch.nextafter(outside, torch.tensor(2.0))
    model = _Threshold(0.3 + eps / 2)
    ctx = _ctx(model, x0, eps)
    outcomes = {0: StepOutcome("falsified", counterexample=outside[0].clone(), method="test")}
    ctx.recheck(outcomes)
    o = outcomes[0]
    assert o.verdict == "falsified"
    assert float((o.counterexample.double() - x0[0].double()).abs().max()) <= eps  # exactly, in float64
    assert o.distance <= eps


class _RoundsUp(nn.Module):
    """logits (-c, (x + a) - b): at x = 1, float32 rounds x + a = 1 + 1.5 * 2**-24 up to b = 1 + 2**-23, so
    the logits are (-c, 0) and the label flips to 1; in exact (float64) arithmetic the second logit is
    -0.5 * 2**-24 < -c and the label stays 0."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.5 * 2.0 ** -24))
        self.b = nn.Parameter(torch.tensor(1.0 + 2.0 ** -23))
        self.c = nn.Parameter(torch.tensor(2.0 ** -30))

    def forward(self, x):
        return torch.stack([-self.c.expand(x.shape[0]), (x[:, 0] + self.a) - self.b], 1)


def test_float32_only_flip_is_reported_as_such():
    model = _RoundsUp().eval()
    x0, point = torch.tensor([[0.5]]), torch.tensor([1.0])
    with torch.no_grad():
        assert int(model(x0).argmax(1)) == 0 and int(model(point[None]).argmax(1)) == 1
        assert int(model.double()(point[None].double()).argmax(1)) == 0
    model = _RoundsUp().eval()
    outcomes = {0: StepOutcome("falsified", counterexample=point.clone(), method="test")}
    _ctx(model, x0, 0.5).recheck(outcomes)
    assert outcomes[0].verdict == "falsified"  # the model as it runs does flip
    assert "precision (torch.float32) only" in outcomes[0].reason and "float64" in outcomes[0].reason
    assert model.a.dtype == torch.float32  # the float64 re-check ran on a copy


def test_a_solver_failure_on_one_sample_leaves_only_that_sample_unknown(monkeypatch):
    """A rung whose solver fails on sample 1 (as HiGHS rejecting a model did for a whole batch) makes
    sample 1 unknown with the reason; the other samples are still decided and the check returns."""
    import robustest
    from robustest import ladder
    from robustest.errors import SolverError

    class Flaky(ladder.Rung):
        name = "lp"

        def run(self, ctx, indices):
            if 1 in indices:
                raise SolverError("HiGHS rejected the model (223 columns, 136 rows)")
            return {i: StepOutcome("certified", figure=1.0, method="lp") for i in indices}

    monkeypatch.setattr(ladder, "rungs", lambda escalate: [Flaky()])
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 2)).eval()
    x = torch.rand(3, 2)
    with torch.no_grad():
        y = net(x).argmax(1)
    report = robustest.check(net, x, y, eps=0.01, escalate="lp")
    assert report.verdicts == ["certified", "unknown", "certified"]
    assert "solver failed" in report.samples[1].reason and "HiGHS rejected" in report.samples[1].reason
