"""``nn.ReLU`` / ``F.relu`` / ``torch.relu``.

* IBP: monotone, so ``[relu(l), relu(u)]``.
* CROWN: on an unstable neuron (``l < 0 < u``) the upper line is the chord ``u (x - l) / (u - l)``; the
  lower line is ``alpha * x`` with ``alpha`` in [0, 1] — adaptive (1 when ``u > -l``, else 0) unless
  optimised slopes are passed in ``relax["alpha"]`` (alpha-CROWN). Any alpha in [0, 1] is sound.
* ONNX ``Clip``/``Max``/``Min`` with constants are ReLUs between constant affine maps, exactly:
  ``max(x, c) = relu(x - c) + c``, ``min(x, c) = c - relu(c - x)``, ``clip(x, a, b) = min(max(x, a), b)``
  (and of two activations ``max(a, b) = relu(a - b) + b``, ``min(a, b) = a - relu(a - b)``).
* LP: the triangle relaxation. MILP: the big-M encoding with one binary per unstable neuron, using the
  neuron's own bounds as the big-M constants; stable neurons get no binary.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..solvers.base import Problem
from .base import Box, Call, Coef, Layer, NpBox, OnnxNode, slope_difference, widen
from .registry import register
from .rounding import Precision


def relaxation(lo: torch.Tensor, hi: torch.Tensor, alpha: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slopes and intercept of the linear bounds ``lower_slope * x <= relu(x) <= upper_slope * x + upper_icpt``."""
    active = lo >= 0
    unstable = (lo < 0) & (hi > 0)
    # the chord hi / (hi - lo) of an unstable neuron (hi - lo > 0 there; 1 elsewhere only avoids 0 / 0)
    denom = torch.where(unstable, hi - lo, torch.ones_like(lo))
    up = torch.where(unstable, hi / denom, active.to(lo.dtype))
    icpt = torch.where(unstable, -lo * up, torch.zeros_like(lo))
    if alpha is None:
        low_unstable = (hi > -lo).to(lo.dtype)
    else:
        low_unstable = alpha.clamp(0.0, 1.0)
    low = torch.where(unstable, low_unstable, active.to(lo.dtype))
    return low, up, icpt


