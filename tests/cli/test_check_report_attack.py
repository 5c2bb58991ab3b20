"""`robustest check`, `report` and `attack` end to end (in-process), on the digits MLP."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from robustest.cli import main

MLP = ["--model-class", "digits:mlp"]


def test_check_gates_on_the_criterion_and_writes_every_output(digits_files, tmp_path, capsys):
    model, data = digits_files
    out = {k: tmp_path / f"r.{k}" for k in ("html", "json", "xml")}
    args = ["check", str(model), str(data), *MLP, "--eps", "0.005", "--eps", "0.3", "--timeout", "2",
            "--html", str(out["html"]), "--json", str(out["json"]), "--junit", str(out["xml"])]
    status = main(args)
    text = capsys.readouterr().out
    assert status == 1  # at eps=0.3 the MLP is broken on most samples
    assert "mlp.pt[eps=0.005]" in text and "mlp.pt[eps=0.3]: robustness FAILED" in text
    doc = json.loads(out["json"].read_text())
    assert [t["record"]["name"] for t in doc["tests"]] == ["mlp.pt[eps=0.005]", "mlp.pt[eps=0.3]"]
    falsified = [s["index"] for s in doc["tests"][1]["record"]["samples"] if s["verdict"] == "falsified"]
    assert falsified and sorted(map(int, doc["tests"][1]["images"])) == falsified  # 8x8 images of each
    cases = ET.parse(out["xml"]).getroot().findall(".//testcase")
    assert len(cases) == 16
    assert {c.get("classname") for c in cases} == {"robustest.mlp_pt"}  # CI renderers group by it
    page = out["html"].read_text()
    assert len(re.findall(r'<tr data-verdict="', page)) == 16
    assert "Robust accuracy vs eps" in page and page.count("data:image/png;base64,") == 3 * len(falsified)
    # the same criterion met with --min-pass 0
    assert main(args[:-6] + ["--min-pass", "0"]) == 0


def test_report_rebuilds_html_and_junit_from_json(digits_files, tmp_path, capsys):
    model, data = digits_files
    results = tmp_path / "r.json"
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.01", "--json", str(results)]) == 0
    html, xml = tmp_path / "out.html", tmp_path / "out.xml"
    assert main(["report", str(results), "--html", str(html), "--junit", str(xml)]) == 0
    assert len(re.findall(r'<tr data-verdict="', html.read_text())) == 8
    assert len(ET.parse(xml).getroot().findall(".//testcase")) == 8


def test_report_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["report", str(bad), "--html", str(tmp_path / "x.html")]) == 2
    assert "line 1" in capsys.readouterr().err
    bad.write_text(json.dumps({"tests": []}))
    assert main(["report", str(bad), "--html", str(tmp_path / "x.html")]) == 2
    assert "robustest-results/1" in capsys.readouterr().err
    assert main(["report", str(bad)]) == 2
    assert "--html PATH and/or --junit PATH" in capsys.readouterr().err


def test_check_bad_data_keys_and_missing_class(digits_files, tmp_path, capsys):
    model, _ = digits_files
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((2, 64), np.float32), y=np.zeros(2, np.int64))
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.1"]) == 2
    assert "found ['x', 'y']" in capsys.readouterr().err
    assert main(["check", str(model), str(data), *MLP, "--eps", "0.1", "--inputs-key", "x",
                 "--labels-key", "y", "--escalate", "attack"]) in (0, 1)
    capsys.readouterr()
    assert main(["check", str(model), str(data), "--eps", "0.1"]) == 2
    assert "--model-class" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check", str(model), str(data), *MLP, "--eps", "0.1", "--min-pass", "1.5"])


def test_attack_saves_rechecked_adversarial_inputs(digits_files, tmp_path, capsys):
    from digits import load_model

    import torch

    model, data = digits_files
    out = tmp_path / "adv.npz"
    assert main(["attack", str(model), str(data), *MLP, "--eps", "0.3", "--method", "pgd", "--steps", "20",
                 "--out", str(out)]) == 0
    assert "samples broken" in capsys.readouterr().out
    saved = np.load(out)
    clean = np.load(data)["inputs"]
    ok = saved["success"]
    assert ok.any()
    x_adv = torch.from_numpy(saved["inputs"])
    pred = load_model("mlp")(x_adv).argmax(1).numpy()
    assert (pred[ok] != saved["labels"][ok]).all()  # every success really changes the label
    assert np.abs(saved["inputs"] - clean).max() <= 0.3 + 1e-6
    assert (saved["inputs"][~ok] == clean[~ok]).all()
