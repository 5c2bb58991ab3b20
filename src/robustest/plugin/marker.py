"""``@robust(...)``: declare that a pytest test's model is robust on the test's samples.

How a test hands over its model and samples: it asks for them as fixtures, as any pytest test does.

- the **model** is the fixture named ``model`` (or the one named by ``@robust(model="net")``);
- the **samples** are the one other argument whose value is an ``(inputs, labels)`` pair or a dict with
  ``"inputs"`` and ``"labels"`` (or the one named by ``@robust(data="digits")``). When several arguments
  look like samples, the test errors and asks you to name one.

The test body runs first (ordinary asserts); if it passes, the plugin runs :func:`robustest.check` on
the model and samples and fails the test, with one line per failing sample, when the pass criterion is
not met. A marker argument left out is taken from the settings (``--robust-...`` options, the config
file's profile), and ``eps``/``norm`` from a test argument of that name, so a parametrized ``eps`` works::

    from robustest import robust

    @robust(eps=0.05, norm="linf", min_pass=0.9)
    def test_mlp_is_robust(model, digits):
        assert model.training is False

    @pytest.mark.parametrize("eps", [0.01, 0.03])
    @robust(escalate="attack", data="digits")
    def test_mlp_over_eps(model, digits, eps):
        pass

``@robust(...)`` is exactly ``@pytest.mark.robust(...)``; markers on a class or module give defaults that
a closer marker overrides key by key. Arguments: ``eps`` (radius, >= 0), ``norm`` ("linf", "l2", "l1"),
``escalate`` (highest rung, see :data:`robustest.results.RUNGS`), ``timeout`` (seconds per sample),
``domain`` ((lo, hi) or None), ``min_pass`` (fraction of samples that must pass, default 1.0),
``require`` ("not_falsified": unknown counts as passing; "certified": only certified samples pass),
``model``/``data`` (fixture names), ``seed`` (default: derived from the run's seed and the test id),
``shards`` (run the test as this many pytest items, each a slice of the samples, for pytest-xdist; see
:mod:`robustest.plugin.scale`); the other keywords are exactly those of :func:`robustest.check`
(but ``indices`` and ``cache``, which the plugin sets) (e.g. ``solver="highs"``, ``alpha_crown=True``),
all checked against the option table (:mod:`robustest._options`) that the API and the config use. Misuse raises
``pytest.UsageError`` naming the argument, its value and the fix.

``min_radius=r`` (instead of ``eps``) runs :func:`robustest.radius` and judges it at ``r``: a sample is
falsified when its smallest (re-checked) adversarial input is within ``r``, certified when the
certifier named by ``escalate`` proved a radius >= ``r``, unknown otherwise. Other keywords then go to
:func:`robustest.radius` (e.g. ``method="deepfool"``).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Dict, Mapping, Optional, Tuple

import pytest

from .._options import CHECK_OPTIONS, MARKER_OWN, PLUGIN_SET, RADIUS_OPTIONS, problem, unknown_keyword

__all__ = ["robust", "marker_keywords", "usage_error", "is_marker_usage_error", "validate_marker_args",
           "marker_args", "model_and_samples", "as_samples", "radius_report"]

_TAG = "_robustest_usage"


def usage_error(message: str) -> pytest.UsageError:
    """A ``pytest.UsageError`` for a misused ``@robust`` marker or ``robustness`` call, tagged so that
    the plugin reports just its message instead of a traceback into the plugin."""
    exc = pytest.UsageError(message)
    setattr(exc, _TAG, True)
    return exc


def is_marker_usage_error(exc: BaseException) -> bool:
    return isinstance(exc, pytest.UsageError) and getattr(exc, _TAG, False)

_UNIT: Tuple[float, float] = (0.0, 1.0)


def robust(eps: Optional[float] = None, *, norm: Optional[str] = None, escalate: Optional[str] = None,
           timeout: Optional[float] = None, domain: Any = _UNIT, min_pass: Optional[float] = None,
           require: Optional[str] = None, model: Optional[str] = None, data: Optional[str] = None,
           seed: Optional[int] = None, min_radius: Optional[float] = None,
           **more: Any) -> pytest.MarkDecorator:
    """The ``robust`` marker with its arguments checked now (a typo fails at import, not at run time).

    Only the arguments you pass are stored, so options and config-file settings still apply to the
    rest (``norm`` defaults to "linf", ``domain`` to (0, 1), ``min_pass`` to 1.0, ``require`` to
    "not_falsified", ``escalate``/``timeout``/``seed`` to the run's settings).

        >>> @robust(eps=0.05, norm="l2", min_pass=0.9)           # doctest: +SKIP
        ... def test_digits(model, digits): ...
    """
    given: Dict[str, Any] = {k: v for k, v in dict(
        eps=eps, norm=norm, escalate=escalate, timeout=timeout, min_pass=min_pass, require=require,
        model=model, data=data, seed=seed, min_radius=min_radius).items() if v is not None}
    if domain is not _UNIT:
        given["domain"] = domain
    given.update(more)
    validate_marker_args(given, where="@robust(...)")
    return pytest.mark.robust(**given)


def _usage(where: str, name: str, value: Any, expected: str, fix: str) -> pytest.UsageError:
    return usage_error(f"{where}: {name}={value!r} is not valid: expected {expected}. Fix: {fix}")


def validate_marker_args(args: Mapping[str, Any], *, where: str, radius: bool = False) -> None:
    """Raise a (tagged) ``pytest.UsageError`` for a bad or unknown marker argument.

    The marker takes exactly the options of :func:`robustest.check` (or, with ``min_radius``, those of
    :func:`robustest.radius`) plus its own (:data:`~robustest._options.MARKER_OWN`); every value goes
    through the option table that the API and the config file use.
    """
    radius = radius or "min_radius" in args
    if "min_radius" in args and "eps" in args:
        raise _usage(where, "eps", args["eps"], "no eps together with min_radius (min_radius is the radius)",
                     "keep one of eps (one threat radius) or min_radius (robustest.radius)")
    valid = marker_keywords(radius=radius)
    for name, value in args.items():
        if name not in valid:
            raise usage_error(unknown_keyword(name, valid, where))
        found = problem(name, value)
        if found is not None:
            raise _usage(where, name, value, *found)


def marker_keywords(*, radius: bool = False) -> Tuple[str, ...]:
    """The marker's keywords: its own plus check()'s, or with ``min_radius`` plus radius()'s."""
    if radius:
        return RADIUS_OPTIONS + MARKER_OWN
    return tuple(n for n in CHECK_OPTIONS if n not in PLUGIN_SET) + MARKER_OWN


# ---------------------------------------------------- how a test hands over its model and samples
def marker_args(item: pytest.Item) -> Optional[Dict[str, Any]]:
    """The merged arguments of the item's robust markers (closest first), or None without one.

    On the item itself, marks of a ``pytest.param(..., marks=...)`` come after the function's own, so
    they are read in reverse to let the parameter's marker win over the function's.
    """
    pairs = list(item.iter_markers_with_node("robust"))
    own = [m for node, m in pairs if node is item]
    markers = own[::-1] + [m for node, m in pairs if node is not item]
    if not markers:
        return None
    merged: Dict[str, Any] = {}
    for mark in markers:
        if len(mark.args) > 1:
            raise usage_error(f"@robust on {item.nodeid}: @robust takes at most one positional argument "
                              f"(eps), got {mark.args!r}. Fix: write @robust(eps=0.05, norm='linf')")
        values = dict(mark.kwargs)
        if mark.args:
            values.setdefault("eps", mark.args[0])
        for key, value in values.items():
            merged.setdefault(key, value)
    return merged


def requested_values(item: pytest.Item) -> Dict[str, Any]:
    """The values of the test function's own arguments (fixtures and parameters)."""
    funcargs: Dict[str, Any] = getattr(item, "funcargs", {})
    try:
        names: Any = inspect.signature(item.obj).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError, AttributeError):
        names = funcargs
    return {n: funcargs[n] for n in names if n in funcargs}


