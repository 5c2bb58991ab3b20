"""No certificate for a network whose exact margin is positive but whose float32 evaluation flips the label.

The crafted networks compute ``y0 = (x + 2**24) - 2**24``: exactly ``x``, but in float32 ``x + 2**24`` rounds
to an even integer, so ``y0`` is 0 or 2. With ``y1 = 0.5`` and ``x`` in [0.95, 1.15] the exact margin
``y0 - y1 = x - 0.5`` is at least 0.45 everywhere (every prover certifies the exact network easily), while
the float32 model keeps label 0 at the centre (``y0 = 2``) and flips it at ``x < 1`` (``y0 = 0``). Every
rung, the VNN-LIB verifier and :func:`robustest.bounds` must account for that rounding
(:mod:`robustest.certify.float_error`): never "certified", never "unsat", bounds that contain the float32
outputs. The second network hides the cancellation in a BatchNorm that the graph reader folds into the
Linear before it (the folded float64 graph computes ``x`` with no cancellation at all).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

import robustest
from robustest.certify.float_error import output_error
from robustest.graph import read_model
from robustest.ladder import ProverRung, StepContext
from robustest.layers.relu import ReLU
from robustest.layers.rounding import Precision
from robustest.provers import PROVERS, ProofTask
from robustest.results import RUNGS
from robustest.spec import LpBall
from robustest.vnnlib import parse_vnnlib, verify
from robustest.vnnlib.verify import RegionSubject

BIG = 2.0 ** 24
X0, EPS = 1.05, 0.1
F32 = Precision.of(torch.float32, torch.device("cpu"))


def cancelling_net() -> nn.Module:
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2)).eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0), net[0].bias.fill_(BIG)
        net[2].weight.copy_(torch.tensor([[1.0], [0.0]])), net[2].bias.copy_(torch.tensor([-BIG, 0.5]))
    return net


def folded_bn_net() -> nn.Module:
    net = nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1), nn.ReLU(), nn.Linear(1, 2)).eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0), net[0].bias.fill_(BIG)
        net[1].running_mean.fill_(BIG), net[1].running_var.fill_(1.0 - net[1].eps)
        net[3].weight.copy_(torch.tensor([[1.0], [0.0]])), net[3].bias.copy_(torch.tensor([0.0, 0.5]))
    return net


NETS = {"cancelling": cancelling_net, "folded-batchnorm": folded_bn_net}


@pytest.fixture(params=list(NETS))
def net(request) -> nn.Module:
    return NETS[request.param]()


def test_the_case_is_real(net):
    """Exact margin about 0.45 or more on the region, the float32 model right at the centre and wrong inside it."""
    x = torch.linspace(X0 - EPS, X0 + EPS, 201, dtype=torch.float64).unsqueeze(1)
    g = read_model(net, x[:1].float())
    exact = g(x)
    assert float((exact[:, 0] - exact[:, 1]).min()) >= 0.449
    with torch.no_grad():
        pred = net(x.float()).argmax(1)
    assert int(net(torch.tensor([[X0]])).argmax(1)) == 0
    assert bool((pred != 0).any())


@pytest.mark.parametrize("name", [p for p in PROVERS if p != "alpha-crown"])
def test_no_prover_certifies_the_guarded_task_that_it_certifies_unguarded(net, name):
    x0 = torch.tensor([[X0]], dtype=torch.float64)
    ball = LpBall(EPS, "linf", None)
    task = ProofTask.margins(read_model(net, x0.float()), x0, ball, torch.tensor([0]))
    from dataclasses import replace

    from robustest.provers import Known

    fresh = lambda t: replace(t, known=(Known(np.full(1, -np.inf)),))
    prover = PROVERS[name]
    if not prover.supports(task.graph):
        pytest.skip(f"{name} does not support the net")
    (plain,) = prover.prove(fresh(task), deadline=float("inf"))
    if plain.status == "counterexample":  # BaB tries its points on a float32 copy: a true float32 flip
        with torch.no_grad():
            assert int(net(plain.counterexample.reshape(1, 1).float()).argmax(1)) != 0
    else:
        assert plain.status == "proved"  # the exact network is robust here
    slack, why = fresh(task).float_slack(F32)
    assert why == "" and float(slack.min()) > 0.45
    for precision in (None, F32):  # F32: a prover that splits the box bounds the rounding on each part too
        (guarded,) = prover.prove(fresh(task).guarded(slack, precision), deadline=time.perf_counter() + 3)
        assert guarded.status != "proved"


@pytest.mark.parametrize("rung", RUNGS[1:])
def test_check_never_certifies_it(net, rung):
    report = robustest.check(net, torch.tensor([[X0]]), torch.tensor([0]), eps=EPS, escalate=rung, domain=None,
                             timeout=20, suppress_health_check=["gradients", "masking"])
    (s,) = report.samples
    assert s.verdict != "certified", s
    if s.verdict == "falsified":  # a true counterexample of the float32 model: re-checked
        with torch.no_grad():
            assert int(net(s.counterexample.reshape(1, 1)).argmax(1)) != 0


@pytest.mark.parametrize("rung", RUNGS[1:])
def test_no_prover_rung_of_the_ladder_certifies_it(net, rung):
    """The rungs alone (the attacks of check() find the flip first and would hide a false certificate)."""
    x = torch.tensor([[X0]])
    ctx = StepContext(model=net, inputs=x, labels=torch.tensor([0]), ball=LpBall(EPS, "linf", None), seed=0,
                      timeout=3, spent=[0.0], escalate=rung)
    outcome = ProverRung(rung).run(ctx, [0]).get(0)
    assert outcome is None or outcome.verdict != "certified", outcome
    assert float(ctx.slack[0][0].min()) > 0.45


def test_vnnlib_never_says_unsat(net):
    spec = (f"(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
                    f"(assert (>= X_0 {X0 - EPS}))\n(assert (<= X_0 {X0 + EPS}))\n(assert (<= Y_0 Y_1))\n")
    parsed = parse_vnnlib(spec)
    result = verify(net, parsed, input_shape=(1,), timeout=20)
    assert result.status != "unsat", result
    subject = RegionSubject(net, parsed, (1,), deadline=time.perf_counter() + 20, seed=0,
                            device=torch.device("cpu"), dtype=torch.float32)
    task = subject.task([0])  # what the provers prove
    assert task is not None and float(task.d.max()) < -0.45


@pytest.mark.parametrize("method", ["ibp", "crown", "lp"])
def test_bounds_contain_the_float32_outputs(net, method):
    x = torch.tensor([[X0]])
    b = robustest.bounds(net, x, eps=EPS, method=method, domain=None, labels=torch.tensor([0]))
    pts = torch.linspace(X0 - EPS, X0 + EPS, 201).unsqueeze(1).clamp(X0 - EPS, X0 + EPS)
    with torch.no_grad():
        y = net(pts).double()
    assert bool((y >= b.lower).all() and (y <= b.upper).all())
    assert float((y[:, 0] - y[:, 1]).min()) >= float(b.margins_lower.min())


def test_a_kind_without_a_rounding_rule_gets_no_certificate(monkeypatch):
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    x = torch.rand(4, 2)
    y = net(x).argmax(1)
    assert robustest.check(net, x, y, eps=1e-4, escalate="crown").counts()["certified"] == 4
    monkeypatch.setattr(ReLU, "rounding", lambda self, boxes, errors, precision: None)
    report = robustest.check(net, x, y, eps=1e-4, escalate="milp")
    assert report.counts()["certified"] == 0
    assert all("no rounding rule" in s.reason for s in report.samples if s.verdict == "unknown")


@pytest.mark.parametrize("seed", range(4))
def test_output_error_bounds_the_float32_evaluation_of_random_nets(seed):
    """Random conv/bn/pool nets with large input offsets: |float32 model - exact graph| <= the bound."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 4, 3), nn.ReLU(), nn.AvgPool2d(1), nn.Flatten(), nn.Linear(4, 8),
                        nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-50, 50), m.running_var.uniform_(1e-3, 2)
    x0 = (torch.rand(2, 2, 6, 6) * 100).double()
    ball = LpBall(0.5, "linf", None)
    err, why = output_error(read_model(net, x0.float()), x0, ball, F32)
    assert why == ""
    pts = (x0.unsqueeze(0) + (2 * torch.rand((64,) + tuple(x0.shape), dtype=torch.float64) - 1) * 0.5).float()
    pts = pts.reshape((-1,) + tuple(x0.shape[1:]))
    g = read_model(net, x0.float())
    with torch.no_grad():
        gap = (net(pts).double() - g(pts.double())).abs().reshape(64, 2, 3)
    assert bool((gap <= err.unsqueeze(0)).all())
    assert float(gap.max()) > 0


