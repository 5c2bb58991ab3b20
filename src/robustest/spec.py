"""Threat models and output properties shared by attacks, certifiers and repair.

An :class:`LpBall` is the set ``{x' : ||x' - x||_p <= eps, lo <= x' <= hi}`` around each input ``x``::

    >>> import torch
    >>> from robustest.spec import LpBall
    >>> ball = LpBall(eps=0.1, norm="linf", domain=(0.0, 1.0))
    >>> x0 = torch.tensor([[0.05, 0.5]])
    >>> ball.project(torch.tensor([[-1.0, 0.9]]), x0)
    tensor([[0.0000, 0.6000]])
    >>> bool(ball.contains(ball.project(torch.rand(1, 2), x0), x0)[0])
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal, Optional, Tuple, Union

import torch

from .errors import InvalidArgument, invalid_argument
from .results import NORM_ALIASES

if TYPE_CHECKING:  # pragma: no cover
    from .streams import RandomSource

Norm = Literal["linf", "l2", "l1"]
NORMS: Tuple[str, ...] = ("linf", "l2", "l1")
Bound = Union[float, torch.Tensor]

#: The dual of each norm, ``||a||_q = max{a . d : ||d||_p <= 1}`` with ``1/p + 1/q = 1``: l1 and linf
#: are each other's dual, l2 is its own. The one table of it; use :func:`dual_norm`.
_DUAL_NORMS = {"linf": "l1", "l2": "l2", "l1": "linf"}
#: numpy's ``ord`` for each norm: ``np.linalg.norm(v, ord=NUMPY_ORD[norm])``
NUMPY_ORD = {"linf": math.inf, "l2": 2, "l1": 1}

#: Relative slack allowed when re-checking that a point lies in the ball. Float32 rounding of
#: ``x0 + delta`` can exceed ``eps`` by one ulp; anything larger is a bug and is rejected.
BALL_RTOL = 1e-5
BALL_ATOL = 1e-6


def _domain_bound(domain: object, value: object) -> Bound:
    """One end of ``domain``: a number or a numeric tensor (numpy arrays become tensors), no NaN."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise invalid_argument("domain", domain, "numbers or numeric tensors (lo, hi)",
                               "pass domain=(0.0, 1.0), or tensors shaped like one input")
    if isinstance(value, (int, float)):
        t = torch.tensor(float(value))
    else:
        try:
            t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise invalid_argument("domain", domain, "numbers or numeric tensors (lo, hi)",
                                   "pass domain=(0.0, 1.0), or tensors shaped like one input") from None
        if t.dtype == torch.bool or t.is_complex():
            raise invalid_argument("domain", domain, f"real-valued bounds, got a {t.dtype} tensor",
                                   "pass float tensors or numbers")
    if bool(torch.isnan(t).any()):
        raise invalid_argument("domain", domain, "bounds without NaN (a NaN bound blinds the attacks: every "
                               "clipped coordinate becomes NaN)", "replace NaN by the real bound, or by "
                               "-inf/inf for an unbounded coordinate")
    return value if isinstance(value, (int, float, torch.Tensor)) else t


def normalize_norm(norm: object) -> str:
    """Return the canonical norm name ("linf", "l2", "l1") or raise a clear error."""
    key = str(norm) if not isinstance(norm, float) or not math.isinf(norm) else "inf"
    if key not in NORM_ALIASES:
        raise invalid_argument("norm", norm, "one of 'linf', 'l2', 'l1'", "use norm='linf' or norm='l2'")
    return NORM_ALIASES[key]


def dual_norm(norm: object) -> str:
    """The dual norm's name: how far a linear function ``a . x`` moves over a unit ball of ``norm`` is
    ``lp_norm(a, dual_norm(norm))``.

    >>> dual_norm("linf"), dual_norm("l2"), dual_norm("l1")
    ('l1', 'l2', 'linf')
    """
    return _DUAL_NORMS[normalize_norm(norm)]


