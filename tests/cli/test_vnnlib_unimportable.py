"""`robustest vnnlib` on ONNX models robustest cannot import into its graph: attacks still run (through
onnxruntime), a counterexample is found and re-checked, and an undecided answer names the operator that
blocked the proof. A Cast to an integer type is never treated as the identity (that answered `unsat` on a
property onnxruntime violates)."""

from __future__ import annotations

import numpy as np
import pytest

from robustest.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

DECL = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 0.5))(assert (<= X_0 0.99))(assert (>= X_1 0))(assert (<= X_1 1))\n"


def _save(tmp_path, name, nodes, inits=()):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def cast_net(tmp_path):
    """y = float(int(x)): on X_0 in [0.5, 0.99] onnxruntime gives Y_0 = 0; the identity would give >= 0.5."""
    return _save(tmp_path, "cast", [helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT32, name="to_int"),
                                    helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT, name="back")])


@pytest.fixture()
def sin_net(tmp_path):
    """y = W sin(x) with an operator robustest has no layer kind for."""
    w = numpy_helper.from_array(np.array([[1, 0], [0, 1]], np.float32), "w")
    return _save(tmp_path, "sin", [helper.make_node("Sin", ["x"], ["s"], name="wave"),
                                   helper.make_node("MatMul", ["s", "w"], ["y"])], [w])


def _run(model, spec_text, tmp_path, capsys, timeout="20"):
    spec = tmp_path / "p.vnnlib"
    spec.write_text(DECL + BOX + spec_text)
    out = tmp_path / "result.txt"
    assert main(["vnnlib", str(model), str(spec), "--timeout", timeout, "--out", str(out)]) == 0
    return out.read_text().splitlines(), capsys.readouterr().out


def _counterexample(lines):
    vals = dict(tok.strip("() ").split() for tok in " ".join(lines[1:]).split(")") if tok.strip("() "))
    return np.array([[float(vals["X_0"]), float(vals["X_1"])]], np.float32)


def test_cast_to_int_where_onnxruntime_violates_the_property_is_sat_not_unsat(cast_net, tmp_path, capsys):
    lines, _ = _run(cast_net, "(assert (<= Y_0 0.1))", tmp_path, capsys)
    assert lines[0] == "sat"
    x = _counterexample(lines)
    y = ort.InferenceSession(str(cast_net), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert 0.5 <= x[0, 0] <= 0.99 and y[0, 0] <= 0.1


def test_cast_to_int_is_never_proved_and_the_answer_names_the_cast(cast_net, tmp_path, capsys):
    lines, printed = _run(cast_net, "(assert (>= Y_0 0.5))", tmp_path, capsys, timeout="3")
    assert lines[0] in ("timeout", "unknown")
    assert "Cast node 'to_int'" in printed


def test_unimportable_operator_attacks_find_a_counterexample(sin_net, tmp_path, capsys):
    # Y_0 = sin(X_0) in [0.479, 0.836]: Y_0 >= 0.8 needs X_0 >= 0.927, a corner the random search reaches
    lines, _ = _run(sin_net, "(assert (>= Y_0 0.8))", tmp_path, capsys)
    assert lines[0] == "sat"
    x = _counterexample(lines)
    assert np.sin(x[0, 0]) >= 0.8 - 1e-6


def test_unimportable_operator_undecided_answer_names_it(sin_net, tmp_path, capsys):
    lines, printed = _run(sin_net, "(assert (>= Y_0 0.9))", tmp_path, capsys, timeout="3")
    assert lines[0] in ("timeout", "unknown")
    assert "Sin (node 'wave')" in printed


@pytest.mark.parametrize("net", ["cast_net", "sin_net"])
def test_input_or_output_count_that_does_not_match_the_network_is_a_clear_error(net, request, tmp_path, capsys):
    """Before any work, for a model run by onnxruntime as for an imported one: no raw matmul error."""
    model = request.getfixturevalue(net)
    three_y = tmp_path / "y3.vnnlib"
    three_y.write_text(DECL + "(declare-const Y_2 Real)" + BOX + "(assert (>= Y_2 0.5))")
    assert main(["vnnlib", str(model), str(three_y), "--timeout", "20"]) == 2
    err = capsys.readouterr().err
    assert "3 outputs Y_0..Y_2" in err and "network gives: 2" in err and "Fix:" in err
    one_x = tmp_path / "x1.vnnlib"
    one_x.write_text("(declare-const X_0 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\n"
                     "(assert (>= X_0 0))(assert (<= X_0 1))(assert (>= Y_0 0.5))")
    assert main(["vnnlib", str(model), str(one_x), "--timeout", "20"]) == 2
    err = capsys.readouterr().err
    assert "1 inputs X_0..X_0" in err and "Fix:" in err
