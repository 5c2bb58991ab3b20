"""The layer registry: every layer kind, in one place, for every reader and for the "supported" text.

A layer kind is one file of :mod:`robustest.layers` whose :class:`~robustest.layers.base.Layer` subclass is
decorated with :func:`register` and declares what it stands for: torch modules (``modules`` /
``from_module``), torch.fx calls (``functions`` / ``from_call``) and ONNX operators (``onnx_ops`` /
``from_onnx``). The torch.fx reader, the module converter, the ONNX importer, the linear-region code and
the messages read this registry instead of keeping their own lists. Adding a layer kind is its file and
its import line in ``layers/__init__.py``; the registry-wide test checks its rules on its ``example()``.

Claims must be disjoint: when several kinds declare the same call or operator (``+`` is a residual
:class:`~robustest.layers.Add` of two tensors, or a :class:`~robustest.layers.Scale` by a constant), each
one's converter returns ``NotImplemented`` for the forms that are not its own.

    >>> from robustest.layers.registry import kinds, supported_text
    >>> "ReLU" in [k.kind for k in kinds()]
    True
    >>> supported_text().startswith("Add (")
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ..errors import UnsupportedLayer

if TYPE_CHECKING:
    from torch import nn

    from .base import Layer

_KINDS: list[type[Layer]] = []
_L = TypeVar("_L", bound="type[Layer]")


def register(cls: _L) -> _L:
    """Class decorator: add a layer kind to the registry (kept sorted by name, so order never matters)."""
    if any(k.kind == cls.kind for k in _KINDS):
        raise ValueError(f"layer kind {cls.kind!r} is registered twice")
    _KINDS.append(cls)
    _KINDS.sort(key=lambda k: k.kind)
    return cls


def kinds() -> tuple[type[Layer], ...]:
    """Every registered layer kind, sorted by name."""
    return tuple(_KINDS)


def torch_modules() -> tuple[type[nn.Module], ...]:
    """Every torch module class some kind stands for."""
    return tuple(m for k in _KINDS for m in k.modules)


def kind_of_module(mod: nn.Module) -> type[Layer] | None:
    """The kind that stands for the torch module ``mod`` (None: no kind does)."""
    return next((k for k in _KINDS if isinstance(mod, k.modules)), None)


def matches(target: object, functions: tuple[object, ...]) -> bool:
    """Whether the torch.fx call ``target`` is one of ``functions``: a function by identity, a string by
    name (a method name, or the ``__name__`` of a function such as ``F.dropout``)."""
    name = target if isinstance(target, str) else getattr(target, "__name__", None)
    return any(f is target or (isinstance(f, str) and f == name) for f in functions)


def kinds_of_call(target: object) -> list[type[Layer]]:
    """The kinds that declare the torch.fx call ``target`` (see :func:`matches`)."""
    return [k for k in _KINDS if matches(target, k.functions)]


def kinds_of_onnx(op: str) -> list[type[Layer]]:
    """The kinds that declare the ONNX operator type ``op``."""
    return [k for k in _KINDS if op in k.onnx_ops]


def onnx_ops() -> set[str]:
    """Every ONNX operator type some kind stands for."""
    return {op for k in _KINDS for op in k.onnx_ops}


def describe(kind: type[Layer]) -> str:
    """``Kind (nn.Module, ...; summary)``: the torch modules the kind stands for and its summary."""
    parts = [", ".join(f"nn.{m.__name__}" for m in kind.modules), kind.summary]
    return f"{kind.kind} ({'; '.join(p for p in parts if p)})"


def supported_text() -> str:
    """What the certifiers support, one entry per kind (:func:`describe`)."""
    return ", ".join(describe(k) for k in _KINDS)


def unsupported(what: str, path: str, why: str = "") -> UnsupportedLayer:
    """The error for a layer or call without certification rules, listing what is supported."""
    extra = f" ({why})" if why else ""
    return UnsupportedLayer(f"layer {what} at '{path}' has no certification rule{extra}. Supported: "
                            f"{supported_text()}. Fix: replace it by supported layers, or certify a model without it.")


__all__ = ["describe", "kind_of_module", "kinds", "kinds_of_call", "kinds_of_onnx", "matches", "onnx_ops", "register",
           "supported_text", "torch_modules", "unsupported"]
