"""ONNX import: outputs equal onnxruntime's; layers are ordinary torch layers; clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import fx, nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from robustest.errors import ModelError, UnsupportedLayer  # noqa: E402
from robustest.io import load_model  # noqa: E402
from robustest.io.onnx_import import import_onnx  # noqa: E402
from robustest.io.onnx_modules import ConstantAffine  # noqa: E402


def _ort(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _export(model: nn.Module, shape, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.rand(*shape),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"])


def _agree(path, shape, *, seed=0) -> nn.Module:
    net = load_model(path)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x = rng.random(shape, dtype=np.float32)
        got = net(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, _ort(path, x), rtol=1e-4, atol=1e-5)
    return net


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.mpool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 2 * 2, 5)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv1(x)))
        h = torch.relu(self.conv2(h) + h)
        return self.fc(self.mpool(self.pool(h)).flatten(1))


def test_mnist_fc_networks_match_onnxruntime(shared_dir):
    for depth in (2, 4, 6):
        path = shared_dir / f"benchmarks/vnncomp2022_mnist_fc/onnx/mnist-net_256x{depth}.onnx"
        net = _agree(path, (1, 784, 1))
        assert isinstance(net, nn.Sequential)
        assert sum(isinstance(m, nn.Linear) for m in net) == depth + 1
        assert sum(isinstance(m, nn.ReLU) for m in net) == depth
        # a batch of several inputs works although the ONNX input says batch 1
        assert net(torch.rand(3, 784, 1)).shape == (3, 10)


def test_cnn_chain_becomes_sequential(tmp_path):
    from digits import load_model as digits_model

    path = tmp_path / "cnn.onnx"
    _export(digits_model("cnn"), (1, 1, 8, 8), path)
    net = _agree(path, (1, 1, 8, 8))
    assert isinstance(net, nn.Sequential)
    assert {type(m) for m in net} == {nn.Conv2d, nn.ReLU, nn.Flatten, nn.Linear}


def test_residual_batchnorm_pools_become_graph_module(tmp_path):
    torch.manual_seed(0)
    model = _Residual()
    model.bn.running_mean.uniform_(-0.5, 0.5)
    model.bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "res.onnx"
    _export(model, (1, 2, 8, 8), path)
    net = _agree(path, (1, 2, 8, 8))
    assert isinstance(net, fx.GraphModule)
    kinds = {type(m) for m in net.modules()}
    assert {nn.Conv2d, nn.ReLU, nn.Linear, nn.AvgPool2d, nn.MaxPool2d} <= kinds
    # BatchNormalization after Conv may be fused by the exporter; either way the outputs agree above.
    x = torch.rand(4, 2, 8, 8)
    assert torch.allclose(net(x), model(x), atol=1e-5)


def _save(graph, path, opset=13):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_normalisation_matmul_add_identity(tmp_path):
    rng = np.random.default_rng(1)
    mean = numpy_helper.from_array(rng.random((1, 3, 1, 1), dtype=np.float32), "mean")
    std = numpy_helper.from_array(rng.random((1, 3, 1, 1), dtype=np.float32) + 0.5, "std")
    shape = numpy_helper.from_array(np.array([-1, 12], dtype=np.int64), "shape")
    w = numpy_helper.from_array(rng.standard_normal((12, 4), dtype=np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4, dtype=np.float32), "b")
    nodes = [helper.make_node("Sub", ["x", "mean"], ["s"], name="sub"),
             helper.make_node("Div", ["s", "std"], ["d"], name="div"),
             helper.make_node("Identity", ["d"], ["i"], name="id"),
             helper.make_node("Reshape", ["i", "shape"], ["r"], name="reshape"),
             helper.make_node("MatMul", ["r", "w"], ["m"], name="matmul"),
             helper.make_node("Add", ["m", "b"], ["a"], name="add"),
             helper.make_node("Dropout", ["a"], ["y"], name="drop")]
    graph = helper.make_graph(nodes, "norm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              initializer=[mean, std, shape, w, b])
    path = tmp_path / "norm.onnx"
    _save(graph, path)
    net = _agree(path, (1, 3, 2, 2))
    assert isinstance(net, nn.Sequential)
    assert [type(m) for m in net] == [ConstantAffine, ConstantAffine, nn.Flatten, nn.Linear]
    assert net[-1].bias is not None  # the Add was folded into the Linear's bias


def test_unsupported_operators_listed_by_name_and_node(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Softmax", ["r"], ["s"], name="probs"),
             helper.make_node("Elu", ["s"], ["y"], name="elu")]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "bad.onnx"
    _save(graph, path)
    with pytest.raises(UnsupportedLayer) as info:
        import_onnx(path)
    msg = str(info.value)
    assert "2 ONNX operator(s)" in msg
    assert "Softmax (node 'probs')" in msg and "Elu (node 'elu')" in msg


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    with pytest.raises(ModelError, match="ONNX"):
        load_model(path)


def test_batchnorm_node_becomes_batchnorm2d(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {"scale": rng.random(3) + 0.5, "bias": rng.standard_normal(3), "mean": rng.standard_normal(3),
              "var": rng.random(3) + 0.5}
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()]
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["b"],
                              name="bn", epsilon=1e-3),
             helper.make_node("Relu", ["b"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["y"], name="pool", kernel_shape=[2, 2], strides=[2, 2])]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 2, 2])],
                              initializer=inits)
    path = tmp_path / "bn.onnx"
    _save(graph, path)
    net = _agree(path, (1, 3, 4, 4))
    assert [type(m) for m in net] == [nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert not net[0].training


def test_certifiers_and_attacks_read_imported_models(tmp_path):
    """The imported Sequential (with normalisation) and GraphModule (residual) go through the certifiers'
    graph reader; CROWN bounds contain the outputs of sampled points, and an attack runs on them."""
    import robustest

    test_normalisation_matmul_add_identity(tmp_path)
    test_residual_batchnorm_pools_become_graph_module(tmp_path)
    for name, shape in (("norm.onnx", (2, 3, 2, 2)), ("res.onnx", (2, 2, 8, 8))):
        net = load_model(tmp_path / name)
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
        b = robustest.bounds(net, x, eps=0.05, method="crown")
        pts = (x.unsqueeze(1) + (torch.rand((2, 200) + shape[1:]) * 2 - 1) * 0.05).clamp(0, 1)
        with torch.no_grad():
            ys = net(pts.flatten(0, 1)).view(2, 200, -1).double()
        assert bool((ys >= b.lower.unsqueeze(1) - 1e-5).all() and (ys <= b.upper.unsqueeze(1) + 1e-5).all())
        labels = net(x).argmax(1)
        out = robustest.attack(net, x, labels, eps=0.05, method="pgd", steps=5)
        assert out.adversarial.shape == x.shape
