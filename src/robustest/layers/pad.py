"""Constant padding ``nn.ConstantPad1d/2d/3d`` (and ``nn.ZeroPad*``): an affine map that copies the input
and fills the border with a constant; negative pads crop.

ONNX ``Pad`` in constant mode (pads as an attribute before opset 11, as a constant input after; the
optional constant value and axes inputs) imports as the ``nn.ConstantPad*d`` of the padded trailing
dimensions; a Pad whose pads are all zero (as in VNN-COMP's verivital nets) vanishes. Pads on the batch
dimension and the reflect/edge/wrap modes are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedLayer
from ..solvers.base import Problem
from .base import AffineLayer, Box, NpBox, OnnxNode
from .registry import register
from .rounding import Precision

_PAD_MODULES: dict[int, Any] = {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}


@register
class Pad(AffineLayer):
    kind = "Pad"
    summary = "a constant border; negative pads crop"
    modules = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d)
    onnx_ops = ("Pad",)

    def __init__(self, padding: Sequence[int], value: float = 0.0) -> None:
        self.padding = tuple(int(p) for p in padding)  # F.pad order: (last_begin, last_end, next-to-last...)
        self.value = float(value)

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Pad, list[tuple[int, ...]]]:
        return cls((1, 2, 0, -1, 1, 0), value=0.5), [(2, 3, 4)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Pad:
        assert isinstance(mod, tuple(_PAD_MODULES.values()))
        return cls(mod.padding, float(mod.value))  # type: ignore[arg-type]

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        x, at = node.inputs[0], node.attrs
        mode = at.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        rank = node.probe(x).dim()
        ins = list(node.inputs) + [None] * 4
        if mode != "constant" or any(node.is_activation(v) for v in ins[1:4] if v is not None):
            raise UnsupportedLayer(f"model has Pad node {node.name!r} in mode {mode!r} or with pads computed "
                                   "from the input; robustest imports constant padding by constant pads. "
                                   "Fix: export with mode='constant' and constant folding")
        pads = [int(p) for p in np.asarray(at["pads"] if "pads" in at else ins[1]).reshape(-1)]
        value = float(at.get("value", 0.0)) if ins[2] is None else float(np.asarray(ins[2]).reshape(-1)[0])
        axes = list(range(rank)) if ins[3] is None else [int(a) % rank for a in np.asarray(ins[3]).reshape(-1)]
        full = [0] * (2 * rank)
        for k, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[k], pads[len(axes) + k]
        if full[0] or full[rank]:
            raise UnsupportedLayer(f"model has Pad node {node.name!r} that pads the batch dimension. Fix: pad "
                                   "the other dimensions only")
        if not any(full):
            return x
        first = min(ax for ax in range(1, rank) if full[ax] or full[rank + ax])
        dims = rank - first
        if dims > 3:
            raise UnsupportedLayer(f"model has Pad node {node.name!r} padding {dims} trailing dimensions; "
                                   "robustest pads at most 3. Fix: pad the spatial dimensions only")
        padding = [p for ax in range(rank - 1, first - 1, -1) for p in (full[ax], full[rank + ax])]
        return node.apply(_PAD_MODULES[dims](tuple(padding), value), x)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return F.pad(xs[0], self.padding, "constant", self.value)

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        return self.linear(errors[0])  # moves numbers; the padding constant is exact

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.padding, "constant", 0.0)

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        """Coefficients on the input: the output's without the border (cropped entries get 0)."""
        return F.pad(A, tuple(-p for p in self.padding), "constant", 0.0)

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        """The input's variables where the output copies them, fixed new ones on the border."""
        shape = tuple(in_shapes[0])
        src = torch.arange(1, int(np.prod(shape)) + 1, dtype=torch.float64, device="cpu").reshape((1,) + shape)
        idx = F.pad(src, self.padding, "constant", 0.0).reshape(-1).long().numpy() - 1
        out = np.empty(idx.size, dtype=np.asarray(ins[0]).dtype)
        inner = idx >= 0
        out[inner] = np.asarray(ins[0])[idx[inner]]
        border = int((~inner).sum())
        if border:
            out[~inner] = problem.add_vars(np.full(border, self.value), np.full(border, self.value))
        return out

    def __repr__(self) -> str:
        return f"Pad({self.padding}, value={self.value:g})"
