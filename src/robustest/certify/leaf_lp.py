"""The exact bound on a branch-and-bound leaf: a domain whose every ReLU is fixed is a linear program.

On such a domain the network is affine, so ``min C f(x)`` over ``{x in box, s_j z_j(x) >= 0}`` is an LP.
beta-CROWN reaches its optimum only in the limit of its multiplier optimisation (a leaf 2e-5 above zero
stayed at -1.2e-3 after 200 Adam steps on a 12-neuron layer); without this the search would have to give
up on such a leaf. The LP optimum is lowered by the solver tolerance (:func:`robustest.certify.lp.safe`).

    >>> import torch
    >>> from robustest.certify.mlp import DenseMLP
    >>> f64 = torch.float64
    >>> net = DenseMLP((torch.tensor([[1.0], [-1.0]], dtype=f64), torch.tensor([[1.0, 1.0]], dtype=f64)),
    ...                (torch.zeros(2, dtype=f64), torch.zeros(1, dtype=f64)))
    >>> lo, hi = torch.tensor([0.5], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    >>> round(leaf_margin(net, lo, hi, torch.tensor([1, -1]), torch.ones(1, 1, dtype=torch.float64),
    ...                   torch.zeros(1, dtype=torch.float64)), 4)   # relu(x) + relu(-x) = x >= 0.5
    0.5
"""

from __future__ import annotations

import numpy as np
import torch

from ..solvers import open_solver
from ..solvers.base import Problem
from .lp import safe
from .mlp import DenseMLP


def leaf_margin(net: DenseMLP, lo: torch.Tensor, hi: torch.Tensor, signs: torch.Tensor, C: torch.Tensor,
                b: torch.Tensor, *, solver: str = "highs") -> float:
    """A sound lower bound of ``max_k (C f(x) - b)_k`` over the box points whose ReLU signs are ``signs``
    (N,) (+1 active, -1 inactive, every neuron fixed; a carry of the net's slopes is linear, its sign
    ignored; a LeakyReLU's inactive side is ``slope * z``); ``inf`` if there is no such point. Rows with
    ``b = inf`` (padding) are skipped."""
    p = Problem()
    h = p.add_vars(lo.cpu().numpy(), hi.cpu().numpy())
    s = signs.cpu().numpy()
    a = 0
    cols = np.arange(h.size)  # the columns of the next weight matrix that have a variable
    for i, (W, bias) in enumerate(zip(net.weights[:-1], net.biases[:-1])):
        Wn, bn = W.cpu().numpy()[:, cols], bias.cpu().numpy()
        n = Wn.shape[0]
        slope = np.zeros(n) if net.slope(i) is None else net.slope(i).cpu().numpy()  # type: ignore[union-attr]
        carry = slope == 1  # linear whatever its sign: y = z
        act = np.nonzero((s[a:a + n] > 0) & ~carry)[0]
        ina = np.nonzero((s[a:a + n] <= 0) & ~carry)[0]
        a += n
        if ina.size:  # W h + b <= 0
            r, c = np.nonzero(Wn[ina])
            p.add_rows(r, h[c], Wn[ina][r, c], lo=np.full(ina.size, -np.inf), hi=-bn[ina])
        # a variable y = m (W h + b) per neuron with an output: m = 1 (active, y >= 0; carries, free), or a
        # LeakyReLU's slope on the inactive side
        keep = np.sort(np.r_[act, np.nonzero(carry)[0], ina[slope[ina] != 0]])
        m = np.where(s[a - n:a][keep] > 0, 1.0, slope[keep])
        m[carry[keep]] = 1.0
        y = p.add_vars(np.where(np.isin(keep, act), 0.0, -np.inf), np.full(keep.size, np.inf))
        Wk = Wn[keep] * m[:, None]
        r, c = np.nonzero(Wk)
        p.add_rows(np.r_[r, np.arange(keep.size)], np.r_[h[c], y], np.r_[-Wk[r, c], np.ones(keep.size)],
                   lo=m * bn[keep], hi=m * bn[keep])
        h, cols = y, keep
    Wl, bl = net.weights[-1].cpu().numpy()[:, cols], net.biases[-1].cpu().numpy()
    handle = open_solver(p, solver)
    best = -np.inf
    for row, rhs in zip(C.cpu().numpy(), b.cpu().numpy()):
        if not np.isfinite(rhs):
            continue
        w = row @ Wl
        res = handle.minimize({int(v): float(x) for v, x in zip(h, w) if x != 0}, offset=float(row @ bl))
        if res.status == "infeasible":
            return float("inf")
        if res.status == "optimal":
            best = max(best, safe(res.objective) - float(rhs))
    return float(best)
