"""``nn.AvgPool2d`` (a linear map with non-negative weights; ``count_include_pad`` honoured).

ONNX ``AveragePool`` (2-D, symmetric pads, floor mode) imports as ``nn.AvgPool2d``, and
``GlobalAveragePool`` as the ``nn.AvgPool2d`` whose kernel is the whole image; ``nn.AdaptiveAvgPool2d``
whose output size divides the input's is the same average pool.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import AffineLayer, OnnxNode, onnx_pool_args, pair
from .registry import register, unsupported


@register
class AvgPool2d(AffineLayer):
    kind = "AvgPool2d"
    summary = "without divisor_override"
    modules = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
    onnx_ops = ("AveragePool", "GlobalAveragePool")

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[AvgPool2d, list[tuple[int, ...]]]:
        return cls((2, 2), (1, 1), (1, 1), count_include_pad=False), [(2, 3, 3)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> AvgPool2d:
        if isinstance(mod, nn.AdaptiveAvgPool2d):
            return cls.adaptive(mod, path, in_shape)
        assert isinstance(mod, nn.AvgPool2d)
        if mod.divisor_override is not None:
            raise unsupported(type(mod).__name__, path, "divisor_override")
        return cls(pair(mod.kernel_size), pair(mod.stride if mod.stride is not None else mod.kernel_size),
                   pair(mod.padding), ceil_mode=mod.ceil_mode, count_include_pad=mod.count_include_pad)

    @classmethod
    def adaptive(cls, mod: nn.AdaptiveAvgPool2d, path: str, in_shape: tuple[int, ...]) -> AvgPool2d:
        """An adaptive average pool whose output size divides the input's: windows of equal size."""
        hw = tuple(in_shape[-2:])
        raw = mod.output_size
        size = tuple(raw) if isinstance(raw, tuple) else (raw, raw)
        out = tuple(hw[d] if s is None else int(s) for d, s in enumerate(size))
        if len(in_shape) != 3 or any(hw[d] % out[d] for d in range(2)):
            raise unsupported(type(mod).__name__, path, f"output size {out} does not divide the input's {hw}")
        k = (hw[0] // out[0], hw[1] // out[1])
        return cls(k, k, (0, 0))

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        if node.op == "GlobalAveragePool":
            probe = node.probe(node.inputs[0])
            if probe.dim() != 4:
                from ..errors import UnsupportedLayer

                raise UnsupportedLayer(f"model has GlobalAveragePool node {node.name!r} on a {probe.dim()}-D "
                                       "tensor; robustest imports the 2-D one. Fix: export a 2-D network")
            return node.apply(nn.AvgPool2d((int(probe.shape[-2]), int(probe.shape[-1]))), node.inputs[0])
        k, stride, pads = onnx_pool_args(node)
        return node.apply(nn.AvgPool2d(k, stride=stride, padding=pads,
                                       count_include_pad=bool(node.attrs.get("count_include_pad", 0))),
                          node.inputs[0])

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int], *,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(xs[0], self.kernel, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)  # the weights are >= 0

    def bias_out(self, in_shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return self.forward(like.new_zeros((1,) + tuple(in_shape)))[0]

    def terms(self, in_shape: tuple[int, ...]) -> tuple[int, str]:
        return self.kernel[0] * self.kernel[1] + 2, "elementwise"  # the window's sum, then the division

    def __repr__(self) -> str:
        return f"AvgPool2d(k={self.kernel}, s={self.stride}, p={self.padding})"
