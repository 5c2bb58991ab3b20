"""The attack base class: it owns the call (search, then re-check), a subclass writes only its search.

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> from robustest.attacks import get_attack
    >>> model = torch.nn.Linear(2, 2).eval()
    >>> x, y = torch.rand(4, 2), torch.tensor([0, 1, 0, 1])
    >>> out = get_attack("pgd", steps=10)(model, x, y, LpBall(0.1, "linf", (0.0, 1.0)))
    >>> bool(LpBall(0.1, "linf", (0.0, 1.0)).contains(out.adversarial, x).all())
    True
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Iterator, List, Optional, Tuple

import torch

from ..errors import invalid_argument
from ..spec import NORMS, LpBall
from ..streams import RandomSource
from .losses import is_success

ATTACKS: Dict[str, type] = {}


@dataclass(frozen=True)
class AttackOutcome:
    """Per-sample outcome of one attack: ``adversarial`` is the re-checked counterexample where
    ``success`` holds and the clean input elsewhere."""

    adversarial: torch.Tensor
    success: torch.Tensor
    predicted: torch.Tensor


def recheck(model: Any, x_adv: torch.Tensor, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
            targets: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Plain forward pass on candidates: (really adversarial and inside ball ∩ domain, predicted label)."""
    with torch.no_grad():
        z = model(x_adv)
    pred = z.argmax(1)
    return is_success(z, y, targets) & ball.contains(x_adv, x0), pred


class Deadline:
    """A wall-clock deadline (``None`` = no limit)."""

    def __init__(self, at: Optional[float]) -> None:
        self.at = at

    def passed(self) -> bool:
        return self.at is not None and time.perf_counter() >= self.at


class Attack:
    """Base class. Subclasses set ``name`` (registering them) and implement :meth:`search`.

    ``__call__`` validates, runs the search, and re-checks every candidate by a forward pass: the
    outcome never claims a success that the model and the ball do not confirm.
    """

    name: ClassVar[str] = ""
    #: whether ``targets`` change the search (all gradient attacks here support them)
    supports_targets: ClassVar[bool] = True
    #: whether the search uses no gradients (a success after the gradient attacks failed signals masking)
    gradient_free: ClassVar[bool] = False
    #: the norms the search handles (a sequence skips the attack for the others)
    norms: ClassVar[Tuple[str, ...]] = NORMS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            ATTACKS[cls.name] = cls

    def __call__(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall, *,
                 targets: Optional[torch.Tensor] = None, generator: Optional[RandomSource] = None,
                 deadline: Optional[float] = None) -> AttackOutcome:
        if x0.shape[0] == 0:
            return AttackOutcome(x0.clone(), torch.zeros(0, dtype=torch.bool, device=x0.device),
                                 y.clone())
        if ball.norm not in self.norms:
            raise invalid_argument("norm", ball.norm, f"one of {list(self.norms)} for {self.describe()}",
                                   "use a gradient attack such as 'apgd' for this norm")
        cand = self.search(model, x0, y, ball, targets, generator, Deadline(deadline))
        ok, pred = recheck(model, cand, x0, y, ball, targets)
        adv = torch.where(ok.view(-1, *[1] * (x0.dim() - 1)), cand, x0)
        return AttackOutcome(adv, ok, pred)

    def search(self, model: Any, x0: torch.Tensor, y: torch.Tensor, ball: LpBall,
               targets: Optional[torch.Tensor], generator: Optional[RandomSource],
               deadline: Deadline) -> torch.Tensor:
        """Return candidate adversarial inputs (same shape as ``x0``), inside ball ∩ domain."""
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


def input_gradient(model: Any, x: torch.Tensor, loss_fn: Any, y: torch.Tensor,
                   t: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, per-sample loss, d loss / d x) at ``x`` in one forward and one backward pass."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = model(x)
        loss = loss_fn(z, y, t)
        (g,) = torch.autograd.grad(loss.sum(), x)
    return z.detach(), loss.detach(), g


class Found:
    """Collects per-sample successes of an iterative search with early stop.

    The search works on a compact batch of the still-unbroken samples; ``record`` writes successes back
    to full-batch positions and returns the mask of the samples to keep iterating.

    ``groups`` (one id per row, e.g. the sample a copy per target belongs to) make a success end every
    row of its group: the other copies of a broken sample stop too.
    """

    def __init__(self, x0: torch.Tensor, groups: Optional[torch.Tensor] = None) -> None:
        self.best = x0.detach().clone()
        self.found = torch.zeros(x0.shape[0], dtype=torch.bool, device=x0.device)
        self.groups = groups
        self.n_groups = 0 if groups is None or groups.numel() == 0 else int(groups.max()) + 1

    def record(self, idx: torch.Tensor, x: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
        if bool(success.any()):
            hit = idx[success]
            self.best[hit] = x.detach()[success]
            self.found[hit] = True
            if self.groups is not None:
                return ~self._group_done()[idx]
        return ~success

    def _group_done(self) -> torch.Tensor:
        """Per row: some row of its group is found."""
        assert self.groups is not None
        broken = torch.zeros(self.n_groups, dtype=torch.bool, device=self.found.device)
        broken[self.groups[self.found]] = True
        return broken[self.groups]

    def rounds(self, restarts: int, deadline: "Deadline") -> Iterator[Tuple[int, torch.Tensor]]:
        """(restart number, rows still unbroken) per restart, until all are broken or the deadline passed."""
        for restart in range(restarts):
            idx = self.remaining()
            if idx.numel() == 0 or deadline.passed():
                return
            yield restart, idx

    def remaining(self) -> torch.Tensor:
        done = self.found if self.groups is None else self._group_done()
        return (~done).nonzero()[:, 0]


def top_targets(model: Any, x0: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """(N, min(k, K - 1)): each sample's most likely wrong classes by clean logits, best first."""
    with torch.no_grad():
        z = model(x0)
    return z.scatter(1, y[:, None], float("-inf")).argsort(1, descending=True)[:, :min(k, z.shape[1] - 1)]


def target_copies(x0: torch.Tensor, y: torch.Tensor, ranked: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Found]:
    """k copies of every sample, row ``i * k + j`` aiming at ``ranked[i, j]``: (inputs, labels, targets,
    a :class:`Found` that ends all copies of a sample when one breaks it)."""
    n, k = ranked.shape
    xr, yr = x0.repeat_interleave(k, 0), y.repeat_interleave(k, 0)
    return xr, yr, ranked.reshape(-1), Found(xr, groups=torch.arange(n, device=x0.device).repeat_interleave(k))


def best_of_copies(found: Found, x0: torch.Tensor, k: int) -> torch.Tensor:
    """Per sample, the first of its ``k`` copies that broke it (the clean input where none did)."""
    n = x0.shape[0]
    hits = found.found.view(n, k)
    broken = hits.any(1)
    best = x0.detach().clone()
    if bool(broken.any()):
        rows = torch.arange(n, device=x0.device) * k + hits.to(torch.int8).argmax(1)
        best[broken] = found.best[rows[broken]]
    return best


def check_steps(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid_argument(name, value, f"an integer >= {minimum}", f"pass {name}={max(minimum, 10)}")
    return value


def compact(keep: torch.Tensor, *tensors: Optional[torch.Tensor]) -> List[Optional[torch.Tensor]]:
    """Keep rows ``keep`` of every tensor (None passes through)."""
    return [None if t is None else t[keep] for t in tensors]
