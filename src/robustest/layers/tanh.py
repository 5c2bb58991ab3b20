"""``nn.Tanh`` / ``torch.tanh`` / ``F.tanh`` / ``x.tanh()``; ONNX ``Tanh``.

S-shaped: convex below 0, concave above; ``f' = 1 - tanh(x)^2``. The rules are those of every smooth
activation (:mod:`.smooth`).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register
from .smooth import Smooth


@register
class Tanh(Smooth):
    kind = "Tanh"
    summary = "torch.tanh, F.tanh"
    modules = (nn.Tanh,)
    functions = (torch.tanh, "tanh")
    onnx_ops = ("Tanh",)
    breaks = (0.0,)
    curvature = (1, -1)

    def fn(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 - torch.tanh(x) ** 2
