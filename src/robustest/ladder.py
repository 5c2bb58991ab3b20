"""The one orchestrator: budgets, the bound cache and the counterexample re-check, for every door.

A :class:`Subject` is what gets decided: the samples of :func:`robustest.check` (:class:`StepContext`,
robustness margins, a budget per sample) or the regions of a VNN-LIB property
(:class:`robustest.vnnlib.verify.RegionSubject`, one deadline for the whole property). :func:`climb`
runs a list of :class:`Rung` s on it, cheapest first, each only on the items still undecided: attack
rungs (which can only falsify: the subject knows how to attack itself) and prover rungs, which run
provers of :mod:`robustest.provers` with a share of each item's remaining time. The bounds each prover
learns are kept per item (:class:`~robustest.provers.Known`), so the next prover starts from the best
ones known (IBP ⊇ CROWN ⊇ LP ⊇ MILP). Every counterexample, whichever rung claims it, is re-checked by the
subject's forward pass before it counts.

``check()``'s ladder is :func:`rungs` (``results.RUNGS`` up to ``escalate``) on a :class:`StepContext`,
turned into :class:`~robustest.results.SampleResult` s by :class:`Ladder`.

    >>> import torch
    >>> from robustest.ladder import Ladder, rungs
    >>> [r.name for r in rungs("lp")]
    ['attack', 'ibp', 'crown', 'lp']
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

# imported with the module, not inside AttackRung.run: check() builds its Attack objects with the
# build_sequence it imported, and a later import here could meet a re-imported robustest.attacks (pytester
# restores sys.modules between in-process runs), whose Attack class those objects are not instances of
from .attacks.sequence import build_sequence, run_sequence
from .errors import SolverError, UnsupportedLayer, invalid_argument
from .layers.rounding import Precision
from .progress import Progress, tell
from .provers import Known, ProofSettings, ProofTask, Prover, ProverOutcome, decide, rung_provers
from .provers.base import round_down
from .results import RUNGS, SampleResult
from .schedules import ATTACK_SHARE_BEFORE_PROVERS
from .spec import LpBall
from .streams import SampleStreams

__all__ = ["Ladder", "Rung", "AttackRung", "ProverRung", "Subject", "StepContext", "StepOutcome", "climb", "rungs",
           "validate_escalate"]


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


class Subject:
    """What the orchestrator decides: ``size`` items, each with its remaining time, its proof task, its
    known bounds (``known``), a way to attack it and a forward-pass re-check of claimed counterexamples.

    ``batchable``: whether :meth:`task` may hold several items at once (the robustness margins of several
    samples do; the regions of a VNN-LIB property have rows of their own and are proved one by one).

    **The rounding guard.** Unless ``settings.real_arithmetic``, a proof must hold for the model as it
    computes: every row of an item must clear ``slack[i]``, a bound on how far the model's rounding can
    move it (:meth:`ProofTask.float_slack`). :meth:`task` subtracts it; ``known`` keeps bounds of the
    exact rows, so the slack can shrink later: when a prover learns tighter per-node bounds of an item it
    could not prove, :meth:`learn` bounds the rounding again on them and re-judges the item."""

    settings: ProofSettings
    known: Dict[int, Known]
    #: per item, the slack each row must clear for the model's rounding, and "" or why it is infinite
    slack: Dict[int, Tuple[np.ndarray, str]]
    batchable: bool = True

    @property
    def size(self) -> int:
        raise NotImplementedError

    def remaining(self, i: int) -> float:
        """Seconds left for item ``i``."""
        raise NotImplementedError

    def charge(self, indices: Sequence[int], seconds: float) -> None:
        """Account for ``seconds`` spent on ``indices`` (a no-op where the budget is one deadline)."""

    def read_graph(self) -> Any:
        """The model as a graph of layers; raises :class:`~robustest.errors.UnsupportedLayer` when a layer
        has no certification rule (the attacks still run, the provers say why they did not)."""
        raise NotImplementedError

    def plain_task(self, indices: Sequence[int]) -> Optional[ProofTask]:
        """The proof task of ``indices`` about the exact network, with ``known`` (None: nothing to prove)."""
        raise NotImplementedError

    def precision(self) -> Precision:
        """How the model computes (its dtype, on its device)."""
        raise NotImplementedError

    def task(self, indices: Sequence[int]) -> Optional[ProofTask]:
        """The proof task of ``indices`` with what is known of them, guarded against the model's rounding
        (:meth:`ProofTask.guarded`): a proof of it holds for the model as it computes, in its dtype."""
        base = self.plain_task(indices)
        if base is None or self.settings.real_arithmetic:
            return base
        self.guard(indices)
        slack = torch.as_tensor(np.stack([self.slack[i][0] for i in indices]), device=base.d.device)
        return base.guarded(slack, self.precision())

    def guard(self, indices: Sequence[int]) -> Dict[int, str]:
        """Bound the rounding of the items that have no bound yet (charged to them); returns, per item of
        ``indices``, "" or why no proof can hold for the model as it computes (its rounding cannot be
        bounded on the item's region)."""
        if self.settings.real_arithmetic:  # certificates about the exact network: nothing to guard
            return {i: "" for i in indices}
        new = [i for i in indices if i not in self.slack]
        if new:
            self._bound_rounding(new)
        return {i: self.slack[i][1] for i in indices}

    def _bound_rounding(self, indices: Sequence[int], *, rows: bool = False) -> None:
        """(Re)compute the items' slack on the per-node bounds known (``rows``: with the row-wise bound
        too, while they have time left); keep the smaller (both are sound)."""
        t0 = time.perf_counter()
        for part in ([list(indices)] if self.batchable else [[i] for i in indices]):
            task = self.plain_task(part)
            if task is None:
                continue
            deadline = time.perf_counter() + min(self.remaining(i) for i in part)
            slack, why = task.float_slack(self.precision(), rows=rows, deadline=deadline)
            for i, row in zip(part, slack.cpu().numpy()):
                if i in self.slack:
                    row = np.minimum(row, self.slack[i][0])
                self.slack[i] = (row, "" if np.isfinite(row).all() else why or (
                    "the model's outputs may overflow its dtype on this region: no rounding bound"))
        self.charge(list(indices), time.perf_counter() - t0)

    def learn(self, found: Sequence[Tuple[int, ProverOutcome, Tuple[int, ...]]]) -> List[Tuple[int, ProverOutcome]]:
        """Keep what a prover found for each item (its row bounds of the guarded rows as bounds of the exact
        rows; ``groups``: the item's task's row groups) and re-judge the items it left open with new
        per-node bounds, on the rounding bound recomputed from those."""
        guarded = not self.settings.real_arithmetic
        retry = []
        for i, o, _ in found:
            lower = o.lower
            if guarded and lower is not None:
                lower = round_down(lower + self.slack[i][0])
            self.known[i].learn(lower, o.boxes)
            if guarded and o.status == "open" and o.boxes is not None:
                retry.append(i)
        if retry:
            self._bound_rounding(retry, rows=True)
        out = []
        for i, o, groups in found:
            if i in retry and not self.slack[i][1]:
                again = decide(o.method, round_down(self.known[i].lower - self.slack[i][0]), groups,
                               seconds=o.seconds, boxes=o.boxes)
                o = again if again.status == "proved" else o
            out.append((i, o))
        return out

    def attack(self, indices: List[int], rung: AttackRung) -> Dict[int, StepOutcome]:
        """The attacks of ``rung`` on ``indices``: claimed counterexamples, re-checked afterwards."""
        raise NotImplementedError

    def recheck(self, outcomes: Dict[int, StepOutcome]) -> None:
        """Re-check each claimed counterexample by a forward pass; demote the ones that fail to undecided."""
        raise NotImplementedError

    def settled(self, decided: Dict[int, Tuple[str, StepOutcome]]) -> bool:
        """Whether what is decided already settles the whole question (e.g. one violated VNN-LIB region)."""
        return False


@dataclass
class StepContext(Subject):
    """Everything a rung may use: the batch, the budgets (``spent`` per sample) and the shared state
    (``graph``: the model read once; ``known``: per-sample bounds)."""

    model: torch.nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    ball: LpBall
    seed: int
    timeout: float
    spent: List[float]
    escalate: str = "attack"
    attacks: Any = "auto"
    solver: str = "highs"
    settings: ProofSettings = field(default_factory=ProofSettings)
    known: Dict[int, Known] = field(default_factory=dict)
    graph: Any = None
    #: each sample's position in the whole set it was drawn from (default: its position here)
    sample_ids: List[int] = field(default_factory=list)
    #: per sample, the slack every row must clear for the model's rounding (:class:`Subject`)
    slack: Dict[int, Tuple[np.ndarray, str]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    def remaining(self, i: int) -> float:
        """Seconds left in sample ``i``'s budget."""
        return self.timeout - self.spent[i]

    def charge(self, indices: Sequence[int], seconds: float) -> None:
        """Charge a batched phase's wall time equally to the samples it worked on."""
        if indices:
            share = seconds / len(indices)
            for i in indices:
                self.spent[i] += share

    def generator(self, salt: int = 0) -> torch.Generator:
        """One generator for a whole-batch draw (e.g. the masking health check)."""
        g = torch.Generator(device=self.inputs.device)
        g.manual_seed((self.seed * 1_000_003 + salt) % (2**63 - 1))
        return g

    def streams(self, indices: Sequence[int], salt: int = 0) -> SampleStreams:
        """Random streams for the samples ``indices``, one each, keyed by the sample's position in the
        whole set: a sample draws the same numbers whichever samples it is checked with."""
        ids = self.sample_ids or list(range(self.inputs.shape[0]))
        return SampleStreams((self.seed * 1_000_003 + salt) % (2**63 - 1), [ids[i] for i in indices])

    def read_graph(self) -> Any:
        if self.graph is None:
            from .graph import read_model

            self.graph = read_model(self.model, self.inputs[:1])
        return self.graph

    def precision(self) -> Precision:
        return Precision.of_model(self.model, self.inputs)

    def plain_task(self, indices: Sequence[int]) -> ProofTask:
        """The robustness proof task of the samples ``indices`` (margins ``e_y - e_j``), with what is known."""
        graph = self.read_graph()
        idx = torch.tensor(list(indices), device=self.inputs.device, dtype=torch.long)
        base = ProofTask.margins(graph, self.inputs[idx].to(torch.float64), self.ball, self.labels[idx],
                                 solver=self.solver, settings=self.settings)
        rows = base.d.shape[1]
        known = tuple(self.known.setdefault(i, Known(np.full(rows, -np.inf))) for i in indices)
        return replace(base, known=known)

    def attack(self, indices: List[int], rung: AttackRung) -> Dict[int, StepOutcome]:
        """The attack sequence (``self.attacks``) on the samples, with :data:`ATTACK_SHARE_BEFORE_PROVERS`
        of the pooled budget when provers follow (``rung.share`` overrides it)."""
        attacks = build_sequence(self.attacks)
        share = rung.share if rung.share is not None else \
            1.0 if self.escalate == "attack" else ATTACK_SHARE_BEFORE_PROVERS
        start = time.perf_counter()
        pool = sum(max(0.0, self.remaining(i)) for i in indices)
        idx = torch.tensor(indices, device=self.inputs.device)
        out = run_sequence(self.model, self.inputs[idx], self.labels[idx], self.ball, attacks,
                           generator=self.streams(indices, salt=1), deadline=start + share * pool)
        self.charge(indices, time.perf_counter() - start)
        return {i: StepOutcome("falsified", counterexample=out.adversarial[k], method=out.method[k])
                for k, i in enumerate(indices) if bool(out.success[k])}

    def recheck(self, outcomes: Dict[int, StepOutcome]) -> None:
        """Re-check every claimed counterexample by a forward pass; demote the ones that fail to undecided."""
        from .attacks.losses import margin_loss

        ctx = self
        claimed = [i for i, o in outcomes.items() if o.verdict == "falsified"]
        if not claimed:
            return
        idx = torch.tensor(claimed, device=ctx.inputs.device)
        cands = []
        for i in claimed:
            ce = outcomes[i].counterexample
            ok_shape = isinstance(ce, torch.Tensor) and ce.numel() == ctx.inputs[i].numel()
            cands.append(ce.reshape(ctx.inputs[i].shape).to(ctx.inputs) if ok_shape  # type: ignore[union-attr]
                         else ctx.inputs[i])
        x0 = ctx.inputs[idx]
        xa = torch.stack(cands)
        near = ctx.ball.contains(xa, x0)  # within rounding slack: pull strictly inside, then judge
        xa = torch.where(near.view(-1, *([1] * (xa.dim() - 1))), ctx.ball.pull_inside(xa, x0), xa)
        with torch.no_grad():
            z = ctx.model(xa)
        pred = z.argmax(1)
        margin = -margin_loss(z, ctx.labels[idx])
        inside = near & ctx.ball.contains_exactly(xa, x0)
        dist = ctx.ball.distance(xa.double(), x0.double())
        flips64 = _flips_in_float64(ctx.model, xa, ctx.labels[idx])
        for k, i in enumerate(claimed):
            o = outcomes[i]
            if bool(inside[k]) and int(pred[k]) != int(ctx.labels[i]):
                o.counterexample, o.figure = xa[k], float(margin[k])
                o.predicted, o.distance = int(pred[k]), float(dist[k])
                if flips64 is not None and not bool(flips64[k]):
                    o.reason = (f"the label flips at the model's precision ({xa.dtype}) only: a float64 forward "
                                "pass of the same weights at this point keeps the label")
            else:
                outcomes[i] = StepOutcome(reason=f"a counterexample from {o.method or 'this rung'} failed the "
                                                 "forward-pass re-check and was discarded")


class Rung:
    """One rung. Subclasses set ``name`` and implement :meth:`run`."""

    name: str = ""

    def run(self, ctx: Subject, indices: List[int]) -> Dict[int, StepOutcome]:
        """Decide what it can for the items ``indices``; return outcomes keyed by item.

        A rung charges the time it spends with ``ctx.charge`` and stops when ``ctx.remaining`` runs out.
        """
        raise NotImplementedError


class AttackRung(Rung):
    """Falsify: the subject's attacks at ``level`` (0: a few sampled points; 1: a short attack; 2: attack
    until the time is up), with ``share`` of the remaining time (None: the subject's own rule). Never
    certifies."""

    def __init__(self, name: str = "attack", *, level: int = 2, share: Optional[float] = None) -> None:
        self.name, self.level, self.share = name, level, share

    def run(self, ctx: Subject, indices: List[int]) -> Dict[int, StepOutcome]:
        return ctx.attack(indices, self)


class ProverRung(Rung):
    """A rung of provers, each with the share of an item's remaining time it may use (e.g. "crown": CROWN,
    then alpha-CROWN when ``settings.alpha_crown``). A batched prover runs once on all live items when the
    subject is batchable; the others per item. In ``check()``'s "milp" rung MILP gets
    ``settings.milp_share`` of the time when a later rung (``later``) supports the network. A prover that
    does not support the network is skipped, and the items say why."""

    def __init__(self, name: str, provers: Optional[Sequence[Tuple[Prover, float]]] = None, *,
                 later: Sequence[Prover] = ()) -> None:
        self.name = name
        self.provers = list(provers) if provers is not None else [(p, 1.0) for p in rung_provers(name)]
        self.later = list(later)

    def share(self, ctx: Subject) -> float:
        """The share of an item's remaining budget each per-item prover of this rung may use."""
        if self.name == "milp" and any(p.supports(ctx.read_graph()) for p in self.later):
            return ctx.settings.milp_share
        return 1.0

    def run(self, ctx: Subject, indices: List[int]) -> Dict[int, StepOutcome]:
        try:
            graph = ctx.read_graph()
        except UnsupportedLayer as exc:  # attacks only: say why no proof was tried
            return {i: StepOutcome(reason=f"no proof tried: {exc}") for i in indices}
        out: Dict[int, StepOutcome] = {}
        share = self.share(ctx)
        blocked = {i: why for i, why in ctx.guard(indices).items() if why}
        out.update({i: StepOutcome(reason=why) for i, why in blocked.items()})
        for prover, own in self.provers:
            if not prover.enabled(ctx.settings):
                continue
            live = [i for i in indices if ctx.remaining(i) > 0 and (i not in out or out[i].verdict is None)
                    and i not in blocked]
            if not live:
                break
            why = prover.refusal(graph)
            if why:
                for i in live:
                    out.setdefault(i, StepOutcome(reason=f"{prover.name} does not support this network: {why}"))
                continue
            for i, o in ctx.learn(self._prove(ctx, prover, own * share, live)):
                out[i] = _step_outcome(o)
        return out

    @staticmethod
    def _prove(ctx: Subject, prover: Prover, share: float, live: List[int]
               ) -> List[Tuple[int, ProverOutcome, Tuple[int, ...]]]:
        """The prover's outcome for each live item, with its task's row groups."""
        if prover.batched and ctx.batchable:
            task = ctx.task(live)
            if task is None:
                return []
            t0 = time.perf_counter()
            found = prover.prove(task, deadline=t0 + share * min(ctx.remaining(i) for i in live))
            ctx.charge(live, time.perf_counter() - t0)
            return [(i, o, task.groups) for i, o in zip(live, found)]
        triples = []
        for i in live:
            one_task = ctx.task([i])
            if one_task is None or ctx.remaining(i) <= 0:
                continue
            t0 = time.perf_counter()
            (one,) = prover.prove(one_task, deadline=t0 + share * ctx.remaining(i))
            ctx.charge([i], time.perf_counter() - t0)
            triples.append((i, one, one_task.groups))
        return triples


def _step_outcome(o: ProverOutcome) -> StepOutcome:
    if o.status == "proved":
        return StepOutcome("certified", figure=o.figure, method=o.method)
    if o.status == "counterexample":
        return StepOutcome("falsified", figure=o.figure, method=o.method, counterexample=o.counterexample)
    return StepOutcome(reason=o.reason)


def run_rung(ctx: Subject, rung: Rung, todo: List[int]) -> Dict[int, StepOutcome]:
    """``rung.run`` on ``todo``; when a solver fails on the batch, each item is run alone so that only
    the items it fails on stay undecided (with the reason), never the whole check."""
    try:
        return rung.run(ctx, todo)
    except SolverError as exc:
        if len(todo) == 1:
            return {todo[0]: StepOutcome(reason=f"{rung.name}: the solver failed ({exc})")}
    outcomes: Dict[int, StepOutcome] = {}
    for i in todo:
        if ctx.remaining(i) > 0:
            outcomes.update(run_rung(ctx, rung, [i]))
    return outcomes


#: told before each rung: (rung name, items settled, items still to decide)
OnRung = Callable[[str, int, Sequence[int]], None]


def climb(ctx: Subject, ladder: Sequence[Rung], *, skip: Sequence[int] = (), on_rung: Optional[OnRung] = None
          ) -> Tuple[Dict[int, Tuple[str, StepOutcome]], Dict[int, Tuple[str, str]]]:
    """Run ``ladder`` on the items of ``ctx`` not in ``skip``, each rung on those still undecided with
    time left, re-checking every claimed counterexample. Returns ``(decided, last)``: per decided item the
    rung and its outcome; per undecided item the last rung that ran on it and why it did not decide."""
    decided: Dict[int, Tuple[str, StepOutcome]] = {}
    last: Dict[int, Tuple[str, str]] = {}
    done = set(skip)
    for rung in ladder:
        todo = [i for i in range(ctx.size) if i not in done and i not in decided and ctx.remaining(i) > 0]
        if not todo:
            break
        if on_rung is not None:
            on_rung(rung.name, ctx.size - len(todo), todo)
        outcomes = run_rung(ctx, rung, todo)
        ctx.recheck(outcomes)
        for i in todo:
            out = outcomes.get(i, StepOutcome())
            if out.verdict is None:
                last[i] = (rung.name, out.reason)
                continue
            decided[i] = (rung.name, out)
        if ctx.settled(decided):
            break
    return decided, last


def validate_escalate(escalate: str) -> str:
    if escalate not in RUNGS:
        raise invalid_argument("escalate", escalate, f"one of {', '.join(map(repr, RUNGS))}",
                               "pass escalate='attack' to only attack, or escalate='bab' for the full ladder")
    return escalate


def rungs(escalate: str) -> List[Rung]:
    """The rungs to run, in order, up to and including ``escalate``."""
    validate_escalate(escalate)
    names = RUNGS[: RUNGS.index(escalate) + 1]
    return [AttackRung() if name == "attack" else
            ProverRung(name, later=[p for r in names[k + 1:] for p in rung_provers(r)])
            for k, name in enumerate(names)]


def _flips_in_float64(model: Any, xa: torch.Tensor, labels: torch.Tensor) -> Optional[torch.Tensor]:
    """Per point: does a float64 copy of ``model`` also change the label? None when the model is not an
    ``nn.Module`` of float parameters, or the copy cannot run in float64 (the float32 verdict stands)."""
    import copy

    if not isinstance(model, torch.nn.Module) or xa.dtype == torch.float64:
        return None
    try:
        twin = copy.deepcopy(model).double()
        with torch.no_grad():
            return twin(xa.double()).argmax(1) != labels
    except Exception:  # noqa: BLE001 - TorchScript, exported programs, dtype-fixed ops: no second opinion
        return None


#: decides samples from elsewhere (the verdict cache): (context, undecided samples, re-check) -> results
Reuse = Callable[["StepContext", List[int], Callable[[Dict[int, "StepOutcome"]], None]],
                 Dict[int, SampleResult]]


class Ladder:
    """Runs the rungs on a batch and turns their outcomes into :class:`SampleResult` s."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx

    def run(self, predicted: torch.Tensor, reuse: Optional[Reuse] = None) -> Tuple[SampleResult, ...]:
        """Every sample's result. ``reuse`` (the verdict cache's) may decide samples before the rungs run;
        it gets the undecided samples and this ladder's counterexample re-check."""
        ctx = self.ctx
        n = ctx.inputs.shape[0]
        decided: Dict[int, SampleResult] = {}
        for i in range(n):
            if predicted[i] != ctx.labels[i]:
                decided[i] = SampleResult(index=i, verdict="misclassified", method="clean",
                                          label=int(ctx.labels[i]), seconds=ctx.spent[i],
                                          predicted=int(predicted[i]))
        if reuse is not None:
            decided.update(reuse(ctx, [i for i in range(n) if i not in decided], ctx.recheck))
        found, last = climb(ctx, rungs(ctx.escalate), skip=list(decided), on_rung=self._tell)
        for i, (rung, out) in found.items():
            decided[i] = self._sample(i, out, rung)
        for i in range(n):
            if i not in decided:
                decided[i] = self._unknown(i, *last.get(i, ("none", "")))
        self._tell("done", n, [])
        return tuple(replace(decided[i], seconds=ctx.spent[i]) for i in range(n))

    def _tell(self, step: str, decided: int, todo: Sequence[int]) -> None:
        """Progress for a display (:mod:`robustest.progress`): the rung starting, what is settled, and
        the most time the undecided samples may still take."""
        left = sum(max(0.0, self.ctx.remaining(i)) for i in todo)
        tell(Progress(task="check", step=step, decided=decided, total=self.ctx.inputs.shape[0],
                      budget_left=left))

    def _sample(self, i: int, out: StepOutcome, rung: str) -> SampleResult:
        ctx = self.ctx
        label = int(ctx.labels[i])
        if out.verdict == "falsified":
            return SampleResult(index=i, verdict="falsified", method=out.method or rung, label=label,
                                seconds=ctx.spent[i], counterexample=out.counterexample,
                                predicted=out.predicted, distance=out.distance, figure=out.figure,
                                reason=out.reason)
        return SampleResult(index=i, verdict="certified", method=out.method or rung, label=label,
                            seconds=ctx.spent[i], predicted=label, figure=out.figure, reason=out.reason)

    def _unknown(self, i: int, method: str, reason: str) -> SampleResult:
        ctx = self.ctx
        if ctx.remaining(i) <= 0:
            reason = f"time budget of {ctx.timeout:g} s per sample used up" + (f"; {reason}" if reason else "")
        if not reason:
            reason = ("survived every attack; escalate past 'attack' to try to certify it"
                      if method == "attack" else f"not decided by {method}")
        return SampleResult(index=i, verdict="unknown", method=method, label=int(ctx.labels[i]),
                            seconds=ctx.spent[i], reason=reason)
