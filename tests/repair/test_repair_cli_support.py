"""``robustest repair`` on the command line and the pytest helper behind ``--robust-repair``."""

from __future__ import annotations

import os

import pytest
import torch

from robustest.cli import main
from robustest.errors import ModelError
from robustest.repair.guided_settings import GuidedSettings
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


def _cli(d, *extra):
    return main(["repair", str(d / "gap.pt"), str(d / "gate.pt"), "--model-class", "gapnet:GapNet", "--eps", "0.08",
                 *extra])


def test_cli_repairs_until_the_check_passes_writes_the_model_and_prints_the_table(gapnet_files, capsys):
    d = gapnet_files
    out = d / "repaired.pt"
    code = _cli(d, "--train", str(d / "train.pt"), "--out", str(out))
    text = capsys.readouterr().out
    assert code == 0 and out.exists(), text
    assert "guided repair: fixed (the test passes)" in text and "falsified 2 -> 0" in text
    assert "held-out (50 samples): clean 100.0% -> 100.0%" in text
    from gapnet import GapNet

    m = GapNet()
    m.load_state_dict(torch.load(out, weights_only=True))
    original = torch.load(d / "gap.pt", weights_only=True)
    assert any(not torch.equal(original[k], v) for k, v in m.state_dict().items())


def test_cli_exits_non_zero_and_writes_nothing_when_the_round_budget_ends_first(gapnet_files, capsys):
    d = gapnet_files
    x, y = torch.load(d / "gate.pt")["inputs"], torch.load(d / "gate.pt")["labels"]
    torch.save({"inputs": torch.cat([x, torch.tensor([[0.45, 0.5]])]), "labels": torch.cat([y, torch.tensor([1])])},
               d / "hard.pt")
    out = d / "never.pt"
    code = main(["repair", str(d / "gap.pt"), str(d / "hard.pt"), "--model-class", "gapnet:GapNet", "--eps", "0.08",
                 "--train", str(d / "train.pt"), "--out", str(out), "--rounds", "2", "--plain-cuts"])
    text = capsys.readouterr().out
    assert code == 1 and not out.exists()
    assert "not passing (round budget reached)" in text and "still failing: samples" in text
    assert "not written" in text


def test_cli_checks_the_output_directory_before_any_work(gapnet_files, capsys):
    d = gapnet_files
    blocker = d / "a_file"
    blocker.write_text("not a directory")
    assert _cli(d, "--out", str(blocker / "sub" / "repaired.pt")) == 2
    assert "--out=" in capsys.readouterr().err


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


def test_repair_after_check_saves_a_new_file_and_rechecks(tmp_path, gap):
    import robustest

    model = gap.model()
    kwargs = {"eps": 0.08, "seed": 0}
    report = robustest.check(model, gap.x, gap.y, **kwargs)
    assert report.counts()["falsified"] > 0
    user_file = tmp_path / f"{safe_name('tests/test_a.py::test_x[1]')}.pt"
    user_file.write_bytes(b"keep me")
    s = repair_after_check(model, gap.x, gap.y, report, check_kwargs=kwargs, out_dir=str(tmp_path),
                           test_name="tests/test_a.py::test_x[1]", train=gap.data(200, 0))
    assert not s.error, s.error
    assert user_file.read_bytes() == b"keep me" and s.saved_path != str(user_file)
    assert os.path.dirname(s.saved_path) == str(tmp_path) and "/" not in os.path.basename(s.saved_path)
    assert s.before == report.counts() and sum(s.after.values()) == len(gap.y)
    assert s.after["falsified"] == 0 and s.repaired
    assert s.after_report is not None and s.after == s.after_report.counts()
    text = "\n".join(s.lines())
    assert "before" in text and "falsified" in text and "rounds" in text
    props = dict(s.properties())
    assert props["repair_saved_path"] == s.saved_path and props["repair_before_falsified"] == str(
        s.before["falsified"])
    assert props["repair_status"] == "fixed" and float(props["repair_holdout_robust_after"]) >= float(
        props["repair_holdout_robust_before"])


def test_repair_after_check_does_not_save_a_model_that_is_not_a_fix(tmp_path, gap):
    import robustest

    x, y = torch.cat([gap.x, torch.tensor([[0.45, 0.5]])]), torch.cat([gap.y, torch.tensor([1])])
    report = robustest.check(gap.model(), x, y, eps=0.08)
    s = repair_after_check(gap.model(), x, y, report, check_kwargs={"eps": 0.08}, out_dir=str(tmp_path / "out"),
                           test_name="t", train=gap.data(200, 0), settings=GuidedSettings(rounds=2))
    assert not s.error and s.saved_path is None and not s.repaired
    assert not os.listdir(tmp_path / "out") and "not saved (not passing)" in s.lines()[0]


def test_repair_after_check_refuses_an_unwritable_directory_first(tmp_path, gap):
    import robustest

    (tmp_path / "file").write_text("x")
    report = robustest.check(gap.model(), gap.x, gap.y, eps=0.08)
    s = repair_after_check(gap.model(), gap.x, gap.y, report, check_kwargs={"eps": 0.08},
                           out_dir=str(tmp_path / "file" / "dir"), test_name="t", train=gap.data(20, 0))
    assert "--robust-repair=" in s.error and "writable" in s.error


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


def test_cli_bad_round_settings_name_the_flag(gapnet_files, capsys):
    assert _cli(gapnet_files, "--out", str(gapnet_files / "r.pt"), "--rounds", "0") == 2
    assert "--rounds: GuidedSettings.rounds=0 is not valid" in capsys.readouterr().err
