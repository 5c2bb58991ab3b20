"""``torch.cat`` of branches along a dimension after the batch (ONNX ``Concat`` of activations).

The output copies its inputs side by side, so every rule is exact: IBP and LP/MILP concatenate the
inputs' bounds and variables, CROWN splits the coefficients among the inputs. A concatenation with a
constant part is refused (the reader sees the sizes do not add up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from ..solvers.base import Problem
from .base import Box, Call, Layer, NpBox, OnnxNode, distinct, signed_map_difference
from .registry import register, unsupported
from .rounding import Precision


class ConcatModule(nn.Module):
    """``torch.cat(xs, dim)``, the module the ONNX importer builds for a Concat of activations.

        >>> ConcatModule(1)(torch.zeros(2, 3), torch.ones(2, 1)).shape
        torch.Size([2, 4])
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


@register
class Concat(Layer):
    kind = "Concat"
    summary = "torch.cat of branches after the batch dimension"
    functions = (torch.cat, torch.concat, torch.concatenate)
    onnx_ops = ("Concat",)

    def __init__(self, axis: int, sizes: Sequence[int]) -> None:
        self.axis = int(axis)  # batch-free
        self.sizes = tuple(int(s) for s in sizes)
        self.arity = len(self.sizes)

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Concat, list[tuple[int, ...]]]:
        return cls(1, (2, 1, 3)), [(2, 2), (2, 1), (2, 3)]

    @classmethod
    def from_call(cls, call: Call) -> Concat:
        shapes, out = call.in_shapes, tuple(call.out_shape)
        axes = [d for d in range(len(out)) if any(len(s) != len(out) or s[d] != out[d] for s in shapes)]
        if len(shapes) < 2 or len(axes) > 1 or not call.keeps_batch:
            raise unsupported(f"function {call.function}", call.name, "not a concatenation of tensors computed "
                              "from the input along one dimension after the batch")
        axis = axes[0] if axes else 0
        if sum(s[axis] for s in shapes) != out[axis]:
            raise unsupported(f"function {call.function}", call.name, "a part of it is a constant")
        return cls(axis, [s[axis] for s in shapes])

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        if not all(node.is_activation(v) for v in node.inputs):
            raise UnsupportedLayer(f"model has Concat node {node.name!r} joining the input with a constant. "
                                   "Fix: concatenate branches computed from the input only")
        rank = node.probe(node.inputs[0]).dim()
        axis = int(node.attrs.get("axis", 0)) % rank
        if axis == 0:
            raise UnsupportedLayer(f"model has Concat node {node.name!r} along the batch dimension. Fix: "
                                   "concatenate along the other dimensions")
        return node.apply(ConcatModule(axis), *node.inputs)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, self.axis + 1)

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        return self.forward(*errors)  # moves numbers, computes nothing

    def interval(self, *boxes: Box) -> Box:
        return (torch.cat([b[0] for b in boxes], self.axis + 1), torch.cat([b[1] for b in boxes], self.axis + 1))

    difference = signed_map_difference
    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        return list(torch.split(A, list(self.sizes), self.axis + 2)), A.new_zeros(A.shape[:2])

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        parts = [np.asarray(v).reshape(tuple(s)) for v, s in zip(ins, in_shapes)]
        return distinct(problem, np.concatenate(parts, axis=self.axis).reshape(-1), out_box)

    def __repr__(self) -> str:
        return f"Concat(axis={self.axis}, sizes={self.sizes})"
