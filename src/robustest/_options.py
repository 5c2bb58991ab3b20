"""One table of constraints, one entry per option: what values it takes and the fix to suggest.

The marker (``@robust``), the config file (``[tool.robustest]``, ``robustest.yaml``), the library API
(:func:`robustest.check`) and the CLI all ask this table, so a value is accepted or refused alike
everywhere; only the error class differs (``pytest.UsageError``, :class:`~robustest.errors.ConfigError`,
:class:`~robustest.errors.InvalidArgument`). Torch-free: the plugin reads it at start-up.

    >>> problem("eps", -1.0)
    ('a finite number >= 0', 'pass eps=0.05')
    >>> problem("eps", 0.05) is None
    True
    >>> close_match("esclate", ["escalate", "eps", "timeout"])
    'escalate'
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, TypeVar

from .results import (INCLUDE_MODES, NORM_SPELLINGS, REQUIRE_MODES, RUNGS, SOLVERS, STRENGTH_NAMES,
                      UNKNOWN_MODES)
from .schedules import ProofSettings

__all__ = ["Option", "OPTIONS", "CHECK_OPTIONS", "PLUGIN_SET", "RADIUS_OPTIONS", "MARKER_OWN", "problem", "close_match",
           "unknown_keyword",
           "reject_unknown_keywords", "rung_help", "cli_value", "help_for"]


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and not math.isnan(value)


def _finite(value: Any) -> bool:
    return _number(value) and math.isfinite(value)


def _domain(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        return False
    lo, hi = value
    if isinstance(lo, str) or isinstance(hi, str) or isinstance(lo, bool) or isinstance(hi, bool):
        return False
    if _number(lo) and _number(hi):
        return math.isfinite(lo) and math.isfinite(hi) and lo < hi
    return all(hasattr(v, "shape") or _finite(v) for v in (lo, hi))  # tensors/arrays: checked by LpBall


def _names(value: Any) -> bool:
    return not isinstance(value, str) and isinstance(value, (list, tuple)) and all(
        isinstance(v, str) for v in value)


def _attacks(value: Any) -> bool:
    return (isinstance(value, str) and bool(value)) or (not isinstance(value, str) and isinstance(
        value, (list, tuple)) and len(value) > 0)


def _cache(value: Any) -> bool:
    import os

    if value is None or hasattr(value, "get") and hasattr(value, "put"):  # a VerdictCache (any import)
        return True
    return isinstance(value, os.PathLike) or (isinstance(value, str) and bool(value))


def _indices(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return False
    values = list(value.tolist() if hasattr(value, "tolist") else value)
    return (all(not isinstance(v, bool) and isinstance(v, int) and v >= 0 for v in values)
            and len(set(values)) == len(values))


@dataclass(frozen=True)
class Option:
    """One option: ``accepts(value)`` decides; ``expected`` and ``fix`` go into the error message.

    ``examples`` are (good values, bad values): the suite walks them through every entry point.
    """

    name: str
    accepts: Callable[[Any], bool]
    expected: str
    fix: str
    help: str
    examples: Tuple[Tuple[Any, ...], Tuple[Any, ...]]


def _choice(name: str, choices: Iterable[str], fix: str, help: str, bad: Tuple[Any, ...] = ("bogus", 1)
            ) -> Option:
    values = tuple(choices)
    return Option(name, lambda v: isinstance(v, str) and v in values, "one of " + ", ".join(map(repr, values)),
                  fix, help, ((values[0],), bad))


def rung_help() -> str:
    """The rungs in ladder order, for help strings: ``attack, ibp, crown, lp, milp or bab``."""
    return ", ".join(RUNGS[:-1]) + " or " + RUNGS[-1]


_TABLE = (
    Option("eps", lambda v: _finite(v) and v >= 0, "a finite number >= 0", "pass eps=0.05",
           "radius of the threat model", ((0.0, 0.05, 1), (-1.0, float("nan"), float("inf"), "0.1", True))),
    Option("norm", lambda v: isinstance(v, str) and v in NORM_SPELLINGS, "one of 'linf', 'l2', 'l1'",
           "pass norm='linf'", "the threat model's norm", (("linf", "l2", "l1"), ("l3", 2, None))),
    _choice("escalate", RUNGS, "pass escalate='attack' to only attack, or a proof rung such as 'crown'",
            f"highest rung of the ladder: {rung_help()}"),
    Option("timeout", lambda v: _number(v) and v > 0, "a number of seconds > 0 (inf: no limit)",
           "pass timeout=10.0", "time budget per sample, in seconds",
           ((0.5, 10, float("inf")), (0, -1.0, float("nan"), "10", True))),
    Option("seed", lambda v: not isinstance(v, bool) and isinstance(v, int) and v >= 0, "an integer >= 0",
           "pass seed=0", "base seed", ((0, 7), (-1, 1.5, "3", True))),
    Option("domain", _domain, "a pair (lo, hi) with lo < hi, or None for unbounded inputs",
           "pass domain=(0.0, 1.0)", "valid input range", (((0.0, 1.0), None), ((1.0, 0.0), "0,1", (0.0,)))),
    _choice("solver", SOLVERS, "pass solver='highs' (installed with robustest) or solver='gurobi'",
            "LP/MILP solver", ("cplex", 3)),
    Option("attacks", _attacks, "'auto' or a non-empty list of attack names", "pass attacks='auto'",
           "falsification attacks", (("auto", ["fgsm", "pgd"]), ("", [], 3))),
    Option("suppress_health_check", _names, "a list of health check names (not a single string)",
           "pass suppress_health_check=['probabilities']", "health checks to silence",
           ((["probabilities"], ()), ("probabilities", [1]))),
    _choice("strength", STRENGTH_NAMES,
            "pass strength='standard' (or 'fast' / 'thorough' for a shorter / longer attack sequence)",
            "length of the default attack sequence"),
    Option("alpha_crown", lambda v: isinstance(v, bool), "True or False",
           "pass alpha_crown=True to optimise CROWN's slopes", "optimise CROWN's ReLU slopes",
           ((True, False), ("no", 1, None))),
    Option("provers", lambda v: v is None or isinstance(v, ProofSettings), "a robustest.schedules.ProofSettings",
           "pass provers=ProofSettings(alpha_steps=40) (from robustest.schedules), or leave it out",
           "the provers' knobs (steps, shares of time)", ((None, ProofSettings()), ({"alpha_steps": 40}, 3))),
    # the pass criterion and the marker's own
    Option("min_pass", lambda v: _finite(v) and 0 <= v <= 1, "a fraction between 0 and 1",
           "pass min_pass=0.9 for 90% of the samples", "share of samples that must pass",
           ((0, 0.9, 1.0), (1.5, -0.1, "0.9", True))),
    _choice("require", REQUIRE_MODES, "pass require='not_falsified' (unknown passes) or require='certified'",
            "what passing means for a sample"),
    Option("min_radius", lambda v: _finite(v) and v > 0, "a finite number > 0", "pass min_radius=0.1",
           "judge robustest.radius at this radius", ((0.1,), (0, -1.0, "0.1"))),
    Option("model", lambda v: isinstance(v, str) and bool(v), "the name of a fixture the test requests",
           "pass model='<fixture name>'", "the model's fixture", (("net",), ("", 3))),
    Option("data", lambda v: isinstance(v, str) and bool(v), "the name of a fixture the test requests",
           "pass data='<fixture name>'", "the samples' fixture", (("digits",), ("", 3))),
    # robustest.radius (the marker with min_radius)
    Option("method", lambda v: isinstance(v, str) and bool(v), "an attack of robustest.radius such as 'auto'",
           "pass method='auto'", "radius search method", (("auto",), ("", 3))),
    Option("exact", lambda v: isinstance(v, bool), "True or False", "pass exact=True", "exact MILP minima",
           ((True, False), ("yes", 1))),
    Option("lower_steps", lambda v: not isinstance(v, bool) and isinstance(v, int) and v >= 0,
           "an integer >= 0", "pass lower_steps=8", "bisection steps of the certified radius",
           ((0, 8), (-1, 2.5, "8"))),
    # scale-out and re-runs (robustest.cache, plugin.scale)
    Option("cache", _cache,
           "'readwrite', 'read', 'write', 'off', a directory or a robustest.cache.VerdictCache",
           "pass cache='readwrite' (the default in pytest) or cache='off' to recompute every verdict",
           "the verdict cache (.robustest_cache/): off, read, write, readwrite, or its directory",
           (("readwrite", "off", None, ".robustest_cache"), ("", 3, True))),
    Option("indices", _indices, "distinct integers >= 0, one per sample (their positions in the whole set)",
           "pass indices=range(100, 200) for the samples 100..199 of a data set, or leave it out",
           "the samples' positions in the whole set (they key the random streams)",
           ((None, range(3), [0, 1, 2]), ("012", 1.5, [1, 1, 2], [-1, 0, 1]))),
    Option("shards", lambda v: v == "auto" or (not isinstance(v, bool) and isinstance(v, int) and v >= 1),
           "an integer >= 1 or 'auto' (one per pytest-xdist worker)", "pass shards=4 or shards='auto'",
           "run a @robust test as this many items, each a slice of its samples",
           ((1, 4, "auto"), (0, -1, 2.5, "four", True))),
    Option("baseline_tolerance", lambda v: _finite(v) and v >= 0,
           "a fraction >= 0 (0.1: a certified margin may drop by 10%)", "pass baseline_tolerance=0.1",
           "how far a certified margin may drop below the baseline's before the test fails",
           ((0, 0.1, 1), (-0.1, float("nan"), "0.1"))),
    # reporting settings
    _choice("unknown", UNKNOWN_MODES, "pass unknown='skipped'", "how unknown samples appear in JUnit"),
    _choice("junit_include", INCLUDE_MODES, "pass junit_include='all'", "samples listed in the JUnit file"),
)

#: every option by name
OPTIONS: Dict[str, Option] = {o.name: o for o in _TABLE}

#: the keyword options of :func:`robustest.check` (besides model, inputs, labels)
CHECK_OPTIONS: Tuple[str, ...] = ("eps", "norm", "escalate", "timeout", "domain", "seed", "solver", "attacks",
                                  "suppress_health_check", "alpha_crown", "provers", "strength", "indices",
                                  "cache")

#: options of :func:`robustest.check` that the plugin sets itself (shards, ``--robust-cache``), so they are
#: not marker arguments
PLUGIN_SET: Tuple[str, ...] = ("indices", "cache")

#: the options the marker passes on to :func:`robustest.radius` when it has ``min_radius``
#: (``escalate`` names the certifier of the lower radius)
RADIUS_OPTIONS: Tuple[str, ...] = ("norm", "escalate", "timeout", "domain", "seed", "method", "exact", "lower_steps")

#: the marker's own arguments (the rest are :func:`robustest.check`'s)
MARKER_OWN: Tuple[str, ...] = ("min_pass", "require", "model", "data", "min_radius", "shards")


def cli_value(name: str, convert: Callable[[str], Any] = str) -> Callable[[str], Any]:
    """An argparse ``type=`` for option ``name``: converts the text, then checks it against the table, so
    the CLI refuses what the API refuses (with the same expectation and fix)."""

    def parse(text: str) -> Any:
        import argparse

        try:
            value = convert(text)
        except ValueError:
            value = text
        found = problem(name, value)
        if found is not None:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid: expected {found[0]}. Fix: {found[1]}")
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def help_for(name: str) -> str:
    """The help text of option ``name`` (the table's)."""
    return OPTIONS[name].help


def problem(name: str, value: Any) -> Optional[Tuple[str, str]]:
    """``(expected, fix)`` when ``value`` is not valid for option ``name``; None when it is (or the
    option is not in the table)."""
    option = OPTIONS.get(name)
    if option is None or option.accepts(value):
        return None
    return option.expected, option.fix


def close_match(name: str, valid: Iterable[str]) -> Optional[str]:
    """The valid name closest to a misspelt one, or None."""
    found = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_keyword(name: str, valid: Iterable[str], where: str) -> str:
    """The message for an unknown keyword: names it, the closest valid one and all valid ones."""
    valid = list(valid)
    near = close_match(name, valid)
    fix = f"did you mean {near!r}?" if near else f"remove {name!r} or correct its spelling"
    return f"{where}: unknown argument {name!r}: valid arguments are {', '.join(valid)}. Fix: {fix}"


F = TypeVar("F", bound=Callable[..., Any])


def reject_unknown_keywords(fn: F) -> F:
    """Decorate a keyword-only API function so that a misspelt keyword is an
    :class:`~robustest.errors.InvalidArgument` naming the close match (Python's own TypeError names none).
    The signature (and ``help()``) stays the function's own."""
    params = inspect.signature(fn).parameters
    keywords = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
    allowed = set(params)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for name in kwargs:
            if name not in allowed:
                from .errors import InvalidArgument

                raise InvalidArgument(unknown_keyword(name, keywords, f"{fn.__name__}()"))
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
