"""The README's commands are what CI runs and what a fresh clone can run."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && "
#: import names of distributions whose names differ
IMPORT_NAMES = {"scikit-learn": "sklearn", "pyyaml": "yaml", "junit-xml": "junit_xml"}


def commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_each_command_makes_its_own_venv_and_ci_runs_the_second():
    examples, suite = commands()
    assert examples.startswith(VENV) and suite.startswith(VENV)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == suite


def test_the_examples_command_installs_what_the_examples_import():
    examples, _ = commands()
    extra = re.search(r'pip install -e "\.\[(\w+)\]"', examples).group(1)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    installed = {"robustest", "digits"}  # the package itself and the examples' own module
    for req in project["dependencies"] + project["optional-dependencies"][extra]:
        name = re.match(r"[\w.-]+", req).group(0).lower()
        installed.add(IMPORT_NAMES.get(name, name.replace("-", "_")))
    for path in (ROOT / "examples").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                assert top in installed or top in sys.stdlib_module_names, (path.name, name)


def test_local_links_and_pictures_exist():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (ROOT / target).is_file(), target
    assert "../shared" not in README  # a clone does not have it
    png = ROOT / "docs" / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 200_000


def test_the_readme_example_run_gives_a_junit_without_failures(tmp_path):
    """The first command's pytest run: green, and its per-sample JUnit has no failure or error element."""
    from junitparser import Error, Failure, JUnitXml

    examples, _ = commands()
    args = examples.split("python -m pytest ", 1)[1].split()
    args = [f"--robust-junit={tmp_path / 'robustness.xml'}" if a.startswith("--robust-junit") else a
            for a in args]
    run = subprocess.run([sys.executable, "-m", "pytest", *args, "-q", "-p", "no:xdist"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    xml = JUnitXml.fromfile(str(tmp_path / "robustness.xml"))
    results = [r for suite in xml for case in suite for r in case.result]
    assert results and not [r for r in results if isinstance(r, (Failure, Error))]
    assert sum(suite.failures + suite.errors for suite in xml) == 0
