"""The adversarial training loss a repair may not raise: cross-entropy at PGD's loss-maximising points.

The attacks of :mod:`robustest.attacks` stop at the first misclassified point and hand back the clean
input where they fail, which is right for falsification; a robust *loss* wants the loss-maximising
point of every sample instead (Madry et al.'s inner maximisation), so :func:`max_loss_points` runs the
same PGD steps (random start, steepest ascent, projection onto ball ∩ domain) without the early stop.

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> net = torch.nn.Linear(2, 2).eval()
    >>> x, y = torch.rand(4, 2), torch.tensor([0, 1, 0, 1])
    >>> ball = LpBall(0.1, "linf", (0.0, 1.0))
    >>> bool(ball.contains(max_loss_points(net, x, y, ball, steps=5, seed=0), x).all())
    True
"""

from __future__ import annotations

from typing import Any

import torch

from ..attacks.base import input_gradient
from ..attacks.losses import ce_loss
from ..attacks.pgd import PGD
from ..spec import LpBall
from .jacobian import FlatModel

#: PGD steps behind the adversarial loss cut: one attack per cut point, so kept short
PGD_STEPS = 10


def max_loss_points(model: Any, x: torch.Tensor, y: torch.Tensor, ball: LpBall, *, steps: int = PGD_STEPS,
                    seed: int = 0) -> torch.Tensor:
    """PGD on the cross-entropy from a random start, ``steps`` steps of PGD's default size, every
    sample to the end (no early stop); the points lie in ``ball`` ∩ domain around ``x``."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    alpha = PGD(steps=steps).alpha(ball)
    project = ball.projector(x)
    adv = ball.random_start(x, generator)
    for _ in range(steps):
        _, _, g = input_gradient(model, adv, ce_loss, y, None)
        adv = project(adv + alpha * ball.steepest_direction(g))
    return adv.detach()


def adversarial_loss(fm: FlatModel, v: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, ball: LpBall,
                     seed: int) -> tuple[float, torch.Tensor]:
    """The mean cross-entropy at :func:`max_loss_points` of ``(x, y)`` at weights ``v``, and its gradient
    in ``v`` (Danskin: the gradient at the maximiser). The module holds ``v`` afterwards; the caller
    writes the weights it keeps."""
    fm.write(v)
    return fm.loss_and_grad(v, max_loss_points(fm.model, x, y, ball, seed=seed), y)


__all__ = ["PGD_STEPS", "adversarial_loss", "max_loss_points"]
