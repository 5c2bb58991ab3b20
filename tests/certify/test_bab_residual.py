"""BaB on residual graphs and LeakyReLU (:mod:`robustest.certify.dense_read`): the dense chain with its
carries computes the network; every bound rule it adds (carries and LeakyReLU slopes in the relaxation, the
interval step, the leaf LP) is sound on sampled points for any slopes, multipliers and splits; and on small
residual / LeakyReLU nets BaB proves thresholds just below the exact MILP minimum that CROWN alone cannot,
never one above it, where it finds the counterexample."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from certify_nets import ResidualCNN, exact_min, randomise_bn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from robustest.certify.bab import bab
from robustest.certify.beta_crown import DomainBatch, bound
from robustest.certify.crown import crown
from robustest.certify.leaf_lp import leaf_margin
from robustest.certify.mlp import DenseMLP, activate, dense_mlp, root_bounds
from robustest.graph import read_model
from robustest.provers import PROVERS
from robustest.schedules import InputSplit, ProofSettings  # milp_share 0: what LP leaves open goes to BaB
from robustest.spec import LpBall


class _Res(nn.Module):
    """``h1 = act(bn(inp x))``, ``h2 = act(f1 h1)``, ``h3 = act(f2 h2 + h1 [+ skip x])``, output from
    ``h3`` (or ``cat(h3, h1)``): carries of ``h1`` and of the input across layers."""

    def __init__(self, d: int, h: int, k: int, act: nn.Module, input_skip: bool, concat: bool) -> None:
        super().__init__()
        self.inp, self.bn = nn.Linear(d, h), nn.BatchNorm1d(h)
        self.f1, self.f2 = nn.Linear(h, h), nn.Linear(h, h)
        self.skip = nn.Linear(d, h) if input_skip else None
        self.out = nn.Linear(2 * h if concat else h, k)
        self.act, self.concat = act, concat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.act(self.bn(self.inp(x)))
        pre = self.f2(self.act(self.f1(h1))) + h1
        if self.skip is not None:
            pre = pre + self.skip(x)
        h3 = self.act(pre)
        return self.out(torch.cat([h3, h1], 1) if self.concat else h3)


def _res(seed: int, *, d: int = 3, h: int = 5, leaky: bool = False, input_skip: bool = True,
         concat: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    act = nn.LeakyReLU(0.2) if leaky else nn.ReLU()
    model = _Res(d, h, 3, act, input_skip, concat)
    randomise_bn(model, torch.Generator().manual_seed(seed))
    return model.double().eval()


class _Branches(nn.Module):
    """Two parallel branches of the input joined by Concat: the second block does not read the first's
    activations, the output reads both."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(3, 4), nn.Linear(3, 5), nn.Linear(9, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], 1))


def _branches(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return _Branches().double().eval()


def _cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = ResidualCNN(1, 3, True, "avg")
    randomise_bn(model, torch.Generator().manual_seed(seed))
    return model.double().eval()


def _graph(model: nn.Module, shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
    return read_model(model, torch.zeros((1,) + shape, dtype=torch.float64))


def _pre(net: DenseMLP, x: torch.Tensor) -> torch.Tensor:
    """Every activation neuron's pre-activation on flat inputs (n, N)."""
    pre, h = [], x
    for i, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1])):
        h = h @ w.T + b
        pre.append(h)
        h = activate(h, net.slope(i))
    return torch.cat(pre, 1)


CASES = {
    "residual": (lambda s: _res(s), (3,)),
    "residual-concat": (lambda s: _res(s, concat=True, input_skip=False), (3,)),
    "leaky": (lambda s: _res(s, leaky=True, input_skip=False), (3,)),
    "leaky-residual-input-skip": (lambda s: _res(s, leaky=True, concat=True), (3,)),
    "conv-bn-residual": (_cnn, (1, 4, 4)),
    "parallel-branches": (_branches, (3,)),
}


@pytest.mark.parametrize("case", CASES)
def test_dense_chain_with_carries_equals_the_network(case):
    make, shape = CASES[case]
    model = make(0)
    net = dense_mlp(_graph(model, shape))
    # the CNN's skip joins the next block's own input: no carry, a plain chain
    assert bool(net.slopes) == (case != "conv-bn-residual")
    assert PROVERS["bab"].refusal(_graph(model, shape)) == ""
    x = torch.rand((64,) + shape, dtype=torch.float64) * 4 - 2
    with torch.no_grad():
        torch.testing.assert_close(net.forward(x.reshape(64, -1)), model(x).reshape(64, -1), rtol=1e-10,
                                   atol=1e-10)


def test_negative_leaky_slope_is_refused_by_name():
    model = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(-0.5), nn.Linear(3, 1)).double().eval()
    assert "negative slope" in PROVERS["bab"].refusal(_graph(model, (2,)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), case=st.sampled_from(sorted(CASES)), width=st.floats(0.1, 1.0),
       alpha_steps=st.sampled_from([0, 5]), optimise=st.booleans())
