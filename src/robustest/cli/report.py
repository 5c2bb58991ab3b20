"""``robustest report RESULTS.json --html out.html --junit out.xml``: reports from saved results.

``RESULTS.json`` is what ``robustest check --json`` writes: every test's record (verdicts, methods,
times, margins) and the images of its falsified samples.

    $ robustest check net.onnx test.npz --eps 0.05 --json results.json
    $ robustest report results.json --html results.html --junit results.xml
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List, Sequence

FORMAT = "robustest-results/1"


def results_document(tests: Sequence[Any]) -> Dict[str, Any]:
    """The JSON document for a list of :class:`~robustest.reporting.html.HtmlTest`."""
    from .. import __version__

    return {"format": FORMAT, "robustest": __version__, "tests": [t.to_dict() for t in tests]}


def read_results(path: str) -> List[Any]:
    """The tests of a results file; a clear :class:`~robustest.errors.InvalidArgument` otherwise."""
    from ..errors import invalid_argument
    from ..reporting.html import HtmlTest

    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise invalid_argument("results", path, f"a readable file ({exc.strerror})", "check the path") from None
    except UnicodeDecodeError:
        raise invalid_argument("results", path, "a UTF-8 JSON text file, not a binary one",
                               "pass the file written by `robustest check --json`") from None
    except json.JSONDecodeError as exc:
        raise invalid_argument("results", path, f"JSON (line {exc.lineno}: {exc.msg})",
                               "pass the file written by `robustest check --json`") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tests"), list):
        raise invalid_argument("results", path, f"a results document with format {FORMAT!r}",
                               "pass the file written by `robustest check --json`")
    try:
        return [HtmlTest.from_dict(t) for t in doc["tests"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid_argument("results", path, f"complete test records ({type(exc).__name__}: {exc})",
                               "regenerate it with `robustest check --json`") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="turn saved JSON results into HTML and/or JUnit",
                              description=__doc__.splitlines()[0])
    p.add_argument("results", help="JSON written by `robustest check --json`")
    p.add_argument("--html", default=None, help="write the HTML report here")
    p.add_argument("--junit", default=None, help="write per-sample JUnit XML here")
    p.add_argument("--title", default="robustest report", help="title of the HTML page")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import invalid_argument

    if not args.html and not args.junit:
        raise invalid_argument("outputs", None, "--html PATH and/or --junit PATH", "name at least one output")
    from ..outputs import check_outputs

    check_outputs({"results": args.results}, {"--html": args.html, "--junit": args.junit})
    tests = read_results(args.results)
    if args.html:
        from ..reporting.html import write_html_tests

        write_html_tests(args.html, tests, title=args.title)
    if args.junit:
        from ..reporting.junit import write_records

        write_records(args.junit, [t.record for t in tests])
    failed = sum(not t.record.passed for t in tests)
    print(f"{len(tests)} test(s), {failed} failed the criterion" + (f"; HTML {args.html}" if args.html else "")
          + (f"; JUnit {args.junit}" if args.junit else ""))
    return 0
