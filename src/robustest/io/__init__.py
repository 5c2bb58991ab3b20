"""Loading model and data files for the CLI and for users' scripts.

    >>> from robustest.io import load_model, load_data          # doctest: +SKIP
    >>> model = load_model("net.onnx")                           # doctest: +SKIP
    >>> inputs, labels = load_data("test.npz")                   # doctest: +SKIP

Model files: ONNX (imported into ordinary torch layers), TorchScript, ``torch.export`` archives
(``.pt2``) and state dicts with a named module class (``pkg.mod:Class``). Data files: ``.pt`` (a dict
with ``inputs`` and ``labels``, loaded with ``weights_only=True``) and ``.npz``. Loading never executes
pickled code from the file. The names load lazily, so the CLI builds its parser without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"load_model": "robustest.io.models", "load_data": "robustest.io.data",
         "save_data": "robustest.io.data", "import_onnx": "robustest.io.onnx_import"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'robustest.io' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