def test_any_slopes_multipliers_and_splits_give_sound_bounds_on_residual_nets(seed, case, width, alpha_steps,
                                                                             optimise):
    make, shape = CASES[case]
    model = make(seed)
    net = dense_mlp(_graph(model, shape))
    g = torch.Generator().manual_seed(seed)
    n0 = int(torch.tensor(shape).prod())
    mid = torch.rand(n0, generator=g, dtype=torch.float64) * 2 - 1
    lo, hi = mid - width, mid + width
    ls, us = root_bounds(net, lo, hi, alpha_steps=alpha_steps)
    D, N = 6, sum(net.widths)
    C = torch.randn(D, 2, 3, generator=g, dtype=torch.float64)
    state = DomainBatch(torch.randint(-1, 2, (D, N), generator=g).to(torch.int8),
                        torch.rand(D, 2, N, generator=g),
                        torch.rand(D, 2, N, generator=g) * 3, torch.zeros(D).long())
    out = bound(net, ls, us, lo, hi, C, state, optimise=optimise, iters=5)
    pts = lo + (hi - lo) * torch.rand(4000, n0, generator=g, dtype=torch.float64)
    pts = torch.cat([pts, torch.where(torch.rand(256, n0, generator=g) < 0.5, lo, hi)])  # box corners
    with torch.no_grad():
        vals = model(pts.reshape((-1,) + shape)) @ C.reshape(-1, 3).T
        z = _pre(net, pts)
    l, u = torch.cat(ls), torch.cat(us)
    assert bool((z >= l - 1e-9).all() and (z <= u + 1e-9).all())  # root bounds (CROWN / alpha / interval)
    for d in range(D):
        inside = ((state.splits[d].double() * z) >= 0).all(1)  # the points of domain d
        if bool(inside.any()):
            assert bool((vals[inside, 2 * d:2 * d + 2] >= out.lower[d] - 1e-9).all())


def _affine_min(f, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, rows: torch.Tensor,
                signs: torch.Tensor, c: torch.Tensor) -> float:
    """min of ``c . f(y)`` over the box points ``y`` with ``signs * rows(y) >= 0``, where ``f`` and ``rows``
    are affine on that region (their Jacobians at ``x``, which lies in it): one LP over the inputs only."""
    from robustest.solvers import open_solver
    from robustest.solvers.base import Problem

    Jf = torch.autograd.functional.jacobian(f, x)
    Jr = torch.autograd.functional.jacobian(rows, x)
    gf, gr = f(x) - Jf @ x, rows(x) - Jr @ x
    p = Problem()
    v = p.add_vars(lo.numpy(), hi.numpy())
    A = (signs.double()[:, None] * Jr).numpy()
    r, k = A.nonzero()
    p.add_rows(r, v[k], A[r, k], lo=-(signs.double() * gr).numpy(), hi=np.full(A.shape[0], np.inf))
    w = (c @ Jf).numpy()
    res = open_solver(p, "highs").minimize({int(v[i]): float(w[i]) for i in range(v.size)},
                                           offset=float((c @ gf).detach()))
    assert res.status == "optimal"
    return float(res.objective)


@pytest.mark.parametrize("leaky", [False, True])
def test_leaf_lp_is_the_exact_minimum_on_its_sign_pattern(leaky):
    """Fix every neuron's sign to that of a sampled point (carries' signs ignored: linear): the leaf LP
    (layer by layer, through the chain's variables) equals the LP of the network's affine piece over the
    inputs, and is below every sampled value with that pattern."""
    model = _res(3, h=3, leaky=leaky, concat=True)
    net = dense_mlp(_graph(model, (3,)))
    g = torch.Generator().manual_seed(0)
    lo, hi = -torch.ones(3, dtype=torch.float64) * 0.5, torch.ones(3, dtype=torch.float64) * 0.5
    pts = lo + (hi - lo) * torch.rand(3000, 3, generator=g, dtype=torch.float64)
    z = _pre(net, pts)
    carries = net.carries()
    assert carries is not None and bool(carries.any())
    signs = torch.where(z >= 0, 1, -1)
    signs[:, carries] = 1
    c = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    with torch.no_grad():
        vals = model(pts) @ c
    for i in range(5):
        same = (signs == signs[i]).all(1)
        m = leaf_margin(net, lo, hi, signs[i], c[None], torch.zeros(1, dtype=torch.float64))
        assert m <= float(vals[same].min()) + 1e-7
        exact = _affine_min(lambda y: model(y[None])[0], pts[i], lo, hi,
                            lambda y: _pre(net, y[None])[0][~carries], signs[i][~carries], c)
        assert m == pytest.approx(exact, abs=1e-5)  # leaf_margin is lowered by the solver tolerance


