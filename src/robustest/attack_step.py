"""The "attack" rung of the ladder: the falsification sequence on the undecided samples."""

from __future__ import annotations

import time
from typing import Dict, List

import torch

from .attacks.sequence import build_sequence, run_sequence
from .ladder import Step, StepContext, StepOutcome, register

#: share of the pooled per-sample budget the attacks may use when certifiers follow them
ATTACK_SHARE_BEFORE_CERTIFIERS = 0.5


@register("attack")
class AttackStep(Step):
    """Falsify with the attack sequence (``options["attacks"]``, default "auto"). Never certifies."""

    def run(self, ctx: StepContext, indices: List[int]) -> Dict[int, StepOutcome]:
        attacks = build_sequence(ctx.options.get("attacks", "auto"))
        share = 1.0 if ctx.options.get("escalate", "attack") == "attack" else ATTACK_SHARE_BEFORE_CERTIFIERS
        start = time.perf_counter()
        pool = sum(max(0.0, ctx.remaining(i)) for i in indices)
        idx = torch.tensor(indices, device=ctx.inputs.device)
        out = run_sequence(ctx.model, ctx.inputs[idx], ctx.labels[idx], ctx.ball, attacks,
                           generator=ctx.streams(indices, salt=1), deadline=start + share * pool)
        ctx.charge(indices, time.perf_counter() - start)
        return {i: StepOutcome("falsified", counterexample=out.adversarial[k], method=out.method[k])
                for k, i in enumerate(indices) if bool(out.success[k])}
