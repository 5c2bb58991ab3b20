"""DeepFool (Moosavi-Dezfooli et al. 2016) with the boundary search of seeds/003.

DeepFool linearises the classifier at the current point and steps to the nearest linearised decision
boundary (in the chosen norm), repeating until the label flips. Its answer usually overshoots the
boundary, so seeds/003 follows it with a binary search on the segment from the clean input to DeepFool's
point: by continuity that segment crosses the boundary, and the crossing is a closer adversarial input.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    ...     _ = net[0].bias.copy_(torch.tensor([-0.5, 0.5]))
    >>> adv, ok = deepfool(net, torch.tensor([[0.8, 0.5]]), torch.tensor([0]), norm="l2")
    >>> bool(ok[0]), round(float(adv[0, 0]), 3)
    (True, 0.5)
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..spec import Bound, LpBall, dual_norm, lp_norm


#: an input counts as adversarial only when another logit beats the true one by this much (relative to the
#: logits' size): a tie broken by float32 rounding could flip back when the model is run in another batch
FLIP_TOL = 1e-5


def flipped(logits: torch.Tensor, labels: torch.Tensor,
            targets: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per row: some other class's logit (the ``targets`` class's, if given) exceeds the label's by more
    than rounding noise. A target that beats the label flips the label too."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    true = logits[rows, labels]
    if targets is None:
        other = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
    else:
        other = logits[rows, targets]
    return other - true > FLIP_TOL * (1 + logits.detach().abs().amax(1))


def _dual_step(w: torch.Tensor, norm: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """For rows ``w``: the dual norm ``||w||_q`` and the unit-p-norm direction ``v`` with
    ``<w, v> = ||w||_q`` (the steepest way to move a linear function)."""
    q = lp_norm(w, dual_norm(norm))
    if norm == "l2":
        return q, w / q.clamp_min(1e-12)[:, None]
    if norm == "linf":
        return q, w.sign()
    j = w.abs().argmax(1)
    v = torch.zeros_like(w)
    v.scatter_(1, j[:, None], w.gather(1, j[:, None]).sign())
    return q, v


def deepfool(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, norm: str = "l2",
             domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0), max_iter: int = 50,
             overshoot: float = 0.02, search_steps: int = 20,
             targets: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """DeepFool plus the boundary binary search, batched.

    Returns ``(adversarial, success)``: per sample the closest adversarial input found (the clean
    input where none was found) and whether the model's label differs from ``labels`` there.
    With ``targets`` (one class per sample), every step goes towards the linearised boundary of that
    class only, and success means its logit beats the label's (the targeted variant of the DeepFool
    paper); the boundary search then stays on that class's side.
    """
    ball = LpBall(eps=0.0, norm=norm, domain=domain)
    x0 = inputs.detach()
    flat0 = x0.flatten(1)
    n = x0.shape[0]
    total = torch.zeros_like(flat0)
    x = x0.clone()
    done = torch.zeros(n, dtype=torch.bool, device=x0.device)
    rows = torch.arange(n, device=x0.device)
    for _ in range(max_iter):
        x = x.detach().requires_grad_(True)
        logits = model(x)
        done = flipped(logits.detach(), labels, targets)
        if bool(done.all()):
            break
        k = logits.shape[1]
        grads = torch.stack([torch.autograd.grad(logits[:, j].sum(), x, retain_graph=j < k - 1)[0].flatten(1)
                             for j in range(k)], dim=1)  # (N, K, d)
        w = grads - grads[rows, labels][:, None, :]
        f = (logits - logits[rows, labels][:, None]).detach()
        scale, _ = _dual_step(w.reshape(n * k, -1), norm)
        dist = f.abs() / scale.view(n, k).clamp_min(1e-12)
        dist[rows, labels] = float("inf")
        j = dist.argmin(1) if targets is None else targets
        wj = w[rows, j]
        qn, v = _dual_step(wj, norm)
        step = ((f[rows, j].abs() + 1e-4) / qn.clamp_min(1e-12))[:, None] * v
        total = total + torch.where(done[:, None], torch.zeros_like(step), step)
        x = ball.clip_domain(x0 + ((1 + overshoot) * total).view_as(x0))
    with torch.no_grad():
        x = x.detach()
        success = flipped(model(x), labels, targets)
        return boundary_search(model, x0, x, labels, success, steps=search_steps, targets=targets), success


@torch.no_grad()
def boundary_search(model: torch.nn.Module, x0: torch.Tensor, adv: torch.Tensor, labels: torch.Tensor,
                    success: torch.Tensor, *, steps: int = 20,
                    targets: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bisect ``x0 + t (adv - x0)`` for the smallest ``t`` whose label differs from ``labels`` (with
    ``targets``: where the target's logit beats the label's).

    Only samples with ``success`` are searched; every point returned for them is adversarial
    (the upper end of the bracket always is).
    """
    lo = torch.zeros(x0.shape[0], device=x0.device, dtype=x0.dtype)
    hi = torch.ones_like(lo)
    diff = adv - x0
    shape = (-1,) + (1,) * (x0.dim() - 1)
    for _ in range(steps):
        mid = (lo + hi) / 2
        flips = flipped(model(x0 + mid.view(shape) * diff), labels, targets)
        hi = torch.where(flips, mid, hi)
        lo = torch.where(flips, lo, mid)
    out = x0 + hi.view(shape) * diff
    return torch.where(success.view(shape), out, x0)


def distance(x: torch.Tensor, x0: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample ``||x - x0||_p`` (a thin alias kept for the callers in this package)."""
    return lp_norm((x - x0).flatten(1), norm)


__all__ = ["deepfool", "boundary_search", "flipped", "FLIP_TOL"]
