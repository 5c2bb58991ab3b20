"""What every layer kind provides, and the shared machinery of the affine (linear + bias) layers.

A layer has four faces, one per certifier:

* ``forward(*xs)`` — the plain computation (batched);
* ``interval(*boxes)`` — IBP: elementwise bounds of the output from bounds of the inputs;
* ``backward(A, boxes, relax)`` — CROWN: given ``A`` of shape (B, M, *out_shape) such that the quantity
  to bound from below is ``sum(A * out)``, return linear coefficients on each input and the constant
  term (B, M) such that ``sum(A * out) >= sum(A_in * in) + const`` on the boxes;
* ``encode(problem, ins, boxes, out_box, exact)`` — LP/MILP: add variables and rows for one sample and
  return the output variables' indices (flattened in C order).

``boxes`` are the (sound) bounds of the layer's inputs: batched tensors for ``interval``/``backward``,
flat numpy arrays of one sample for ``encode``. Layers are immutable once built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from ..solvers.base import Problem

Box = tuple[torch.Tensor, torch.Tensor]
NpBox = tuple[np.ndarray, np.ndarray]

#: Intermediate bounds become variable bounds in LP/MILP; they are widened by this (relative + absolute)
#: slack so float rounding of a sound bound never cuts off a reachable point.
ENCODE_SLACK = 1e-6


def widen(lo: np.ndarray, hi: np.ndarray) -> NpBox:
    """``lo``/``hi`` pushed out by :data:`ENCODE_SLACK` (relative and absolute)."""
    pad = ENCODE_SLACK * (1.0 + np.maximum(np.abs(lo), np.abs(hi)))
    return lo - pad, hi + pad


_L = TypeVar("_L", bound="Layer")


class Layer:
    """Base class of every layer kind. ``kind`` names it in messages."""

    kind: ClassVar[str] = "layer"
    #: True for layers whose CROWN rule needs the bounds of their inputs (ReLU, MaxPool).
    nonlinear: ClassVar[bool] = False
    #: Number of inputs (Add has 2).
    arity: ClassVar[int] = 1

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def interval(self, *boxes: Box) -> Box:
        raise NotImplementedError

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        raise NotImplementedError

    def to(self: _L, device: torch.device, dtype: torch.dtype) -> _L:  # noqa: PYI019 - Self needs 3.11
        """A copy with every tensor moved/cast (layers are immutable, so this returns a new one)."""
        new = object.__new__(type(self))
        for k, v in self.__dict__.items():
            new.__dict__[k] = v.to(device=device, dtype=dtype) if isinstance(v, torch.Tensor) else v
        new.__dict__.pop("_dense", None)
        return new

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AffineLayer(Layer):
    """A layer ``y = L(x) + b`` with ``L`` linear. Subclasses give ``linear`` (L without bias), ``bias_out``
    (b broadcast to the output shape, batch-free) and ``abs_linear`` (|L|); the rest follows."""

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def bias_out(self, in_shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        zero = like.new_zeros((1,) + tuple(in_shape))
        return self.forward(zero)[0]

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def interval(self, *boxes: Box) -> Box:
        lo, hi = boxes[0]
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        c, r = self.forward(mid), self.abs_linear(rad)
        return c - r, c + r

    def transpose(self, A: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        """``A L``: coefficients on the input, from coefficients ``A`` (B, M, *out) on the output."""
        B, M = A.shape[:2]
        x = A.new_zeros((B * M,) + tuple(in_shape))
        vjp = torch.func.vjp(self.linear, x)[1]
        return vjp(A.reshape((B * M,) + tuple(A.shape[2:])))[0].reshape((B, M) + tuple(in_shape))

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        in_shape = tuple(boxes[0][0].shape[1:])
        b = self.bias_out(in_shape, A)
        const = (A * b).flatten(2).sum(-1)
        return [self.transpose(A, in_shape)], const

    def matrix(self, in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``(W, b)`` with ``y.flatten() = W @ x.flatten() + b`` (for LP/MILP encodings)."""
        cache = self.__dict__.setdefault("_dense", {})
        if in_shape in cache:
            return cache[in_shape]
        n = int(np.prod(in_shape))
        eye = torch.eye(n, dtype=torch.float64).reshape((n,) + tuple(in_shape))
        layer = self.to(torch.device("cpu"), torch.float64)
        cols = layer.linear(eye).reshape(n, -1)  # row j = L e_j
        b = layer.bias_out(in_shape, eye).reshape(-1)
        cache[in_shape] = (cols.T.contiguous().numpy(), b.numpy())
        return cache[in_shape]

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        W, b = self.matrix(tuple(in_shapes[0]))
        return encode_affine(problem, ins[0], W, b, out_box)


def encode_affine(problem: Problem, x: np.ndarray, W: np.ndarray, b: np.ndarray, out_box: NpBox) -> np.ndarray:
    """New variables ``y = W x + b`` bounded by the (widened) ``out_box``; returns their indices."""
    lo, hi = widen(*out_box)
    y = problem.add_vars(lo, hi)
    rr, cc = np.nonzero(W)
    rows = np.concatenate([rr, np.arange(y.size)])
    cols = np.concatenate([x[cc], y])
    vals = np.concatenate([W[rr, cc], -np.ones(y.size)])
    problem.add_rows(rows, cols, vals, lo=-b, hi=-b)
    return y
