"""Health checks: conditions under which robustness numbers mean little (AutoAttack's flags).

Each check says what happened, with numbers, why it matters and how to silence it. A model in train
mode is an error (verdicts would depend on the batch and on chance); the others warn with a
:class:`HealthCheckWarning`. Silence any of them with ``suppress_health_check=[HealthCheck.<name>]`` (or
its string name) in :func:`robustest.check`, or ``suppress_health_check`` in the pytest settings.

    >>> import torch, warnings
    >>> softmaxed = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Softmax(dim=1)).eval()
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     _ = run_health_checks(softmaxed, torch.rand(4, 2), torch.zeros(4, dtype=torch.long))
    >>> "probabilities" in str(w[0].message)
    True
"""

from __future__ import annotations

import enum
import warnings
from typing import Any, Iterable, List, Optional

import torch

from .attacks.losses import margin_loss
from .errors import HealthCheckError, invalid_argument


class HealthCheck(str, enum.Enum):
    train_mode = "train_mode"
    probabilities = "probabilities"
    nondeterministic = "nondeterministic"
    gradients = "gradients"


class HealthCheckWarning(UserWarning):
    """A condition that makes robustness results less trustworthy."""


def _silence(name: str) -> str:
    return (f"Silence it with suppress_health_check=['{name}'] (pytest: "
            f"suppress_health_check = [\"{name}\"] in [tool.robustest]).")


def as_suppressed(values: Optional[Iterable[Any]]) -> frozenset[str]:
    out = set()
    for v in values or ():
        name = v.value if isinstance(v, HealthCheck) else str(v)
        if name not in HealthCheck.__members__:
            raise invalid_argument("suppress_health_check", v, f"names from {list(HealthCheck.__members__)}",
                                   "pass e.g. suppress_health_check=['probabilities']")
        out.add(name)
    return frozenset(out)


def run_health_checks(model: Any, x: torch.Tensor, y: torch.Tensor,
                      suppress: Iterable[Any] = (), logits: Optional[torch.Tensor] = None) -> List[str]:
    """Run the checks on a few samples; raise for train mode, warn for the rest; return the warnings."""
    off = as_suppressed(suppress)
    found: List[str] = []
    if isinstance(model, torch.nn.Module) and model.training:
        msg = ("Health check train_mode: the model is in train mode, so dropout and batch-norm make its "
               "outputs depend on chance and on the batch, and no verdict would be reproducible. Fix: call "
               "model.eval() before checking it. " + _silence("train_mode"))
        if "train_mode" not in off:
            raise HealthCheckError(msg)
        found.append(msg)
    xs, ys = x[:32], y[:32]
    with torch.no_grad():
        z1 = logits[:32] if logits is not None else model(xs)
        z2 = model(xs)
    if "probabilities" not in off and bool((z1 >= 0).all() and (z1 <= 1).all()):
        rowsum = z1.sum(1)
        if bool(torch.allclose(rowsum, torch.ones_like(rowsum), atol=1e-3)):
            found.append("Health check probabilities: every output row lies in [0, 1] and sums to 1, so the "
                         "model returns probabilities, not logits. Softmax outputs flatten gradients and weaken "
                         "attacks (false robustness). Fix: return the logits (drop the final softmax). "
                         + _silence("probabilities"))
    if "nondeterministic" not in off and not torch.equal(z1, z2):
        diff = float((z1 - z2).abs().max())
        found.append(f"Health check nondeterministic: two identical calls differ by up to {diff:.3g}, so "
                     "verdicts are not reproducible (dropout on? randomness in forward?). Fix: make forward "
                     "deterministic (model.eval()). " + _silence("nondeterministic"))
    if "gradients" not in off:
        found += _gradient_check(model, xs, ys)
    for msg in found:
        if not msg.startswith("Health check train_mode"):
            warnings.warn(msg, HealthCheckWarning, stacklevel=caller_stacklevel())
    return found


def _gradient_check(model: Any, x: torch.Tensor, y: torch.Tensor) -> List[str]:
    xg = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        try:
            # the margin loss, not cross-entropy: CE saturates to an exactly-zero gradient on confidently
            # classified samples in float32, which is no sign of masking
            loss = margin_loss(model(xg), y).sum()
            (g,) = torch.autograd.grad(loss, xg)
        except RuntimeError as exc:
            return [f"Health check gradients: the input gradient could not be computed ({exc}); gradient "
                    "attacks cannot run, so falsification is blind. " + _silence("gradients")]
    flat = g.flatten(1)
    bad = ~torch.isfinite(flat).all(1)
    zero = (flat == 0).all(1)
    msgs = []
    if bool(bad.any()):
        msgs.append(f"Health check gradients: NaN/Inf input gradients on {int(bad.sum())} of {len(y)} "
                    "samples; gradient attacks fail there (masked gradients give false robustness). "
                    + _silence("gradients"))
    if bool(zero.any()):
        msgs.append(f"Health check gradients: zero input gradients on {int(zero.sum())} of {len(y)} samples "
                    "(a non-differentiable step, rounding or clamping?); gradient attacks see nothing "
                    "there, which can look like robustness. " + _silence("gradients"))
    return msgs


def caller_stacklevel() -> int:
    """The ``stacklevel`` for a warning raised by the caller of this function that points at the first
    frame outside the library (the user's call, or the plugin's), however deep inside it was raised."""
    import os
    import sys
    from types import FrameType

    root = os.path.dirname(os.path.abspath(__file__))
    plugin = os.path.join(root, "plugin")
    level = 1
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(root) or name.startswith(plugin):
            return level
        frame, level = frame.f_back, level + 1
    return level

