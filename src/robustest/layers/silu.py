"""``nn.SiLU`` / ``F.silu`` (``x * sigmoid(x)``, "swish").

Not monotone (minimum about -0.278 at x about -1.278); convex on ``[-c, c]`` and concave outside, with
``c = 2.39935728...`` the root of ``x tanh(x / 2) = 2`` (where ``f'' = s'(x) (2 + x (1 - 2 s(x)))``
changes sign). The rules are those of every smooth activation (:mod:`.smooth`). ONNX has no SiLU
operator (exporters emit ``Sigmoid`` and ``Mul``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register
from .smooth import Smooth

#: The inflection points of SiLU: +-(the root of x tanh(x/2) = 2), to float64 precision.
INFLECTION = 2.399357280515467


@register
class SiLU(Smooth):
    kind = "SiLU"
    summary = "F.silu"
    modules = (nn.SiLU,)
    functions = (F.silu, "silu")
    breaks = (-INFLECTION, INFLECTION)
    curvature = (-1, 1, -1)
    monotone = False

    def fn(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(x)
        return s * (1.0 + x * torch.sigmoid(-x))
