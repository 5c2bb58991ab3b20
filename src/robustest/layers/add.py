"""Residual ``a + b`` of two same-shaped tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..solvers.base import Problem
from .base import Box, Layer, NpBox, widen


class Add(Layer):
    kind = "Add"
    arity = 2

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0] + xs[1]

    def interval(self, *boxes: Box) -> Box:
        return boxes[0][0] + boxes[1][0], boxes[0][1] + boxes[1][1]

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        return [A, A], A.new_zeros(A.shape[:2])

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        lo, hi = widen(*out_box)
        y = problem.add_vars(lo, hi)
        n = y.size
        rows = np.concatenate([np.arange(n)] * 3)
        cols = np.concatenate([y, ins[0], ins[1]])
        vals = np.concatenate([np.ones(n), -np.ones(n), -np.ones(n)])
        problem.add_rows(rows, cols, vals, lo=np.zeros(n), hi=np.zeros(n))
        return y
