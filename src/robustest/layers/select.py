"""Entries of the input picked by constant indices: ONNX ``Transpose`` (keeping the batch first),
``Slice`` and ``Gather`` with constant indices (not on the batch dimension).

Each is one gather ``y.flatten() = x.flatten()[index]`` with a constant ``index`` (a permutation for a
Transpose, a sub-array for a Slice, any entries, repeated or not, for a Gather), so every rule is exact:
IBP picks the bounds, CROWN scatters the coefficients back (adding those of repeated entries), LP/MILP
reuse the input's variables. The importer builds a :class:`SelectModule`, which torch.fx sees as a
call of :func:`take`; Keras/tf2onnx NHWC <-> NCHW Transposes around convolutions are such permutations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.fx
from torch import nn

from ..errors import UnsupportedLayer
from ..solvers.base import Problem
from .base import Box, Call, Layer, NpBox, OnnxNode, distinct, signed_map_difference
from .registry import register, unsupported
from .rounding import Precision


@torch.fx.wrap
def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x.flatten(1)[:, index[0]]``: each sample's entries at the flat positions ``index`` (shaped
    ``(1, *out_shape)``), in the shape of ``index[0]``; torch.fx records it as one call."""
    return x.flatten(1)[:, index[0]]


class SelectModule(nn.Module):
    """Pick each sample's entries at constant flat positions (the batch dimension is kept).

        >>> m = SelectModule(torch.tensor([[2, 0], [1, 1]]))
        >>> m(torch.tensor([[10.0, 11.0, 12.0]])).tolist()
        [[[12.0, 10.0], [11.0, 11.0]]]
    """

    index: torch.Tensor

    def __init__(self, index: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("index", index.detach().clone().long()[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return take(x, self.index)

    def extra_repr(self) -> str:
        return f"out_shape={tuple(self.index.shape[1:])}"


def _positions(shape: Sequence[int]) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(tuple(shape))


@register
class Select(Layer):
    kind = "Select"
    summary = "entries picked by constant indices: ONNX Transpose, Slice, Gather"
    functions = (take,)
    onnx_ops = ("Transpose", "Slice", "Gather")
    dense_role = "reshape"

    def __init__(self, index: torch.Tensor, in_shape: tuple[int, ...]) -> None:
        self.index = torch.as_tensor(index).detach().clone().long()  # batch-free output shape
        self.in_shape = tuple(int(s) for s in in_shape)

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Select, list[tuple[int, ...]]]:
        index = torch.randint(0, 12, (2, 4), generator=gen)  # repeated entries too
        return cls(index, (3, 4)), [(3, 4)]

    @classmethod
    def from_call(cls, call: Call) -> Select:
        if call.constant is None or len(call.inputs) != 1:
            raise unsupported("function take", call.name, "the index is not a constant")
        return cls(call.constant.reshape(call.out_shape).round().long(), call.in_shapes[0])

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        x, at = node.inputs[0], node.attrs
        shape = tuple(node.probe(x).shape)
        rank = len(shape)
        if any(node.is_activation(v) for v in node.inputs[1:] if v is not None):
            raise UnsupportedLayer(f"model has {node.op} node {node.name!r} whose indices are computed from "
                                   "the input; robustest imports constant indices only. Fix: export with "
                                   "constant folding")
        pos = _positions(shape)
        if node.op == "Transpose":
            perm = [int(p) for p in at.get("perm", list(range(rank))[::-1])]
            if perm[0] != 0:
                raise UnsupportedLayer(f"model has Transpose node {node.name!r} with perm={perm}, which moves the "
                                       "batch dimension. Fix: keep dimension 0 first")
            out = pos.transpose(perm)
        elif node.op == "Gather":
            axis = int(at.get("axis", 0)) % rank
            if axis == 0:
                raise UnsupportedLayer(f"model has Gather node {node.name!r} on the batch dimension. Fix: "
                                       "gather along the other dimensions")
            idx = np.asarray(node.inputs[1]).astype(np.int64)
            if idx.size and (idx.min() < -shape[axis] or idx.max() >= shape[axis]):
                raise UnsupportedLayer(f"model has Gather node {node.name!r} with indices out of range for a "
                                       f"dimension of size {shape[axis]}. Fix: check the exported indices")
            out = np.take(pos, idx % shape[axis], axis=axis)
        else:
            out = pos[_slices(node, rank)]
        if out.shape[0] != shape[0]:
            raise UnsupportedLayer(f"model has {node.op} node {node.name!r} that changes the batch dimension. "
                                   "Fix: keep dimension 0 as the batch")
        return node.apply(SelectModule(torch.from_numpy(np.ascontiguousarray(out[0]))), x)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0].flatten(1)[:, self.index]

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        return self.forward(errors[0])  # picks numbers, computes nothing

    def interval(self, *boxes: Box) -> Box:
        return self.forward(boxes[0][0]), self.forward(boxes[0][1])

    difference = signed_map_difference
    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        B, M = A.shape[:2]
        n = int(np.prod(self.in_shape))
        coef = A.new_zeros((B, M, n)).index_add_(2, self.index.reshape(-1), A.reshape(B, M, -1))
        return [coef.reshape((B, M) + self.in_shape)], A.new_zeros((B, M))

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        return distinct(problem, np.asarray(ins[0])[self.index.reshape(-1).cpu().numpy()], out_box)

    def to(self, device: torch.device, dtype: torch.dtype) -> Select:
        return Select(self.index.to(device), self.in_shape)  # the index stays an integer tensor

    def __repr__(self) -> str:
        return f"Select{tuple(self.in_shape)}->{tuple(self.index.shape)}"


def _slices(node: OnnxNode, rank: int) -> tuple[slice, ...]:
    """An ONNX Slice's constant starts/ends/axes/steps (attributes before opset 10, inputs after)."""
    at, ins = node.attrs, list(node.inputs) + [None] * 5
    if "starts" in at:
        starts, ends, axes, steps = at["starts"], at["ends"], at.get("axes"), None
    else:
        starts, ends, axes, steps = ins[1], ins[2], ins[3], ins[4]
    starts = [int(v) for v in np.asarray(starts).reshape(-1)]
    ends = [int(v) for v in np.asarray(ends).reshape(-1)]
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in np.asarray(axes).reshape(-1)]
    steps = [1] * len(starts) if steps is None else [int(v) for v in np.asarray(steps).reshape(-1)]
    if 0 in axes or 0 in steps:
        raise UnsupportedLayer(f"model has Slice node {node.name!r} on the batch dimension or with step 0. "
                               "Fix: slice the other dimensions only")
    out = [slice(None)] * rank
    for ax, s, e, st in zip(axes, starts, ends, steps):
        out[ax] = slice(s, e, st)
    return tuple(out)


__all__ = ["Select", "SelectModule", "take"]
