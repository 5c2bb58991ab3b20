"""escalate="bab" from the marker: the branch and bound certifies what CROWN cannot."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BAB_TESTS = f'''
import sys
import pytest
import torch
sys.path.insert(0, {str(EXAMPLES)!r})
from digits import load_model, test_data as digit_samples

import robustest
from robustest import robust
from robustest.schedules import ProofSettings

EPS = 0.07

@pytest.fixture(scope="module")
def mlp():
    return load_model("mlp")

@pytest.fixture(scope="module")
def hard(mlp):
    """The digits CROWN leaves unknown at EPS (neither attacks nor CROWN decide them)."""
    x, y = digit_samples("mlp", 30)
    rep = robustest.check(mlp, x, y, eps=EPS, escalate="crown", timeout=10)
    keep = [s.index for s in rep.samples if s.verdict == "unknown"]
    assert keep
    return x[keep], y[keep]

@robust(eps=EPS, model="mlp", data="hard", escalate="crown", require="certified", timeout=10)
def test_crown(mlp, hard):
    pass

# MILP gets no time, so what is certified is the branch and bound's (about 1 s per sample idle; the budget
# is generous for a loaded CI machine)
@robust(eps=EPS, model="mlp", data="hard", escalate="bab", require="certified", timeout=60,
        provers=ProofSettings(milp_share=0.0))
def test_bab(mlp, hard):
    pass
'''


def test_marker_escalates_to_bab(project):
    project.test_file(BAB_TESTS)
    result = project.run("--robust-junit=out.xml", subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ test_crown _*", "robustness FAILED: 0.0% of * samples pass (require=certified*"])
    cases = project.cases(project.path / "out.xml")
    bab = {k: v for k, v in cases.items() if k.startswith("test_bab")}
    assert bab and all(v[0] == "passed" for v in bab.values())
