"""Configuration a user can discover: pytest's header, ROBUSTEST_PROFILE, start-up errors, the README."""

from __future__ import annotations

import re
from pathlib import Path

from robustest.settings import BUILTIN_PROFILES, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_header_shows_profile_escalation_and_budget(project, monkeypatch):
    project.test_file("def test_nothing():\n    pass\n")
    result = project.run()
    result.stdout.fnmatch_lines(["robustest: profile (none), escalate=attack (attacks only: unknown counts as "
                                 "passing), timeout=10 s per sample, require=not_falsified, min_pass=1, seed=0"])
    monkeypatch.setenv("ROBUSTEST_PROFILE", "nightly")
    result = project.run()
    result.stdout.fnmatch_lines(["robustest: profile nightly, escalate=bab, timeout=60 s per sample, *"])
    result = project.run("--robust-profile=ci", "--robust-timeout=2")  # the command line beats the variable
    result.stdout.fnmatch_lines(["robustest: profile ci, escalate=attack *, timeout=2 s per sample, *"])


def test_profile_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTEST_PROFILE", "ci")
    assert load_settings(tmp_path).profile == "ci"
    assert load_settings(tmp_path, profile="nightly").profile == "nightly"
    monkeypatch.setenv("ROBUSTEST_PROFILE", "nope")
    import pytest

    from robustest.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown profile 'nope' \(from \$ROBUSTEST_PROFILE\)"):
        load_settings(tmp_path)


def test_a_bad_option_fails_at_start_up_once(project):
    project.test_file('''
from robustest import robust

@robust(eps=0.1)
def test_a(model, data):
    pass

@robust(eps=0.1)
def test_b(model, data):
    pass
''')
    result = project.run("--robust-escalate=bogus")
    assert result.ret == 4  # pytest's usage error, before any test ran
    assert result.stderr.str().count("escalate='bogus'") == 1
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


def test_readme_states_what_the_builtin_profiles_set():
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|$", README.read_text(encoding="utf-8"), re.M))
    for name, values in BUILTIN_PROFILES.items():
        stated = dict(re.findall(r"`(\w+) = ([^`]+)`", rows[name]))
        assert stated == {k: repr(v) if isinstance(v, str) else f"{v:g}" for k, v in values.items()}, name
