"""verify: sat answers carry a counterexample that really violates the property; unsat answers survive
sampling; bad input is refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from robustest.errors import InvalidArgument, ShapeError
from robustest.vnnlib import parse_vnnlib, verify
from robustest.vnnlib.verify import VerifyResult

MNIST = "benchmarks/vnncomp2022_mnist_fc"


def _spec_text(lo, hi, n_out, label):
    decl = [f"(declare-const X_{i} Real)" for i in range(len(lo))]
    decl += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    box = [f"(assert (>= X_{i} {a!r}))\n(assert (<= X_{i} {b!r}))" for i, (a, b) in enumerate(zip(lo, hi))]
    out = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label)
    return "\n".join(decl + box + [f"(assert (or {out}))"])


def _parse_result(text):
    lines = text.strip().splitlines()
    values = {}
    for tok in " ".join(lines[1:]).replace("(", " ").replace(")", " ").split():
        values.setdefault("_", []).append(tok)
    toks = values.get("_", [])
    return lines[0], {toks[i]: float(toks[i + 1]) for i in range(0, len(toks), 2)}


def test_mnist_fc_sat_counterexample_checked_by_onnxruntime(shared_dir):
    ort = pytest.importorskip("onnxruntime")
    from robustest.io import load_model
    from robustest.io.onnx_import import onnx_input_shape
    from robustest.vnnlib import load_vnnlib

    net_path = shared_dir / MNIST / "onnx/mnist-net_256x2.onnx"
    spec = load_vnnlib(shared_dir / MNIST / "vnnlib/prop_1_0.05.vnnlib")
    res = verify(load_model(net_path), spec, input_shape=onnx_input_shape(net_path), timeout=30)
    assert res.status == "sat"
    status, values = _parse_result(res.format())
    assert status == "sat"
    x = np.array([values[f"X_{i}"] for i in range(784)], dtype=np.float32)
    region = spec.regions[0]
    assert (x >= region.lower.numpy()).all() and (x <= region.upper.numpy()).all()
    sess = ort.InferenceSession(str(net_path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x.reshape(1, 784, 1)})[0].reshape(-1)
    assert spec.violated_by(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(y, [values[f"Y_{j}"] for j in range(10)], rtol=1e-4, atol=1e-4)


def test_mnist_fc_unsat_by_crown(shared_dir):
    pytest.importorskip("robustest.certify.crown")
    from robustest.io import load_model
    from robustest.vnnlib import load_vnnlib

    spec = load_vnnlib(shared_dir / MNIST / "vnnlib/prop_0_0.03.vnnlib")
    res = verify(load_model(shared_dir / MNIST / "onnx/mnist-net_256x2.onnx"), spec, input_shape=(1, 784, 1),
                 timeout=60)
    assert res.status == "unsat" and "crown" in res.method
    assert res.format() == "unsat\n"


def test_mnist_fc_unsat_by_bab_where_crown_and_attacks_stop(shared_dir):
    """256x2 prop_6_0.03 timed out with CROWN + MILP at 120 s; the batched beta-CROWN BaB proves it in seconds."""
    from robustest.io import load_model
    from robustest.vnnlib import load_vnnlib

    spec = load_vnnlib(shared_dir / MNIST / "vnnlib/prop_6_0.03.vnnlib")
    res = verify(load_model(shared_dir / MNIST / "onnx/mnist-net_256x2.onnx"), spec, input_shape=(1, 784, 1),
                 timeout=60)
    assert res.status == "unsat" and res.method == "bab", res


def test_bab_prover_refuses_other_networks_and_the_verifier_goes_on():
    from robustest.ladder import ProverRung
    from robustest.provers import PROVERS

    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.MaxPool2d((1, 2)), nn.Flatten(), nn.Linear(2, 2)).eval()
    spec = parse_vnnlib(_spec_text([0.0, 0.0], [0.1, 0.1], 2, 0))
    res = verify(net, spec, input_shape=(1, 1, 1, 2), timeout=3, ladder=[ProverRung("bab", [(PROVERS["bab"], 1.0)])])
    assert res.status == "timeout" and "bab does not support this network" in res.reason, res
    assert "MaxPool2d" in res.reason and "neither linear nor a ReLU" in res.reason, res
    res = verify(net, spec, input_shape=(1, 1, 1, 2), timeout=3)
    assert res.status in ("sat", "timeout") or res.status == "unsat" and res.method != "bab"


@settings(max_examples=12)
@given(seed=st.integers(0, 10_000), width=st.floats(0.01, 0.5), label=st.integers(0, 2))
def test_answers_are_right_on_small_random_networks(seed, width, label):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    center = torch.rand(3)
    lo, hi = (center - width).tolist(), (center + width).tolist()
    spec = parse_vnnlib(_spec_text(lo, hi, 3, label))
    res = verify(net, spec, input_shape=(1, 3), timeout=5, seed=seed)
    assert res.status in ("sat", "unsat", "timeout")
    if res.status == "sat":
        assert spec.violated_by(res.x, net(res.x.unsqueeze(0))[0])
    else:
        # No sampled point may violate a property that was proved (or merely not falsified).
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(20_000, 3, generator=g)
        x = torch.tensor(lo) + u * (torch.tensor(hi) - torch.tensor(lo))
        with torch.no_grad():
            y = net(x)
        others = torch.cat([y[:, :label], y[:, label + 1:]], 1)
        violated = (others.amax(1) >= y[:, label]).any()
        assert not (res.status == "unsat" and bool(violated))


def test_bad_timeout_and_shape():
    net = nn.Sequential(nn.Linear(2, 2)).eval()
    spec = parse_vnnlib(_spec_text([0.0, 0.0], [1.0, 1.0], 2, 0))
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(InvalidArgument, match="timeout"):
            verify(net, spec, input_shape=(1, 2), timeout=bad)
    with pytest.raises(ShapeError, match="as many inputs as the network takes: 3"):
        verify(net, spec, input_shape=(1, 3), timeout=1)


def test_result_file_format():
    res = VerifyResult("sat", 0.1, "pgd", torch.tensor([0.5, 0.25]), torch.tensor([1.0, -2.0]))
    assert res.format() == "sat\n((X_0 0.5)\n (X_1 0.25)\n (Y_0 1.0)\n (Y_1 -2.0))\n"
    assert VerifyResult("timeout", 1.0).format() == "timeout\n"


@given(lo=st.lists(st.floats(-3, 3), min_size=4, max_size=4), width=st.floats(1e-6, 2.0))
def test_box_corners_stay_inside_the_property_box(lo, width):
    """Solvers return corners (u = +-1); in float32 they must not round outside the float64 box."""
    from robustest.vnnlib.verify import SpecMargin

    spec = parse_vnnlib(_spec_text(lo, [v + width for v in lo], 2, 0))
    region = spec.regions[0]
    wrapped = SpecMargin(nn.Sequential(nn.Linear(4, 2)), region, (4,), margin=0.0, device=torch.device("cpu"),
                         dtype=torch.float32)
    u = torch.tensor([[1.0] * 4, [-1.0] * 4, [1.0, -1.0, 1.0, -1.0]])
    x = wrapped.point(u).double()
    assert bool(((x >= region.lower) & (x <= region.upper)).all())


def test_every_prover_the_verifier_schedules_is_enabled():
    """An optional prover (alpha-CROWN) listed in the verifier's schedule must run, not be switched off by
    check()'s default ProofSettings."""
    from robustest.ladder import ProverRung
    from robustest.vnnlib.prove import vnnlib_ladder
    from robustest.vnnlib.verify import RegionSubject

    net = nn.Sequential(nn.Linear(2, 2)).eval()
    spec = parse_vnnlib(_spec_text([0.0, 0.0], [1.0, 1.0], 2, 0))
    subject = RegionSubject(net, spec, (2,), deadline=0.0, seed=0, device=torch.device("cpu"),
                            dtype=torch.float32)
    provers = [p for r in vnnlib_ladder() if isinstance(r, ProverRung) for p, _ in r.provers]
    assert "alpha-crown" in [p.name for p in provers]
    assert all(p.enabled(subject.settings) for p in provers)
