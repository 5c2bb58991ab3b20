"""Output paths checked before any work: never an input file, never twice, and writable.

The CLI names its reports and saved models on the command line; a typo such as
``--junit model.onnx`` must not replace the model, and a read-only folder must be reported before the
check has run for minutes, not after. Torch-free.

    >>> check_outputs({"model": "net.onnx"}, {"--junit": "net.onnx"})
    Traceback (most recent call last):
    ...
    robustest.errors.InvalidArgument: --junit='net.onnx' is not valid: expected a path that is not one of the inputs (it is the model file). Fix: write the output to another path, e.g. --junit out/net.onnx.out
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping, Optional

from .atomic import writable_target
from .errors import invalid_argument

__all__ = ["check_outputs"]


def _same(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _check_writable(option: str, path: str) -> None:
    target = writable_target(path, argument=option)
    folder = target.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise invalid_argument(option, path, f"a path in a folder ({existing} is a file, not a folder)",
                               f"pass {option} a path whose parent is a folder")
    if existing != folder:  # the folders will be created; the first existing one must take them
        if not os.access(existing, os.W_OK | os.X_OK):
            raise invalid_argument(option, path, f"a writable location (cannot create folders in {existing})",
                                   f"pass {option} a path in a writable folder")
        return
    try:  # a real probe: os.access says yes to root on a read-only file system
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=str(folder))
    except OSError as exc:
        raise invalid_argument(option, path, f"a writable location ({folder}: {exc.strerror})",
                               f"pass {option} a path in a writable folder") from None
    os.close(fd)
    os.unlink(probe)


def check_outputs(inputs: Mapping[str, Optional[str]], outputs: Mapping[str, Optional[str]]) -> None:
    """Raise :class:`~robustest.errors.InvalidArgument` when an output (option name -> path; None means
    not asked for) is one of the ``inputs`` (kind -> path), names the same file as another output, or
    cannot be written (a directory or device there, a read-only or missing folder)."""
    given = {opt: str(p) for opt, p in outputs.items() if p}
    for opt, path in given.items():
        for kind, other in inputs.items():
            if other and _same(path, str(other)):
                raise invalid_argument(opt, path, f"a path that is not one of the inputs (it is the {kind} "
                                       "file)", f"write the output to another path, e.g. {opt} out/"
                                       f"{Path(path).name}.out")
    seen: dict = {}
    for opt, path in given.items():
        key = os.path.realpath(path)
        if key in seen:
            raise invalid_argument(opt, path, f"a path different from {seen[key]} (both name {path})",
                                   f"give {opt} and {seen[key]} different files")
        seen[key] = opt
    for opt, path in given.items():
        _check_writable(opt, path)
