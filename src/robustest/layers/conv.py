"""``nn.Conv2d`` with stride, padding (zeros), dilation and groups. BatchNorm2d after it is folded in.

ONNX ``Conv`` (2-D, explicit pads) imports as ``nn.Conv2d``; asymmetric pads as an ``nn.ZeroPad2d`` before it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedLayer
from .base import AffineLayer, Layer, OnnxNode, pair, randn
from .registry import register, unsupported
from .scale import Scale, onnx_tensor


@register
class Conv2d(AffineLayer):
    kind = "Conv2d"
    summary = "zero padding"
    modules = (nn.Conv2d,)
    onnx_ops = ("Conv",)

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Conv2d, list[tuple[int, ...]]]:
        return cls(randn(gen, 4, 2, 3, 3), randn(gen, 4), stride=(2, 1), padding=(1, 0), groups=2), [(4, 5, 5)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Conv2d:
        assert isinstance(mod, nn.Conv2d)
        kind = type(mod).__name__
        if mod.padding_mode != "zeros":
            raise unsupported(kind, path, f"padding_mode={mod.padding_mode!r}")
        padding = mod.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            else:
                total = [d * (k - 1) for d, k in zip(mod.dilation, mod.kernel_size)]
                if any(t % 2 for t in total):
                    raise unsupported(kind, path, "padding='same' with an even kernel pads asymmetrically")
                padding = (total[0] // 2, total[1] // 2)
        return cls(mod.weight, mod.bias, stride=pair(mod.stride), padding=pair(padding),
                   dilation=pair(mod.dilation), groups=mod.groups)

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        ins, at = node.inputs, node.attrs
        x, w = ins[0], np.asarray(ins[1])
        if w.ndim != 4 or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedLayer(f"model has Conv node {node.name!r} that is not 2-D with explicit pads; "
                                   "robustest imports Conv2d only. Fix: export with explicit padding")
        pads = list(at.get("pads", [0, 0, 0, 0]))
        groups = at.get("group", 1)
        conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(at.get("strides", [1, 1])),
                         dilation=tuple(at.get("dilations", [1, 1])), groups=groups, bias=len(ins) > 2,
                         padding=(pads[0], pads[1]) if pads[:2] == pads[2:] else 0)
        with torch.no_grad():
            conv.weight.copy_(onnx_tensor(w))
            if len(ins) > 2 and conv.bias is not None:
                conv.bias.copy_(onnx_tensor(ins[2]))
        if pads[:2] != pads[2:]:  # asymmetric: ONNX pads are (top, left, bottom, right)
            x = node.apply(nn.ZeroPad2d((pads[1], pads[3], pads[0], pads[2])), x)
        return node.apply(conv, x)

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int] = (1, 1), groups: int = 1) -> None:
        self.weight = weight.detach().clone()
        self.bias = bias.detach().clone() if bias is not None else weight.new_zeros(weight.shape[0])
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def _conv(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self._conv(xs[0], self.weight, self.bias)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self.weight, None)

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self.weight.abs(), None)

    def transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        """``A W`` through the transposed convolution (output_padding recovers the exact input size)."""
        B, M = A.shape[:2]
        out_hw = A.shape[-2:]
        k = self.weight.shape[-2:]
        extra = [in_shape[1 + d] - ((out_hw[d] - 1) * self.stride[d] - 2 * self.padding[d]
                                    + self.dilation[d] * (k[d] - 1) + 1) for d in range(2)]
        flat = A.reshape((B * M,) + tuple(A.shape[2:]))
        x = F.conv_transpose2d(flat, self.weight, None, self.stride, self.padding, tuple(extra), self.groups,
                               self.dilation)
        return x.reshape((B, M) + tuple(in_shape))

    def bias_out(self, in_shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        out = self.forward(like.new_zeros((1,) + tuple(in_shape)))[0]
        return out

    def terms(self, in_shape: tuple[int, ...]) -> tuple[int, str]:
        return int(np.prod(self.weight.shape[1:])) + 1, "conv"

    def scaled(self, scale: torch.Tensor, shift: torch.Tensor) -> Conv2d:
        """This convolution followed by ``y * scale + shift`` per output channel, as one Conv2d."""
        return Conv2d(self.weight * scale[:, None, None, None], self.bias * scale + shift, stride=self.stride,
                      padding=self.padding, dilation=self.dilation, groups=self.groups)

    def followed_by(self, nxt: Layer) -> Conv2d | None:
        """A following per-channel :class:`Scale` (BatchNorm2d, constant affine) folds into the kernel and bias."""
        vec = nxt.channel_vectors(self.weight.shape[0]) if isinstance(nxt, Scale) else None
        return None if vec is None else self.scaled(*vec)

    def __repr__(self) -> str:
        o, i = self.weight.shape[:2]
        return f"Conv2d({i}->{o}, k={tuple(self.weight.shape[2:])}, s={self.stride}, p={self.padding})"
