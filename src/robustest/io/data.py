"""Data files: ``.pt`` (a dict of tensors, loaded with ``weights_only=True``) and ``.npz``.

Both hold two arrays, ``inputs`` (N, ...) floats and ``labels`` (N,) integers::

    >>> import torch, tempfile, os
    >>> from robustest.io import load_data, save_data
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> save_data(path, torch.zeros(3, 4), torch.tensor([0, 1, 2]))
    >>> x, y = load_data(path)
    >>> tuple(x.shape), y.tolist()
    ((3, 4), [0, 1, 2])
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Mapping, Tuple, Union

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import InvalidArgument, ShapeError, invalid_argument

PathLike = Union[str, "os.PathLike[str]"]
DATA_SUFFIXES = (".pt", ".pth", ".npz")


def load_data(path: PathLike, *, inputs_key: str = "inputs",
              labels_key: str = "labels") -> Tuple[torch.Tensor, torch.Tensor]:
    """Read ``(inputs, labels)`` from a ``.pt`` or ``.npz`` file.

    ``inputs`` come back as float32 (N, ...), ``labels`` as int64 (N,). A missing file, a wrong
    suffix, missing keys or mismatched lengths raise :class:`~robustest.errors.InvalidArgument` naming
    the keys found and the fix.
    """
    p = Path(path)
    if not p.is_file():
        raise invalid_argument("data", str(path), "an existing .pt or .npz file", "check the path")
    suffix = p.suffix.lower()
    if suffix in (".pt", ".pth"):
        content = _load_pt(p)
    elif suffix == ".npz":
        content = _load_npz(p)
    else:
        raise invalid_argument("data", str(path), f"a file ending in one of {DATA_SUFFIXES}",
                               "save the data with robustest.io.save_data(path, inputs, labels)")
    missing = [k for k in (inputs_key, labels_key) if k not in content]
    if missing:
        raise invalid_argument(
            "data", str(path), f"a mapping with keys {inputs_key!r} and {labels_key!r} "
            f"(missing {missing}; found {sorted(map(str, content))})",
            "save it as {'inputs': tensor (N, ...), 'labels': tensor (N,)} or pass the key names "
            "(--inputs-key/--labels-key)")
    inputs = _numeric(content[inputs_key], f"data[{inputs_key!r}]", "numbers (a float or integer array)",
                      "store the inputs as a float32 array")
    labels = _numeric(content[labels_key], f"data[{labels_key!r}]", "integer class labels",
                      "store the labels as int64 class indices (map class names to 0..K-1 first)")
    if inputs.dtype == torch.bool or inputs.is_complex():
        raise invalid_argument(f"data[{inputs_key!r}]", str(inputs.dtype), "a float or integer array",
                               "store the inputs as float32")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        if labels.is_floating_point() and bool(torch.all(labels == labels.round())):
            labels = labels.long()
        else:
            raise invalid_argument(f"data[{labels_key!r}]", str(labels.dtype), "integer class labels",
                                   "store the labels as int64 class indices")
    labels = labels.long()
    if inputs.dim() < 1 or labels.dim() != 1 or inputs.shape[0] != labels.shape[0]:
        raise invalid_argument(
            "data", str(path), f"inputs (N, ...) and labels (N,) of the same length; got inputs "
            f"{tuple(inputs.shape)} and labels {tuple(labels.shape)}",
            "store one label per input row", cls=ShapeError)
    return inputs.float(), labels


def _numeric(value: Any, name: str, expected: str, fix: str) -> torch.Tensor:
    """``value`` as a tensor; strings, objects and records are refused by name (numpy's and torch's own
    errors would not say which array or what to store instead)."""
    if isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise invalid_argument(name, f"an array of dtype {array.dtype}", expected, fix)
    return torch.as_tensor(array)


def save_data(path: PathLike, inputs: torch.Tensor, labels: torch.Tensor) -> None:
    """Write ``inputs``/``labels`` to ``.pt`` or ``.npz`` (atomically), readable by :func:`load_data`."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise invalid_argument("path", str(path), f"a file ending in one of {DATA_SUFFIXES}",
                               "use a .npz or .pt file name")
    with atomic_path(p, suffix=suffix) as tmp:
        if suffix == ".npz":
            np.savez(tmp, inputs=inputs.detach().cpu().numpy(), labels=labels.detach().cpu().numpy())
        else:
            torch.save({"inputs": inputs.detach().cpu(), "labels": labels.detach().cpu()}, tmp)


def _load_pt(p: Path) -> Mapping[str, Any]:
    try:
        content = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a safe tensor file"
        raise InvalidArgument(
            f"data={str(p)!r} is not valid: expected a .pt file of plain tensors loadable with "
            f"torch.load(weights_only=True) ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            "Fix: save a dict of tensors: torch.save({'inputs': x, 'labels': y}, path)") from None
    if isinstance(content, (tuple, list)) and len(content) == 2:
        return {"inputs": content[0], "labels": content[1]}
    if not isinstance(content, Mapping):
        raise invalid_argument("data", str(p), f"a dict of tensors, got {type(content).__name__}",
                               "save it as torch.save({'inputs': x, 'labels': y}, path)")
    return content


def _load_npz(p: Path) -> Mapping[str, Any]:
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InvalidArgument(
            f"data={str(p)!r} is not valid: expected an .npz archive of numeric arrays "
            f"({type(exc).__name__}: {str(exc)[:200]}). Fix: write it with "
            "numpy.savez(path, inputs=x, labels=y)") from None
