"""The robustest pytest plugin (registered through the ``pytest11`` entry point): thin by design.

It adds the ``@robust`` marker (see :mod:`robustest.plugin.marker` for how a test hands over its model and
samples), the ``robustness`` fixture, the ``--robust-...`` options, the per-sample JUnit file and the
terminal summary. All the work is :func:`robustest.check`; loading this module imports no torch.

Options (command line beats the config file, see :mod:`robustest.settings`; marker arguments beat both):

- ``--robust-junit=PATH``: per-sample JUnit XML (one testcase per test and sample);
- ``--robust-junit-include=all|failures|none`` and ``--robust-unknown=skipped|failure|pass``;
- ``--robust-seed=N``: the base seed; each test uses a seed derived from it and its node id, so
  verdicts do not depend on test order or on pytest-xdist's scheduling;
- ``--robust-timeout=SECONDS`` (per sample), ``--robust-escalate=RUNG``, ``--robust-profile=NAME``;
- ``--robust-html=PATH``: the HTML report (per sample verdicts; images of counterexamples);
- ``--robust-repair=DIR``: repair the model of a marker test that fails with counterexamples.

Under pytest-xdist each worker sends its records to the controller (``workeroutput``), which alone
writes the JUnit file and prints the summary. pytest's header shows the active settings
(:func:`robustest.settings.describe`); a long check shows its progress (:mod:`robustest.reporting.live`).

The imperative form, inside a test body::

    def test_cnn(robustness, cnn, digit_images):
        x, y = digit_images
        report = robustness.check(cnn, x, y, eps=0.03)        # recorded, never fails the test
        assert report.counts()["misclassified"] <= 2
        robustness.require(cnn, x, y, eps=0.01, min_pass=0.9)  # fails the test if not met
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import pytest

from .._options import help_for
from ..repair.guided_settings import METHODS as REPAIR_METHODS
from . import scale
from .marker import (
    is_marker_usage_error,
    marker_args,
    model_and_samples,
    radius_report,
    requested_values,
    usage_error,
    validate_marker_args,
)
from .repair_hook import repair_failed_test

if TYPE_CHECKING:  # pragma: no cover
    from ..reporting import TestRecord
    from ..results import Report
    from ..settings import Settings

_STATE = pytest.StashKey["_State"]()
_ITEM_RECORDS = pytest.StashKey[List["TestRecord"]]()
_WORKER_KEY = "robustest_records"
_WORKER_HTML_KEY = "robustest_html"
_SHOWN_FAILURES = 5


class _State:
    """Per-run state: the settings and the records of every check made in this process."""

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.records: List["TestRecord"] = []
        self.html_tests: List[Any] = []  # reporting.html.HtmlTest, when --robust-html is on
        self.write_errors: List[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("robustest", "robustness checks (robustest)")
    group.addoption("--robust-junit", metavar="PATH", help="write per-sample JUnit XML to PATH")
    group.addoption("--robust-junit-include", choices=("all", "failures", "none"),
                    help="samples listed in the per-sample JUnit file (default: from the config, else all)")
    group.addoption("--robust-unknown", choices=("skipped", "failure", "pass"),
                    help="how unknown samples appear in the per-sample JUnit file (default: from the config, "
                         "else skipped)")
    group.addoption("--robust-seed", type=int, metavar="N", help="base seed; per-test seeds derive from it")
    group.addoption("--robust-timeout", type=float, metavar="SECONDS",
                    help="time budget per sample (default: from the config, else 10)")
    group.addoption("--robust-escalate", metavar="RUNG",
                    help=help_for("escalate"))
    group.addoption("--robust-profile", metavar="NAME",
                    help="settings profile from [tool.robustest.profiles] or robustest.yaml "
                         "(built in: ci, nightly)")
    group.addoption("--robust-html", metavar="PATH",
                    help="write the HTML report (verdicts, images of counterexamples) to PATH")
    group.addoption("--robust-repair", metavar="DIR",
                    help="repair the model of a failing @robust test and save it under DIR")
    group.addoption("--robust-repair-data", metavar="FILE",
                    help="training data (.pt/.npz with inputs, labels) for --robust-repair's loss constraint "
                         "and held-out accuracy (default: a 'repair_data' fixture)")
    group.addoption("--robust-repair-method", choices=REPAIR_METHODS, default=REPAIR_METHODS[0],
                    help="how --robust-repair repairs (default: auto, guided rounds then adversarial fine-tuning)")
    group.addoption("--robust-repair-save-anyway", action="store_true", default=False,
                    help="save a repaired model that is not accepted as a fix (fits the test only, or still fails)")
    scale.add_options(group)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "robust(eps, norm='linf', escalate=..., min_pass=1.0, require='not_falsified', "
                   "model=None, data=None, ...): check the test's model on its samples with robustest.check")
    from ..errors import ConfigError
    from ..settings import load_settings

    opt = config.option
    overrides = {"junit": opt.robust_junit, "junit_include": opt.robust_junit_include,
                 "unknown": opt.robust_unknown, "seed": opt.robust_seed, "timeout": opt.robust_timeout,
                 "escalate": opt.robust_escalate, "repair": opt.robust_repair, "html": opt.robust_html,
                 **scale.overrides(opt)}
    directory = config.rootpath
    if config.inipath is None and not _has_config(directory):
        directory = config.invocation_params.dir
    try:
        settings = load_settings(directory, profile=opt.robust_profile, overrides=overrides)
    except ConfigError as exc:
        raise usage_error(f"robustest: {exc}") from None
    # a path from the command line is relative to where pytest runs, one from the config file to the file
    paths = (("junit", opt.robust_junit), ("html", opt.robust_html), ("repair", opt.robust_repair),
             ("json", opt.robust_json), ("baseline", opt.robust_baseline))
    for name, given in paths:
        value = getattr(settings, name)
        if value is not None:
            base = config.invocation_params.dir if given is not None else directory
            settings = settings.replace(**{name: str((base / value).resolve())})
    from ..errors import InvalidArgument
    from ..outputs import check_outputs
    from ..repair.outdir import check_output_dir

    try:  # before the session: an unwritable report path must not wait for every test to have run
        check_outputs({}, {"--robust-junit": settings.junit, "--robust-html": settings.html})
        if settings.repair is not None:  # a directory, not a file: created and probed
            check_output_dir(settings.repair)
    except InvalidArgument as exc:
        raise usage_error(f"robustest: {exc}") from None
    config.stash[_STATE] = _State(settings)
    config.pluginmanager.register(scale.ScalePlugin(config, settings), "robustest-scale")


def pytest_report_header(config: pytest.Config) -> Optional[str]:
    """The run's robustest settings in pytest's header (profile, escalation, budget, criterion)."""
    from ..settings import describe

    state = config.stash.get(_STATE, None)
    return None if state is None else describe(state.settings)


def _has_config(directory: Any) -> bool:
    return (directory / "pyproject.toml").is_file() or (directory / "robustest.yaml").is_file()


def derive_seed(base: int, nodeid: str) -> int:
    """A test's seed: a function of the run's base seed and the test id only (never of test order)."""
    return (base * 1_000_003 + zlib.crc32(nodeid.encode("utf-8"))) % (2**31 - 1)


def _classname(nodeid: str) -> str:
    parts = nodeid.split("::")
    path = parts[0][:-3] if parts[0].endswith(".py") else parts[0]
    return ".".join([path.replace("/", ".")] + parts[1:-1])


# ------------------------------------------------------------------------------------- marker tests
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Show a misused marker as its one-paragraph message, not as a traceback into the plugin; mark the
    records of an expected failure (xfail) so the per-sample JUnit does not report them as failures."""
    outcome = yield
    if call.excinfo is not None and is_marker_usage_error(call.excinfo.value):
        outcome.get_result().longrepr = f"UsageError: {call.excinfo.value}"
    report = outcome.get_result()
    reason = getattr(report, "wasxfail", None)
    records = item.stash.get(_ITEM_RECORDS, [])
    if call.when == "call" and report.skipped and reason is not None and records:
        import dataclasses

        state: _State = item.config.stash[_STATE]
        for i, old in enumerate(records):
            if not old.passed:
                new = dataclasses.replace(old, xfail=reason or "expected to fail")
                records[i] = new
                state.records = [new if r is old else r for r in state.records]
                state.html_tests = [dataclasses.replace(t, record=new) if t.record is old else t
                                    for t in state.html_tests]


