"""The provers, registered in ladder order: each is one file and one line of :data:`PROVERS`.

A prover takes a :class:`ProofTask` and a deadline and returns one :class:`ProverOutcome` per sample
(see :mod:`robustest.provers.base`). The rungs of :func:`robustest.check` are the provers' ``rung``
names in this order (after "attack"), which a test checks against the torch-free
:data:`robustest.results.RUNGS` that the plugin and the CLI validate ``escalate`` with; ``robustest
vnnlib`` runs the same provers in stages of its own.

    >>> from robustest.provers import PROVERS, rung_provers
    >>> list(PROVERS)
    ['ibp', 'crown', 'alpha-crown', 'lp', 'milp', 'bab']
    >>> [p.name for p in rung_provers("crown")]
    ['crown', 'alpha-crown']
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from .alpha import AlphaCrownProver
from .bab import BabProver
from .base import Known, ProofSettings, ProofTask, Prover, ProverOutcome, decide
from .crown import CrownProver
from .ibp import IbpProver
from .lp import LpProver
from .milp import MilpProver

#: name -> prover, in ladder order
PROVERS: Dict[str, Prover] = {p.name: p for p in (IbpProver(), CrownProver(), AlphaCrownProver(), LpProver(),
                                                   MilpProver(), BabProver())}


def prover_rungs() -> Tuple[str, ...]:
    """The rungs the provers make, in order (each once)."""
    return tuple(dict.fromkeys(p.rung for p in PROVERS.values() if p.rung is not None))


def rung_provers(rung: str) -> List[Prover]:
    """The provers of one rung, in order (the first is the rung's main prover)."""
    return [p for p in PROVERS.values() if p.rung == rung]


__all__ = ["PROVERS", "Prover", "ProofTask", "ProverOutcome", "Known", "ProofSettings", "decide",
           "prover_rungs", "rung_provers"]
