"""An ONNX model robustest cannot import runs through onnxruntime for attacks only (load_model's
``runtime_fallback``): its outputs are onnxruntime's, check() falsifies with gradient-free attacks, and an
undecided sample's reason names the operator that blocked the proof."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import robustest  # noqa: E402
from robustest.errors import UnsupportedLayer  # noqa: E402
from robustest.graph import read_model  # noqa: E402
from robustest.io import load_model  # noqa: E402
from robustest.io.onnx_runtime import OnnxRuntimeModule  # noqa: E402


@pytest.fixture()
def sin_net(tmp_path):
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Sin", ["x"], ["s"], name="wave"),
                               helper.make_node("MatMul", ["s", "w"], ["y"])], "sin",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "sin.onnx"
    onnx.save(model, str(path))
    return path


def test_without_the_fallback_the_import_error_names_the_operator(sin_net):
    with pytest.raises(UnsupportedLayer, match=r"Sin \(node 'wave'\)"):
        load_model(sin_net)


def test_the_fallback_computes_what_onnxruntime_computes(sin_net):
    net = load_model(sin_net, runtime_fallback=True)
    assert isinstance(net, OnnxRuntimeModule) and "Sin (node 'wave')" in net.blocked_by
    x = torch.rand(5, 4)  # the ONNX batch is fixed at 1: run sample by sample
    sess = ort.InferenceSession(str(sin_net), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1].numpy()})[0] for i in range(5)])
    np.testing.assert_array_equal(net(x).numpy(), want)
    with pytest.raises(UnsupportedLayer, match=r"runs through onnxruntime, for attacks only.*Sin \(node 'wave'\)"):
        read_model(net, x[:1])


def test_check_falsifies_by_square_and_names_the_operator_when_undecided(sin_net):
    net = load_model(sin_net, runtime_fallback=True)
    x = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    y = net(x).argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the gradients health check says falsification is gradient-free
        wide = robustest.check(net, x, y, eps=1.0, escalate="crown", timeout=5)
        tiny = robustest.check(net, x, y, eps=1e-4, escalate="crown", timeout=5)
    broken = [s for s in wide.samples if s.verdict == "falsified"]
    assert broken and all(s.method == "square" for s in broken)
    for s in broken:  # a real counterexample, by onnxruntime's own forward pass
        adv = s.counterexample.reshape(1, 4).float()
        assert net(adv).argmax(1).item() != s.label and float((adv - x[s.index]).abs().max()) <= 1.0 + 1e-6
    assert all(s.verdict == "unknown" and "Sin (node 'wave')" in s.reason for s in tiny.samples)
