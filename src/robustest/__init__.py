"""robustest: robustness claims about PyTorch classifiers as ordinary pytest tests.

    >>> import robustest                                            # doctest: +SKIP
    >>> report = robustest.check(model, inputs, labels, eps=0.05)   # doctest: +SKIP
    >>> report.verdicts[:3]                                         # doctest: +SKIP
    ['certified', 'falsified', 'unknown']

The public names are loaded lazily so that importing the package (and its pytest plugin) does not
import torch until something is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY = {
    "check": "robustest.api",
    "attack": "robustest.api",
    "bounds": "robustest.certify.api",
    "repair": "robustest.repair.api",
    "radius": "robustest.minimal.api",
    "robust": "robustest.plugin.marker",
    "LpBall": "robustest.spec",
    "load_model": "robustest.io.models",
    "load_data": "robustest.io.data",
    "write_html": "robustest.reporting.html",
    "write_junit": "robustest.reporting.junit",
    "Report": "robustest.results",
    "SampleResult": "robustest.results",
    "AttackResult": "robustest.results",
    "Bounds": "robustest.results",
    "RepairResult": "robustest.repair.result",
    "RepairTest": "robustest.repair.guided_types",
    "GuidedRepairResult": "robustest.repair.guided_types",
    "GuidedSettings": "robustest.repair.guided_settings",
    "RadiusReport": "robustest.minimal.result",
    "HealthCheck": "robustest.checks",
    "HealthCheckWarning": "robustest.checks",
    "RobustestError": "robustest.errors",
    "InvalidArgument": "robustest.errors",
    "ShapeError": "robustest.errors",
    "ConfigError": "robustest.errors",
    "ModelError": "robustest.errors",
    "UnsupportedLayer": "robustest.errors",
    "SolverError": "robustest.errors",
    "SolverUnavailable": "robustest.errors",
    "HealthCheckError": "robustest.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import attack, check
    from .errors import (ConfigError, HealthCheckError, InvalidArgument, ModelError, RobustestError,
                         ShapeError, SolverError, SolverUnavailable, UnsupportedLayer)
    from .plugin.marker import robust
    from .results import AttackResult, Bounds, Report, SampleResult
    from .spec import LpBall


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'robustest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
