"""Adam for the bound optimisers (alpha-CROWN slopes, beta-CROWN multipliers): torch's own update rule
(:func:`torch.optim.adam.adam`), without ``torch.optim.Optimizer``.

Why not ``torch.optim.Adam``: its constructor is wrapped by ``torch._disable_dynamo``, which imports
``torch._dynamo`` on the first call: 3.4 s on an idle core and up to 5.9 s on the loaded 2-core machine
(measured with torch 2.13), spent inside a proof's time budget by every process that optimises a bound.
The functional update imports nothing.

The update runs fused (one pass over each tensor) on CPU and CUDA: measured on beta-CROWN's slopes of
mnist_fc 256x6 (float64, 9 x 1536 per domain, one core) 2.8-3.0x faster than torch's single-tensor loop,
which was 12% of a BaB run. Adam's iterates need no exactness: every slope in [0, 1] and every
multiplier >= 0 gives a sound bound, and the callers project onto those sets after each step.

    >>> import torch
    >>> a = torch.zeros(2, requires_grad=True)
    >>> opt = Adam([{"params": [a], "lr": 0.1}])
    >>> (a * torch.tensor([1.0, -1.0])).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in a.tolist()]
    [-0.1, 0.1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.optim.adam import adam

__all__ = ["Adam"]

#: devices with torch's fused Adam kernel (others take the single-tensor loop)
FUSED_DEVICES = ("cpu", "cuda")


class Adam:
    """``torch.optim.Adam``'s defaults (betas 0.9/0.999, eps 1e-8, no weight decay) over parameter groups
    ``[{"params": [...], "lr": ...}]`` or one list of tensors with ``lr``; ``zero_grad`` and ``step`` only."""

    def __init__(self, params: Sequence[Any], lr: float = 1e-3) -> None:
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups, "lr": lr}]
        self.groups = [(list(g["params"]), float(g.get("lr", lr))) for g in groups]
        params_all = [p for ps, _ in self.groups for p in ps]
        self.fused = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params_all)
        # the moments beside each parameter; the step counts where torch keeps them (the fused kernel: on
        # the parameter's device; the loop: on the CPU)
        self.state = [([torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps],
                       [torch.zeros((), dtype=torch.float32, device=p.device if self.fused else "cpu")
                        for p in ps]) for ps, _ in self.groups]

    def zero_grad(self) -> None:
        for ps, _ in self.groups:
            for p in ps:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for (ps, lr), (m, v, steps) in zip(self.groups, self.state):
            live = [i for i, p in enumerate(ps) if p.grad is not None]
            if live:
                adam([ps[i] for i in live], [ps[i].grad for i in live], [m[i] for i in live],  # type: ignore[misc]
                     [v[i] for i in live], [], [steps[i] for i in live], foreach=False,
                     fused=True if self.fused else None, amsgrad=False,
                     beta1=0.9, beta2=0.999, lr=lr, weight_decay=0.0, eps=1e-8, maximize=False)
