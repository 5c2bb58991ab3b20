"""Counterexample-guided repair: rounds until the failing test passes, with held-out accuracy kept.

One round: attack the test's samples with the test's own settings; add their counterexamples (and
those of the training samples nearest the failing ones) to the pool, keeping every earlier one; run
the cutting-plane repair (:func:`robustest.repair.api.repair`) from the last kept model, warm-started,
with cuts for the whole pool and the loss cut on training data; re-check. It stops when the test's
criterion holds, when the round or time budget runs out, or when a round would drop held-out clean
accuracy by more than the tolerance (that round is not kept). ``method="adversarial-finetune"`` runs
PGD training steps in the same rounds instead of the QP; ``method="one-shot"`` is a single round
(the repair as it was before rounds). The final model is re-checked with the test's full ladder, and
judged on held-out data: a model that passes the test while held-out robustness drops "fits the test
only" and is not accepted as a fix.

    >>> import torch, robustest                                                      # doctest: +SKIP
    >>> test = RepairTest(x_gate, y_gate, check={"eps": 0.1, "attacks": "auto"})     # doctest: +SKIP
    >>> res = robustest.repair(model, train=(x_train, y_train), test=test)           # doctest: +SKIP
    >>> print(res.summary())                                                         # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from typing import List, Optional, Tuple

import torch

from ..errors import RobustestError, caller_stacklevel, invalid_argument
from ..progress import Progress, tell
from ..results import Report
from . import holdout as ho
from .finetune import FineTuner
from .guided_settings import FITS_TEST_ONLY, FIXED, NOT_PASSING, UNMEASURED, GuidedSettings
from .guided_types import GuidedRepairResult, HoldoutFigures, RepairTest, RoundRecord
from .jacobian import FlatModel
from .source import from_report

log = logging.getLogger(__name__)
Data = Tuple[torch.Tensor, torch.Tensor]


class RepairWarning(UserWarning):
    """A repair that cannot protect what it should (e.g. no training data to hold out)."""


def guided_repair(model: torch.nn.Module, test: RepairTest, *, train: Optional[Data], holdout: Optional[Data],
                  settings: GuidedSettings, method: str, seed: int, before: Optional[Report] = None
                  ) -> GuidedRepairResult:
    """Run the rounds; see the module docstring. ``before`` is the test's report if already run."""
    t0 = time.perf_counter()
    deadline = t0 + settings.time_budget
    notes: List[str] = []
    before = before if before is not None else test.run(model)
    if test.passes(before):
        raise invalid_argument("test", before.summary(min_pass=test.min_pass, require=test.require),  # type: ignore[arg-type]
                               "a failing test", "nothing to fix: the test already passes on this model")
    loss_data, held = _data_split(test, train, holdout, settings, seed, notes)
    rounds_budget = 1 if method == "one-shot" else settings.rounds
    h_before = ho.figures(model, held, test, limit=settings.holdout_limit)
    current = copy.deepcopy(model).eval()
    tuner = FineTuner(current, lr=settings.finetune_lr) if method == "adversarial-finetune" else None
    report = before if before.escalate == "attack" else test.run(model, attacks_only=True)
    best: Tuple[int, int, torch.nn.Module, Report] = (test.failing(report), 0, model, report)
    pool_x: List[torch.Tensor] = []
    pool_y: List[torch.Tensor] = []
    records: List[RoundRecord] = []
    stop = "round budget reached"
    for r in range(1, rounds_budget + 1):
        if test.passes(report):
            stop = "the test passes"
            break
        if time.perf_counter() >= deadline:
            stop = f"time budget of {settings.time_budget:g} s reached"
            break
        tic = time.perf_counter()
        try:
            candidate = _round(current, test, report, loss_data, settings, method, seed + r, deadline,
                               pool_x, pool_y, tuner)
        except RobustestError as exc:  # e.g. nothing left the QP can change
            notes.append(f"round {r} failed: {exc}")
            stop = "a round could not run"
            break
        clean = ho.clean_accuracy(candidate, held) if held is not None else None
        if clean is not None and h_before is not None and h_before.clean - clean > settings.accuracy_tolerance:
            records.append(RoundRecord(round=r, pool=sum(len(y) for y in pool_y), failing=-1, holdout_clean=clean,
                                       kept=False, seconds=time.perf_counter() - tic))
            notes.append(f"round {r} rejected: held-out clean accuracy {h_before.clean:.1%} -> {clean:.1%} "
                         f"(more than the tolerance of {settings.accuracy_tolerance:.1%} lost)")
            stop = "held-out accuracy tolerance reached"
            break
        current = candidate
        if tuner is not None:
            tuner.model = current
        report = test.run(current, attacks_only=True)
        failing = test.failing(report)
        records.append(RoundRecord(round=r, pool=sum(len(y) for y in pool_y), failing=failing, holdout_clean=clean,
                                   kept=True, seconds=time.perf_counter() - tic))
        log.info("repair round %d: %d failing, held-out clean %s", r, failing, clean)
        tell(Progress(task="repair", step=f"round {r} of {rounds_budget}", decided=len(test.labels) - failing,
                      total=len(test.labels), budget_left=max(0.0, deadline - time.perf_counter())))
        if failing < best[0]:  # ties keep the earlier, smaller change; a fine-tuned model changes in place
            best = (failing, r, copy.deepcopy(current) if tuner is not None else current, report)
    else:
        if test.passes(report):
            stop = "the test passes"
    final = copy.deepcopy(best[2]).eval()
    after = best[3] if test.check.get("escalate", "attack") == "attack" else test.run(final)
    h_after = ho.figures(final, held, test, limit=settings.holdout_limit)
    status = _status(test.passes(after), h_before, h_after, settings)
    if status == FITS_TEST_ONLY:
        notes.append("the test passes but held-out robust accuracy dropped: the repair fitted the test's samples; "
                     "it is not accepted as a fix (pass save_anyway to keep it)")
    lost = sum(1 for s0, s1 in zip(before.samples, after.samples)
               if s0.verdict == "certified" and s1.verdict != "certified")
    return GuidedRepairResult(
        model=final, method=method, status=status, accepted=status in (FIXED, UNMEASURED) or settings.save_anyway,
        before=before, after=after, rounds=tuple(records), stop_reason=stop, distance=_distance(model, final),
        seconds=time.perf_counter() - t0, holdout_before=h_before, holdout_after=h_after, lost_certificates=lost,
        remaining=tuple(s.index for s in after.failures(test.require)),  # type: ignore[arg-type]
        notes=tuple(notes), details={"best_round": best[1], "pool": sum(len(y) for y in pool_y)})


