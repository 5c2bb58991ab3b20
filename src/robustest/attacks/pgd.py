"""Projected gradient ascent (Madry et al. 2018) in linf, l2 or l1, with random restarts, and FGSM as
its one-step special case.

Each step moves along the norm's steepest-ascent direction (sign for linf, normalised gradient for l2)
and projects back onto ball ∩ domain. Samples leave the batch as soon as they are misclassified
(per-sample early stop), so later steps cost only the unbroken ones.

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> model = torch.nn.Linear(2, 2).eval()
    >>> out = PGD(steps=20, restarts=2)(model, torch.rand(3, 2), torch.tensor([0, 1, 0]), LpBall(0.3, "l2"))
    >>> out.success.shape
    torch.Size([3])
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..errors import invalid_argument
from ..spec import LpBall
from ..streams import RandomSource, subset
from .base import Attack, Deadline, Found, check_steps, compact, input_gradient
from .losses import LOSSES, is_success


class PGD(Attack):
    """PGD with ``steps`` iterations of size ``step_size`` (default ``2.5 * eps / steps``), ``restarts``
    random starts (the first from a random point when ``random_start``), loss "ce", "margin" or "dlr"."""

    name = "pgd"

    def __init__(self, *, steps: int = 40, restarts: int = 1, step_size: Optional[float] = None,
                 loss: str = "ce", random_start: bool = True, early_stop: bool = True) -> None:
        self.steps = check_steps("steps", steps)
        self.restarts = check_steps("restarts", restarts)
        if loss not in LOSSES:
            raise invalid_argument("loss", loss, f"one of {sorted(LOSSES)}", "pass loss='ce'")
        if step_size is not None and not step_size > 0:
            raise invalid_argument("step_size", step_size, "a number > 0", "omit it for 2.5 * eps / steps")
        self.step_size, self.loss, self.random_start, self.early_stop = step_size, loss, random_start, early_stop

    def search(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
               targets: Optional[torch.Tensor], generator: Optional[RandomSource],
               deadline: Deadline) -> torch.Tensor:
        loss_fn = LOSSES[self.loss]
        alpha = self.alpha(ball)
        found = Found(x0)
        for restart in range(self.restarts):
            idx = found.remaining()
            if idx.numel() == 0 or deadline.passed():
                break
            xs0, ys, ts = compact(idx, x0, y, targets)
            assert xs0 is not None and ys is not None
            start_random = self.random_start or restart > 0
            x = ball.random_start(xs0, subset(generator, idx)) if start_random else xs0.clone()
            project = ball.projector(xs0)
            for step in range(self.steps + 1):
                if step == self.steps:  # the last iterate needs a forward pass only, no gradient
                    with torch.no_grad():
                        found.record(idx, x, is_success(model(x), ys, ts))
                    break
                z, _, g = input_gradient(model, x, loss_fn, ys, ts)
                keep = found.record(idx, x, is_success(z, ys, ts))
                if deadline.passed():
                    break
                if self.early_stop and not bool(keep.all()):
                    if not bool(keep.any()):
                        break
                    idx, x, xs0, ys, ts, g = compact(keep, idx, x, xs0, ys, ts, g)  # type: ignore[assignment]
                    assert xs0 is not None and ys is not None
                    project = ball.projector(xs0)
                assert x is not None and g is not None
                x = project(x + alpha * ball.steepest_direction(g))
        return found.best

    def alpha(self, ball: LpBall) -> float:
        """The step size for ``ball``."""
        return self.step_size if self.step_size is not None else 2.5 * ball.eps / self.steps


class FGSM(PGD):
    """Fast gradient sign method (Goodfellow et al. 2015): one full-size steepest step from the clean
    input (the fast gradient method for l2/l1)."""

    name = "fgsm"

    def __init__(self, *, loss: str = "ce") -> None:
        super().__init__(steps=1, restarts=1, loss=loss, random_start=False)

    def alpha(self, ball: LpBall) -> float:
        return ball.eps
