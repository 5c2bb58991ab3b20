"""Cutting-plane adversary correction (Zhao & Kronqvist, arXiv 2409.13770): repair a model so that it
classifies given adversarial points correctly while staying close to the original weights.

The public entry point is :func:`robustest.repair` (``robustest.repair.api.repair``); see
``notes/repair-algorithm.md`` for the method and which parts are engineering choices.

The name ``robustest.repair`` is both this package and the function: once any submodule has been
imported, Python binds ``robustest.repair`` to the package, so the package itself is made callable and
forwards to :func:`robustest.repair.api.repair`. ``robustest.repair(model, ...)`` therefore works
whatever was imported first.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import repair

        return repair(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
