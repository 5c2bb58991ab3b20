"""An ONNX model robustest cannot import, run by onnxruntime: attacks need no certification support.

When :func:`~robustest.io.onnx_import.import_onnx` refuses a model (an operator without a layer kind, a
Cast that changes values, an import onnxruntime disagrees with), the model can still be falsified: an
:class:`OnnxRuntimeModule` is a torch module whose forward pass is onnxruntime's, for gradient-free
attacks (random points, Square). It has no graph: reading it for a proof raises
:class:`~robustest.errors.UnsupportedLayer` with the reason the import gave, so every answer says which
operator blocked the proof.

    >>> from robustest.io.models import load_model                              # doctest: +SKIP
    >>> net = load_model("net_with_softmax.onnx", runtime_fallback=True)         # doctest: +SKIP
    >>> net.blocked_by                                                           # doctest: +SKIP
    "model has 1 ONNX operator(s) robustest cannot import: Softmax (node 'probs') ..."
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from .onnx_check import ort_session


class OnnxRuntimeModule(nn.Module):
    """Forward passes through onnxruntime (CPU), batch by batch or sample by sample when the ONNX input's
    batch dimension is fixed; outputs come back on the input's device. ``gradient_free`` tells attackers
    that no gradient flows through it; ``blocked_by`` is why no proof is possible."""

    gradient_free = True

    def __init__(self, payload: bytes, *, blocked_by: str) -> None:
        super().__init__()
        self.blocked_by = blocked_by
        self._session = ort_session(payload)
        inp = self._session.get_inputs()[0]
        self._name = inp.name
        self._dtype = np.float64 if inp.type == "tensor(double)" else np.float32
        self._one_at_a_time = bool(inp.shape) and inp.shape[0] == 1

    def forward(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):  # a torch.fx Proxy: someone wants the graph, for a proof
            raise UnsupportedLayer(f"the model runs through onnxruntime, for attacks only: {self.blocked_by}")
        arr = x.detach().cpu().numpy().astype(self._dtype)
        chunks = [arr[i:i + 1] for i in range(arr.shape[0])] if self._one_at_a_time else [arr]
        outs = [np.asarray(self._session.run(None, {self._name: c})[0]) for c in chunks]
        out = np.concatenate(outs, 0) if outs else np.zeros((0,), np.float32)
        return torch.from_numpy(out.astype(np.float32)).to(x.device)

    def extra_repr(self) -> str:
        return f"attacks only: {self.blocked_by[:120]}"


__all__ = ["OnnxRuntimeModule"]
