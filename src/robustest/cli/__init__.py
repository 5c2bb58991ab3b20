"""The ``robustest`` command line: one subcommand per library job.

Each subcommand lives in its own module ``robustest.cli.<name>`` with a function
``register(subparsers)`` that adds its parser and sets ``func`` (a callable taking the parsed args and
returning the exit status). Adding a subcommand means adding its module and its name below.

    $ robustest check model.onnx data.npz --eps 0.05 --junit out.xml
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, NoReturn, Optional

SUBCOMMANDS = ("check", "attack", "radius", "repair", "vnnlib", "report")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (the usage text is one ``--help`` away) and status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}. See: {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="robustest", description=__doc__.splitlines()[0])
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"robustest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"robustest.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand whose module is not there yet
            if exc.name != f"robustest.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


#: exit statuses, documented in the README: CI tells a broken input from a robustness regression
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def main(argv: Optional[List[str]] = None) -> int:
    """Run one subcommand. Exit status: 0 the criterion held, 1 it failed, 2 a usage or input error (one
    line on stderr, no traceback), 3 an internal error (a robustest bug: the traceback, to report)."""
    from ..errors import RobustestError

    parser = build_parser()
    args = parser.parse_args(argv)  # argparse's own usage errors exit with 2
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        status = int(args.func(args) or 0)
    except RobustestError as exc:
        print(f"robustest: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file that vanished, a full disk: the environment, not robustest
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"robustest: error: {exc.strerror or exc}{where}. Fix: check the path, its permissions and "
              "the free space", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - anything else is a bug; say so instead of "criterion failed"
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(f"robustest: internal error: {type(exc).__name__}: {_one_line(exc)}. This is a robustest bug; "
              "please report it with the traceback above", file=sys.stderr)
        return EXIT_INTERNAL
    return status if status in (EXIT_PASSED, EXIT_FAILED) else EXIT_INTERNAL


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
