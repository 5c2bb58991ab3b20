"""The escalation ladder: attacks first, then ever stronger (and dearer) certifiers.

Each rung is a :class:`Step` registered under its name. :func:`robustest.check` runs the rungs in
:data:`LADDER` order up to ``escalate``, each only on the samples still undecided, and charges every
sample for the time spent on it. Adding a certifier means writing one class, decorating it with
:func:`register`, and naming its module in :data:`_PROVIDERS`.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .errors import invalid_argument
from .spec import LpBall
from .streams import SampleStreams

#: The rungs, cheapest first. ``escalate`` names the highest one to run.
LADDER: Tuple[str, ...] = ("attack", "ibp", "crown", "lp", "milp")

#: Modules that register the rungs (imported lazily so ``import robustest`` stays light).
_PROVIDERS: Dict[str, str] = {
    "attack": "robustest.attack_step",
    "ibp": "robustest.certify.steps",
    "crown": "robustest.certify.steps",
    "lp": "robustest.certify.steps",
    "milp": "robustest.certify.steps",
}


@dataclass
class StepOutcome:
    """What a rung decided for one sample. ``verdict`` None means "undecided, escalate"."""

    verdict: Optional[str] = None
    figure: Optional[float] = None
    counterexample: Optional[torch.Tensor] = None
    method: Optional[str] = None  # a finer name than the rung's (e.g. "apgd-dlr" inside "attack")
    reason: str = ""
    #: filled in by the central re-check of a counterexample (rungs need not set them)
    predicted: Optional[int] = None
    distance: Optional[float] = None


@dataclass
class StepContext:
    """Everything a rung may use. ``cache`` lets rungs share work (e.g. CROWN bounds reused by LP/MILP)."""

    model: torch.nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    ball: LpBall
    seed: int
    timeout: float
    spent: List[float]
    options: Dict[str, Any] = field(default_factory=dict)
    cache: Dict[str, Any] = field(default_factory=dict)
    #: each sample's position in the whole set it was drawn from (default: its position here)
    sample_ids: List[int] = field(default_factory=list)

    def remaining(self, i: int) -> float:
        """Seconds left in sample ``i``'s budget."""
        return self.timeout - self.spent[i]

    def charge(self, indices: Sequence[int], seconds: float) -> None:
        """Charge a batched phase's wall time equally to the samples it worked on."""
        if indices:
            share = seconds / len(indices)
            for i in indices:
                self.spent[i] += share

    def deadline_for(self, indices: Sequence[int]) -> float:
        """A wall-clock deadline for a batched phase over ``indices``: their pooled remaining budget."""
        pool = sum(max(0.0, self.remaining(i)) for i in indices)
        return time.perf_counter() + pool

    def streams(self, indices: Sequence[int], salt: int = 0) -> SampleStreams:
        """Random streams for the samples ``indices``, one each, keyed by the sample's position in the
        whole set: a sample draws the same numbers whichever samples it is checked with."""
        ids = self.sample_ids or list(range(self.inputs.shape[0]))
        return SampleStreams((self.seed * 1_000_003 + salt) % (2**63 - 1), [ids[i] for i in indices])


class Step:
    """One rung. Subclasses set ``name`` and implement :meth:`run`."""

    name: str = ""

    def run(self, ctx: StepContext, indices: List[int]) -> Dict[int, StepOutcome]:
        """Decide what it can for the samples ``indices``; return outcomes keyed by sample index.

        A rung charges the time it spends with ``ctx.charge`` and stops when ``ctx.remaining`` runs out.
        """
        raise NotImplementedError


def register(name: str) -> Callable[[type], type]:
    """Class decorator naming a rung. The rung is found through :data:`_PROVIDERS` (module) and the
    class attribute ``name``, not through a mutable registry, so a re-imported module (pytester restores
    ``sys.modules`` between in-process runs) can never leave the ladder without its rungs."""

    def deco(cls: type) -> type:
        cls.name = name
        return cls

    return deco


def _find(name: str) -> type:
    module = importlib.import_module(_PROVIDERS[name])
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Step) and value.__dict__.get("name") == name:
            return value
    raise LookupError(f"module {_PROVIDERS[name]} defines no rung named {name!r}")  # a packaging bug


def validate_escalate(escalate: str) -> str:
    if escalate not in LADDER:
        raise invalid_argument("escalate", escalate, f"one of {', '.join(map(repr, LADDER))}",
                               "pass escalate='attack' to only attack, or escalate='milp' for the full ladder")
    return escalate


def rungs(escalate: str) -> List[Step]:
    """The rungs to run, in order, up to and including ``escalate``."""
    validate_escalate(escalate)
    return [_find(name)() for name in LADDER[: LADDER.index(escalate) + 1]]
