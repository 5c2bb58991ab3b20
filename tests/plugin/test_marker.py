"""The @robust marker through pytester: verdicts, failure text, hand-over of model and samples."""

from __future__ import annotations

import pytest

# FGSM alone finds every counterexample of the linear model and keeps these runs fast; the module-level
# marker also exercises merging (closer markers override key by key).
HEADER = '''
import pytest
from robustest import robust
pytestmark = pytest.mark.robust(attacks="fgsm")
'''


def test_marker_fails_with_summary_and_sample_lines(project):
    project.test_file(HEADER + '''
@robust(eps=0.1)
def test_loose(model, data):
    assert not model.training

@pytest.mark.robust(eps=0.01)
def test_tight(model, data):
    pass

@robust(eps=0.1, min_pass=0.5)
def test_half(model, data):
    pass
''')
    result = project.run("--robust-junit=out.xml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*robustness FAILED (not falsified by attacks; 0 proved): 50.0% of 4 samples pass"
        " (require=not_falsified, min_pass=1) at eps=0.1 linf;"
        " certified 0, falsified 2, unknown 2, misclassified 0",
        "  sample 1: falsified: eps=0.1 linf |d|=0.1 label 0 -> 1 by fgsm",
        "  sample 3: falsified: eps=0.1 linf |d|=0.1 label 1 -> 0 by fgsm",
    ])
    assert "Traceback" not in result.stdout.str()  # pytrace=False: the summary is the whole story
    cases = project.cases(project.path / "out.xml")
    assert cases["test_loose sample 0001"] == (
        "failure", "falsified: eps=0.1 linf |d|=0.1 label 0 -> 1 by fgsm")
    assert cases["test_loose sample 0000"][0] == "skipped"
    assert {v[0] for k, v in cases.items() if k.startswith("test_tight")} == {"skipped"}


def test_body_failure_comes_first_and_skips_the_check(project):
    project.test_file(HEADER + '''
@robust(eps=0.1)
def test_body(model, data):
    assert False, "body failed"
''')
    result = project.run("--robust-junit=out.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: body failed*"])
    assert "robustness FAILED" not in result.stdout.str()
    assert project.cases(project.path / "out.xml") == {}


def test_parametrized_eps_from_the_test_argument_and_from_param_marks(project):
    project.test_file(HEADER + '''
@pytest.mark.parametrize("eps", [0.01, 0.1])
@robust()
def test_eps_argument(model, data, eps):
    pass

@pytest.mark.parametrize("norm", ["linf", pytest.param("l2", marks=robust(eps=0.5, norm="l2"))])
@robust(eps=0.01)
def test_param_marks(model, data, norm):
    pass
''')
    result = project.run("--robust-junit=out.xml", "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*test_eps_argument?0.01? PASSED*", "*test_eps_argument?0.1? FAILED*",
                                 "*test_param_marks?linf? PASSED*", "*test_param_marks?l2? FAILED*"])
    # l2 radius 0.5 moves x0 - x1 by 0.5 * sqrt(2): every sample but the first (d = 0.8) flips
    result.stdout.fnmatch_lines(["*25.0% of 4 samples pass*at eps=0.5 l2; certified 0, falsified 3*"])
    props = project.suite_properties(project.path / "out.xml")
    assert props["test_it.py::test_param_marks[l2]"]["threat"] == "eps=0.5 l2"
    assert props["test_it.py::test_param_marks[linf]"]["threat"] == "eps=0.01 linf"
    assert props["test_it.py::test_eps_argument[0.1]"]["threat"] == "eps=0.1 linf"


def test_class_marker_gives_defaults_and_named_fixtures(project):
    project.test_file(HEADER + '''
import torch

@pytest.fixture
def samples(data):
    return {"inputs": data[0], "labels": data[1]}

@pytest.fixture
def other():
    return (torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))

@robust(min_pass=0.5, require="not_falsified")
class TestNamed:
    @robust(eps=0.1, model="net", data="samples")
    def test_named(self, net, samples, other):
        pass

    @robust(eps=0.1, min_pass=1.0)
    def test_dict_found_by_shape(self, model, samples):
        pass
''')
    result = project.run("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_named PASSED*", "*test_dict_found_by_shape FAILED*"])


