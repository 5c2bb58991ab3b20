"""Every imported ONNX model is checked against onnxruntime, the reference runtime, before any proof.

The torch module :func:`~robustest.io.onnx_import.import_onnx` builds must compute what onnxruntime
computes: on :attr:`OnnxCheck.samples` sampled inputs (standard normal and uniform in [0, 1], seeded) the
largest difference of the outputs must stay within ``atol + rtol * max|reference|``. Otherwise the import
is refused with an :class:`OnnxMismatch` naming the difference and the tolerance: a proof about a module
that is not the model would be a proof about nothing.

    >>> from robustest.io.onnx_check import ONNX_CHECK
    >>> ONNX_CHECK.samples, ONNX_CHECK.rtol
    (4, 0.0001)
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModelError, UnsupportedLayer
from ..validate import model_place


@dataclass(frozen=True)
class OnnxCheck:
    """How the imported module is compared with onnxruntime: ``samples`` inputs (half standard normal,
    half uniform in [0, 1], from ``seed``), outputs equal within ``atol + rtol * max|reference|``.

    The tolerance covers float32 rounding in a different order of operations (measured: below 1e-5
    relative on the VNN-COMP mnist_fc and verivital nets); a misread operator differs by far more."""

    samples: int = 4
    rtol: float = 1e-4
    atol: float = 1e-4
    seed: int = 0


#: The check every ONNX import runs.
ONNX_CHECK = OnnxCheck()


class OnnxMismatch(UnsupportedLayer):
    """The imported module and onnxruntime disagree on a sampled input: the import is refused."""


def ort_session(payload: bytes) -> Any:
    """An onnxruntime CPU session on a serialized model (one thread: the check is small, the machine shared)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("model is an ONNX file but onnxruntime, the reference runtime robustest checks every "
                         "import against, is not installed. Fix: pip install 'robustest[onnx]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(payload, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ModelError(f"model is not valid: onnxruntime cannot load it ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}). Fix: check the exported "
                         "file with onnx.checker.check_model and export it again") from None


def sample_inputs(shape: Sequence[int], dtype: np.dtype, check: OnnxCheck) -> list[np.ndarray]:
    """The check's inputs: half standard normal, half uniform in [0, 1]."""
    rng = np.random.default_rng(check.seed)
    out = []
    for k in range(check.samples):
        x = rng.standard_normal(tuple(shape)) if k % 2 == 0 else rng.random(tuple(shape))
        out.append(x.astype(dtype))
    return out


def check_against_onnxruntime(payload: bytes, module: nn.Module, input_shape: Sequence[int], *,
                              check: OnnxCheck = ONNX_CHECK) -> None:
    """Raise :class:`OnnxMismatch` unless ``module`` and onnxruntime agree on ``check.samples`` inputs."""
    sess = ort_session(payload)
    inp = sess.get_inputs()[0]
    if inp.type not in ("tensor(float)", "tensor(double)"):
        raise UnsupportedLayer(f"model input {inp.name!r} has type {inp.type}; robustest perturbs float inputs "
                               "only. Fix: export the network with a float32 input")
    dtype = np.float64 if inp.type == "tensor(double)" else np.float32
    device = model_place(module)[0]
    for k, x in enumerate(sample_inputs(input_shape, np.dtype(dtype), check)):
        try:
            ref = np.asarray(sess.run(None, {inp.name: x})[0], dtype=np.float64).reshape(-1)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"model is not valid: onnxruntime cannot run it on an input of shape "
                             f"{list(x.shape)} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
                             "Fix: check the exported file with onnx.checker.check_model") from None
        with torch.no_grad():
            got = module(torch.from_numpy(x).to(device=device, dtype=torch.float32)).double().cpu().numpy()
        got = got.reshape(-1)
        if got.size != ref.size:
            raise OnnxMismatch(f"model import is not faithful: the imported module gives {got.size} outputs, "
                               f"onnxruntime {ref.size}. Fix: report the model; robustest refuses to prove "
                               "properties of a module that is not the model")
        same_nan = np.isnan(got) == np.isnan(ref)
        diff = np.where(np.isnan(got) & np.isnan(ref), 0.0, np.abs(got - ref))
        err = float(np.max(diff)) if diff.size and bool(same_nan.all()) else (0.0 if not diff.size else np.inf)
        tol = check.atol + check.rtol * (float(np.max(np.abs(ref[np.isfinite(ref)]), initial=0.0)))
        if not err <= tol:
            raise OnnxMismatch(
                f"model import is not faithful: on sampled input {k} the imported module and onnxruntime differ "
                f"by {err:.3g} (max absolute difference of the outputs), more than the tolerance {tol:.3g} "
                f"(atol {check.atol:g} + rtol {check.rtol:g} * max|output|). Fix: report the model; robustest "
                "refuses to prove properties of a module that computes something else")


__all__ = ["ONNX_CHECK", "OnnxCheck", "OnnxMismatch", "check_against_onnxruntime", "ort_session", "sample_inputs"]
