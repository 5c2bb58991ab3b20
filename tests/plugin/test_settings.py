"""Settings from pyproject.toml / robustest.yaml, profiles and precedence (no torch needed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from robustest.errors import ConfigError
from robustest.settings import BUILTIN_PROFILES, Settings, load_settings


def write(path, text):
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_defaults_without_files(tmp_path):
    assert load_settings(tmp_path) == Settings()


def test_pyproject_section_and_profiles(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [project]
        name = "x"
        [tool.robustest]
        seed = 3
        timeout = 2
        junit-include = "failures"
        [tool.robustest.profiles.nightly]
        timeout = 99.0
        [tool.robustest.profiles.quick]
        escalate = "ibp"
    """)
    s = load_settings(tmp_path)
    assert (s.seed, s.timeout, s.junit_include, s.profile) == (3, 2.0, "failures", None)
    nightly = load_settings(tmp_path, profile="nightly")
    # the file's nightly overrides the built-in one key by key, the rest of the built-in stays
    assert nightly.timeout == 99.0 and nightly.escalate == BUILTIN_PROFILES["nightly"]["escalate"]
    assert nightly.seed == 3 and nightly.profile == "nightly"
    assert load_settings(tmp_path, profile="quick").escalate == "ibp"


def test_yaml_file_overrides_pyproject(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [tool.robustest]
        seed = 3
        timeout = 2
    """)
    write(tmp_path / "robustest.yaml", """
        seed: 5
        profiles:
          ci: {unknown: failure}
    """)
    s = load_settings(tmp_path)
    assert (s.seed, s.timeout) == (5, 2.0)
    ci = load_settings(tmp_path, profile="ci")
    assert ci.unknown == "failure" and ci.timeout == BUILTIN_PROFILES["ci"]["timeout"]


def test_precedence_command_line_over_profile_over_file(tmp_path):
    write(tmp_path / "robustest.yaml", """
        timeout: 1.5
        escalate: ibp
        profile: ci
        profiles:
          ci: {escalate: crown, seed: 8}
    """)
    s = load_settings(tmp_path)  # the file selects the ci profile
    assert (s.profile, s.escalate, s.seed, s.timeout) == ("ci", "crown", 8, BUILTIN_PROFILES["ci"]["timeout"])
    cli = load_settings(tmp_path, overrides={"seed": 1, "timeout": None, "escalate": "lp"})
    assert (cli.seed, cli.escalate, cli.timeout) == (1, "lp", BUILTIN_PROFILES["ci"]["timeout"])
    # a profile named on the command line beats the file's choice
    assert load_settings(tmp_path, profile="nightly").profile == "nightly"


def test_unknown_key_names_key_file_and_valid_options(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [tool.robustest]
        timeuot = 3
    """)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    msg = str(info.value)
    assert "'timeuot'" in msg and "pyproject.toml" in msg and "timeout" in msg and "Fix:" in msg


def test_unknown_key_inside_a_profile(tmp_path):
    write(tmp_path / "robustest.yaml", "profiles:\n  ci: {sead: 1}\n")
    with pytest.raises(ConfigError, match=r"'sead'.*robustest.yaml profile 'ci'"):
        load_settings(tmp_path)


def test_unknown_profile_lists_the_valid_ones(tmp_path):
    write(tmp_path / "robustest.yaml", "profiles:\n  mine: {seed: 1}\n")
    with pytest.raises(ConfigError, match=r"unknown profile 'nighlty'.*ci, mine, nightly"):
        load_settings(tmp_path, profile="nighlty")


@pytest.mark.parametrize("text, key", [
    ("seed: one\n", "seed"), ("timeout: -1\n", "timeout"), ("unknown: maybe\n", "unknown"),
    ("junit_include: some\n", "junit_include"), ("min_pass: 2\n", "min_pass"), ("require: all\n", "require"),
])
def test_bad_values_are_config_errors(tmp_path, text, key):
    write(tmp_path / "robustest.yaml", text)
    with pytest.raises(ConfigError, match=rf"{key}=.* in .*robustest.yaml is not valid: expected"):
        load_settings(tmp_path)


def test_malformed_files(tmp_path):
    write(tmp_path / "robustest.yaml", "seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(tmp_path)
    (tmp_path / "robustest.yaml").unlink()
    write(tmp_path / "pyproject.toml", "[tool.robustest\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(tmp_path)


def test_settings_are_frozen_and_validated():
    with pytest.raises(Exception):
        Settings().seed = 3  # type: ignore[misc]
    with pytest.raises(ConfigError):
        Settings(timeout=0)


def test_settings_and_plugin_import_without_torch():
    code = ("import sys, robustest.settings, robustest.plugin, robustest.plugin.marker; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_suppress_health_check_and_html_settings(tmp_path):
    write(tmp_path / "pyproject.toml", """
        [tool.robustest]
        suppress_health_check = ["probabilities"]
        html = "report.html"
    """)
    s = load_settings(tmp_path)
    assert s.suppress_health_check == ("probabilities",) and s.html == "report.html"
    write(tmp_path / "pyproject.toml", """
        [tool.robustest]
        suppress_health_check = "probabilities"
    """)
    with pytest.raises(ConfigError, match="suppress_health_check='probabilities'.*expected a list"):
        load_settings(tmp_path)


@pytest.mark.parametrize("name,content,match", [
    ("robustest.yaml", b"seed: 1\n# caf\xe9\n", "UTF-8"),
    ("pyproject.toml", b"[tool.robustest]\nseed = 1 # caf\xe9\n", "not valid TOML"),
    ("pyproject.toml", b'tool = "x"\n', "'tool' in .* must be a table"),
    ("pyproject.toml", b'[tool]\nrobustest = "x"\n', "must be a table/mapping"),
])
def test_undecodable_or_misshapen_files_are_config_errors(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        load_settings(tmp_path)
