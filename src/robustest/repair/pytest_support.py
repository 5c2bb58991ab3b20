"""Repair after a failing robustness check: what ``pytest --robust-repair=DIR`` and the CLI run.

:func:`repair_after_check` runs the counterexample-guided repair (:mod:`robustest.repair.guided`) of a
copy of the model until the test passes (or a budget or the held-out accuracy tolerance stops it),
re-checks it with the test's full ladder, and, when it is accepted as a fix (the test passes and
held-out accuracy and robustness are kept), saves its ``state_dict`` under ``out_dir`` (a fresh file
named after the test, never over an existing file) and checks that the file loads back into the user's
class. It returns a :class:`RepairSummary` with a before/after table. Expected failures (an unwritable
directory, a model repair cannot change, a solver refusing) come back as ``summary.error`` so a test run
reports them next to the failure instead of crashing.

    >>> summary = repair_after_check(model, x, y, report, check_kwargs={"eps": 0.1},     # doctest: +SKIP
    ...                              out_dir="repaired", test_name="tests/test_net.py::test_robust",
    ...                              train=(x_train, y_train))
    >>> print("\\n".join(summary.lines()))                                               # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..errors import ModelError, RobustestError
from ..results import VERDICTS, Report
from .guided_settings import GuidedSettings
from .guided_types import GuidedRepairResult, RepairTest
from .outdir import check_output_dir


@dataclass(frozen=True)
class RepairSummary:
    """Before/after verdict counts of a repair run from a failing check."""

    test_name: str
    before: Dict[str, int]
    after: Dict[str, int] = field(default_factory=dict)
    saved_path: Optional[str] = None
    after_report: Optional[Report] = None
    result: Optional[GuidedRepairResult] = None
    error: str = ""

    @property
    def repaired(self) -> bool:
        """Whether a repaired model was accepted, saved and re-checked."""
        return self.saved_path is not None

    def lines(self) -> List[str]:
        """A small before/after table for the terminal, then the repair's own summary."""
        if self.error:
            return [f"robustest repair of {self.test_name}: not repaired: {self.error}"]
        r = self.result
        if self.saved_path is not None:
            head = f"robustest repair of {self.test_name}: saved {self.saved_path}"
        else:
            why = r.status if r is not None else "no result"
            head = f"robustest repair of {self.test_name}: not saved ({why})"
        out = [head, f"  {'verdict':<14}{'before':>8}{'after':>8}"]
        for v in VERDICTS:
            out.append(f"  {v:<14}{self.before.get(v, 0):>8}{self.after.get(v, 0):>8}")
        if r is not None:
            out.extend(f"  {line}" for line in r.lines())
        return out

    def properties(self) -> List[Tuple[str, str]]:
        """JUnit ``<property>`` pairs (names prefixed ``repair_``)."""
        if self.error:
            return [("repair_error", self.error)]
        props = [("repair_saved_path", str(self.saved_path))]
        props += [(f"repair_before_{v}", str(self.before.get(v, 0))) for v in VERDICTS]
        props += [(f"repair_after_{v}", str(self.after.get(v, 0))) for v in VERDICTS]
        if self.result is not None:
            r = self.result
            props += [("repair_status", r.status), ("repair_method", r.method), ("repair_rounds", str(len(r.rounds))),
                      ("repair_distance", f"{r.distance:.6g}"), ("repair_seconds", f"{r.seconds:.3f}")]
            for when, h in (("before", r.holdout_before), ("after", r.holdout_after)):
                if h is not None:
                    props += [(f"repair_holdout_clean_{when}", f"{h.clean:.6g}"),
                              (f"repair_holdout_robust_{when}", f"{h.robust:.6g}")]
        return props


def repair_after_check(model: Any, inputs: Any, labels: Any, report: Report, *, check_kwargs: Dict[str, Any],
                       out_dir: str, test_name: str, min_pass: float = 1.0, require: str = "not_falsified",
                       train: Optional[Tuple[Any, Any]] = None, holdout: Optional[Tuple[Any, Any]] = None,
                       method: str = "auto", settings: Optional[GuidedSettings] = None) -> RepairSummary:
    """Repair ``model`` until the check (``check_kwargs``, ``min_pass``, ``require``) passes on
    ``(inputs, labels)``; save it under ``out_dir`` if it is accepted as a fix.

    ``train`` is the training data for the loss constraint (a share is held out to measure accuracy,
    unless ``holdout`` is given); without it the repair warns that accuracy cannot be protected.
    """
    from .api import repair

    before = report.counts()
    try:
        check_output_dir(out_dir)  # before any work
        test = RepairTest(inputs, labels, check=dict(check_kwargs), min_pass=min_pass, require=require)
        result = repair(model, report, train, test=test, method=method, holdout=holdout, guided=settings,
                        domain=check_kwargs.get("domain", (0.0, 1.0)), seed=int(check_kwargs.get("seed", 0)))
        assert isinstance(result, GuidedRepairResult)
        path = None
        if result.accepted:
            path = save_repaired(result.model, out_dir=out_dir, test_name=test_name)
            verify_loadable(path, model)
    except RobustestError as exc:
        return RepairSummary(test_name=test_name, before=before, error=str(exc))
    return RepairSummary(test_name=test_name, before=before, after=result.after.counts(), saved_path=path,
                         after_report=result.after, result=result)


def safe_name(test_name: str) -> str:
    """A file name from a test id: only ``[A-Za-z0-9_.-]``, at most ~100 characters, plus a short hash
    of the full id so that different tests never share a name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("._-")[:90] or "model"
    digest = hashlib.sha1(test_name.encode("utf-8")).hexdigest()[:8]
    return f"{stem}-{digest}"


def save_repaired(model: torch.nn.Module, *, out_dir: str, test_name: str) -> str:
    """Save ``model.state_dict()`` (on the CPU) as a new file in ``out_dir``; never overwrites a file.

    Returns the path. An existing file of the same name gets a numbered sibling instead.
    """
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, safe_name(test_name))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for k in range(1000):
        path = f"{base}.pt" if k == 0 else f"{base}-{k}.pt"
        try:
            fh = open(path, "xb")  # exclusive create: a file that exists is never touched
        except FileExistsError:
            continue
        with fh:
            torch.save(state, fh)
        return path
    raise ModelError(f"out_dir={out_dir!r} already holds 1000 repaired models for {test_name!r}. "
                     "Fix: clean the directory or pass another --robust-repair DIR")


def verify_loadable(path: str, model: Any) -> None:
    """Check that the saved state dict loads (strictly) into a fresh copy of the user's model."""
    state = torch.load(path, weights_only=True, map_location="cpu")
    fresh = copy.deepcopy(model)
    try:
        fresh.load_state_dict(state, strict=True)
    except (RuntimeError, AttributeError) as exc:
        raise ModelError(f"the repaired model saved at {path!r} does not load into "
                         f"{type(model).__name__}: {str(exc).splitlines()[0][:200]}. Fix: report this; the "
                         "repair changes parameter values only, never names or shapes") from None


__all__ = ["RepairSummary", "repair_after_check", "save_repaired", "safe_name", "verify_loadable"]