@pytest.mark.parametrize("leaky", [False, True])
def test_bab_proves_below_the_exact_minimum_where_crown_cannot(leaky):
    """A residual net of 120 ReLU (or LeakyReLU) neurons with a skip from the input: the threshold just
    below MILP's exact minimum is beyond CROWN and proved by BaB; just above it BaB proves nothing and finds
    the counterexample (re-checked by a forward pass)."""
    torch.manual_seed(0)
    model = _res(1, d=5, h=40, leaky=leaky)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(1, 5, generator=g, dtype=torch.float64)
    graph = read_model(model, x0)
    ball = LpBall(0.1, "linf", None)
    lo, hi = ball.box(x0)
    c = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    true_min = exact_min(graph, lo[0], hi[0], c)
    crown_low = float(crown(graph, x0, ball, c.reshape(1, 1, 3)).lower[0, 0])
    below = true_min - 0.05 * (true_min - crown_low)
    assert crown_low < below  # CROWN alone cannot prove it
    a = c.reshape(1, 3)
    proved = bab(graph, x0, ball, a, torch.tensor([below], dtype=torch.float64),
                 deadline=time.perf_counter() + 30)
    assert proved.proved, proved.reason
    above = bab(graph, x0, ball, a, torch.tensor([true_min + 1e-3], dtype=torch.float64),
                deadline=time.perf_counter() + 30)
    assert not above.proved
    if above.candidate is not None:
        x = above.candidate.reshape(1, 5)
        assert bool(((x >= lo) & (x <= hi)).all())
        with torch.no_grad():
            assert float(model(x)[0] @ c) <= true_min + 1e-3


@pytest.mark.parametrize("max_dim", [16, 0], ids=["input-split", "relu-split"])
def test_check_certifies_a_residual_leaky_net_by_bab(max_dim):
    """Through the ladder (``check(escalate="bab")``, float guard included), with the prover's input split
    (5 inputs) and with its ReLU split: some samples of a residual LeakyReLU net need BaB, and no certified
    sample has a sampled point of another class."""
    import warnings

    import robustest

    model = _res(1, d=5, h=40, leaky=True).float()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 5, generator=g)
    y = model(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # health checks of a random net
        report = robustest.check(model, x, y, eps=0.3, escalate="bab", timeout=60, domain=None,
                                 provers=ProofSettings(milp_share=0.0,
                                                       input_split=InputSplit(max_dim=max_dim)))
    assert any(s.method == "bab" for s in report.samples if s.verdict == "certified"), report.samples
    for s in report.samples:
        if s.verdict == "certified":
            pts = x[s.index] + 0.3 * (2 * torch.rand(4000, 5, generator=g) - 1)
            with torch.no_grad():
                assert bool((model(pts).argmax(1) == s.label).all())


def test_an_onnx_resnet_block_gets_the_branch_and_bound():
    """Conv + BatchNormalization + Relu, a second Conv whose output is Added to the first block's, Relu,
    Flatten, Gemm, built with the onnx helper: imported (checked against onnxruntime), read by BaB exactly,
    and a threshold just below MILP's minimum is proved."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from robustest.io.onnx_import import import_onnx

    rng = np.random.default_rng(0)

    def const(name: str, *shape: int, scale: float = 0.5):  # type: ignore[no-untyped-def]
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [const("w1", 2, 1, 3, 3), const("b1", 2), const("w2", 2, 2, 3, 3), const("b2", 2),
             const("g", 2), const("beta", 2), const("mean", 2),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, 2).astype(np.float32), "var"),
             const("wf", 3, 32), const("bf", 3)]
    mk = helper.make_node
    nodes = [mk("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             mk("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["n1"]),
             mk("Relu", ["n1"], ["h1"]), mk("Conv", ["h1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             mk("Add", ["c2", "h1"], ["s"], name="skip"), mk("Relu", ["s"], ["h2"]),
             mk("Flatten", ["h2"], ["f"]), mk("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "resblock",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    net = import_onnx(model).double()
    x0 = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = read_model(net, x0)
    assert PROVERS["bab"].refusal(g) == ""
    pts = x0 + 0.2 * (2 * torch.rand(100, 1, 4, 4, generator=torch.Generator().manual_seed(1),
                                     dtype=torch.float64) - 1)
    with torch.no_grad():
        torch.testing.assert_close(dense_mlp(g).forward(pts.reshape(100, -1)), net(pts), rtol=1e-9, atol=1e-9)
    ball = LpBall(0.2, "linf", None)
    lo, hi = ball.box(x0)
    c = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    true_min = exact_min(g, lo[0], hi[0], c)
    out = bab(g, x0, ball, c.reshape(1, 3), torch.tensor([true_min - 1e-3], dtype=torch.float64),
              deadline=time.perf_counter() + 30)
    assert out.proved, out.reason
