"""Run several attacks in turn, each only on the samples still unbroken (AutoAttack's ensemble idea).

The default falsification sequence ("auto") is the gradient attacks, cheapest first, then a short
Square run on what survives: a model whose gradients are masked looks robust to every gradient attack,
and the gradient-free Square attack is what catches it. Its length is set by ``strength``, one frozen
:class:`Strength` per profile ("fast", "standard", "thorough"); "standard" was chosen by measurement
(benchmarks/attacks.md) to match AutoAttack's standard ensemble on the digits models in a fraction of
its time.

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> model = torch.nn.Linear(3, 3).eval()
    >>> out = run_sequence(model, torch.rand(4, 3), torch.zeros(4, dtype=torch.long), LpBall(0.2),
    ...                    build_sequence("auto"))
    >>> len(out.method)
    4
    >>> [a.describe() for a in build_sequence("auto", strength="fast")]
    ['fgsm', 'apgd-ce', 'apgd-t', 'square']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..errors import invalid_argument
from ..results import STRENGTH_NAMES
from ..spec import LpBall
from ..streams import RandomSource, subset
from . import get_attack
from .base import Attack

AttackSpec = Union[str, Tuple[str, dict], Attack]


@dataclass(frozen=True)
class Strength:
    """One profile of the default sequence: FGSM (when ``fgsm``), APGD-CE with ``ce_steps``, APGD-DLR
    with ``dlr_steps`` (0: left out), APGD-T with ``target_steps`` against ``targets`` classes, then
    Square with ``square_queries`` forward passes per surviving sample (0: left out), cut short after
    ``square_probe`` of them when it has broken nothing by then (None: never cut short), and given further
    rounds from fresh starts while it keeps breaking samples past the probe, up to ``square_max_queries``
    per sample (None: one round)."""

    fgsm: bool
    ce_steps: int
    dlr_steps: int
    targets: int
    target_steps: int
    square_queries: int
    square_probe: Optional[int] = None
    square_max_queries: Optional[int] = None

    def attacks(self) -> List[Tuple[str, dict]]:
        out: List[Tuple[str, dict]] = [("fgsm", {})] if self.fgsm else []
        out.append(("apgd-ce", {"steps": self.ce_steps}))
        if self.dlr_steps:
            out.append(("apgd-dlr", {"steps": self.dlr_steps}))
        out.append(("apgd-t", {"steps": self.target_steps, "targets": self.targets}))
        if self.square_queries:
            out.append(("square", {"queries": self.square_queries, "probe": self.square_probe,
                                   "max_queries": self.square_max_queries}))
        return out


#: the profiles of ``strength``. "standard" is the cheapest schedule measured that matched AutoAttack's
#: robust accuracy on every digits case (benchmarks/attacks.md: APGD-T needs more than 3 targets at eps
#: 0.1, where 3 left one sample more on each model; 9 x 12 steps did as well as 9 x 20 with two seeds);
#: "thorough" is AutoAttack's own budgets plus FGSM and APGD-DLR, with Square never cut short
STRENGTHS: Dict[str, Strength] = {
    "fast": Strength(fgsm=True, ce_steps=30, dlr_steps=0, targets=3, target_steps=20, square_queries=300,
                     square_probe=30),
    "standard": Strength(fgsm=True, ce_steps=30, dlr_steps=0, targets=9, target_steps=12, square_queries=800,
                         square_probe=25, square_max_queries=5000),
    "thorough": Strength(fgsm=True, ce_steps=100, dlr_steps=100, targets=9, target_steps=100,
                         square_queries=5000),
}
DEFAULT_STRENGTH = STRENGTH_NAMES[0]


def build_sequence(spec: Union[str, Sequence[AttackSpec]] = "auto", *, strength: str = DEFAULT_STRENGTH,
                   **options: Any) -> List[Attack]:
    """Attacks from "auto" (the default sequence at ``strength``), one name, or a list of names /
    (name, options) / Attack objects. ``options`` apply to a single named attack."""
    if strength not in STRENGTHS:
        raise invalid_argument("strength", strength, f"one of {sorted(STRENGTHS)}", "pass strength='standard'")
    if isinstance(spec, str):
        if spec == "auto":
            return [get_attack(n, **o) for n, o in STRENGTHS[strength].attacks()]
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
    """Each attack runs on the samples no earlier attack broke; successes are already re-checked. An
    attack that does not support the ball's norm (Square in l1) is skipped, and so is a gradient attack on a
    model that says it is ``gradient_free``."""
    import time

    adv = x0.detach().clone()
    success = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
    with torch.no_grad():
        pred = model(x0).argmax(1)
    method = [""] * x0.shape[0]
    for attack in attacks:
        if ball.norm not in attack.norms:
            continue
        if getattr(model, "gradient_free", False) and not attack.gradient_free:
            continue  # a model with forward passes only (an ONNX model run by onnxruntime): no gradients
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
