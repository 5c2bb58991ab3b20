"""A pytest plugin for benchmarks/scale.py (``-p _phases``): where one pytest process's time goes.

It stamps wall and CPU time (this process's, ``time.process_time``) at the boundaries of pytest's phases
and appends one JSON line per process (xdist workers included) to the file named by
``ROBUSTEST_PHASES``. The first stamp is taken when pytest loads this plugin, with the CPU the process
had spent by then (the interpreter, pytest's own imports); the phases after it are:

- "configure": the other plugins' start-up and the initial conftest (its imports);
- "collection": collecting the test files;
- "fixtures": the test's setup (its fixtures: the model, the samples; torch when they import it);
- "test": the test's call (the @robust check: robustest's imports, the cache look-up, the ladder);
- "reports": the session's end (the per-sample JUnit file, the workers' records to the controller);
- "summary": the terminal summary hooks (robustest's table and every other plugin's), up to the plugins'
  unconfigure. What the process spends after that (torch's and the interpreter's shutdown) is its total
  CPU time minus these, which the benchmark takes from the operating system.

Not part of robustest: a measuring aid, loaded only by the benchmark.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import List, Tuple

import pytest

_STAMPS: List[Tuple[str, float, float]] = [("start", time.perf_counter(), time.process_time())]


def _stamp(name: str) -> None:
    _STAMPS.append((name, time.perf_counter(), time.process_time()))


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _stamp("configure")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    _stamp("collection")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _stamp("fixtures")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    _stamp("test")


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter: object) -> None:
    _stamp("reports")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _stamp("summary" if any(s[0] == "reports" for s in _STAMPS) else "reports")
    path = os.environ.get("ROBUSTEST_PHASES")
    if not path:
        return
    phases: dict = {"before plugins": {"wall": None, "cpu": _STAMPS[0][2]}}
    for (_, w0, c0), (name, w1, c1) in zip(_STAMPS, _STAMPS[1:]):
        slot = phases.setdefault(name, {"wall": 0.0, "cpu": 0.0})  # a phase per test item, summed
        slot["wall"] += w1 - w0
        slot["cpu"] += c1 - c0
    line = {"process": os.environ.get("PYTEST_XDIST_WORKER", "main"), "phases": phases,
            "torch imported": "torch" in sys.modules,
            "robustest modules": sum(m.startswith("robustest") for m in sys.modules)}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
