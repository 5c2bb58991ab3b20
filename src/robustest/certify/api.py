"""``robustest.bounds``: sound bounds on a model's logits (and margins) over an Lp ball."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ShapeError, invalid_argument
from ..graph import Graph, read_model
from ..layers.rounding import Precision
from ..results import Bounds
from ..spec import Bound, LpBall, as_ball, margin_matrix
from .float_error import output_error, row_slack

METHODS = ("ibp", "crown", "alpha-crown", "lp")


def bounds(model: nn.Module, inputs: torch.Tensor, *, eps: float | LpBall, norm: str = "linf",
           method: str = "crown", domain: tuple[Bound, Bound] | None = (0.0, 1.0),
           labels: torch.Tensor | None = None, spec: torch.Tensor | None = None,
           solver: str = "highs") -> Bounds:
    """Sound elementwise bounds on ``model(x')`` for every ``x'`` with ``||x' - x||_norm <= eps`` inside
    ``domain``, for each row ``x`` of ``inputs``.

    With ``labels`` (N,), the margins "true logit minus each other logit" (N, K-1) are bounded too; with
    ``spec`` (N, M, K) (or (M, K) for all samples), ``spec @ logits`` is. ``method`` is "ibp", "crown",
    "alpha-crown" (optimised slopes) or "lp" (triangle relaxation, one LP per bound: slow, small models).
    An eps larger than the domain is fine: the ball is clipped to the domain. l2/l1 balls: IBP uses the
    ball's outer box (sound, looser); CROWN also uses the dual norm and keeps the better bound; LP encodes
    l1 exactly and l2 by its outer box. CROWN and LP bounds are intersected with interval bounds.
    Bounds are computed in float64 for the exact network, then widened by a bound on the model's own
    rounding in its dtype (:mod:`robustest.certify.float_error`), so they contain the outputs the model
    computes.

        >>> import torch
        >>> from torch import nn
        >>> import robustest
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
        >>> b = robustest.bounds(model, torch.rand(4, 2), eps=0.1, labels=torch.zeros(4, dtype=torch.long))
        >>> bool((b.lower <= b.upper).all()), tuple(b.margins_lower.shape)
        (True, (4, 1))
    """
    ball = as_ball(eps, norm, domain)
    if method not in METHODS:
        raise invalid_argument("method", method, f"one of {', '.join(map(repr, METHODS))}",
                               "use method='crown' (tight and fast) or method='ibp' (fastest)")
    x = _check_inputs(inputs)
    graph = read_model(model, x)
    x64 = x.to(torch.float64)
    K = graph.nodes[-1].shape
    if len(K) != 1:
        raise ShapeError(f"the model's output has shape {tuple(K)} per sample: expected logits (K,). "
                         f"Fix: flatten the output to (N, K)")
    C = _spec(labels, spec, x.shape[0], K[0], x.device)
    lower, upper, ml, mu, extra = compute(graph, x64, ball, C, method=method, solver=solver)
    # the bounds are the exact network's: widen them by how far the model's rounding can move its outputs
    err, _ = output_error(graph, x64, ball, Precision.of_model(model, x), tighter=_per_sample(extra))
    lower, upper = lower - err, upper + err
    if C is not None:
        slack = row_slack(C, err)
        ml, mu = ml - slack, mu + slack
    return Bounds(lower=lower, upper=upper, method=method, margins_lower=ml, margins_upper=mu, extra=extra)


def compute(graph: Graph, x: torch.Tensor, ball: LpBall, C: torch.Tensor | None, *, method: str,
            solver: str = "highs") -> tuple:
    """Logit bounds and (when ``C`` is given) bounds on ``C @ logits`` with one method, batched."""
    from .crown import crown, intermediate_bounds
    from .ibp import interval_bounds

    N = x.shape[0]
    K = graph.nodes[-1].shape[0]
    eye = torch.eye(K, dtype=x.dtype, device=x.device).expand(N, K, K)
    full = eye if C is None else torch.cat([eye, C.to(x.dtype)], dim=1)
    if method == "ibp":
        lo, hi = interval_bounds(graph, *ball.box(x))[-1]
        ml, mu = spec_interval(C.to(x.dtype), lo, hi) if C is not None else (None, None)
        return lo, hi, ml, mu, {}
    if method in ("crown", "alpha-crown"):
        res = crown(graph, x, ball, full, alpha_steps=20 if method == "alpha-crown" else 0)
        # CROWN is usually, not always, tighter than interval bounds: keep the better of the two (both sound)
        ibp_lo, ibp_hi = res.boxes[-1]
        lo, hi = torch.maximum(res.lower[:, :K], ibp_lo), torch.minimum(res.upper[:, :K], ibp_hi)
        ml = mu = None
        if C is not None:
            ml, mu = spec_interval(C.to(x.dtype), ibp_lo, ibp_hi)
            ml, mu = torch.maximum(res.lower[:, K:], ml), torch.minimum(res.upper[:, K:], mu)
        return lo, hi, ml, mu, {"boxes": res.boxes}
    from .lp import lp_bounds

    boxes = intermediate_bounds(graph, x, ball)
    low, up = lp_bounds(graph, x, ball, full, boxes, solver=solver)  # -inf/inf where an LP failed
    ibp_lo, ibp_hi = boxes[-1]
    lo, hi = torch.maximum(low[:, :K], ibp_lo), torch.minimum(up[:, :K], ibp_hi)
    ml = mu = None
    if C is not None:
        ml, mu = spec_interval(C.to(x.dtype), ibp_lo, ibp_hi)
        ml, mu = torch.maximum(low[:, K:], ml), torch.minimum(up[:, K:], mu)
    return lo, hi, ml, mu, {"boxes": boxes}


def _per_sample(extra: dict) -> list | None:
    """The per-node bounds of each sample (numpy), from a method's ``extra`` boxes, for :func:`output_error`."""
    from .encode import numpy_boxes

    boxes = extra.get("boxes")
    return None if boxes is None else [numpy_boxes(boxes, n) for n in range(boxes[0][0].shape[0])]


def spec_interval(c: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``c @ z`` (N, M) for ``lo <= z <= hi`` (N, K)."""
    low = (c.clamp(min=0) @ lo.unsqueeze(2) + c.clamp(max=0) @ hi.unsqueeze(2)).squeeze(2)
    up = (c.clamp(min=0) @ hi.unsqueeze(2) + c.clamp(max=0) @ lo.unsqueeze(2)).squeeze(2)
    return low, up


def _check_inputs(inputs: torch.Tensor) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise invalid_argument("inputs", type(inputs).__name__, "a floating-point torch.Tensor (N, ...)",
                               "pass torch.as_tensor(x, dtype=torch.float32)")
    if inputs.dim() < 2:
        raise invalid_argument("inputs", tuple(inputs.shape), "a batch of shape (N, ...)",
                               "add a batch dimension with inputs.unsqueeze(0)", cls=ShapeError)
    if not bool(torch.isfinite(inputs).all()):
        raise invalid_argument("inputs", "a tensor with NaN/inf", "finite values", "clean the inputs")
    return inputs.detach()


def _spec(labels: torch.Tensor | None, spec: torch.Tensor | None, N: int, K: int,
          device: torch.device) -> torch.Tensor | None:
    if labels is not None and spec is not None:
        raise invalid_argument("spec", "given with labels", "labels or spec, not both",
                               "pass labels for the usual margins, or spec for your own rows")
    if labels is not None:
        labels = torch.as_tensor(labels, device=device).long().reshape(-1)
        if labels.shape[0] != N:
            raise invalid_argument("labels", tuple(labels.shape), f"shape ({N},), one label per input",
                                   "pass one label per input row", cls=ShapeError)
        if bool((labels < 0).any() | (labels >= K).any()):
            raise invalid_argument("labels", labels.tolist()[:8], f"integers in [0, {K})",
                                   "pass class indices of the model's output")
        return margin_matrix(labels, K).to(torch.float64)
    if spec is None:
        return None
    spec = torch.as_tensor(spec, device=device, dtype=torch.float64)
    if spec.dim() == 2:
        spec = spec.unsqueeze(0).expand(N, *spec.shape)
    if spec.dim() != 3 or spec.shape[0] != N or spec.shape[2] != K:
        raise invalid_argument("spec", tuple(spec.shape), f"a matrix of shape ({N}, M, {K}) or (M, {K})",
                               "pass one row per property, one column per logit", cls=ShapeError)
    return spec