def _round(current: torch.nn.Module, test: RepairTest, report: Report, loss_data: Data,
           settings: GuidedSettings, method: str, seed: int, deadline: float, pool_x: List[torch.Tensor],
           pool_y: List[torch.Tensor], tuner: Optional[FineTuner]) -> torch.nn.Module:
    """One round's step from ``current``: a repaired copy (cuts), or ``current`` fine-tuned in place."""
    ball = report.ball
    if tuner is not None:
        failing = torch.tensor([s.index for s in report.failures(test.require)],  # type: ignore[arg-type]
                               dtype=torch.long, device=test.labels.device)
        tuner.steps(test.inputs[failing], test.labels[failing], loss_data, eps=test.eps, norm=ball.norm,
                    domain=ball.domain, steps=settings.finetune_steps, batch=settings.finetune_batch,
                    pgd_steps=settings.finetune_pgd_steps, seed=seed, deadline=deadline)
        return current
    from .api import repair

    x_adv, y_adv = _test_points(test, report)
    pool_x.append(x_adv)
    pool_y.append(y_adv)
    if settings.neighbours and method == "guided":
        pool_x_n, pool_y_n = _neighbour_counterexamples(current, test, report, loss_data, settings, seed)
        pool_x.append(pool_x_n)
        pool_y.append(pool_y_n)
    res = repair(current, (torch.cat(pool_x), torch.cat(pool_y)), loss_data, eps=test.eps, norm=ball.norm,
                 domain=ball.domain, iterations=settings.iterations, margin=settings.margin,
                 robust_linearisation=settings.robust_linearisation, loss_subsample=settings.loss_subsample,
                 stop_when_fixed=True, seed=seed, time_limit=max(1.0, deadline - time.perf_counter()))
    return res.model


def _test_points(test: RepairTest, report: Report) -> Data:
    """The falsified samples' counterexamples, plus the misclassified samples' own inputs (a failing
    sample too: the distance-0 counterexample)."""
    wrong = [s.index for s in report.samples if s.verdict == "misclassified"]
    xs, ys = [test.inputs[wrong]], [test.labels[wrong]]
    if report.counts()["falsified"]:
        x_adv, y_adv = from_report(report, like=test.inputs)
        xs.append(x_adv)
        ys.append(y_adv.to(test.labels.device))
    return torch.cat(xs), torch.cat(ys)


def _neighbour_counterexamples(current: torch.nn.Module, test: RepairTest, report: Report, train: Data,
                               settings: GuidedSettings, seed: int) -> Data:
    """PGD counterexamples of the training samples nearest the failing test samples (so the fix is not
    only the test's points); empty when none breaks."""
    from ..api import attack

    failing = [s.index for s in report.failures(test.require)]  # type: ignore[arg-type]
    idx = ho.nearest(train[0], test.inputs[failing], settings.neighbours)
    x, y = train[0][idx], train[1][idx]
    if len(y) == 0:
        return x, y
    res = attack(current, x, y, eps=test.eps, norm=report.ball.norm, method="pgd", domain=report.ball.domain,
                 seed=seed)
    return res.adversarial[res.success].detach(), y[res.success]


def _data_split(test: RepairTest, train: Optional[Data], holdout: Optional[Data], settings: GuidedSettings,
                seed: int, notes: List[str]) -> Tuple[Data, Optional[Data]]:
    """(the loss cut's data, the held-out data). Without training data the loss is the test's samples and
    nothing is held out: warned, since then accuracy cannot be protected."""
    if train is None:
        msg = ("no training data: the loss constraint uses only the test's own samples and no held-out "
               "accuracy can be measured, so the repair may fit the test and lose accuracy. Fix: give training "
               "data (train=(x, y); pytest: a 'repair_data' fixture or --robust-repair-data=FILE)")
        warnings.warn(msg, RepairWarning, stacklevel=caller_stacklevel())  # the caller of robustest.repair
        notes.append(msg)
        return (test.inputs, test.labels), holdout
    if holdout is not None:
        return train, holdout
    loss_data, held = ho.split(train, share=settings.holdout_share, seed=seed)
    notes.append(f"{len(held[1])} of the {len(train[1])} training samples held out to measure accuracy")
    return loss_data, held


def _status(passes: bool, before: Optional[HoldoutFigures], after: Optional[HoldoutFigures],
            settings: GuidedSettings) -> str:
    if not passes:
        return NOT_PASSING
    if before is None or after is None:
        return UNMEASURED
    if before.clean - after.clean > settings.accuracy_tolerance + 1e-12 or after.robust < before.robust - 1e-12:
        return FITS_TEST_ONLY
    return FIXED


def _distance(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """||w - w0||_2 over all trainable parameters."""
    return float((FlatModel(b).w0 - FlatModel(a).w0).norm())


__all__ = ["guided_repair", "RepairWarning"]
