"""Auto-PGD (Croce & Hein 2020, the core of AutoAttack): a step-size-free PGD with momentum.

The step starts at ``2 * eps``; momentum is 0.75. At checkpoints (first after 22% of the iterations,
then at shrinking intervals with a floor of 6%) a sample's step is halved, and it restarts from its best
point, when fewer than 75% of its steps since the last checkpoint raised the loss, or when its step was
not halved last time and its best loss has not improved since. Losses: "ce" or the shift- and
scale-invariant "dlr". :class:`APGDT` is the targeted version over the most likely wrong classes.

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> model = torch.nn.Linear(4, 3).eval()
    >>> out = APGD(steps=20, loss="dlr")(model, torch.rand(5, 4), torch.zeros(5, dtype=torch.long),
    ...                                   LpBall(0.1, "linf"))
    >>> out.adversarial.shape
    torch.Size([5, 4])
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..errors import invalid_argument
from ..spec import LpBall
from ..streams import RandomSource, repeat, subset
from .base import (
    Attack,
    Deadline,
    Found,
    best_of_copies,
    check_steps,
    compact,
    input_gradient,
    target_copies,
    top_targets,
)
from .losses import LOSSES, is_success

MOMENTUM = 0.75
RHO = 0.75
#: with early stop, the batch is compacted (16 tensors copied) once fewer than this share of its rows are
#: still searched; until then the done rows ride along, masked (a copy costs about an elementwise step)
COMPACT_BELOW = 0.9


def checkpoints(steps: int) -> set[int]:
    """Iterations after which the step-size rule is evaluated (the paper's w_j)."""
    points, p_prev, p = [0.0], 0.0, 0.22
    while p < 1.0:
        points.append(p)
        p_prev, p = p, p + max(p - p_prev - 0.03, 0.06)
    return {int(round(q * steps)) for q in points[1:] if int(round(q * steps)) > 0}


class APGD(Attack):
    """APGD with ``steps`` iterations, ``restarts`` random starts and loss "ce" or "dlr"."""

    name = "apgd"

    def __init__(self, *, steps: int = 100, restarts: int = 1, loss: str = "ce",
                 early_stop: bool = True) -> None:
        self.steps = check_steps("steps", steps)
        self.restarts = check_steps("restarts", restarts)
        if loss not in LOSSES:
            raise invalid_argument("loss", loss, f"one of {sorted(LOSSES)}", "pass loss='ce' or loss='dlr'")
        self.loss, self.early_stop = loss, early_stop

    def describe(self) -> str:
        return f"apgd-{self.loss}"

    def search(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
               targets: Optional[torch.Tensor], generator: Optional[RandomSource],
               deadline: Deadline) -> torch.Tensor:
        return self._search(model, x0, y, ball, targets, targets, generator, deadline)

    def _search(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
                loss_targets: Optional[torch.Tensor], success_targets: Optional[torch.Tensor],
                generator: Optional[RandomSource], deadline: Deadline) -> torch.Tensor:
        """``loss_targets`` steer the loss; success means reaching ``success_targets`` (or any wrong
        label when None)."""
        found = Found(x0)
        for _, idx in found.rounds(self.restarts, deadline):
            self._run(model, x0, y, ball, loss_targets, success_targets, generator, deadline, found, idx)
        return found.best

    def _run(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
             loss_targets: Optional[torch.Tensor], success_targets: Optional[torch.Tensor],
             generator: Optional[RandomSource], deadline: Deadline, found: Found,
             idx: torch.Tensor) -> None:
        loss_fn = LOSSES[self.loss]
        marks = checkpoints(self.steps)
        xs0, ys, ts, ss = compact(idx, x0, y, loss_targets, success_targets)
        assert xs0 is not None and ys is not None
        x = ball.random_start(xs0, subset(generator, idx))
        project = ball.projector(xs0)
        z, loss, g = input_gradient(model, x, loss_fn, ys, ts)
        keep = found.record(idx, x, is_success(z, ys, ss))
        n = x.shape[0]
        eta = torch.full((n,), 2 * ball.eps, device=x.device, dtype=x.dtype)
        x_prev = x.clone()
        x_best, g_best, loss_best = x.clone(), g.clone(), loss.clone()
        loss_last = loss.clone()
        increases = torch.zeros(n, device=x.device)
        best_at_check = loss_best.clone()
        halved_at_check = torch.zeros(n, dtype=torch.bool, device=x.device)
        since_check = 0
        shape = (-1,) + (1,) * (x.dim() - 1)
        for it in range(self.steps):
            if deadline.passed():
                return
            if self.early_stop and not bool(keep.all()):
                if not bool(keep.any()):
                    return
                # a few rows done: cheaper to carry them along (masked, see _live) than to copy 16 tensors
                if int(keep.sum()) <= COMPACT_BELOW * keep.numel():
                    (idx, xs0, ys, ts, ss, x, x_prev, g, x_best, g_best, loss_best, loss_last, eta, increases,
                     best_at_check, halved_at_check) = compact(  # type: ignore[assignment]
                        keep, idx, xs0, ys, ts, ss, x, x_prev, g, x_best, g_best, loss_best, loss_last, eta,
                        increases, best_at_check, halved_at_check)
                    assert xs0 is not None and ys is not None
                    project = ball.projector(xs0)
                    keep = torch.ones(idx.shape[0], dtype=torch.bool, device=idx.device)
            assert x is not None and eta is not None
            z1 = project(torch.addcmul(x, eta.view(shape), ball.steepest_direction(g)))
            if it == 0:  # momentum 1: the plain projected step (z1 is already inside)
                x_new = z1
            else:  # x + a (z1 - x) + (1 - a) (x - x_prev), in three fused ops
                x_new = project(torch.add(torch.lerp(x, z1, MOMENTUM), x - x_prev, alpha=1 - MOMENTUM))
            x_prev, x = x, x_new
            if it + 1 == self.steps:  # the last iterate needs a forward pass only, no gradient
                with torch.no_grad():
                    found.record(idx, x, self._live(is_success(model(x), ys, ss), keep))
                return
            z, loss, g = input_gradient(model, x, loss_fn, ys, ts)
            done_before = ~keep
            keep = found.record(idx, x, self._live(is_success(z, ys, ss), keep))
            if self.early_stop:
                keep &= ~done_before
            increases += (loss > loss_last).to(increases.dtype)
            loss_last = loss
            better = loss > loss_best
            x_best = torch.where(better.view(shape), x, x_best)
            g_best = torch.where(better.view(shape), g, g_best)
            loss_best = torch.where(better, loss, loss_best)
            since_check += 1
            if it + 1 in marks:
                oscillating = increases < RHO * since_check
                stalled = ~halved_at_check & (loss_best <= best_at_check)
                halve = oscillating | stalled
                eta = torch.where(halve, eta / 2, eta)
                x = torch.where(halve.view(shape), x_best, x)
                g = torch.where(halve.view(shape), g_best, g)
                halved_at_check, best_at_check = halve, loss_best.clone()
                increases.zero_()
                since_check = 0

    def _live(self, success: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Successes of the rows still searched: with early stop, rows already done but not yet compacted
        away are carried along and never recorded again."""
        return success & keep if self.early_stop else success


class APGDT(APGD):
    """Targeted APGD with the targeted DLR loss against the ``targets`` most likely wrong classes (by clean
    logits), AutoAttack's APGD-T. With ``batch_targets`` (the default) all targets of all samples run as
    one batch of copies, and a sample's copies stop as soon as one of them breaks it; without it the
    targets run in turn, each on the samples still unbroken (less memory, more small-batch steps)."""

    name = "apgd-t"

    def __init__(self, *, steps: int = 100, restarts: int = 1, targets: int = 3,
                 early_stop: bool = True, batch_targets: bool = True) -> None:
        super().__init__(steps=steps, restarts=restarts, loss="dlr", early_stop=early_stop)
        self.n_targets = check_steps("targets", targets)
        self.batch_targets = batch_targets

    def describe(self) -> str:
        return "apgd-t"

    def search(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
               targets: Optional[torch.Tensor], generator: Optional[RandomSource],
               deadline: Deadline) -> torch.Tensor:
        if targets is not None:
            return super().search(model, x0, y, ball, targets, generator, deadline)
        ranked = top_targets(model, x0, y, self.n_targets)
        if self.batch_targets:
            return self._batched(model, x0, y, ball, ranked, generator, deadline)
        found = Found(x0)
        for j in range(ranked.shape[1]):
            idx = found.remaining()
            if idx.numel() == 0 or deadline.passed():
                break
            sub = self._search(model, x0[idx], y[idx], ball, ranked[idx, j], None, subset(generator, idx),
                               deadline)
            with torch.no_grad():
                hit = model(sub).argmax(1) != y[idx]
            found.record(idx, sub, hit)
        return found.best

    def _batched(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall, ranked: torch.Tensor,
                 generator: Optional[RandomSource], deadline: Deadline) -> torch.Tensor:
        """One search over copies of every sample, one copy per target."""
        xr, yr, tr, found = target_copies(x0, y, ranked)
        generator = repeat(generator, ranked.shape[1])
        for _, idx in found.rounds(self.restarts, deadline):
            self._run(model, xr, yr, ball, tr, None, generator, deadline, found, idx)
        return best_of_copies(found, x0, ranked.shape[1])
