"""spec_pgd: the per-disjunct PGD finds violations shallower than the library attacks' success margin, and
every point it gives is re-checked by a forward pass before ``falsify`` reports it."""

from __future__ import annotations

import torch
from torch import nn

from robustest.vnnlib import parse_vnnlib
from robustest.vnnlib.spec_attack import SpecPgd, spec_pgd
from robustest.vnnlib.verify import SAT_MARGIN, SpecMargin, falsify


def _two_outputs() -> nn.Module:
    """y0 - y1 = x0 + 0.5 x1."""
    net = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.5], [0.0, 0.0]]))
        net[0].bias.zero_()
    return net.eval()


def _spec(lo0: float):
    # violated where y0 <= y1, i.e. x0 + 0.5 x1 <= 0; the box reaches only lo0 + 0 (x1 in [0, 1])
    text = "\n".join(["(declare-const X_0 Real)", "(declare-const X_1 Real)", "(declare-const Y_0 Real)",
                      "(declare-const Y_1 Real)", f"(assert (>= X_0 {lo0!r}))", "(assert (<= X_0 1.0))",
                      "(assert (>= X_1 0.0))", "(assert (<= X_1 1.0))", "(assert (<= Y_0 Y_1))"])
    return parse_vnnlib(text)


def test_finds_a_violation_below_the_attack_success_margin():
    depth = 0.7 * SAT_MARGIN  # deeper than the re-check's threshold (SAT_MARGIN / 2), shallower than success
    spec = _spec(-depth)
    net = _two_outputs()
    found = falsify(net, spec, spec.regions[0], (2,), device=torch.device("cpu"), dtype=torch.float32, seed=0,
                    level=1, deadline=float("inf"))
    assert found is not None
    x, y, method = found
    assert method == "spec-pgd"
    assert spec.violated_by(x, net(x.reshape(1, 2)).reshape(-1))  # re-checked by the network itself
    assert float(y[0] - y[1]) <= -SAT_MARGIN / 2


def test_a_property_that_holds_gets_no_counterexample():
    spec = _spec(1e-3)  # x0 >= 1e-3: y0 - y1 >= 1e-3 everywhere
    net = _two_outputs()
    wrapped = SpecMargin(net, spec.regions[0], (2,), margin=0.0, device=torch.device("cpu"), dtype=torch.float32)
    u = spec_pgd(wrapped, deadline=float("inf"), seed=1, settings=SpecPgd(restarts=8, steps=30))
    with torch.no_grad():
        v = wrapped.violation(net(wrapped.point(u)))
    assert bool((v >= 1e-3 - 1e-6).all())  # the best points reach the true minimum, and not below it
    assert float(v.min()) < 1e-3 + 1e-5
    assert falsify(net, spec, spec.regions[0], (2,), device=torch.device("cpu"), dtype=torch.float32, seed=0,
                   level=1, deadline=float("inf")) is None


def test_the_deadline_stops_it():
    spec = _spec(-1.0)
    wrapped = SpecMargin(_two_outputs(), spec.regions[0], (2,), margin=0.0, device=torch.device("cpu"),
                         dtype=torch.float32)
    u = spec_pgd(wrapped, deadline=0.0, seed=0)
    assert u.shape == (SpecPgd().restarts, 2) and bool((u.abs() <= 1).all())
