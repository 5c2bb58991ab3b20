"""``pytest --robust-repair=DIR`` end to end with the real repair: a failing @robust test's model is
repaired in guided rounds (training data from the ``repair_data`` fixture), saved under DIR, loads into
the user's class and is re-checked, and the before/after table reaches the terminal.

The model is the gap problem of conftest.py: a linear boundary at x0 = 0.6 between classes at x0 <= 0.45
and x0 >= 0.65, so at eps = 0.08 the class-1 samples at 0.65 and 0.66 are falsified and moving the
boundary into the gap fixes them."""

from __future__ import annotations

import torch

CONFTEST = '''
import pytest
import torch

torch.set_num_threads(1)

@pytest.fixture
def model():
    m = torch.nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[-10.0, 0.0], [10.0, 0.0]]))
        m.bias.copy_(torch.tensor([6.0, -6.0]))
    return torch.nn.Sequential(m).eval()

@pytest.fixture
def data():
    x = torch.tensor([[0.2, 0.5], [0.65, 0.3], [0.3, 0.1], [0.66, 0.8], [0.4, 0.4], [0.7, 0.5]])
    return x, torch.tensor([0, 1, 0, 1, 0, 1])

@pytest.fixture
def repair_data():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x0 = torch.where(y == 0, 0.45 * torch.rand(200, generator=g), 0.65 + 0.35 * torch.rand(200, generator=g))
    return torch.stack([x0, torch.rand(200, generator=g)], 1), y
'''

TEST = '''
from robustest import robust

@robust(eps=0.08, attacks="pgd")
def test_weak(model, data):
    pass
'''


def test_failing_marker_test_is_repaired_saved_and_rechecked(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_it=TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "--robust-repair=repaired")
    result.assert_outcomes(failed=1)  # the test itself still fails: the user's model is not robust
    result.stdout.fnmatch_lines(["*robustest repair of test_it.py::test_weak: saved *repaired/test_it.py_test_weak-*",
                                 "*verdict*before*after*", "*falsified*2*0*",
                                 "*guided repair: fixed (the test passes)*", "*held-out (50 samples): clean 100.0%*",
                                 "test_it.py::test_weak repaired * passed*"])
    (saved,) = list((pytester.path / "repaired").glob("*.pt"))
    state = torch.load(saved, weights_only=True)
    user_model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    user_model.load_state_dict(state)  # loads into the user's architecture
    assert not torch.equal(state["0.bias"], torch.tensor([6.0, -6.0]))


def test_an_unwritable_repair_directory_is_a_usage_error_before_any_test_runs(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_it=TEST)
    (pytester.path / "blocker").write_text("a file, not a directory")
    result = pytester.runpytest("-p", "no:cacheprovider", "--robust-repair=blocker/sub")
    assert result.ret == 4  # pytest's usage error
    result.stderr.fnmatch_lines(["*--robust-repair=*is not valid*point --robust-repair at a writable directory*"])
