"""`robustest check --executor` and `robustest vnnlib --instances`: the same verdicts on every executor
(Ray is in the test extra, so CI runs the Ray test; elsewhere `pip install "robustest[ray]"`)."""

from __future__ import annotations

import json

import pytest

from robustest.cli import main
from robustest.errors import InvalidArgument
from robustest.executors import parse_executor

from .test_vnnlib_cli import BOX, DECL, tiny_onnx  # noqa: F401  (a fixture)

MLP = ["--model-class", "digits:mlp"]


def _verdicts(path):
    return [[s["verdict"] for s in t["record"]["samples"]] for t in json.loads(path.read_text())["tests"]]


def _check(digits_files, tmp_path, *executor):
    model, data = digits_files
    out = tmp_path / f"{'-'.join(executor) or 'serial'}.json".replace("=", "_")
    main(["check", str(model), str(data), *MLP, "--eps", "0.03", "--escalate", "crown", "--batch", "3",
          "--json", str(out), *executor])
    return _verdicts(out)


def _instances(tmp_path):
    for name, prop in (("unsat", "(assert (>= Y_1 Y_0))"), ("sat", "(assert (>= Y_0 2.5))")):
        (tmp_path / f"{name}.vnnlib").write_text(DECL + BOX + prop)
    # generous timeouts: a fresh Ray worker imports torch and onnxruntime inside the budget, slow under load
    (tmp_path / "instances.csv").write_text("tiny.onnx,unsat.vnnlib,90\ntiny.onnx,sat.vnnlib,90\n")
    return str(tmp_path / "instances.csv")


def test_vnnlib_batch_decides_every_instance(tiny_onnx, tmp_path):  # noqa: F811
    csv_path, out = _instances(tmp_path), tmp_path / "results.csv"
    assert main(["vnnlib", "--instances", csv_path, "--out", str(out), "--out-dir", str(tmp_path / "r")]) == 0
    assert [line.split(",")[3] for line in out.read_text().splitlines()] == ["unsat", "sat"]
    assert sorted(p.read_text().split()[0] for p in (tmp_path / "r").iterdir()) == ["sat", "unsat"]
    (tmp_path / "bad.csv").write_text("tiny.onnx,unsat.vnnlib,soon\n")
    assert main(["vnnlib", "--instances", str(tmp_path / "bad.csv")]) == 2
    assert main(["vnnlib", "--instances", csv_path, str(tiny_onnx)]) == 2


def test_check_reuses_the_cache(digits_files, tmp_path, capsys):
    model, data = digits_files
    args = ["check", str(model), str(data), *MLP, "--eps", "0.03", "--escalate", "crown", "--cache",
            str(tmp_path / "cache")]
    main(args)
    assert "reused from the cache" not in capsys.readouterr().out
    main(args)
    assert "verdicts reused from the cache" in capsys.readouterr().out


def test_bad_executor():
    with pytest.raises(InvalidArgument, match="--executor='spark'"):
        parse_executor("spark")
    with pytest.raises(InvalidArgument, match="--workers=0"):
        parse_executor("pool", workers=0)


def test_a_process_pool_gives_the_serial_verdicts(digits_files, tmp_path):
    assert _check(digits_files, tmp_path, "--executor", "pool") == _check(digits_files, tmp_path)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_tasks_give_the_serial_verdicts(local_ray, digits_files, tiny_onnx, tmp_path):  # noqa: F811
    assert _check(digits_files, tmp_path, "--executor", "ray") == _check(digits_files, tmp_path)
    out = tmp_path / "ray.csv"
    assert main(["vnnlib", "--instances", _instances(tmp_path), "--executor", "ray", "--out", str(out)]) == 0
    assert [line.split(",")[3] for line in out.read_text().splitlines()] == ["unsat", "sat"]