def as_samples(value: Any) -> Optional[Tuple[Any, Any]]:
    """(inputs, labels) if ``value`` is a pair of arrays or a dict with "inputs"/"labels", else None."""
    if isinstance(value, dict) and "inputs" in value and "labels" in value:
        return value["inputs"], value["labels"]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(hasattr(v, "shape") for v in value):
        return value[0], value[1]
    return None


def model_and_samples(item: pytest.Item, args: Dict[str, Any]) -> Tuple[Any, Any, Any]:
    """(model, inputs, labels) from the test's arguments, by convention or by the marker's names."""
    values = requested_values(item)
    model_name = args.get("model", "model")
    if model_name not in values:
        raise usage_error(
            f"@robust on {item.nodeid}: the test does not request the model fixture {model_name!r} "
            f"(its arguments: {', '.join(values) or 'none'}). Fix: add a '{model_name}' argument or name the "
            f"model's fixture with @robust(model='<fixture>')")
    model = values[model_name]
    if not callable(model):
        raise usage_error(f"@robust on {item.nodeid}: model fixture {model_name!r} gave "
                          f"{type(model).__name__}, not a callable model. Fix: return the nn.Module")
    data_name = args.get("data")
    if data_name is not None:
        if data_name not in values:
            raise usage_error(f"@robust on {item.nodeid}: the test does not request the data fixture "
                              f"{data_name!r}. Fix: add a '{data_name}' argument to the test")
        samples = as_samples(values[data_name])
        if samples is None:
            raise usage_error(f"@robust on {item.nodeid}: fixture {data_name!r} gave "
                              f"{type(values[data_name]).__name__}; expected an (inputs, labels) pair or a "
                              "dict with 'inputs' and 'labels'. Fix: return (x, y) from the fixture")
        return model, *samples
    found = {n: s for n, v in values.items() if n != model_name and (s := as_samples(v)) is not None}
    if len(found) != 1:
        what = ("no argument of the test looks" if not found
                else f"several arguments of the test ({', '.join(found)}) look")
        raise usage_error(
            f"@robust on {item.nodeid}: {what} like samples, i.e. an (inputs, labels) "
            "pair or a dict with 'inputs' and 'labels'. Fix: name the samples' fixture with "
            "@robust(data='<fixture>')")
    return model, *next(iter(found.values()))


