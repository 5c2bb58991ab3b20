"""Minimal perturbation by bisection on eps with a fixed-budget attack (the baseline of seeds/003 Table 1).

For each sample, PGD (through :func:`robustest.attack`, so every success is re-checked) is run at the
middle of a bracket ``[lo, hi]``: success moves ``hi`` down (and keeps the adversarial input), failure
moves ``lo`` up. The answer is the last successful input; its distance is at most ``hi``. Failure at an
eps does not prove robustness there, so ``lo`` is *not* a lower bound on the radius.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2)).eval()
    >>> out = pgd_search(net, torch.rand(3, 2), torch.zeros(3, dtype=torch.long), norm="l2", hi=3.0, steps=4)
    >>> out[0].shape
    torch.Size([3, 2])
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch

from ..spec import Bound, lp_norm


def pgd_search(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, norm: str = "l2",
               domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0), hi: Union[float, torch.Tensor] = 1.0,
               steps: int = 10, method: str = "pgd", seed: int = 0,
               **attack_options: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """Bisect eps in ``[0, hi]`` per sample; returns ``(adversarial, success)``.

    ``hi`` is the starting upper end (a float or one per sample, e.g. DeepFool's distances); it is
    doubled up to 4 times for samples not broken there. ``attack_options`` go to the attack (e.g.
    ``steps=50, restarts=2``).
    """
    from ..api import attack

    n = inputs.shape[0]
    upper = torch.as_tensor(hi, dtype=torch.float64).expand(n).clone()
    adv = inputs.clone()
    found = torch.zeros(n, dtype=torch.bool)
    for i in range(n):
        x, y = inputs[i:i + 1], labels[i:i + 1]
        lo, top = 0.0, float(upper[i])

        def run(eps: float, x: torch.Tensor = x, y: torch.Tensor = y) -> Optional[torch.Tensor]:
            out = attack(model, x, y, eps=eps, norm=norm, method=method, domain=domain, seed=seed,
                         **attack_options)
            return out.adversarial[0] if bool(out.success[0]) else None

        for _ in range(5):  # find an eps that breaks the sample
            hit = run(top)
            if hit is not None:
                adv[i], found[i] = hit, True
                break
            lo, top = top, top * 2
        if not bool(found[i]):
            continue
        top = float(lp_norm((adv[i] - inputs[i]).reshape(1, -1), norm)[0])
        for _ in range(steps):
            mid = (lo + top) / 2
            hit = run(mid)
            if hit is None:
                lo = mid
            else:
                adv[i] = hit
                top = min(mid, float(lp_norm((hit - inputs[i]).reshape(1, -1), norm)[0]))
    return adv, found.to(inputs.device)


__all__ = ["pgd_search"]
