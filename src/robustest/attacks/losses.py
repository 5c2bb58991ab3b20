"""Per-sample attack losses (higher is better for the attacker).

All take logits (N, K), labels (N,) and optional targets (N,) and return a loss per sample (N,).

    >>> import torch
    >>> z = torch.tensor([[3.0, 1.0, 0.0]])
    >>> float(margin_loss(z, torch.tensor([0])))  # best other logit minus true logit
    -2.0
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def _other_max(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return z.scatter(1, y[:, None], float("-inf")).amax(1)


def ce_loss(z: torch.Tensor, y: torch.Tensor, t: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Cross-entropy of the true label; targeted: minus cross-entropy of the target."""
    if t is not None:
        return -F.cross_entropy(z, t, reduction="none")
    return F.cross_entropy(z, y, reduction="none")


def margin_loss(z: torch.Tensor, y: torch.Tensor, t: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Carlini-Wagner margin: (best other or target logit) minus true logit; > 0 means misclassified."""
    true = z.gather(1, y[:, None])[:, 0]
    other = z.gather(1, t[:, None])[:, 0] if t is not None else _other_max(z, y)
    return other - true


def target_margin(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Target logit minus the best other logit; > 0 means the target is predicted."""
    return z.gather(1, t[:, None])[:, 0] - _other_max(z, t)


def dlr_loss(z: torch.Tensor, y: torch.Tensor, t: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Difference of logits ratio (Croce & Hein 2020), invariant to shifting and scaling the logits.

    Untargeted: -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3). Targeted: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).
    Needs K >= 3 (K >= 4 targeted); fewer classes fall back to the plain margin.
    """
    k = z.shape[1]
    if k < (4 if t is not None else 3):
        return margin_loss(z, y, t)
    # the top logits by indices found without autograd, then gathered: the same values and gradient as a
    # differentiable sort, whose backward (a scatter into an N x K zero tensor) costs several times more
    zs = z.gather(1, z.detach().topk(4 if t is not None else 3, dim=1).indices)
    true = z.gather(1, y[:, None])[:, 0]
    if t is not None:
        denom = zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12
        return -(true - z.gather(1, t[:, None])[:, 0]) / denom
    # the best other logit from the sorted ones (no one-hot mask): the top one unless it is the true
    # class's, then the second (on a tie the two are equal, so either is right)
    other = torch.where(zs[:, 0] == true, zs[:, 1], zs[:, 0])
    return -(true - other) / (zs[:, 0] - zs[:, 2] + 1e-12)


LOSSES: Dict[str, Loss] = {"ce": ce_loss, "margin": margin_loss, "dlr": dlr_loss}


def is_success(z: torch.Tensor, y: torch.Tensor, t: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Attack success per sample: the prediction is not the label and, when targeted, is the target (a
    target equal to the label can never be reached: predicting the label is no counterexample)."""
    pred = z.argmax(1)
    return (pred != y) & (pred == t) if t is not None else pred != y
