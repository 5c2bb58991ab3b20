"""``robustest vnnlib MODEL SPEC --timeout T``: decide a VNN-COMP property (sat / unsat / timeout).

    $ robustest vnnlib mnist-net_256x2.onnx prop_0_0.03.vnnlib --timeout 120 --out result.txt
    unsat

The answer is printed and, with ``--out``, written in the competition's format (for ``sat`` with the
counterexample ``((X_0 v) ... (Y_0 v) ...)``, re-checked on the network). The whole run, loading
included, stays within ``--timeout`` seconds of wall time.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any


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
    from ..io.args import add_model_arguments

    p = subparsers.add_parser("vnnlib", help="decide a VNN-LIB property: sat, unsat or timeout",
                              description=__doc__.splitlines()[0])
    add_model_arguments(p)
    p.add_argument("spec", help="property file (.vnnlib)")
    p.add_argument("--timeout", type=_positive_seconds, required=True, help="wall-clock seconds (> 0)")
    p.add_argument("--out", default=None, help="write the VNN-COMP result file here")
    p.add_argument("--input-shape", type=int, nargs="+", default=None, metavar="D",
                   help="network input shape with batch, e.g. 1 1 28 28 (default: from the ONNX file, "
                        "else flat)")
    p.add_argument("--seed", type=int, default=0)
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

    # When this process was started for this very command, its start-up counts against the budget.
    own_process = sys.argv[1:2] == ["vnnlib"]
    start = time.perf_counter() - (process_age() if own_process else 0.0)
    import torch

    from ..atomic import atomic_write_text
    from ..io.args import model_from_args
    from ..vnnlib import load_vnnlib, verify
    from ..vnnlib.verify import VerifyResult, check_input_shape

    spec = load_vnnlib(args.spec)
    model = model_from_args(args)
    shape = args.input_shape
    if shape is None and str(args.model).lower().endswith(".onnx"):
        from ..io.onnx_import import onnx_input_shape

        shape = onnx_input_shape(args.model)
    if shape is None:
        shape = (1, spec.num_inputs)
    check_input_shape(spec, shape)
    torch.set_grad_enabled(True)
    remaining = args.timeout - (time.perf_counter() - start)
    if remaining <= 0:
        result = VerifyResult("timeout", time.perf_counter() - start, reason="loading used the whole budget")
    else:
        from .progress import status

        with status("robustest vnnlib", budget=remaining):
            result = verify(model, spec, input_shape=shape, timeout=remaining, seed=args.seed)
    text = result.format()
    if args.out:
        atomic_write_text(args.out, text)
    detail = f" by {result.method}" if result.method else (f" ({result.reason})" if result.reason else "")
    print(f"{result.status}{detail} in {time.perf_counter() - start:.2f}s")
    return 0
