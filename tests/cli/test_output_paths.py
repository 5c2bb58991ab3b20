"""Output paths on the command line are checked before any work: never an input, never twice, writable."""

from __future__ import annotations

import json

import pytest

from robustest.cli import main

MLP = ["--model-class", "digits:mlp"]


@pytest.fixture()
def files(digits_files, tmp_path):
    """Copies of the model and data, so a test that overwrote one could not harm the others."""
    model, data = (tmp_path / "mlp.pt", tmp_path / "test.npz")
    model.write_bytes(digits_files[0].read_bytes())
    data.write_bytes(digits_files[1].read_bytes())
    return model, data


@pytest.mark.parametrize("option,which", [("--junit", "model"), ("--html", "data"), ("--json", "model")])
def test_check_refuses_an_output_that_is_an_input(files, capsys, option, which):
    model, data = files
    target = model if which == "model" else data
    before = target.read_bytes()
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.01", option, str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{option}=" in err and f"the {which} file" in err and "Fix:" in err
    assert target.read_bytes() == before


def test_check_refuses_an_input_reached_through_a_symlink(files, tmp_path, capsys):
    model, data = files
    link = tmp_path / "report.html"
    link.symlink_to(data)
    before = data.read_bytes()
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.01", "--html", str(link)]) == 2
    assert data.read_bytes() == before


def test_check_refuses_two_outputs_on_one_file(files, tmp_path, capsys):
    model, data = files
    out = tmp_path / "r.out"
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.01", "--html", str(out), "--junit",
                 str(out)]) == 2
    assert "different files" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("make", ["directory", "under_a_file"])
def test_unwritable_output_is_reported_before_the_work(files, tmp_path, capsys, monkeypatch, make):
    model, data = files
    if make == "directory":
        out = tmp_path / "out.xml"
        out.mkdir()
    else:
        out = data / "out.xml"  # the parent is a file

    def no_work(*a, **k):  # the check must not even start
        raise AssertionError("the check ran before the output path was checked")

    monkeypatch.setattr("robustest.api.check", no_work)
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.01", "--junit", str(out)]) == 2
    assert "--junit=" in capsys.readouterr().err


def test_check_refuses_the_same_eps_twice(files, capsys):
    model, data = files
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.05", "--eps", "0.05"]) == 2
    assert "--eps=0.05" in capsys.readouterr().err


def test_other_commands_refuse_an_output_that_is_an_input(files, tmp_path, capsys):
    model, data = files
    before = (model.read_bytes(), data.read_bytes())
    assert main(["attack", str(model), str(data), *MLP, "--eps", "0.01", "--out", str(data)]) == 2
    assert main(["radius", str(model), str(data), *MLP, "--json", str(model)]) == 2
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"format": "robustest-results/1", "tests": []}))
    assert main(["report", str(results), "--html", str(results)]) == 2
    assert (model.read_bytes(), data.read_bytes()) == before and "robustest-results" in results.read_text()
