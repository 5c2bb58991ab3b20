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


def _serial(project):
    """The per-sample JUnit cases of TESTS run serially (cache off: every verdict computed)."""
    project.test_file(TESTS)
    serial = project.run("--robust-junit=serial.xml", "--robust-seed=3", "--robust-cache=off")
    serial.assert_outcomes(passed=6)
    return project.cases(project.path / "serial.xml")


def test_xdist_gives_the_serial_verdicts(project):
    a = _serial(project)
    parallel = project.run("--robust-junit=xdist.xml", "--robust-seed=3", "-n", "2", "--robust-html=x.html",
                           "--robust-cache=off", "-v")
    parallel.assert_outcomes(passed=6)
    assert "robustest check:" not in parallel.stdout.str()  # workers show no progress, even with -v
    parallel.stdout.fnmatch_lines(["*2 workers*"])
    b = project.cases(project.path / "xdist.xml")
    assert len(a) == 6 * 12
    assert a == b
    sa, sb = project.suite_properties(project.path / "serial.xml"), project.suite_properties(
        project.path / "xdist.xml")
    assert {k: v["seed"] for k, v in sa.items()} == {k: v["seed"] for k, v in sb.items()}
    page = (project.path / "x.html").read_text()  # the HTML report also gets the workers' records
    assert all(f"test_eps[{eps}]" in page for eps in (0.02, 0.05, 0.1, 0.2))
    # the controller prints the summary table with the workers' records
    parallel.stdout.fnmatch_lines(["*robustest summary*", "total * 4 passed, 2 not met"])


def _verdicts(cases):
    """{testcase: (outcome, verdict)}: the figures behind a message may differ in float32's last digit
    between batch sizes (a matrix product's rounding), the verdicts may not."""
    return {k: (o, m.split(":")[0] if m else None) for k, (o, m) in cases.items()}


def test_shards_spread_one_test_over_the_workers_with_the_serial_verdicts(project):
    a = _serial(project)
    sharded = project.run("--robust-junit=shards.xml", "--robust-seed=3", "-n", "2", "--robust-shards=auto",
                          "--robust-cache=off")
    sharded.assert_outcomes(passed=4 * 2 + 2)  # each marker test runs as one item per worker
    b = project.cases(project.path / "shards.xml")
    assert len(b) == 6 * 12  # one set of per-sample testcases per test, not per shard
    assert _verdicts(a) == _verdicts(b)
    sharded.stdout.fnmatch_lines(["total * 4 passed, 2 not met"])  # one summary row per test


LAZY = '''
import sys

import pytest
from robustest import robust

@pytest.fixture
def mlp():
    import torch  # in the fixture: only the workers, which run tests, import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()

@pytest.fixture
def points(mlp):
    import torch

    x = torch.rand(6, 4, generator=torch.Generator().manual_seed(1))
    return x, mlp(x).argmax(1).detach()

@robust(eps=0.05, model="mlp", min_pass=0.0, escalate="crown")
def test_lazy(mlp, points):
    pass

def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):  # the controller, after merging the shards and writing the files
        with open("controller-modules.txt", "w") as f:
            f.write(" ".join(m for m in ("torch", "numpy") if m in sys.modules))
'''


def test_the_controller_merges_shards_without_importing_torch(pytester):
    """The controller runs no test: with a conftest that imports torch in its fixtures, it merges the
    shards' records and writes the per-sample JUnit without torch (whose import costs each process
    more than a second) and without numpy (the HTML report's), so the workers start sooner and the
    merge at the end is short."""
    pytester.makeconftest(LAZY)
    pytester.makepyfile(test_lazy="from conftest import test_lazy  # noqa: F401\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--robust-shards=2",
                                           "--robust-junit=out.xml", "--robust-cache=off")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "out.xml").read_text().count("<testcase") == 6
    assert (pytester.path / "controller-modules.txt").read_text() == ""
