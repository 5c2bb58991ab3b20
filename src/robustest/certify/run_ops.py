"""A run of linear layers applied as its layers (convolutions), not as its dense matrix, for the dense BaB.

Why: :func:`~robustest.certify.mlp.dense_mlp` reads each run of linear layers as one dense matrix, and the
CROWN / beta-CROWN backward passes multiply by it. A convolution's matrix is mostly zeros (oval21
``cifar_wide_kw``: 1.5% and 5.5% nonzero for its two conv layers), so ``A @ W`` through the transposed
convolution costs a fraction of the dense product: measured on that net (1 thread, float64, 4096 rows)
0.9 s instead of 3.3 s through both convs, 1.3 s instead of 5.1 s with the gradient (alpha steps). The
result is the same linear map (to rounding), so every bound built on it is as sound as the dense one.

:func:`with_run_ops` attaches a :class:`RunOp` to each run whose dense matrix is sparse
(``RunOps.max_density``); :meth:`DenseMLP.pull <robustest.certify.mlp.DenseMLP.pull>` and
:meth:`~robustest.certify.mlp.DenseMLP.forward` use it where present.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.certify.mlp import dense_mlp
    >>> model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
    ...                       nn.Linear(2 * 4 * 4, 3)).eval()
    >>> g = read_model(model, torch.zeros(1, 1, 8, 8))
    >>> net = with_run_ops(g, dense_mlp(g))
    >>> [op is not None for op in net.ops]
    [True, False]
    >>> A = torch.randn(2, 5, 32, dtype=torch.float64)
    >>> bool(torch.allclose(net.pull(0, A), A @ net.weights[0]))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..layers.base import AffineLayer, Layer

if TYPE_CHECKING:
    from ..graph import Graph
    from .mlp import DenseMLP

__all__ = ["RunOp", "RunOps", "with_run_ops"]


@dataclass(frozen=True)
class RunOps:
    """``max_density``: a run is applied by its layers when at most this share of its dense matrix is
    nonzero (a dense Linear is 100%: its layer form is the same product; convolutions are a few %)."""

    max_density: float = 0.25


class RunOp:
    """The linear part of a run of layers: ``apply(x)`` is ``W x`` (without the bias), ``pull(A)`` is ``A W``
    (coefficients on the output, any leading dims, flat last dim, to coefficients on the input)."""

    def __init__(self, layers: tuple[Layer, ...], in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 shapes: tuple[tuple[int, ...], ...]) -> None:
        self.layers, self.in_shape, self.out_shape, self.shapes = layers, in_shape, out_shape, shapes

    @staticmethod
    def of(layers: tuple[Layer, ...], in_shape: tuple[int, ...], like: torch.Tensor) -> RunOp:
        shapes = [tuple(in_shape)]
        with torch.no_grad():
            x = like.new_zeros((1,) + tuple(in_shape))
            for layer in layers:
                x = layer.dense_linear(x)
                shapes.append(tuple(x.shape[1:]))
        return RunOp(layers, tuple(in_shape), shapes[-1], tuple(shapes))

    def to(self, target: torch.device | torch.dtype | str) -> RunOp:
        """A copy on another device or in another dtype (as :meth:`DenseMLP.to`)."""
        ref = next((t for layer in self.layers for t in vars(layer).values()
                   if isinstance(t, torch.Tensor) and t.is_floating_point()), None)
        if ref is None:  # no tensors: nothing to move
            return self
        dev, dtype = (ref.device, target) if isinstance(target, torch.dtype) else (torch.device(target), ref.dtype)
        return RunOp(tuple(layer.to(dev, dtype) for layer in self.layers), self.in_shape, self.out_shape,
                     self.shapes)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T`` for flat ``x`` (B, n_in)."""
        h = x.reshape((x.shape[0],) + self.in_shape)
        for layer in self.layers:
            h = layer.dense_linear(h)
        return h.reshape(x.shape[0], -1)

    def pull(self, A: torch.Tensor) -> torch.Tensor:
        """``A @ W`` for ``A`` (..., n_out)."""
        lead = A.shape[:-1]
        rows = math.prod(lead)
        cur = A.reshape((1, rows) + self.out_shape)
        for layer, shape in zip(reversed(self.layers), reversed(self.shapes[:-1])):
            if isinstance(layer, AffineLayer):
                cur = layer.transpose(cur, shape)
            else:  # a reshape-role layer: its transpose by autograd (linear, so exact)
                vjp = torch.func.vjp(layer.dense_linear, cur.new_zeros((rows,) + shape))[1]
                cur = vjp(cur.reshape((rows,) + tuple(cur.shape[2:])))[0].reshape((1, rows) + shape)
        return cur.reshape(lead + (math.prod(self.in_shape),))


def with_run_ops(graph: Graph, net: DenseMLP, *, settings: RunOps = RunOps()) -> DenseMLP:
    """``net`` (read from ``graph`` by :func:`~robustest.certify.mlp.dense_mlp`) with a :class:`RunOp` for
    each run whose dense matrix is sparse, in the dtype and on the device of ``net``'s weights. A residual
    read (a block reading several sources, :mod:`.dense_read`) keeps its dense matrices: a run of layers
    applied in turn is a chain's form."""
    from dataclasses import replace

    from .mlp import dense_plan

    plan = dense_plan(graph)
    if plan.residual:
        return net
    ops: list[RunOp | None] = []
    for k, w in enumerate(net.weights, start=1):
        src, end = plan.source_nodes[k - 1], plan.ends[k - 1]
        chain = all(graph.nodes[j].inputs == (j - 1,) for j in range(src + 1, end + 1))
        density = float((w != 0).sum()) / max(1, w.numel())
        if density > settings.max_density or end <= src or not chain:
            ops.append(None)
            continue
        layers = tuple(graph.nodes[j].layer.to(w.device, w.dtype)  # type: ignore[union-attr]
                       for j in range(src + 1, end + 1))
        ops.append(RunOp.of(layers, tuple(graph.nodes[src].shape), w))
    return replace(net, ops=tuple(ops))