@pytest.mark.parametrize("decorator, message", [
    ("@pytest.mark.robust(esp=0.1)", "unknown argument 'esp': valid arguments are eps, norm*"),
    ("@pytest.mark.robust(eps=-1)", "eps=-1 is not valid: expected a finite number >= 0. Fix: *"),
    ("@pytest.mark.robust(eps=0.1, norm='l3')", "norm='l3' is not valid*"),
    ("@pytest.mark.robust(eps=0.1, require='all')", "require='all' is not valid*"),
    ("@pytest.mark.robust(eps=0.1, min_pass=1.5)", "min_pass=1.5 is not valid: expected a fraction*"),
    ("@pytest.mark.robust(0.1, 0.2)", "*at most one positional argument*"),
    ("@pytest.mark.robust(eps=0.1, min_radius=0.2)", "eps=0.1 is not valid: expected no eps together with*"),
    ("@pytest.mark.robust(min_radius=0.2, solver='highs')", "unknown argument 'solver'*"),
])
def test_marker_misuse_is_a_usage_error_at_setup(project, decorator, message):
    project.test_file(HEADER + f'''
{decorator}
def test_bad(model, data):
    pass
''')
    result = project.run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*UsageError: @robust on test_it.py::test_bad: {message}"])


def test_robust_decorator_checks_its_arguments_at_import(project):
    project.test_file(HEADER + '''
@robust(eps=0.1, min_pass=2)
def test_bad(model, data):
    pass
''')
    result = project.run()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*UsageError: @robust(...): min_pass=2 is not valid*"])


@pytest.mark.parametrize("signature, marker, message", [
    ("data", "eps=0.1", "*does not request the model fixture 'model'*Fix: add a 'model' argument or name*"),
    ("model", "eps=0.1", "*no argument of the test looks like samples*Fix: name the samples' fixture*"),
    ("model, data, twin", "eps=0.1", "*several arguments of the test (data, twin) look like samples*"),
    ("model, data", "eps=0.1, data='missing'", "*does not request the data fixture 'missing'*"),
    ("model, data", "", "*no eps. Fix: pass @robust(eps=0.05) or give the test an 'eps' argument*"),
])
def test_handover_errors_say_how_to_name_things(project, signature, marker, message):
    project.test_file(HEADER + f'''
@pytest.fixture
def twin(data):
    return data

@robust({marker})
def test_handover({signature}):
    pass
''')
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])


def test_xfail_and_strict_markers_work(project):
    project.test_file(HEADER + '''
@pytest.mark.xfail(reason="known weak", strict=True)
@robust(eps=0.1)
def test_known_weak(model, data):
    pass
''')
    result = project.run("--strict-markers")
    result.assert_outcomes(xfailed=1)


def test_loading_the_plugin_imports_no_torch(pytester):
    pytester.makepyfile(test_plain='''
import sys

def test_no_torch_yet():
    assert "robustest.plugin" in sys.modules
    assert "torch" not in sys.modules
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--robust-junit=out.xml")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "out.xml").exists()  # an empty report is still written


def test_min_radius_judges_robustest_radius(project):
    # linf distances to the decision boundary are |x0 - x1| / 2: 0.4, 0.05, 0.3, 0.02
    project.test_file('''
from robustest import robust

@robust(min_radius=0.1, min_pass=0.5)
def test_half(model, data):
    pass

@robust(min_radius=0.01)
def test_all(model, data):
    pass

@robust(min_radius=0.1)
def test_fails(model, data):
    pass
''')
    result = project.run("--robust-junit=out.xml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*robustness FAILED (not falsified by attacks; 0 proved): 50.0% of 4 samples pass*"
                                 "at eps=0.1 linf*falsified 2*",
                                 "  sample 1: falsified: eps=0.1 linf |d|=0.05 label 0 -> 1 by *",
                                 "  sample 3: falsified: eps=0.1 linf |d|=0.02 label 1 -> 0 by *"])
    props = project.suite_properties(project.path / "out.xml")
    assert props["test_it.py::test_all"]["escalate"] == "radius/none"


def test_expected_failures_are_skipped_not_failed_in_the_per_sample_junit(project):
    project.test_file(HEADER + '''
@pytest.mark.xfail(reason="known weak")
@robust(eps=0.1)
def test_known_weak(model, data):
    pass
''')
    result = project.run("--robust-junit=out.xml")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["test_it.py::test_known_weak * xfailed", "total * 1 xfailed"])
    cases = project.cases(project.path / "out.xml")
    assert cases["test_known_weak sample 0001"] == (
        "skipped", "falsified, xfail (known weak): eps=0.1 linf |d|=0.1 label 0 -> 1 by fgsm")
    assert not any(outcome == "failure" for outcome, _ in cases.values())
