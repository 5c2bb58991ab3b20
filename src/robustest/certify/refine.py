"""Tighter intermediate bounds by branch and bound on the network's prefix (the role MILP refinement plays
in alpha-beta-CROWN's ``bab-refine``, done with the batched beta-CROWN BaB instead of a MILP solver).

Why: on deep fully connected networks the pre-activation bounds of later layers blow up (every neuron of
the last layers unstable on mnist_fc 256x6 at eps 0.05), and a ReLU-split BaB over fixed intermediate bounds
then has to split hundreds of neurons. The bounds of layer ``k`` are the minimum and maximum of each of its
unstable neurons over the box, through ReLU layers ``1 .. k-1`` only: a small verification problem per
neuron. All of them go to one :func:`~robustest.certify.bab.bab_mlp` run on the prefix, two polytopes per
neuron (``z_j <= 0`` and ``z_j >= 0``): a polytope it closes is a proof that the neuron is stable; one that a
box point reaches (the neuron takes that sign) is dropped; for the others the smallest bound of an open
domain is still a sound bound, tighter than the root's. Layer by layer, each refined layer tightens the
alpha-CROWN bounds of the next before that one is refined in turn.

Measured on mnist_fc 256x4 prop_10_0.05 (``benchmarks/vnncomp.md``): 15 s of refinement take the unstable
neurons per layer from 32/73/3/53 to 32/51/0/38, and the BaB then proves the property at once (21 domains),
where on the root bounds its hardest disjunct was still open after 160 s.

    >>> import torch
    >>> from torch import nn
    >>> from robustest.graph import read_model
    >>> from robustest.certify.mlp import dense_mlp, root_bounds
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    >>> net = dense_mlp(read_model(model, torch.zeros(1, 4)))
    >>> lo, hi = -torch.ones(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    >>> ls, us = root_bounds(net, lo, hi)
    >>> rl, ru = refine_bounds(net, lo, hi, ls, us, deadline=float("inf"))
    >>> bool((rl[1] >= ls[1]).all() and (ru[1] <= us[1]).all())
    True
"""

from __future__ import annotations

import time

import torch

from ..spec import bound_rows
from .bab import bab_mlp
from .mlp import DenseMLP, layer_bound

__all__ = ["refine_bounds", "refine_layer"]


def refine_layer(net: DenseMLP, k: int, ls: list[torch.Tensor], us: list[torch.Tensor], lo: torch.Tensor,
                 hi: torch.Tensor, *, deadline: float, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds ``(l, u)`` of ReLU layer ``k``'s pre-activation (``k >= 2``), within ``ls[k-1]``/``us[k-1]``,
    tightened for its unstable neurons by BaB over layers ``1 .. k-1`` (whose bounds ``ls[:k-1]`` are used as
    they are) until ``deadline``."""
    l, u = ls[k - 1].clone(), us[k - 1].clone()
    slope = net.slope(k - 1)
    idx = torch.nonzero((l < 0) & (u > 0) & (True if slope is None else slope != 1)).flatten()  # no carries
    r = idx.numel()
    if r == 0 or time.perf_counter() >= deadline:
        return l, u
    prefix = net.prefix(k)
    n = l.numel()
    C = bound_rows(n, idx, like=lo).unsqueeze(1)  # (2r, 1, n): min z_j > 0 proves it active, min -z_j > 0 inactive
    # a sign that some point takes cannot be proved impossible: search only the others
    todo = (~_reached(prefix, lo, hi, C[:, 0], deadline=deadline)).nonzero().flatten()
    if todo.numel() == 0:
        return l, u
    st = bab_mlp(prefix, lo, hi, C[todo], C.new_zeros(todo.numel(), 1), deadline=deadline, batch=batch,
                 bounds=(ls[:k - 1], us[:k - 1]), drop_refuted=True, spread=True)
    assert st.worst is not None
    worst = torch.full((2 * r,), -float("inf"), dtype=lo.dtype, device=lo.device)
    worst[todo] = st.worst
    l[idx] = torch.maximum(l[idx], worst[:r])
    u[idx] = torch.minimum(u[idx], -worst[r:])
    return l, torch.maximum(u, l)


def _reached(net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, rows: torch.Tensor, steps: int = 20, *,
             deadline: float = float("inf")) -> torch.Tensor:
    """(R,): whether a point of the box was found with ``rows[i] @ net(x) < 0``: per row, a signed-gradient
    descent from the box centre (nudged at random), projected on the box, every iterate checked; no step
    starts after ``deadline`` (fewer rows found reached: the search bounds them instead)."""
    g = torch.Generator(device=lo.device).manual_seed(0)
    x = lo + (hi - lo) * (0.5 + 0.1 * (torch.rand((rows.shape[0], lo.numel()), generator=g, dtype=lo.dtype,
                                                  device=lo.device) - 0.5))
    hit = torch.zeros(rows.shape[0], dtype=torch.bool, device=lo.device)
    step = 0.25 * (hi - lo)
    with torch.enable_grad():
        for t in range(steps):
            if time.perf_counter() >= deadline:
                return hit
            x = x.detach().requires_grad_(True)
            val = (net.forward(x) * rows).sum(1)
            hit |= val.detach() < 0
            (grad,) = torch.autograd.grad(val.sum(), x)
            x = torch.minimum(torch.maximum(x - step * (0.8 ** t) * grad.sign(), lo), hi)
    with torch.no_grad():
        hit |= (net.forward(x) * rows).sum(1) < 0
    return hit


def refine_bounds(net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, ls: list[torch.Tensor],
                  us: list[torch.Tensor], *, deadline: float, alpha_steps: int = 30, batch: int = 256
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every ReLU layer's bounds from the second on, refined in turn (:func:`refine_layer`), each layer's
    alpha-CROWN bounds first recomputed on the refined layers before it and intersected with the given ones.
    The time to ``deadline`` is shared evenly by the layers still to do. Returns new lists; every bound is
    sound and no wider than the given one."""
    ls, us = list(ls), list(us)
    L = len(ls)
    for k in range(2, L + 1):
        now = time.perf_counter()
        if now >= deadline:
            break
        if k > 2:
            # the alpha steps get at most a third of this layer's share (30 steps took most of it on
            # oval21's conv nets)
            lk, uk = layer_bound(net, k, ls, us, lo, hi, alpha_steps=alpha_steps, deadline=deadline,
                                 alpha_deadline=now + (deadline - now) / (L - k + 1) / 3)
            ls[k - 1] = torch.maximum(ls[k - 1], lk)
            us[k - 1] = torch.maximum(torch.minimum(us[k - 1], uk), ls[k - 1])
        share = (deadline - time.perf_counter()) / (L - k + 1)
        ls[k - 1], us[k - 1] = refine_layer(net, k, ls, us, lo, hi, deadline=time.perf_counter() + share,
                                            batch=batch)
    return ls, us
