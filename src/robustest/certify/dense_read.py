"""A graph of linear layers and ReLU-like activations, residual ones included, as a :class:`DenseMLP` chain.

The branch and bound's bound code (:mod:`.mlp`, :mod:`.beta_crown`) works on a chain ``z_k = W_k h_{k-1} +
b_k``. A graph reads into one by each layer kind's ``dense_role`` (the registry):

* "relu" kinds (ReLU, LeakyReLU: ``y = x`` above 0, ``negative_slope * x`` below) are the activations,
  numbered ``1 .. L-1`` in graph order; the input ``x`` is source 0;
* every other node is "affine" or "reshape" (linear, e.g. Linear, Conv2d, BatchNorm, Flatten; an Add or
  Concat of branches): its value is an affine function of the sources, found by pushing an identity per
  source through it (each layer's ``dense_linear``; a multi-input "reshape" layer's ``forward`` is linear
  in all its inputs together, so each source's part goes through with zeros for the other inputs);
* the block before activation ``k`` (or the output) reads any earlier sources. A residual block reads two
  or more, so the chain *carries* each source it still needs forward: extra neurons of the layers between,
  with slope 1 (``h = z`` whatever the sign: exact, never split; :meth:`DenseMLP.carries`).

So ``W_k`` maps ``[h_{k-1}; carries_{k-1}]`` to ``[z_k; carries_k]``, and the chain computes the graph
exactly (``tests/certify/test_bab_residual.py``). Bounds on carries are bounds on the value they copy.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> class Res(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b, self.c = nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 1)
    ...     def forward(self, x):
    ...         h = torch.relu(self.a(x))
    ...         return self.c(torch.relu(self.b(h)) + h)
    >>> g = read_model(Res().eval(), torch.zeros(1, 2))
    >>> net = read(g)
    >>> net.widths, [s.tolist() for s in net.slopes]   # layer 2 also carries h_1 (slope 1)
    ([3, 6], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import accumulate

import torch

from ..errors import UnsupportedLayer
from ..graph import Graph
from .mlp import DenseMLP, DenseRead

__all__ = ["DensePlan", "plan", "read"]

_FIX = "Fix: use milp/crown for this network"


@dataclass(frozen=True)
class DensePlan:
    """The chain layout of a graph. Sources: 0 the input, ``k`` the ``k``-th activation node.
    ``source_nodes[k]`` is the graph node of source ``k``; ``ends[k-1]`` the node whose value is the block
    before activation ``k`` (``ends[-1]`` the output); ``reads[k-1]`` the sources that block reads;
    ``carries[k-1]`` the sources carried next to ``z_k`` (earlier sources a later block reads);
    ``slopes[k-1]`` activation ``k``'s negative-side slope."""

    source_nodes: tuple[int, ...]
    ends: tuple[int, ...]
    reads: tuple[tuple[int, ...], ...]
    carries: tuple[tuple[int, ...], ...]
    slopes: tuple[float, ...]
    sizes: tuple[int, ...]  # per source, its flat size

    def layout(self, k: int) -> list[int]:
        """The sources ``[h_{k-1}; carries_{k-1}]`` that block ``k``'s input holds, in order."""
        return [k - 1] + list(self.carries[k - 2]) if k > 1 else [0]

    @property
    def residual(self) -> bool:
        return any(self.carries)


def plan(graph: Graph, *, limits: DenseRead = DenseRead()) -> DensePlan:
    """The :class:`DensePlan` of ``graph`` (cheap: no matrix is built); raises :class:`UnsupportedLayer`
    naming the node when a layer is neither linear nor ReLU-like (or a LeakyReLU slope is negative: not
    monotone), or when a block's dense matrix would exceed ``limits.max_entries``."""
    source_of: dict[int, int] = {0: 0}
    source_nodes, ends, slopes = [0], [], []
    deps: list[frozenset[int]] = [frozenset({0})]
    for k, node in enumerate(graph.nodes[1:], start=1):
        layer = node.layer
        role = None if layer is None else layer.dense_role
        assert layer is not None
        if role == "relu":
            slope = float(layer.negative_slope)
            if not slope >= 0:
                raise UnsupportedLayer(f"layer {node.name} ({layer!r}) has a negative slope {slope}: the "
                                       "dense branch and bound takes non-decreasing ReLU-like activations. "
                                       f"{_FIX}")
            if len(node.inputs) != 1:
                raise UnsupportedLayer(f"layer {node.name} ({layer!r}) takes {len(node.inputs)} inputs. "
                                       f"{_FIX}")
            source_of[k] = len(source_nodes)
            source_nodes.append(k)
            ends.append(node.inputs[0])
            slopes.append(slope)
            deps.append(frozenset({source_of[k]}))
        elif role in ("affine", "reshape") and (len(node.inputs) == 1 or role == "reshape"):
            deps.append(frozenset().union(*(deps[j] for j in node.inputs)))
        else:
            raise UnsupportedLayer(f"layer {node.name} ({layer!r}) is neither linear nor a ReLU (or "
                                   "LeakyReLU): the dense "
                                   f"branch and bound handles linear layers (residual ones included), ReLU "
                                   f"and LeakyReLU only. {_FIX}")
    ends.append(graph.output)
    L = len(ends)
    reads = [tuple(sorted(deps[e])) for e in ends]
    carries = [tuple(j for j in range(k) if any(j in reads[m - 1] for m in range(k + 1, L + 1)))
               for k in range(1, L)]
    sizes = tuple(math.prod(graph.nodes[n].shape) for n in source_nodes)
    out = DensePlan(tuple(source_nodes), tuple(ends), tuple(reads), tuple(carries), tuple(slopes), sizes)
    for k in range(1, L + 1):
        m = math.prod(graph.nodes[ends[k - 1]].shape)
        for j in reads[k - 1]:
            n = sizes[j]
            if max(n, m) * n > limits.max_entries:
                end, src = graph.nodes[ends[k - 1]].name, graph.nodes[source_nodes[j]].shape
                raise UnsupportedLayer(f"the linear layers before node {end} on inputs of shape {src} would "
                                       f"be a dense {m} x {n} matrix, over the dense branch and bound's "
                                       f"limit of {limits.max_entries} entries. {_FIX}")
        rows = m + sum(sizes[j] for j in carries[k - 1]) if k < L else m
        cols = sum(sizes[j] for j in out.layout(k))
        if rows * cols > limits.max_entries:
            raise UnsupportedLayer(f"block {k} of the dense chain (with its skip-connection carries) would "
                                   f"be a dense {rows} x {cols} matrix, over the dense branch and bound's "
                                   f"limit of {limits.max_entries} entries. {_FIX}")
    return out


