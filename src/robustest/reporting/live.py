"""Progress of a robustness test on pytest's terminal, without breaking pytest's own output.

A CNN test can run for half a minute; this shows, while it runs, the rung at work, the samples decided
and the most time the rest may take (:class:`robustest.progress.Progress`). How depends on where the
output goes:

- a terminal: one transient note after pytest's own text on the current line (``test_x.py .`` or
  ``test_x.py::test_cnn``), rewritten in place and erased (backspaces) before pytest writes again, so
  pytest's line, its ``[ 50%]`` column and its colours are as without it;
- not a terminal (a CI log): nothing, unless ``-v`` asks for it; then one line per rung
  (``    robustest check: crown, 12/50 decided, <= 380 s of budget left``), which pytest's verbose
  mode follows by writing the test's id again before its outcome;
- a pytest-xdist worker: nothing (its output is not shown; the controller prints the summary).

Writes happen with pytest's capturing suspended, as pytest's live logging does.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator, Optional

from ..progress import Progress, listening

__all__ = ["live_progress", "mode_for", "transient"]

_PREFIX = " robustest "


def mode_for(config: Any) -> Optional[str]:
    """"transient" (a terminal), "lines" (``-v`` without a terminal) or None (quiet)."""
    if hasattr(config, "workerinput"):  # an xdist worker
        return None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return None
    if bool(getattr(reporter, "isatty", False)):
        return "transient"
    return "lines" if config.get_verbosity() >= 1 else None


def transient(shown: int, text: str) -> str:
    """The characters that erase the ``shown`` characters written last and write ``text`` instead."""
    erase = "\b" * shown + " " * shown + "\b" * shown
    return erase + text


class _Display:
    def __init__(self, config: Any, mode: str) -> None:
        self.config = config
        self.mode = mode
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.capture = config.pluginmanager.get_plugin("capturemanager")
        self.shown = 0

    @contextlib.contextmanager
    def _uncaptured(self) -> Iterator[None]:
        if self.capture is None:
            yield
        else:
            with self.capture.global_and_fixture_disabled():
                yield

    def __call__(self, event: Progress) -> None:
        if self.mode == "lines":
            if event.step != "done":
                with self._uncaptured():
                    self.reporter.write_line(f"   {_PREFIX}{event.line()}")
            return
        writer = self.config.get_terminal_writer()
        room = writer.fullwidth - writer.width_of_current_line - 2
        text = "" if event.step == "done" else (_PREFIX + event.line())[:max(0, room)]
        if len(text) < 12:  # no room for anything useful
            text = ""
        self._write(text)

    def _write(self, text: str) -> None:
        if not text and not self.shown:
            return
        with self._uncaptured():
            # straight to the stream, so the writer's count of the line's width stays pytest's own
            sys.stdout.write(transient(self.shown, text))
            sys.stdout.flush()
        self.shown = len(text)

    def close(self) -> None:
        if self.mode == "transient":
            self._write("")


@contextlib.contextmanager
def live_progress(config: Any) -> Iterator[None]:
    """Show the progress of the checks inside the block on pytest's terminal (see the module's doc)."""
    mode = mode_for(config)
    if mode is None:
        yield
        return
    display = _Display(config, mode)
    try:
        with listening(display):
            yield
    finally:
        display.close()
