"""`robustest check --escalate bab`: every sample decided within the budget; a bad rung refused at once."""

from __future__ import annotations

import json

import pytest


def test_cli_check_escalates_to_bab(digits_files, tmp_path, capsys):
    from robustest.cli import main

    model, data = digits_files
    out = tmp_path / "r.json"
    status = main(["check", str(model), str(data), "--model-class", "digits:mlp", "--eps", "0.07",
                   "--escalate", "bab", "--timeout", "10", "--json", str(out)])
    assert status in (0, 1)
    doc = json.loads(out.read_text())
    samples = doc["tests"][0]["record"]["samples"]
    assert all(s["verdict"] != "unknown" for s in samples), samples  # every sample decided within 10 s
    with pytest.raises(SystemExit) as exc:
        main(["check", str(model), str(data), "--model-class", "digits:mlp", "--eps", "0.07", "--escalate", "bogus"])
    assert exc.value.code == 2
    assert "'bogus' is not valid: expected one of 'attack', 'ibp', 'crown', 'lp', 'milp', 'bab'" in \
        capsys.readouterr().err
