"""Every import in the package is declared in pyproject.toml: a plain `pip install robustest` must be able
to import every module (scipy was used by repair and declared nowhere).

Module-level imports must come from ``dependencies``; imports inside a function or a ``try`` (optional
backends such as Gurobi and ONNX) may come from an extra. Checked statically against the installed
distributions' import names, so the test needs no network and no second venv."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "robustest"


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_dist(r) for r in project["dependencies"]}
    extras = {_dist(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    return core, extras


def _imports(tree):
    """(top-level module name, optional?) for every absolute import; optional = inside a def or a try."""
    out = []

    def walk(node, optional):
        for child in ast.iter_child_nodes(node):
            nested = optional or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Try))
            if isinstance(child, ast.Import):
                out.extend((a.name.split(".")[0], optional) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module.split(".")[0], optional))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            walk(child, nested)

    walk(tree, False)
    return out


def test_every_third_party_import_is_declared():
    core, extras = _declared()
    owners = packages_distributions()
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        for name, optional in _imports(ast.parse(path.read_text(), str(path))):
            if name in sys.stdlib_module_names or name in ("robustest", "__future__"):
                continue
            dists = {d.lower().replace("_", "-") for d in owners.get(name, [name])}
            allowed = core | extras if optional else core
            if not dists & allowed:
                where = "extras" if dists & extras else "nowhere"
                problems.append(f"{path.relative_to(ROOT)} imports {name} ({sorted(dists)}, declared {where}"
                                f"{', needed at module level' if not optional else ''})")
    assert not problems, "\n".join(problems)
