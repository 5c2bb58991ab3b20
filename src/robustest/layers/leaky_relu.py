"""``nn.LeakyReLU`` / ``F.leaky_relu``: ``y = x`` for ``x >= 0``, ``s x`` below (any slope ``s``); ONNX ``LeakyRelu``.

Piecewise linear, and ``y = s x + (1 - s) relu(x)``: every rule is the ReLU kind's on ``relu(x)``
(:mod:`.relu`), so the CROWN lines keep its optimisable lower slope (lower slope ``s + (1 - s) alpha``
on an unstable neuron for ``s <= 1``) and the MILP encoding is exact (one binary per unstable neuron).

* IBP: the extremes of ``f`` over ``[l, u]`` are at ``l``, ``u`` or 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..solvers.base import Problem
from .base import Box, Call, Coef, Layer, NpBox, OnnxNode, slope_difference, widen
from .registry import register, unsupported
from .relu import ReLU
from .rounding import Precision, in_range, magnitude
from .smooth import options


@register
class LeakyReLU(Layer):
    kind = "LeakyReLU"
    nonlinear = True
    summary = "F.leaky_relu"
    modules = (nn.LeakyReLU,)
    functions = (F.leaky_relu, "leaky_relu")
    onnx_ops = ("LeakyRelu",)

    def __init__(self, negative_slope: float = 0.01) -> None:
        if not math.isfinite(negative_slope):
            raise unsupported(f"LeakyReLU(negative_slope={negative_slope})", "leaky_relu",
                              "the slope must be finite. Fix: use a finite negative_slope")
        self.slope = float(negative_slope)

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[LeakyReLU, list[tuple[int, ...]]]:
        return cls(0.1), [(6,)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> LeakyReLU:
        assert isinstance(mod, nn.LeakyReLU)
        return cls(float(mod.negative_slope))

    @classmethod
    def from_call(cls, call: Call) -> LeakyReLU:
        opts = options(call, ("negative_slope", "inplace"))
        return cls(float(opts.get("negative_slope", 0.01)))  # type: ignore[arg-type]

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        return node.apply(nn.LeakyReLU(float(node.attrs.get("alpha", 0.01))), node.inputs[0])

    def bounded_inputs(self, box: Box) -> torch.Tensor:
        return ReLU().bounded_inputs(box)

    def relax_init(self, box: Box, rows: int) -> torch.Tensor:
        return ReLU().relax_init(box, rows)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(xs[0], self.slope)

    def difference(self, coef: Coef, boxes: Sequence[Box], errors: Sequence[torch.Tensor]) -> list[Coef]:
        """The difference is ``s e`` with ``s`` between the two slopes: 1 where the exact and computed
        inputs are both >= 0, the negative slope where both are <= 0."""
        active, dead = boxes[0][0] - errors[0] >= 0, boxes[0][1] + errors[0] <= 0
        one = torch.ones_like(boxes[0][0])
        a = self.slope * one
        low = torch.where(active, one, torch.where(dead, a, torch.minimum(a, one)))
        high = torch.where(active, one, torch.where(dead, a, torch.maximum(a, one)))
        return slope_difference(coef, low, high)

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        """Lipschitz ``max(1, |slope|)``, plus two roundings of ``slope * x`` on the negative side (the
        slope in the model's dtype, then the product)."""
        size = magnitude(boxes[0], errors[0]) * abs(self.slope)
        bound = errors[0] * max(1.0, abs(self.slope)) + precision.gamma(2) * size + precision.absolute(1)
        return in_range(bound, size, precision)

    def interval(self, *boxes: Box) -> Box:
        lo, hi = boxes[0]
        vals = torch.stack([self.forward(lo), self.forward(hi), self.forward(torch.clamp(torch.zeros_like(lo), lo, hi))])
        return vals.amin(0), vals.amax(0)

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        # A . y = (s A) . x + ((1 - s) A) . relu(x): the second term through the ReLU rule
        (coef,), const = ReLU().backward((1.0 - self.slope) * A, boxes, relax)
        return [coef + self.slope * A], const

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        x = ins[0]
        lo, hi = boxes[0]
        r = ReLU().encode(problem, ins, boxes, (np.maximum(lo, 0), np.maximum(hi, 0)), in_shapes=in_shapes,
                          exact=exact)
        y = problem.add_vars(*widen(*out_box))
        n = x.size
        idx = np.arange(n)
        same = r == x  # an active ReLU reuses its input's variable: one entry, y = x
        rows = np.r_[idx, idx, idx[~same]]
        cols = np.r_[y, x, r[~same]]
        vals = np.r_[np.ones(n), np.where(same, -1.0, -self.slope), np.full(int((~same).sum()), self.slope - 1.0)]
        # y - s x - (1 - s) r = 0
        problem.add_rows(rows, cols, vals, lo=np.zeros(n), hi=np.zeros(n))
        return y

    def __repr__(self) -> str:
        return f"LeakyReLU({self.slope:g})"
