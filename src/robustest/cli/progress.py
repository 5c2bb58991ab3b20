"""A progress bar for long CLI runs: tqdm on a terminal, silent when stderr is not a TTY (CI logs)."""

from __future__ import annotations

import sys
from typing import Any


def progress(**kwargs: Any) -> Any:
    """``tqdm(**kwargs)`` writing to stderr, disabled unless stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=not sys.stderr.isatty(), leave=False, **kwargs)
