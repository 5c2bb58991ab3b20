"""``robustest check MODEL DATA --eps E``: the robustness check as a CI gate, without pytest.

    $ robustest check net.onnx test.npz --eps 0.03 --eps 0.05 --escalate crown --min-pass 0.9 \\
          --junit robustness.xml --html robustness.html --json robustness.json

Each ``--eps`` is one check of every sample (attacks, then certifiers up to ``--escalate``). The exit
status is 0 when every check meets the criterion (``--min-pass`` share of samples passing, where passing
means ``--require``: not falsified (default) or certified), 1 when one does not, 2 on bad input, 3 on
a robustest bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple


def register(subparsers: Any) -> None:
    from .._options import cli_value, help_for
    from ..io.args import add_data_arguments, add_model_arguments

    p = subparsers.add_parser("check", help="check robustness of a model on a data file (CI gate)",
                              description=__doc__.splitlines()[0])
    add_model_arguments(p)
    add_data_arguments(p)
    p.add_argument("--eps", type=cli_value("eps", float), action="append", required=True,
                   help="radius of the threat model; repeat for several (gives a robust accuracy curve)")
    p.add_argument("--norm", type=cli_value("norm"), default="linf", help="linf (default), l2 or l1")
    p.add_argument("--escalate", type=cli_value("escalate"), default="attack",
                   help=help_for("escalate") + " (default attack)")
    p.add_argument("--timeout", type=cli_value("timeout", float), default=10.0,
                   help="seconds per sample for the whole ladder")
    p.add_argument("--domain", nargs=2, type=float, default=(0.0, 1.0), metavar=("LO", "HI"),
                   help="valid input range (default 0 1)")
    p.add_argument("--no-domain", action="store_true", help="inputs are unbounded (no clipping)")
    p.add_argument("--seed", type=cli_value("seed", int), default=0)
    p.add_argument("--alpha-crown", action="store_true", help=help_for("alpha_crown"))
    p.add_argument("--strength", type=cli_value("strength"), default="standard",
                   help=help_for("strength") + " (default standard)")
    p.add_argument("--solver", type=cli_value("solver"), default="highs", help=help_for("solver"))
    p.add_argument("--min-pass", type=cli_value("min_pass", float), default=1.0,
                   help="share of samples that must pass (default 1)")
    p.add_argument("--require", type=cli_value("require"), default="not_falsified",
                   help="what passing means for a sample (default not_falsified)")
    p.add_argument("--batch", type=int, default=32,
                   help="samples per progress step and per task of --executor (default 32)")
    p.add_argument("--executor", default="local", metavar="local|pool|ray[=ADDRESS]",
                   help="where the batches run: this process (default), a local process pool, or Ray tasks "
                        "(a local Ray with --workers CPUs, or the cluster at ADDRESS); same verdicts")
    p.add_argument("--cache", type=cli_value("cache"), default=None, metavar="DIR|MODE",
                   help="reuse decided verdicts from the verdict cache in DIR (or a mode: read, write, "
                        "readwrite in ./.robustest_cache); default: no cache")
    p.add_argument("--workers", type=int, default=2,
                   help="processes of the pool / CPUs of a local Ray (default 2)")
    p.add_argument("--junit", default=None, help="write per-sample JUnit XML here")
    p.add_argument("--html", default=None, help="write the HTML report here")
    p.add_argument("--json", dest="json_path", default=None,
                   help="write the results as JSON here (`robustest report` turns it into HTML/JUnit)")
    p.add_argument("--name", default=None, help="test name in the reports (default: the model file name)")
    p.set_defaults(func=run)


def check_slice(model: Any, inputs: Any, labels: Any, start: int, options: Dict[str, Any]) -> Any:
    """:func:`robustest.check` of the samples ``start, start + 1, ...`` of the data file (a task)."""
    from ..api import check

    return check(model, inputs, labels, indices=range(start, start + len(labels)), **options)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..errors import invalid_argument
    from ..executors import parse_executor
    from ..io.args import data_from_args, model_from_args
    from ..reporting import record_from_report
    from ..reporting.html import tests_from_reports
    from ..results import Report
    from .progress import progress

    from ..outputs import check_outputs

    if args.batch < 1:
        raise invalid_argument("--batch", args.batch, "a number of samples >= 1", "pass --batch 32")
    repeated = sorted({e for e in args.eps if args.eps.count(e) > 1})
    if repeated:
        raise invalid_argument("--eps", repeated[0], "each radius once (repeated, every sample would be "
                               "counted once per copy)", f"drop the repeated --eps {repeated[0]:g}")
    check_outputs({"model": args.model, "data": args.data},
                  {"--junit": args.junit, "--html": args.html, "--json": args.json_path})
    executor = parse_executor(args.executor, workers=args.workers)
    model = model_from_args(args)
    inputs, labels = data_from_args(args)
    domain = None if args.no_domain else tuple(args.domain)
    name = args.name or Path(args.model).name
    results: List[Tuple[str, Report]] = []
    chunks = [(e, i) for e in args.eps for i in range(0, len(labels), args.batch)]
    parts: dict = {}
    options = dict(norm=args.norm, escalate=args.escalate, timeout=args.timeout, domain=domain,
                   seed=args.seed, solver=args.solver, alpha_crown=args.alpha_crown, strength=args.strength,
                   cache=args.cache)
    calls = [(inputs[start:start + args.batch], labels[start:start + args.batch], start,
              {**options, "eps": eps}) for eps, start in chunks]
    with progress(total=len(labels) * len(args.eps), desc="robustest check", unit="sample") as bar:
        reports = executor.map(check_slice, calls, shared=(model,),
                               done=lambda i, r: bar.update(len(r.samples)))
    for (eps, start), rep in zip(chunks, reports):
        parts.setdefault(eps, []).append((start, rep))
    for eps in args.eps:
        reps = parts[eps]
        samples = tuple(replace(s, index=s.index + start) for start, r in reps for s in r.samples)
        first = reps[0][1]
        warnings = tuple(dict.fromkeys(w for _, r in reps for w in r.warnings))
        merged = Report(samples=samples, ball=first.ball, escalate=first.escalate, seed=first.seed,
                        seconds=sum(r.seconds for _, r in reps), warnings=warnings)
        results.append((f"{name}[eps={eps:g}]", merged))
    records = [record_from_report(n, r, min_pass=args.min_pass, require=args.require,
                                  properties=[("group", name), ("model", str(args.model)),
                                              ("data", str(args.data))], notes=r.warnings)
               for n, r in results]
    for (n, r), rec in zip(results, records):
        for w in r.warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(f"{n}: {rec.summary}")
    if args.junit:
        from ..reporting.junit import write_records

        write_records(args.junit, records)
    if args.html or args.json_path:
        tests = tests_from_reports(results, [inputs] * len(results), min_pass=args.min_pass,
                                   require=args.require)
        tests = [replace(t, record=rec) for t, rec in zip(tests, records)]
        if args.html:
            from ..reporting.html import write_html_tests

            write_html_tests(args.html, tests, title=f"robustest check: {name}")
        if args.json_path:
            from ..atomic import atomic_write_text
            from ..reporting.merge import results_document

            atomic_write_text(args.json_path, json.dumps(results_document(tests)))
    return 0 if all(rec.passed for rec in records) else 1