@pytest.mark.parametrize("method", ["ibp", "crown", "alpha-crown", "lp"])
@pytest.mark.parametrize("eps", [0.0, 1e-7])
def test_bounds_contain_the_outputs_of_random_nets_at_zero_and_tiny_eps(method, eps):
    """The fuzzing campaign's case: exact-network bounds missed the float32 outputs by an ulp or two."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    x = torch.rand(16, 8) * 10
    b = robustest.bounds(net, x, eps=eps, method=method, domain=None, labels=net(x).argmax(1))
    with torch.no_grad():
        y = net(x).double()
    assert bool((y >= b.lower).all() and (y <= b.upper).all())
    assert float((b.upper - b.lower).max()) < 1e-3 + 100 * eps  # widened by the rounding bound only


@pytest.mark.parametrize("rung", ["ibp", "crown", "lp", "milp"])
def test_a_certified_margin_bounds_the_float32_margins_in_the_ball(rung):
    """The reported figure of a certified sample is a lower bound of the model's computed margin."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.rand(6, 4)
    y = net(x).argmax(1)
    eps = 1e-3
    report = robustest.check(net, x, y, eps=eps, escalate=rung, domain=None)
    for s in report.samples:
        if s.verdict != "certified":
            continue
        pts = x[s.index] + (2 * torch.rand(512, 4) - 1) * eps
        pts = torch.cat([x[s.index:s.index + 1], pts.clamp(x[s.index] - eps, x[s.index] + eps)])
        with torch.no_grad():
            z = net(pts).double()
        others = torch.cat([z[:, :s.label], z[:, s.label + 1:]], 1)
        assert s.figure <= float((z[:, s.label] - others.max(1).values).min())
    assert report.counts()["certified"] > 0


