"""``nn.Conv2d`` with stride, padding (zeros), dilation and groups. BatchNorm2d after it is folded in."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import AffineLayer


class Conv2d(AffineLayer):
    kind = "Conv2d"

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

    def scaled(self, scale: torch.Tensor, shift: torch.Tensor) -> Conv2d:
        """This convolution followed by ``y * scale + shift`` per output channel, as one Conv2d."""
        return Conv2d(self.weight * scale[:, None, None, None], self.bias * scale + shift, stride=self.stride,
                      padding=self.padding, dilation=self.dilation, groups=self.groups)

    def __repr__(self) -> str:
        o, i = self.weight.shape[:2]
        return f"Conv2d({i}->{o}, k={tuple(self.weight.shape[2:])}, s={self.stride}, p={self.padding})"
