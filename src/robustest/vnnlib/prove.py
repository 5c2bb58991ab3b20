"""The proof stages of ``robustest vnnlib``: the provers of :mod:`robustest.provers` on VNN-LIB regions.

A region (input box, output disjuncts ``A_p y <= b_p``) becomes a :class:`~robustest.provers.ProofTask`
with one group of rows per disjunct (rows ``A_p``, offsets ``-b_p``): it is proved (``unsat``) when every
disjunct has a row whose sound lower bound ``min (A_p y - b_p)_k`` over the box is > 0. Each stage is a
callable ``(model, region, shape, deadline) -> Proof | None`` around one registry prover; the stages of
one :func:`robustest.vnnlib.verify` call share each region's task, so a later prover starts from the
bounds an earlier one learnt (MILP from alpha-CROWN's, alpha-CROWN from CROWN's intermediate bounds).

    >>> from robustest.vnnlib.prove import default_stages
    >>> [s.__name__ for s in default_stages()]
    ['crown', 'bab', 'alpha_crown', 'milp']
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import UnsupportedLayer
from ..layers.rounding import Precision
from ..provers import PROVERS, Known, ProofTask
from ..schedules import StageSchedule
from ..spec import LpBall
from .parser import Region


@dataclass(frozen=True)
class Proof:
    """What a stage returns: ``method`` proved the region, or found ``candidate`` (a flat input that the
    verifier re-checks by a forward pass before it answers ``sat``), or neither."""

    method: str = ""
    candidate: Optional[torch.Tensor] = None


Stage = Callable[[nn.Module, Region, Tuple[int, ...], float], Optional[Proof]]


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


def region_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def region_task(model: nn.Module, region: Region, shape: Tuple[int, ...]) -> Optional[ProofTask]:
    """The region as a proof task (batch of one), or None when a disjunct has no rows (the whole output
    space: it cannot be refuted). Every row must clear the bound on the model's rounding
    (:meth:`~robustest.provers.ProofTask.guarded`)."""
    from ..graph import read_model

    if any(a.shape[0] == 0 for a, _ in region.polytopes):
        return None
    device = region_device(model)
    graph = read_model(model, torch.zeros((1,) + shape, device=device))
    x0, ball = region_ball(region, shape, device)
    C = torch.cat([a for a, _ in region.polytopes]).to(device, torch.float64).unsqueeze(0)
    d = -torch.cat([b for _, b in region.polytopes]).to(device, torch.float64).unsqueeze(0)
    groups = tuple(p for p, (a, _) in enumerate(region.polytopes) for _ in range(a.shape[0]))
    task = ProofTask(graph, x0, ball, C, d, groups, known=(Known(np.full(C.shape[1], -np.inf)),))
    slack, _ = task.float_slack(Precision.of_model(model, torch.zeros((), device=device)))
    return task.guarded(slack)  # "unsat" is about the network as it computes, in its dtype


class RegionTasks:
    """The tasks of one verifier run, one per region, so its stages share what they learn."""

    def __init__(self) -> None:
        self._tasks: Dict[int, Tuple[Region, Optional[ProofTask]]] = {}

    def get(self, model: nn.Module, region: Region, shape: Tuple[int, ...]) -> Optional[ProofTask]:
        key = id(region)
        if key not in self._tasks or self._tasks[key][0] is not region:
            self._tasks[key] = (region, region_task(model, region, shape))
        return self._tasks[key][1]


def stage(name: str, *, share: float = 1.0, cheap: bool = False, tasks: Optional[RegionTasks] = None) -> Stage:
    """Registry prover ``name`` as a stage that may use ``share`` of the time left. Raises
    :class:`~robustest.errors.UnsupportedLayer` when the prover cannot work on the network (the verifier
    then drops it and notes why)."""
    shared = tasks or RegionTasks()
    prover = PROVERS[name]

    def prove(model: nn.Module, region: Region, shape: Tuple[int, ...], deadline: float) -> Optional[Proof]:
        task = shared.get(model, region, shape)
        if task is None:
            return None
        if not prover.supports(task.graph):
            raise UnsupportedLayer(f"{name} does not support this network (fully connected ReLU networks only)")
        now = time.perf_counter()
        (out,) = prover.prove(task, deadline=now + share * max(0.0, deadline - now))
        assert task.known is not None
        task.known[0].learn(out.lower, out.boxes)
        if out.status == "proved":
            return Proof(name)
        if out.status == "counterexample" and out.counterexample is not None:
            return Proof(name, candidate=out.counterexample.reshape(-1))
        return None

    prove.__name__ = name.replace("-", "_")
    prove.cheap = cheap  # type: ignore[attr-defined]  # run before the short attack
    return prove


def default_stages(schedule: StageSchedule = StageSchedule()) -> List[Stage]:
    """The stages of one verifier run, cheap first, sharing one :class:`RegionTasks`."""
    tasks = RegionTasks()
    return ([stage(n, share=s, cheap=True, tasks=tasks) for n, s in schedule.cheap]
            + [stage(n, share=s, tasks=tasks) for n, s in schedule.expensive])


__all__ = ["Proof", "Stage", "StageSchedule", "region_ball", "region_task", "RegionTasks", "stage",
           "default_stages"]
