"""Input validation shared by ``check``, ``attack`` and the other entry points.

Every failure is a robustest error naming the argument, its value, what was expected and the fix::

    >>> import torch
    >>> as_inputs(torch.tensor([[float("nan"), 0.0]]), (0.0, 1.0))
    Traceback (most recent call last):
    ...
    robustest.errors.InvalidArgument: inputs=... is not valid: expected finite values (NaN or Inf in sample(s) [0]). Fix: clean or drop those samples before checking them
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple

import numpy as np
import torch

from ._options import problem
from .errors import HealthCheckError, ModelError, ShapeError, invalid_argument
from .spec import Bound


def _tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise invalid_argument(name, value, "a torch.Tensor or numpy array",
                               f"pass {name} as a tensor, e.g. torch.tensor(...)") from None


def as_inputs(inputs: Any, domain: Optional[Tuple[Bound, Bound]], *, allow_empty: bool = False) -> torch.Tensor:
    """Inputs as a floating tensor of shape (N, ...) with N >= 1 (unless ``allow_empty``: the caller
    says what an empty set means), finite and inside the domain."""
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
    if x.shape[0] == 0 and not allow_empty:
        raise invalid_argument("inputs", f"tensor of shape {tuple(x.shape)}", "at least one sample (an empty "
                               "batch would pass every criterion with 0 of 0 samples)",
                               "check the data loading; pass a non-empty batch", cls=ShapeError)
    if domain is not None:
        lo = torch.as_tensor(domain[0], dtype=x.dtype, device=x.device)
        hi = torch.as_tensor(domain[1], dtype=x.dtype, device=x.device)
        for end in (lo, hi):
            # numpy's: torch's imports sympy on its first call (2.7 s of a check's budget on a loaded machine)
            try:
                fits = np.broadcast_shapes(tuple(end.shape), tuple(x.shape[1:])) == tuple(x.shape[1:])
            except ValueError:
                fits = False
            if not fits:
                raise invalid_argument("domain", f"bounds of shape {tuple(end.shape)}",
                                       f"numbers or tensors broadcastable to one input, shape {tuple(x.shape[1:])}",
                                       "pass domain=(lo, hi) with lo, hi shaped like inputs[0]", cls=ShapeError)
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
    if y.dtype == torch.bool:
        raise invalid_argument("labels", "bool tensor", "integer class indices (True/False is not a class)",
                               "pass labels.long() if the two classes really are 0 and 1")
    if y.is_floating_point() or y.is_complex():
        if not bool(torch.isfinite(y).all()) or bool((y != y.round()).any()):
            raise invalid_argument("labels", "float tensor", "integer class indices",
                                   "pass labels.long() of class indices, not one-hot or probabilities")
    if y.dim() != 1 or y.shape[0] != n:
        raise invalid_argument("labels", f"tensor of shape {tuple(y.shape)}",
                               f"shape ({n},): one class index per input",
                               "pass labels with one entry per row of inputs (one-hot? use labels.argmax(1))",
                               cls=ShapeError)
    return y.to(device=device, dtype=torch.long)


def silence_hint(name: str) -> str:
    """How to silence health check ``name`` (the API and the pytest settings)."""
    return (f"Silence it with suppress_health_check=['{name}'] (pytest: "
            f"suppress_health_check = [\"{name}\"] in [tool.robustest]).")


def training_modules(model: Any) -> List[str]:
    """Names of the submodules of ``model`` in train mode ("<model>" for the top one); [] otherwise.
    Every submodule counts: ``model.training`` alone misses a BatchNorm left in train mode inside."""
    if not isinstance(model, torch.nn.Module):
        return []
    return [name or "<model>" for name, m in model.named_modules() if m.training]


def train_mode_message(names: List[str]) -> str:
    shown = ", ".join(names[:3]) + ("..." if len(names) > 3 else "")
    return (f"Health check train_mode: the model is in train mode (modules {shown}), so dropout and "
            "batch-norm make its outputs depend on chance and on the batch, a forward pass would overwrite "
            "its running statistics, and no verdict would be reproducible. Fix: call model.eval() before "
            "checking it. " + silence_hint("train_mode"))


def model_logits(model: Any, x: torch.Tensor, labels: torch.Tensor, *,
                 allow_train: bool = False) -> torch.Tensor:
    """One clean forward pass, checking that the model is callable, in eval mode (every submodule:
    a forward pass in train mode would overwrite BatchNorm statistics) unless ``allow_train``, and
    returns (N, K) logits that cover every label."""
    if not callable(model):
        raise ModelError(f"model={type(model).__name__} is not valid: expected a callable such as a "
                         "torch.nn.Module. Fix: pass the module itself, not its state_dict")
    training = training_modules(model)
    if training and not allow_train:
        raise HealthCheckError(train_mode_message(training))
    _check_device(model, x)
    _check_weights(model)
    try:
        with torch.no_grad():
            z = model(x)
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise invalid_argument("inputs", f"tensor of shape {tuple(x.shape)}, {x.dtype}",
                               f"inputs the model can run on (its forward pass raised {type(exc).__name__}: "
                               f"{first})", "pass inputs shaped like the model's training batches (N, ...), "
                               "e.g. flatten images for an MLP", cls=ShapeError) from None
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] != x.shape[0] or z.shape[1] < 2:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ModelError(f"model output={shape} is not valid: expected logits of shape "
                         f"({x.shape[0]}, K) with K >= 2 classes. Fix: return one row of class scores per "
                         "input (unwrap tuples/dicts with a small wrapper module)")
    bad_rows = ~torch.isfinite(z).all(1)
    if bool(bad_rows.any()):
        rows = bad_rows.nonzero()[:, 0].tolist()[:10]
        raise ModelError(f"model output=NaN/Inf logits for sample(s) {rows} is not valid: expected finite "
                         "logits (no verdict means anything on them). Fix: check the weights for NaN/Inf and "
                         "the forward pass for log(0) or division by zero")
    check_classes("labels", labels, z.shape[1])
    return z


def check_classes(name: str, classes: torch.Tensor, k: int) -> None:
    """Raise when a class index of ``classes`` (labels, targets) is outside ``[0, k)``."""
    if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= k):
        bad = classes[(classes < 0) | (classes >= k)][:5].tolist()
        raise invalid_argument(name, bad, f"class indices in [0, {k - 1}] (the model has {k} outputs)",
                               f"check that the {name} match the model's classes")


def _check_weights(model: Any) -> None:
    if not isinstance(model, torch.nn.Module):
        return
    for kind, named in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, t in named:
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ModelError(f"model {kind} {name!r} is not valid: expected finite values, it holds "
                                 f"{int((~torch.isfinite(t)).sum())} NaN/Inf. Fix: reload or retrain the "
                                 "weights (a diverged training run?)")


def as_model_inputs(model: Any, x: torch.Tensor) -> torch.Tensor:
    """``x`` in the floating dtype of the model's parameters (numpy gives float64, most models are
    float32): the verdict is about the model as it runs. The cast is logged."""
    if not isinstance(model, torch.nn.Module):
        return x
    p = next((t for t in model.parameters() if t.is_floating_point()), None)
    if p is None or p.dtype == x.dtype:
        return x
    logging.getLogger("robustest").info("inputs cast from %s to the model's %s", x.dtype, p.dtype)
    return x.to(p.dtype)


def model_place(model: Any) -> Tuple[torch.device, torch.dtype]:
    """Where ``model`` computes: its first parameter's device and (floating) dtype; the CPU and float32
    for a model without parameters (or with integer ones only)."""
    p = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    device = p.device if p is not None else torch.device("cpu")
    return device, p.dtype if p is not None and p.is_floating_point() else torch.float32


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
