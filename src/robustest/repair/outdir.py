"""Where repaired models go: checked to be a writable directory before any repair work (torch-free,
so the pytest plugin can check ``--robust-repair=DIR`` at start-up).

    >>> import tempfile
    >>> check_output_dir(tempfile.mkdtemp()) is None
    True
"""

from __future__ import annotations

import os
import tempfile

from ..errors import invalid_argument


def check_output_dir(path: str, *, option: str = "--robust-repair") -> None:
    """Create ``path`` if needed and prove it writable with a temporary file; a clear error otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".robustest-write-check-"):
            pass
    except OSError as exc:
        raise invalid_argument(option, path, "a directory robustest can create files in",
                               f"point {option} at a writable directory ({exc.strerror or exc})") from None


__all__ = ["check_output_dir"]
