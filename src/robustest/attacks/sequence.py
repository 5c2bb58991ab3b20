"""Run several attacks in turn, each only on the samples still unbroken (AutoAttack's ensemble idea).

The default falsification sequence is cheap first: FGSM, then APGD with cross-entropy, APGD with the
DLR loss, and targeted APGD against the three most likely wrong classes. Robust samples cost at most
1 + 50 + 50 + 3 x 40 = 221 gradient steps; broken samples stop as soon as they break.

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> model = torch.nn.Linear(3, 3).eval()
    >>> out = run_sequence(model, torch.rand(4, 3), torch.zeros(4, dtype=torch.long), LpBall(0.2),
    ...                    build_sequence("auto"))
    >>> len(out.method)
    4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch

from ..errors import invalid_argument
from ..spec import LpBall
from ..streams import RandomSource, subset
from . import get_attack
from .base import Attack

AttackSpec = Union[str, Tuple[str, dict], Attack]

DEFAULT_SEQUENCE: Tuple[Tuple[str, dict], ...] = (
    ("fgsm", {}),
    ("apgd-ce", {"steps": 50}),
    ("apgd-dlr", {"steps": 50}),
    ("apgd-t", {"steps": 40, "targets": 3}),
)


def build_sequence(spec: Union[str, Sequence[AttackSpec]] = "auto", **options: Any) -> List[Attack]:
    """Attacks from "auto" (the default sequence), one name, or a list of names / (name, options) /
    Attack objects. ``options`` apply to a single named attack."""
    if isinstance(spec, str):
        if spec == "auto":
            return [get_attack(n, **o) for n, o in DEFAULT_SEQUENCE]
        return [get_attack(spec, **options)]
    out: List[Attack] = []
    for item in spec:
        if isinstance(item, Attack):
            out.append(item)
        elif isinstance(item, str):
            out.append(get_attack(item))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], dict):
            out.append(get_attack(item[0], **item[1]))
        else:
            raise invalid_argument("attacks", item, "a name, a (name, options) pair or an Attack",
                                   "pass attacks=['fgsm', ('pgd', {'steps': 100})]")
    if not out:
        raise invalid_argument("attacks", spec, "at least one attack", "pass attacks='auto'")
    return out


@dataclass(frozen=True)
class SequenceOutcome:
    adversarial: torch.Tensor
    success: torch.Tensor
    predicted: torch.Tensor
    method: Tuple[str, ...]


def run_sequence(model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall, attacks: Sequence[Attack], *,
                 targets: Optional[torch.Tensor] = None, generator: Optional[RandomSource] = None,
                 deadline: Optional[float] = None) -> SequenceOutcome:
    """Each attack runs on the samples no earlier attack broke; successes are already re-checked."""
    import time

    adv = x0.detach().clone()
    success = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
    with torch.no_grad():
        pred = model(x0).argmax(1)
    method = [""] * x0.shape[0]
    for attack in attacks:
        idx = (~success).nonzero()[:, 0]
        if idx.numel() == 0 or (deadline is not None and time.perf_counter() >= deadline):
            break
        t = targets[idx] if targets is not None else None
        out = attack(model, x0[idx], y[idx], ball, targets=t, generator=subset(generator, idx),
                     deadline=deadline)
        hit = idx[out.success]
        adv[hit] = out.adversarial[out.success]
        pred[hit] = out.predicted[out.success]
        success[hit] = True
        for i in hit.tolist():
            method[i] = attack.describe()
    return SequenceOutcome(adv, success, pred, tuple(method))
