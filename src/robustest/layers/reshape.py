"""``nn.Flatten``, ``view``/``reshape``/``flatten`` calls: the same numbers in a new (batch-free) shape.

ONNX ``Flatten`` (axis 1) imports as ``nn.Flatten``; ``Reshape`` to a constant shape, ``Squeeze`` and
``Unsqueeze`` (not on the batch) as ``nn.Flatten`` or :class:`ReshapeModule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from ..solvers.base import Problem
from .base import Box, Call, Layer, NpBox, OnnxNode, signed_map_difference
from .registry import register, unsupported
from .rounding import Precision


class ReshapeModule(nn.Module):
    """Reshape every sample to ``shape`` (the batch dimension is kept).

        >>> ReshapeModule((2, 3))(torch.zeros(4, 6)).shape
        torch.Size([4, 2, 3])
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


@register
class Reshape(Layer):
    kind = "Reshape"
    summary = "reshape/view/flatten calls that keep the batch"
    modules = (nn.Flatten,)
    functions = (torch.flatten, torch.reshape, "flatten", "view", "reshape")
    onnx_ops = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")
    dense_role = "reshape"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(int(s) for s in shape)  # batch-free output shape

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Reshape, list[tuple[int, ...]]]:
        return cls((3, 2)), [(6,)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Reshape:
        assert isinstance(mod, nn.Flatten)
        full = torch.Size((1,) + tuple(in_shape))
        end = mod.end_dim % len(full)
        if mod.start_dim % len(full) == 0:
            raise unsupported(type(mod).__name__, path, "start_dim=0 flattens the batch")
        start = mod.start_dim % len(full)
        new = full[:start] + (int(torch.tensor(full[start:end + 1]).prod()),) + full[end + 1:]
        return cls(tuple(new[1:]))

    @classmethod
    def from_call(cls, call: Call) -> Reshape:
        if not call.keeps_batch:
            raise unsupported(f"function {call.function}", call.name, "it mixes the batch dimension")
        return cls(call.out_shape)

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        x, at = node.inputs[0], node.attrs
        probe = node.probe(x)
        if node.op == "Flatten":
            if at.get("axis", 1) != 1:
                raise UnsupportedLayer(f"model has Flatten node {node.name!r} with axis={at.get('axis')}; only "
                                       "axis=1 keeps the batch dimension. Fix: flatten from dimension 1")
            return node.apply(nn.Flatten(), x)
        if node.op == "Reshape":
            target = node.inputs[1]
            shape = [] if node.is_activation(target) else [int(s) for s in np.asarray(target).reshape(-1)]
            if not shape:
                raise UnsupportedLayer(f"model has Reshape node {node.name!r} whose target shape depends on the "
                                       "input values. Fix: export with constant folding")
            if shape[0] not in (-1, 0, 1, probe.shape[0]):
                raise UnsupportedLayer(f"model has Reshape node {node.name!r} to {shape}, which mixes the batch "
                                       "dimension with the others. Fix: keep dimension 0 as the batch")
            rest = [probe.shape[i] if s == 0 else s for i, s in enumerate(shape)][1:]
            if len(rest) == 1 and (rest[0] == -1 or rest[0] == probe[0].numel()):
                return node.apply(nn.Flatten(), x)
            return node.apply(ReshapeModule(rest), x)
        axes = at.get("axes", node.inputs[1] if len(node.inputs) > 1 else None)  # Squeeze / Unsqueeze
        if axes is None or any(int(v) in (0, -probe.dim() - (node.op == "Unsqueeze"))
                               for v in np.atleast_1d(np.asarray(axes))):
            raise UnsupportedLayer(f"model has {node.op} node {node.name!r} on the batch dimension (or "
                                   "on every dimension). Fix: squeeze/unsqueeze named dimensions after the batch")
        out = node.evaluate([probe.numpy(), axes])
        return node.apply(ReshapeModule(tuple(out.shape[1:])), x)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0].reshape((xs[0].shape[0],) + self.shape)

    def interval(self, *boxes: Box) -> Box:
        return self.forward(boxes[0][0]), self.forward(boxes[0][1])

    difference = signed_map_difference
    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        in_shape = tuple(boxes[0][0].shape[1:])
        return [A.reshape(A.shape[:2] + in_shape)], A.new_zeros(A.shape[:2])

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        return self.forward(errors[0])  # moves numbers, computes nothing

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        return ins[0]

    def __repr__(self) -> str:
        return f"Reshape{self.shape}"
