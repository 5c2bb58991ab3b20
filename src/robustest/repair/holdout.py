"""Data the repair must not fit: the held-out split and its clean and robust accuracy.

The loss constraint of a guided repair uses training data; a share of it (or the user's ``holdout=``)
is set aside, never seen by the repair, and measured before and after: clean accuracy, and robust
accuracy under the test's own attacks at the test's eps.

    >>> import torch
    >>> x, y = torch.rand(8, 2), torch.arange(8) % 2
    >>> (xl, yl), (xh, yh) = split((x, y), share=0.25, seed=0)
    >>> len(yl), len(yh)
    (6, 2)
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch

from .guided_types import HoldoutFigures, RepairTest

Data = Tuple[torch.Tensor, torch.Tensor]


def split(data: Data, *, share: float, seed: int) -> Tuple[Data, Data]:
    """A fixed random split of ``data`` into (the repair's part, the held-out part of ``share``)."""
    x, y = data
    n_hold = max(1, int(round(len(y) * share)))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)).to(y.device)
    hold, keep = perm[:n_hold], perm[n_hold:]
    return (x[keep], y[keep]), (x[hold], y[hold])


def figures(model: Any, data: Optional[Data], test: RepairTest, *, limit: int) -> Optional[HoldoutFigures]:
    """Clean accuracy on ``data`` and robust accuracy under the test's attacks at its eps (on at most
    ``limit`` samples); None without data."""
    if data is None:
        return None
    x, y = data
    with torch.no_grad():
        clean = float((model(x).argmax(1) == y).float().mean())
    xs, ys = x[:limit], y[:limit]
    held = RepairTest(xs, ys, check={**test.check, "escalate": "attack"}, min_pass=test.min_pass,
                      require=test.require)
    counts = held.run(model).counts()
    robust = 1.0 - (counts["falsified"] + counts["misclassified"]) / max(1, len(ys))
    return HoldoutFigures(samples=int(len(y)), clean=clean, robust=robust, robust_samples=int(len(ys)))


def clean_accuracy(model: Any, data: Data) -> float:
    x, y = data
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def nearest(train_x: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` training inputs nearest (L2) to each of ``points`` (unique, flattened)."""
    if k == 0 or len(points) == 0 or len(train_x) == 0:
        return torch.zeros(0, dtype=torch.long, device=train_x.device)
    dist = torch.cdist(points.flatten(1).to(train_x), train_x.flatten(1))
    return dist.topk(min(k, len(train_x)), dim=1, largest=False).indices.flatten().unique()


def nearest_other(train: Data, points: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` training samples nearest (L2) to each point among those of *another* class
    than the point's label (unique, flattened): the samples a correction towards the label may break."""
    x, y = train
    if k == 0 or len(points) == 0 or len(y) == 0:
        return torch.zeros(0, dtype=torch.long, device=y.device)
    dist = torch.cdist(points.flatten(1).to(x), x.flatten(1))
    dist = dist.masked_fill(y[None, :] == labels.to(y.device)[:, None], float("inf"))
    near = dist.topk(min(k, len(y)), dim=1, largest=False)
    return near.indices[near.values.isfinite()].unique()


__all__ = ["split", "figures", "clean_accuracy", "nearest", "nearest_other"]
