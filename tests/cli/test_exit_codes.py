"""Exit statuses: 0 passed, 1 criterion failed, 2 usage or input error (one line), 3 internal error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from robustest.cli import main

MLP = ["--model-class", "digits:mlp"]


def test_pass_and_fail(digits_files):
    model, data = digits_files
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.001", "--timeout", "2"]) == 0
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.3", "--timeout", "2"]) == 1


@pytest.mark.parametrize("argv", [
    ["check", "missing.onnx", "missing.npz", "--eps", "0.1"],          # a robustest error
    ["check", "{model}", "{data}", *MLP, "--eps", "-1"],                 # bad value
    ["report", "{data}", "--html", "{tmp}/x.html"],                      # not a results file
])
def test_input_errors_exit_2_with_one_line(digits_files, tmp_path, capsys, argv):
    model, data = digits_files
    argv = [a.format(model=model, data=data, tmp=tmp_path) for a in argv]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("robustest") and "error:" in err
    assert "Traceback" not in err


def test_an_os_error_while_working_exits_2(digits_files, monkeypatch, capsys):
    model, data = digits_files

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device", "out.xml")

    monkeypatch.setattr("robustest.io.args.model_from_args", full_disk)
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.01"]) == 2
    assert "No space left on device (out.xml)" in capsys.readouterr().err


def test_an_internal_error_exits_3_not_1(digits_files, monkeypatch, capsys):
    model, data = digits_files

    def bug(*a, **k):
        raise KeyError("oops")

    monkeypatch.setattr("robustest.api.check", bug)
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.01"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error: KeyError" in err and "robustest bug" in err


def test_usage_error_from_argparse_exits_2():
    proc = subprocess.run([sys.executable, "-m", "robustest.cli", "check", "--eps", "x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
