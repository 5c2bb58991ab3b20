"""What a cached verdict is keyed by: fingerprints of the model, the check's settings and each sample.

A verdict may be reused only for the very same question: the same model (its class, structure, the source
of its modules' ``forward`` and every parameter and buffer, byte for byte), the same sample (its bytes
and label), the same threat model, ladder, options and random stream, and the same robustest code (its
version and the source of its modules). The time budget is not in the key; :mod:`robustest.cache` stores
it beside the verdict and decides by it whether a verdict may be reused.

    >>> import torch
    >>> net = torch.nn.Linear(3, 2)
    >>> a = model_fingerprint(net)
    >>> with torch.no_grad():
    ...     net.weight[0, 0] += 1.0
    >>> model_fingerprint(net) == a
    False
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

import torch

from ..spec import LpBall
from ..streams import stream_seed


class NotFingerprintable(Exception):
    """A value whose identity cannot be pinned down (e.g. a lambda): no cache for that check."""


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().to("cpu").contiguous()
    head = f"{t.dtype}|{tuple(t.shape)}|".encode()
    return head + t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else head


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """robustest's version and the source of its modules (so an edited checkout invalidates the cache)."""
    from .. import __version__

    root = Path(__file__).resolve().parent.parent
    parts = [__version__.encode()]
    for path in sorted(root.rglob("*.py")):
        parts += [str(path.relative_to(root)).encode(), path.read_bytes()]
    return _digest(*parts)


def _class_source(cls: type) -> bytes:
    if cls.__module__.startswith("torch."):
        return f"{cls.__module__}.{cls.__qualname__}".encode()  # torch's own layers: their version pins them
    try:
        return inspect.getsource(cls).encode()
    except (OSError, TypeError):
        return f"{cls.__module__}.{cls.__qualname__}".encode()


def model_fingerprint(model: Any) -> str:
    """A digest of the model's structure, its modules' code and its parameters and buffers.

    Raises :class:`NotFingerprintable` for a callable that is not a ``torch.nn.Module``."""
    if not isinstance(model, torch.nn.Module):
        raise NotFingerprintable(f"the model is a {type(model).__name__}, not a torch.nn.Module")
    parts = [torch.__version__.encode(), repr(model).encode()]
    classes = {type(m) for m in model.modules()}
    for cls in sorted(classes, key=lambda c: (c.__module__, c.__qualname__)):
        parts.append(_class_source(cls))
    code = getattr(model, "code", None)  # a torch.fx GraphModule (e.g. an imported ONNX graph)
    if isinstance(code, str):
        parts.append(code.encode())
    for name, value in model.state_dict(keep_vars=False).items():
        parts.append(name.encode())
        parts.append(_tensor_bytes(value) if isinstance(value, torch.Tensor) else repr(value).encode())
    parts.append(b"train" if model.training else b"eval")
    return _digest(*parts)


def _canon(value: Any) -> Any:
    """A JSON-able form of an option that is equal exactly when the options are."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, torch.Tensor):
        return ["tensor", _digest(_tensor_bytes(value))]
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    from ..attacks.base import Attack

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [f"{type(value).__module__}.{type(value).__qualname__}",
                _canon({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})]
    if isinstance(value, Attack):
        return [f"{type(value).__module__}.{type(value).__qualname__}", _canon(vars(value))]
    raise NotFingerprintable(f"the option value {value!r} cannot be fingerprinted")


def check_fingerprint(*, model: str, ball: LpBall, escalate: str, options: Mapping[str, Any]) -> str:
    """A digest of everything a check's verdicts depend on besides the samples, the seed and the budget."""
    domain = None if ball.domain is None else [_canon(b) for b in ball.domain]
    doc = {"code": code_fingerprint(), "model": model, "eps": repr(float(ball.eps)), "norm": ball.norm,
           "domain": domain, "escalate": escalate, "options": _canon(dict(options))}
    return _digest(json.dumps(doc, sort_keys=True).encode())


def sample_keys(check: str, inputs: torch.Tensor, labels: torch.Tensor, *, seed: int,
                sample_ids: Sequence[int]) -> List[str]:
    """One key per sample: the check's fingerprint, the sample's bytes and label, and its random stream."""
    x = inputs.detach().to("cpu").contiguous()
    y = labels.detach().to("cpu").tolist()
    return [_digest(check.encode(), _tensor_bytes(x[i]), str(int(y[i])).encode(),
                    str(stream_seed(seed, int(sample_ids[i]))).encode())
            for i in range(x.shape[0])]


def fingerprint_or_none(model: Any, *, ball: LpBall, escalate: str,
                        options: Mapping[str, Any]) -> Optional[str]:
    """:func:`check_fingerprint` of ``model``, or None (with a log line) when it cannot be fingerprinted."""
    import logging

    try:
        return check_fingerprint(model=model_fingerprint(model), ball=ball, escalate=escalate,
                                 options=options)
    except NotFingerprintable as exc:
        logging.getLogger("robustest.cache").info("verdict cache not used for this check: %s", exc)
        return None
