"""``robustest.radius``: how far each sample is from changing its label, bracketed from both sides.

The upper end comes from searches for the smallest adversarial perturbation (DeepFool with the boundary
search, then rLR-QP on ReLU networks, or PGD bisection on other networks); every candidate is re-checked
here with a plain forward pass and its norm recomputed. The lower end is the largest radius a sound
certifier proves, by bisection on eps over ``robustest.check(..., escalate=certifier)``. With
``exact=True`` small ReLU networks also get the proven minimum from a MILP.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, List, Optional, Tuple

import torch

from ..errors import UnsupportedLayer, invalid_argument
from ..progress import Progress, listening, tell
from ..results import RUNGS
from ..spec import Bound, LpBall
from ..validate import as_inputs, as_model_inputs, as_labels, as_seed, as_timeout, model_logits
from .deepfool import deepfool, flipped
from .lr_qp import LrQpSettings, lr_qp
from .pgd_search import pgd_search
from .result import RadiusReport, RadiusSample

METHODS = ("auto", "deepfool", "lr_qp", "pgd")
CERTIFIERS = RUNGS[1:] + (None,)  # the proof rungs of robustest.check


def radius(model: Any, inputs: Any, labels: Any, *, norm: str = "l2", exact: bool = False,
           domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0), timeout: float = 30.0, seed: int = 0,
           method: str = "auto", certifier: Optional[str] = "crown", lower_steps: int = 8,
           lr_qp_settings: Optional[LrQpSettings] = None) -> RadiusReport:
    """Per sample: the smallest adversarial perturbation found (``upper``), the largest certified radius
    (``lower``) and, with ``exact=True`` on small ReLU networks, the proven minimum (``exact``).

    ``method`` is "auto" (DeepFool, then rLR-QP when the network is a ReLU network, else PGD bisection),
    "deepfool", "lr_qp" or "pgd". ``timeout`` is the rLR-QP budget per sample in seconds. ``certifier``
    names the rung of :func:`robustest.check` used for the lower bound (None skips it: ``lower`` = 0).

    Example::

        report = robustest.radius(model, x_test[:20], y_test[:20], norm="l2")
        print(report.summary())
        assert all(s.lower <= s.upper for s in report.samples)
    """
    ball = LpBall(eps=0.0, norm=norm, domain=domain)
    if method not in METHODS:
        raise invalid_argument("method", method, f"one of {', '.join(map(repr, METHODS))}",
                               "pass method='auto'")
    if certifier not in CERTIFIERS:
        raise invalid_argument("certifier", certifier, f"one of {', '.join(map(repr, RUNGS[1:]))} or None",
                               "pass certifier='crown', or None to skip the lower bound")
    if isinstance(lower_steps, bool) or not isinstance(lower_steps, int) or lower_steps < 0:
        raise invalid_argument("lower_steps", lower_steps, "an integer >= 0", "pass lower_steps=8")
    timeout, seed = as_timeout(timeout), as_seed(seed)
    x = as_model_inputs(model, as_inputs(inputs, ball.domain))
    y = as_labels(labels, x.shape[0], x.device)
    start = time.perf_counter()
    pred = model_logits(model, x, y).argmax(1)
    warnings: List[str] = []
    n = x.shape[0]
    best = x.clone()
    dist = torch.full((n,), float("inf"), dtype=torch.float64)
    how = ["none"] * n
    ok = pred == y

    def offer(cands: torch.Tensor, name: str) -> None:
        """Keep re-checked candidates that beat the current best (forward pass, norm recomputed)."""
        with torch.no_grad():
            # flipped with a margin beyond rounding noise, finite and inside the domain (the ball of
            # radius 0 around the candidate itself checks only the domain and finiteness)
            flips = flipped(model(cands), y) & ball.contains(cands, cands) & ok
        d = ball.distance(cands, x).double().cpu()
        better = flips.cpu() & (d < dist)
        for i in better.nonzero()[:, 0].tolist():
            best[i], dist[i], how[i] = cands[i], d[i], name

    idx = ok.nonzero()[:, 0]

    def step(name: str, done: int = 0, left: float = math.inf) -> None:
        tell(Progress(task="radius", step=name, decided=done, total=n, budget_left=left))

    if method in ("auto", "deepfool", "lr_qp"):
        step("deepfool")
        df, _ = deepfool(model, x, y, norm=ball.norm, domain=domain)
        offer(df, "deepfool")
    if method in ("auto", "lr_qp"):
        try:
            step("rLR-QP", left=timeout * len(idx))
            sub = lr_qp(model, x[idx], y[idx], norm=ball.norm, domain=domain, warm_start=best[idx], seed=seed,
                        settings=replace(lr_qp_settings or LrQpSettings(), timeout=timeout))
            full = best.clone()
            full[idx] = sub.adversarial
            offer(full, "lr_qp")
        except UnsupportedLayer as exc:
            if method == "lr_qp":
                raise
            warnings.append(f"rLR-QP skipped: {exc}")
            method = "pgd"
    if method == "pgd":
        step("pgd bisection")
        hi = torch.where(torch.isfinite(dist), dist, torch.ones_like(dist))[idx]
        adv, _ = pgd_search(model, x[idx], y[idx], norm=ball.norm, domain=domain, hi=hi, seed=seed)
        full = best.clone()
        full[idx] = adv
        offer(full, "pgd")
    lower, lower_how = _certified_lower(model, x, y, ok, dist, ball, certifier, lower_steps, seed,
                                        timeout, warnings, offer)
    exact_vals: List[Optional[float]] = [None] * n
    why_not = [""] * n  # why a sample has no exact minimum, when one was asked for
    own = [0.0] * n  # seconds spent on this sample alone (its exact minimum)
    if exact:
        _exact_minima(model, x, y, ok, dist, lower, exact_vals, ball, timeout, warnings, why_not, own)
        lower_how = "exact" if lower_how == "none" else f"{lower_how}+exact"
    step("done", n, 0.0)
    with torch.no_grad():
        adv_pred = model(best).argmax(1)
    samples = []
    for i in range(n):
        if not bool(ok[i]):
            samples.append(RadiusSample(index=i, label=int(y[i]), upper=0.0, lower=0.0, method="clean",
                                        lower_method="clean", seconds=0.0, adversarial=x[i],
                                        predicted=int(pred[i]), exact=0.0 if exact else None))
            continue
        found = bool(torch.isfinite(dist[i]))
        samples.append(RadiusSample(index=i, label=int(y[i]), upper=float(dist[i]), lower=float(lower[i]),
                                    method=how[i], lower_method=lower_how, seconds=0.0,
                                    adversarial=best[i] if found else None,
                                    predicted=int(adv_pred[i]) if found else None, exact=exact_vals[i],
                                    exact_reason=why_not[i]))
    seconds = time.perf_counter() - start
    # the batched searches' time is shared equally; a sample's own exact minimum is its own
    share = (seconds - sum(own)) / max(n, 1)
    samples = [replace(s, seconds=share + own[s.index]) for s in samples]
    return RadiusReport(samples=tuple(samples), norm=ball.norm, seconds=seconds, warnings=tuple(warnings))


def _certified_lower(model: Any, x: torch.Tensor, y: torch.Tensor, ok: torch.Tensor, dist: torch.Tensor,
                     ball: LpBall, certifier: Optional[str], steps: int, seed: int, timeout: float,
                     warnings: List[str], offer: Any) -> Tuple[torch.Tensor, str]:
    """Bisection on eps in ``[0, upper]``: certified mids raise the lower end. A falsified mid lowers
    the bracket and its (re-checked) counterexample is offered as a better upper end."""
    lower = torch.zeros(x.shape[0], dtype=torch.float64)
    if certifier is None or steps == 0:
        return lower, "none"
    from ..api import check

    todo = ok.nonzero()[:, 0].tolist()
    for k, i in enumerate(todo):
        tell(Progress(task="radius", step=f"certified lower bound ({certifier})", decided=k, total=len(todo)))
        lo, hi = 0.0, float(dist[i]) if bool(torch.isfinite(dist[i])) else _domain_diameter(x[i], ball)
        for _ in range(steps):
            mid = (lo + hi) / 2
            try:
                with listening(None):  # one line per sample above, not one per bisection step
                    rep = check(model, x[i:i + 1], y[i:i + 1], eps=LpBall(mid, ball.norm, ball.domain),
                                escalate=certifier, timeout=timeout, seed=seed, attacks=["fgsm"])
            except (ImportError, UnsupportedLayer) as exc:
                warnings.append(f"lower bounds skipped: certifier {certifier!r} is not usable here ({exc})")
                return torch.zeros_like(lower), "none"
            s = rep.samples[0]
            if s.verdict == "certified":
                lo = mid
            else:
                hi = mid
                if s.verdict == "falsified" and s.counterexample is not None:
                    cands = x.clone()
                    cands[i] = s.counterexample.reshape(x[i].shape)
                    offer(cands, f"{s.method}")
        lower[i] = min(lo, float(dist[i]))
    return lower, certifier


def _exact_minima(model: Any, x: torch.Tensor, y: torch.Tensor, ok: torch.Tensor, dist: torch.Tensor,
                  lower: torch.Tensor, exact_vals: List[Optional[float]], ball: LpBall, timeout: float,
                  warnings: List[str], why_not: List[str], own: List[float]) -> None:
    """Fill ``exact_vals`` with proven minima (MILP/MIQP, :mod:`.exact`) and raise ``lower`` to their
    proven bounds. Time-outs keep only the bound; an unavailable solver leaves them None with a warning.
    ``why_not[i]`` says why sample ``i`` has none; ``own[i]`` is the time its minimum took."""
    from ..errors import SolverUnavailable
    from .exact import exact_minimum

    todo = ok.nonzero()[:, 0].tolist()
    for k, i in enumerate(todo):
        tell(Progress(task="radius", step="exact minimum", decided=k, total=len(todo),
                      budget_left=timeout * (len(todo) - k)))
        t0 = time.perf_counter()
        try:
            res = exact_minimum(model, x[i:i + 1], y[i:i + 1], norm=ball.norm, domain=ball.domain,
                                upper=float(dist[i]), time_limit=timeout)
        except (SolverUnavailable, UnsupportedLayer, ImportError) as exc:
            warnings.append(f"exact minima skipped: {exc}")
            for j in todo[k:]:
                why_not[j] = f"exact minimum not computed: {exc}"
            return
        own[i] = time.perf_counter() - t0
        up = float(dist[i])
        lower[i] = min(max(float(lower[i]), res.bound), up)
        if res.status == "optimal":
            # the solver's optimum is within its gap of the true minimum, which is <= the found upper
            exact_vals[i] = min(res.value, up)
        elif res.status == "infeasible" and not bool(torch.isfinite(dist[i])):
            exact_vals[i] = float("inf")
            why_not[i] = "no input of the domain changes the label: the minimum is infinite"
        elif res.status == "time_limit":
            why_not[i] = (f"time limit of {timeout:g} s reached; the minimum lies in "
                          f"[{float(lower[i]):.6g}, {up:.6g}] (raise --timeout)")
        else:
            why_not[i] = (f"the solver found no input of the domain that changes the label, yet an "
                          f"adversarial input at {up:.6g} exists (solver tolerance); no exact value is given")


def _domain_diameter(x: torch.Tensor, ball: LpBall) -> float:
    """The largest distance from ``x`` to a point of the domain (the radius can be no larger)."""
    if ball.domain is None:
        return 1e3
    lo, hi = ball._domain_on(x)
    far = torch.maximum(x - lo, hi - x).reshape(1, -1)
    from ..spec import lp_norm

    return float(lp_norm(far, ball.norm)[0])


__all__ = ["radius"]
