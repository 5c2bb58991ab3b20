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
from typing import List, Optional

SUBCOMMANDS = ("check", "attack", "radius", "repair", "vnnlib", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robustest", description=__doc__.splitlines()[0])
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


def main(argv: Optional[List[str]] = None) -> int:
    from ..errors import RobustestError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RobustestError as exc:
        print(f"robustest: error: {exc}", file=sys.stderr)
        return 2
