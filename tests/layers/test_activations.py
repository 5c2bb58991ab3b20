"""The activation kinds' relaxations are sound on dense samples of hard intervals, and read as they should.

The registry-wide test (``test_layer_rules.py``) checks every kind on boxes of radius up to 2 around
[-1, 1]; here each smooth kind and LeakyReLU is checked on the intervals where a relaxation breaks first:
tiny ones (``l`` close to ``u``, near an inflection point or far out), huge ones (``|l|, |u|`` up to 1e3),
ones entirely on one side of every inflection point and ones across them, with the CROWN slopes, random
and extreme alpha-CROWN slopes, the interval rule and the LP rows, all against the forward pass on 1001
points of each interval (its end points included).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from robustest.errors import UnsupportedLayer
from robustest.graph import read_model
from robustest.layers import GELU, LeakyReLU, Sigmoid, SiLU, Smooth, Softplus, Tanh
from robustest.layers.silu import INFLECTION
from robustest.solvers import open_solver
from robustest.solvers.base import Problem

LAYERS = [Sigmoid(), Tanh(), Softplus(), Softplus(beta=3.0, threshold=5.0), GELU(), SiLU(), LeakyReLU(0.1),
          LeakyReLU(2.0), LeakyReLU(-0.5)]
IDS = [repr(layer) for layer in LAYERS]


def _intervals() -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) lower and upper ends: tiny, huge, one-sided and across the inflection points."""
    centres = [0.0, -1e-3, 1e-3, math.sqrt(2), -math.sqrt(2), INFLECTION, -INFLECTION, -0.75, -1.28, 0.5, -3.0,
               7.0, -40.0, 40.0, 700.0, -700.0, 999.0, -999.0]
    pairs = []
    for c in centres:
        for w in (0.0, 1e-12, 1e-8, 1e-4, 0.1, 1.0, 5.0):
            pairs.append((c - w, c + w))
            pairs.append((c - w, c + 3 * w))
    pairs += [(-1e3, 1e3), (-1e3, -999.0), (999.0, 1e3), (-1e3, 0.0), (0.0, 1e3), (-1e3, 1.0), (-1.0, 1e3),
              (-50.0, 3.0), (-3.0, 50.0), (1e-300, 2e-300), (-5.0, -4.0), (4.0, 5.0), (-0.01, 1e3), (-1e3, 0.01)]
    lo, hi = zip(*pairs)
    return torch.tensor(lo, dtype=torch.float64), torch.tensor(hi, dtype=torch.float64)


def _points(lo: torch.Tensor, hi: torch.Tensor, n: int = 1001) -> torch.Tensor:
    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    return torch.minimum(lo.unsqueeze(-1) + (hi - lo).unsqueeze(-1) * t, hi.unsqueeze(-1))  # (N, n)


def _tol(y: torch.Tensor) -> torch.Tensor:
    """The tests' own rounding allowance: a few ulps of the value (not of the margin under test)."""
    return 4 * torch.finfo(torch.float64).eps * (1 + y.abs())


def _slope_sets(layer, lo: torch.Tensor, hi: torch.Tensor):
    """CROWN's slopes and alpha-CROWN's (random, all 0, all 1) as (name, relax) pairs for ``backward``."""
    init = layer.relax_init((lo.unsqueeze(0), hi.unsqueeze(0)), 1)
    out = [("crown", None)]
    if init is not None:
        g = torch.Generator().manual_seed(0)
        out += [("init", {"alpha": init}), ("random", {"alpha": torch.rand(init.shape, generator=g, dtype=init.dtype)}),
                ("zeros", {"alpha": torch.zeros_like(init)}), ("ones", {"alpha": torch.ones_like(init)})]
    return out


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_linear_bounds_hold_on_dense_samples_of_hard_intervals(layer):
    lo, hi = _intervals()
    x = _points(lo, hi)
    y = layer.forward(x)
    box = (lo.unsqueeze(0), hi.unsqueeze(0))  # a batch of one sample with N neurons
    for name, relax in _slope_sets(layer, lo, hi):
        for sign in (1.0, -1.0):  # lower line (A = +1), upper line (A = -1)
            # const is summed over neurons: recover each neuron's line with one-hot rows
            eye = sign * torch.eye(lo.numel(), dtype=torch.float64).unsqueeze(0)
            (coefs,), consts = layer.backward(eye, [box], None if relax is None else
                                              {"alpha": relax["alpha"].expand((1, lo.numel()) + relax["alpha"].shape[2:])})
            a, b = coefs[0].diagonal(), consts[0]
            assert torch.isfinite(a).all() and torch.isfinite(b).all(), name
            bound = a.unsqueeze(-1) * x + b.unsqueeze(-1)  # a lower bound of sign * f
            gap = bound - sign * y
            assert bool((gap <= _tol(y)).all()), (name, sign, float(gap.max()), lo[gap.amax(1).argmax()],
                                                  hi[gap.amax(1).argmax()])


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_interval_rule_holds_on_dense_samples_of_hard_intervals(layer):
    lo, hi = _intervals()
    x = _points(lo, hi)
    y = layer.forward(x)
    ilo, ihi = layer.interval((lo, hi))
    assert bool((ilo.unsqueeze(-1) <= y + _tol(y)).all()) and bool((y <= ihi.unsqueeze(-1) + _tol(y)).all())


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_bounds_are_tight_on_tiny_intervals(layer):
    """Not vacuous: on an interval 1e-6 wide the lines and the interval are within 1e-8 of the function
    (where it is smooth)."""
    c = torch.tensor([-3.0, -1.0, -0.3, 0.0, 0.4, 2.0, 30.0], dtype=torch.float64)
    lo, hi = c - 5e-7, c + 5e-7
    (al, bl), (au, bu) = _lines(layer, lo, hi)
    y = layer.forward(c)
    # Softplus: torch's threshold; LeakyReLU: the chord over its kink at 0 (as wide as the interval)
    tol = 1e-8 + (layer.slack() if isinstance(layer, Smooth) else 1e-6)
    assert bool(((y - (al * c + bl)).abs() < tol).all()) and bool(((au * c + bu) - y < tol).all())
    ilo, ihi = layer.interval((lo, hi))
    assert bool((ihi - ilo < 1e-5 + tol).all())


