"""ONNX MatMul with a constant on either side, in the broadcast forms exporters emit: the import equals
onnxruntime, the graph reads it as the MatMul kind (whose rules are sound on sampled points, both sides),
CROWN bounds and the branch and bound's dense read hold on it; a product of two input-dependent values is
refused naming the node, and such a model is still attacked through onnxruntime, the answer saying why no
proof was tried."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import robustest  # noqa: E402
from robustest.certify.crown import crown  # noqa: E402
from robustest.certify.mlp import dense_mlp  # noqa: E402
from robustest.errors import UnsupportedLayer  # noqa: E402
from robustest.graph import read_model  # noqa: E402
from robustest.io import load_model  # noqa: E402
from robustest.io.onnx_import import import_onnx  # noqa: E402
from robustest.io.onnx_runtime import OnnxRuntimeModule  # noqa: E402
from robustest.layers.matmul import MatMul  # noqa: E402
from robustest.spec import LpBall  # noqa: E402


def _const(name: str, shape: tuple[int, ...], seed: int):  # type: ignore[no-untyped-def]
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return numpy_helper.from_array(values, name)


def _model(nodes, inits, in_shape, out_shape):  # type: ignore[no-untyped-def]
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _forms():  # type: ignore[no-untyped-def]
    """name -> (model, input shape): x @ W, W @ x, a 3-D constant broadcast over the batch, a stacked
    constant broadcast over a middle dimension, a 1-D constant on the left."""
    mm = helper.make_node
    return {
        "right-left": (_model([mm("MatMul", ["x", "w1"], ["a"], name="right"), mm("Relu", ["a"], ["r"]),
                               mm("MatMul", ["w2", "r"], ["b"], name="left"), mm("Flatten", ["b"], ["y"])],
                              [_const("w1", (3, 4), 0), _const("w2", (5, 2), 1)], (1, 2, 3), (1, 20)),
                       (1, 2, 3)),
        "broadcast-3d": (_model([mm("MatMul", ["x", "w"], ["a"], name="bcast"), mm("Relu", ["a"], ["r"]),
                                 mm("Flatten", ["r"], ["y"])], [_const("w", (1, 3, 4), 2)], (1, 2, 3),
                                (1, 8)),
                         (1, 2, 3)),
        "stacked": (_model([mm("MatMul", ["x", "w"], ["a"], name="stacked"), mm("Flatten", ["a"], ["y"])],
                           [_const("w", (2, 3, 2), 3)], (1, 2, 4, 3), (1, 16)), (1, 2, 4, 3)),
        "vector-left": (_model([mm("MatMul", ["w", "x"], ["y"], name="vec")], [_const("w", (2,), 4)],
                               (1, 2, 3), (1, 3)), (1, 2, 3)),
    }


FORMS = _forms()


@pytest.mark.parametrize("form", FORMS)
def test_matmul_by_a_constant_imports_reads_and_bounds_soundly(form):
    model, shape = FORMS[form]
    net = import_onnx(model)  # itself compared with onnxruntime on sampled inputs
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    x = torch.rand((1,) + shape[1:], generator=g) * 2 - 1
    want = sess.run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(net(x).detach().numpy(), want, rtol=1e-5, atol=1e-5)
    graph = read_model(net.double(), x.double())
    assert any(isinstance(n.layer, MatMul) for n in graph.nodes[1:])
    # CROWN on the imported graph: sound on sampled points of the box
    ball = LpBall(0.3, "linf", None)
    x0 = x.double()
    K = graph.nodes[-1].shape[0]
    C = torch.randn(1, 2, K, generator=g, dtype=torch.float64)
    low = crown(graph, x0, ball, C).lower[0]
    pts = x0 + (torch.rand((2000,) + shape[1:], generator=g, dtype=torch.float64) * 2 - 1) * 0.3
    with torch.no_grad():
        vals = net.double()(pts).reshape(2000, -1) @ C[0].T
    assert bool((vals >= low - 1e-9).all())
    # the branch and bound reads it as a linear layer: the dense chain computes the network
    dense = dense_mlp(graph)
    torch.testing.assert_close(dense.forward(pts.reshape(2000, -1)), net(pts).reshape(2000, -1), rtol=1e-9,
                               atol=1e-9)


@pytest.mark.parametrize("side, wshape, xshape", [("right", (3, 4), (2, 3)), ("right", (2, 3, 2), (2, 4, 3)),
                                                  ("right", (3,), (2, 3)), ("left", (5, 2), (2, 3))])
def test_matmul_rules_are_sound_on_sampled_points(side, wshape, xshape):
    """Both sides (the registry-wide test checks the kind's example, a left product): interval bounds and
    the CROWN rule (through the linear transpose) hold on sampled points, ``abs_linear`` is ``|W|``'s."""
    g = torch.Generator().manual_seed(1)
    layer = MatMul(torch.randn(wshape, generator=g, dtype=torch.float64), side)
    B = 3
    mid = torch.randn((B,) + xshape, generator=g, dtype=torch.float64)
    rad = torch.rand((B,) + xshape, generator=g, dtype=torch.float64)
    lo, hi = layer.interval((mid - rad, mid + rad))
    pts = mid + rad * (2 * torch.rand((200, B) + xshape, generator=g, dtype=torch.float64) - 1)
    out = torch.stack([layer.forward(p) for p in pts])
    assert bool((out >= lo - 1e-9).all() and (out <= hi + 1e-9).all())
    A = torch.randn((B, 2) + tuple(out.shape[2:]), generator=g, dtype=torch.float64)
    (coef,), const = layer.backward(A, [(mid - rad, mid + rad)])
    lhs = (A.unsqueeze(0) * out.unsqueeze(2)).flatten(3).sum(-1)
    rhs = (coef.unsqueeze(0) * pts.unsqueeze(2)).flatten(3).sum(-1) + const
    torch.testing.assert_close(lhs, rhs, rtol=1e-9, atol=1e-9)  # linear: the rule is exact
    W, _ = layer.matrix(xshape)
    eye = torch.eye(int(np.prod(xshape)), dtype=torch.float64).reshape((-1,) + xshape)
    absolute = layer.abs_linear(eye).reshape(eye.shape[0], -1).T.numpy()
    np.testing.assert_allclose(absolute, np.abs(W), atol=1e-12)


def _bilinear(tmp_path):  # type: ignore[no-untyped-def]
    mm = helper.make_node
    model = _model([mm("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
                    mm("MatMul", ["x", "t"], ["p"], name="gram"),
                    mm("Flatten", ["p"], ["f"]), mm("MatMul", ["f", "w"], ["y"])], [_const("w", (4, 3), 5)],
                   (1, 2, 3), (1, 3))
    path = tmp_path / "gram.onnx"
    onnx.save(model, str(path))
    return path


def test_a_product_of_two_activations_is_refused_naming_the_node(tmp_path):
    with pytest.raises(UnsupportedLayer, match=r"MatMul node 'gram' multiplying two values .*bilinear"):
        load_model(_bilinear(tmp_path))


def test_a_batch_contracting_product_is_refused(tmp_path):
    model = _model([helper.make_node("MatMul", ["w", "x"], ["y"], name="across")], [_const("w", (4, 1), 6)],
                   (1, 3), (4, 3))
    with pytest.raises(UnsupportedLayer, match=r"MatMul node 'across' contracting the batch"):
        import_onnx(model)


def test_a_bilinear_model_is_still_attacked_and_says_why_no_proof_was_tried(tmp_path):
    net = load_model(_bilinear(tmp_path), runtime_fallback=True)
    assert isinstance(net, OnnxRuntimeModule) and "'gram'" in net.blocked_by
    x = torch.rand(4, 2, 3, generator=torch.Generator().manual_seed(0))
    y = net(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the gradients health check: falsification is gradient-free
        wide = robustest.check(net, x, y, eps=1.0, escalate="crown", timeout=5)
        tiny = robustest.check(net, x, y, eps=1e-5, escalate="crown", timeout=5)
    broken = [s for s in wide.samples if s.verdict == "falsified"]
    assert broken
    for s in broken:  # re-checked by onnxruntime's own forward pass
        adv = s.counterexample.reshape(1, 2, 3).float()
        assert net(adv).argmax(1).item() != s.label
    assert all(s.verdict == "unknown" and "'gram'" in s.reason for s in tiny.samples)


def test_vnnlib_on_a_bilinear_model_falsifies_or_says_no_proof_was_tried(tmp_path):
    from robustest.vnnlib import parse_vnnlib, verify

    net = load_model(_bilinear(tmp_path), runtime_fallback=True)
    x = torch.rand(1, 2, 3, generator=torch.Generator().manual_seed(1))
    label = int(net(x).argmax(1))

    def spec(eps: float):  # type: ignore[no-untyped-def]
        flat = x.reshape(-1).tolist()
        decl = [f"(declare-const X_{i} Real)" for i in range(6)]
        decl += [f"(declare-const Y_{j} Real)" for j in range(3)]
        box = [f"(assert (>= X_{i} {v - eps!r}))\n(assert (<= X_{i} {v + eps!r}))"
               for i, v in enumerate(flat)]
        out = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(3) if j != label)
        return parse_vnnlib("\n".join(decl + box + [f"(assert (or {out}))"]))

    tiny = verify(net, spec(1e-5), input_shape=(1, 2, 3), timeout=4)
    assert tiny.status == "timeout" and "no proof tried" in tiny.reason and "'gram'" in tiny.reason, tiny
    wide = verify(net, spec(1.0), input_shape=(1, 2, 3), timeout=8)
    assert wide.status == "sat", wide  # a 1.0-box around a 3-class product net: Square finds another class
    assert wide.x is not None and float((wide.x.reshape(1, 2, 3) - x).abs().max()) <= 1.0 + 1e-6
    y = net(wide.x.reshape(1, 2, 3).float())[0]  # onnxruntime's forward: the property is violated
    assert any(float(y[j]) >= float(y[label]) for j in range(3) if j != label)
