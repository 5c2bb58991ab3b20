"""``nn.Flatten``, ``view``/``reshape``/``flatten`` calls: the same numbers in a new (batch-free) shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..solvers.base import Problem
from .base import Box, Layer, NpBox


class Reshape(Layer):
    kind = "Reshape"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(int(s) for s in shape)  # batch-free output shape

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0].reshape((xs[0].shape[0],) + self.shape)

    def interval(self, *boxes: Box) -> Box:
        return self.forward(boxes[0][0]), self.forward(boxes[0][1])

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        in_shape = tuple(boxes[0][0].shape[1:])
        return [A.reshape(A.shape[:2] + in_shape)], A.new_zeros(A.shape[:2])

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        return ins[0]

    def __repr__(self) -> str:
        return f"Reshape{self.shape}"
