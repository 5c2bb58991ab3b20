"""The robustness fixture, the --robust-* options, config files and pytest's own --junitxml."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from robustest.plugin.hooks import derive_seed

HEADER = '''
import pytest
from robustest import robust
pytestmark = pytest.mark.robust(attacks="fgsm")
'''

FIXTURE_TESTS = '''
def test_imperative(robustness, model, data):
    x, y = data
    report = robustness.check(model, x, y, eps=0.1, attacks="fgsm")
    assert report.verdicts == ["unknown", "falsified", "unknown", "falsified"]
    robustness.require(model, x, y, eps=0.1, min_pass=0.5, name="half", attacks="fgsm")

def test_require_fails(robustness, model, data):
    robustness.require(model, *data, eps=0.1, require="certified", attacks="fgsm")
    raise AssertionError("not reached")
'''


def test_fixture_checks_records_and_requires(project):
    project.test_file(FIXTURE_TESTS)
    result = project.run("--robust-junit=out.xml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*robustness FAILED: 0.0% of 4 samples pass (require=certified, min_pass=1) at eps=0.1 linf*",
        "  sample 0: unknown: eps=0.1 linf label 0 unknown after *",
    ])
    assert "not reached" not in result.stdout.str()
    cases = project.cases(project.path / "out.xml")
    assert sorted(cases) == sorted([f"test_imperative sample {i:04d}" for i in range(4)]
                                   + [f"test_imperative half sample {i:04d}" for i in range(4)]
                                   + [f"test_require_fails sample {i:04d}" for i in range(4)])
    # the terminal table: check() records without enforcing, require() enforces
    result.stdout.fnmatch_lines(["*robustest summary*", "test * certified * falsified * unknown * miscls*",
                                 "test_it.py::test_imperative * 0 * 2 * 2 * 0 * not met",
                                 "test_it.py::test_imperative half * 0 * 2 * 2 * 0 * passed",
                                 "test_it.py::test_require_fails * 0 * 2 * 2 * 0 * FAILED",
                                 "total * 0 * 6 * 6 * 0 * 1 passed, 1 FAILED, 1 not met"])


def test_seed_is_derived_from_the_run_seed_and_the_test_id(project):
    project.test_file(HEADER + '''
@robust(eps=0.01)
def test_derived(model, data):
    pass

@robust(eps=0.01, seed=11)
def test_fixed(model, data):
    pass
''')
    project.run("--robust-junit=out.xml", "--robust-seed=5").assert_outcomes(passed=2)
    props = project.suite_properties(project.path / "out.xml")
    assert props["test_it.py::test_derived"]["seed"] == str(derive_seed(5, "test_it.py::test_derived"))
    assert props["test_it.py::test_fixed"]["seed"] == "11"
    assert derive_seed(5, "a") != derive_seed(6, "a") and derive_seed(5, "a") != derive_seed(5, "b")


def test_unknown_and_include_options(project):
    project.test_file(HEADER + '''
@robust(eps=0.1, min_pass=0.5)
def test_half(model, data):
    pass
''')
    project.run("--robust-junit=all.xml", "--robust-unknown=failure").assert_outcomes(passed=1)
    cases = project.cases(project.path / "all.xml")
    # unknown=failure is asked for: the unknowns (0, 2) are failures; the falsified (1, 3) are within the
    # min_pass the test met, so skipped (pytest passed the test)
    assert [cases[f"test_half sample {i:04d}"][0] for i in range(4)] == ["failure", "skipped"] * 2
    project.run("--robust-junit=few.xml", "--robust-junit-include=failures").assert_outcomes(passed=1)
    assert project.cases(project.path / "few.xml") == {}  # no failure: unknowns skipped, falsified tolerated
    project.run("--robust-junit=none.xml", "--robust-junit-include=none").assert_outcomes(passed=1)
    assert project.cases(project.path / "none.xml") == {"test_half": ("passed", None)}
    project.run("--robust-junit=fail.xml", "--robust-unknown=failure",
                "--robust-junit-include=failures").assert_outcomes(passed=1)
    assert sorted(project.cases(project.path / "fail.xml")) == [  # unknown counted as failures are kept
        "test_half sample 0000", "test_half sample 0002"]


def test_escalate_and_timeout_reach_robustest_check(project):
    project.test_file(HEADER + '''
@robust(eps=0.1)
def test_it(model, data):
    pass
''')
    result = project.run("--robust-escalate=bogus")
    assert result.ret == 4  # refused at start-up, not in every test
    result.stderr.fnmatch_lines(["*robustest: escalate='bogus' in the command line is not valid: expected one "
                                 "of 'attack', 'ibp', 'crown', 'lp', 'milp', 'bab'*"])
    result = project.run("--robust-timeout=0")
    assert result.ret == 4  # a usage error: the run does not start
    result.stderr.fnmatch_lines(
        ["*timeout=0.0 in the command line is not valid: expected a number of seconds > 0*"])


def test_config_files_profiles_and_precedence(project):
    project.test_file(HEADER + '''
@robust(eps=0.01)
def test_a(model, data):
    pass

@robust(eps=0.01, escalate="attack")
def test_b(model, data):
    pass
''')
    project.pytester.makepyprojecttoml('''
[tool.robustest]
seed = 3
escalate = "ibp"
junit = "file.xml"
[tool.robustest.profiles.mine]
seed = 4
''')
    # the file's escalate reaches test_a; test_b's marker wins
    result = project.run()
    result.assert_outcomes(passed=2)
    props = project.suite_properties(project.path / "file.xml")
    assert props["test_it.py::test_a"]["escalate"] == "ibp"
    assert props["test_it.py::test_b"]["escalate"] == "attack"
    assert props["test_it.py::test_b"]["seed"] == str(derive_seed(3, "test_it.py::test_b"))
    # profile beats file, command line beats profile
    project.run("--robust-profile=mine", "--robust-junit=cli.xml")
    assert project.suite_properties(project.path / "cli.xml")["test_it.py::test_b"]["seed"] == str(
        derive_seed(4, "test_it.py::test_b"))
    project.run("--robust-profile=mine", "--robust-junit=cli.xml", "--robust-seed=9")
    assert project.suite_properties(project.path / "cli.xml")["test_it.py::test_b"]["seed"] == str(
        derive_seed(9, "test_it.py::test_b"))


def test_yaml_config_and_config_errors(project, monkeypatch):
    project.test_file(HEADER + '''
@robust(eps=0.01)
def test_a(model, data):
    pass
''')
    (project.path / "robustest.yaml").write_text("seed: 12\njunit: y.xml\n")
    project.run().assert_outcomes(passed=1)
    assert project.suite_properties(project.path / "y.xml")["test_it.py::test_a"]["seed"] == str(
        derive_seed(12, "test_it.py::test_a"))
    # a path in the file is relative to the file, even when pytest runs from a subdirectory
    sub = project.path / "sub"
    sub.mkdir()
    (project.path / "y.xml").unlink()
    monkeypatch.chdir(sub)
    project.run(str(project.path)).assert_outcomes(passed=1)
    assert (project.path / "y.xml").exists() and not (sub / "y.xml").exists()
    monkeypatch.chdir(project.path)
    (project.path / "robustest.yaml").write_text("sed: 12\n")
    result = project.run()
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*robustest: unknown option 'sed' in *robustest.yaml: valid options are seed,*"])
    (project.path / "robustest.yaml").write_text("seed: 12\n")
    result = project.run("--robust-profile=nope")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*unknown profile 'nope' (from the command line): valid profiles are ci, nightly*"])


def test_pytest_junitxml_keeps_one_testcase_per_test_with_the_summary(project):
    project.test_file(HEADER + '''
@robust(eps=0.1)
def test_loose(model, data):
    pass
''')
    project.run("--junitxml=pytest.xml").assert_outcomes(failed=1)
    cases = list(ET.parse(project.path / "pytest.xml").getroot().iter("testcase"))
    assert len(cases) == 1
    assert cases[0].find("failure").get("message").startswith(
        "Failed: robustness FAILED (not falsified by attacks; 0 proved): 50.0% of 4 samples")


def test_unwritable_junit_path_fails_the_run_with_a_clear_message(project):
    project.test_file(HEADER + '''
@robust(eps=0.01)
def test_a(model, data):
    pass
''')
    (project.path / "afile").write_text("not a directory")
    result = project.run("--robust-junit=afile/out.xml")
    assert result.ret == 4  # refused before any test runs (robustest.outputs.check_outputs)
    result.stderr.fnmatch_lines([("*robustest: --robust-junit=* is not valid: expected a path in a folder (*afile "
                                  "is a file, not a folder). Fix: pass --robust-junit a path whose parent is a folder")])


def test_escalate_to_a_certifier_certifies_and_require_certified(project):
    # IBP on the linear model proves samples 0 and 2 (margin lower bound 2|d| - 4 eps = 1.2 > 0 at eps=0.1)
    project.test_file(HEADER + '''
@robust(eps=0.1, require="certified", min_pass=0.5)
def test_half_certified(model, data):
    pass

@robust(eps=0.1, require="certified", min_pass=0.75)
def test_too_strict(model, data):
    pass
''')
    # a fresh process: pytester's in-process runs restore sys.modules after each run, which drops the
    # ladder's rung registrations made by an earlier run
    result = project.run("--robust-junit=out.xml", "--robust-escalate=ibp", subprocess=True)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*robustness FAILED: 50.0% of 4 samples pass (require=certified, "
                                 "min_pass=0.75)*certified 2, falsified 2, unknown 0*"])
    cases = project.cases(project.path / "out.xml")
    # the test met min_pass=0.5: its falsified samples are tolerated (skipped), as pytest passed it
    assert [cases[f"test_half_certified sample {i:04d}"][0] for i in range(4)] == [
        "passed", "skipped", "passed", "skipped"]
    assert [cases[f"test_too_strict sample {i:04d}"][0] for i in range(4)] == [
        "passed", "failure", "passed", "failure"]


def test_suppress_health_check_from_the_config_reaches_the_check(project):
    project.test_file('''
import torch
from robustest import robust

@robust(eps=0.01, attacks="fgsm")
def test_softmax(model, data):
    pass

def test_softmax_fixture(robustness, model, data):
    robustness.check(model, *data, eps=0.01, attacks="fgsm")
''')
    conftest = project.path / "conftest.py"
    softmax = "return torch.nn.Sequential(m, torch.nn.Softmax(dim=1)).eval()"
    conftest.write_text(conftest.read_text().replace("return torch.nn.Sequential(m).eval()", softmax))
    result = project.run("-W", "always")
    result.assert_outcomes(passed=2)
    assert result.stdout.str().count("HealthCheckWarning") >= 2  # probabilities instead of logits
    (project.path / "robustest.yaml").write_text("suppress_health_check: [probabilities]\n")
    result = project.run("-W", "always")
    result.assert_outcomes(passed=2)
    assert "HealthCheckWarning" not in result.stdout.str()


def test_html_report(project):
    project.test_file(HEADER + '''
@robust(eps=0.1, min_pass=0.5)
def test_half(model, data):
    pass
''')
    project.run("--robust-html=report.html").assert_outcomes(passed=1)
    page = (project.path / "report.html").read_text()
    assert "test_half" in page and page.count("falsified") >= 2
    (project.path / "afile").write_text("x")
    result = project.run("--robust-html=afile/report.html", "--robust-junit=ok.xml")
    assert result.ret == 4  # refused up front: no test ran, so no report is written either
    result.stderr.fnmatch_lines(["*robustest: --robust-html=* is not valid*afile is a file*"])
    assert not (project.path / "ok.xml").exists()


def test_junit_file_gets_the_usual_file_mode(project):
    import os

    project.test_file(HEADER + '''
@robust(eps=0.01)
def test_a(model, data):
    pass
''')
    project.run("--robust-junit=out.xml").assert_outcomes(passed=1)
    mask = os.umask(0)
    os.umask(mask)
    assert (project.path / "out.xml").stat().st_mode & 0o777 == 0o666 & ~mask


def test_fixture_refuses_a_misspelt_option_with_the_close_match(project):
    """The fixture forwards its options to check(), whose keyword guard names the option meant."""
    project.test_file('''
def test_typo(robustness, model, data):
    robustness.check(model, *data, eps=0.1, esclate="crown")
''')
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*esclate*escalate*"])
