"""The library API shared by the pytest plugin, the CLI and users' scripts.

    >>> import torch, robustest
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    >>> x, y = torch.rand(6, 4), torch.zeros(6, dtype=torch.long)
    >>> report = robustest.check(model, x, y, eps=0.05, norm="linf", seed=0)
    >>> len(report.verdicts)
    6
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

import torch

from .attacks.losses import margin_loss
from .attacks.sequence import AttackSpec, build_sequence, run_sequence
from .checks import as_suppressed, preserved_buffers, run_health_checks
from .ladder import StepContext, StepOutcome, rungs, validate_escalate
from .results import AttackResult, Report, SampleResult
from .spec import Bound, LpBall, as_ball
from .validate import as_inputs, as_labels, as_seed, as_solver, as_timeout, model_logits

Domain = Optional[Tuple[Bound, Bound]]


def check(model: Any, inputs: Any, labels: Any, *, eps: Union[float, LpBall], norm: str = "linf",
          escalate: str = "attack", timeout: float = 10.0, domain: Domain = (0.0, 1.0), seed: int = 0,
          solver: str = "highs", attacks: Union[str, Sequence[AttackSpec]] = "auto",
          suppress_health_check: Iterable[Any] = (), **options: Any) -> Report:
    """Decide, per sample, whether every input in the ``eps``-ball around it keeps its label.

    The ladder runs cheapest first, each rung only on the samples still undecided: attacks (which can
    only falsify), then certifiers up to ``escalate`` ("ibp", "crown", "lp", "milp"). ``timeout`` is the
    budget in seconds per sample for the whole ladder; a sample whose budget runs out is "unknown".
    Every counterexample, whichever rung found it, is re-checked here by a plain forward pass: it must
    change the label and lie in the ball and the domain.

    Example::

        report = robustest.check(model, x_test[:100], y_test[:100], eps=0.05, escalate="crown")
        assert report.passed(min_pass=0.9)
    """
    with preserved_buffers(model):
        return _check(model, inputs, labels, eps=eps, norm=norm, escalate=escalate, timeout=timeout,
                      domain=domain, seed=seed, solver=solver, attacks=attacks,
                      suppress_health_check=suppress_health_check, options=options)


def _check(model: Any, inputs: Any, labels: Any, *, eps: Union[float, LpBall], norm: str, escalate: str,
           timeout: float, domain: Domain, seed: int, solver: str, attacks: Union[str, Sequence[AttackSpec]],
           suppress_health_check: Iterable[Any], options: Dict[str, Any]) -> Report:
    ball = as_ball(eps, norm, domain)
    validate_escalate(escalate)
    timeout, seed, solver = as_timeout(timeout), as_seed(seed), as_solver(solver)
    build_sequence(attacks)  # validate the attack list before any work
    x = as_inputs(inputs, ball.domain)
    y = as_labels(labels, x.shape[0], x.device)
    start = time.perf_counter()
    logits = model_logits(model, x, y, allow_train="train_mode" in as_suppressed(suppress_health_check))
    warned = run_health_checks(model, x, y, suppress_health_check, logits=logits)
    pred = logits.argmax(1)
    n = x.shape[0]
    ctx = StepContext(model=model, inputs=x, labels=y, ball=ball, seed=seed, timeout=timeout,
                      spent=[0.0] * n, options={"solver": solver, "attacks": attacks, "escalate": escalate,
                                                **options})
    ctx.charge(list(range(n)), time.perf_counter() - start)
    decided: Dict[int, SampleResult] = {}
    for i in range(n):
        if pred[i] != y[i]:
            decided[i] = SampleResult(index=i, verdict="misclassified", method="clean", label=int(y[i]),
                                      seconds=ctx.spent[i], predicted=int(pred[i]))
    last: Dict[int, Tuple[str, str]] = {}
    for rung in rungs(escalate):
        todo = [i for i in range(n) if i not in decided and ctx.remaining(i) > 0]
        if not todo:
            break
        outcomes = rung.run(ctx, todo)
        _recheck_counterexamples(model, ctx, outcomes)
        for i in todo:
            out = outcomes.get(i, StepOutcome())
            if out.verdict is None:
                last[i] = (rung.name, out.reason)
                continue
            decided[i] = _sample(ctx, i, out, rung.name)
    for i in range(n):
        if i not in decided:
            method, reason = last.get(i, ("none", ""))
            if ctx.remaining(i) <= 0:
                reason = f"time budget of {timeout:g} s per sample used up" + (f"; {reason}" if reason else "")
            if not reason:
                reason = ("survived every attack; escalate past 'attack' to try to certify it"
                          if method == "attack" else f"not decided by {method}")
            decided[i] = SampleResult(index=i, verdict="unknown", method=method, label=int(y[i]),
                                      seconds=ctx.spent[i], reason=reason)
    samples = tuple(_with_seconds(decided[i], ctx.spent[i]) for i in range(n))
    return Report(samples=samples, ball=ball, escalate=escalate, seed=seed,
                  seconds=time.perf_counter() - start, warnings=tuple(warned))


def _recheck_counterexamples(model: Any, ctx: StepContext, outcomes: Dict[int, StepOutcome]) -> None:
    """Re-check every claimed counterexample; demote the ones that fail to undecided (with the reason)."""
    claimed = [i for i, o in outcomes.items() if o.verdict == "falsified"]
    if not claimed:
        return
    idx = torch.tensor(claimed, device=ctx.inputs.device)
    cands = []
    for i in claimed:
        ce = outcomes[i].counterexample
        ok_shape = isinstance(ce, torch.Tensor) and ce.numel() == ctx.inputs[i].numel()
        cands.append(ce.reshape(ctx.inputs[i].shape).to(ctx.inputs) if ok_shape else ctx.inputs[i])  # type: ignore[union-attr]
    xa = torch.stack(cands)
    with torch.no_grad():
        z = model(xa)
    pred = z.argmax(1)
    margin = -margin_loss(z, ctx.labels[idx])
    inside = ctx.ball.contains(xa, ctx.inputs[idx])
    dist = ctx.ball.distance(xa, ctx.inputs[idx])
    for k, i in enumerate(claimed):
        o = outcomes[i]
        if bool(inside[k]) and int(pred[k]) != int(ctx.labels[i]):
            o.counterexample, o.figure = xa[k], float(margin[k])
            o.predicted, o.distance = int(pred[k]), float(dist[k])
        else:
            outcomes[i] = StepOutcome(reason=f"a counterexample from {o.method or 'this rung'} failed the "
                                             "forward-pass re-check and was discarded")


def _sample(ctx: StepContext, i: int, out: StepOutcome, rung: str) -> SampleResult:
    label = int(ctx.labels[i])
    if out.verdict == "falsified":
        return SampleResult(index=i, verdict="falsified", method=out.method or rung, label=label,
                            seconds=ctx.spent[i], counterexample=out.counterexample, predicted=out.predicted,
                            distance=out.distance, figure=out.figure)
    return SampleResult(index=i, verdict="certified", method=out.method or rung, label=label,
                        seconds=ctx.spent[i], predicted=label, figure=out.figure, reason=out.reason)


def _with_seconds(s: SampleResult, seconds: float) -> SampleResult:
    from dataclasses import replace

    return replace(s, seconds=seconds)


def attack(model: Any, inputs: Any, labels: Any, *, eps: Union[float, LpBall], norm: str = "linf",
           method: Union[str, Sequence[AttackSpec]] = "apgd", domain: Domain = (0.0, 1.0), seed: int = 0,
           targets: Any = None, timeout: Optional[float] = None, **options: Any) -> AttackResult:
    """Attack every sample; return the re-checked adversarial inputs and which samples broke.

    ``method`` is an attack name ("fgsm", "pgd", "apgd", "apgd-dlr", "apgd-t"), "auto" for the default
    falsification sequence, or a list run in turn on the samples still unbroken. ``options`` go to a
    single named attack (e.g. ``steps=100, restarts=5``). ``targets`` makes the attack targeted.
    ``timeout`` bounds the whole call in seconds.

    Example::

        adv = robustest.attack(model, x, y, eps=0.05, norm="linf", method="pgd", steps=40)
        print(adv.success_rate, adv.adversarial.shape)
    """
    ball = as_ball(eps, norm, domain)
    seed = as_seed(seed)
    attacks = build_sequence(method, **options)
    x = as_inputs(inputs, ball.domain)
    y = as_labels(labels, x.shape[0], x.device)
    model_logits(model, x, y)
    t = None if targets is None else as_labels(targets, x.shape[0], x.device)
    g = torch.Generator(device=x.device)
    g.manual_seed(seed)
    start = time.perf_counter()
    deadline = None if timeout is None else start + as_timeout(timeout)
    out = run_sequence(model, x, y, ball, attacks, targets=t, generator=g, deadline=deadline)
    return AttackResult(adversarial=out.adversarial, success=out.success, predicted=out.predicted,
                        distance=ball.distance(out.adversarial, x), method=out.method,
                        seconds=time.perf_counter() - start)