def read(graph: Graph, *, dtype: torch.dtype = torch.float64, limits: DenseRead = DenseRead()) -> DenseMLP:
    """The graph as a :class:`DenseMLP` (on the CPU) by its :func:`plan`; the slopes are only kept when
    some activation is not a ReLU or some source is carried."""
    p = plan(graph, limits=limits)
    cpu = torch.device("cpu")
    forms = _forms(graph, p, dtype, cpu)
    L = len(p.ends)
    weights, biases, slopes = [], [], []
    for k in range(1, L + 1):
        cols, bias = forms[p.ends[k - 1]]
        m = bias.numel()
        layout = p.layout(k)
        offs = [0, *accumulate(p.sizes[j] for j in layout)]
        offset, width = dict(zip(layout, offs)), offs[-1]
        carry = p.carries[k - 1] if k < L else ()
        W = torch.zeros(m + sum(p.sizes[j] for j in carry), width, dtype=dtype, device=cpu)
        for j, c in cols.items():
            W[:m, offset[j]:offset[j] + p.sizes[j]] = c.reshape(p.sizes[j], m).T
        r = m
        for j in carry:
            n = p.sizes[j]
            W[r:r + n, offset[j]:offset[j] + n] = torch.eye(n, dtype=dtype, device=cpu)
            r += n
        weights.append(W)
        biases.append(torch.cat([bias.reshape(m), bias.new_zeros(r - m)]))
        if k < L:
            slopes.append(torch.cat([torch.full((m,), p.slopes[k - 1], dtype=dtype, device=cpu),
                                     torch.ones(r - m, dtype=dtype, device=cpu)]))
    plain = not p.residual and all(s == 0 for s in p.slopes)
    return DenseMLP(tuple(weights), tuple(biases), () if plain else tuple(slopes))


def _forms(graph: Graph, p: DensePlan, dtype: torch.dtype, cpu: torch.device
           ) -> dict[int, tuple[dict[int, torch.Tensor], torch.Tensor]]:
    """Per node still needed, its value as ``({source: cols (n_source, *shape)}, bias (1, *shape))``."""
    source_of = {n: j for j, n in enumerate(p.source_nodes)}
    left = [0] * len(graph.nodes)  # consumers not yet read, to free forms early
    for node in graph.nodes[1:]:
        for j in node.inputs:
            left[j] += 1
    keep = set(p.ends)
    forms: dict[int, tuple[dict[int, torch.Tensor], torch.Tensor]] = {}

    def own(k: int) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        shape, n = graph.nodes[k].shape, p.sizes[source_of[k]]
        eye = torch.eye(n, dtype=dtype, device=cpu).reshape((n,) + tuple(shape))
        return {source_of[k]: eye}, torch.zeros((1,) + tuple(shape), dtype=dtype, device=cpu)

    forms[0] = own(0)
    with torch.no_grad():
        for k, node in enumerate(graph.nodes[1:], start=1):
            layer = node.layer
            assert layer is not None
            if k in source_of:
                forms[k] = own(k)
            else:
                layer = layer.to(cpu, dtype)
                ins = [forms[j] for j in node.inputs]
                if len(ins) == 1:
                    cols = {s: layer.dense_linear(c) for s, c in ins[0][0].items()}
                    bias = layer.forward(ins[0][1])
                else:  # a "reshape" layer linear in all inputs together: one source's part at a time
                    srcs = sorted(set().union(*(f[0] for f in ins)))
                    cols = {}
                    for s in srcs:
                        n = p.sizes[s]
                        parts = [f[0].get(s, f[1].new_zeros((n,) + tuple(f[1].shape[1:]))) for f in ins]
                        cols[s] = layer.forward(*parts)
                    bias = layer.forward(*[f[1] for f in ins])
                forms[k] = (cols, bias)
            for j in node.inputs:
                left[j] -= 1
                if left[j] == 0 and j not in keep:
                    forms.pop(j, None)
    return forms
