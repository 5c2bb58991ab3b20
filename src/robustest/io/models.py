"""Model files: ONNX, TorchScript, ``torch.export`` archives and state dicts with a named class.

    >>> from robustest.io import load_model                                   # doctest: +SKIP
    >>> net = load_model("mnist-net_256x2.onnx")                               # doctest: +SKIP
    >>> net = load_model("weights.pt", model_class="digits:mlp")               # doctest: +SKIP
    >>> net = load_model("weights.pt", model_class="mypkg.nets:Net", model_kwargs={"width": 64})  # doctest: +SKIP

The kind is chosen by suffix and content: ``.onnx`` is imported into ordinary torch layers (so attacks
and certifiers see the same modules as for a torch model); ``.pt2`` is a ``torch.export`` archive; a
``.pt``/``.pth``/``.ts`` zip holding TorchScript code is loaded with ``torch.jit.load``; anything else is
a state dict read with ``torch.load(weights_only=True)`` into ``model_class(**model_kwargs)``. Pickled
code from the file is never executed; only the class the caller names is imported. A ``.pt2`` archive
is checked member by member first (:mod:`robustest.io.export_archive`): one that holds pickled objects,
compiled code or sample inputs that need full unpickling is refused with the reason.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from torch import nn

from ..errors import InvalidArgument, ModelError, UnsupportedLayer, invalid_argument

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def load_model(path: PathLike, *, model_class: Optional[str] = None,
               model_kwargs: Optional[Dict[str, Any]] = None,
               device: Union[str, torch.device] = "cpu", runtime_fallback: bool = False) -> nn.Module:
    """Load ``path`` as a torch module in eval mode on ``device``.

    ``model_class`` (``"package.module:Name"``, a class or a factory function) is needed only for state
    dicts. An ONNX model is imported into torch layers and checked against onnxruntime
    (:func:`~robustest.io.onnx_import.import_onnx`); with ``runtime_fallback``, one the import refuses
    (:class:`~robustest.errors.UnsupportedLayer`) comes back as an
    :class:`~robustest.io.onnx_runtime.OnnxRuntimeModule` for gradient-free attacks, whose ``blocked_by``
    says why no proof is possible. Raises :class:`~robustest.errors.InvalidArgument` for a missing or unreadable file and
    :class:`~robustest.errors.ModelError` when the content is not a model.
    """
    p = Path(path)
    if not p.is_file():
        raise invalid_argument("model", str(path), "an existing model file (.onnx, .pt2, .pt, .pth)",
                               "check the path")
    _check_not_empty_or_truncated(p)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        from .onnx_import import import_onnx

        try:
            model = import_onnx(p)
        except UnsupportedLayer as exc:
            if not runtime_fallback:
                raise
            from .onnx_runtime import OnnxRuntimeModule

            reason = str(exc).split(". Supported: ")[0]  # the operator, without the list of all the others
            logger.warning("%s: attacks only, through onnxruntime (%s)", p, reason)
            return OnnxRuntimeModule(p.read_bytes(), blocked_by=reason).to(device).eval()
    elif suffix == ".pt2":
        return _load_export(p).to(device)
    elif _is_torchscript(p):
        with warnings.catch_warnings():  # the caller chose the format; the deprecation is not news
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(p), map_location="cpu")
    elif model_class is not None:
        model = _load_state_dict(p, model_class, model_kwargs or {})
    else:
        raise invalid_argument(
            "model", str(p), "an ONNX file, a TorchScript or torch.export archive, or a state dict "
            "together with its module class", "pass --model-class package.module:ClassName (or "
            "model_class=...) for a state dict, or save the model with torch.jit.save / torch.export.save")
    return model.to(device).eval()


def _check_not_empty_or_truncated(p: Path) -> None:
    """An empty file, or a zip archive (TorchScript, torch.export, torch.save) cut short, gets its own
    message: otherwise it looks like a state dict without its class."""
    size = p.stat().st_size
    if size == 0:
        raise invalid_argument("model", str(p), "a model file, got an empty file (0 bytes)",
                               "save the model again (an interrupted copy or download?)")
    with p.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04":
        try:
            zipfile.ZipFile(p).close()  # reads the central directory, which sits at the very end
        except (zipfile.BadZipFile, OSError, EOFError):
            raise invalid_argument("model", str(p), f"a complete zip archive, got one that is truncated or "
                                   f"corrupt ({size} bytes, no readable central directory)",
                                   "save or copy the model again") from None


def _is_torchscript(p: Path) -> bool:
    if not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        names = z.namelist()
    return any("/code/" in n or n.startswith("code/") for n in names) and any(
        n.endswith("constants.pkl") for n in names)


class ExportedModel(nn.Module):
    """An exported program's module in inference: in eval mode (the graph fixed its mode when it was
    exported; its module refuses ``.eval()``), and run in chunks of its batch size when that was fixed
    at export (a batch-1 export runs sample by sample; the last chunk is padded with its last sample).

        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2)).eval()
        >>> m = ExportedModel(torch.export.export(net, (torch.rand(1, 3),)).module(), batch=1)
        >>> m(torch.rand(5, 3)).shape, m.training
        (torch.Size([5, 2]), False)
    """

    def __init__(self, module: nn.Module, *, batch: Optional[int]) -> None:
        super().__init__()
        self.program = module
        self.batch = batch
        for m in self.modules():
            m.training = False  # not .eval(): the exported module raises there

    def train(self, mode: bool = True) -> ExportedModel:
        if mode:
            raise ModelError("an exported program (.pt2) is fixed in the mode it was exported in; it cannot "
                             "be put in train mode")
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch is None or x.shape[0] == self.batch:
            return self.program(x)
        outs = []
        for i in range(0, x.shape[0], self.batch):
            chunk = x[i:i + self.batch]
            pad = self.batch - chunk.shape[0]
            full = torch.cat([chunk, chunk[-1:].expand((pad,) + tuple(chunk.shape[1:]))]) if pad else chunk
            outs.append(self.program(full)[:chunk.shape[0]])
        return torch.cat(outs)


#: ATen operators that only a train-mode export holds (batch statistics, random dropout)
_TRAIN_OPS = ("dropout", "_native_batch_norm_legit_functional", "_native_batch_norm_legit.default")


def _load_export(p: Path) -> nn.Module:
    from .export_archive import EXPORT_RECIPE, safe_export_load

    try:
        program = safe_export_load(p)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means "not an export archive"
        raise ModelError(
            f"model={str(p)!r} is not valid: expected a torch.export archive ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}). Fix: write it with "
            f"{EXPORT_RECIPE}") from None
    module = program.module()
    calls = [str(n.target) for n in module.graph.nodes if n.op == "call_function"]
    train = sorted({c for c in calls if any(t in c for t in _TRAIN_OPS)})
    if train:
        raise ModelError(f"model={str(p)!r} was exported in train mode (it computes {', '.join(train[:3])}): "
                         f"its outputs would depend on the batch and on chance. Fix: export it again with "
                         f"{EXPORT_RECIPE}")
    inputs = [n for n in module.graph.nodes if n.op == "placeholder"]
    val = inputs[0].meta.get("val") if len(inputs) == 1 else None
    first = val.shape[0] if val is not None and getattr(val, "dim", lambda: 0)() > 0 else None
    return ExportedModel(module, batch=first if isinstance(first, int) else None)


def _resolve_class(spec: str) -> Any:
    if ":" not in spec:
        raise invalid_argument("model_class", spec, "'package.module:Name'",
                               "name the module and the class, e.g. --model-class mypkg.nets:Net")
    mod_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise invalid_argument("model_class", spec, f"an importable module ({exc})",
                               "install the package or put its directory on PYTHONPATH") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise invalid_argument("model_class", spec, f"a name defined in module {mod_name!r}",
                                   f"check the spelling of {attr!r}")
        obj = getattr(obj, part)
    return obj


def _load_state_dict(p: Path, model_class: Any, kwargs: Dict[str, Any]) -> nn.Module:
    factory = _resolve_class(model_class) if isinstance(model_class, str) else model_class
    if not callable(factory):
        raise invalid_argument("model_class", model_class, "a class or a function returning a module",
                               "name an nn.Module subclass")
    try:
        model = factory(**kwargs)
    except TypeError as exc:  # an argument the class does not take, or one it needs
        raise invalid_argument("model_kwargs", kwargs, f"arguments {model_class!r} accepts ({exc})",
                               "pass --model-kwargs with the constructor's own argument names") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model_class={model_class!r} is not valid: expected it to build a torch "
                         f"nn.Module, got {type(model).__name__}. Fix: name an nn.Module subclass")
    try:
        state = torch.load(p, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - unpickling refused or corrupt file
        raise InvalidArgument(
            f"model={str(p)!r} is not valid: expected a state dict loadable with "
            f"torch.load(weights_only=True) ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            "Fix: save model.state_dict(), not the pickled model object") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"model={str(p)!r} is not valid: expected a state dict (name -> tensor), got "
                         f"{type(state).__name__}. Fix: torch.save(model.state_dict(), path)")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"model={str(p)!r} does not fit model_class={model_class!r}: "
                         f"{str(exc).splitlines()[0][:300]}. Fix: pass the class (and model_kwargs) "
                         "the weights were trained with") from None
    return model
