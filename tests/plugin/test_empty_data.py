"""A @robust test whose data fixture is empty fails with the reason (it passed "100% of 0 samples")."""

from __future__ import annotations


def test_empty_robust_data_fails_the_test(project):
    project.test_file('''
import torch
from robustest import robust

@robust(eps=0.01, attacks="fgsm", data="empty")
def test_empty(model, empty):
    pass
''')
    (project.path / "conftest.py").write_text((project.path / "conftest.py").read_text() + '''
@pytest.fixture
def empty():
    return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
''')
    result = project.run("-k", "test_empty")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*at least one sample*"])
