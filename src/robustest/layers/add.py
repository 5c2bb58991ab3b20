"""Residual ``a + b`` (or the difference ``a - b``) of two same-shaped tensors.

ONNX ``Add``/``Sub`` of two activations import as a call of ``operator.add``/``operator.sub``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..solvers.base import Problem
from .base import Box, Call, Layer, NpBox, OnnxNode, signed_map_difference, widen
from .registry import matches, register
from .rounding import Precision, in_range, magnitude
from .scale import OPS


@register
class Add(Layer):
    kind = "Add"
    arity = 2
    summary = "a + b or a - b of two tensors, e.g. a residual"
    functions = OPS["add"] + OPS["sub"]
    onnx_ops = ("Add", "Sub")

    def __init__(self, sign: float = 1.0) -> None:
        self.sign = float(sign)  # 1: a + b, -1: a - b

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Add, list[tuple[int, ...]]]:
        return cls(-1.0), [(2, 3), (2, 3)]  # the difference; the sum is the same code with sign 1

    @classmethod
    def from_call(cls, call: Call) -> Add:
        if len(call.inputs) != 2:
            return NotImplemented
        return cls(-1.0 if matches(call.target, OPS["sub"]) else 1.0)

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        x, y = node.inputs
        if not (node.is_activation(x) and node.is_activation(y)):
            return NotImplemented  # by a constant: Scale's
        return node.call(operator.add if node.op == "Add" else operator.sub, x, y)

    def __repr__(self) -> str:
        return "Add()" if self.sign > 0 else "Add(a - b)"

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0] + xs[1] if self.sign > 0 else xs[0] - xs[1]

    def interval(self, *boxes: Box) -> Box:
        (alo, ahi), (blo, bhi) = boxes
        return (alo + blo, ahi + bhi) if self.sign > 0 else (alo - bhi, ahi - blo)

    difference = signed_map_difference
    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        return [A, A if self.sign > 0 else -A], A.new_zeros(A.shape[:2])

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        """Both inputs' errors, plus one rounding of the sum."""
        size = magnitude(boxes[0], errors[0]) + magnitude(boxes[1], errors[1])
        bound = errors[0] + errors[1] + precision.gamma(1) * size + precision.absolute(1)
        return in_range(bound, size, precision)

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        lo, hi = widen(*out_box)
        y = problem.add_vars(lo, hi)
        n = y.size
        rows = np.concatenate([np.arange(n)] * 3)
        cols = np.concatenate([y, ins[0], ins[1]])
        vals = np.concatenate([np.ones(n), -np.ones(n), -self.sign * np.ones(n)])
        problem.add_rows(rows, cols, vals, lo=np.zeros(n), hi=np.zeros(n))
        return y
