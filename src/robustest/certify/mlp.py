"""An affine/ReLU chain as dense matrices, and its CROWN bounds in batched matrix form.

The branch and bound (:mod:`robustest.certify.bab`) bounds hundreds of sub-domains at once; on a chain
``affine -> ReLU -> ... -> affine`` that is a handful of batched matrix products, far cheaper than the
graph walk of :mod:`robustest.certify.crown`. :func:`dense_mlp` reads a graph into such a chain by each
layer's ``dense_role`` (:mod:`.dense_read`: the linear layers between activations, Linear, Conv2d,
AvgPool2d, constant Scale, Pad, Flatten, Transpose, Add/Concat of branches... become one matrix; ReLU and
LeakyReLU are the activations; a skip connection is carried forward by linear neurons) and refuses anything
else (MaxPool, smooth activations, a matrix over :class:`DenseRead`'s size limit) with
:class:`~robustest.errors.UnsupportedLayer`.

Notation: ``z_i = W_i h_{i-1} + b_i`` (``h_0 = x`` flat), ``h_i = relu(z_i)`` for ``i < L``, output
``z_L`` (``h_i`` is :func:`activate`'s with the net's slopes when it has any). "Layer ``i``" below is the
ReLU layer ``i = 1 .. L-1``; its pre-activation bounds are ``l_i, u_i``.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> net = dense_mlp(read_model(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).eval(),
    ...                            torch.zeros(1, 2)))
    >>> lo, hi = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    >>> ls, us = root_bounds(net, lo, hi)
    >>> [tuple(l.shape) for l in ls]
    [(3,)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..graph import Graph
from ..layers.relu import relaxation
from ..spec import bound_rows
from .ascent import Best, ascend

if TYPE_CHECKING:
    from .dense_read import DensePlan
    from .run_ops import RunOp


@dataclass(frozen=True)
class DenseMLP:
    """``weights[i]`` (n_{i+1}, n_i) and ``biases[i]`` of the affine layers, float64; between them a
    ReLU-like activation per neuron: ``h = z`` for ``z >= 0`` and ``slopes[i] * z`` below (``slopes[i]``
    (n_{i+1},), each >= 0: 0 a ReLU, a LeakyReLU's slope, 1 a linear *carry* that copies an earlier value
    forward for a skip connection, :mod:`.dense_read`); ``slopes`` empty: every activation a ReLU."""

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    slopes: tuple[torch.Tensor, ...] = ()
    #: per affine layer, its run's layers applied directly (convolutions) where that is cheaper than the
    #: dense matrix, else None; empty: dense everywhere (:mod:`robustest.certify.run_ops`)
    ops: tuple[RunOp | None, ...] = ()
    #: the copies :meth:`cast` made, per dtype (made once: a CIFAR net's dense matrices take seconds)
    _casts: dict[torch.dtype, DenseMLP] = field(default_factory=dict, init=False, compare=False, repr=False)

    def cast(self, dtype: torch.dtype) -> DenseMLP:
        """This net in ``dtype``, the copy kept for the next call (``self`` when it is in ``dtype``)."""
        if self.weights[0].dtype == dtype:
            return self
        if dtype not in self._casts:
            self._casts[dtype] = self.to(dtype)
        return self._casts[dtype]

    def to(self, target: torch.device | torch.dtype | str) -> DenseMLP:
        """A copy with every tensor moved to a device or cast to a dtype (``net.to("cpu")``)."""
        return DenseMLP(tuple(w.to(target) for w in self.weights), tuple(v.to(target) for v in self.biases),
                        tuple(s.to(target) for s in self.slopes),
                        tuple(None if op is None else op.to(target) for op in self.ops))

    def pull(self, i: int, A: torch.Tensor) -> torch.Tensor:
        """``A @ weights[i]`` (A (..., n_{i+1})), through the run's layers where :attr:`ops` has them."""
        op = self.ops[i] if i < len(self.ops) else None
        return A @ self.weights[i] if op is None else op.pull(A)

    @property
    def widths(self) -> list[int]:
        """Widths of the ReLU layers (the split candidates)."""
        return [int(w.shape[0]) for w in self.weights[:-1]]

    def slope(self, i: int) -> torch.Tensor | None:
        """The negative-side slopes of activation layer ``i`` (0-based), None for a plain ReLU layer."""
        return self.slopes[i] if self.slopes else None

    def prefix(self, k: int) -> DenseMLP:
        """The network up to the ``k``-th affine layer's output (``z_k``)."""
        return DenseMLP(self.weights[:k], self.biases[:k], self.slopes[:k - 1], self.ops[:k])

    def carries(self) -> torch.Tensor | None:
        """(N,) bool over all activation neurons: the linear carries (slope 1), never split; None if none."""
        if not self.slopes:
            return None
        return torch.cat(self.slopes) == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (B, K) on flat inputs (B, n_0)."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            op = self.ops[i] if i < len(self.ops) else None
            h = (h @ w.T if op is None else op.apply(h)) + b
            if i < len(self.weights) - 1:
                h = activate(h, self.slope(i))
        return h


