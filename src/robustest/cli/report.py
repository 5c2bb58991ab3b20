"""``robustest report RESULTS.json --html out.html --junit out.xml``: reports from saved results.

``RESULTS.json`` is what ``robustest check --json`` writes: every test's record (verdicts, methods,
times, margins) and the images of its falsified samples.

    $ robustest check net.onnx test.npz --eps 0.05 --json results.json
    $ robustest report results.json --html results.html --junit results.xml

``--merge a.json b.json ...`` joins the files of the jobs of a CI matrix (``pytest --robust-shard=K/N
--robust-json=...``): the slices of each test become one test judged on all its samples (every slice
must be there exactly once), and the exit status is 1 when a test fails its criterion.

    $ robustest report --merge shard-1.json shard-2.json --junit all.xml --html all.html
"""

from __future__ import annotations

import argparse
from typing import Any, List

from ..reporting.merge import FORMAT, results_document

__all__ = ["FORMAT", "read_results", "register", "results_document", "run"]


def read_results(path: str) -> List[Any]:
    """The tests of a results file; a clear :class:`~robustest.errors.InvalidArgument` otherwise."""
    from ..errors import invalid_argument
    from ..reporting.baseline import read_document
    from ..reporting.html import HtmlTest

    fix = "pass the file written by `robustest check --json` or `pytest --robust-json`"
    doc = read_document(path, argument="results", fmt=FORMAT, what="a results document", fix=fix)
    if not isinstance(doc.get("tests"), list):
        raise invalid_argument("results", path, "a list of tests", fix)
    try:
        return [HtmlTest.from_dict(t) for t in doc["tests"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid_argument("results", path, f"complete test records ({type(exc).__name__}: {exc})",
                               "regenerate it with `robustest check --json`") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="turn saved JSON results into HTML and/or JUnit",
                              description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+",
                   help="JSON written by `robustest check --json` or `pytest --robust-json` "
                        "(several with --merge)")
    p.add_argument("--merge", action="store_true",
                   help="merge the slices of each test (CI matrix jobs) and judge it on all its samples")
    p.add_argument("--html", default=None, help="write the HTML report here")
    p.add_argument("--junit", default=None, help="write per-sample JUnit XML here")
    p.add_argument("--title", default="robustest report", help="title of the HTML page")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import invalid_argument

    if not args.html and not args.junit:
        raise invalid_argument("outputs", None, "--html PATH and/or --junit PATH", "name at least one output")
    from ..outputs import check_outputs

    for path in args.results:
        check_outputs({"results": path}, {"--html": args.html, "--junit": args.junit})
    if len(args.results) > 1 and not args.merge:
        raise invalid_argument("results", args.results, "one file, or several with --merge",
                               "pass --merge to join the results of several jobs")
    tests = [t for path in args.results for t in read_results(path)]
    if args.merge:
        from ..reporting.merge import merge_tests

        tests = merge_tests(tests)
    if args.html:
        from ..reporting.html import write_html_tests

        write_html_tests(args.html, tests, title=args.title)
    if args.junit:
        from ..reporting.junit import write_records

        write_records(args.junit, [t.record for t in tests])
    failed = sum(not t.record.passed for t in tests)
    if args.merge:
        for t in tests:
            print(f"{t.record.nodeid}: {t.record.summary}")
    print(f"{len(tests)} test(s), {failed} failed the criterion" + (f"; HTML {args.html}" if args.html else "")
          + (f"; JUnit {args.junit}" if args.junit else ""))
    return 1 if args.merge and failed else 0
