"""The proof ladder of ``robustest vnnlib``: VNN-LIB regions as proof tasks, and the verifier's rungs.

A region (input box, output disjuncts ``A_p y <= b_p``) becomes a :class:`~robustest.provers.ProofTask`
with one group of rows per disjunct (rows ``A_p``, offsets ``-b_p``): it is proved (``unsat``) when every
disjunct has a row whose sound lower bound ``min (A_p y - b_p)_k`` over the box is > 0. The verifier's
ladder (:func:`vnnlib_ladder`) runs on the orchestrator of :mod:`robustest.ladder` like ``check()``'s:
attack rungs and prover rungs of the registry's provers, with the shares of ``schedules.StageSchedule``;
a region's task is built once, so a later prover starts from the bounds an earlier one learnt (MILP from
alpha-CROWN's, alpha-CROWN from CROWN's intermediate bounds).

    >>> from robustest.vnnlib.prove import vnnlib_ladder
    >>> [r.name for r in vnnlib_ladder()]
    ['sample', 'cheap', 'attack', 'expensive', 'attack-rest']
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch

from ..graph import Graph
from ..ladder import AttackRung, ProverRung, Rung
from ..provers import PROVERS, Known, ProofTask
from ..schedules import StageSchedule
from ..spec import LpBall
from .parser import Region


def region_ball(region: Region, shape: Tuple[int, ...], device: torch.device
                ) -> Tuple[torch.Tensor, LpBall]:
    """``(x0, ball)`` whose ``ball.box(x0)`` is the region's box (float64, batch of one).

    A coordinate fixed by the property (lower == upper) gets a box 1e-12 wide: a superset of the
    region, so bounds stay sound.
    """
    lo = region.lower.to(device, torch.float64)
    hi = torch.maximum(region.upper.to(device, torch.float64), lo + 1e-12)
    x0 = ((lo + hi) / 2).reshape((1,) + shape)
    eps = float((hi - lo).max()) / 2 * (1 + 1e-9) + 1e-15
    return x0, LpBall(eps=eps, norm="linf", domain=(lo.reshape(shape), hi.reshape(shape)))


def region_task(graph: Graph, region: Region, shape: Tuple[int, ...], device: torch.device
                ) -> Optional[ProofTask]:
    """The region as a proof task (batch of one) on ``graph``, about the exact network, or None when a
    disjunct has no rows (the whole output space: it cannot be refuted). The verifier's subject guards it
    against the model's rounding (:class:`robustest.ladder.Subject`) unless
    ``ProofSettings.real_arithmetic``."""
    if any(a.shape[0] == 0 for a, _ in region.polytopes):
        return None
    x0, ball = region_ball(region, shape, device)
    C = torch.cat([a for a, _ in region.polytopes]).to(device, torch.float64).unsqueeze(0)
    d = -torch.cat([b for _, b in region.polytopes]).to(device, torch.float64).unsqueeze(0)
    groups = tuple(p for p, (a, _) in enumerate(region.polytopes) for _ in range(a.shape[0]))
    return ProofTask(graph, x0, ball, C, d, groups, known=(Known(np.full(C.shape[1], -np.inf)),))


def vnnlib_ladder(schedule: StageSchedule = StageSchedule()) -> List[Rung]:
    """The verifier's rungs, cheapest first: the centre and random points, the cheap provers (CROWN), a
    short attack (``schedule.short_attack`` of the time left), the expensive provers (batched beta-CROWN
    branch and bound, alpha-CROWN, MILP), then attacks with whatever time is left."""
    return [AttackRung("sample", level=0),
            ProverRung("cheap", [(PROVERS[n], s) for n, s in schedule.cheap]),
            AttackRung("attack", level=1, share=schedule.short_attack),
            ProverRung("expensive", [(PROVERS[n], s) for n, s in schedule.expensive]),
            AttackRung("attack-rest", level=2)]


__all__ = ["StageSchedule", "region_ball", "region_task", "vnnlib_ladder"]
