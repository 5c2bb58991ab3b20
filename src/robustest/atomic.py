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

__all__ = ["atomic_path", "atomic_write_text", "writable_target"]

PathLike = Union[str, "os.PathLike[str]"]


def writable_target(path: PathLike, *, argument: str = "path") -> Path:
    """The file a write to ``path`` must replace: a symlink's final target (so the link stays a link and
    its target does not go stale), or ``path`` itself. Raises
    :class:`~robustest.errors.InvalidArgument` when something other than a regular file is there (a
    directory, a device, a pipe): replacing it would destroy it."""
    from .errors import invalid_argument

    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    if target.exists() and not target.is_file():
        kind = "a directory" if target.is_dir() else "a special file (device, pipe or socket)"
        raise invalid_argument(argument, str(path), f"a regular file or a new path, not {kind}",
                               f"pass {argument} a file path (e.g. out/report.html)")
    return target


@contextmanager
def atomic_path(path: PathLike, *, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path``, on error it is
    removed and ``path`` is left as it was. The file gets the mode any new file gets (mkstemp's is 0600).
    A symlink is written through (its target is replaced, the link kept); a non-regular file is refused.

    ``suffix`` matters to writers that pick a format by the name (``np.savez`` adds ``.npz`` otherwise).
    """
    target = writable_target(path)
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
