"""robustest.radius: re-checked perturbations, reported norms, lower <= upper, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

import robustest
from robustest.errors import InvalidArgument, ShapeError
from robustest.minimal.lr_qp import LrQpSettings

FAST = LrQpSettings(n1=2, n2=4, n3=1, n4=1)


def _net(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3)).eval()


def _check_report(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, report: robustest.RadiusReport,
                  norm: str) -> None:
    assert len(report.samples) == x.shape[0]
    for s in report.samples:
        assert s.lower <= s.upper
        if s.exact is not None:
            assert s.lower <= s.exact + 1e-9 and s.exact <= s.upper + 1e-9
        if s.misclassified:
            assert s.upper == 0.0
            continue
        if s.adversarial is None:
            assert math.isinf(s.upper)
            continue
        with torch.no_grad():
            pred = int(model(s.adversarial[None]).argmax(1)[0])
        assert pred != int(y[s.index]) and pred == s.predicted
        d = float(robustest.LpBall(0.0, norm).distance(s.adversarial[None], x[s.index:s.index + 1])[0])
        assert d == pytest.approx(s.upper, rel=1e-6, abs=1e-9)
        assert float(s.adversarial.min()) >= 0.0 and float(s.adversarial.max()) <= 1.0


@pytest.mark.parametrize("norm", ["l2", "linf", "l1"])
@pytest.mark.parametrize("method", ["auto", "deepfool", "pgd"])
def test_every_perturbation_flips_the_label_and_has_the_reported_norm(norm: str, method: str) -> None:
    if method == "pgd":
        pytest.importorskip("robustest.api")
    model = _net()
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    y[3] = (y[3] + 1) % 3  # one misclassified sample
    report = robustest.radius(model, x, y, norm=norm, method=method, certifier=None, lr_qp_settings=FAST)
    _check_report(model, x, y, report, norm)
    assert report.samples[3].misclassified
    assert report.to_dict()["samples"][3]["upper"] == 0.0


def test_lower_bound_by_certifier_bisection_stays_below_upper() -> None:
    from robustest.ladder import rungs

    try:
        rungs("crown")
    except ImportError:
        pytest.skip("the CROWN rung of robustest.check is not available in this build")
    model = _net(3)
    x = torch.rand(3, 3, generator=torch.Generator().manual_seed(2))
    y = model(x).argmax(1)
    report = robustest.radius(model, x, y, norm="linf", certifier="crown", lower_steps=6, lr_qp_settings=FAST)
    _check_report(model, x, y, report, "linf")
    assert report.samples[0].lower_method == "crown"
    # the certified radius is certified: the model keeps its label at the lower end for a real attack
    for s in report.samples:
        if s.lower > 0:
            adv = robustest.attack(model, x[s.index:s.index + 1], y[s.index:s.index + 1], eps=s.lower,
                                   norm="linf", method="pgd")
            assert not bool(adv.success[0])


@pytest.mark.parametrize("norm", ["linf", "l1", "l2"])
def test_exact_minimum_sits_between_lower_and_upper(norm: str) -> None:
    pytest.importorskip("robustest.certify.encode")
    if norm == "l2":
        pytest.importorskip("gurobipy")
    model = _net(4)
    x = torch.rand(3, 3, generator=torch.Generator().manual_seed(4))
    y = model(x).argmax(1)
    report = robustest.radius(model, x, y, norm=norm, exact=True, certifier=None, lr_qp_settings=FAST)
    _check_report(model, x, y, report, norm)
    for s in report.samples:
        assert s.exact is not None and s.lower_method == "exact"
        if math.isfinite(s.upper):
            # rLR-QP on a 12-neuron net should reach the proven minimum
            assert s.upper == pytest.approx(s.exact, rel=1e-3, abs=1e-5)


def test_non_relu_models_fall_back_to_pgd_search() -> None:
    pytest.importorskip("robustest.api")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    x = torch.rand(2, 3, generator=torch.Generator().manual_seed(3))
    y = model(x).argmax(1)
    report = robustest.radius(model, x, y, norm="l2", certifier=None)
    assert any("rLR-QP skipped" in w for w in report.warnings)
    _check_report(model, x, y, report, "l2")


def test_digits_cnn_radius() -> None:
    from digits import load_model, test_data

    model = load_model("cnn")
    x, y = test_data("cnn", 1)
    report = robustest.radius(model, x, y, norm="l2", certifier=None, lr_qp_settings=FAST)
    _check_report(model, x, y, report, "l2")
    assert all(s.method in ("deepfool", "lr_qp") for s in report.samples)


def test_bad_input_gets_clear_errors() -> None:
    model = _net()
    x = torch.rand(2, 3)
    y = torch.tensor([0, 1])
    with pytest.raises(InvalidArgument, match="norm='l3'.*Fix"):
        robustest.radius(model, x, y, norm="l3")
    with pytest.raises(InvalidArgument, match="finite"):
        robustest.radius(model, torch.tensor([[float("nan"), 0.0, 0.0], [0.0, 0.0, 0.0]]), y)
    with pytest.raises(ShapeError, match="labels"):
        robustest.radius(model, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ShapeError):
        robustest.radius(model, torch.rand(3), y)
    with pytest.raises(InvalidArgument, match="method"):
        robustest.radius(model, x, y, method="cw")
    with pytest.raises(InvalidArgument, match="certifier"):
        robustest.radius(model, x, y, certifier="magic")
    with pytest.raises(InvalidArgument, match="timeout"):
        robustest.radius(model, x, y, timeout=-1)
