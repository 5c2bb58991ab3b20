"""Eval-mode identities: ``nn.Identity``, the dropouts, ``clone``/``detach``/``contiguous`` calls, ONNX
``Identity``/``Dropout`` (a ``Cast`` is the importer's: only a widening float cast is an identity). They vanish from the graph (the readers return None for them); the
rules below are the identity's, for a graph built by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..solvers.base import Problem
from .base import Box, Call, Layer, NpBox, OnnxNode, signed_map_difference
from .registry import register
from .rounding import Precision


@register
class Identity(Layer):
    kind = "Identity"
    summary = "in eval mode; dropout/identity/contiguous/clone/detach calls"
    modules = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
    functions = ("dropout", "identity", "contiguous", "clone", "detach")
    onnx_ops = ("Identity", "Dropout")
    dense_role = "reshape"

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Identity, list[tuple[int, ...]]]:
        return cls(), [(5,)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> None:
        return None

    @classmethod
    def from_call(cls, call: Call) -> None:
        return None

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        return node.inputs[0]

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return xs[0]

    def interval(self, *boxes: Box) -> Box:
        return boxes[0]

    difference = signed_map_difference
    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        return [A], A.new_zeros(A.shape[:2])

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        return errors[0]

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        return ins[0]
