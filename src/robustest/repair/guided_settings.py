"""The knobs of a guided repair and the names of its methods and outcomes (torch-free, so the CLI's
parser can show the defaults without importing torch).

    >>> GuidedSettings().accuracy_tolerance
    0.01
    >>> GuidedSettings(rounds=0)
    Traceback (most recent call last):
    ...
    robustest.errors.InvalidArgument: GuidedSettings.rounds=0 is not valid: expected an integer >= 1. Fix: pass rounds=5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import invalid_argument

#: the repair methods; the first is the default ("auto": guided rounds, then adversarial fine-tuning
#: from the original model when the guided repair is not accepted as a fix; benchmarks/repair.md)
METHODS: Tuple[str, ...] = ("auto", "guided", "one-shot", "adversarial-finetune")

#: the outcome of a guided repair, from best to worst
FIXED = "fixed"  # the test passes and held-out accuracy and robustness are kept
FITS_TEST_ONLY = "fits the test only"  # the test passes but held-out robustness dropped
UNMEASURED = "passes, held-out accuracy not measured"  # the test passes; there was no data to hold out
NOT_PASSING = "not passing"  # a budget ran out (or the accuracy tolerance stopped it) before the test passed
STATUSES: Tuple[str, ...] = (FIXED, UNMEASURED, FITS_TEST_ONLY, NOT_PASSING)


@dataclass(frozen=True)
class GuidedSettings:
    """Knobs of the rounds (attack -> add counterexamples as cuts -> QP step -> re-check).

    ``rounds`` and ``time_budget`` (seconds, whole repair) bound the work; ``accuracy_tolerance`` is the
    largest drop of held-out clean accuracy accepted (a fraction: 0.01 is one point);
    ``holdout_share`` of the training data is set aside to measure it when no ``holdout=`` is given;
    ``holdout_limit`` caps the held-out samples attacked for robust accuracy; ``neighbours``: training
    samples nearest each failing test sample whose own counterexamples join the cuts (0: off);
    ``iterations`` master QPs per round; ``margin`` the logit margin the cuts ask for;
    ``robust_linearisation`` tightens each cut by eps times the input gradient's dual norm (eq. 18; on by
    default: in benchmarks/repair.md it passed 5 of 5 failing tests against 4 of 5 without it, in fewer
    rounds and less time, at the same held-out figures);
    ``loss_subsample`` caps the training samples in the loss cut; ``save_anyway`` accepts (so the
    plugin and CLI save) a model that is not a fix: one that fits the test only or does not pass;
    ``finetune_steps``/``finetune_lr``/``finetune_batch``/``finetune_pgd_steps`` are the adversarial
    fine-tuning mode's optimiser steps per round, Adam rate, batch of training samples and PGD steps.

    Generalisation aids (benchmarks/repair.md measures each): ``adversarial_loss_cut`` adds a QP cut
    that the adversarial training loss (PGD at the test's eps) may not rise, to first order (with
    ``adversarial_loss_decrease``: must fall by that share);
    ``robust_guard`` checks every round's correction on a validation split of the training data
    (``validation_share`` of what is not held out, never the held-out part that judges the result):
    robust accuracy under the test's attacks may not fall below the original model's, nor clean
    accuracy by more than the tolerance; a correction that fails is shrunk along ``guard_scales`` (its
    share of the step) and the round is rejected when no share passes (the cut-based methods only:
    guarded, adversarial fine-tuning passed 1 of 5 tests in the benchmark's time); ``ball_points`` extra PGD
    counterexamples from random starts in each failing sample's ball join the cuts (0: off);
    ``layer``: "all" parameters, "auto" (round 1 tries each layer alone and keeps the one with the best
    validation robust accuracy; needs a validation split) or a module name; ``polish_steps``
    adversarial fine-tuning steps on the repaired layer after the rounds, kept only when the test
    still passes and validation robust accuracy does not fall (0: off); ``least_step``: once a round
    passes the test, the smallest share of its step in ``guard_scales`` that still passes is kept;
    ``protect``: the training samples of other classes nearest each counterexample (this many per
    point, pooled over the rounds) whose worst points in their balls may not lose margin (0: off).

    ``method="auto"``: the guided repair gets ``auto_guided_share`` of ``time_budget``; when its model
    is not accepted as a fix, adversarial fine-tuning from the original model runs in what is left of
    the budget (at most ``fallback_rounds`` rounds of ``finetune_steps`` steps), judged on the same
    held-out split; the first model accepted as a fix is kept.
    """

    rounds: int = 8
    time_budget: float = 300.0
    accuracy_tolerance: float = 0.01
    holdout_share: float = 0.25
    holdout_limit: int = 300
    neighbours: int = 2
    iterations: int = 5
    margin: float = 0.05
    robust_linearisation: bool = True
    loss_subsample: Optional[int] = 1000
    save_anyway: bool = False
    finetune_steps: int = 10
    finetune_lr: float = 1e-4
    finetune_batch: int = 64
    finetune_pgd_steps: int = 10
    adversarial_loss_cut: bool = True
    adversarial_loss_decrease: float = 0.0
    robust_guard: bool = True
    validation_share: float = 0.2
    guard_scales: Tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    ball_points: int = 0
    layer: str = "all"
    polish_steps: int = 0
    least_step: bool = True
    protect: int = 40
    auto_guided_share: float = 0.7
    fallback_rounds: int = 40

    def __post_init__(self) -> None:
        for name in ("rounds", "holdout_limit", "iterations", "finetune_steps", "finetune_batch", "finetune_pgd_steps",
                     "fallback_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise invalid_argument(f"GuidedSettings.{name}", value, "an integer >= 1", f"pass {name}=5")
        for name, fix in (("neighbours", "neighbours=2, or 0 to fix the test's counterexamples only"),
                          ("ball_points", "ball_points=4, or 0 for the test's counterexamples only"),
                          ("polish_steps", "polish_steps=20, or 0 for no fine-tuning after the rounds"),
                          ("protect", "protect=8, or 0 to protect no training sample")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise invalid_argument(f"GuidedSettings.{name}", value, "an integer >= 0", f"pass {fix}")
        scales = self.guard_scales
        if (not isinstance(scales, tuple) or not scales
                or any(isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1 for t in scales)):
            raise invalid_argument("GuidedSettings.guard_scales", scales, "a non-empty tuple of shares in (0, 1]",
                                   "pass guard_scales=(1.0, 0.75, 0.5, 0.25)")
        if not isinstance(self.layer, str) or not self.layer:
            raise invalid_argument("GuidedSettings.layer", self.layer, "'all', 'auto' or a module name",
                                   "pass layer='all'")
        checks = (("time_budget", lambda v: v > 0, "seconds > 0", "time_budget=300"),
                  ("accuracy_tolerance", lambda v: 0 <= v <= 1, "a fraction in [0, 1]", "accuracy_tolerance=0.01"),
                  ("holdout_share", lambda v: 0 < v < 1, "a fraction in (0, 1)", "holdout_share=0.25"),
                  ("validation_share", lambda v: 0 < v < 1, "a fraction in (0, 1)", "validation_share=0.2"),
                  ("auto_guided_share", lambda v: 0 < v <= 1, "a share of the time budget in (0, 1]",
                   "auto_guided_share=0.7"),
                  ("adversarial_loss_decrease", lambda v: 0 <= v < 1, "a share in [0, 1)",
                   "adversarial_loss_decrease=0.0"),
                  ("margin", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0", "margin=0.05"),
                  ("finetune_lr", lambda v: math.isfinite(v) and v > 0, "a number > 0", "finetune_lr=1e-4"))
        for name, ok, expected, fix in checks:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not ok(value):
                raise invalid_argument(f"GuidedSettings.{name}", value, expected, f"pass {fix}")
        sub = self.loss_subsample
        if sub is not None and (isinstance(sub, bool) or not isinstance(sub, int) or sub < 1):
            raise invalid_argument("GuidedSettings.loss_subsample", sub, "an integer >= 1 or None",
                                   "pass loss_subsample=1000")



__all__ = ["GuidedSettings", "METHODS", "STATUSES", "FIXED", "UNMEASURED", "FITS_TEST_ONLY", "NOT_PASSING"]
