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

def repair_after_check(model, inputs, labels, report, *, check_kwargs, out_dir, test_name):
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    Path(out_dir, "call.json").write_text(json.dumps({
        "test_name": test_name, "check_kwargs": sorted(check_kwargs), "eps": check_kwargs["eps"],
        "n": int(inputs.shape[0]), "falsified": report.counts()["falsified"]}))
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
    result = project.run("--robust-repair=repaired", "--robust-junit=out.xml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*robustness FAILED*", "*sample 1: falsified*",
                                 "  repair: 2 counterexamples fixed, model saved"])
    call = json.loads((project.path / "repaired" / "call.json").read_text())
    assert call["test_name"] == "test_it.py::test_weak"
    assert call["eps"] == 0.1 and call["n"] == 4 and call["falsified"] == 2
    assert {"eps", "norm", "escalate", "timeout", "seed", "attacks"} <= set(call["check_kwargs"])
    props = project.suite_properties(project.path / "out.xml")
    assert props["test_it.py::test_weak"]["repair.status"] == "repaired"
    assert "test_it.py::test_weak repaired" in props  # the re-check's own record
    assert "test_it.py::test_fine repaired" not in props  # passing tests are not repaired


def test_repair_option_with_the_real_repair(project):
    """End to end: the repaired model is saved, loads into the user's model, and its re-check is
    reported (how good the repair is, is tests/repair/'s business)."""
    import torch

    project.test_file('''
from robustest import robust

@robust(eps=0.1, attacks="fgsm")
def test_weak(model, data):
    pass
''')
    # a fresh process: pytester's in-process runs restore sys.modules, and a class re-imported by a
    # later run is not the one an isinstance check inside the repair expects
    result = project.run("--robust-repair=repaired", "--robust-junit=out.xml", subprocess=True)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*robustness FAILED*",
                                 "  robustest repair of test_it.py::test_weak: saved *",
                                 "test_it.py::test_weak repaired * not met"])
    saved = list((project.path / "repaired").glob("*.pt"))
    assert len(saved) == 1
    state = torch.load(saved[0], weights_only=True)
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    net.load_state_dict(state)  # the user's architecture, repaired weights
    props = project.suite_properties(project.path / "out.xml")
    assert props["test_it.py::test_weak"]["repair_before_falsified"] == "2"
    assert props["test_it.py::test_weak"]["repair_saved_path"] == str(saved[0])
    cases = project.cases(project.path / "out.xml")
    assert len([n for n in cases if n.startswith("test_weak repaired")]) == 4
