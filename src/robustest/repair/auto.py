"""``method="auto"`` (the default): the guided repair, and adversarial fine-tuning when it is not a fix.

Measured in benchmarks/repair.md, the guided repair (cuts, robust linearisation and its aids) and
adversarial fine-tuning were each accepted as a fix in 3 of 5 failing tests, on *different* tests. So
the guided repair runs first, with ``auto_guided_share`` of the time budget; when its model is not
accepted as a fix (it fits the test only, or does not pass), adversarial fine-tuning runs from the
**original** model in what is left of the budget, on the same data split and judged by the same
held-out split (the original's held-out figures are measured once). The first model accepted as a fix
is returned; when none is, the better outcome (passing before not passing, the guided one on a tie) is
returned with its honest status. Choosing between two candidates on the held-out split makes it a
slightly optimistic judge; data the repair never saw (benchmarks/repair.md's "unseen" split) says how
optimistic.

    >>> from robustest.repair.guided_settings import GuidedSettings
    >>> stage_settings(GuidedSettings(time_budget=100.0), "guided", left=100.0).time_budget
    70.0
    >>> stage_settings(GuidedSettings(), "adversarial-finetune", left=20.0).rounds
    40
"""

from __future__ import annotations

import dataclasses
import time

import torch

from ..results import Report
from .guided import Data, guided_repair
from .guided_settings import FITS_TEST_ONLY, FIXED, NOT_PASSING, UNMEASURED, GuidedSettings
from .guided_types import GuidedRepairResult, RepairTest

#: the stages of ``method="auto"``, in order
STAGES = ("guided", "adversarial-finetune")
#: a fallback with less time than this is not started (a fine-tuning round and a re-check take longer)
MIN_FALLBACK_SECONDS = 5.0
_RANK = {FIXED: 0, UNMEASURED: 0, FITS_TEST_ONLY: 1, NOT_PASSING: 2}


def stage_settings(settings: GuidedSettings, stage: str, *, left: float) -> GuidedSettings:
    """The settings one stage runs with: the guided stage gets ``auto_guided_share`` of the budget, the
    fallback what is ``left`` and ``fallback_rounds`` rounds."""
    if stage == "guided":
        return dataclasses.replace(settings, time_budget=settings.time_budget * settings.auto_guided_share)
    return dataclasses.replace(settings, time_budget=max(left, 1e-3), rounds=settings.fallback_rounds)


def auto_repair(model: torch.nn.Module, test: RepairTest, *, train: Data | None, holdout: Data | None,
                settings: GuidedSettings, seed: int, before: Report | None = None) -> GuidedRepairResult:
    """Run the stages; see the module docstring. The result's ``method`` names the stage that made the
    model ("auto: guided"), ``details["stages"]`` holds every stage's result, ``seconds`` the total."""
    t0 = time.perf_counter()
    results: list[GuidedRepairResult] = []
    notes: list[str] = []
    baseline = None
    for stage in STAGES:
        left = settings.time_budget - (time.perf_counter() - t0)
        if results and left < MIN_FALLBACK_SECONDS:
            notes.append(f"auto: no {stage} fallback, {max(left, 0.0):.0f} s of the budget left")
            break
        res = guided_repair(model, test, train=train, holdout=holdout, method=stage, seed=seed,
                            settings=stage_settings(settings, stage, left=left), before=before, baseline=baseline)
        results.append(res)
        before = res.before
        baseline = (res.holdout_before, float(res.details.get("holdout_seconds", 0.0)))
        notes.append(f"auto: {stage} {res.status} in {res.seconds:.0f} s")
        if res.status in (FIXED, UNMEASURED):
            break
    chosen = min(results, key=lambda r: _RANK[r.status])  # min keeps the first of equals
    if len(results) > 1:
        notes.append(f"auto: kept the {chosen.method} model"
                     + ("" if chosen.status in (FIXED, UNMEASURED) else " (neither is accepted as a fix)"))
    return dataclasses.replace(chosen, method=f"auto: {chosen.method}", notes=chosen.notes + tuple(notes),
                               seconds=time.perf_counter() - t0,
                               details={**chosen.details, "stages": tuple(results)})


__all__ = ["STAGES", "auto_repair", "stage_settings"]
