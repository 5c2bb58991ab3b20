"""``robustest radius MODEL DATA``: per-sample robustness radius (smallest adversarial perturbation found,
largest certified eps, optionally the exact minimum).

    $ robustest radius net.onnx test.npz --norm l2 --json radius.json
    $ robustest radius weights.pt test.pt --model-class mypkg.nets:MLP --norm linf --limit 20
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("radius", help="robustness radius per sample (upper, certified lower, exact)",
                              description=__doc__.splitlines()[0])
    p.add_argument("model", help="model file: .onnx, TorchScript, .pt2, or a state dict with --model-class")
    p.add_argument("data", help="data file (.pt or .npz) with 'inputs' and 'labels'")
    p.add_argument("--model-class", "--module", dest="model_class", default=None,
                   help="package.module:Class of a state dict model")
    p.add_argument("--norm", default="l2", help="l2 (default), linf or l1")
    p.add_argument("--exact", action="store_true", help="also compute exact minima (small ReLU nets)")
    p.add_argument("--method", default="auto", help="auto (default), deepfool, lr_qp or pgd")
    p.add_argument("--certifier", default="crown", help="rung used for the lower bound, or 'none'")
    p.add_argument("--domain", nargs=2, type=float, default=(0.0, 1.0), metavar=("LO", "HI"))
    p.add_argument("--timeout", type=float, default=30.0, help="rLR-QP seconds per sample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="only the first N samples")
    p.add_argument("--json", dest="json_path", default=None, help="write the report as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io import load_data, load_model
    from ..minimal.api import radius
    from ..outputs import check_outputs

    check_outputs({"model": args.model, "data": args.data}, {"--json": args.json_path})
    model = load_model(args.model, model_class=args.model_class)
    inputs, labels = load_data(args.data)
    if args.limit is not None:
        inputs, labels = inputs[: args.limit], labels[: args.limit]
    certifier = None if args.certifier in ("none", "None", "") else args.certifier
    from .progress import status

    with status("robustest radius"):
        report = radius(model, inputs, labels, norm=args.norm, exact=args.exact, domain=tuple(args.domain),
                        timeout=args.timeout, seed=args.seed, method=args.method, certifier=certifier)
    for s in report.samples:
        exact = f" exact={s.exact:.6g}" if s.exact is not None else (
            f" exact=none ({s.exact_reason})" if s.exact_reason else "")
        upper = "none found" if math.isinf(s.upper) else f"{s.upper:.6g} ({s.method})"
        print(f"sample {s.index}: label {s.label} lower={s.lower:.6g} ({s.lower_method}) "
              f"upper={upper}{exact}")
    for w in report.warnings:
        print(f"warning: {w}")
    print(report.summary())
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(report.to_dict(), fh, indent=2)
    return 0
