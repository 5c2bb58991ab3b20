"""Load a ``torch.export`` archive (``.pt2``) without running code from it.

``torch.export.load`` unpickles with ``weights_only=False`` in several places: when the safe load of
``sample_inputs/`` fails it retries unsafely, weights and constants whose config says ``use_pickle``
are unpickled, custom and opaque objects are unpickled, the pre-2.8 zip layout falls back the same
way, and ``data/aotinductor/`` holds compiled libraries that are loaded and run. A crafted archive can
therefore run arbitrary code. Before torch sees the file, every member is checked against an allow-list
of what a plain exported program holds (JSON graphs and configs, raw tensor bytes, sample inputs that
load with ``weights_only=True``); anything else is refused with the member's name and the reason.
During the load itself ``torch.load`` is held to ``weights_only=True`` as well.

    >>> import torch, tempfile, os
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2)).eval()
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt2")
    >>> torch.export.save(torch.export.export(net, (torch.rand(2, 3),)), path)
    >>> check_export_archive(path)       # a plain export passes; a crafted one raises ModelError
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError

__all__ = ["EXPORT_RECIPE", "check_export_archive", "safe_export_load"]

#: how to write an archive robustest loads: in eval mode, with a batch dimension that is not fixed
EXPORT_RECIPE = ("torch.export.save(torch.export.export(model.eval(), (example,), dynamic_shapes=({0: "
                 "torch.export.Dim('batch')},)), path) with an example batch of 2 or more")
_FIX = (f"Fix: export the model again with {EXPORT_RECIPE} "
        "from plain tensors and parameters, or save it as ONNX")
# members of <root>/ that carry no code: metadata, the graph (JSON) and the extra files (read as text)
_PLAIN = ("archive_format", "archive_version", "byteorder", ".data/")
_LOCK = threading.Lock()


def _refuse(p: Path, member: str, reason: str) -> ModelError:
    return ModelError(f"model={str(p)!r} is refused: archive member {member!r} {reason}; robustest does not "
                      f"unpickle or run code from model files. {_FIX}")


def _check_config(p: Path, z: zipfile.ZipFile, name: str, payload_prefix: str) -> None:
    try:
        config = json.loads(z.read(name).decode("utf-8"))["config"]
        entries = list(config.items())
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise _refuse(p, name, "is not a valid payload config (JSON with a 'config' mapping)") from None
    for key, meta in entries:
        if not isinstance(meta, dict):
            raise _refuse(p, name, f"has an entry {key!r} that is not a mapping")
        if meta.get("use_pickle"):
            raise _refuse(p, name, f"marks {key!r} as pickled (use_pickle: true), which would be "
                                   "unpickled with weights_only=False")
        path_name = str(meta.get("path_name", ""))
        if not path_name.startswith(payload_prefix):
            raise _refuse(p, name, f"names a payload {path_name!r} for {key!r} that is not a plain tensor "
                                   f"('{payload_prefix}...'; custom and opaque objects are unpickled)")


def _check_sample_inputs(p: Path, z: zipfile.ZipFile, name: str) -> None:
    try:
        torch.load(io.BytesIO(z.read(name)), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch would retry this load with weights_only=False
        raise _refuse(p, name, f"does not load with weights_only=True ({type(exc).__name__}), and torch "
                               "would retry it with weights_only=False") from None


def check_export_archive(path: Any) -> None:
    """Raise :class:`~robustest.errors.ModelError` unless every member of the archive is plain data."""
    p = Path(path)
    try:
        z = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"model={str(p)!r} is not valid: expected a torch.export archive (a zip file; "
                         f"{type(exc).__name__}: {exc}). {_FIX}") from None
    with z:
        names: list[str] = [n for n in z.namelist() if not n.endswith("/")]
        roots = {n.split("/", 1)[0] for n in names}
        if len(roots) != 1 or any("/" not in n for n in names):
            bad = next((n for n in names if "/" not in n), names[0] if names else "(empty archive)")
            raise _refuse(p, bad, "is outside the single root folder of a torch.export archive (the "
                                  "pre-2.8 layout, whose loader unpickles with weights_only=False)")
        for name in names:
            rel = name.split("/", 1)[1]
            if rel.startswith(_PLAIN) or rel.startswith("extra/"):
                continue
            if rel.startswith("models/") and rel.endswith(".json"):
                continue
            if rel.startswith("data/weights/"):
                leaf = rel[len("data/weights/"):]
                if leaf.endswith("_weights_config.json"):
                    _check_config(p, z, name, "weight_")
                    continue
                if leaf.startswith("weight_") and "/" not in leaf and not leaf.endswith(".pt"):
                    continue
            if rel.startswith("data/constants/"):
                leaf = rel[len("data/constants/"):]
                if leaf.endswith("_constants_config.json"):
                    _check_config(p, z, name, "tensor_")
                    continue
                if leaf.startswith("tensor_") and "/" not in leaf:
                    continue
            if rel.startswith("data/sample_inputs/") and rel.endswith(".pt"):
                _check_sample_inputs(p, z, name)
                continue
            what = ("holds compiled code (AOTInductor), which would be loaded and run"
                    if rel.startswith("data/aotinductor/") else
                    "is not part of a plain exported program (graph JSON, raw tensors, sample inputs)")
            raise _refuse(p, name, what)


@contextlib.contextmanager
def _weights_only_torch_load() -> Iterator[None]:
    """Hold every ``torch.load`` to ``weights_only=True`` while torch reads the archive (belt and braces
    for the checks above: torch's own fallbacks pass ``weights_only=False``)."""
    original = torch.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    with _LOCK:
        torch.load = load  # type: ignore[assignment]
        try:
            yield
        finally:
            torch.load = original  # type: ignore[assignment]


def safe_export_load(path: Any) -> Any:
    """``torch.export.load(path)`` after :func:`check_export_archive`, with tensors-only unpickling."""
    check_export_archive(path)
    with _weights_only_torch_load():
        return torch.export.load(str(path))
