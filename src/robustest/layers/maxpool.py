"""``nn.MaxPool2d`` (dilation 1).

* IBP: monotone, so max-pool the lower and the upper bounds.
* CROWN: lower line ``y >= x_j`` with ``j`` the window's input of largest lower bound; upper line
  ``y = x_j`` when one input provably dominates its window, else the constant ``max_i u_i``.
* LP: ``y >= x_i`` for all i and ``y <= x_i + (U - l_i)(1 - d_i)``, ``sum d = 1`` with ``d`` in [0, 1];
  MILP: the same with binary ``d`` (exact). Inputs that can never be the maximum are left out.

ONNX ``MaxPool`` (2-D, symmetric pads, floor mode) imports as ``nn.MaxPool2d``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..solvers.base import Problem
from .base import Box, Layer, NpBox, OnnxNode, onnx_pool_args, pair, widen
from .registry import register, unsupported
from .rounding import Precision


@register
class MaxPool2d(Layer):
    kind = "MaxPool2d"
    nonlinear = True
    summary = "without dilation, ceil_mode or return_indices"
    modules = (nn.MaxPool2d,)
    onnx_ops = ("MaxPool",)

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[MaxPool2d, list[tuple[int, ...]]]:
        return cls((2, 2), (2, 2), (1, 1)), [(2, 3, 3)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> MaxPool2d:
        assert isinstance(mod, nn.MaxPool2d)
        if pair(mod.dilation) != (1, 1) or mod.ceil_mode or mod.return_indices:
            raise unsupported(type(mod).__name__, path, "dilation, ceil_mode and return_indices are not supported")
        return cls(pair(mod.kernel_size), pair(mod.stride if mod.stride is not None else mod.kernel_size),
                   pair(mod.padding))

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        k, stride, pads = onnx_pool_args(node)
        return node.apply(nn.MaxPool2d(k, stride=stride, padding=pads,
                                       dilation=tuple(node.attrs.get("dilations", [1, 1]))), node.inputs[0])

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int], *,
                 ceil_mode: bool = False) -> None:
        self.kernel, self.stride, self.padding, self.ceil_mode = kernel, stride, padding, ceil_mode

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(xs[0], self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)

    def interval(self, *boxes: Box) -> Box:
        return self.forward(boxes[0][0]), self.forward(boxes[0][1])

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        """Exact in floating point, and the max of a window moves by at most its inputs' largest error."""
        return self.forward(errors[0])

    def _windows(self, x: torch.Tensor, fill: float) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, k*k, L) windows, padding with ``fill``."""
        ph, pw = self.padding
        xp = F.pad(x, (pw, pw, ph, ph), value=fill)
        B, C = x.shape[:2]
        cols = F.unfold(xp.reshape(B * C, 1, *xp.shape[2:]), self.kernel, stride=self.stride)
        return cols.reshape(B, C, cols.shape[1], cols.shape[2])

    def _scatter(self, coef: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
        """Transpose of :meth:`_windows`: (B, M, C, k*k, L) coefficients -> (B, M, C, H, W)."""
        B, M, C, kk, L = coef.shape
        _, H, W = in_shape
        ph, pw = self.padding
        full = F.fold(coef.reshape(B * M * C, kk, L), (H + 2 * ph, W + 2 * pw), self.kernel, stride=self.stride)
        return full[:, 0, ph:ph + H, pw:pw + W].reshape(B, M, C, H, W)

    def _check(self, x: torch.Tensor) -> None:
        if self.ceil_mode:
            from ..errors import UnsupportedLayer
            raise UnsupportedLayer("MaxPool2d(ceil_mode=True) has no certification rule; use ceil_mode=False")

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        lo, hi = boxes[0]
        self._check(lo)
        inf = float("inf")
        wl, wu = self._windows(lo, -inf), self._windows(hi, -inf)  # (B, C, kk, L)
        best = wl.argmax(2, keepdim=True)
        pick = torch.zeros_like(wl).scatter_(2, best, 1.0)
        lmax = wl.gather(2, best)
        others_u = torch.where(pick.bool(), torch.full_like(wu, -inf), wu).amax(2, keepdim=True)
        dominant = (lmax >= others_u).to(lo.dtype)  # (B, C, 1, L)
        umax = wu.amax(2)  # (B, C, L)
        B, M = A.shape[:2]
        C, L = wl.shape[1], wl.shape[3]
        Aw = A.reshape(B, M, C, 1, L)
        pos, neg = Aw.clamp(min=0), Aw.clamp(max=0)
        pick_ = pick.unsqueeze(1)
        coef = pos * pick_ + neg * pick_ * dominant.unsqueeze(1)
        const = (neg[:, :, :, 0, :] * (1 - dominant[:, :, 0, :]).unsqueeze(1) * umax.unsqueeze(1)).flatten(2).sum(-1)
        return [self._scatter(coef, tuple(lo.shape[1:]))], const

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        shape = tuple(in_shapes[0])
        pos = torch.arange(int(np.prod(shape)), dtype=torch.float64).reshape((1,) + shape)
        win = self._windows(pos, -1.0)[0].round().long().numpy()  # (C, kk, L) flat input positions
        raw_lo, raw_hi = boxes[0]
        lo, hi = widen(raw_lo, raw_hi)  # big-M constants get the slack; dominance uses the bounds as CROWN does
        x = ins[0]
        C, _kk, L = win.shape
        out = np.empty(C * L, dtype=np.int64)
        for c in range(C):
            for w in range(L):
                m = win[c, :, w]
                m = m[m >= 0]
                j = m[np.argmax(raw_lo[m])]
                rest = m[m != j]
                if rest.size == 0 or raw_lo[j] >= raw_hi[rest].max():  # x_j is the maximum (ties included)
                    out[c * L + w] = x[j]
                    continue
                lmax = lo[m].max()
                m = m[hi[m] >= lmax]  # inputs that can be the maximum
                U = hi[m].max()
                y = int(problem.add_vars([lmax], [U])[0])
                k = m.size
                r = np.arange(k)
                problem.add_rows(np.r_[r, r], np.r_[np.full(k, y), x[m]], np.r_[np.ones(k), -np.ones(k)],
                                 lo=np.zeros(k), hi=np.full(k, np.inf))
                d = problem.add_vars(np.zeros(k), np.ones(k), integer=exact)
                problem.add_rows(np.zeros(k, dtype=np.int64), d, np.ones(k), lo=[1.0], hi=[1.0])
                big = U - lo[m]
                problem.add_rows(np.r_[r, r, r], np.r_[np.full(k, y), x[m], d], np.r_[np.ones(k), -np.ones(k), big],
                                 lo=np.full(k, -np.inf), hi=big)
                out[c * L + w] = y
        return out
