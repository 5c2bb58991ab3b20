"""Input validation shared by ``check``, ``attack`` and the other entry points.

Every failure is a robustest error naming the argument, its value, what was expected and the fix::

    >>> import torch
    >>> as_inputs(torch.tensor([[float("nan"), 0.0]]), (0.0, 1.0))
    Traceback (most recent call last):
    ...
    robustest.errors.InvalidArgument: inputs=... is not valid: expected finite values (NaN or Inf in sample(s) [0]). Fix: clean or drop those samples before checking them
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import torch

from ._options import problem
from .errors import ModelError, ShapeError, invalid_argument
from .spec import Bound


def _tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise invalid_argument(name, value, "a torch.Tensor or numpy array",
                               f"pass {name} as a tensor, e.g. torch.tensor(...)") from None


def as_inputs(inputs: Any, domain: Optional[Tuple[Bound, Bound]]) -> torch.Tensor:
    """Inputs as a floating tensor of shape (N, ...), finite and inside the domain."""
    x = _tensor(inputs, "inputs")
    if not x.is_floating_point():
        x = x.float()
    if x.dim() < 2:
        raise invalid_argument("inputs", f"tensor of shape {tuple(x.shape)}", "a batch of shape (N, ...)",
                               "add the batch dimension with inputs.unsqueeze(0)", cls=ShapeError)
    bad = ~torch.isfinite(x.flatten(1)).all(1)
    if bool(bad.any()):
        rows = bad.nonzero()[:, 0].tolist()[:10]
        raise invalid_argument("inputs", "...", f"finite values (NaN or Inf in sample(s) {rows})",
                               "clean or drop those samples before checking them")
    if domain is not None:
        lo = torch.as_tensor(domain[0], dtype=x.dtype, device=x.device)
        hi = torch.as_tensor(domain[1], dtype=x.dtype, device=x.device)
        outside = ((x < lo) | (x > hi)).flatten(1).any(1)
        if bool(outside.any()):
            rows = outside.nonzero()[:, 0].tolist()[:10]
            raise invalid_argument(
                "inputs", f"values in [{float(x.min()):.3g}, {float(x.max()):.3g}]",
                f"values inside domain={_short_domain(domain)} (sample(s) {rows} are outside)",
                "scale the inputs into the domain, or pass the right domain=(lo, hi), or domain=None")
    return x


def as_indices(indices: Any, n: int) -> List[int]:
    """The samples' positions in the whole set: ``n`` distinct integers >= 0 (default ``0 .. n-1``)."""
    if indices is None:
        return list(range(n))
    if isinstance(indices, torch.Tensor):
        indices = indices.tolist()
    try:
        ids = [int(i) for i in indices]
        ok = all(not isinstance(i, bool) and int(i) == i for i in indices)
    except (TypeError, ValueError):
        ok = False
    if not ok or len(ids) != n or len(set(ids)) != n or (ids and min(ids) < 0):
        raise invalid_argument("indices", indices, f"{n} distinct integers >= 0, one per sample",
                               "pass the samples' positions in the whole set, e.g. indices=range(100, 200)")
    return ids


def _short_domain(domain: Tuple[Bound, Bound]) -> str:
    lo, hi = domain
    if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
        return "(tensor, tensor)"
    return f"({lo}, {hi})"


def as_labels(labels: Any, n: int, device: torch.device) -> torch.Tensor:
    """Labels as a 1-D int64 tensor of length ``n`` on ``device``."""
    y = _tensor(labels, "labels")
    if y.is_floating_point() or y.dtype == torch.bool:
        if y.is_floating_point() and bool((y != y.round()).any()):
            raise invalid_argument("labels", "float tensor", "integer class indices",
                                   "pass labels.long() of class indices, not one-hot or probabilities")
    if y.dim() != 1 or y.shape[0] != n:
        raise invalid_argument("labels", f"tensor of shape {tuple(y.shape)}",
                               f"shape ({n},): one class index per input",
                               "pass labels with one entry per row of inputs (one-hot? use labels.argmax(1))",
                               cls=ShapeError)
    return y.to(device=device, dtype=torch.long)


def model_logits(model: Any, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One clean forward pass, checking that the model is callable and returns (N, K) logits that
    cover every label."""
    if not callable(model):
        raise ModelError(f"model={type(model).__name__} is not valid: expected a callable such as a "
                         "torch.nn.Module. Fix: pass the module itself, not its state_dict")
    _check_device(model, x)
    with torch.no_grad():
        z = model(x)
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] != x.shape[0] or z.shape[1] < 2:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ModelError(f"model output={shape} is not valid: expected logits of shape "
                         f"({x.shape[0]}, K) with K >= 2 classes. Fix: return one row of class scores per "
                         "input (unwrap tuples/dicts with a small wrapper module)")
    k = z.shape[1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        bad = labels[(labels < 0) | (labels >= k)][:5].tolist()
        raise invalid_argument("labels", bad, f"class indices in [0, {k - 1}] (the model has {k} outputs)",
                               "check that the labels match the model's classes")
    return z


def _check_device(model: Any, x: torch.Tensor) -> None:
    if isinstance(model, torch.nn.Module):
        p = next(iter(model.parameters()), None)
        if p is not None and p.device != x.device:
            raise invalid_argument("inputs", f"tensor on {x.device}", f"the model's device ({p.device})",
                                   f"move them together: inputs.to('{p.device}') or model.to('{x.device}')")


def as_option(name: str, value: Any) -> Any:
    """``value`` checked against option ``name`` of the option table (:mod:`robustest._options`), the
    same rule the marker, the config file and the CLI apply."""
    found = problem(name, value)
    if found is not None:
        raise invalid_argument(name, value, *found)
    return value


def as_timeout(timeout: Any) -> float:
    return float(as_option("timeout", timeout))


def as_seed(seed: Any) -> int:
    return int(as_option("seed", seed))
