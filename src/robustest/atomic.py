"""Files that are never half-written: write a temporary file beside the target, then rename it.

A reader (CI parsing a JUnit file, a browser opening the report, a user loading a repaired model) sees
the old file or the whole new one, never a torn one, even if the writer is killed halfway. Torch-free,
so the pytest plugin can use it without importing torch.

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = atomic_write_text(os.path.join(folder, "out.txt"), "all or nothing\\n")
    >>> path.read_text()
    'all or nothing\\n'
    >>> with atomic_path(os.path.join(folder, "data.bin")) as tmp:
    ...     _ = open(tmp, "wb").write(b"\\x00\\x01")
    >>> sorted(os.listdir(folder))
    ['data.bin', 'out.txt']
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

__all__ = ["atomic_path", "atomic_write_text"]

PathLike = Union[str, "os.PathLike[str]"]


@contextmanager
def atomic_path(path: PathLike, *, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path``, on error it is
    removed and ``path`` is left as it was. The file gets the mode any new file gets (mkstemp's is 0600).

    ``suffix`` matters to writers that pick a format by the name (``np.savez`` adds ``.npz`` otherwise).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=str(target.parent))
    os.close(fd)
    try:
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)
