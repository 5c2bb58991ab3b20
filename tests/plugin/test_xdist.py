"""pytest-xdist: the controller alone writes the JUnit file, from records the workers send, and the
verdicts (and the seeds behind them) are those of a serial run."""

from __future__ import annotations

import pytest

pytest.importorskip("xdist")

TESTS = '''
import pytest
import torch
from robustest import robust

@pytest.fixture
def mlp():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    return net.eval()

@pytest.fixture
def points(mlp):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 4, generator=g)
    return x, mlp(x).argmax(1).detach()

# random-start PGD with few steps: which borderline samples break depends on the seed
@pytest.mark.parametrize("eps", [0.02, 0.05, 0.1, 0.2])
@robust(model="mlp", min_pass=0.0, attacks=[("pgd", {"steps": 2})])
def test_eps(mlp, points, eps):
    pass

@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fixture(robustness, mlp, points, norm):
    robustness.check(mlp, *points, eps=0.1, norm=norm, attacks=[("pgd", {"steps": 2})])
'''


def test_xdist_gives_the_serial_verdicts(project):
    project.test_file(TESTS)
    serial = project.run("--robust-junit=serial.xml", "--robust-seed=3")
    serial.assert_outcomes(passed=6)
    parallel = project.run("--robust-junit=xdist.xml", "--robust-seed=3", "-n", "2", "--robust-html=x.html")
    parallel.assert_outcomes(passed=6)
    parallel.stdout.fnmatch_lines(["*2 workers*"])
    a, b = project.cases(project.path / "serial.xml"), project.cases(project.path / "xdist.xml")
    assert len(a) == 6 * 12
    assert a == b
    sa, sb = project.suite_properties(project.path / "serial.xml"), project.suite_properties(
        project.path / "xdist.xml")
    assert {k: v["seed"] for k, v in sa.items()} == {k: v["seed"] for k, v in sb.items()}
    page = (project.path / "x.html").read_text()  # the HTML report also gets the workers' records
    assert all(f"test_eps[{eps}]" in page for eps in (0.02, 0.05, 0.1, 0.2))
    # the controller prints the summary table with the workers' records
    parallel.stdout.fnmatch_lines(["*robustest summary*", "total * 4 passed, 2 not met"])
