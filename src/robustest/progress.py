"""Progress of long work, for whoever shows it: the ladder and ``radius`` tell, a display listens.

The library never prints. :func:`robustest.check` (each rung of the ladder) and :func:`robustest.radius`
(each phase, and each exact minimum) call :func:`tell` with a :class:`Progress`; a display installed
with :func:`listening` receives them, in the same thread and context (a :mod:`contextvars` variable, so
threads and asyncio tasks of other checks are not mixed up). Without a listener :func:`tell` does
nothing. The pytest plugin shows them on a terminal (:mod:`robustest.reporting.live`), the CLI as a
status line on stderr (:mod:`robustest.cli.progress`).

    >>> seen = []
    >>> with listening(seen.append):
    ...     tell(Progress(task="check", step="crown", decided=3, total=10, budget_left=12.5))
    >>> seen[0].line()
    'check: crown, 3/10 decided, <= 12 s of budget left'
    >>> tell(Progress(task="check", step="done", decided=10, total=10))  # nobody listens: nothing happens
"""

from __future__ import annotations

import contextlib
import logging
import math
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

__all__ = ["Progress", "tell", "listening"]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where a long task stands: ``step`` is the rung or phase now running (``"done"`` at the end),
    ``decided`` of ``total`` samples are settled, and ``budget_left`` is the most time the rest may still
    take (the pooled per-sample budgets of the undecided samples; ``inf`` without a budget)."""

    task: str
    step: str
    decided: int
    total: int
    budget_left: float = math.inf

    def line(self) -> str:
        """``check: crown, 3/10 decided, <= 12 s of budget left``."""
        left = "" if not math.isfinite(self.budget_left) else f", <= {self.budget_left:.0f} s of budget left"
        return f"{self.task}: {self.step}, {self.decided}/{self.total} decided{left}"


Listener = Callable[[Progress], None]
_LISTENER: ContextVar[Optional[Listener]] = ContextVar("robustest_progress", default=None)


def tell(event: Progress) -> None:
    """Hand ``event`` to the listener of this context, if any. A failing display never fails the work:
    its error is logged and the work goes on."""
    listener = _LISTENER.get()
    if listener is None:
        return
    try:
        listener(event)
    except Exception:  # a broken terminal must not turn a robustness verdict into an error
        _LOG.warning("robustest: the progress display failed; going on without it", exc_info=True)


@contextlib.contextmanager
def listening(listener: Optional[Listener]) -> Iterator[None]:
    """Send the :class:`Progress` events of the work inside the block to ``listener`` (None: to nobody)."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