def activate(z: torch.Tensor, slope: torch.Tensor | None) -> torch.Tensor:
    """The activation of :class:`DenseMLP`: ``relu(z)``, or ``z`` above 0 and ``slope * z`` below."""
    return torch.relu(z) if slope is None else torch.where(z >= 0, z, slope * z)


@dataclass(frozen=True)
class DenseRead:
    """Limits of :func:`dense_mlp`. ``max_entries``: the largest dense matrix (rows x columns) one run of
    affine layers may become (the identity pushed through it is as large). 40M float64 entries are 320 MB:
    the widest oval21 CIFAR net's first run (3x32x32 -> 16x16x16 conv) is 12.6M, the largest measured
    (``benchmarks/vnncomp2021_bab.md``)."""

    max_entries: int = 40_000_000


def dense_plan(graph: Graph, *, limits: DenseRead = DenseRead()) -> DensePlan:
    """The graph's dense layout, cheaply (no matrix is built): :func:`robustest.certify.dense_read.plan`."""
    from .dense_read import plan

    return plan(graph, limits=limits)


def dense_mlp(graph: Graph, *, dtype: torch.dtype = torch.float64, limits: DenseRead = DenseRead()) -> DenseMLP:
    """The graph as a :class:`DenseMLP` (on the CPU): :func:`robustest.certify.dense_read.read`. Raises
    :class:`UnsupportedLayer` as :func:`dense_plan` does."""
    from .dense_read import read

    return read(graph, dtype=dtype, limits=limits)


