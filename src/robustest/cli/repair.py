"""``robustest repair MODEL DATA --eps E --out FILE``: repair a model until its robustness check passes.

    $ robustest repair weights.pt test.npz --model-class mypkg.nets:Net --eps 0.1 --train train.pt \\
          --out repaired.pt

The model is checked on DATA at ``--eps``; then the counterexample-guided repair runs rounds (attack
DATA, add the counterexamples as cuts, QP step, re-check) until the check passes, ``--rounds`` or
``--time-budget`` run out, or held-out clean accuracy would drop by more than ``--tolerance``. The loss
constraint uses ``--train`` (a share is held out to measure accuracy unless ``--holdout`` is given;
without ``--train`` a warning says accuracy cannot be protected). ``--method`` picks auto (default: guided,
then adversarial fine-tuning from the original when the guided model is not accepted as a fix), guided,
one-shot or adversarial-finetune. The repaired state dict goes to ``--out`` only when it is accepted as a
fix (the check passes, held-out clean accuracy within the tolerance, held-out robust accuracy not
lower), or with ``--save-anyway``; never over MODEL or DATA, nor over an existing file unless
``--overwrite``, and it must load back into the model class. Prints the before/after table. Exit status
0 when the repaired model passes and is accepted, 1 otherwise (the best model's remaining failures are
printed), 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def register(subparsers: Any) -> None:
    from .._options import cli_value, help_for
    from ..io.args import add_data_arguments, add_model_arguments
    from ..repair.guided_settings import METHODS, GuidedSettings

    g = GuidedSettings()
    p = subparsers.add_parser("repair", help="repair a model until its robustness check passes",
                              description=__doc__.splitlines()[0])
    add_model_arguments(p)
    p.add_argument("--module", dest="model_class", default=None, metavar="PKG.MOD:CLASS",
                   help="same as --model-class")
    add_data_arguments(p)
    p.add_argument("--eps", type=float, required=True, help="radius of the threat model")
    p.add_argument("--norm", default="linf", help="linf (default), l2 or l1")
    p.add_argument("--out", required=True, help="file for the repaired state dict (.pt)")
    p.add_argument("--overwrite", action="store_true", help="allow replacing an existing --out file")
    p.add_argument("--train", default=None, help="training data for the loss constraint (and the held-out part)")
    p.add_argument("--holdout", default=None, help="held-out data to measure accuracy on (default: part of --train)")
    p.add_argument("--method", choices=METHODS, default=METHODS[0], help="auto (default: guided, then "
                   "adversarial fine-tuning when the guided model is not a fix), guided, one-shot or "
                   "adversarial-finetune")
    p.add_argument("--rounds", type=int, default=g.rounds, help=f"rounds at most (default {g.rounds})")
    p.add_argument("--time-budget", dest="time_budget", type=float, default=g.time_budget,
                   help=f"seconds for the rounds (default {g.time_budget:g})")
    p.add_argument("--tolerance", type=float, default=g.accuracy_tolerance,
                   help=f"largest held-out clean accuracy drop, a fraction (default {g.accuracy_tolerance:g})")
    p.add_argument("--iterations", type=int, default=g.iterations, help=f"master QPs per round (default "
                   f"{g.iterations})")
    p.add_argument("--margin", type=float, default=g.margin, help=f"logit margin the cuts ask for (default "
                   f"{g.margin:g})")
    p.add_argument("--plain-cuts", dest="robust_linearisation", action="store_false",
                   help="plain cuts instead of the robust linearisation (eq. 18: each cut tightened by eps times "
                        "the input gradient's dual norm), which is the default")
    p.add_argument("--save-anyway", dest="save_anyway", action="store_true",
                   help="write --out even when the model is not accepted as a fix")
    p.add_argument("--min-pass", dest="min_pass", type=cli_value("min_pass", float), default=1.0,
                   help=help_for("min_pass"))
    p.add_argument("--require", type=cli_value("require"), default="not_falsified", help=help_for("require"))
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
    from ..errors import InvalidArgument, invalid_argument
    from ..io.args import data_from_args, model_from_args
    from ..io.data import load_data
    from ..io.models import load_model
    from ..outputs import check_outputs
    from ..repair.api import repair
    from ..repair.guided_settings import GuidedSettings
    from ..repair.guided_types import GuidedRepairResult, RepairTest
    from ..repair.pytest_support import RepairSummary

    check_outputs({"model": args.model, "data": args.data, "train": args.train, "holdout": args.holdout},
                  {"--out": args.out})  # before any work: not an input, writable
    if args.model_class is None:
        raise invalid_argument("--model-class", None, "the Python class of the model (repair writes a state "
                               "dict, and TorchScript/ONNX graphs cannot be evaluated at other weights)",
                               "save model.state_dict() and pass --model-class package.module:Class")
    if os.path.exists(args.out) and not args.overwrite:
        raise invalid_argument("--out", args.out, "a path that does not exist yet",
                               "choose another path or pass --overwrite")
    try:
        settings = GuidedSettings(rounds=args.rounds, time_budget=args.time_budget,
                                  accuracy_tolerance=args.tolerance, iterations=args.iterations, margin=args.margin,
                                  robust_linearisation=args.robust_linearisation, save_anyway=args.save_anyway)
    except InvalidArgument as exc:  # name the flag, not only the settings field
        flags = {"rounds": "--rounds", "time_budget": "--time-budget", "accuracy_tolerance": "--tolerance",
                 "iterations": "--iterations", "margin": "--margin"}
        field = str(exc).split("=", 1)[0].removeprefix("GuidedSettings.")
        raise InvalidArgument(f"{flags.get(field, field)}: {exc}") from None
    model = model_from_args(args)
    inputs, labels = data_from_args(args)
    train = load_data(args.train) if args.train else None
    holdout = load_data(args.holdout) if args.holdout else None
    domain = None if args.no_domain else tuple(args.domain)
    check_kwargs = dict(eps=args.eps, norm=args.norm, escalate=args.escalate, timeout=args.timeout,
                        domain=domain, seed=args.seed)
    from ..progress import Progress, tell
    from .progress import status

    test = RepairTest(inputs, labels, check=check_kwargs, min_pass=args.min_pass, require=args.require)
    with status("robustest repair: checking the model"):
        before = check(model, inputs, labels, **check_kwargs)
    if test.passes(before):
        print(f"robustest repair: nothing to fix: the check passes at eps={args.eps:g} ({before.summary()})")
        return 0
    with status("robustest repair", budget=settings.time_budget):
        tell(Progress(task="repair", step=f"{args.method} repair rounds", decided=0, total=len(labels)))
        result = repair(model, before, train, test=test, method=args.method, holdout=holdout, guided=settings,
                        domain=domain, seed=args.seed)
    assert isinstance(result, GuidedRepairResult)
    saved = None
    if result.accepted:
        with atomic_path(args.out, suffix=Path(args.out).suffix) as tmp:  # nothing lands unless it loads back
            torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()}, tmp)
            load_model(tmp, model_class=args.model_class, model_kwargs=args.model_kwargs)
        saved = args.out
    summary = RepairSummary(test_name=str(args.model), before=before.counts(), after=result.after.counts(),
                            saved_path=saved, after_report=result.after, result=result)
    print("\n".join(summary.lines()))
    print(f"before: {before.summary(min_pass=args.min_pass, require=args.require)}")
    print(f"after:  {result.after.summary(min_pass=args.min_pass, require=args.require)}")
    if saved is None:
        print(f"robustest repair: {args.out} not written ({result.status}; --save-anyway writes it)")
    return 0 if result.passed and saved is not None else 1
