"""Inputs of a pytest run refused up front: empty @robust data (it passed "100% of 0 samples") and
report paths that cannot be written (the error came after every test had run)."""

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


def test_unwritable_report_paths_are_refused_before_any_test_runs(project):
    project.test_file('''
def test_never_runs():
    raise AssertionError("ran")
''')
    (project.path / "out.xml").mkdir()
    (project.path / "afile").write_text("x")
    for option in ("--robust-junit=out.xml", "--robust-html=afile/report.html"):
        result = project.run(option)
        assert result.ret == 4  # pytest's usage error: nothing ran
        assert "AssertionError" not in result.stdout.str()
        assert option.split("=")[0] in result.stderr.str() + result.stdout.str()
