"""Elementwise affine ``y = x * scale + shift`` (scale/shift broadcast over the batch-free shape).

This is what an eval-mode BatchNorm becomes when it cannot be folded into the layer before it, and what an
input normalisation ``(x - mean) / std`` becomes (``scale = 1/std``, ``shift = -mean/std``). Normalisation
is not folded into a following convolution because zero padding would then pad the wrong value.

ONNX ``BatchNormalization`` imports as ``nn.BatchNorm1d/2d`` (eval mode), ``Add``/``Sub``/``Mul``/``Div`` of
an activation and a constant, and ``Neg``, as :class:`ConstantAffine`, or, right after a ``MatMul``'s ``nn.Linear``, into
that Linear's bias (MatMul + Add is a Gemm).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from .base import AffineLayer, Box, Call, OnnxNode, randn
from .registry import matches, register, unsupported
from .rounding import Precision, in_range, magnitude

#: The torch.fx calls of each arithmetic operation (``x + c``, ``torch.add(x, c)``, ``x.add(c)``, ``x += c``...).
OPS: dict[str, tuple[object, ...]] = {
    "add": (operator.add, torch.add, "add", operator.iadd),
    "sub": (operator.sub, torch.sub, "sub", operator.isub),
    "mul": (operator.mul, torch.mul, "mul", operator.imul),
    "div": (operator.truediv, torch.div, "div", operator.itruediv),
}


def onnx_tensor(a: Any) -> torch.Tensor:
    """An ONNX constant (numpy) as a float32 tensor, the dtype of imported modules."""
    return torch.as_tensor(np.array(a, dtype=np.float32))


def affine_of(op: str, c: torch.Tensor, tensor_first: bool, *, one: torch.Tensor, zero: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(scale, shift)`` of ``x op c`` (or ``c op x`` unless ``tensor_first``); None for ``c / x``."""
    if op == "add":
        return one, c
    if op == "sub":
        return (one, -c) if tensor_first else (-one, c)
    if op == "mul":
        return c, zero
    return (1.0 / c, zero) if tensor_first else None


