"""``robustest attack MODEL DATA --eps E``: attack every sample, report and save adversarial inputs.

    $ robustest attack net.onnx test.npz --eps 0.05 --method apgd --out adversarial.npz

Every reported success is re-checked by a forward pass (inside the ball and the domain, label changed).
``--out`` saves ``inputs`` (adversarial where the attack succeeded, clean elsewhere), ``labels`` and
``success``, a data file the other commands read.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from ..io.args import add_data_arguments, add_model_arguments

    p = subparsers.add_parser("attack", help="attack every sample and save the adversarial inputs",
                              description=__doc__.splitlines()[0])
    add_model_arguments(p)
    add_data_arguments(p)
    p.add_argument("--eps", type=float, required=True, help="radius of the threat model")
    p.add_argument("--norm", default="linf", help="linf (default), l2 or l1")
    p.add_argument("--method", default="auto",
                   help="auto (default sequence), fgsm, pgd, apgd, apgd-dlr, apgd-t")
    p.add_argument("--steps", type=int, default=None, help="iterations (single named attack)")
    p.add_argument("--restarts", type=int, default=None, help="random restarts (single named attack)")
    p.add_argument("--domain", nargs=2, type=float, default=(0.0, 1.0), metavar=("LO", "HI"))
    p.add_argument("--no-domain", action="store_true", help="inputs are unbounded (no clipping)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=None, help="seconds for the whole run")
    p.add_argument("--batch", type=int, default=64, help="samples per progress step (default 64)")
    p.add_argument("--out", default=None, help="save adversarial inputs (.npz or .pt)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import torch

    from ..api import attack
    from ..errors import invalid_argument
    from ..io.args import data_from_args, model_from_args
    from .progress import progress

    from ..outputs import check_outputs

    if args.batch < 1:
        raise invalid_argument("--batch", args.batch, "a number of samples >= 1", "pass --batch 64")
    check_outputs({"model": args.model, "data": args.data}, {"--out": args.out})
    options = {k: v for k, v in (("steps", args.steps), ("restarts", args.restarts)) if v is not None}
    if options and args.method == "auto":
        raise invalid_argument("--method", "auto", "a single attack when --steps/--restarts are given",
                               "pass --method pgd (or apgd) with --steps")
    model = model_from_args(args)
    inputs, labels = data_from_args(args)
    domain = None if args.no_domain else tuple(args.domain)
    start = time.perf_counter()
    adv, success, pred, dist, methods = [], [], [], [], []
    with torch.no_grad():
        clean_ok = torch.cat([model(inputs[i:i + args.batch]).argmax(1) == labels[i:i + args.batch]
                              for i in range(0, len(labels), args.batch)])
    with progress(total=len(labels), desc="robustest attack", unit="sample") as bar:
        for i in range(0, len(labels), args.batch):
            left = None if args.timeout is None else args.timeout - (time.perf_counter() - start)
            if left is not None and left <= 0:
                raise invalid_argument("--timeout", args.timeout, "enough seconds for every sample",
                                       "raise --timeout or pass --limit")
            out = attack(model, inputs[i:i + args.batch], labels[i:i + args.batch], eps=args.eps, norm=args.norm,
                         method=args.method, domain=domain, seed=args.seed, timeout=left, **options)
            adv.append(out.adversarial)
            success.append(out.success)
            pred.append(out.predicted)
            dist.append(out.distance)
            methods += list(out.method)
            bar.update(len(out.success))
    x_adv, ok = torch.cat(adv), torch.cat(success)
    n = len(labels)
    broken = int((ok & clean_ok).sum())
    print(f"attack {args.method} at eps={args.eps:g} {args.norm}: {int(ok.sum())} of {n} samples broken "
          f"({broken} of {int(clean_ok.sum())} correctly classified); clean accuracy "
          f"{float(clean_ok.float().mean()):.1%}, robust accuracy {float((clean_ok & ~ok).float().mean()):.1%} "
          f"in {time.perf_counter() - start:.1f}s")
    if args.out:
        from ..io.data import save_data

        save_data(args.out, x_adv, labels)
        if str(args.out).endswith(".npz"):  # add the per-sample outcome beside inputs/labels
            np.savez(args.out, inputs=x_adv.numpy(), labels=labels.numpy(), success=ok.numpy(),
                     predicted=torch.cat(pred).numpy(), distance=torch.cat(dist).numpy())
    return 0
