"""Elementwise affine ``y = x * scale + shift`` (scale/shift broadcast over the batch-free shape).

This is what an eval-mode BatchNorm becomes when it cannot be folded into the layer before it, and what an
input normalisation ``(x - mean) / std`` becomes (``scale = 1/std``, ``shift = -mean/std``). Normalisation
is not folded into a following convolution because zero padding would then pad the wrong value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .base import AffineLayer, Box


class Scale(AffineLayer):
    kind = "Scale"

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, *, source: str = "affine") -> None:
        self.scale = torch.as_tensor(scale).detach().clone()
        self.shift = torch.as_tensor(shift).detach().clone()
        self.source = source  # "batchnorm" or "normalize" or "affine": only for messages and folding

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