def radius_report(model: Any, inputs: Any, labels: Any, *, min_radius: float, norm: str = "linf",
                  escalate: str = "attack", timeout: float = 10.0, seed: int = 0, **more: Any) -> Any:
    """:func:`robustest.radius` judged at ``min_radius``, as a :class:`~robustest.Report` on the ball of
    that radius, so that the pass criterion, JUnit and the summary treat it like any check; with it, per
    sample index, the (certified lower, attack upper) radii, for the HTML report's pictures.

    The adversarial inputs come from robustest.radius, which re-checks each by a forward pass; the lower
    radius comes from its bisection over the certifier ``escalate`` ("attack": no certifier).
    """
    import robustest

    from ..results import Report, SampleResult
    from ..spec import LpBall

    certifier = None if escalate == "attack" else escalate
    more.pop("suppress_health_check", None)  # a config-wide check option; robustest.radius has none
    rr = robustest.radius(model, inputs, labels, norm=norm, timeout=timeout, seed=seed, certifier=certifier,
                          **more)
    ball = LpBall(min_radius, norm, more.get("domain", (0.0, 1.0)))
    samples = []
    for s in rr.samples:
        common = dict(index=s.index, label=s.label, seconds=s.seconds)
        if s.misclassified:
            samples.append(SampleResult(verdict="misclassified", method="clean", predicted=s.predicted,
                                        **common))
        elif s.adversarial is not None and s.upper <= min_radius:
            samples.append(SampleResult(verdict="falsified", method=s.method, counterexample=s.adversarial,
                                        predicted=s.predicted, distance=s.upper, **common))
        elif s.lower >= min_radius:
            samples.append(SampleResult(verdict="certified", method=s.lower_method, **common))
        else:
            found = f"smallest adversarial found at {s.upper:.3g}" if math.isfinite(s.upper) else "none found"
            samples.append(SampleResult(verdict="unknown", method=s.method, figure=None,
                                        reason=f"{found}, certified radius {s.lower:.3g}", **common))
    report = Report(samples=tuple(samples), ball=ball, escalate=f"radius/{certifier or 'none'}", seed=seed,
                    seconds=rr.seconds, warnings=rr.warnings)
    return report, {s.index: (float(s.lower), float(s.upper)) for s in rr.samples}
