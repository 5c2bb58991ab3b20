"""robustest.check / robustest.attack: the contract, the verdicts, re-checks, budgets, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import robustest
from robustest.errors import HealthCheckError, InvalidArgument, ModelError, ShapeError
from robustest.ladder import StepContext, StepOutcome


def test_check_contract(digits_mlp):
    model, x, y = digits_mlp
    report = robustest.check(model, x[:60], y[:60], eps=0.08, norm="linf", escalate="attack", timeout=10.0,
                             domain=(0.0, 1.0), seed=0)
    assert len(report.samples) == 60 and report.verdicts == [s.verdict for s in report.samples]
    assert set(report.verdicts) <= {"falsified", "unknown"}  # attacks alone never certify
    assert "falsified" in report.verdicts and "unknown" in report.verdicts
    for s in report.samples:
        assert s.seconds >= 0
        if s.verdict == "falsified":
            ce = s.counterexample
            assert ce is not None and ce.shape == x[s.index].shape
            assert float((ce - x[s.index]).abs().max()) <= 0.08 + 1e-6
            assert 0.0 <= float(ce.min()) and float(ce.max()) <= 1.0
            assert int(model(ce[None]).argmax(1)) == s.predicted != s.label
            assert s.figure is not None and s.figure < 0
            assert math.isclose(s.distance, float((ce - x[s.index]).abs().max()), rel_tol=1e-5)
            assert s.message(report.ball).startswith("falsified: eps=0.08 linf |d|=")
            assert f"label {s.label} -> {s.predicted} by " in s.message(report.ball)
        else:
            assert s.counterexample is None and s.method == "attack"


def test_misclassified_samples_are_not_attacked(digits_mlp):
    model, x, y = digits_mlp
    wrong = (y + 1) % 10
    report = robustest.check(model, x[:5], wrong[:5], eps=0.05)
    assert report.verdicts == ["misclassified"] * 5
    assert all(s.method == "clean" and s.predicted == int(y[s.index]) for s in report.samples)


def test_check_is_deterministic_for_a_seed(digits_mlp):
    model, x, y = digits_mlp
    a = robustest.check(model, x[:40], y[:40], eps=0.06, seed=3)
    b = robustest.check(model, x[:40], y[:40], eps=0.06, seed=3)
    assert a.verdicts == b.verdicts
    for s, t in zip(a.samples, b.samples):
        assert (s.counterexample is None) == (t.counterexample is None)
        if s.counterexample is not None:
            assert torch.equal(s.counterexample, t.counterexample)


def test_l2_check_and_numpy_inputs(digits_mlp):
    model, x, y = digits_mlp
    report = robustest.check(model, x[:30].numpy(), y[:30].numpy(), eps=1.0, norm="l2")
    for s in report.samples:
        if s.counterexample is not None:
            assert float((s.counterexample - x[s.index]).norm()) <= 1.0 + 1e-5


def test_pass_criterion(digits_mlp):
    model, x, y = digits_mlp
    report = robustest.check(model, x[:50], y[:50], eps=0.08)
    frac = report.pass_fraction()
    assert 0 < frac < 1
    assert report.passed(min_pass=frac) and not report.passed(min_pass=1.0)
    assert not report.passed(require="certified", min_pass=0.01)
    assert "FAILED" in report.summary()


def test_a_rung_whose_counterexample_fails_the_recheck_is_demoted(monkeypatch, digits_mlp):
    """A certifier that claims a counterexample which is not one must not produce "falsified"."""
    from robustest import ladder

    class Liar(ladder.Rung):
        def run(self, ctx: StepContext, indices):
            return {i: StepOutcome("falsified", counterexample=ctx.inputs[i].clone(), method="liar")
                    for i in indices}

    monkeypatch.setattr(ladder, "rungs", lambda escalate: [Liar()])
    model, x, y = digits_mlp
    report = robustest.check(model, x[:5], y[:5], eps=0.05)
    assert report.verdicts == ["unknown"] * 5
    assert all("failed the forward-pass re-check" in s.reason for s in report.samples)


def test_budget_used_up_gives_unknown_with_reason(digits_mlp):
    model, x, y = digits_mlp
    report = robustest.check(model, x[:20], y[:20], eps=0.001, timeout=1e-9)
    assert set(report.verdicts) <= {"unknown", "falsified"}
    assert any("budget" in s.reason for s in report.samples if s.verdict == "unknown")


def test_attack_contract(digits_mlp):
    model, x, y = digits_mlp
    adv = robustest.attack(model, x, y, eps=0.05, norm="linf", method="apgd")
    assert adv.adversarial.shape == x.shape and adv.success.shape == (len(y),)
    broken = adv.success
    assert torch.equal(model(adv.adversarial).argmax(1) != y, broken)
    assert torch.equal(adv.adversarial[~broken], x[~broken])
    assert float(adv.distance.max()) <= 0.05 + 1e-6
    assert all((m != "") == bool(b) for m, b in zip(adv.method, broken))
    auto = robustest.attack(model, x, y, eps=0.05, method="auto")
    assert auto.success_rate >= adv.success_rate


def test_targeted_attack_api(digits_mlp):
    model, x, y = digits_mlp
    t = (y + 1) % 10
    adv = robustest.attack(model, x, y, eps=0.3, method="pgd", targets=t, steps=50)
    assert adv.success_rate > 0
    assert torch.equal(adv.predicted[adv.success], t[adv.success])


def bad_calls(model, x, y):
    return [
        (dict(eps=-0.1), InvalidArgument, "eps=-0.1"),
        (dict(eps=float("nan")), InvalidArgument, "eps=nan"),
        (dict(eps=0.1, norm="l3"), InvalidArgument, "norm='l3'"),
        (dict(eps=0.1, escalate="smt"), InvalidArgument, "escalate='smt'"),
        (dict(eps=0.1, timeout=0), InvalidArgument, "timeout=0"),
        (dict(eps=0.1, seed=-1), InvalidArgument, "seed=-1"),
        (dict(eps=0.1, attacks=["cw"]), InvalidArgument, "method='cw'"),
        (dict(eps=0.1, domain=(1.0, 0.0)), InvalidArgument, "domain="),
    ]


def test_bad_arguments_are_named(digits_mlp):
    model, x, y = digits_mlp
    for kwargs, cls, text in bad_calls(model, x, y):
        with pytest.raises(cls) as exc:
            robustest.check(model, x[:3], y[:3], **kwargs)
        assert text in str(exc.value) and "Fix:" in str(exc.value), kwargs


def test_bad_data_is_named(digits_mlp):
    model, x, y = digits_mlp
    with pytest.raises(ShapeError, match=r"labels=.*shape \(3,\)"):
        robustest.check(model, x[:3], y[:4], eps=0.1)
    with pytest.raises(ShapeError, match="batch"):
        robustest.check(model, x[0], y[:1], eps=0.1)
    with pytest.raises(InvalidArgument, match=r"class indices in \[0, 9\]"):
        robustest.check(model, x[:3], torch.tensor([0, 1, 12]), eps=0.1)
    nan = x[:3].clone()
    nan[1, 0] = float("nan")
    with pytest.raises(InvalidArgument, match=r"NaN or Inf in sample\(s\) \[1\]"):
        robustest.check(model, nan, y[:3], eps=0.1)
    with pytest.raises(InvalidArgument, match=r"outside"):
        robustest.check(model, x[:3] * 16, y[:3], eps=0.1)
    with pytest.raises(ModelError, match="callable"):
        robustest.check(model.state_dict(), x[:3], y[:3], eps=0.1)
    with pytest.raises(ModelError, match=r"logits of shape \(3, K\)"):
        robustest.check(lambda t: t.sum(1), x[:3], y[:3], eps=0.1)
    with pytest.raises(InvalidArgument, match="labels"):
        robustest.check(model, x[:3], np.array([0.5, 1.0, 2.0]), eps=0.1)


def test_train_mode_is_an_error_unless_suppressed(digits_mlp):
    model, x, y = digits_mlp
    model.train()
    try:
        with pytest.raises(HealthCheckError, match=r"model.eval\(\)"):
            robustest.check(model, x[:3], y[:3], eps=0.1)
        report = robustest.check(model, x[:3], y[:3], eps=0.1, suppress_health_check=["train_mode"])
        assert any("train_mode" in w for w in report.warnings)
    finally:
        model.eval()


def test_ball_object_is_accepted(digits_mlp):
    model, x, y = digits_mlp
    ball = robustest.LpBall(eps=0.05, norm="l2", domain=(0.0, 1.0))
    assert robustest.check(model, x[:4], y[:4], eps=ball).ball == ball


def test_a_bare_layer_can_be_certified():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3).eval()
    x = torch.rand(20, 4)
    y = model(x).argmax(1)
    report = robustest.check(model, x, y, eps=1e-4, escalate="ibp")
    assert "certified" in report.verdicts
