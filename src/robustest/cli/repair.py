"""``robustest repair MODEL DATA --eps E --out FILE``: check, repair with the counterexamples, re-check.

    $ robustest repair weights.pt test.npz --model-class mypkg.nets:Net --eps 0.1 --out repaired.pt

The model is checked on DATA at ``--eps``; the falsified samples' counterexamples are the points to fix
(``--pgd-train N`` adds N PGD points from the training data instead, as the paper does). The loss that
must not rise is measured on ``--train`` (default: DATA). The repaired state dict goes to ``--out``
(never over MODEL or DATA, nor over an existing file unless ``--overwrite``) and must load back into
the model class. Prints the before/after table. Exit status 0 when the re-check passes, 1 when
counterexamples remain, 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def register(subparsers: Any) -> None:
    from .._options import cli_value, help_for
    from ..io.args import add_data_arguments, add_model_arguments

    p = subparsers.add_parser("repair", help="repair a model with the counterexamples a check finds",
                              description=__doc__.splitlines()[0])
    add_model_arguments(p)
    p.add_argument("--module", dest="model_class", default=None, metavar="PKG.MOD:CLASS",
                   help="same as --model-class")
    add_data_arguments(p)
    p.add_argument("--eps", type=float, required=True, help="radius of the threat model")
    p.add_argument("--norm", default="linf", help="linf (default), l2 or l1")
    p.add_argument("--out", required=True, help="file for the repaired state dict (.pt)")
    p.add_argument("--overwrite", action="store_true", help="allow replacing an existing --out file")
    p.add_argument("--train", default=None, help="data file whose loss must not rise (default: DATA)")
    p.add_argument("--pgd-train", dest="pgd_train", type=int, default=0, metavar="N",
                   help="fix N PGD points from the training data instead of the check's counterexamples")
    p.add_argument("--iterations", type=int, default=20, help="master QPs (default 20)")
    p.add_argument("--omega", type=float, default=0.2, help="weight of the loss in the pick (default 0.2)")
    p.add_argument("--margin", type=float, default=0.05, help="logit margin the cuts ask for (default 0.05)")
    p.add_argument("--solver", default="dual", help="dual (default), highs or gurobi")
    p.add_argument("--escalate", type=cli_value("escalate"), default="attack",
                   help=help_for("escalate") + " for the checks (default attack)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per sample for the checks")
    p.add_argument("--domain", nargs=2, type=float, default=(0.0, 1.0), metavar=("LO", "HI"))
    p.add_argument("--no-domain", action="store_true", help="inputs are unbounded")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from pathlib import Path

    from ..api import check
    from ..atomic import atomic_path
    from ..errors import invalid_argument
    from ..io.args import data_from_args, model_from_args
    from ..io.data import load_data
    from ..io.models import load_model
    from ..repair.api import repair
    from ..repair.pytest_support import RepairSummary

    from ..outputs import check_outputs

    check_outputs({"model": args.model, "data": args.data, "train": args.train}, {"--out": args.out})
    if args.model_class is None:
        raise invalid_argument("--model-class", None, "the Python class of the model (repair writes a state "
                               "dict, and TorchScript/ONNX graphs cannot be evaluated at other weights)",
                               "save model.state_dict() and pass --model-class package.module:Class")
    if os.path.exists(args.out) and not args.overwrite:
        raise invalid_argument("--out", args.out, "a path that does not exist yet",
                               "choose another path or pass --overwrite")
    model = model_from_args(args)
    inputs, labels = data_from_args(args)
    train = load_data(args.train) if args.train else (inputs, labels)
    domain = None if args.no_domain else tuple(args.domain)
    check_kwargs = dict(eps=args.eps, norm=args.norm, escalate=args.escalate, timeout=args.timeout,
                        domain=domain, seed=args.seed)
    from ..progress import Progress, tell
    from .progress import status

    with status("robustest repair: checking the model"):
        before = check(model, inputs, labels, **check_kwargs)
    if args.pgd_train:
        adversarial: Any = None
    elif not before.counts()["falsified"]:
        print(f"robustest repair: nothing to fix: no counterexample at eps={args.eps:g} "
              f"({before.summary()})")
        return 0
    else:
        adversarial = before
    with status("robustest repair"):
        tell(Progress(task="repair", step="cutting-plane repair", decided=0, total=len(labels)))
        result = repair(model, adversarial, train, eps=args.eps if args.pgd_train else None, norm=args.norm,
                        domain=domain, n_adversarial=max(args.pgd_train, 1), iterations=args.iterations,
                        omega=args.omega, margin=args.margin, solver=args.solver, seed=args.seed)
    with atomic_path(args.out, suffix=Path(args.out).suffix) as tmp:  # nothing lands unless it loads back
        torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()}, tmp)
        load_model(tmp, model_class=args.model_class, model_kwargs=args.model_kwargs)
    with status("robustest repair: re-checking the repaired model"):
        after = check(result.model, inputs, labels, **check_kwargs)
    summary = RepairSummary(test_name=str(args.model), before=before.counts(), after=after.counts(),
                            saved_path=args.out, after_report=after, result=result)
    print("\n".join(summary.lines()))
    print(f"before: {before.summary()}")
    print(f"after:  {after.summary()}")
    return 0 if after.passed() else 1
