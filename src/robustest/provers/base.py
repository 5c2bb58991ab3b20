"""The prover interface: a proof task in, a typed outcome out.

A :class:`ProofTask` asks, for each of its ``N`` samples, that every *group* of output rows has a row
``C[n, r] @ f(x) + d[n, r] > 0`` for every input ``x`` of the region around ``x0[n]`` (an Lp ball
intersected with the domain; a box is an linf ball with a tensor domain). A robustness property is
``K - 1`` groups of one row each (``e_y - e_j``); a VNN-LIB property ``OR_p (A_p y <= b_p)`` is one group
per disjunct ``p`` with rows ``A_p`` and ``d = -b_p`` (the disjunct is refuted when one of its rows is
violated everywhere). A :class:`Prover` returns one :class:`ProverOutcome` per sample: ``proved``,
``counterexample`` (a candidate input that the orchestrator re-checks by a forward pass) or ``open``,
with the row bounds it learnt and the time it used. Bounds it learnt are sound whatever the status, so
the orchestrator keeps the best bound per row across provers (:class:`Known`).

    >>> import torch
    >>> from robustest.graph import read_model
    >>> from robustest.provers import PROVERS, ProofTask
    >>> from robustest.spec import LpBall
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2)).eval()
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.eye(2)); _ = net[0].bias.copy_(torch.tensor([1.0, 0.0]))
    >>> task = ProofTask.margins(read_model(net, torch.zeros(1, 2)), torch.zeros(1, 2, dtype=torch.float64),
    ...                          LpBall(0.1, "linf", None), torch.tensor([0]))
    >>> [o.status for o in PROVERS["ibp"].prove(task, deadline=float("inf"))]
    ['proved']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch

from ..graph import Graph
from ..layers.rounding import Precision
from ..schedules import ProofSettings
from ..spec import LpBall, margin_matrix

Status = Literal["proved", "counterexample", "open"]
NpBox = Tuple[np.ndarray, np.ndarray]

__all__ = ["ProofTask", "Known", "ProverOutcome", "Prover", "ProofSettings", "decide", "Status"]


@dataclass
class Known:
    """What is known about one sample so far: a sound lower bound per row (``-inf`` where nothing is) and
    the per-node bounds of the network (numpy boxes, one per graph node) once a linear pass computed them."""

    lower: np.ndarray
    boxes: Optional[List[NpBox]] = None

    def learn(self, lower: Optional[np.ndarray], boxes: Optional[List[NpBox]] = None) -> None:
        """Keep the larger of the old and new lower bound per row (both are sound)."""
        if lower is not None:
            self.lower = np.maximum(self.lower, lower)
        if boxes is not None:
            self.boxes = boxes


@dataclass(frozen=True)
class ProofTask:
    """See the module docstring. ``C`` (N, R, K) and ``d`` (N, R) float64 on the graph's device, ``groups``
    the group of each row (shared by all samples), ``known`` one :class:`Known` per sample (or None)."""

    graph: Graph
    x0: torch.Tensor
    ball: LpBall
    C: torch.Tensor
    d: torch.Tensor
    groups: Tuple[int, ...]
    known: Optional[Tuple[Known, ...]] = None
    solver: str = "highs"
    settings: ProofSettings = field(default_factory=ProofSettings)
    #: for a guarded task (:meth:`guarded`), the slack (N, R) its rows clear and the model's precision: a
    #: prover that splits the region may bound the rounding again on each part (the input split does)
    rounding: Optional[Tuple[torch.Tensor, Precision]] = None

    @staticmethod
    def margins(graph: Graph, x0: torch.Tensor, ball: LpBall, labels: torch.Tensor, **more: object) -> ProofTask:
        """The robustness task: rows ``e_y - e_j`` for every ``j != y``, one group each."""
        K = graph.nodes[-1].shape[0]
        C = margin_matrix(labels.to(x0.device), K).to(torch.float64)
        return ProofTask(graph, x0, ball, C, torch.zeros(C.shape[:2], dtype=torch.float64, device=x0.device),
                         tuple(range(K - 1)), **more)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self.x0.shape[0])

    def float_slack(self, precision: Precision, *, rows: bool = False, deadline: float = math.inf
                    ) -> Tuple[torch.Tensor, str]:
        """Per row (N, R), how far the model's computed ``C y`` can be from the exact network's over each
        sample's region when the model computes in ``precision``, on the per-node bounds known, else IBP's
        (:func:`robustest.certify.float_error.rows_error`; ``rows``: also the row-wise bound, until
        ``deadline``), and "" or why it is infinite."""
        from ..certify.float_error import rows_error

        tighter = [k.boxes for k in self.known] if self.known is not None else None
        return rows_error(self.graph, self.x0, self.ball, self.C, precision, tighter=tighter,
                          rows=rows, deadline=deadline)

    def guarded(self, slack: torch.Tensor, precision: Optional[Precision] = None) -> ProofTask:
        """The task about the model as it computes: every row must clear its ``slack`` (N, R) (from
        :meth:`float_slack`), ``C y + d - slack > 0``, so a proof of it holds for the computed outputs
        too, and its bounds (``figure``) bound their margins. The known row bounds (of the exact rows)
        become bounds of the guarded rows (rounded down: :func:`round_down`). ``precision``: the model's,
        kept with the slack (:attr:`rounding`)."""
        known = self.known
        if known is not None:
            per = slack.detach().cpu().numpy()
            known = tuple(Known(round_down(k.lower - s), k.boxes) for k, s in zip(known, per))
        rounding = None if precision is None else (slack.to(self.d), precision)
        return replace(self, d=self.d - slack.to(self.d), known=known, rounding=rounding)

    def best(self, n: int, lower: np.ndarray) -> np.ndarray:
        """Sample ``n``'s row bounds ``lower`` raised to the ones known (both sound): a prover never
        reports less than an earlier one learnt (IBP ⊇ CROWN ⊇ LP ⊇ MILP)."""
        return lower if self.known is None else np.maximum(lower, self.known[n].lower)

    @property
    def single_rows(self) -> bool:
        """Whether every group has one row (a conjunction of rows, as for robustness)."""
        return len(set(self.groups)) == len(self.groups)


@dataclass(frozen=True)
class ProverOutcome:
    """One sample's outcome. ``figure`` is the proved margin (the smallest over groups of the group's best
    row bound) or the candidate's margin; ``lower`` the sound row bounds learnt (R,), ``boxes`` per-node
    bounds learnt, ``counterexample`` a candidate input (the sample's shape) to re-check."""

    status: Status
    method: str
    seconds: float = 0.0
    figure: Optional[float] = None
    lower: Optional[np.ndarray] = None
    boxes: Optional[List[NpBox]] = None
    counterexample: Optional[torch.Tensor] = None
    reason: str = ""


def round_down(x: np.ndarray) -> np.ndarray:
    """``x`` lowered by a few float64 ulps: a row bound moved between the exact and the guarded rows
    (``lower -+ slack``) stays a lower bound whatever the sum's rounding."""
    return x - (np.abs(x) * 4 * np.finfo(np.float64).eps + 1e-300)


def group_margin(lower: np.ndarray, groups: Sequence[int]) -> float:
    """The smallest, over groups, of the group's largest row bound: > 0 means proved."""
    g = np.asarray(groups)
    return float(min(np.max(lower[g == v]) for v in np.unique(g)))


def decide(method: str, lower: np.ndarray, groups: Sequence[int], *, seconds: float = 0.0,
           boxes: Optional[List[NpBox]] = None, reason: str = "") -> ProverOutcome:
    """``proved`` when every group has a row whose sound lower bound is > 0, else ``open``."""
    worst = group_margin(lower, groups)
    if worst > 0:
        return ProverOutcome("proved", method, seconds, worst, lower, boxes)
    why = f"{method} margin >= {worst:.3g}"
    return ProverOutcome("open", method, seconds, worst, lower, boxes, reason=f"{why}; {reason}" if reason else why)


class Prover:
    """A proof method. Subclasses set ``name`` and ``rung`` (the ladder rung it belongs to, see
    :data:`robustest.results.RUNGS`; None: a prover the ladder does not run as a rung of its own),
    ``batched`` (one call for the whole batch, else the orchestrator calls it per sample with that
    sample's budget) and implement :meth:`prove`."""

    name: str = ""
    rung: Optional[str] = None
    batched: bool = False

    def enabled(self, settings: ProofSettings) -> bool:
        """Whether the ladder runs this prover under ``settings`` (an optional step of its rung may say no)."""
        return True

    def supports(self, graph: Graph) -> bool:
        """Whether the prover can work on this graph at all (cheap; no bounds are computed)."""
        return True

    def refusal(self, graph: Graph) -> str:
        """Why the prover cannot work on this graph, in words ("" when :meth:`supports` says it can)."""
        return "" if self.supports(graph) else "no rule for some layer"

    def prove(self, task: ProofTask, *, deadline: float) -> List[ProverOutcome]:
        """One outcome per sample of ``task``; stop by ``deadline`` (a ``time.perf_counter()`` value)."""
        raise NotImplementedError
