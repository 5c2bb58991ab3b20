"""Structural ONNX operators (Transpose, Pad, Clip/Min/Max, Neg, Sub, Concat, Slice, Gather,
GlobalAveragePool, grouped/dilated Conv, BatchNorm not after a conv), built with onnx.helper: each imports,
equals onnxruntime, reads into the certifiers' graph, and its CROWN and LP bounds contain sampled outputs.
A Cast that changes values is refused; an import that disagrees with onnxruntime is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import robustest  # noqa: E402
from robustest.errors import UnsupportedLayer  # noqa: E402
from robustest.graph import read_model  # noqa: E402
from robustest.io.onnx_check import OnnxMismatch  # noqa: E402
from robustest.io.onnx_import import import_onnx  # noqa: E402

RNG = np.random.default_rng(0)


def _init(name: str, shape, scale=1.0, dtype=np.float32):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(dtype), name)


def _const(name: str, value):
    return numpy_helper.from_array(np.asarray(value), name)


def _model(nodes, in_shape, out_shape, inits, opset=13, in_type=TensorProto.FLOAT):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", in_type, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _ort(model, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _check(model, in_shape, kinds=()):
    """Imports equal to onnxruntime; the graph holds ``kinds``; CROWN and LP bounds contain samples."""
    net = import_onnx(model)
    x = RNG.random(tuple(in_shape), dtype=np.float32)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), _ort(model, x), rtol=1e-5, atol=1e-5)
    xt = torch.from_numpy(x)
    graph = read_model(net, xt)
    got = {n.layer.kind for n in graph.nodes[1:]}
    assert set(kinds) <= got, got
    eps = 0.05
    pts = (xt + (torch.rand((300,) + tuple(in_shape[1:])) * 2 - 1) * eps).clamp(0, 1)
    with torch.no_grad():
        ys = net(pts).double()
    for method in ("crown", "lp"):
        b = robustest.bounds(net, xt, eps=eps, method=method)
        assert bool((ys >= b.lower - 1e-5).all() and (ys <= b.upper + 1e-5).all()), method
    return net, graph


def test_keras_style_nhwc_conv_net_with_transposes():
    """tf2onnx's pattern: an NHWC input, Transpose to NCHW around a grouped, dilated Conv, back to NHWC,
    Reshape, MatMul + Add."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w", "b"], ["c"], group=2, dilations=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t2"], perm=[0, 2, 3, 1]),
             helper.make_node("Reshape", ["t2", "shape"], ["f"]),
             helper.make_node("MatMul", ["f", "wd"], ["m"]),
             helper.make_node("Add", ["m", "bd"], ["y"])]
    inits = [_init("w", (4, 1, 3, 3)), _init("b", (4,)), _const("shape", np.array([-1, 4 * 5 * 5], np.int64)),
             _init("wd", (100, 3), 0.1), _init("bd", (3,))]
    _check(_model(nodes, (1, 7, 7, 2), (1, 3), inits), (1, 7, 7, 2), kinds={"Select", "Conv2d", "Linear"})


def test_pad_constant_and_zero_and_global_average_pool():
    nodes = [helper.make_node("Pad", ["x", "pads", "val"], ["p"], mode="constant"),
             helper.make_node("Conv", ["p", "w", "b"], ["c"], pads=[0, 1, 1, 0]),  # asymmetric: a ZeroPad2d
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Pad", ["r", "zeros"], ["z"], mode="constant"),  # all zero: vanishes
             helper.make_node("GlobalAveragePool", ["z"], ["g"]),
             helper.make_node("Flatten", ["g"], ["y"])]
    inits = [_const("pads", np.array([0, 0, 1, 2, 0, 0, 2, 0], np.int64)), _const("val", np.float32(0.5)),
             _init("w", (3, 1, 2, 2)), _init("b", (3,)), _const("zeros", np.zeros(8, np.int64))]
    _, graph = _check(_model(nodes, (1, 1, 5, 5), (1, 3), inits, opset=13), (1, 1, 5, 5),
                      kinds={"Pad", "AvgPool2d"})
    assert sum(n.layer.kind == "Pad" for n in graph.nodes[1:]) == 2  # the input pad and the conv's


def test_pad_attribute_form_of_opset_9():
    nodes = [helper.make_node("Pad", ["x"], ["p"], mode="constant", pads=[0, 0, 1, 0, 0, 0, 0, 2], value=-1.0),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)]
    _check(_model(nodes, (1, 2, 3, 3), (1, 2), [_init("w", (2, 2 * 4 * 5)), _init("b", (2,))], opset=9),
           (1, 2, 3, 3), kinds={"Pad"})


