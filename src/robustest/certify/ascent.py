"""Projected gradient ascent on relaxation parameters: the one loop of alpha-CROWN and beta-CROWN.

alpha-CROWN (the ReLU lower slopes of a graph, :mod:`robustest.certify.crown`; of one dense layer's
intermediate bounds, :mod:`robustest.certify.mlp`) and beta-CROWN (slopes and split multipliers per BaB
domain, :mod:`robustest.certify.beta_crown`) all maximise a sound lower bound over parameters that keep
it sound anywhere in their feasible set: Adam on ``-bound.sum()``, a projection back into the set after
each step, and every iterate's bound seen by the caller (any iterate's bound is sound, so the caller keeps
the best one). Only the bound and the projection differ, so they are arguments.

    >>> import torch
    >>> a = torch.zeros(3)
    >>> best = Best()
    >>> ascend([(a, 0.1)], lambda: -(a - 0.5).pow(2), steps=50, project=lambda: a.clamp_(0, 1), seen=best)
    >>> bool(best.value.max() > -1e-3)
    True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from .adam import Adam

__all__ = ["Best", "ascend"]


class Best:
    """The elementwise best (largest) of the bounds seen (``value``; None before the first, unless a
    ``start`` is given) and, for each tensor of ``track``, its entries at the iterate that gave each best
    bound (``args``; a bound of shape S picks along the leading dims S of a tracked tensor). A NaN bound
    is never kept."""

    def __init__(self, start: torch.Tensor | None = None, *, track: Sequence[torch.Tensor] = ()) -> None:
        self.value = start
        self.track = list(track)
        self.args = [t.detach().clone() for t in self.track]

    def __call__(self, low: torch.Tensor) -> None:
        if self.value is None:
            self.value = low
            self.args = [t.detach().clone() for t in self.track]
            return
        better = low > self.value
        if self.track and bool(better.any()):
            for j, t in enumerate(self.track):
                m = better.reshape(better.shape + (1,) * (t.dim() - better.dim()))
                self.args[j] = torch.where(m, t.detach(), self.args[j])
        self.value = torch.where(better, low, self.value)


def ascend(params: Sequence[tuple[torch.Tensor, float]], bound: Callable[[], torch.Tensor], *, steps: int,
           project: Callable[[], object], seen: Callable[[torch.Tensor], None],
           deadline: float = float("inf")) -> None:
    """``steps`` Adam steps (each parameter with its learning rate) raising ``bound()``; ``project()``
    runs under ``no_grad`` after each step and ``seen`` gets each iterate's bound (detached). The
    parameters are updated in place (made to require grad); no step starts after ``deadline`` (so none
    may run: a caller without a ``start`` bound in ``seen`` checks for that)."""
    for p, _ in params:
        p.requires_grad_(True)
    opt = Adam([{"params": [p], "lr": lr} for p, lr in params])
    with torch.enable_grad():
        for _ in range(steps):
            if time.perf_counter() >= deadline:
                break
            low = bound()
            seen(low.detach())
            opt.zero_grad()
            (-low.sum()).backward()
            opt.step()
            with torch.no_grad():
                project()
