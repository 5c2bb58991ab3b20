"""What keeps a guided repair from fitting the test's samples: a validation guard on every round's
correction, the choice of the one layer to repair, and a short adversarial polish afterwards.

The training data a guided repair gets is split three ways: the loss cut's part, a *validation* part
(this module's) and the held-out part that judges the result (:mod:`robustest.repair.holdout`). The
guard measures robust accuracy (the test's attacks at its eps) and clean accuracy on the validation
part; a round's correction that lowers the first below the original model's, or the second by more
than the tolerance, is shrunk (a line search on its share of the step) or rejected. Choices made on the
validation part are never judged on it.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    >>> [name for name, _ in layers(net)]
    ['0', '2']
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from ..errors import invalid_argument
from ..spec import as_ball
from . import holdout as ho
from .guided_types import HoldoutFigures, RepairTest
from .jacobian import FlatModel
from .robust_loss import max_loss_points

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Report

Data = tuple[torch.Tensor, torch.Tensor]


class Guard:
    """The validation data and the original model's figures on it; :meth:`accepts` judges a model."""

    def __init__(self, model: torch.nn.Module, data: Data, test: RepairTest, *, tolerance: float,
                 limit: int) -> None:
        self.data, self.test, self.tolerance, self.limit = data, test, tolerance, limit
        tic = time.perf_counter()
        base = ho.figures(model, data, test, limit=limit)
        assert base is not None
        self.base: HoldoutFigures = base
        self.last: HoldoutFigures = base
        self.seconds = time.perf_counter() - tic  # what one judgement costs (to keep a round in its budget)

    def accepts(self, model: torch.nn.Module) -> bool:
        """Robust accuracy not below the original's and clean accuracy within the tolerance (the
        figures land in ``self.last``)."""
        found = ho.figures(model, self.data, self.test, limit=self.limit)
        assert found is not None
        self.last = found
        return found.robust >= self.base.robust - 1e-12 and self.base.clean - found.clean <= self.tolerance + 1e-12

    def shrink(self, model: torch.nn.Module, start: torch.Tensor, scales: Sequence[float],
               deadline: float = math.inf) -> float | None:
        """The largest share t of ``scales`` for which ``start + t (w - start)`` passes, written into
        ``model`` (``w``: its weights now); None (and ``start`` written back) when none passes before
        ``deadline`` (perf_counter seconds: no share is judged after it)."""
        fm = FlatModel(model)
        step = fm.w0 - start
        for t in scales:
            if time.perf_counter() >= deadline:
                break
            fm.write(start + t * step)
            if self.accepts(model):
                return float(t)
        fm.write(start)
        return None


def smallest_passing(model: torch.nn.Module, start: torch.Tensor, test: RepairTest, shares: Sequence[float],
                     guard: Guard | None, deadline: float = math.inf) -> tuple[float, Report] | None:
    """The smallest share t of ``shares`` (below 1) for which ``start + t (w - start)`` passes the test's
    attacks (and ``guard``, if any), written into ``model`` with its report; None (``w`` kept) when none
    does before ``deadline``. The least change that passes touches the fewest samples the test does not
    hold."""
    fm = FlatModel(model)
    end = fm.w0
    for t in sorted(t for t in shares if t < 1):
        if time.perf_counter() >= deadline:
            break
        fm.write(start + t * (end - start))
        report = test.run(model, attacks_only=True)
        if test.passes(report) and (guard is None or guard.accepts(model)):
            return float(t), report
    fm.write(end)
    return None


def layers(model: torch.nn.Module) -> list[tuple[str, list[str]]]:
    """(module name, its trainable parameters' full names) for each module owning trainable parameters."""
    out = []
    for name, module in model.named_modules():
        own = [f"{name}.{p}" if name else p for p, t in module.named_parameters(recurse=False) if t.requires_grad]
        if own:
            out.append((name, own))
    return out


def layer_names(model: torch.nn.Module, layer: str) -> list[str] | None:
    """The parameter names a ``layer`` setting frees: None for "all"; a clear error for a wrong name."""
    if layer in ("all", "auto"):
        return None
    found = dict(layers(model))
    if layer not in found:
        raise invalid_argument("GuidedSettings.layer", layer, f"'all', 'auto' or one of {sorted(found)}",
                               "pass layer='all', or the name of a module with trainable parameters")
    return found[layer]


@contextlib.contextmanager
def only(model: torch.nn.Module, names: Sequence[str] | None) -> Iterator[None]:
    """Inside the block only the parameters ``names`` are trainable (None: no change); the flags come
    back afterwards."""
    if names is None:
        yield
        return
    flags: dict[str, bool] = {n: p.requires_grad for n, p in model.named_parameters()}
    keep = set(names)
    for n, p in model.named_parameters():
        p.requires_grad_(flags[n] and n in keep)
    try:
        yield
    finally:
        restore(model, flags)


def restore(model: torch.nn.Module, flags: dict[str, bool]) -> None:
    for n, p in model.named_parameters():
        p.requires_grad_(flags.get(n, p.requires_grad))


def flags_of(model: torch.nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in model.named_parameters()}


def ball_points(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, test: RepairTest, *, count: int,
                seed: int) -> Data:
    """``count`` loss-maximising PGD points (random starts) in each sample's ball at the test's eps,
    whether or not they break the model: cuts there ask for the whole neighbourhood, not one point."""
    if count == 0 or len(y) == 0:
        return x[:0], y[:0]
    ball = as_ball(test.eps, test.check.get("norm", "linf"), test.check.get("domain", (0.0, 1.0)))
    pts = [max_loss_points(model, x, y, ball, seed=seed + k) for k in range(count)]
    return torch.cat(pts), y.repeat(count)


def polish(model: torch.nn.Module, test: RepairTest, guard: Guard, train: Data, *, names: Sequence[str] | None,
           steps: int, lr: float, batch: int, pgd_steps: int, seed: int, deadline: float) -> tuple[bool, str]:
    """A short adversarial fine-tune of ``names`` (None: every parameter) of ``model`` in place, kept
    only when the test still passes (attacks) and the guard accepts it; (kept, a note)."""
    from .finetune import FineTuner

    start = FlatModel(model).w0
    with only(model, names):
        tuner = FineTuner(model, lr=lr)
        taken = tuner.steps(test.inputs, test.labels, train, eps=test.eps, norm=test.check.get("norm", "linf"),
                            domain=test.check.get("domain", (0.0, 1.0)), steps=steps, batch=batch,
                            pgd_steps=pgd_steps, seed=seed, deadline=deadline)
    before = guard.last
    passes = test.passes(test.run(model, attacks_only=True))
    kept = passes and guard.accepts(model) and guard.last.robust >= before.robust - 1e-12
    figures = f"validation robust {before.robust:.1%} -> {guard.last.robust:.1%}" if passes else "the test fails"
    if not kept:
        FlatModel(model).write(start)
        guard.last = before
    return kept, f"polish: {taken} adversarial fine-tuning steps {'kept' if kept else 'undone'} ({figures})"


__all__ = ["Guard", "ball_points", "flags_of", "layer_names", "layers", "only", "polish", "restore", "smallest_passing"]