@dataclass(frozen=True)
class LpBall:
    """The threat model: a norm ball of radius ``eps`` intersected with the valid input ``domain``.

    ``domain`` is ``(lo, hi)`` with floats or tensors broadcastable to one input; ``None`` means
    unbounded. Adversarial inputs always stay inside both.
    """

    eps: float
    norm: str = "linf"
    domain: Optional[Tuple[Bound, Bound]] = (0.0, 1.0)

    def __post_init__(self) -> None:
        eps = self.eps
        if isinstance(eps, torch.Tensor) and eps.numel() == 1:
            eps = float(eps)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)):
            raise invalid_argument("eps", self.eps, "a number >= 0", "pass a float such as eps=0.05")
        if not math.isfinite(eps) or eps < 0:
            raise invalid_argument("eps", self.eps, "a finite number >= 0", "pass a float such as eps=0.05")
        object.__setattr__(self, "eps", float(eps))
        object.__setattr__(self, "norm", normalize_norm(self.norm))
        if self.domain is not None:
            if not isinstance(self.domain, (tuple, list)) or len(self.domain) != 2:
                raise invalid_argument("domain", self.domain, "a pair (lo, hi) or None",
                                       "pass domain=(0.0, 1.0) for images scaled to [0, 1]")
            lo, hi = (_domain_bound(self.domain, v) for v in self.domain)
            if bool(torch.any(torch.as_tensor(lo) >= torch.as_tensor(hi))):
                raise invalid_argument("domain", self.domain, "lo < hi everywhere",
                                       "swap the bounds or pass domain=None for an unbounded input")
            object.__setattr__(self, "domain", (lo, hi))

    # ----------------------------------------------------------------- geometry
    def distance(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Per-sample ``||x - x0||_p`` as a 1-D tensor."""
        return lp_norm((x - x0).flatten(1), self.norm)

    def contains(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Per-sample bool: ``x`` is inside the ball (up to float rounding) and inside the domain."""
        inside = self.distance(x, x0) <= self.eps * (1 + BALL_RTOL) + BALL_ATOL
        finite = torch.isfinite(x).flatten(1).all(1)
        if self.domain is None:
            return inside & finite
        lo, hi = self._domain_on(x)
        in_domain = ((x >= lo - BALL_ATOL) & (x <= hi + BALL_ATOL)).flatten(1).all(1)
        return inside & in_domain & finite

    def contains_exactly(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """Per-sample bool: ``x`` as stored (in its dtype) is in the ball and the domain with no slack,
        the distance computed in float64. A counterexample must pass this, not only :meth:`contains`."""
        x64, x064 = x.double(), x0.double()
        inside = lp_norm((x64 - x064).flatten(1), self.norm) <= self.eps
        finite = torch.isfinite(x).flatten(1).all(1)
        if self.domain is None:
            return inside & finite
        lo, hi = self._domain_on(x64)
        return inside & finite & ((x64 >= lo) & (x64 <= hi)).flatten(1).all(1)

    def pull_inside(self, x: torch.Tensor, x0: torch.Tensor, *, ulps: int = 8) -> torch.Tensor:
        """``x`` moved towards ``x0`` one ulp at a time (at most ``ulps``) until :meth:`contains_exactly`
        holds: rounding ``x0 + delta`` to the model's dtype can leave a projected point an ulp outside.
        Points further out are left as they are (the caller's check rejects them)."""
        x = self.clip_domain(x)
        for _ in range(ulps):
            bad = ~self.contains_exactly(x, x0)
            if not bool(bad.any()):
                break
            mask = bad.view(-1, *([1] * (x.dim() - 1)))
            x = torch.where(mask, torch.nextafter(x, x0.to(x.dtype)), x)
        return x

    def clip_domain(self, x: torch.Tensor) -> torch.Tensor:
        if self.domain is None:
            return x
        lo, hi = self._domain_on(x)
        return torch.maximum(torch.minimum(x, hi), lo)

    def project(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """A point of ball ∩ domain close to ``x``: project onto the ball, then clip to the domain.

        Clipping moves each coordinate towards ``x0`` (which is in the domain), so the result stays in
        the ball. For linf this is the exact Euclidean projection; for l2/l1 it is feasible and close.
        """
        delta = (x - x0).flatten(1)
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        elif self.norm == "l2":
            n = delta.norm(dim=1, keepdim=True)
            delta = delta * torch.clamp(self.eps / n.clamp_min(1e-12), max=1.0)
        else:
            delta = project_l1(delta, self.eps)
        return self.clip_domain(x0 + delta.view_as(x0))

    def projector(self, x0: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """:meth:`project` around a fixed ``x0``, precomputed for the inner loop of an attack (for linf a
        single clamp to the box ``[max(x0 - eps, lo), min(x0 + eps, hi)]``, which is the same projection)."""
        if self.norm == "linf":
            lo, hi = self.box(x0)
            return lambda x: torch.clamp(x, lo, hi)
        return lambda x: self.project(x, x0)

    def random_start(self, x0: torch.Tensor, generator: Optional["RandomSource"] = None) -> torch.Tensor:
        """A random point of ball ∩ domain (uniform in the linf box; uniform direction for l2/l1).

        ``generator`` is a ``torch.Generator`` or per-sample streams (:mod:`robustest.streams`)."""
        from .streams import rand, randn

        shape = x0.flatten(1).shape
        if self.norm == "linf":
            u = rand(generator, shape, like=x0)
            delta = (2 * u - 1) * self.eps
        else:
            g = randn(generator, shape, like=x0)
            if self.norm == "l1":
                g = g.sign() * (-rand(generator, shape, like=x0).clamp_min(1e-12).log())
            r = rand(generator, (shape[0], 1), like=x0)
            delta = g / lp_norm(g, self.norm).clamp_min(1e-12).unsqueeze(1) * self.eps * r
        return self.project(x0 + delta.view_as(x0), x0)

    def steepest_direction(self, grad: torch.Tensor) -> torch.Tensor:
        """The unit-norm ascent direction of the norm (sign for linf, normalised gradient for l2,
        the top coordinates' signs for l1)."""
        g = grad.flatten(1)
        if self.norm == "linf":
            d = g.sign()
        elif self.norm == "l2":
            d = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        else:
            k = max(1, int(0.01 * g.shape[1]))
            thresh = g.abs().topk(k, dim=1).values[:, -1:]
            d = torch.where(g.abs() >= thresh, g.sign(), torch.zeros_like(g))
            d = d / d.abs().sum(1, keepdim=True).clamp_min(1e-12)
        return d.view_as(grad)

    def box(self, x0: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Elementwise bounds ``lo <= x' <= hi`` that contain ball ∩ domain (exact for linf)."""
        lo, hi = x0 - self.eps, x0 + self.eps
        if self.domain is not None:
            dlo, dhi = self._domain_on(x0)
            lo, hi = torch.maximum(lo, dlo), torch.minimum(hi, dhi)
        return lo, hi

    def _domain_on(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        assert self.domain is not None
        lo, hi = self.domain
        return (torch.as_tensor(lo, dtype=x.dtype, device=x.device),
                torch.as_tensor(hi, dtype=x.dtype, device=x.device))

    def describe(self) -> str:
        return f"eps={self.eps:g} {self.norm}"


def lp_norm(v: torch.Tensor, norm: str) -> torch.Tensor:
    """Row-wise norm of a 2-D tensor."""
    if norm == "linf":
        return v.abs().amax(dim=1) if v.shape[1] else v.new_zeros(v.shape[0])
    if norm == "l2":
        return v.norm(dim=1)
    return v.abs().sum(dim=1)


def project_l1(v: torch.Tensor, eps: float) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto the l1 ball of radius ``eps`` (Duchi et al. 2008)."""
    if eps == 0:
        return torch.zeros_like(v)
    a = v.abs()
    outside = a.sum(1) > eps
    if not bool(outside.any()):
        return v
    mu, _ = torch.sort(a, dim=1, descending=True)
    cums = mu.cumsum(1)
    ks = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    cond = mu - (cums - eps) / ks > 0
    rho = cond.to(v.dtype).mul(ks).argmax(1, keepdim=True)
    theta = (cums.gather(1, rho) - eps) / (rho + 1).to(v.dtype)
    w = v.sign() * (a - theta).clamp_min(0)
    return torch.where(outside.unsqueeze(1), w, v)


def margin_matrix(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Specification matrices ``C`` of shape (N, K-1, K) with rows ``e_y - e_j`` for every ``j != y``.

    ``C @ logits`` are the margins "true logit minus other logit"; the sample is robust when all are > 0.
    """
    n = labels.shape[0]
    eye = torch.eye(num_classes, device=labels.device)
    c = eye[labels].unsqueeze(1) - eye.unsqueeze(0)  # (N, K, K): row j is e_y - e_j
    keep = ~torch.nn.functional.one_hot(labels, num_classes).bool()
    return c[keep].view(n, num_classes - 1, num_classes)


def bound_rows(n: int, idx: torch.Tensor | None = None, *, like: torch.Tensor) -> torch.Tensor:
    """The rows ``[I; -I]`` (2r, n) over the entries ``idx`` (default all) of an ``n``-vector: the lower
    bound of row ``j`` is the entry's lower bound, that of row ``r + j`` minus its upper bound. Float dtype
    and device of ``like``.

        >>> bound_rows(3, torch.tensor([0, 2]), like=torch.zeros(1)).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]
    """
    if idx is None:
        idx = torch.arange(n, device=like.device)
    idx = idx.to(like.device)
    r = idx.numel()
    rows = torch.zeros((2 * r, n), dtype=like.dtype, device=like.device)  # only the rows: no n x n identity
    pos = torch.arange(r, device=like.device)
    rows[pos, idx] = 1.0
    rows[pos + r, idx] = -1.0
    return rows


def as_ball(eps: Union[float, "LpBall"], norm: str, domain: Optional[Tuple[Bound, Bound]]) -> LpBall:
    """Accept either an :class:`LpBall` or the loose ``eps, norm, domain`` arguments."""
    if isinstance(eps, LpBall):
        return eps
    return LpBall(eps=eps, norm=norm, domain=domain)


__all__ = ["LpBall", "Norm", "NORMS", "NUMPY_ORD", "dual_norm", "lp_norm", "project_l1", "margin_matrix",
           "bound_rows", "normalize_norm", "as_ball", "InvalidArgument"]
