"""``nn.Softplus`` / ``F.softplus`` (``log(1 + exp(beta x)) / beta``, any ``beta > 0``); ONNX ``Softplus``.

Convex and increasing, ``f' = sigmoid(beta x)``. torch returns ``x`` itself where ``beta x > threshold``,
at most ``log(1 + exp(-threshold)) / beta`` below the smooth function: the rules bound the smooth
function and lower every lower bound by that much (:meth:`Smooth.slack`). The rules are those of every
smooth activation (:mod:`.smooth`).
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


@register
class Softplus(Smooth):
    kind = "Softplus"
    summary = "F.softplus, beta > 0"
    modules = (nn.Softplus,)
    functions = (F.softplus, "softplus")
    onnx_ops = ("Softplus",)

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        if not (beta > 0 and math.isfinite(beta)) or math.isnan(threshold):
            raise unsupported(f"Softplus(beta={beta}, threshold={threshold})", "softplus",
                              "beta must be a finite number > 0. Fix: use beta > 0")
        self.beta, self.threshold = float(beta), float(threshold)

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Layer | None:
        assert isinstance(mod, nn.Softplus)
        return cls(float(mod.beta), float(mod.threshold))

    @classmethod
    def from_call(cls, call: Call) -> Layer | None:
        opts = options(call, ("beta", "threshold"))
        return cls(float(opts.get("beta", 1.0)), float(opts.get("threshold", 20.0)))  # type: ignore[arg-type]

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        return node.apply(nn.Softplus(), node.inputs[0])

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return F.softplus(xs[0], self.beta, self.threshold)

    def fn(self, x: torch.Tensor) -> torch.Tensor:
        bx = self.beta * x
        return (torch.relu(bx) + torch.log1p(torch.exp(-bx.abs()))) / self.beta

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.beta * x)

    def slack(self) -> float:
        t = self.threshold
        return (math.log1p(math.exp(-t)) if t > -700 else -t) / self.beta

    def __repr__(self) -> str:
        return f"Softplus(beta={self.beta:g}, threshold={self.threshold:g})"
