"""Shared helpers for the benchmark scripts: examples on sys.path, timing, machine load, markdown, and the
onnxruntime re-checks of VNN-COMP answers."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))


def interleaved(fns: "dict[str, Callable[[], object]]", rounds: int = 7) -> "dict[str, float]":
    """Median wall seconds per function, timing them in turn round after round, so that a load change
    on a shared machine hits all of them alike (one warm-up call each first)."""
    for fn in fns.values():
        fn()
    times: "dict[str, List[float]]" = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import torch

    return (f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"1-min load average {load:.2f} at start")


def run_vnnlib(onnx_path: Path, spec_path: Path, timeout: float, *, extra: Sequence[str] = ()
               ) -> "tuple[str, str, str, float]":
    """``robustest vnnlib`` on one instance in a fresh process (start-up counts), killed 10 s after its
    timeout: (status, the result file's text, the command's summary line, wall seconds). ``extra``: more
    options of the command (e.g. ``--real-arithmetic``)."""
    import subprocess
    import tempfile

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.txt"
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "robustest.cli", "vnnlib", str(onnx_path), str(spec_path),
                                   "--timeout", str(timeout), "--out", str(result), *extra], capture_output=True,
                                  text=True,
                                  timeout=timeout + 10, env=env, check=False)
            lines = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
            detail = lines[-1] if lines else ""  # the command's own summary line
            text = result.read_text() if result.exists() else ""
            status = text.split("\n", 1)[0] if text else "error"
        except subprocess.TimeoutExpired:
            status, text, detail = "timeout", "", "killed after timeout + 10 s"
        return status, text, detail, time.perf_counter() - start


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def check_sat(onnx_path: Path, spec, text: str) -> str:
    """'' when the counterexample in ``text`` is real (checked with onnxruntime), else why not."""
    import onnxruntime as ort
    import torch

    vals = {}
    for tok in text.replace("(", " ").replace(")", " ").split()[1:]:
        vals.setdefault("_", []).append(tok)
    toks = vals.get("_", [])
    pairs = dict(zip(toks[0::2], toks[1::2]))
    try:
        x = np.array([float(pairs[f"X_{i}"]) for i in range(spec.num_inputs)], dtype=np.float32)
    except (KeyError, ValueError):
        return f"the result file does not list X_0..X_{spec.num_inputs - 1}"
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    y = sess.run(None, {inp.name: x.reshape(shape)})[0].reshape(-1)
    if not spec.violated_by(torch.from_numpy(x), torch.from_numpy(y.astype(np.float64))):
        return "counterexample does not violate the property under onnxruntime"
    return ""


def check_unsat(onnx_path: Path, spec, rng: np.random.Generator) -> str:
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    for region in spec.regions:
        lo, hi = region.lower.numpy(), region.upper.numpy()
        pts = np.concatenate([((lo + hi) / 2)[None], lo + rng.random((256, lo.size)) * (hi - lo)]).astype(np.float32)
        pts = np.clip(pts, lo.astype(np.float32), hi.astype(np.float32))
        for x in pts:
            y = sess.run(None, {inp.name: x.reshape([d if isinstance(d, int) and d > 0 else 1 for d in inp.shape])})[0]
            if spec.violated_by(torch.from_numpy(x), torch.from_numpy(y.reshape(-1).astype(np.float64))):
                return "a sampled point violates a property answered unsat"
    return ""
