"""The report formats, one registry: what the plugin and every CLI command write goes through here.

Each format is a writer ``(path, tests, options)`` over the same material: the tests' records
(:class:`~robustest.reporting.TestRecord`) and, where the front door kept them, their pictures
(:class:`~robustest.reporting.html.HtmlTest`). Adding a format is its writer (one file in
``reporting/``) and one line of :data:`FORMATS`; the plugin's session end, ``robustest check`` and
``robustest report`` then offer it alike.

    >>> sorted(FORMATS)
    ['html', 'json', 'junit']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from . import TestRecord
    from .html import HtmlTest


@dataclass(frozen=True)
class RecordOnly:
    """A test for the JUnit writer, which needs its record only: unlike
    :class:`~robustest.reporting.html.HtmlTest` it costs no import of numpy and the HTML modules (the
    pytest-xdist controller merges and writes the per-sample JUnit of thousands of samples this way)."""

    record: "TestRecord"


@dataclass(frozen=True)
class ReportOptions:
    """How the reports render: the HTML title; for JUnit, how unknown samples appear and which samples
    are listed (see :mod:`robustest.reporting.junit`)."""

    title: str = "robustest report"
    unknown: str = "skipped"
    include: str = "all"


def _junit(path: str, tests: Sequence["HtmlTest"], options: ReportOptions) -> None:
    from .junit import write_records

    write_records(path, [t.record for t in tests], unknown=options.unknown, include=options.include)


def _html(path: str, tests: Sequence["HtmlTest"], options: ReportOptions) -> None:
    from .html import write_html_tests

    write_html_tests(path, list(tests), title=options.title)


def _json(path: str, tests: Sequence["HtmlTest"], options: ReportOptions) -> None:
    from ..atomic import atomic_write_text
    from .merge import results_document

    atomic_write_text(path, json.dumps(results_document(list(tests))))


Writer = Callable[[str, Sequence["HtmlTest"], ReportOptions], None]

#: format name -> writer (each writes atomically)
FORMATS: Dict[str, Writer] = {"junit": _junit, "html": _html, "json": _json}


def write_reports(paths: Mapping[str, Optional[str]], tests: Sequence["HtmlTest"],
                  options: ReportOptions = ReportOptions()) -> List[str]:
    """Write every format whose path is given (None: not wanted); returns the paths written, in order."""
    written = []
    for name, path in paths.items():
        if path:
            FORMATS[name](path, tests, options)
            written.append(path)
    return written


__all__ = ["FORMATS", "RecordOnly", "ReportOptions", "write_reports"]
