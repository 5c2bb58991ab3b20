"""``nn.Linear``: ``y = x W^T + b`` (BatchNorm1d after it is folded into W and b by the graph reader)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .base import AffineLayer, Box


class Linear(AffineLayer):
    kind = "Linear"

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

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        return [A @ self.weight], A @ self.bias

    def matrix(self, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        return (self.weight.detach().cpu().double().numpy(), self.bias.detach().cpu().double().numpy())

    def scaled(self, scale: torch.Tensor, shift: torch.Tensor) -> Linear:
        """This layer followed by ``y * scale + shift`` (per output feature), as one Linear."""
        return Linear(self.weight * scale[:, None], self.bias * scale + shift)

    def __repr__(self) -> str:
        return f"Linear({self.weight.shape[1]}->{self.weight.shape[0]})"