class ConstantAffine(nn.Module):
    """``y = x * scale + shift`` with constant, broadcastable ``scale``/``shift`` buffers.

    ONNX graphs express input normalisation as ``Sub``/``Div``/``Mul``/``Add`` by constants; this is
    that, as one elementwise affine map (torch.fx traces it into the calls a :class:`Scale` stands for).

        >>> m = ConstantAffine(scale=torch.tensor(2.0), shift=torch.tensor(-1.0))
        >>> m(torch.tensor([0.0, 1.0])).tolist()
        [-1.0, 1.0]
    """

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().clone().float())
        self.register_buffer("shift", shift.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


@register
class Scale(AffineLayer):
    kind = "Scale"
    summary = "in eval mode; + - * / by constants, such as (x - mean) / std"
    modules = (nn.BatchNorm1d, nn.BatchNorm2d)
    functions = tuple(f for fs in OPS.values() for f in fs)
    onnx_ops = ("BatchNormalization", "Add", "Sub", "Mul", "Div", "Neg")

    #: Roundings of an eval-mode BatchNorm as torch computes it (``1 / sqrt(var + eps)``, the weight,
    #: ``bias - mean * alpha``, ``x * alpha + beta``; or ``(x - mean) * invstd * weight + bias``), with room
    #: for a reciprocal square root accurate to a few ulps (CUDA's).
    BATCHNORM_OPS = 10

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, *, source: str = "affine", ops: int = 2,
                 offset: torch.Tensor | None = None) -> None:
        self.scale = torch.as_tensor(scale).detach().clone()
        self.shift = torch.as_tensor(shift).detach().clone()
        self.source = source  # "batchnorm" or "normalize" or "affine": only for messages and folding
        #: for :meth:`rounding`: the operations the model computes the map with, and the size of the
        #: constants it adds on the way (a BatchNorm's ``|mean * scale| + |bias|``; default ``|shift|``)
        self.ops = ops
        self.offset = self.shift.abs() if offset is None else torch.as_tensor(offset).detach().clone()

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Scale, list[tuple[int, ...]]]:
        return cls(randn(gen, 2, 1, 1), randn(gen, 2, 3, 3)), [(2, 3, 3)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Scale:
        assert isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d))
        if mod.running_mean is None or mod.running_var is None:
            raise unsupported(type(mod).__name__, path,
                              "track_running_stats=False uses batch statistics even in eval mode")
        scale = 1.0 / torch.sqrt(mod.running_var + mod.eps)
        if mod.weight is not None:
            scale = scale * mod.weight
        shift = -mod.running_mean * scale
        offset = shift.abs()
        if mod.bias is not None:
            shift = shift + mod.bias
            offset = offset + mod.bias.abs()
        view = (-1,) + (1,) * (len(in_shape) - 1)
        return cls(scale.detach().reshape(view), shift.detach().reshape(view), source="batchnorm",
                   ops=cls.BATCHNORM_OPS, offset=offset.detach().reshape(view))

    @classmethod
    def from_call(cls, call: Call) -> Scale:
        if len(call.inputs) != 1 or not call.binary:
            return NotImplemented
        if call.constant is None:
            raise unsupported(f"function {call.function}", call.name, "the other operand is not a constant")
        op = next(op for op, fs in OPS.items() if matches(call.target, fs))
        one, zero = torch.ones((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
        pair = affine_of(op, call.constant, call.tensor_first, one=one, zero=zero)
        if pair is None:
            raise unsupported(f"function {call.function}", call.name, "division by a tensor")
        return cls(*pair, source="normalize" if op == "div" else "affine", ops=1)

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        if node.op == "BatchNormalization":
            return _onnx_batchnorm(node)
        if node.op == "Neg":
            return node.apply(ConstantAffine(torch.tensor(-1.0), torch.tensor(0.0)), node.inputs[0])
        x, y = node.inputs
        op = node.op
        if node.is_activation(x) and node.is_activation(y):
            if op in ("Add", "Sub"):
                return NotImplemented  # a residual: Add's
            raise UnsupportedLayer(f"model has {op} node {node.name!r} of two activations (only Add/Sub "
                                   "of two activations, e.g. a residual, is supported)")
        act_first = node.is_activation(x)
        act, const = (x, onnx_tensor(y)) if act_first else (y, onnx_tensor(x))
        pair = affine_of(op.lower(), const, act_first, one=torch.ones_like(const), zero=torch.zeros_like(const))
        if pair is None:
            raise UnsupportedLayer(f"model has Div node {node.name!r} dividing a constant by the input")
        scale, shift = pair
        if _fold_into_linear(node.sole_producer(0 if act_first else 1), scale, shift):
            return node.with_probe(act, node.probe(act) * scale + shift)
        return node.apply(ConstantAffine(scale, shift), act)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0] * self.scale + self.shift

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.abs()

    def transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        return (A * self.scale).expand(A.shape[:2] + tuple(in_shape))

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        in_shape = tuple(boxes[0][0].shape[1:])
        const = (A * self.shift).flatten(2).sum(-1)
        return [self.transpose(A, in_shape)], const

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        """``|scale| e + gamma_ops (|scale| |x| + offset)``: the input's error scaled, plus :attr:`ops`
        roundings of the map (a single ``+ - * /`` by a constant rounds once)."""
        size = magnitude(boxes[0], errors[0]) * self.scale.abs() + self.offset
        bound = errors[0] * self.scale.abs() + precision.gamma(self.ops) * size + precision.absolute(self.ops)
        return in_range(bound, size, precision)

    def channel_vectors(self, channels: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(scale, shift) as per-channel vectors of length ``channels`` if they are constant over the rest
        of the shape (so the layer can fold into a preceding Linear/Conv2d), else None."""
        out = []
        for t in (self.scale, self.shift):
            if t.dim() == 0:
                out.append(t.expand(channels).clone())
                continue
            flat = t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(-1, 1)
            if flat.shape[0] != channels or bool((flat != flat[:, :1]).any()):
                return None
            out.append(flat[:, 0].clone())
        return out[0], out[1]

    def __repr__(self) -> str:
        return f"Scale({self.source}, shape={tuple(self.scale.shape)})"


def _onnx_batchnorm(node: OnnxNode) -> Any:
    x, scale, bias, mean, var = node.inputs[:5]
    dim = node.probe(x).dim()
    if dim not in (2, 3, 4):
        raise UnsupportedLayer(f"model has BatchNormalization node {node.name!r} on a {dim}-D tensor")
    cls = nn.BatchNorm2d if dim == 4 else nn.BatchNorm1d
    bn = cls(len(mean), eps=float(node.attrs.get("epsilon", 1e-5)))
    assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats=True
    with torch.no_grad():
        bn.weight.copy_(onnx_tensor(scale))
        bn.bias.copy_(onnx_tensor(bias))
        bn.running_mean.copy_(onnx_tensor(mean))
        bn.running_var.copy_(onnx_tensor(var))
    return node.apply(bn, x)


def _fold_into_linear(mod: nn.Module | None, scale: torch.Tensor, shift: torch.Tensor) -> bool:
    """``Linear`` followed by a per-output bias add (MatMul + Add): fold it into the bias."""
    if not isinstance(mod, nn.Linear) or not bool(torch.all(scale == 1)):
        return False
    if shift.dim() > 1 and any(s != 1 for s in shift.shape[:-1]) or shift.shape[-1:] not in (
            torch.Size([mod.out_features]), torch.Size([1])):
        return False
    with torch.no_grad():
        bias = shift.reshape(-1).expand(mod.out_features).clone()
        if mod.bias is None:
            mod.bias = nn.Parameter(bias)
        else:
            mod.bias.add_(bias)
    return True
