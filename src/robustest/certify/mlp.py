"""An affine/ReLU chain as dense matrices, and its CROWN bounds in batched matrix form.

The branch and bound (:mod:`robustest.certify.bab`) bounds hundreds of sub-domains at once; on a chain
``affine -> ReLU -> ... -> affine`` that is a handful of batched matrix products, far cheaper than the
graph walk of :mod:`robustest.certify.crown`. :func:`dense_mlp` reads such a chain from a graph by each
layer's ``dense_role`` (a run of linear layers between two ReLUs: Linear, Conv2d, AvgPool2d, constant
Scale, Pad, Flatten, Transpose... becomes one matrix) and refuses anything else (skip connections, MaxPool,
other activations, a matrix over :class:`DenseRead`'s size limit) with
:class:`~robustest.errors.UnsupportedLayer`.

Notation: ``z_i = W_i h_{i-1} + b_i`` (``h_0 = x`` flat), ``h_i = relu(z_i)`` for ``i < L``, output
``z_L``. "Layer ``i``" below is the ReLU layer ``i = 1 .. L-1``; its pre-activation bounds are ``l_i, u_i``.

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

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..errors import UnsupportedLayer
from ..graph import Graph
from ..layers.base import Layer
from ..layers.relu import relaxation
from ..spec import bound_rows
from .ascent import Best, ascend

if TYPE_CHECKING:
    from .run_ops import RunOp


@dataclass(frozen=True)
class DenseMLP:
    """``weights[i]`` (n_{i+1}, n_i) and ``biases[i]`` of the affine layers, float64; ReLU between them."""

    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]
    #: per affine layer, its run's layers applied directly (convolutions) where that is cheaper than the
    #: dense matrix, else None; empty: dense everywhere (:mod:`robustest.certify.run_ops`)
    ops: tuple[RunOp | None, ...] = ()

    def to(self, target: torch.device | torch.dtype | str) -> DenseMLP:
        """A copy with every tensor moved to a device or cast to a dtype (``net.to("cpu")``)."""
        return DenseMLP(tuple(w.to(target) for w in self.weights), tuple(v.to(target) for v in self.biases),
                        tuple(None if op is None else op.to(target) for op in self.ops))

    def pull(self, i: int, A: torch.Tensor) -> torch.Tensor:
        """``A @ weights[i]`` (A (..., n_{i+1})), through the run's layers where :attr:`ops` has them."""
        op = self.ops[i] if i < len(self.ops) else None
        return A @ self.weights[i] if op is None else op.pull(A)

    @property
    def widths(self) -> list[int]:
        """Widths of the ReLU layers (the split candidates)."""
        return [int(w.shape[0]) for w in self.weights[:-1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (B, K) on flat inputs (B, n_0)."""
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            op = self.ops[i] if i < len(self.ops) else None
            h = (h @ w.T if op is None else op.apply(h)) + b
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h


@dataclass(frozen=True)
class DenseRead:
    """Limits of :func:`dense_mlp`. ``max_entries``: the largest dense matrix (rows x columns) one run of
    affine layers may become (the identity pushed through it is as large). 40M float64 entries are 320 MB:
    the widest oval21 CIFAR net's first run (3x32x32 -> 16x16x16 conv) is 12.6M, the largest measured
    (``benchmarks/vnncomp2021_bab.md``)."""

    max_entries: int = 40_000_000


@dataclass(frozen=True)
class Run:
    """Linear layers between two ReLUs (or the ends): their input and output shapes (batch-free)."""

    layers: tuple[Layer, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def dense_plan(graph: Graph, *, limits: DenseRead = DenseRead()) -> list[Run]:
    """The graph's runs of linear layers, cheaply (no matrix is built); raises :class:`UnsupportedLayer`
    unless the graph is a chain of ReLUs and of runs of linear layers between them, read by each kind's
    ``dense_role`` (the registry):

    * "affine" (every :class:`~robustest.layers.base.AffineLayer`: Linear, Conv2d, AvgPool2d, constant
      Scale/Sub/Div, BatchNorm...) and "reshape" (Flatten/Reshape/Identity: linear, no constant);
    * "relu": the nonlinearity between runs (an empty run, e.g. two ReLUs in a row, is the identity).

    A run whose dense matrix would exceed ``limits.max_entries`` is refused with its size."""
    runs: list[Run] = []
    layers: list[Layer] = []
    start = graph.input_shape
    for k, node in enumerate(graph.nodes[1:], start=1):
        layer = node.layer
        if node.inputs != (k - 1,):
            raise UnsupportedLayer(f"node {node.name} ({layer!r}) takes inputs {node.inputs}: the dense branch and "
                                   "bound handles chains only, not skip connections. Fix: use milp/crown for "
                                   "this network")
        role = None if layer is None else layer.dense_role
        if role in ("affine", "reshape"):
            assert layer is not None
            layers.append(layer)
        elif role == "relu":
            runs.append(Run(tuple(layers), start, graph.nodes[k - 1].shape))
            layers, start = [], node.shape
        else:
            raise UnsupportedLayer(f"layer {node.name} ({layer!r}) is neither linear nor a ReLU: the dense "
                                   "branch and bound handles chains of linear layers and ReLUs only. Fix: use "
                                   "milp/crown for this network")
    runs.append(Run(tuple(layers), start, graph.nodes[-1].shape))
    for run in runs:
        n, m = math.prod(run.in_shape), math.prod(run.out_shape)
        if max(n, m) * n > limits.max_entries:
            raise UnsupportedLayer(f"the linear layers {list(run.layers)!r} on inputs of shape {run.in_shape} "
                                   f"would be a dense {m} x {n} matrix, over the dense branch and bound's limit "
                                   f"of {limits.max_entries} entries. Fix: use milp/crown for this network")
    return runs


def dense_mlp(graph: Graph, *, dtype: torch.dtype = torch.float64, limits: DenseRead = DenseRead()) -> DenseMLP:
    """The graph as a :class:`DenseMLP` (on the CPU): each run of :func:`dense_plan` becomes one dense matrix
    and bias, found by pushing the identity (each layer's ``dense_linear``) and zero (``forward``, for the
    bias) through the run. Raises :class:`UnsupportedLayer` as :func:`dense_plan` does."""
    weights: list[torch.Tensor] = []
    biases: list[torch.Tensor] = []
    cpu = torch.device("cpu")
    for run in dense_plan(graph, limits=limits):
        n, m = math.prod(run.in_shape), math.prod(run.out_shape)
        layers = [layer.to(cpu, dtype) for layer in run.layers]
        with torch.no_grad():
            out = torch.zeros((1,) + run.in_shape, dtype=dtype, device=cpu)
            cols = torch.eye(n, dtype=dtype, device=cpu).reshape((n,) + run.in_shape)
            for layer in layers:
                out, cols = layer.forward(out), layer.dense_linear(cols)
        weights.append(cols.reshape(n, m).T.contiguous())
        biases.append(out.reshape(m))
    return DenseMLP(tuple(weights), tuple(biases))


def relax(A: torch.Tensor, l: torch.Tensor, u: torch.Tensor, alpha: torch.Tensor | None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients on ``z`` and constant (D, R) with ``A . relu(z) >= A_z . z + const`` for
    ``l <= z <= u``. ``A`` is (D, R, n), ``l``/``u`` (D, n); ``alpha`` (D, R, n) in [0, 1] are the lower
    slopes of unstable neurons (default: 1 where ``u > -l``, else 0)."""
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
        A, c = relax(A, ls[i - 2], us[i - 2], None if alphas is None else alphas[i - 2])
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
    hl, hu = ls[k - 2].clamp(min=0), us[k - 2].clamp(min=0)
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
