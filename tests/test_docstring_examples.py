"""The examples in the package's docstrings run and print what they say (house style: docstrings with
runnable examples; an example that no longer runs misleads every reader)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import robustest

MODULES = sorted(m.name for m in pkgutil.walk_packages(robustest.__path__, "robustest."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see the output above)"
