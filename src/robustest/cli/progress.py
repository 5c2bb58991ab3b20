"""Progress for long CLI runs: tqdm on a terminal, silent when stderr is not a TTY (CI logs).

- :func:`progress`: a bar over samples (``check``, ``attack``);
- :func:`status`: one status line while a long call runs (``radius``, ``vnnlib``, ``repair``): the step
  the library reports (:mod:`robustest.progress`: the rung of the ladder, the phase of ``radius``, each
  exact minimum), the clock and, given a budget, the time left of it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, Iterator, Optional

from ..progress import Progress, listening

#: seconds between two refreshes of the clock
TICK = 1.0


def progress(**kwargs: Any) -> Any:
    """``tqdm(**kwargs)`` writing to stderr, disabled unless stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=not sys.stderr.isatty(), leave=False, **kwargs)


@contextlib.contextmanager
def status(desc: str, *, budget: Optional[float] = None) -> Iterator[None]:
    """A status line on stderr while the block runs, on a terminal only: ``desc``, the time so far, the
    latest step the library reported and, with ``budget`` (seconds), the time left of it. Erased at
    the end (stdout, the command's result, stays as without it)."""
    if not sys.stderr.isatty():
        yield
        return
    from tqdm import tqdm

    bar = tqdm(file=sys.stderr, leave=False, desc=desc, bar_format="{desc}: {elapsed}{postfix}")
    start = time.perf_counter()
    latest = [""]
    stop = threading.Event()

    def show() -> None:
        left = "" if budget is None else f"{max(0.0, budget - (time.perf_counter() - start)):.0f} s left"
        bar.set_postfix_str(", ".join(p for p in (latest[0], left) if p), refresh=True)

    def heard(event: Progress) -> None:
        latest[0] = event.line()
        show()

    def tick() -> None:
        while not stop.wait(TICK):
            show()

    clock = threading.Thread(target=tick, name="robustest-status", daemon=True)
    clock.start()
    try:
        with listening(heard):
            yield
    finally:
        stop.set()
        clock.join()
        bar.close()