def test_the_same_net_in_float64_is_certified(net):
    """The guard follows the model's dtype: in float64 ``x + 2**24`` is exact, nothing flips, and the
    tiny float64 slack leaves the 0.45 margin certified."""
    net = net.double()
    report = robustest.check(net, torch.tensor([[X0]], dtype=torch.float64), torch.tensor([0]), eps=EPS,
                             escalate="crown", domain=None, suppress_health_check=["gradients", "masking"])
    (s,) = report.samples
    assert s.verdict == "certified", s
    assert 0.449 - 1e-6 < s.figure <= 0.45


def test_real_arithmetic_certifies_the_exact_network_and_says_so_by_option(net):
    """``ProofSettings.real_arithmetic`` (``--real-arithmetic``): the exact network, VNN-COMP's convention;
    its 0.45 margin is certified there, while the default (the float32 model) never certifies it."""
    from robustest.provers import ProofSettings

    x, y = torch.tensor([[X0]]), torch.tensor([0])
    ctx = StepContext(model=net, inputs=x, labels=y, ball=LpBall(EPS, "linf", None), seed=0, timeout=20,
                      spent=[0.0], escalate="crown", settings=ProofSettings(real_arithmetic=True))
    outcome = ProverRung("crown").run(ctx, [0])[0]
    assert outcome.verdict == "certified", outcome
    spec = parse_vnnlib(f"(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
                        f"(assert (>= X_0 {X0 - EPS}))\n(assert (<= X_0 {X0 + EPS}))\n(assert (<= Y_0 Y_1))\n")
    assert verify(net, spec, input_shape=(1,), timeout=20, real_arithmetic=True).status in ("unsat", "sat")
    assert verify(net, spec, input_shape=(1,), timeout=20).status != "unsat"
