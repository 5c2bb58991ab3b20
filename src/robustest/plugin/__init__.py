"""The robustest pytest plugin (registered through the ``pytest11`` entry point): thin by design.

- :mod:`.hooks`: the ``--robust-...`` options, the run's settings and records (one session state in the
  config's stash), the marker's run, xdist's record transport and the report writing at the end;
- :mod:`.marker`: ``@robust(...)`` and how a test hands over its model and samples;
- :mod:`.fixture`: the ``robustness`` fixture for checks inside a test body.

All the work is :func:`robustest.check`; loading the plugin imports no torch.
"""

from .fixture import Robustness, robustness
from .hooks import (
    pytest_addoption,
    pytest_configure,
    pytest_report_header,
    pytest_runtest_call,
    pytest_runtest_makereport,
    pytest_runtest_setup,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

__all__ = ["Robustness", "robustness", "pytest_addoption", "pytest_configure", "pytest_report_header",
           "pytest_runtest_call",
           "pytest_runtest_makereport", "pytest_runtest_setup", "pytest_sessionfinish",
           "pytest_terminal_summary", "pytest_testnodedown"]
