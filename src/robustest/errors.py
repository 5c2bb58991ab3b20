"""The robustest error tree.

Every error subclasses the built-in it resembles, so ``except ValueError`` keeps working, and every
message names the argument, the value it got, what was expected and how to fix it::

    >>> from robustest.errors import invalid_argument
    >>> raise invalid_argument("eps", -1.0, "a number >= 0", "pass eps=0.05")
    Traceback (most recent call last):
    ...
    robustest.errors.InvalidArgument: eps=-1.0 is not valid: expected a number >= 0. Fix: pass eps=0.05
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RobustestError",
    "InvalidArgument",
    "ShapeError",
    "ConfigError",
    "ModelError",
    "UnsupportedLayer",
    "SolverError",
    "SolverUnavailable",
    "HealthCheckError",
    "invalid_argument",
    "caller_stacklevel",
]


class RobustestError(Exception):
    """Base class of every error robustest raises on purpose."""


class InvalidArgument(RobustestError, ValueError):
    """An argument has a value robustest cannot use (eps < 0, unknown norm, NaN inputs...)."""


class ShapeError(InvalidArgument):
    """Tensors whose shapes do not fit together (inputs vs labels, model output vs classes)."""


class ConfigError(RobustestError, ValueError):
    """A bad setting in pyproject.toml ``[tool.robustest]``, ``robustest.yaml`` or on the command line."""


class ModelError(RobustestError, TypeError):
    """The model cannot be used: not callable, wrong output shape, untraceable control flow."""


class UnsupportedLayer(RobustestError, NotImplementedError):
    """A layer or operator the certifiers have no rule for. The message names it."""


class SolverError(RobustestError, RuntimeError):
    """An LP/MILP/QP solver failed in a way that is not a time-out."""


class SolverUnavailable(SolverError, ImportError):
    """A solver is not installed, or its licence does not cover the problem size."""


class HealthCheckError(RobustestError, RuntimeError):
    """A health check that makes results meaningless failed (e.g. a model in train mode)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def invalid_argument(
    argument: str, value: Any, expected: str, fix: str, *, cls: type[InvalidArgument] = InvalidArgument
) -> InvalidArgument:
    """Build an :class:`InvalidArgument` whose message follows the house format."""
    return cls(f"{argument}={_short(value)} is not valid: expected {expected}. Fix: {fix}")


def caller_stacklevel() -> int:
    """The ``stacklevel`` for a warning raised by the caller of this function that points at the first
    frame outside the library (the user's call, or the plugin's), however deep inside it was raised."""
    import os
    import sys
    from types import FrameType
    from typing import Optional

    root = os.path.dirname(os.path.abspath(__file__))
    plugin = os.path.join(root, "plugin")
    level = 1
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(root) or name.startswith(plugin):
            return level
        frame, level = frame.f_back, level + 1
    return level
