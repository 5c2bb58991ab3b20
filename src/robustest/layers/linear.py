"""``nn.Linear``: ``y = x W^T + b`` (BatchNorm1d after it is folded into W and b by the graph reader).

ONNX ``Gemm`` (constant weight, no transA) and ``MatMul`` by a constant matrix import as ``nn.Linear``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from .base import AffineLayer, Box, Layer, OnnxNode, randn
from .registry import register, unsupported
from .scale import Scale, onnx_tensor


@register
class Linear(AffineLayer):
    kind = "Linear"
    summary = ""
    modules = (nn.Linear,)
    onnx_ops = ("Gemm", "MatMul")

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Linear, list[tuple[int, ...]]]:
        return cls(randn(gen, 3, 5), randn(gen, 3)), [(5,)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Linear:
        assert isinstance(mod, nn.Linear)
        if len(in_shape) != 1:
            raise unsupported(type(mod).__name__, path, f"applied to a {len(in_shape) + 1}-D tensor; flatten it first")
        return cls(mod.weight, mod.bias)

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        x, w, at = node.inputs[0], node.inputs[1], node.attrs
        if node.op == "MatMul":
            if not node.is_activation(x) or node.is_activation(w) or np.ndim(w) != 2:
                raise UnsupportedLayer(f"model has MatMul node {node.name!r} that is not input @ constant "
                                       "matrix. Fix: export a plain Linear")
            lin = nn.Linear(w.shape[0], w.shape[1], bias=False)
            with torch.no_grad():
                lin.weight.copy_(onnx_tensor(np.asarray(w).T))
            return node.apply(lin, x)
        if not node.is_activation(x) or node.is_activation(w) or at.get("transA", 0):
            raise UnsupportedLayer(f"model has Gemm node {node.name!r} with a non-constant weight or transA; "
                                   "robustest imports only x @ W + c with constant W. Fix: export a plain Linear")
        w = np.asarray(w) * at.get("alpha", 1.0)
        w = w if at.get("transB", 0) else w.T  # -> (out, in)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=True)
        ins = node.inputs
        c = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros(w.shape[0], np.float32)
        bias = np.broadcast_to(np.asarray(c) * at.get("beta", 1.0), (1, w.shape[0])).reshape(-1)
        with torch.no_grad():
            lin.weight.copy_(onnx_tensor(w))
            lin.bias.copy_(onnx_tensor(bias))
        return node.apply(lin, x)

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight = weight.detach().clone()
        self.bias = (bias.detach().clone() if bias is not None
                     else weight.new_zeros(weight.shape[0]))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(xs[0], self.weight, self.bias)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.abs().T

    def transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        return A @ self.weight

    def abs_transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        return A @ self.weight.abs()

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        return [A @ self.weight], A @ self.bias

    def terms(self, in_shape: tuple[int, ...]) -> tuple[int, str]:
        return self.weight.shape[1] + 1, "matmul"

    def matrix(self, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        return (self.weight.detach().cpu().double().numpy(), self.bias.detach().cpu().double().numpy())

    def scaled(self, scale: torch.Tensor, shift: torch.Tensor) -> Linear:
        """This layer followed by ``y * scale + shift`` (per output feature), as one Linear."""
        return Linear(self.weight * scale[:, None], self.bias * scale + shift)

    def followed_by(self, nxt: Layer) -> Linear | None:
        """A following per-feature :class:`Scale` (BatchNorm1d, constant affine) folds into W and b."""
        vec = nxt.channel_vectors(self.weight.shape[0]) if isinstance(nxt, Scale) else None
        return None if vec is None else self.scaled(*vec)

    def __repr__(self) -> str:
        return f"Linear({self.weight.shape[1]}->{self.weight.shape[0]})"
