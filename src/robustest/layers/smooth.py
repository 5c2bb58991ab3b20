"""The shared rules of the smooth elementwise activations (Sigmoid, Tanh, Softplus, GELU, SiLU).

A kind gives its function ``fn``, its derivative ``grad`` and where it is convex or concave: the
inflection points ``breaks`` and the sign of the curvature on each piece between them (``curvature``:
+1 convex, -1 concave). Everything else follows from one sound primitive, :meth:`Smooth.lowest`:

* for any slope ``a``, ``b(a) = min over [l, u] of f(x) - a x`` makes ``f(x) >= a x + b(a)`` on
  ``[l, u]`` (and the maximum gives an upper line). On a concave piece the minimum of ``f - a x`` is at
  an end of the piece; on a convex piece ``f' - a`` is increasing, so bisection brackets the minimiser
  in ``[c1, c2]`` and the tangent of ``f - a x`` at ``c1`` (slope <= 0) evaluated at ``c2`` bounds it
  from below. The bound is lowered by a float margin (:data:`MARGIN_ULPS` units in the last place of
  its magnitude), so rounding in ``f``, ``f'`` and the products never makes a line cut the function.
  Soundness does not depend on how well the slope was chosen, nor on how far the bisection got.
* CROWN: the slopes come from CROWN's tangent/secant choices for general activations (auto_LiRPA):
  tangents at ``l``, ``(l+u)/2``, ``u``, the chord, and the lines pivoting on ``(l, f(l))`` or
  ``(u, f(u))`` (the chord where it is a bound, the tangent through an end point for S-shaped
  functions across their inflection point; found on a grid). Of these the line highest (lowest) at
  the middle of ``[l, u]`` is the lower (upper) bound.
* alpha-CROWN: both slopes are optimisable, each in ``[min f', max f']`` over ``[l, u]`` (where the
  slopes of the best lines lie); any value is sound, since the intercept is computed for it.
* IBP: ``[f(l), f(u)]`` (padded by the margin) for monotone kinds, else ``b(0)`` and its upper twin.
* LP: every candidate line as a constraint (a sound polytope around the graph of ``f``). The MILP
  encoding is the same relaxation (``exact_milp = False``): an MILP proof is sound, its optimum is not
  the network's and any point it finds is only a candidate (:mod:`robustest.certify.milp` re-checks it).

    >>> import torch
    >>> from robustest.layers import Sigmoid
    >>> lo, hi = torch.tensor([[-2.0]], dtype=torch.float64), torch.tensor([[3.0]], dtype=torch.float64)
    >>> (al, bl), (au, bu) = Sigmoid().lines(lo, hi)
    >>> x = torch.linspace(-2, 3, 101, dtype=torch.float64)
    >>> bool((al * x + bl <= torch.sigmoid(x)).all() and (torch.sigmoid(x) <= au * x + bu).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from ..solvers.base import Problem
from .base import Box, Call, Coef, Layer, NpBox, OnnxNode, slope_difference, widen
from .rounding import Precision, in_range, magnitude

#: Bisection steps for the minimiser of ``f - a x`` on a convex piece: the bound's looseness is about
#: ``f'' * (width / 2**steps)**2``, negligible even for pieces 2000 wide.
BISECTION_STEPS = 24
#: Points of the grid on which the lines pivoting on an end point are searched (tightness only).
PIVOT_GRID = 8
#: Float margin of every bound, in units of the dtype's epsilon times the magnitudes involved
#: (``1 + |bound| + (|a| + 1) max(|l|, |u|)``): covers the few roundings in ``f``, ``f'``, ``a x`` and the
#: subtraction, and the cast of a float64 line to the layer's dtype.
MARGIN_ULPS = 64.0
#: How accurate torch's float evaluation of a smooth activation is assumed to be, in units of the dtype's
#: unit roundoff times ``|f(x)| + |x|`` (the ``|x|`` term covers the cancellation in ``x * Phi(x)`` and
#: ``x * sigmoid(x)`` where ``f`` is tiny): library functions are accurate to a few ulps.
ACTIVATION_ULPS = 16

Line = tuple[torch.Tensor, torch.Tensor]


def margin(like: torch.Tensor) -> float:
    """:data:`MARGIN_ULPS` units of the dtype's epsilon (float64 at least as coarse as float64's)."""
    return MARGIN_ULPS * float(torch.finfo(like.dtype).eps)


class Smooth(Layer):
    """Base class of the smooth activation kinds; subclasses give ``fn``, ``grad``, ``breaks``,
    ``curvature`` (and ``monotone``, ``slack`` where they differ)."""

    nonlinear = True
    exact_milp = False
    #: Inflection points, increasing; ``curvature`` has one sign per piece between them (+1 convex).
    breaks: ClassVar[tuple[float, ...]] = ()
    curvature: ClassVar[tuple[int, ...]] = (1,)
    #: Non-decreasing: the interval rule is ``[f(l), f(u)]``.
    monotone: ClassVar[bool] = True

    @classmethod
    def example(cls, gen: torch.Generator) -> tuple[Layer, list[tuple[int, ...]]]:
        return cls(), [(6,)]

    @classmethod
    def from_module(cls, mod: nn.Module, path: str, in_shape: tuple[int, ...]) -> Layer | None:
        return cls()

    @classmethod
    def from_call(cls, call: Call) -> Layer | None:
        options(call, ("inplace",))
        return cls()

    @classmethod
    def from_onnx(cls, node: OnnxNode) -> Any:
        return node.apply(cls.modules[0](), node.inputs[0])

    # ------------------------------------------------------------------ the function
    def fn(self, x: torch.Tensor) -> torch.Tensor:
        """The smooth function the rules bound (torch's own may differ from it by :meth:`slack`)."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def slack(self) -> float:
        """How far below :meth:`fn` :meth:`forward` may be (Softplus's threshold); 0 for the others."""
        return 0.0

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(xs[0])

    def difference(self, coef: Coef, boxes: Sequence[Box], errors: Sequence[torch.Tensor]) -> list[Coef]:
        """``f(x + e) - f(x) = f'(xi) e`` (mean value theorem) with ``xi`` in the box widened by the error:
        the slope lies in :meth:`grad_range` there (widened by a relative 1e-9 for its own rounding)."""
        low, high = self.grad_range(boxes[0][0] - errors[0], boxes[0][1] + errors[0])
        pad = 1e-9 * torch.maximum(low.abs(), high.abs()) + 1e-300
        return slope_difference(coef, low - pad, high + pad)

    def rounding(self, boxes: Sequence[Box], errors: Sequence[torch.Tensor], precision: Precision
                 ) -> torch.Tensor:
        """The input's error times the largest ``|f'|`` over the widened box (``f'`` is monotone between
        the inflection points, so it is the largest at an end or a break), plus the function's own
        rounding (:data:`ACTIVATION_ULPS`) and :meth:`slack`."""
        lo, hi = boxes[0][0] - errors[0], boxes[0][1] + errors[0]
        steep = torch.maximum(self.grad(lo).abs(), self.grad(hi).abs())
        for b in self.breaks:
            at = self.grad(torch.full_like(lo, b)).abs()
            steep = torch.where((lo < b) & (b < hi), torch.maximum(steep, at), steep)
        out_lo, out_hi = self.interval((lo, hi))
        size = torch.maximum(out_lo.abs(), out_hi.abs()) + magnitude(boxes[0], errors[0])
        own = ACTIVATION_ULPS * precision.unit * size + precision.absolute(ACTIVATION_ULPS) + self.slack()
        return in_range(errors[0] * steep * (1 + 1e-9) + own, size, precision)

    # ------------------------------------------------------------------ the sound primitive
    def lowest(self, lo: torch.Tensor, hi: torch.Tensor, a: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
        """A sound lower bound of ``min over [lo, hi] of sign * f(x) - a x`` (elementwise, broadcast).

        With ``sign = -1`` and slope ``-a`` it is minus an upper bound of ``max f(x) - a x``."""
        def g(x: torch.Tensor) -> torch.Tensor:
            return sign * self.fn(x) - a * x

        def dg(x: torch.Tensor) -> torch.Tensor:
            return sign * self.grad(x) - a

        edges = (-math.inf,) + tuple(self.breaks) + (math.inf,)
        shape = torch.Size(np.broadcast_shapes(tuple(lo.shape), tuple(a.shape)))  # (torch's imports torch._refs: s)
        best = torch.full(shape, math.inf, dtype=lo.dtype, device=lo.device)
        for i, curv in enumerate(self.curvature):
            left, right = edges[i], edges[i + 1]
            p, q = lo.clamp(left, right).expand(shape), hi.clamp(left, right).expand(shape)
            if sign * curv > 0:  # convex piece: g' increasing, bracket its zero in [c1, c2]
                with torch.no_grad():
                    c1, c2, ad = p.clone(), q.clone(), a.detach()
                    for _ in range(BISECTION_STEPS):
                        mid = (c1 + c2) / 2
                        down = (sign * self.grad(mid) - ad) <= 0
                        c1, c2 = torch.where(down, mid, c1), torch.where(down, c2, mid)
                # min g = g(x*) with x* in [c1, c2] (or x* = c1 = p): the tangent at c1 is below g there
                val = g(c1) + dg(c1).clamp(max=0) * (c2 - c1)
            else:  # concave piece: the minimum is at an end
                val = torch.minimum(g(p), g(q))
            inside = (hi >= left) & (lo <= right)
            best = torch.minimum(best, torch.where(inside, val, torch.full_like(val, math.inf)))
        reach = torch.maximum(lo.abs(), hi.abs())
        scale = 1.0 + best.detach().abs() + (a.detach().abs() + 1.0) * reach
        return best - margin(lo) * scale - (self.slack() if sign > 0 else 0.0)  # torch's f <= fn

    def line(self, lo: torch.Tensor, hi: torch.Tensor, a: torch.Tensor, upper: bool) -> torch.Tensor:
        """The intercept of the sound lower (``upper``: upper) line of slope ``a`` on ``[lo, hi]``."""
        return -self.lowest(lo, hi, -a, -1.0) if upper else self.lowest(lo, hi, a)

    # ------------------------------------------------------------------ slopes
    def grad_range(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``min f'`` and ``max f'`` over ``[lo, hi]`` (f' is monotone on each piece)."""
        vals = [self.grad(lo), self.grad(hi)] + [self.grad(torch.clamp(torch.full_like(lo, b), lo, hi))
                                                 for b in self.breaks]
        stack = torch.stack(vals)
        return stack.amin(0), stack.amax(0)

    def candidates(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Candidate slopes (..., C): tangents at l, the middle, u; the chord; the extreme secants from
        ``l`` and to ``u`` on a grid (the lines pivoting on an end point). Non-finite ones (a zero-width
        interval) become the middle's tangent."""
        w = hi - lo
        t = torch.linspace(0.0, 1.0, PIVOT_GRID + 1, dtype=lo.dtype, device=lo.device)
        xs = lo.unsqueeze(-1) + w.unsqueeze(-1) * t
        fx = self.fn(xs)
        fl, fu = fx[..., :1], fx[..., -1:]
        from_l = (fx[..., 1:] - fl) / (xs[..., 1:] - xs[..., :1])
        to_u = (fu - fx[..., :-1]) / (xs[..., -1:] - xs[..., :-1])
        mid = self.grad((lo + hi) / 2)
        cands = torch.stack([self.grad(lo), mid, self.grad(hi), from_l[..., -1], from_l.amin(-1), from_l.amax(-1),
                             to_u.amin(-1), to_u.amax(-1)], -1)
        return torch.where(torch.isfinite(cands), cands, mid.unsqueeze(-1))

    def heuristic(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CROWN's slopes: of the candidates, the lower line highest and the upper line lowest at the middle."""
        with torch.no_grad():
            c = self.candidates(lo, hi)
            L, H, m = lo.unsqueeze(-1), hi.unsqueeze(-1), ((lo + hi) / 2).unsqueeze(-1)
            low_at_m = c * m + self.line(L, H, c, upper=False)
            up_at_m = c * m + self.line(L, H, c, upper=True)
            a_lo = c.gather(-1, low_at_m.argmax(-1, keepdim=True))[..., 0]
            a_hi = c.gather(-1, up_at_m.argmin(-1, keepdim=True))[..., 0]
        return a_lo, a_hi

    def lines(self, lo: torch.Tensor, hi: torch.Tensor, alpha: torch.Tensor | None = None) -> tuple[Line, Line]:
        """``(a_lo, b_lo), (a_hi, b_hi)``: ``a_lo x + b_lo <= f(x) <= a_hi x + b_hi`` on ``[lo, hi]``.

        ``alpha`` (..., 2, *shape) in [0, 1] picks each slope in ``[min f', max f']`` (alpha-CROWN);
        None: :meth:`heuristic`."""
        if alpha is None:
            a_lo, a_hi = self.heuristic(lo, hi)
        else:
            gmin, gmax = self.grad_range(lo, hi)
            span = gmax - gmin
            a_lo = gmin + alpha[:, :, 0].clamp(0.0, 1.0) * span
            a_hi = gmin + alpha[:, :, 1].clamp(0.0, 1.0) * span
        return (a_lo, self.line(lo, hi, a_lo, upper=False)), (a_hi, self.line(lo, hi, a_hi, upper=True))

    # ------------------------------------------------------------------ the four faces
    def interval(self, *boxes: Box) -> Box:
        lo, hi = boxes[0]
        if self.monotone:
            flo, fhi = self.fn(lo), self.fn(hi)
            m = margin(lo)
            return flo - m * (1.0 + flo.abs()) - self.slack(), fhi + m * (1.0 + fhi.abs())
        zero = torch.zeros_like(lo)
        return self.line(lo, hi, zero, upper=False), self.line(lo, hi, zero, upper=True)

    def relax_init(self, box: Box, rows: int) -> torch.Tensor:
        """The heuristic slopes as positions in ``[min f', max f']``: (B, rows, 2, *shape), [0] lower, [1] upper."""
        lo, hi = box
        a_lo, a_hi = self.heuristic(lo, hi)
        gmin, gmax = self.grad_range(lo, hi)
        span = gmax - gmin
        safe = torch.where(span > 0, span, torch.ones_like(span))
        pos = torch.stack([(a_lo - gmin) / safe, (a_hi - gmin) / safe], 1).clamp(0.0, 1.0)
        return pos.unsqueeze(1).expand((lo.shape[0], rows) + tuple(pos.shape[1:])).clone()

    def backward(self, A: torch.Tensor, boxes: Sequence[Box], relax: dict[str, Any] | None = None
                 ) -> tuple[list[torch.Tensor], torch.Tensor]:
        lo, hi = boxes[0]
        alpha = (relax or {}).get("alpha")
        (a_lo, b_lo), (a_hi, b_hi) = self.lines(lo.unsqueeze(1), hi.unsqueeze(1), alpha)
        pos, neg = A.clamp(min=0), A.clamp(max=0)
        return [pos * a_lo + neg * a_hi], (pos * b_lo + neg * b_hi).flatten(2).sum(-1)

    def encode(self, problem: Problem, ins: Sequence[np.ndarray], boxes: Sequence[NpBox], out_box: NpBox,
               *, in_shapes: Sequence[tuple[int, ...]], exact: bool) -> np.ndarray:
        """Every candidate line as a row (``exact`` or not: no exact encoding exists)."""
        x = ins[0]
        lo, hi = (torch.as_tensor(v, dtype=torch.float64) for v in widen(*boxes[0]))
        with torch.no_grad():
            c = self.candidates(lo, hi)
            L, H = lo.unsqueeze(-1), hi.unsqueeze(-1)
            rows = [(c, self.line(L, H, c, upper=False), 0), (c, self.line(L, H, c, upper=True), 1)]
        olo, ohi = widen(*out_box)
        y = problem.add_vars(olo, ohi)
        n = x.size
        r = np.arange(n)
        for a, b, side in rows:
            a_np, b_np = a.numpy(), b.numpy()
            for k in range(a_np.shape[1]):
                lo_r = b_np[:, k] if side == 0 else np.full(n, -np.inf)
                hi_r = np.full(n, np.inf) if side == 0 else b_np[:, k]
                # y - a x >= b (lower line) or <= b (upper line)
                problem.add_rows(np.r_[r, r], np.r_[y, x], np.r_[np.ones(n), -a_np[:, k]], lo=lo_r, hi=hi_r)
        return y

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def options(call: Call, names: Sequence[str]) -> dict[str, object]:
    """The call's options (positional after the tensor, or keywords) by name; refuses other options, and
    values computed from tensors (the rules need them as Python constants)."""
    given = dict(zip(names, call.args))
    given.update(call.kwargs)
    extra = [k for k in given if k not in names] + [repr(a) for a in call.args[len(names):]]
    if extra or any(not isinstance(v, (bool, int, float, str, type(None))) for v in given.values()):
        raise UnsupportedLayer(f"call {call.function} at '{call.name}' has options {given or list(call.args)} "
                               f"robustest has no rule for (known: {', '.join(names) or 'none'}, as constants). "
                               "Fix: call it with constant options, or use the torch module")
    return given
