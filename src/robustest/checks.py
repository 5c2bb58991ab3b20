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

import contextlib
import enum
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, List, Optional

import torch

from .attacks.losses import margin_loss
from .errors import HealthCheckError, caller_stacklevel, invalid_argument
from .spec import LpBall, lp_norm
from .streams import RandomSource
from .validate import silence_hint as _silence
from .validate import train_mode_message, training_modules


class HealthCheck(str, enum.Enum):
    train_mode = "train_mode"
    probabilities = "probabilities"
    nondeterministic = "nondeterministic"
    gradients = "gradients"
    masking = "masking"


class HealthCheckWarning(UserWarning):
    """A condition that makes robustness results less trustworthy."""


def as_suppressed(values: Optional[Iterable[Any]]) -> frozenset[str]:
    out = set()
    for v in values or ():
        name = v.value if isinstance(v, HealthCheck) else str(v)
        if name not in HealthCheck.__members__:
            raise invalid_argument("suppress_health_check", v, f"names from {list(HealthCheck.__members__)}",
                                   "pass e.g. suppress_health_check=['probabilities']")
        out.add(name)
    return frozenset(out)


@contextlib.contextmanager
def preserved_buffers(model: Any) -> Iterator[None]:
    """Put back every buffer of ``model`` (BatchNorm running statistics, counters) as it was on entry:
    a model run in train mode (``suppress_health_check=['train_mode']``) must not be changed by robustest."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():  # compared, not version-counted: batch_norm updates its stats unversioned
            for buf, copy in saved:
                if not torch.equal(buf, copy):
                    buf.copy_(copy)


def run_health_checks(model: Any, x: torch.Tensor, y: torch.Tensor,
                      suppress: Iterable[Any] = (), logits: Optional[torch.Tensor] = None) -> List[str]:
    """Run the checks on a few samples; raise for train mode, warn for the rest; return the warnings."""
    off = as_suppressed(suppress)
    found: List[str] = []
    training = training_modules(model)
    if training:
        msg = train_mode_message(training)
        if "train_mode" not in off:
            raise HealthCheckError(msg)
        found.append(msg)
    if x.shape[0] == 0:  # an empty slice (e.g. a shard of fewer samples than shards): nothing to judge
        return found
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


@dataclass(frozen=True)
class MaskingProbe:
    """The masking check's own small attacks: ``samples`` correctly classified inputs, PGD with ``steps``."""

    samples: int = 16
    steps: int = 20


def masking_check(model: Any, x: torch.Tensor, y: torch.Tensor, ball: LpBall, *, gradient_free: int,
                  attacked: int, probe: MaskingProbe = MaskingProbe(),
                  generator: Optional[RandomSource] = None) -> List[str]:
    """Signs that the gradient attacks are blind on this model (masked or obfuscated gradients), after
    the attacks ran: ``gradient_free`` of the ``attacked`` samples were broken by a gradient-free attack
    after every gradient attack failed on them. A small probe on up to ``probe.samples`` correctly
    classified samples adds: PGD at an unbounded radius (the whole domain) not reaching 100% though the
    batch holds inputs of other classes; PGD success not growing from eps to 4 eps; FGSM breaking samples
    PGD does not. Zero/NaN input gradients are the ``gradients`` check. Returns the warnings (one message).

        >>> import torch
        >>> from robustest.spec import LpBall
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2)).eval()
        >>> msgs = masking_check(net, torch.rand(8, 2), torch.zeros(8, dtype=torch.long), LpBall(0.1),
        ...                      gradient_free=3, attacked=8)
        >>> "Square attack broke 3 of 8 samples" in msgs[0]
        True
    """
    from .attacks import get_attack

    signs: List[str] = []
    if gradient_free:
        signs.append(f"the gradient-free Square attack broke {gradient_free} of {attacked} samples that every "
                     "gradient attack (FGSM, APGD) had left standing")
    with torch.no_grad():
        pred = model(x).argmax(1)
    right = (pred == y).nonzero()[:, 0][:probe.samples]
    if right.numel():
        xs, ys = x[right], y[right]
        pgd = get_attack("pgd", steps=probe.steps)

        def rate(radius: float, attack: Any = pgd) -> torch.Tensor:
            return attack(model, xs, ys, LpBall(radius, ball.norm, ball.domain), generator=generator).success

        at_eps = rate(ball.eps)
        n = len(ys)
        wide = _domain_diameter(ball, xs)
        if wide is not None and len(set(pred.tolist())) > 1:
            unbounded = rate(wide)
            if not bool(unbounded.all()):
                signs.append(f"PGD with an unbounded radius (the whole domain) broke only {int(unbounded.sum())} "
                             f"of {n} samples, though the batch holds inputs of other classes")
        larger = rate(4 * ball.eps)
        if int(larger.sum()) < int(at_eps.sum()):
            signs.append(f"PGD broke fewer samples at 4 eps ({int(larger.sum())} of {n}) than at eps "
                         f"({int(at_eps.sum())})")
        fgsm = rate(ball.eps, get_attack("fgsm"))
        beats = int((fgsm & ~at_eps).sum())
        if beats:
            signs.append(f"FGSM broke {beats} of {n} samples that {probe.steps}-step PGD did not")
    if not signs:
        return []
    return ["Health check masking: " + "; ".join(signs) + ". The gradients mislead the attacks here "
            "(masked or obfuscated gradients: rounding, a saturated layer, a non-differentiable step), so "
            "samples that survive gradient attacks are weak evidence of robustness. Fix: remove the "
            "non-differentiable part for testing, run attacks=['square'] or strength='thorough', and "
            "certify (escalate='crown') instead of trusting attacks. " + _silence("masking")]


def _domain_diameter(ball: LpBall, x: torch.Tensor) -> Optional[float]:
    """A radius whose ball holds the whole domain around any of its points (None: unbounded domain)."""
    if ball.domain is None:
        return None
    lo, hi = (torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in ball.domain)
    width = torch.broadcast_to(hi - lo, x[:1].shape).flatten(1)
    return float(lp_norm(width, ball.norm)[0])
