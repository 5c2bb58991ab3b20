"""Loading model and data files for the CLI and for users' scripts.

    >>> from robustest.io import load_model, load_data          # doctest: +SKIP
    >>> model = load_model("net.onnx")                           # doctest: +SKIP
    >>> inputs, labels = load_data("test.npz")                   # doctest: +SKIP

Model files: ONNX (imported into ordinary torch layers), TorchScript, ``torch.export`` archives
(``.pt2``) and state dicts with a named module class (``pkg.mod:Class``). Data files: ``.pt`` (a dict
with ``inputs`` and ``labels``, loaded with ``weights_only=True``) and ``.npz``. Loading never executes
pickled code from the file.
"""

from __future__ import annotations

from .data import load_data, save_data
from .models import load_model

__all__ = ["load_model", "load_data", "save_data"]
