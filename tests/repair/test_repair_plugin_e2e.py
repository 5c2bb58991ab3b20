"""``pytest --robust-repair=DIR`` end to end with the real repair: a failing @robust test's model is
repaired, saved under DIR and re-checked, and the before/after table reaches the terminal.

The model has logits (x0 - x1, x1 - x0): at eps=0.1 samples 1 and 3 (|x0 - x1| <= 0.2) are falsified."""

from __future__ import annotations

import torch

CONFTEST = '''
import pytest
import torch

torch.set_num_threads(1)

@pytest.fixture
def model():
    m = torch.nn.Linear(4, 2)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]]))
        m.bias.zero_()
    return torch.nn.Sequential(m).eval()

@pytest.fixture
def data():
    x = torch.tensor([[0.9, 0.1, 0.5, 0.5], [0.55, 0.45, 0.5, 0.5],
                      [0.2, 0.8, 0.5, 0.5], [0.48, 0.52, 0.5, 0.5]])
    return x, torch.tensor([0, 0, 1, 1])
'''

TEST = '''
from robustest import robust

@robust(eps=0.1, attacks="pgd")
def test_weak(model, data):
    pass
'''


def test_failing_marker_test_is_repaired_saved_and_rechecked(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_it=TEST)
    (pytester.path / "repaired").mkdir()
    result = pytester.runpytest("-p", "no:cacheprovider", "--robust-repair=repaired")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*robustest repair of test_it.py::test_weak: saved *repaired/test_it.py_test_weak-*.pt",
                                 "*verdict*before*after*", "*falsified*2*"])
    (saved,) = list((pytester.path / "repaired").glob("*.pt"))
    assert saved.name.startswith("test_it.py_test_weak-")
    state = torch.load(saved, weights_only=True)
    assert set(state) == {"0.weight", "0.bias"}
