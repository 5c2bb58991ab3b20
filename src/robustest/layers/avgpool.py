"""``nn.AvgPool2d`` (a linear map with non-negative weights; ``count_include_pad`` honoured)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import AffineLayer


class AvgPool2d(AffineLayer):
    kind = "AvgPool2d"

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

    def __repr__(self) -> str:
        return f"AvgPool2d(k={self.kernel}, s={self.stride}, p={self.padding})"
