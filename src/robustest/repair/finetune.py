"""Adversarial fine-tuning steps (Madry et al.): the ``method="adversarial-finetune"`` round.

Each step attacks a batch (the test's samples plus a random batch of training samples) with PGD at the
test's eps on the current model, then takes one Adam step on the cross-entropy at the adversarial
points. The model stays in eval mode (batch-norm statistics frozen, dropout off), as in the repair.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2)).eval()
    >>> tuner = FineTuner(net, lr=1e-3)
    >>> x, y = torch.rand(6, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    >>> tuner.steps(x[:2], y[:2], (x, y), eps=0.1, norm="linf", domain=(0.0, 1.0), steps=2, batch=4,
    ...             pgd_steps=3, seed=0, deadline=float("inf"))
    2
"""

from __future__ import annotations

import time
from typing import Any, Optional, Tuple

import torch

Data = Tuple[torch.Tensor, torch.Tensor]


class FineTuner:
    """Adam on ``model``'s parameters (one optimiser for all rounds, so its moments carry over)."""

    def __init__(self, model: torch.nn.Module, *, lr: float) -> None:
        self.model = model
        self.optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        self.generator = torch.Generator()

    def steps(self, x_test: torch.Tensor, y_test: torch.Tensor, train: Optional[Data], *, eps: float, norm: str,
              domain: Any, steps: int, batch: int, pgd_steps: int, seed: int, deadline: float) -> int:
        """Up to ``steps`` PGD training steps, stopping at ``deadline`` (perf_counter seconds); returns
        how many were taken."""
        from ..api import attack

        self.generator.manual_seed(seed)
        done = 0
        for k in range(steps):
            if time.perf_counter() >= deadline:
                break
            x, y = x_test, y_test
            if train is not None and len(train[1]):
                idx = torch.randint(len(train[1]), (batch,), generator=self.generator).to(train[1].device)
                x, y = torch.cat([x_test, train[0][idx]]), torch.cat([y_test, train[1][idx]])
            adv = attack(self.model, x, y, eps=eps, norm=norm, method="pgd", domain=domain, seed=seed + k,
                         steps=pgd_steps).adversarial.detach()
            self.optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(adv), y)
            loss.backward()
            self.optimiser.step()
            done += 1
        self.optimiser.zero_grad(set_to_none=True)
        return done


__all__ = ["FineTuner"]
