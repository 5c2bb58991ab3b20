"""Networks with smooth (Sigmoid, Tanh, GELU, ...) and leaky activations: every prover is sound on them,
the bounds nest, ``check()`` certifies what no attack breaks, and a relaxed MILP never claims a point the
network does not confirm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import robustest
from robustest.graph import read_model
from robustest.provers import PROVERS, ProofSettings, ProofTask
from robustest.spec import LpBall

ACTS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky": lambda: nn.LeakyReLU(0.1), "gelu": nn.GELU,
        "softplus": nn.Softplus, "silu": nn.SiLU}


def _net(act: str, seed: int, width: int = 6, d: int = 2, k: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, width), ACTS[act](), nn.Linear(width, width), ACTS[act](),
                         nn.Linear(width, k)).double().eval()


def _grid_rows(net: nn.Module, x0: torch.Tensor, eps: float, C: torch.Tensor, n: int = 41) -> np.ndarray:
    axes = [torch.linspace(float(v) - eps, float(v) + eps, n, dtype=torch.float64) for v in x0]
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    with torch.no_grad():
        return (net(pts) @ C.T).min(0).values.numpy()


@pytest.mark.parametrize("name", list(PROVERS))
@pytest.mark.parametrize("act", ["sigmoid", "tanh", "leaky", "gelu"])
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.05, 1.5))
def test_provers_are_sound_on_smooth_and_leaky_nets(name, act, seed, eps):
    """Proved implies the dense grid's margin is > 0; learnt row bounds hold on the grid; a counterexample
    is a point of the box that (after the ladder's re-check) must flip the label, which the MILP checks."""
    net = _net(act, seed)
    x0 = torch.rand(1, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 4 - 2
    with torch.no_grad():
        label = int(net(x0).argmax(1))
    task = ProofTask.margins(read_model(net, x0), x0, LpBall(eps, "linf", None), torch.tensor([label]),
                             settings=ProofSettings(alpha_crown=True))
    if not PROVERS[name].supports(task.graph):
        return
    (out,) = PROVERS[name].prove(task, deadline=float("inf"))
    rows = _grid_rows(net, x0[0], eps, task.C[0])
    if out.status == "proved":
        assert rows.min() > 0, (name, out)
    if out.lower is not None:
        assert np.all(out.lower <= rows + 1e-9), (name, out.lower, rows)
    if out.status == "counterexample":
        ce = out.counterexample
        assert ce is not None and float((ce - x0[0]).abs().max()) <= eps * (1 + 1e-6) + 1e-9
        if name == "milp":  # a relaxed MILP hands on only points the network confirms
            with torch.no_grad():
                assert float((task.C[0] @ net(ce.unsqueeze(0))[0]).min()) < 0


def test_a_relaxed_milp_optimum_that_the_network_does_not_confirm_is_open():
    """A sigmoid net whose margin is positive everywhere but whose relaxation dips below 0: the MILP must
    answer open (never a counterexample, never 'certified')."""
    from robustest.certify.encode import numpy_boxes
    from robustest.certify.ibp import interval_bounds
    from robustest.certify.milp import milp_verify

    net = nn.Sequential(nn.Linear(1, 1), nn.Sigmoid(), nn.Linear(1, 2)).double().eval()
    with torch.no_grad():
        net[0].weight.fill_(1.0), net[0].bias.fill_(0.0)
        net[2].weight.copy_(torch.tensor([[1.0], [0.0]])), net[2].bias.copy_(torch.tensor([0.0, 0.3]))
    # margin = sigmoid(x) - 0.3 > 0 on [-0.8, 0.8] (sigmoid(-0.8) = 0.31); the IBP-box relaxation reaches below
    x0 = torch.zeros(1, 1, dtype=torch.float64)
    ball = LpBall(0.8, "linf", None)
    graph = read_model(net, x0)
    boxes = numpy_boxes(interval_bounds(graph, *ball.box(x0)), 0)
    wide = [(lo - 50.0, hi + 50.0) for lo, hi in boxes]  # looser pre-activation bounds: a loose relaxation
    wide[0] = boxes[0]
    spec = np.array([[1.0, -1.0]])
    res = milp_verify(graph, x0[0], ball, spec, np.array([-np.inf]), wide)
    assert res.verdict is None and "bound only" in res.reason, res


def test_exact_minimum_refuses_smooth_networks():
    from robustest.errors import UnsupportedLayer
    from robustest.minimal.exact import exact_minimum

    net = _net("tanh", 0).float()
    with pytest.raises(UnsupportedLayer, match="piecewise-linear"):
        exact_minimum(net, torch.rand(1, 2), torch.tensor([0]))


@pytest.fixture(scope="module")
def digits_sigmoid():
    """A small sigmoid MLP trained on scikit-learn digits (a second), and 20 correctly classified samples."""
    from digits import load_split

    (xt, yt), (xs, ys) = load_split()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Sigmoid(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        ok = model(xs).argmax(1) == ys
    return model, xs[ok][:20], ys[ok][:20]


def test_check_certifies_a_sigmoid_tanh_mlp_and_no_attack_breaks_it(digits_sigmoid):
    model, x, y = digits_sigmoid
    report = robustest.check(model, x, y, eps=0.01, escalate="crown", timeout=10.0)
    certified = [s.index for s in report.samples if s.verdict == "certified"]
    assert certified, report.verdicts  # CROWN certifies at this eps instead of raising UnsupportedLayer
    idx = torch.tensor(certified)
    for method in ("pgd", "apgd"):
        out = robustest.attack(model, x[idx], y[idx], eps=0.01, method=method, steps=100, seed=1)
        assert not bool(out.success.any()), method
    # a larger eps that attacks break: a falsified sample is never among the certified ones
    big = robustest.check(model, x, y, eps=0.2, escalate="crown", timeout=10.0)
    assert "falsified" in big.verdicts and "certified" not in big.verdicts


def test_bounds_nest_ibp_crown_alpha_lp_on_a_sigmoid_tanh_mlp(digits_sigmoid):
    """IBP ⊇ CROWN ⊇ alpha-CROWN (and LP within CROWN's up to its encoding slack), all holding at sampled
    points of the ball and the points PGD reaches."""
    model, x, y = digits_sigmoid
    x, y = x[:3], y[:3]
    eps = 0.02
    got = {m: robustest.bounds(model, x, eps=eps, method=m, labels=y) for m in ("ibp", "crown", "alpha-crown")}
    got["lp"] = robustest.bounds(model, x[:1], eps=eps, method="lp", labels=y[:1])
    tol = 1e-9
    assert bool((got["ibp"].margins_lower <= got["crown"].margins_lower + tol).all())
    assert bool((got["crown"].margins_lower <= got["alpha-crown"].margins_lower + tol).all())
    assert bool((got["crown"].margins_lower[:1] <= got["lp"].margins_lower + 1e-4).all())
    assert bool((got["crown"].margins_lower > got["ibp"].margins_lower + 1e-3).any())  # not vacuous
    g = torch.Generator().manual_seed(0)
    pts = (x.unsqueeze(1) + eps * (2 * torch.rand((3, 200) + x.shape[1:], generator=g) - 1)).clamp(0, 1)
    adv = robustest.attack(model, x, y, eps=eps, method="pgd", steps=50, seed=0).adversarial
    pts = torch.cat([pts, adv.unsqueeze(1)], 1)
    with torch.no_grad():
        logits = model(pts.reshape(-1, x.shape[1]).double().float()).double().reshape(3, 201, -1)
    for m, b in got.items():
        n = b.lower.shape[0]
        assert bool((b.lower.unsqueeze(1) <= logits[:n] + 1e-5).all()), m
        assert bool((logits[:n] <= b.upper.unsqueeze(1) + 1e-5).all()), m


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), width=st.floats(0.01, 0.5), label=st.integers(0, 2),
       act=st.sampled_from(["sigmoid", "tanh", "leaky"]))
def test_vnnlib_answers_are_right_on_small_smooth_networks(seed, width, label, act):
    """``robustest vnnlib``'s verifier on sigmoid/tanh/leaky nets: a sat is a real violation, and no
    sampled point violates a property answered unsat."""
    from robustest.vnnlib import parse_vnnlib, verify

    net = _net(act, seed, width=8, d=3).float()
    center = torch.rand(3, generator=torch.Generator().manual_seed(seed))
    lo, hi = (center - width).tolist(), (center + width).tolist()
    decl = [f"(declare-const X_{i} Real)" for i in range(3)] + [f"(declare-const Y_{j} Real)" for j in range(3)]
    box = [f"(assert (>= X_{i} {a!r}))\n(assert (<= X_{i} {b!r}))" for i, (a, b) in enumerate(zip(lo, hi))]
    out = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(3) if j != label)
    spec = parse_vnnlib("\n".join(decl + box + [f"(assert (or {out}))"]))
    res = verify(net, spec, input_shape=(1, 3), timeout=3, seed=seed)
    assert res.status in ("sat", "unsat", "timeout")
    if res.status == "sat":
        assert spec.violated_by(res.x, net(res.x.unsqueeze(0))[0])
    if res.status == "unsat":
        u = torch.rand(20_000, 3, generator=torch.Generator().manual_seed(seed))
        x = torch.tensor(lo) + u * (torch.tensor(hi) - torch.tensor(lo))
        with torch.no_grad():
            y = net(x)
        others = torch.cat([y[:, :label], y[:, label + 1:]], 1)
        assert not bool((others.amax(1) >= y[:, label]).any())
