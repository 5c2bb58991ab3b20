"""The library API shared by the pytest plugin, the CLI and users' scripts.

    >>> import torch, robustest
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    >>> x, y = torch.rand(6, 4), torch.zeros(6, dtype=torch.long)
    >>> report = robustest.check(model, x, y, eps=0.05, norm="linf", seed=0)
    >>> len(report.verdicts)
    6
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

import torch

from ._options import reject_unknown_keywords
from .attacks.sequence import DEFAULT_STRENGTH, AttackSpec, build_sequence, run_sequence
from .cache import VerdictCache, as_cache
from .cache.reuse import CachePlan
from .checks import HealthCheckWarning, as_suppressed, masking_check, preserved_buffers, run_health_checks
from .errors import caller_stacklevel
from .ladder import Ladder, StepContext
from .provers import ProofSettings
from .results import AttackResult, Report
from .spec import Bound, LpBall, as_ball
from .validate import (as_indices, as_inputs, as_labels, as_model_inputs, as_option, as_seed, as_timeout,
                       check_classes, model_logits)

Domain = Optional[Tuple[Bound, Bound]]


@reject_unknown_keywords
def check(model: Any, inputs: Any, labels: Any, *, eps: Union[float, LpBall], norm: str = "linf",
          escalate: str = "attack", timeout: float = 10.0, domain: Domain = (0.0, 1.0), seed: int = 0,
          solver: str = "highs", attacks: Union[str, Sequence[AttackSpec]] = "auto",
          suppress_health_check: Iterable[Any] = (), alpha_crown: bool = False,
          provers: Optional[ProofSettings] = None, strength: str = DEFAULT_STRENGTH,
          indices: Optional[Sequence[int]] = None,
          cache: Union[None, str, "os.PathLike[str]", VerdictCache] = None) -> Report:
    """Decide, per sample, whether every input in the ``eps``-ball around it keeps its label.

    The ladder runs cheapest first, each rung only on the samples still undecided: attacks (which can
    only falsify), then the provers up to ``escalate`` ("ibp", "crown", "lp", "milp", "bab"; see
    :mod:`robustest.ladder`). ``timeout`` is the budget in seconds per sample for the whole ladder; a
    sample whose budget runs out is "unknown". ``alpha_crown`` optimises CROWN's slopes for what plain
    CROWN leaves open; ``provers`` holds the provers' other knobs (a frozen
    :class:`~robustest.provers.ProofSettings`). Every counterexample, whichever rung found it, is re-checked
    by a plain forward pass: it must change the label and lie in the ball and the domain. A misspelt
    keyword is an :class:`~robustest.errors.InvalidArgument` naming the closest valid one. ``strength``
    ("fast", "standard", "thorough") sets the length of the default attack sequence (``attacks="auto"``).
    After attacks that include a gradient-free one (the default sequence does), the ``masking`` health
    check warns when the gradients mislead them.

    Each sample's random draws derive from ``seed`` and its position in the whole set, ``indices``
    (default ``0 .. n-1``), never from the other samples checked with it: a slice of a data set checked
    with its ``indices`` gets, sample by sample, the verdicts of the whole set checked at once (the
    report still numbers the slice's samples from 0). ``cache`` (a directory or a
    :class:`robustest.cache.VerdictCache`) reuses the verdicts decided before for the same model,
    samples and settings; a reused counterexample passes the same forward-pass re-check as a fresh one
    (see :mod:`robustest.cache`).

    Example::

        report = robustest.check(model, x_test[:100], y_test[:100], eps=0.05, escalate="crown")
        assert report.passed(min_pass=0.9)
    """
    start = time.perf_counter()  # validating and loading count against the budget too
    given = dict(norm=norm, escalate=escalate, timeout=timeout, seed=seed, solver=solver, attacks=attacks,
                 suppress_health_check=suppress_health_check, alpha_crown=alpha_crown, provers=provers,
                 strength=strength, indices=indices, cache=cache)
    if not isinstance(eps, LpBall):
        given.update(eps=eps, domain=domain)
    if isinstance(given["suppress_health_check"], (set, frozenset)):
        given["suppress_health_check"] = tuple(given["suppress_health_check"])
    for name, value in given.items():
        as_option(name, value)
    settings = provers or ProofSettings()
    if alpha_crown:
        settings = replace(settings, alpha_crown=True)
    ball = as_ball(eps, norm, domain)
    sequence = build_sequence(attacks, strength=strength)  # validate the attack list before any work
    store = as_cache(cache)
    x = as_model_inputs(model, as_inputs(inputs, ball.domain))
    y = as_labels(labels, x.shape[0], x.device)
    ids = as_indices(indices, x.shape[0])
    with preserved_buffers(model):  # a train-mode model (suppressed check) keeps its statistics
        logits = model_logits(model, x, y, allow_train="train_mode" in as_suppressed(suppress_health_check))
        warned = run_health_checks(model, x, y, suppress_health_check, logits=logits)
        n = x.shape[0]
        ctx = StepContext(model=model, inputs=x, labels=y, ball=ball, seed=seed, timeout=float(timeout),
                          spent=[0.0] * n, escalate=escalate, attacks=sequence, solver=solver,
                          settings=settings, sample_ids=ids)
        plan = CachePlan.open(store, model=model, inputs=x, labels=y, ball=ball, escalate=escalate,
                              seed=seed, sample_ids=ids,
                              options={"solver": solver, "attacks": attacks, "provers": settings,
                                       "strength": strength},
                              timeout=float(timeout))
        ctx.charge(list(range(n)), time.perf_counter() - start)
        samples = Ladder(ctx).run(logits.argmax(1), reuse=None if plan is None else plan.reuse)
        if plan is not None:
            plan.store(dict(enumerate(samples)))
        free = {a.describe() for a in sequence if a.gradient_free}
        if free and not getattr(model, "gradient_free", False) and "masking" not in as_suppressed(
                suppress_health_check):  # gradient-free vs gradient attacks (none on a forward-only model)
            found = masking_check(model, x, y, ball, gradient_free=sum(s.method in free for s in samples),
                                  attacked=sum(s.verdict != "misclassified" for s in samples),
                                  generator=ctx.streams(range(n), salt=2))
            for msg in found:
                warnings.warn(msg, HealthCheckWarning, stacklevel=caller_stacklevel())
            warned = [*warned, *found]
    return Report(samples=samples, ball=ball, escalate=escalate, seed=seed,
                  seconds=time.perf_counter() - start, warnings=tuple(warned))


def attack(model: Any, inputs: Any, labels: Any, *, eps: Union[float, LpBall], norm: str = "linf",
           method: Union[str, Sequence[AttackSpec]] = "apgd", domain: Domain = (0.0, 1.0), seed: int = 0,
           targets: Any = None, timeout: Optional[float] = None, **options: Any) -> AttackResult:
    """Attack every sample; return the re-checked adversarial inputs and which samples broke.

    ``method`` is an attack name ("fgsm", "pgd", "apgd", "apgd-dlr", "apgd-t", "square", "fab"), "auto"
    for the default falsification sequence (``strength="fast"`` / ``"thorough"`` shortens / lengthens
    it), or a list run in turn on the samples still unbroken. ``options`` go to a
    single named attack (e.g. ``steps=100, restarts=5``). ``targets`` makes the attack targeted: a
    sample counts as broken only when it is predicted as its target (never as its label).
    ``timeout`` bounds the whole call in seconds.

    Example::

        adv = robustest.attack(model, x, y, eps=0.05, norm="linf", method="pgd", steps=40)
        print(adv.success_rate, adv.adversarial.shape)
    """
    ball = as_ball(eps, norm, domain)
    seed = as_seed(seed)
    attacks = build_sequence(method, **options)
    x = as_model_inputs(model, as_inputs(inputs, ball.domain))
    y = as_labels(labels, x.shape[0], x.device)
    k = model_logits(model, x, y).shape[1]
    t = None if targets is None else as_labels(targets, x.shape[0], x.device)
    if t is not None:
        check_classes("targets", t, k)
    g = torch.Generator(device=x.device)
    g.manual_seed(seed)
    start = time.perf_counter()
    deadline = None if timeout is None else start + as_timeout(timeout)
    out = run_sequence(model, x, y, ball, attacks, targets=t, generator=g, deadline=deadline)
    return AttackResult(adversarial=out.adversarial, success=out.success, predicted=out.predicted,
                        distance=ball.distance(out.adversarial, x), method=out.method,
                        seconds=time.perf_counter() - start)

