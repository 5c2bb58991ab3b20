"""`robustest vnnlib`: result files for sat and unsat, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from robustest.cli import main

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DECL = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= X_1 0))(assert (<= X_1 1))\n"


@pytest.fixture()
def tiny_onnx(tmp_path):
    """Y_0 = relu(x0) + relu(x1) + 1, Y_1 = 0 on inputs of shape [1, 2]."""
    inits = [numpy_helper.from_array(np.eye(2, dtype=np.float32), "w1"),
             numpy_helper.from_array(np.zeros(2, np.float32), "b1"),
             numpy_helper.from_array(np.array([[1, 1], [0, 0]], np.float32), "w2"),
             numpy_helper.from_array(np.array([1, 0], np.float32), "b2")]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=inits)
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _spec(tmp_path, text):
    path = tmp_path / "p.vnnlib"
    path.write_text(DECL + BOX + text)
    return path


def test_unsat_result_file(tiny_onnx, tmp_path, capsys):
    pytest.importorskip("robustest.certify.crown")
    out = tmp_path / "result.txt"
    spec = _spec(tmp_path, "(assert (>= Y_1 Y_0))")
    assert main(["vnnlib", str(tiny_onnx), str(spec), "--timeout", "20", "--out", str(out)]) == 0
    assert out.read_text() == "unsat\n"
    assert capsys.readouterr().out.startswith("unsat")


def test_real_arithmetic_flag_reaches_the_verifier(tiny_onnx, tmp_path, monkeypatch):
    import robustest.vnnlib as vnnlib_package

    seen = []
    real = vnnlib_package.verify

    def spy(*args, **kwargs):
        seen.append(kwargs.get("real_arithmetic"))
        return real(*args, **kwargs)

    monkeypatch.setattr(vnnlib_package, "verify", spy)  # what the command imports
    spec = _spec(tmp_path, "(assert (>= Y_1 Y_0))")
    out = tmp_path / "result.txt"
    assert main(["vnnlib", str(tiny_onnx), str(spec), "--timeout", "20", "--out", str(out),
                 "--real-arithmetic"]) == 0
    assert seen == [True] and out.read_text() == "unsat\n"


def test_sat_result_file_is_a_real_counterexample(tiny_onnx, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "result.txt"
    spec = _spec(tmp_path, "(assert (>= Y_0 2.5))")
    assert main(["vnnlib", str(tiny_onnx), str(spec), "--timeout", "20", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "sat"
    vals = dict(tok.strip("() ").split() for tok in " ".join(lines[1:]).split(")") if tok.strip("() "))
    x = np.array([[float(vals["X_0"]), float(vals["X_1"])]], np.float32)
    assert ((0 <= x) & (x <= 1)).all()
    y = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert y[0, 0] >= 2.5 and abs(y[0, 0] - float(vals["Y_0"])) < 1e-5


def test_bad_input(tiny_onnx, tmp_path, capsys):
    spec = _spec(tmp_path, "(assert (>= Y_0 2.5))")
    for bad in ("0", "-3", "nan", "soon"):
        with pytest.raises(SystemExit):
            main(["vnnlib", str(tiny_onnx), str(spec), "--timeout", bad])
        assert "--timeout" in capsys.readouterr().err
    three = tmp_path / "three.vnnlib"
    three.write_text("(declare-const X_2 Real)" + DECL + BOX + "(assert (>= X_2 0))(assert (<= X_2 1))"
                     "(assert (>= Y_0 2.5))")
    assert main(["vnnlib", str(tiny_onnx), str(three), "--timeout", "5"]) == 2
    assert "3 inputs" in capsys.readouterr().err
    broken = tmp_path / "broken.vnnlib"
    broken.write_text(DECL + BOX + "(assert (>= Y_0 2.5)")
    assert main(["vnnlib", str(tiny_onnx), str(broken), "--timeout", "5"]) == 2
    assert "line 3, column 1" in capsys.readouterr().err
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07 not a model \xff\xfe")
    assert main(["vnnlib", str(junk), str(spec), "--timeout", "5"]) == 2
    assert "ONNX" in capsys.readouterr().err