def pytest_runtest_setup(item: pytest.Item) -> None:
    args = marker_args(item)
    if args is None:
        return
    validate_marker_args(args, where=f"@robust on {item.nodeid}")


def _failure_text(report: "Report", record: "TestRecord", require: str, extra: List[str]) -> str:
    lines = [record.summary]
    failing = report.failures(require)  # type: ignore[arg-type]
    for s in failing[:_SHOWN_FAILURES]:
        lines.append(f"  sample {s.index}: {s.message(report.ball)}")
    if len(failing) > _SHOWN_FAILURES:
        lines.append(f"  ... and {len(failing) - _SHOWN_FAILURES} more (all of them: --robust-junit=PATH)")
    lines += [f"  {w}" for w in report.warnings] + extra
    return "\n".join(lines)


@pytest.hookimpl(trylast=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """After the test body passed: run the marker's check and fail the test if the criterion fails."""
    args = marker_args(item)
    if args is None:
        return
    import robustest

    from ..errors import RobustestError

    state: _State = item.config.stash[_STATE]
    settings = state.settings
    values = requested_values(item)
    for name in ("norm",) if "min_radius" in args else ("eps", "norm"):  # e.g. a parametrized eps
        if name not in args and name in values:
            args[name] = values[name]
    validate_marker_args(args, where=f"@robust on {item.nodeid}")
    if "eps" not in args and "min_radius" not in args:
        raise usage_error(f"@robust on {item.nodeid}: no eps. Fix: pass @robust(eps=0.05) or give the "
                           "test an 'eps' argument (e.g. @pytest.mark.parametrize('eps', [0.01, 0.05]))")
    model, all_inputs, all_labels = model_and_samples(item, args)
    min_pass = float(args.pop("min_pass", settings.min_pass))
    require = str(args.pop("require", settings.require))
    for key in ("model", "data", "shards"):
        args.pop(key, None)
    shard = scale.shard_of_item(item)  # a slice of the samples (xdist shards, a CI matrix job)
    kwargs = {"norm": "linf", "escalate": settings.escalate, "timeout": settings.timeout,
              "seed": derive_seed(settings.seed, item.nodeid if shard is None else shard.nodeid),
              **_health(settings), **args}
    inputs, labels, rows = all_inputs, all_labels, range(len(all_labels))
    if shard is not None:
        inputs, labels, rows = scale.take(shard, all_inputs, all_labels)
        kwargs["indices"] = rows
    from ..reporting.live import live_progress

    radii = None
    try:
        with live_progress(item.config):
            if "min_radius" in kwargs:
                report, radii = radius_report(model, inputs, labels, **kwargs)
            else:
                report = robustest.check(model, inputs, labels, cache=scale_plugin(item).cache, **kwargs)
                report = scale.globalize(report, rows)
        error = None
    except RobustestError as exc:  # bad input or an unsupported model: its message says it all
        error = f"robustest: {exc}"
    if error is not None:  # outside the except block, so no "during handling" chain is printed
        pytest.fail(error, pytrace=False)
    passed = report.passed(min_pass=min_pass, require=require)  # type: ignore[arg-type]
    properties: List[Tuple[str, str]] = [] if shard is None else list(shard.properties())
    notes: List[str] = []
    after = None
    if (not passed and settings.repair and report.counts()["falsified"] and "min_radius" not in kwargs
            and shard is None):
        properties, notes, after = repair_failed_test(item, model, inputs, labels, report, kwargs,
                                                      settings.repair, min_pass=min_pass, require=require)
    record = _record(item, report, min_pass=min_pass, require=require, properties=properties, notes=notes,
                     inputs=all_inputs, radii=radii)
    judged, failure = scale_plugin(item).judge(item, record, total=len(all_labels))
    if judged is not record:  # failed on a baseline regression or on a CI slice's share of failures
        _replace_record(item, record, judged)
    if after is not None:  # the repaired model's re-check, reported beside the original (not enforced)
        _record(item, after, min_pass=min_pass, require=require, label="repaired", enforced=False,
                inputs=inputs)
    if failure is not None:
        if shard is None and not passed:
            failure = _failure_text(report, judged, require, notes + scale.regression_lines(judged))
        pytest.fail(failure, pytrace=False)


def scale_plugin(item: pytest.Item) -> "scale.ScalePlugin":
    """The run's :class:`~robustest.plugin.scale.ScalePlugin` (shards, cache, baseline)."""
    return item.config.pluginmanager.get_plugin("robustest-scale")  # type: ignore[return-value]


def _replace_record(item: pytest.Item, old: "TestRecord", new: "TestRecord") -> None:
    state: _State = item.config.stash[_STATE]
    records = item.stash[_ITEM_RECORDS]
    records[records.index(old)] = new
    state.records = [new if r is old else r for r in state.records]
    state.html_tests = [dataclasses.replace(t, record=new) if t.record is old else t
                        for t in state.html_tests]


def _health(settings: "Settings") -> Dict[str, Any]:
    """The config's suppress_health_check, when set (robustest.radius has no such option)."""
    names = list(settings.suppress_health_check)
    return {"suppress_health_check": names} if names else {}


def _record(item: pytest.Item, report: "Report", *, min_pass: float, require: str,
            label: Optional[str] = None, properties: Any = (), notes: Any = (),
            enforced: bool = True, inputs: Any = None, radii: Any = None) -> "TestRecord":
    """Keep the check's record for the reports (and its counterexample images for --robust-html)."""
    from ..reporting import record_from_report

    records = item.stash.setdefault(_ITEM_RECORDS, [])
    suffix = "" if label is None and not records else f" {label or f'#{len(records) + 1}'}"
    record = record_from_report(item.name + suffix, report, nodeid=item.nodeid + suffix,
                                classname=_classname(item.nodeid), min_pass=min_pass, require=require,
                                properties=properties, notes=notes, enforced=enforced)
    records.append(record)
    state: _State = item.config.stash[_STATE]
    state.records.append(record)
    if state.settings.html or state.settings.json:
        from ..reporting.html import HtmlTest, tests_from_reports

        shown = tests_from_reports([(record.name, report)], None if inputs is None else [inputs])[0]
        state.html_tests.append(HtmlTest(record, shown.images, shown.value_range, radii or {}))
    return record


# ------------------------------------------------------------------------------ reporting, xdist
@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist controller: collect the records a worker sent through ``workeroutput``."""
    from ..reporting import TestRecord

    state: _State = node.config.stash[_STATE]
    output = getattr(node, "workeroutput", {})
    for data in output.get(_WORKER_KEY, []):
        state.records.append(TestRecord.from_dict(data))
    if output.get(_WORKER_HTML_KEY):
        from ..reporting.html import HtmlTest

        state.html_tests += [HtmlTest.from_dict(d) for d in output[_WORKER_HTML_KEY]]


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the records to the controller
        workeroutput[_WORKER_KEY] = [r.to_dict() for r in state.records]
        workeroutput[_WORKER_HTML_KEY] = [t.to_dict() for t in state.html_tests]
        return
    state.records.sort(key=lambda r: r.nodeid)
    s = state.settings
    from ..reporting.formats import RecordOnly, ReportOptions, write_reports

    options = ReportOptions(unknown=s.unknown, include=s.junit_include)
    for name, option, what, path, tests in (
            ("junit", "--robust-junit", "per-sample JUnit file", s.junit,
             [RecordOnly(r) for r in state.records]),
            ("html", "--robust-html", "HTML report", s.html, sorted(state.html_tests, key=lambda t: t.record.nodeid))):
        if path:
            _write(session, state, option, what, path,
                   lambda name=name, path=path, tests=tests: write_reports({name: path}, tests, options))


def _write(session: pytest.Session, state: _State, option: str, what: str, path: str, write: Any) -> None:
    try:
        write()
    except OSError as exc:  # CI must notice a missing report: a usage error, not a silent pass
        state.write_errors.append(f"robustest: could not write the {what} {path}: {exc}. "
                                  f"Fix: point {option} at a writable path")
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    for error in state.write_errors:
        terminalreporter.write_line(error, red=True)
    if not state.records:
        return
    from ..reporting.terminal import summary_lines

    terminalreporter.write_sep("=", "robustest summary")
    for line in summary_lines(state.records, width=config.get_terminal_writer().fullwidth):
        terminalreporter.write_line(line)
    for what, path in (("per-sample JUnit", state.settings.junit), ("HTML report", state.settings.html)):
        if path and not any(path in e for e in state.write_errors):
            terminalreporter.write_line(f"{what}: {path}")
