"""The open domains of a branch and bound, with their margins and checked lower bounds, kept in slots of
preallocated storage that grows by doubling.

Why: each round takes a batch of domains out and puts their children in. Rebuilding the queue's tensors
for that (``take`` the rest, ``cat`` the children) copies the whole queue every round: on mnist_fc 256x4,
with 16k queued domains, those copies took a quarter of the search's time (``benchmarks/vnncomp.md``).
Here taking and adding cost the batch; freed slots are reused.

    >>> import torch
    >>> from robustest.certify.beta_crown import DomainBatch
    >>> ls, us = [-torch.ones(3, dtype=torch.float64)], [torch.ones(3, dtype=torch.float64)]
    >>> root = DomainBatch.root(ls, us, 1, 2)          # two domains, one row each
    >>> q = DomainQueue()
    >>> q.add(root, torch.tensor([-1.0, -2.0], dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64))
    >>> len(q), q.margins().tolist()
    (2, [-1.0, -2.0])
    >>> batch, low = q.pop(q.live()[1:])
    >>> len(q), batch.prop.tolist()
    (1, [1])
"""

from __future__ import annotations

import torch

from .beta_crown import DomainBatch

__all__ = ["DomainQueue"]


class DomainQueue:
    """Slots of domains (:class:`DomainBatch` rows), their margins (per domain) and lower bounds (per row)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.store: DomainBatch | None = None
        self.marg = torch.zeros(0, dtype=torch.float64, device=device)
        self.low = torch.zeros(0, 0, dtype=torch.float64, device=device)
        self.used = torch.zeros(0, dtype=torch.bool, device=device)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def live(self) -> torch.Tensor:
        """The occupied slots, in increasing order."""
        return self.used.nonzero().flatten()

    def margins(self) -> torch.Tensor:
        """The margins of the occupied slots (in :meth:`live` order)."""
        return self.marg[self.used]

    def props(self) -> torch.Tensor:
        """The polytope of each occupied slot (in :meth:`live` order)."""
        if self.store is None:
            return torch.zeros(0, dtype=torch.long, device=self.used.device)
        return self.store.prop[self.used]

    def add(self, batch: DomainBatch, marg: torch.Tensor, low: torch.Tensor) -> None:
        """Put ``batch`` in free slots, growing the storage if there are too few."""
        n = len(batch)
        if n == 0:
            return
        free = (~self.used).nonzero().flatten()
        if self.store is None:
            self.store = batch.take(torch.zeros(0, dtype=torch.long, device=batch.prop.device))
            self.marg, self.low = marg.new_zeros(0), low.new_zeros((0,) + low.shape[1:])
        if free.numel() < n:
            self._grow(self.count + n)
            free = (~self.used).nonzero().flatten()
        slots = free[:n]
        assert self.store is not None
        self.store.splits[slots] = batch.splits
        self.store.alpha[slots] = batch.alpha
        self.store.beta[slots] = batch.beta
        self.store.prop[slots] = batch.prop
        self.marg[slots] = marg.to(self.marg.dtype)
        self.low[slots] = low.to(self.low.dtype)
        self.used[slots] = True
        self.count += n

    def pop(self, slots: torch.Tensor) -> tuple[DomainBatch, torch.Tensor]:
        """Take the domains of ``slots`` (occupied ones) out: their batch and lower bounds."""
        assert self.store is not None
        out, low = self.store.take(slots), self.low[slots]
        self.used[slots] = False
        self.count -= int(slots.numel())
        return out, low

    def discard(self, gone: torch.Tensor) -> None:
        """Free the slots of every domain whose polytope is marked in ``gone`` (P,) bool."""
        if self.store is None:
            return
        hit = self.used & gone[self.store.prop]
        self.used &= ~hit
        self.count -= int(hit.sum())

    def _grow(self, need: int) -> None:
        old = self.used.numel()
        cap = max(need, 2 * old, 1024)
        assert self.store is not None
        grown = DomainBatch(self.store.splits.new_zeros((cap,) + self.store.splits.shape[1:]),
                            self.store.alpha.new_zeros((cap,) + self.store.alpha.shape[1:]),
                            self.store.beta.new_zeros((cap,) + self.store.beta.shape[1:]),
                            self.store.prop.new_zeros(cap))
        for name in ("splits", "alpha", "beta", "prop"):
            getattr(grown, name)[:old] = getattr(self.store, name)
        marg, low = self.marg.new_full((cap,), float("inf")), self.low.new_zeros((cap,) + self.low.shape[1:])
        marg[:old], low[:old] = self.marg, self.low
        used = self.used.new_zeros(cap)
        used[:old] = self.used
        self.store, self.marg, self.low, self.used = grown, marg, low, used
