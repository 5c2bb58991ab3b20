"""``robustest vnnlib --instances instances.csv``: every instance of a VNN-COMP benchmark, each a task.

``instances.csv`` has one line ``onnx,vnnlib,timeout`` per instance, the paths relative to the CSV's
folder. Each instance runs as one task (:mod:`robustest.executors`) that loads its network and property
and answers within its own timeout, loading included. The results CSV has one line per instance:
``onnx,vnnlib,timeout,status,seconds,method``.

    >>> read_instances.__doc__.split(".")[0]
    'The (onnx, vnnlib, timeout) triples of a VNN-COMP instances file, paths resolved against its folder'
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import invalid_argument

Instance = Tuple[str, str, float]


def read_instances(path: str) -> List[Instance]:
    """The (onnx, vnnlib, timeout) triples of a VNN-COMP instances file, paths resolved against its folder."""
    folder = Path(path).resolve().parent
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise invalid_argument("--instances", path, f"a readable file ({exc.strerror})",
                               "check the path") from None
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        try:
            onnx, spec, timeout = (c.strip() for c in row)
            seconds = float(timeout)
            if not (seconds > 0 and math.isfinite(seconds)):
                raise ValueError
        except ValueError:
            raise invalid_argument(f"--instances line {n}", ",".join(row),
                                   "onnx,vnnlib,timeout with a timeout > 0",
                                   "write one instance per line, e.g. onnx/net.onnx,vnnlib/prop_0.vnnlib,60"
                                   ) from None
        out.append((str(folder / onnx), str(folder / spec), seconds))
    if not out:
        raise invalid_argument("--instances", path, "at least one instance line",
                               "list the instances to decide")
    return out


def decide_instance(onnx: str, spec: str, timeout: float, input_shape: Optional[Sequence[int]],
                    seed: int, real_arithmetic: bool = False) -> Dict[str, Any]:
    """One instance, decided within ``timeout`` seconds from the task's start (a task of the batch)."""
    from ..io.models import load_model
    from .vnnlib import decide

    start = time.perf_counter()
    result = decide(load_model(onnx, runtime_fallback=True), onnx, spec, timeout, start=start,
                    input_shape=input_shape, seed=seed, real_arithmetic=real_arithmetic)
    return {"status": result.status, "seconds": time.perf_counter() - start, "method": result.method or "",
            "reason": result.reason or "", "text": result.format()}


def run_batch(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write_text
    from ..executors import parse_executor

    executor = parse_executor(args.executor, workers=args.workers)
    instances = read_instances(args.instances)
    if args.timeout is not None:  # a cap on every instance's own timeout
        instances = [(o, v, min(t, args.timeout)) for o, v, t in instances]
    calls = [(o, v, t, args.input_shape, args.seed, args.real_arithmetic) for o, v, t in instances]
    start = time.perf_counter()

    def done(i: int, r: Dict[str, Any]) -> None:
        print(f"{Path(instances[i][1]).name}: {r['status']} in {r['seconds']:.2f}s", flush=True)

    results = executor.map(decide_instance, calls, done=done)
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    for (onnx, spec, timeout), r in zip(instances, results):
        writer.writerow([onnx, spec, f"{timeout:g}", r["status"], f"{r['seconds']:.3f}", r["method"]])
    if args.out:
        atomic_write_text(args.out, lines.getvalue())
    if args.out_dir:
        folder = Path(args.out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for k, ((onnx, spec, _), r) in enumerate(zip(instances, results)):
            atomic_write_text(str(folder / f"{k:04d}_{Path(onnx).stem}_{Path(spec).stem}.txt"), r["text"])
    counts: Dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"{len(results)} instances in {time.perf_counter() - start:.1f}s ({args.executor}): "
          + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 0
