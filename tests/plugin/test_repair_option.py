"""--robust-repair: a failing marker test with counterexamples hands its model, samples, report and
check options to robustest.repair.pytest_support.repair_after_check; its lines reach the failure text,
its properties the JUnit file, and its re-check becomes a (not enforced) record of its own.

The repair itself is tested in tests/repair/; the first test uses a stand-in that records what the
plugin passes it, the second the real helper end to end."""

from __future__ import annotations

import json

STAND_IN = '''
import json, sys, types
from pathlib import Path

class Summary:
    def __init__(self, after):
        self.after_report = after
    def lines(self):
        return ["repair: 2 counterexamples fixed, model saved"]
    def properties(self):
        return [("repair.status", "repaired")]

def repair_after_check(model, inputs, labels, report, *, check_kwargs, out_dir, test_name, min_pass, require,
                       train, method, settings):
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, "call.json").write_text(json.dumps({
        "test_name": test_name, "check_kwargs": sorted(check_kwargs), "eps": check_kwargs["eps"],
        "n": int(inputs.shape[0]), "falsified": report.counts()["falsified"], "min_pass": min_pass,
        "require": require, "train": None if train is None else int(train[0].shape[0]), "method": method,
        "save_anyway": settings is not None and settings.save_anyway}))
    return Summary(report)

module = types.ModuleType("robustest.repair.pytest_support")
module.repair_after_check = repair_after_check
sys.modules["robustest.repair.pytest_support"] = module
'''


def test_repair_option_wiring(project):
    (project.path / "conftest.py").write_text((project.path / "conftest.py").read_text() + STAND_IN)
    project.test_file('''
import pytest
from robustest import robust

@robust(eps=0.1, attacks="fgsm")
def test_weak(model, data):
    pass

@robust(eps=0.01, attacks="fgsm")
def test_fine(model, data):
    pass
''')
    result = project.run("--robust-repair=repaired", "--robust-junit=out.xml", "--robust-repair-method=one-shot",
                         "--robust-repair-save-anyway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*robustness FAILED*", "*sample 1: falsified*",
                                 "  repair: 2 counterexamples fixed, model saved"])
    call = json.loads((project.path / "repaired" / "call.json").read_text())
    assert call["test_name"] == "test_it.py::test_weak"
    assert call["eps"] == 0.1 and call["n"] == 4 and call["falsified"] == 2
    assert call["min_pass"] == 1.0 and call["require"] == "not_falsified" and call["method"] == "one-shot"
    assert call["train"] is None  # no repair_data fixture, no --robust-repair-data
    assert call["save_anyway"]
    assert {"eps", "norm", "escalate", "timeout", "seed", "attacks"} <= set(call["check_kwargs"])
    props = project.suite_properties(project.path / "out.xml")
    assert props["test_it.py::test_weak"]["repair.status"] == "repaired"
    assert "test_it.py::test_weak repaired" in props  # the re-check's own record
    assert "test_it.py::test_fine repaired" not in props  # passing tests are not repaired


def test_repair_option_with_the_real_repair_and_a_data_file(project):
    """End to end with --robust-repair-data: this project's linear model cannot be made robust on both
    near-boundary samples (they sit on opposite sides within 2 eps), so the honest outcome is a repair
    that does not pass, is not saved, and says so; its re-check is still reported (how good the repair
    is, is tests/repair/'s business)."""
    import torch

    project.test_file('''
from robustest import robust

@robust(eps=0.1, attacks="fgsm")
def test_weak(model, data):
    pass
''')
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 4, generator=g)
    torch.save({"inputs": x, "labels": (x[:, 1] > x[:, 0]).long()}, project.path / "train.pt")
    # a fresh process: pytester's in-process runs restore sys.modules, and a class re-imported by a
    # later run is not the one an isinstance check inside the repair expects
    result = project.run("--robust-repair=repaired", "--robust-junit=out.xml", "--robust-repair-data=train.pt",
                         subprocess=True)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*robustness FAILED*",
                                 "  robustest repair of test_it.py::test_weak: not saved (not passing)",
                                 "*guided repair: not passing*", "*held-out (10 samples)*",
                                 "test_it.py::test_weak repaired * not met"])
    assert not list((project.path / "repaired").glob("*.pt"))
    props = project.suite_properties(project.path / "out.xml")
    assert props["test_it.py::test_weak"]["repair_before_falsified"] == "2"
    assert props["test_it.py::test_weak"]["repair_status"] == "not passing"
    assert props["test_it.py::test_weak"]["repair_saved_path"] == "None"
    cases = project.cases(project.path / "out.xml")
    assert len([n for n in cases if n.startswith("test_weak repaired")]) == 4