def test_clip_min_max_neg_sub_are_exact_piecewise_linear():
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
             helper.make_node("Clip", ["h", "lo", "hi"], ["c"]),
             helper.make_node("Max", ["h", "m"], ["mx"]),
             helper.make_node("Min", ["c", "mx"], ["mn"]),  # of two activations
             helper.make_node("Neg", ["mn"], ["n"]),
             helper.make_node("Sub", ["n", "h"], ["s"]),  # of two activations
             helper.make_node("Min", ["s", "k"], ["y"])]
    inits = [_init("w", (4, 3)), _init("b", (4,)), _const("lo", np.float32(-0.3)), _const("hi", np.float32(0.4)),
             _init("m", (4,), 0.2), _init("k", (1, 4), 0.5)]
    net, _ = _check(_model(nodes, (1, 3), (1, 4), inits), (1, 3), kinds={"ReLU", "Add", "Scale"})
    # no relaxation at a point: on a zero-width ball the bounds are the value itself
    x = torch.rand(1, 3)
    b = robustest.bounds(net, x, eps=0.0, method="crown")
    torch.testing.assert_close(b.lower, net(x).double(), atol=1e-5, rtol=0)


def test_concat_of_branches_slice_and_gather():
    nodes = [helper.make_node("Slice", ["x", "st", "en", "ax"], ["a"]),          # x[:, 1:5]
             helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),              # x[:, [5, 0, 0]]
             helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Concat", ["ra", "g"], ["c"], axis=1),
             helper.make_node("Gemm", ["c", "w", "b"], ["y"], transB=1)]
    inits = [_const("st", np.array([1], np.int64)), _const("en", np.array([5], np.int64)),
             _const("ax", np.array([1], np.int64)), _const("idx", np.array([5, 0, -6], np.int64)),
             _init("w", (2, 7)), _init("b", (2,))]
    _check(_model(nodes, (1, 6), (1, 2), inits), (1, 6), kinds={"Select", "Concat", "ReLU"})


def test_batchnorm_after_relu_and_at_the_input():
    bn = [_init("s", (2,)), _init("bb", (2,)), _init("mu", (2,)),
          numpy_helper.from_array(RNG.random(2).astype(np.float32) + 0.5, "var")]
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n0"]),
             helper.make_node("Conv", ["n0", "w", "b"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("BatchNormalization", ["r", "s", "bb", "mu", "var"], ["n1"]),
             helper.make_node("Flatten", ["n1"], ["f"]),
             helper.make_node("Gemm", ["f", "wd", "bd"], ["y"], transB=1)]
    inits = bn + [_init("w", (2, 2, 2, 2)), _init("b", (2,)), _init("wd", (2, 2 * 3 * 3)), _init("bd", (2,))]
    _check(_model(nodes, (1, 2, 4, 4), (1, 2), inits), (1, 2, 4, 4), kinds={"Scale", "Conv2d"})


def _cast_model(to: int):
    nodes = [helper.make_node("Mul", ["x", "ten"], ["m"]),
             helper.make_node("Cast", ["m"], ["c"], to=to),
             helper.make_node("Cast", ["c"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)]
    inits = [_const("ten", np.float32(10.0)), _init("w", (2, 3)), _init("b", (2,))]
    return _model(nodes, (1, 3), (1, 2), inits)


@pytest.mark.parametrize("to", [TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16])
def test_a_cast_that_changes_values_is_refused(to):
    with pytest.raises(UnsupportedLayer, match=r"Cast node .* to (INT32|INT64|BOOL|FLOAT16) applied to a float32 value.*changes values"):
        import_onnx(_cast_model(to))


def test_a_widening_float_cast_is_the_identity():
    model = _cast_model(TensorProto.DOUBLE)
    net = import_onnx(model)
    x = RNG.random((1, 3), dtype=np.float32)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), _ort(model, x), rtol=1e-5, atol=1e-5)


def test_an_import_that_disagrees_with_onnxruntime_is_refused(monkeypatch):
    """A misread operator (here: Relu imported as nothing) is caught by the onnxruntime check."""
    from robustest.layers.relu import ReLU

    monkeypatch.setattr(ReLU, "from_onnx", classmethod(lambda cls, node: node.inputs[0]))
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])]
    model = _model(nodes, (1, 3), (1, 4), [_init("w", (4, 3)), _init("b", (4,), 3.0)])
    with pytest.raises(OnnxMismatch, match=r"differ by [0-9.e+-]+ .*more than the tolerance [0-9.e+-]+ \(atol"):
        import_onnx(model)