def _lines(layer, lo, hi):
    if isinstance(layer, Smooth):
        return layer.lines(lo, hi)
    eye = torch.eye(lo.numel(), dtype=torch.float64).unsqueeze(0)
    box = [(lo.unsqueeze(0), hi.unsqueeze(0))]
    (cl,), kl = layer.backward(eye, box)
    (cu,), ku = layer.backward(-eye, box)
    return (cl[0].diagonal(), kl[0]), (-cu[0].diagonal(), -ku[0])


@pytest.mark.parametrize("layer", LAYERS, ids=IDS)
def test_lp_rows_contain_the_function_on_hard_intervals(layer):
    lo, hi = _intervals()
    pick = torch.arange(0, lo.numel(), 7)  # a spread subset keeps the LPs small
    lo, hi = lo[pick], hi[pick]
    n = lo.numel()
    x = _points(lo, hi, 9)
    y = layer.forward(x)
    for k in range(x.shape[1]):
        p = Problem()
        xv = p.add_vars(x[:, k].numpy(), x[:, k].numpy())
        ilo, ihi = layer.interval((lo, hi))
        out = layer.encode(p, [xv], [(lo.numpy(), hi.numpy())], (ilo.numpy(), ihi.numpy()), in_shapes=[(n,)],
                           exact=True)
        solver = open_solver(p)
        for sign in (1.0, -1.0):
            res = solver.minimize({int(v): sign for v in out})
            assert res.status == "optimal"
            total = float(y[:, k].sum())
            assert res.objective <= sign * total + 1e-6 * (1 + abs(total))  # min of sign * sum(y)


def test_silu_and_gelu_inflection_points():
    """The curvature changes sign at the declared breaks (numerical second derivative)."""
    for layer in (SiLU(), GELU()):
        for b in layer.breaks:
            for side, want in ((-1e-4, None), (1e-4, None)):
                x = torch.tensor([b + side], dtype=torch.float64)
                h = 1e-5
                second = (layer.fn(x + h) - 2 * layer.fn(x) + layer.fn(x - h)) / h ** 2
                i = int(np.searchsorted(layer.breaks, float(x)))
                assert float(second) * layer.curvature[i] > 0, (layer, b, side)
    t = torch.tensor(INFLECTION, dtype=torch.float64)
    assert abs(float(t * torch.tanh(t / 2)) - 2) < 1e-14


class _Calls(nn.Module):
    def __init__(self, act) -> None:
        super().__init__()
        self.fc, self.act = nn.Linear(3, 4), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


@pytest.mark.parametrize("act, kind", [
    (torch.sigmoid, "Sigmoid"), (F.sigmoid, "Sigmoid"), (lambda t: t.sigmoid(), "Sigmoid"), (torch.tanh, "Tanh"),
    (lambda t: t.tanh(), "Tanh"), (lambda t: F.leaky_relu(t, 0.2), "LeakyReLU(0.2)"),
    (lambda t: F.leaky_relu(t, negative_slope=0.3), "LeakyReLU(0.3)"), (F.silu, "SiLU"), (F.gelu, "GELU"),
    (lambda t: F.softplus(t, beta=2.0), "Softplus(beta=2, threshold=20)"), (nn.SiLU(), "SiLU"),
    (nn.LeakyReLU(0.05), "LeakyReLU(0.05)"), (nn.Softplus(0.5, 10.0), "Softplus(beta=0.5, threshold=10)"),
])
def test_fx_calls_and_modules_read_as_their_kind(act, kind):
    g = read_model(_Calls(act).eval(), torch.rand(2, 3))  # read_model checks the forward against the model
    assert repr(g.nodes[-1].layer) == (kind if "(" in kind else f"{kind}()")


@pytest.mark.parametrize("act", [lambda t: F.gelu(t, approximate="tanh"), nn.GELU(approximate="tanh")])
def test_gelu_tanh_approximation_is_refused(act):
    with pytest.raises(UnsupportedLayer, match="approximate"):
        read_model(_Calls(act).eval(), torch.rand(2, 3))


def test_onnx_activations_import_and_certify(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from robustest.io.onnx_import import import_onnx

    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i, (op, attrs) in enumerate([("Sigmoid", {}), ("Tanh", {}), ("LeakyRelu", {"alpha": 0.2}), ("Softplus", {})]):
        w = rng.standard_normal((4, 4)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"], name=f"mm{i}"),
                  helper.make_node(op, [f"m{i}"], [f"a{i}"], name=f"act{i}", **attrs)]
        prev = f"a{i}"
    graph = helper.make_graph(nodes, "acts", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 4])], initializer=inits)
    path = tmp_path / "acts.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    model = import_onnx(path)
    x = torch.rand(1, 4)
    g = read_model(model, x)
    assert [n.layer.kind for n in g.nodes[1:] if n.layer.nonlinear] == ["Sigmoid", "Tanh", "LeakyReLU", "Softplus"]
    import onnxruntime as ort

    want = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(model(x).detach().numpy(), want, rtol=1e-5, atol=1e-6)