@register
class ReLU(Layer):
    kind = "ReLU"
    nonlinear = True
    monotone = True
    summary = "F.relu, torch.relu"
    modules = (nn.ReLU,)
    functions = (torch.relu, torch.nn.functional.relu, "relu")
    onnx_ops = ("Relu", "Clip", "Max", "Min")
    dense_role = "relu"

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[ReLU, list[tuple[int, ...]]]:
        return cls(), [(6,)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> ReLU:
        return cls()

    @classmethod
    def from_call(cls, call: Call) -> ReLU:
        return cls()

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        if node.op == "Relu":
            return node.apply(nn.ReLU(), node.inputs[0])
        return _onnx_clip(node)

    def bounded_inputs(self, box: Box) -> torch.Tensor:
        """Only unstable neurons: a stable ReLU's relaxation does not depend on its bounds."""
        return (box[0] < 0) & (box[1] > 0)

    def relax_init(self, box: Box, rows: int) -> torch.Tensor:
        """The adaptive lower slopes (1 where ``u > -l``, else 0), one per (sample, spec row, neuron)."""
        lo, hi = box
        return (hi > -lo).to(lo.dtype).unsqueeze(1).expand((lo.shape[0], rows) + tuple(lo.shape[1:])).clone()

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.relu(xs[0])

    def interval(self, *boxes: Box) -> Box:
        return torch.relu(boxes[0][0]), torch.relu(boxes[0][1])

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        lo, hi = boxes[0]
        alpha = (relax or {}).get("alpha")  # None, or (B, M, *shape): one slope per spec row
        low, up, icpt = relaxation(lo.unsqueeze(1), hi.unsqueeze(1), alpha)
        pos, neg = A.clamp(min=0), A.clamp(max=0)
        return [pos * low + neg * up], (neg * icpt).flatten(2).sum(-1)

    def difference(self, coef: Coef, boxes: Sequence[Box], errors: Sequence[torch.Tensor]) -> list[Coef]:
        """``relu(x + e) - relu(x) = s e`` with ``s`` in [0, 1]; 1 where the exact and computed inputs are
        both >= 0, 0 where both are <= 0."""
        active, dead = boxes[0][0] - errors[0] >= 0, boxes[0][1] + errors[0] <= 0
        one = torch.ones_like(boxes[0][0])
        return slope_difference(coef, torch.where(active, one, 0 * one), torch.where(dead, 0 * one, one))

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        """Exact in floating point and 1-Lipschitz: the input's error, none where both the exact and the
        computed input are <= 0 (both give 0)."""
        return torch.where(boxes[0][1] + errors[0] > 0, errors[0], torch.zeros_like(errors[0]))

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        x = ins[0]
        lo, hi = widen(*boxes[0])
        out = np.empty(x.size, dtype=np.int64)
        active, dead = lo >= 0, hi <= 0
        out[active] = x[active]
        if dead.any():
            out[dead] = problem.add_vars(np.zeros(int(dead.sum())), np.zeros(int(dead.sum())))
        uns = ~(active | dead)
        k = int(uns.sum())
        if k == 0:
            return out
        l, u, xu = lo[uns], hi[uns], x[uns]
        y = problem.add_vars(np.zeros(k), u)
        out[uns] = y
        r = np.arange(k)
        # y >= x
        problem.add_rows(np.r_[r, r], np.r_[y, xu], np.r_[np.ones(k), -np.ones(k)], lo=np.zeros(k),
                         hi=np.full(k, np.inf))
        if exact:
            d = problem.add_vars(np.zeros(k), np.ones(k), integer=True)
            # y <= u d
            problem.add_rows(np.r_[r, r], np.r_[y, d], np.r_[np.ones(k), -u], lo=np.full(k, -np.inf),
                             hi=np.zeros(k))
            # y <= x - l (1 - d)
            problem.add_rows(np.r_[r, r, r], np.r_[y, xu, d], np.r_[np.ones(k), -np.ones(k), -l],
                             lo=np.full(k, -np.inf), hi=-l)
        else:
            s = u / (u - l)
            # y <= s (x - l)
            problem.add_rows(np.r_[r, r], np.r_[y, xu], np.r_[np.ones(k), -s], lo=np.full(k, -np.inf),
                             hi=-s * l)
        return out


def _onnx_clip(node: OnnxNode) -> Any:
    """ONNX Clip / Max / Min as ReLUs between constant affine maps (see the module docstring)."""
    from ..errors import UnsupportedLayer
    from .scale import ConstantAffine, onnx_tensor

    def affine(act: Any, scale: float, shift: Any) -> Any:
        return node.apply(ConstantAffine(torch.tensor(scale), onnx_tensor(shift)), act)

    def bound(act: Any, c: np.ndarray, upper: bool) -> Any:  # max(x, c), or min(x, c) when upper
        c = np.asarray(c, dtype=np.float32)
        probe = node.probe(act)
        if not np.isfinite(c).all() or np.broadcast_shapes(c.shape, tuple(probe.shape)) != tuple(probe.shape):
            raise UnsupportedLayer(f"model has {node.op} node {node.name!r} with a constant that is not finite "
                                   "or does not broadcast to the input's shape. Fix: export finite bounds")
        if upper:
            return affine(node.apply(nn.ReLU(), affine(act, -1.0, c)), -1.0, c)
        return affine(node.apply(nn.ReLU(), affine(act, 1.0, -c)), 1.0, c)

    ins = [v for v in node.inputs]
    if node.op == "Clip":
        x = ins[0]
        at = node.attrs
        lo = at.get("min") if "min" in at else (ins[1] if len(ins) > 1 else None)
        hi = at.get("max") if "max" in at else (ins[2] if len(ins) > 2 else None)
        if any(node.is_activation(v) for v in (lo, hi) if v is not None):
            raise UnsupportedLayer(f"model has Clip node {node.name!r} with bounds computed from the input. "
                                   "Fix: clip by constants")
        if lo is not None:
            x = bound(x, lo, upper=False)
        return x if hi is None else bound(x, hi, upper=True)
    acts = [v for v in ins if node.is_activation(v)]
    consts = [np.asarray(v, dtype=np.float32) for v in ins if not node.is_activation(v)]
    upper = node.op == "Min"
    if len(acts) == 2 and not consts:
        a, b = acts
        if tuple(node.probe(a).shape) != tuple(node.probe(b).shape):
            raise UnsupportedLayer(f"model has {node.op} node {node.name!r} of two inputs of different shapes. "
                                   "Fix: broadcast them explicitly first")
        diff = node.apply(nn.ReLU(), node.call(operator.sub, a, b))
        return node.call(operator.sub, a, diff) if upper else node.call(operator.add, diff, b)
    if len(acts) != 1:
        raise UnsupportedLayer(f"model has {node.op} node {node.name!r} of {len(acts)} inputs computed from the "
                               "input and constants; robustest imports one input and constants, or two inputs. "
                               "Fix: split it into two-input nodes")
    c = consts[0]
    for other in consts[1:]:
        c = np.minimum(c, other) if upper else np.maximum(c, other)
    return bound(acts[0], c, upper=upper)
