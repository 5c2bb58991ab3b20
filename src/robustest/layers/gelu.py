"""``nn.GELU`` / ``F.gelu`` with ``approximate="none"`` (``x * Phi(x)``); ONNX ``Gelu`` (opset 20) likewise.

Not monotone (minimum about -0.170 at x about -0.752); ``f'' = phi(x) (2 - x^2)``: convex on
``[-sqrt 2, sqrt 2]``, concave outside. The rules are those of every smooth activation (:mod:`.smooth`).
The tanh approximation is another function and is refused.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import Call, Layer, OnnxNode
from .registry import register, unsupported
from .smooth import Smooth, options

_FIX = "Fix: use approximate='none' (the exact GELU)"


@register
class GELU(Smooth):
    kind = "GELU"
    summary = "F.gelu, approximate='none'"
    modules = (nn.GELU,)
    functions = (F.gelu, "gelu")
    onnx_ops = ("Gelu",)
    breaks = (-math.sqrt(2.0), math.sqrt(2.0))
    curvature = (-1, 1, -1)
    monotone = False

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Layer | None:
        assert isinstance(mod, nn.GELU)
        if mod.approximate != "none":
            raise unsupported(f"GELU(approximate={mod.approximate!r})", path, _FIX)
        return cls()

    @classmethod
    def from_call(cls, call: Call) -> Layer | None:
        opts = options(call, ("approximate",))
        if opts.get("approximate", "none") != "none":
            raise unsupported(f"gelu(approximate={opts['approximate']!r})", call.name, _FIX)
        return cls()

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        approx = node.attrs.get("approximate", "none")
        approx = approx.decode() if isinstance(approx, bytes) else str(approx)
        if approx != "none":
            raise unsupported(f"ONNX Gelu(approximate={approx!r})", node.name, _FIX)
        return node.apply(nn.GELU(), node.inputs[0])

    def fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))) + x * torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
