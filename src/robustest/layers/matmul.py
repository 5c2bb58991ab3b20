"""``x @ W`` or ``W @ x`` with a constant ``W``, broadcast as numpy/ONNX ``MatMul`` broadcasts
(``torch.matmul`` or ``@`` in a torch model; ONNX ``MatMul`` with a constant on either side, in the forms
exporters emit: ``(N, s, n) @ (n, m)``, ``(p, q) @ (N, q, r)``, a constant with leading broadcast
dimensions of size 1...).

Linear in ``x`` without a constant, so every rule is the affine layers' (:class:`~.base.AffineLayer`:
interval by centre and radius through ``|W|``, CROWN by the transposed product, LP/MILP by the dense
matrix) and the branch and bound reads it as any linear layer. The plain ``(N, n) @ (n, m)`` imports as
:class:`~.linear.Linear`. A product of two values computed from the input (bilinear) has no rule: it is
refused with the node's name (attacks still run through onnxruntime).

    >>> import torch
    >>> layer = MatMul(torch.ones(2, 3, dtype=torch.float64), "left")    # (2, 3) @ x
    >>> layer.forward(torch.ones(1, 3, 4, dtype=torch.float64)).shape
    torch.Size([1, 2, 4])
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from .base import AffineLayer, Call, OnnxNode, randn
from .registry import register
from .scale import onnx_tensor


class MatMulModule(nn.Module):
    """``x @ weight`` (``side="right"``) or ``weight @ x`` (``"left"``), the module the ONNX importer builds.

        >>> MatMulModule(torch.ones(3, 2), "right")(torch.ones(5, 4, 3)).shape
        torch.Size([5, 4, 2])
    """

    weight: torch.Tensor

    def __init__(self, weight: torch.Tensor, side: str) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # traced by torch.fx as a matmul call
        return torch.matmul(x, self.weight) if self.side == "right" else torch.matmul(self.weight, x)

    def extra_repr(self) -> str:
        return f"side={self.side}, weight={tuple(self.weight.shape)}"


_BILINEAR = ("multiplying two values computed from the input (bilinear): robustest has no bound rule for "
             "that product, so no proof is possible")
_ACROSS = "contracting the batch dimension (constant @ a 2-D input)"


def _refuse(name: str, why: str, what: str = "MatMul node") -> UnsupportedLayer:
    return UnsupportedLayer(f"model has {what} {name!r} {why}. Fix: export the product with a constant "
                            "matrix on one side and the batch in dimension 0 (attacks still run on the model "
                            "through onnxruntime)")


@register
class MatMul(AffineLayer):
    kind = "MatMul"
    summary = "x @ W or W @ x by a constant W, broadcast; torch.matmul, ONNX MatMul"
    functions = (torch.matmul, operator.matmul, "matmul")
    onnx_ops = ("MatMul",)

    def __init__(self, weight: torch.Tensor, side: str) -> None:
        if side not in ("left", "right"):
            raise ValueError(f"side={side!r}: expected 'left' (W @ x) or 'right' (x @ W)")
        self.weight = weight.detach().clone()
        self.side = side

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[MatMul, list[tuple[int, ...]]]:
        return cls(randn(gen, 1, 4, 2), "left"), [(2, 3)]  # (1, 4, 2) @ (B, 2, 3): broadcast over the batch

    @classmethod
    def from_call(cls, call: Call) -> MatMul:
        if len(call.inputs) != 1:
            raise _refuse(call.name, _BILINEAR, "matmul call")
        if not call.binary or call.constant is None or not call.keeps_batch or not call.out_shape:
            raise _refuse(call.name, "with a constant that multiplies across the batch, or no output "
                                     "dimension besides it", "matmul call")
        side = "right" if call.tensor_first else "left"
        if side == "left" and len(call.in_shapes[0]) < 2:
            raise _refuse(call.name, _ACROSS, "matmul call")
        return cls(call.constant, side)

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        a, b = node.inputs
        if node.is_activation(a) and node.is_activation(b):
            raise _refuse(node.name, _BILINEAR)
        side = "right" if node.is_activation(a) else "left"
        x, w = (a, np.asarray(b)) if side == "right" else (b, np.asarray(a))
        rank = node.probe(x).dim()  # the batch included
        if side == "left" and rank < 3:
            raise _refuse(node.name, _ACROSS)
        if w.ndim > rank or (w.ndim == rank and w.shape[0] != 1) or w.ndim == 0:
            raise _refuse(node.name, f"with a constant of shape {w.shape} that multiplies across the batch "
                                     f"of an input of rank {rank}")
        out = MatMulModule(onnx_tensor(w), side)
        if out(node.probe(x)).dim() < 2:
            raise _refuse(node.name, "whose output has no dimension besides the batch")
        return node.apply(out, x)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.linear(xs[0])

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight) if self.side == "right" else torch.matmul(self.weight, x)

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.abs()
        return torch.matmul(x, w) if self.side == "right" else torch.matmul(w, x)

    def terms(self, in_shape: tuple[int, ...]) -> tuple[int, str]:
        inner = self.weight.shape[0] if self.weight.dim() == 1 else \
            self.weight.shape[-2] if self.side == "right" else self.weight.shape[-1]
        return int(inner), "matmul"

    def __repr__(self) -> str:
        w = f"W{tuple(self.weight.shape)}"
        return f"MatMul(x @ {w})" if self.side == "right" else f"MatMul({w} @ x)"
