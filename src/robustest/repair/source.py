"""Where the repair's adversarial points come from: a check report's counterexamples, or PGD on data.

    >>> import torch, robustest                                                  # doctest: +SKIP
    >>> report = robustest.check(model, x, y, eps=0.1)                           # doctest: +SKIP
    >>> x_adv, y_adv = from_report(report, like=x)                               # doctest: +SKIP
    >>> x_adv, y_adv = from_attack(model, x, y, eps=0.1, count=10)              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch

from ..errors import invalid_argument
from ..results import Report
from ..spec import Bound


def from_report(report: Report, *, like: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """The falsified samples' re-checked counterexamples and their clean labels.

    ``like`` (a batch of inputs) gives the per-sample shape and dtype to restore. Raises a clear error
    when the report holds no counterexample.
    """
    found = [s for s in report.samples if s.verdict == "falsified" and s.counterexample is not None]
    if not found:
        raise invalid_argument("adversarial", f"a report with counts {report.counts()}",
                               "a report with at least one falsified sample (a counterexample)",
                               "nothing to fix from this report: pass adversarial=None with eps=... to "
                               "attack the training data instead")
    xs = []
    for s in found:
        ce = s.counterexample
        assert ce is not None
        if like is not None:
            ce = ce.reshape(like.shape[1:]).to(like)
        xs.append(ce)
    device = xs[0].device
    return torch.stack(xs), torch.tensor([s.label for s in found], dtype=torch.long, device=device)


def from_attack(model: Any, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
                domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0), count: int = 10, seed: int = 0,
                steps: int = 40, step_size: Optional[float] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """PGD on ``(x, y)`` (the paper: training points); keep ``count`` successes, balanced over classes.

    As in the authors' scripts, the successes are split per class and sorted by the margin
    ``f_y - max_j f_j`` (most violated first); classes take turns so that a few classes cannot fill the
    whole budget. Raises a clear error when PGD finds nothing.
    """
    from ..api import attack

    opts: dict = {"steps": steps}
    if step_size is not None:
        opts["step_size"] = step_size
    res = attack(model, x, y, eps=eps, norm=norm, method="pgd", domain=domain, seed=seed, **opts)
    idx = res.success.nonzero().flatten()
    if idx.numel() == 0:
        raise invalid_argument("adversarial", None, f"PGD at eps={eps:g} {norm} to break some training point",
                               "nothing to fix at this radius: raise eps, or pass adversarial=(x_adv, y)")
    xa, ya = res.adversarial[idx], y[idx]
    with torch.no_grad():
        z = model(xa)
    true = z.gather(1, ya[:, None]).squeeze(1)
    other = z.scatter(1, ya[:, None], -torch.inf).amax(1)
    margin = true - other
    queues = []
    for c in ya.unique().tolist():
        members = (ya == c).nonzero().flatten()
        queues.append(members[margin[members].argsort()].tolist())
    picked: list = []
    while len(picked) < count and any(queues):
        for q in queues:
            if q and len(picked) < count:
                picked.append(q.pop(0))
    sel = torch.tensor(picked, device=xa.device)
    return xa[sel].detach(), ya[sel]


__all__ = ["from_report", "from_attack"]
