"""``nn.Sigmoid`` / ``torch.sigmoid`` / ``F.sigmoid`` / ``x.sigmoid()``; ONNX ``Sigmoid``.

S-shaped: convex below 0, concave above; ``f' = s(x) s(-x)``. The rules are those of every smooth
activation (:mod:`.smooth`): tangent/secant lines with sound intercepts, optimisable slopes, LP rows.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register
from .smooth import Smooth


@register
class Sigmoid(Smooth):
    kind = "Sigmoid"
    summary = "torch.sigmoid, F.sigmoid"
    modules = (nn.Sigmoid,)
    functions = (torch.sigmoid, "sigmoid")
    onnx_ops = ("Sigmoid",)
    breaks = (0.0,)
    curvature = (1, -1)

    def fn(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * torch.sigmoid(-x)