def relax(A: torch.Tensor, l: torch.Tensor, u: torch.Tensor, alpha: torch.Tensor | None,
          slope: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients on ``z`` and constant (D, R) with ``A . relu(z) >= A_z . z + const`` for
    ``l <= z <= u``. ``A`` is (D, R, n), ``l``/``u`` (D, n); ``alpha`` (D, R, n) in [0, 1] are the lower
    slopes of unstable neurons (default: 1 where ``u > -l``, else 0). With ``slope`` (n,), the activation
    is :func:`activate`'s, ``s z + (1 - s) relu(z)``: the ReLU rule on ``(1 - s) A``, plus ``s A`` on ``z``
    (exact for a carry, ``s = 1``; the split sides ``z >= 0``/``z <= 0`` are linear)."""
    if slope is not None:
        coef, const = relax((1 - slope) * A, l, u, alpha)
        return coef + slope * A, const
    low, up, icpt = relaxation(l.unsqueeze(1), u.unsqueeze(1), alpha)
    pos, neg = A.clamp(min=0), A.clamp(max=0)
    return pos * low + neg * up, (neg * icpt).sum(-1)


def concretize(A: torch.Tensor, const: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``min over lo <= x <= hi`` of ``A . x + const`` (A (D, R, n0); lo/hi (n0,), one box for all
    domains, or (D, n0), one box per domain)."""
    if lo.dim() == 2:
        return const + (A.clamp(min=0) @ lo.unsqueeze(-1) + A.clamp(max=0) @ hi.unsqueeze(-1)).squeeze(-1)
    return const + A.clamp(min=0) @ lo + A.clamp(max=0) @ hi


def backward(net: DenseMLP, k: int, A: torch.Tensor, const: torch.Tensor, ls: list[torch.Tensor],
             us: list[torch.Tensor], alphas: list[torch.Tensor] | None = None,
             betas: list[torch.Tensor] | None = None, keep: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Pull ``A . z_k + const`` (A (D, R, n_k)) back to the input: returns ``(A_x, const, kept)`` with
    ``A . z_k + const >= A_x . x + const'`` whenever every ``z_i`` (i < k) is within ``[ls[i-1], us[i-1]]``.

    ``betas[i-1]`` (D, R, n_i), already multiplied by the split signs, are Lagrangian terms
    ``- beta s z_i`` (beta-CROWN): with ``s z_i >= 0`` on the domain they only lower the objective there.
    ``keep``: also return the coefficients on every ``h_i`` (for branching scores), last layer first.
    """
    kept: list[torch.Tensor] = []
    for i in range(k, 0, -1):
        b = net.biases[i - 1]
        const = const + A @ b
        A = net.pull(i - 1, A)
        if i == 1:
            break
        if keep:
            kept.append(A)
        A, c = relax(A, ls[i - 2], us[i - 2], None if alphas is None else alphas[i - 2], net.slope(i - 2))
        const = const + c
        if betas is not None:
            A = A - betas[i - 2]
    return A, const, kept


def root_bounds(net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, *, alpha_steps: int = 0,
                deadline: float = float("inf"), alpha_until: float = float("inf")
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Sound bounds ``(ls, us)`` of every ReLU layer's pre-activation over the box, layer by layer
    (:func:`layer_bound`): interval arithmetic for the first, CROWN (or alpha-CROWN with ``alpha_steps``)
    intersected with interval bounds for the others. ``lo``/``hi`` (n0,), or (D, n0) for ``D`` boxes at
    once (then ``ls[i]`` is (D, n_i); CROWN only). ``alpha_until``: the alpha steps of all layers end then
    (perf_counter), each layer's steps getting an even share of what is left when its turn comes (on oval21's
    ``cifar_deep_kw`` 30 steps per layer took 34 s of a 50 s budget); CROWN itself runs until ``deadline``."""
    import time

    ls: list[torch.Tensor] = []
    us: list[torch.Tensor] = []
    L = len(net.weights)
    for k in range(1, L):
        now = time.perf_counter()
        share = now + max(0.0, min(deadline, alpha_until) - now) / max(1, L - k)
        l, u = layer_bound(net, k, ls, us, lo, hi, alpha_steps=alpha_steps, deadline=deadline,
                           alpha_deadline=min(deadline, share))
        ls.append(l)
        us.append(torch.maximum(u, l))
    return ls, us


def layer_bound(net: DenseMLP, k: int, ls: list[torch.Tensor], us: list[torch.Tensor], lo: torch.Tensor,
                hi: torch.Tensor, *, alpha_steps: int = 0, deadline: float = float("inf"),
                alpha_deadline: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``z_k`` over the box given bounds ``ls[:k-1]``/``us[:k-1]`` of the earlier layers: exact
    interval bounds for ``k = 1``; else CROWN ∩ interval bounds, then (``alpha_steps > 0``) the lower slopes of
    all earlier unstable neurons optimised per bound of each unstable neuron of ``z_k`` (alpha-CROWN), until
    ``deadline`` (the alpha steps until ``alpha_deadline`` when given). Every iterate is sound; the best is
    kept."""
    import time

    w, b = net.weights[k - 1], net.biases[k - 1]
    if k == 1:
        mid, rad = (lo + hi) / 2, (hi - lo) / 2
        return mid @ w.T + b - rad @ w.abs().T, mid @ w.T + b + rad @ w.abs().T
    n = w.shape[0]
    batched = lo.dim() == 2
    hl, hu = activate(ls[k - 2], net.slope(k - 2)), activate(us[k - 2], net.slope(k - 2))  # non-decreasing
    il = hl @ w.clamp(min=0).T + hu @ w.clamp(max=0).T + b
    iu = hu @ w.clamp(min=0).T + hl @ w.clamp(max=0).T + b
    if batched:
        A = bound_rows(n, like=lo).unsqueeze(0)
        Ax, c, _ = backward(net, k, A, A.new_zeros(1, 2 * n), ls, us)
        low = concretize(Ax, c, lo, hi)
        l, u = torch.maximum(il, low[..., :n]), torch.minimum(iu, -low[..., n:])
    else:
        l, u = _crown_unstable(net, k, il, iu, ls, us, lo, hi, deadline)
    stop = deadline if alpha_deadline is None else min(deadline, alpha_deadline)
    if alpha_steps > 0 and time.perf_counter() < stop:
        assert not batched, "alpha-CROWN bounds one box at a time"
        l, u = _optimise_layer(net, k, l, u, ls, us, lo, hi, alpha_steps, stop)
    return l, u


def _crown_unstable(net: DenseMLP, k: int, il: torch.Tensor, iu: torch.Tensor, ls: list[torch.Tensor],
                    us: list[torch.Tensor], lo: torch.Tensor, hi: torch.Tensor, deadline: float,
                    chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """CROWN ∩ interval bounds of ``z_k`` for the neurons the interval bounds ``il, iu`` leave unstable (a
    stable neuron's relaxation is exact whatever its bounds), ``chunk`` neurons per backward pass; when the
    deadline passes, the neurons not reached keep their interval bounds (sound, looser)."""
    import time

    l, u = il.clone(), iu.clone()
    idx = torch.nonzero((il < 0) & (iu > 0)).flatten()
    for j in range(0, idx.numel(), chunk):
        if time.perf_counter() >= deadline:
            break
        part = idx[j:j + chunk]
        r = part.numel()
        A = bound_rows(il.shape[0], part, like=lo).unsqueeze(0)
        Ax, c, _ = backward(net, k, A, A.new_zeros(1, 2 * r), [t[None] for t in ls], [t[None] for t in us])
        low = concretize(Ax, c, lo, hi)[0]
        l[part], u[part] = torch.maximum(il[part], low[:r]), torch.minimum(iu[part], -low[r:])
    return l, u


def _optimise_layer(net: DenseMLP, k: int, l: torch.Tensor, u: torch.Tensor, ls: list[torch.Tensor],
                    us: list[torch.Tensor], lo: torch.Tensor, hi: torch.Tensor, steps: int, deadline: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.nonzero((l < 0) & (u > 0)).flatten()
    r = idx.numel()
    if r == 0:
        return l, u
    n = l.shape[0]
    A = bound_rows(n, idx, like=lo).unsqueeze(0)  # (1, 2r, n)
    alphas = [(us[i] > -ls[i]).to(lo.dtype).expand(1, 2 * r, -1).clone() for i in range(k - 1)]
    best = Best()

    def layer_low() -> torch.Tensor:
        Ax, c, _ = backward(net, k, A, A.new_zeros(1, 2 * r), [t[None] for t in ls], [t[None] for t in us],
                            alphas)
        return concretize(Ax, c, lo, hi)[0]

    def project() -> None:
        for a in alphas:
            a.clamp_(0.0, 1.0)

    ascend([(a, 0.1) for a in alphas], layer_low, steps=steps, project=project, seen=best, deadline=deadline)
    if best.value is None:
        return l, u
    l, u = l.clone(), u.clone()
    l[idx] = torch.maximum(l[idx], best.value[:r])
    u[idx] = torch.minimum(u[idx], -best.value[r:])
    return l, u
