"""``robustest vnnlib MODEL SPEC --timeout T``: decide a VNN-COMP property (sat / unsat / timeout).

    $ robustest vnnlib mnist-net_256x2.onnx prop_0_0.03.vnnlib --timeout 120 --out result.txt
    unsat

The answer is printed and, with ``--out``, written in the competition's format (for ``sat`` with the
counterexample ``((X_0 v) ... (Y_0 v) ...)``, re-checked on the network). The whole run, loading
included, stays within ``--timeout`` seconds of wall time.

Batch mode decides every instance of a VNN-COMP ``instances.csv`` (lines ``onnx,vnnlib,timeout``, paths
relative to the CSV), each as one task with its own timeout, on ``--executor`` (this process, a local
process pool, or Ray; see :mod:`robustest.executors`), and writes one CSV line per instance to ``--out``
(and each instance's result file to ``--out-dir``):

    $ robustest vnnlib --instances instances.csv --executor ray --out results.csv
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any, Optional, Sequence


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"--timeout={text} is not valid: expected a number of seconds > 0. "
                                         "Fix: pass --timeout 60")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("vnnlib", help="decide a VNN-LIB property (or a VNN-COMP instances.csv): sat, "
                                             "unsat or timeout", description=__doc__.splitlines()[0])
    from ..io.args import add_model_arguments

    add_model_arguments(p, optional=True)
    p.add_argument("spec", nargs="?", default=None, help="property file (.vnnlib); not with --instances")
    p.add_argument("--timeout", type=_positive_seconds, default=None,
                   help="wall-clock seconds (> 0); required for one property, per instance from the CSV")
    p.add_argument("--out", default=None, help="write the VNN-COMP result file (batch: the results CSV) here")
    p.add_argument("--input-shape", type=int, nargs="+", default=None, metavar="D",
                   help="network input shape with batch, e.g. 1 1 28 28 (default: from the ONNX file, "
                        "else flat)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real-arithmetic", action="store_true",
                   help="unsat about the exact network (VNN-COMP's convention), not the model as it computes "
                        "in float32 (default: every proof clears a bound on the model's rounding)")
    p.add_argument("--instances", default=None, metavar="CSV",
                   help="decide every line 'onnx,vnnlib,timeout' of this VNN-COMP instances file")
    p.add_argument("--out-dir", default=None, help="batch mode: write each instance's result file here")
    p.add_argument("--executor", default="local", metavar="local|pool|ray[=ADDRESS]",
                   help="batch mode: where the instances run (default: one after the other, here)")
    p.add_argument("--workers", type=int, default=2,
                   help="processes of the pool / CPUs of a local Ray (default 2)")
    p.set_defaults(func=run)


def process_age() -> float:
    """Seconds since this process started (Linux; 0 elsewhere), so start-up counts against the budget."""
    try:
        import os

        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = float(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def run(args: argparse.Namespace) -> int:
    import sys

    from ..errors import invalid_argument

    if args.instances is not None:
        if args.model is not None or args.spec is not None:
            raise invalid_argument("MODEL SPEC", f"{args.model} {args.spec}",
                                   "no positional files with --instances",
                                   "pass either MODEL SPEC --timeout T or --instances instances.csv")
        from .vnnlib_batch import run_batch

        return run_batch(args)
    if args.model is None or args.spec is None or args.timeout is None:
        raise invalid_argument("MODEL SPEC --timeout", f"{args.model} {args.spec} {args.timeout}",
                               "a network, a property and a timeout",
                               "pass net.onnx prop.vnnlib --timeout 60, or --instances instances.csv")

    # When this process was started for this very command, its start-up counts against the budget.
    own_process = sys.argv[1:2] == ["vnnlib"]
    start = time.perf_counter() - (process_age() if own_process else 0.0)
    from ..atomic import atomic_write_text
    from ..io.models import load_model
    from ..outputs import check_outputs

    check_outputs({"model": args.model, "spec": args.spec}, {"--out": args.out})
    from ..vnnlib import load_vnnlib

    spec = load_vnnlib(args.spec)  # first: a bad property is named before the model is loaded
    # attacks need no certification support: an ONNX model robustest cannot import runs through onnxruntime
    model = load_model(args.model, model_class=args.model_class, model_kwargs=args.model_kwargs,
                       runtime_fallback=True)
    from .progress import status

    with status("robustest vnnlib", budget=args.timeout):
        result = decide(model, args.model, spec, args.timeout, start=start, input_shape=args.input_shape,
                        seed=args.seed, real_arithmetic=args.real_arithmetic)
    text = result.format()
    if args.out:
        atomic_write_text(args.out, text)
    detail = f" by {result.method}" if result.method else (f" ({result.reason})" if result.reason else "")
    print(f"{result.status}{detail} in {time.perf_counter() - start:.2f}s")
    if own_process:
        exit_now(0)
    return 0


def exit_now(status: int) -> None:
    """End this process at once, the answer written: the interpreter's own teardown after torch (finalisers,
    thread pools, freeing every module) took 1.5-2.7 s on a loaded 2-core machine, past the budget. Only for
    a process started for this one command: nothing else runs in it that could need its exit handlers."""
    import logging
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def decide(model: Any, model_path: str, spec_path: Any, timeout: float, *, start: float,
           input_shape: Optional[Sequence[int]] = None, seed: int = 0, real_arithmetic: bool = False) -> Any:
    """The :class:`~robustest.vnnlib.verify.VerifyResult` of one property (a path or a parsed spec) within
    ``timeout`` seconds of ``start`` (a ``time.perf_counter()`` value: loading before the call counts
    against the budget)."""
    import torch

    from ..vnnlib import load_vnnlib, verify
    from ..vnnlib.verify import VerifyResult, check_input_shape

    spec = load_vnnlib(spec_path) if isinstance(spec_path, (str, os.PathLike)) else spec_path
    shape = input_shape
    if shape is None and str(model_path).lower().endswith(".onnx"):
        from ..io.onnx_import import onnx_input_shape

        shape = onnx_input_shape(model_path)
    if shape is None:
        shape = (1, spec.num_inputs)
    check_input_shape(spec, shape)
    torch.set_grad_enabled(True)
    remaining = timeout - (time.perf_counter() - start)
    if remaining <= 0:
        blocked = getattr(model, "blocked_by", "")  # an ONNX model run by onnxruntime: say why no proof
        return VerifyResult("timeout", time.perf_counter() - start, reason="loading used the whole budget"
                            + (f"; no proof is possible: {blocked}" if blocked else ""))
    return verify(model, spec, input_shape=shape, timeout=remaining, seed=seed, real_arithmetic=real_arithmetic)
