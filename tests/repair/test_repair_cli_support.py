"""``robustest repair`` on the command line and the pytest helper behind ``--robust-repair``."""

from __future__ import annotations

import os

import pytest
import torch

from robustest.cli import main
from robustest.errors import ModelError
from robustest.repair.pytest_support import repair_after_check, safe_name, save_repaired, verify_loadable


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    from digits import load_model, load_split

    d = tmp_path_factory.mktemp("cli")
    torch.save(load_model("mlp").state_dict(), d / "mlp.pt")
    (x, y), (xt, yt) = load_split()
    torch.save({"inputs": xt[:40], "labels": yt[:40]}, d / "test.pt")
    torch.save({"inputs": x[:300], "labels": y[:300]}, d / "train.pt")
    return d


def test_cli_repairs_writes_the_model_and_prints_the_table(digits_files, capsys):
    d = digits_files
    out = d / "repaired.pt"
    code = main(["repair", str(d / "mlp.pt"), str(d / "test.pt"), "--model-class", "digits:mlp",
                 "--train", str(d / "train.pt"), "--eps", "0.08", "--out", str(out), "--iterations", "3"])
    text = capsys.readouterr().out
    assert code in (0, 1) and out.exists()
    assert "before" in text and "after" in text and "falsified" in text
    from digits import mlp

    m = mlp((100, 100))
    m.load_state_dict(torch.load(out, weights_only=True))
    original = torch.load(d / "mlp.pt", weights_only=True)
    assert any(not torch.equal(original[k], v) for k, v in m.state_dict().items())


def test_cli_refuses_to_overwrite_inputs_or_existing_files(digits_files, capsys):
    d = digits_files
    before = (d / "mlp.pt").read_bytes()
    assert main(["repair", str(d / "mlp.pt"), str(d / "test.pt"), "--model-class", "digits:mlp",
                 "--eps", "0.08", "--out", str(d / "mlp.pt")]) == 2
    assert "--out=" in capsys.readouterr().err and (d / "mlp.pt").read_bytes() == before
    (d / "exists.pt").write_bytes(b"user file")
    assert main(["repair", str(d / "mlp.pt"), str(d / "test.pt"), "--model-class", "digits:mlp",
                 "--eps", "0.08", "--out", str(d / "exists.pt")]) == 2
    assert (d / "exists.pt").read_bytes() == b"user file"


def test_cli_needs_the_model_class_and_wrong_data_keys_are_clear(digits_files, capsys):
    d = digits_files
    assert main(["repair", str(d / "mlp.pt"), str(d / "test.pt"), "--eps", "0.08",
                 "--out", str(d / "x.pt")]) == 2
    assert "--model-class" in capsys.readouterr().err
    torch.save({"x": torch.zeros(2, 64), "y": torch.zeros(2, dtype=torch.long)}, d / "bad.pt")
    assert main(["repair", str(d / "mlp.pt"), str(d / "bad.pt"), "--model-class", "digits:mlp",
                 "--eps", "0.08", "--out", str(d / "y.pt")]) == 2
    assert "inputs" in capsys.readouterr().err


def test_repair_after_check_saves_a_new_file_and_rechecks(tmp_path):
    import robustest
    from digits import load_model, load_split

    model = load_model("mlp")
    _, (xt, yt) = load_split()
    x, y = xt[:40], yt[:40]
    kwargs = {"eps": 0.08, "seed": 0}
    report = robustest.check(model, x, y, **kwargs)
    assert report.counts()["falsified"] > 0
    user_file = tmp_path / f"{safe_name('tests/test_a.py::test_x[1]')}.pt"
    user_file.write_bytes(b"keep me")
    s = repair_after_check(model, x, y, report, check_kwargs=kwargs, out_dir=str(tmp_path),
                           test_name="tests/test_a.py::test_x[1]", repair_options={"iterations": 3})
    assert not s.error, s.error
    assert user_file.read_bytes() == b"keep me" and s.saved_path != str(user_file)
    assert os.path.dirname(s.saved_path) == str(tmp_path) and "/" not in os.path.basename(s.saved_path)
    assert s.before == report.counts() and sum(s.after.values()) == len(y)
    assert s.after["falsified"] < s.before["falsified"]
    assert s.after_report is not None and s.after == s.after_report.counts()
    text = "\n".join(s.lines())
    assert "before" in text and "falsified" in text
    props = dict(s.properties())
    assert props["repair_saved_path"] == s.saved_path and props["repair_before_falsified"] == str(
        s.before["falsified"])


def test_repair_after_check_says_nothing_to_fix_instead_of_raising(tmp_path):
    import robustest

    net = torch.nn.Linear(4, 3).eval()
    x = torch.rand(5, 4)
    y = net(x).argmax(1)
    report = robustest.check(net, x, y, eps=0.0)
    s = repair_after_check(net, x, y, report, check_kwargs={"eps": 0.0}, out_dir=str(tmp_path),
                           test_name="t")
    assert "nothing to fix" in s.error and s.saved_path is None and not os.listdir(tmp_path)
    assert s.properties()[0][0] == "repair_error"


def test_a_model_that_no_longer_loads_into_the_class_is_reported(tmp_path):
    saved = save_repaired(torch.nn.Linear(4, 3), out_dir=str(tmp_path), test_name="t")
    with pytest.raises(ModelError, match="does not load into Linear"):
        verify_loadable(saved, torch.nn.Linear(5, 3))
    assert safe_name("a/b::c[ x ]") == safe_name("a/b::c[ x ]") != safe_name("a/b::c[ y ]")


def test_cli_with_pgd_points_from_the_training_data(digits_files, capsys):
    d = digits_files
    out = d / "pgd.pt"
    code = main(["repair", str(d / "mlp.pt"), str(d / "test.pt"), "--module", "digits:mlp",
                 "--train", str(d / "train.pt"), "--eps", "0.08", "--out", str(out), "--iterations", "2",
                 "--pgd-train", "3"])
    assert code in (0, 1) and out.exists()
    assert "fixed 3/3" in capsys.readouterr().out
