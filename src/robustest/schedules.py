"""The schedules of the proof engine: frozen settings objects with the measured defaults, torch-free.

Every share of time, step count and batch size the orchestrator and the provers use lives here, named
and documented, so a user can change one (``robustest.check(..., provers=ProofSettings(alpha_steps=40))``)
and a benchmark can state what it ran with.

    >>> from robustest.schedules import ProofSettings
    >>> ProofSettings().milp_share
    0.25
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

__all__ = ["ATTACK_SHARE_BEFORE_PROVERS", "InputSplit", "ProofSettings", "StageSchedule"]

#: share of the pooled per-sample budget the attacks of :func:`robustest.check` may use when provers
#: follow them
ATTACK_SHARE_BEFORE_PROVERS = 0.5


@dataclass(frozen=True)
class InputSplit:
    """The branch and bound over input sub-boxes (:mod:`robustest.certify.input_split`), which BaB runs
    instead of its ReLU split when the input has at most ``max_dim`` numbers.

    ``max_dim``: ACAS Xu (5 inputs, 6 x 50 ReLU) is the case it is for; the smallest image benchmarks have
    hundreds of inputs, where halving one of them barely moves a bound. ``batch``: the most domains split per round;
    ``round_seconds``: the longest a round may take at the rate measured in the last one (one 1024-domain round
    took 20 s on the loaded 2-core machine: the deadline was overrun by that much; 0.5 s rounds took acasxu
    1_3 prop_3 8.8 s instead of 3.2 s unbounded, the rounds' fixed costs);
    ``root_alpha_steps``/``alpha_steps``: Adam steps on the ReLU slopes for the whole box's bound and for each
    round's children (0: CROWN's adaptive slopes). 3 steps per round tripled the time to prove acasxu 1_1
    prop_1; 20 at the root took acasxu 1_3 prop_3 from > 2000 open domains at 20 s to proved in 453, though
    the first Adam optimiser of a process imports torch._dynamo (measured 10 s on the loaded machine).
    ``max_domains``: the queue's size limit (memory). Measured on acasxu (``benchmarks/vnncomp2021_bab.md``)."""

    max_dim: int = 16
    batch: int = 1024
    round_seconds: float = 1.0
    root_alpha_steps: int = 20
    alpha_steps: int = 0
    max_domains: int = 2_000_000


@dataclass(frozen=True)
class ProofSettings:
    """The provers' knobs, frozen, with the measured defaults.

    ``alpha_crown``: after plain CROWN, optimise the ReLU slopes (``alpha_steps`` Adam steps) for the
    samples CROWN leaves open. ``milp_share``: when a later rung (BaB) supports the network, MILP gets this
    share of a sample's remaining budget instead of all of it. BaB's schedule (shares of its time): a quick
    search on the root's alpha-CROWN bounds (``bab_root_alpha_steps``, within ``bab_root_alpha_share`` of
    BaB's time: on oval21's 8-layer ``cifar_deep_kw`` the 30 steps per layer took 34 s of a 50 s budget), a short refine/search round of
    ``bab_first`` each, one long refinement of ``bab_refine``, then the search with the rest
    (``benchmarks/vnncomp.md`` has the measurements behind them). ``input_split``: BaB over input sub-boxes
    instead, for networks with few inputs.

    ``real_arithmetic``: certify the exact network (its weights in real arithmetic), the convention of
    VNN-COMP and of the tools its answers come from, instead of the model as it computes in its dtype.
    Off by default: every certificate then clears an a-priori bound on the model's floating-point
    rounding (:mod:`robustest.certify.float_error`). That bound grows with depth (it is propagated
    through ``|W|``): on the 2-layer digits models and mnist_fc 256x2 it costs no decision, on deep
    nets (eran's 9 x 200 ReLU and 6 x 200 sigmoid nets) it exceeds every margin (``benchmarks/vnncomp2021.md``).
    """

    real_arithmetic: bool = False
    alpha_crown: bool = False
    alpha_steps: int = 20
    milp_share: float = 0.25
    bab_root_alpha_steps: int = 30
    bab_root_alpha_share: float = 0.2
    bab_quick: float = 0.05
    bab_first: float = 0.05
    bab_refine: float = 0.45
    input_split: InputSplit = InputSplit()


@dataclass(frozen=True)
class StageSchedule:
    """Which provers run in the verifier's two proof stages, and the share of the time left that each
    may use. Cheap: CROWN before the short attack. Expensive: BaB (affine/ReLU chains) with 0.95,
    then alpha-CROWN and MILP (with 0.9: the rest goes to the attacks after it). Measured on mnist_fc
    (``benchmarks/vnncomp.md``): MILP after BaB decided nothing in the last runs, hence BaB's large share.
    ``short_attack``: the share of the time left for the short attack between the two stages (APGD finds
    the easy counterexamples of mnist_fc in well under a second)."""

    short_attack: float = 0.2
    cheap: Tuple[Tuple[str, float], ...] = (("crown", 1.0),)
    expensive: Tuple[Tuple[str, float], ...] = (("bab", 0.95), ("alpha-crown", 1.0), ("milp", 0.9))
