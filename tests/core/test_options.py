"""One table of option constraints: the marker, the config file, the library API and the CLI accept and
refuse the same values (only the error class differs)."""

from __future__ import annotations

import inspect

import pytest
import torch

import robustest
from robustest._options import CHECK_OPTIONS, MARKER_OWN, OPTIONS, PLUGIN_SET, RADIUS_OPTIONS
from robustest.errors import ConfigError, InvalidArgument
from robustest.plugin.marker import validate_marker_args
from robustest.settings import FIELD_NAMES, Settings

#: options with a flag of `robustest check` (flag, how the value is written on the command line)
CLI_FLAGS = {"eps": "--eps", "norm": "--norm", "escalate": "--escalate", "timeout": "--timeout",
             "seed": "--seed", "solver": "--solver", "min_pass": "--min-pass", "require": "--require"}

NUMERIC = ("eps", "timeout", "seed", "min_pass")

CASES = [(name, value, ok) for name, opt in OPTIONS.items()
         for ok, values in ((True, opt.examples[0]), (False, opt.examples[1])) for value in values]


def _id(case):
    name, value, ok = case
    return f"{name}={value!r}-{'good' if ok else 'bad'}"


def _tiny():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3)).eval()
    x = torch.rand(3, 2, generator=torch.Generator().manual_seed(0))
    return net, x, net(x).argmax(1)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_every_entry_point_accepts_and_refuses_alike(case, capsys, tmp_path, monkeypatch):
    name, value, ok = case
    monkeypatch.chdir(tmp_path)  # cache='readwrite' writes .robustest_cache/ here
    verdicts = {}
    # the marker (the plugin sets check()'s PLUGIN_SET options itself)
    if (name in CHECK_OPTIONS + MARKER_OWN and name not in PLUGIN_SET) or name in RADIUS_OPTIONS:
        args = {name: value, "min_radius": 0.1} if name in RADIUS_OPTIONS and name not in CHECK_OPTIONS else \
            {name: value}
        try:
            validate_marker_args(args, where="@robust(...)")
            verdicts["marker"] = True
        except pytest.UsageError as exc:
            assert name in str(exc) and "Fix:" in str(exc)
            verdicts["marker"] = False
    # the config file's settings
    if name in FIELD_NAMES:
        try:
            Settings(**{name: value})
            verdicts["config"] = True
        except ConfigError as exc:
            assert name in str(exc) and "Fix:" in str(exc)
            verdicts["config"] = False
    # the library API
    if name in CHECK_OPTIONS:
        net, x, y = _tiny()
        kwargs = {"eps": 0.01, name: value}
        if name == "attacks" and ok:
            kwargs["attacks"] = value
        try:
            robustest.check(net, x, y, **kwargs)
            verdicts["api"] = True
        except InvalidArgument as exc:
            assert name in str(exc) and "Fix:" in str(exc)
            verdicts["api"] = False
    # the CLI's parser
    # (the command line has only text: "10" there is the number 10 and 2 is the text "2", so only values
    # of the option's own kind are walked through it)
    if name in CLI_FLAGS and isinstance(value, str) == (name not in NUMERIC):
        from robustest.cli import build_parser

        argv = ["check", "m.pt", "d.npz", "--eps", "0.1", CLI_FLAGS[name], str(value)]
        try:
            build_parser().parse_args(argv)
            verdicts["cli"] = True
        except SystemExit as exc:
            assert exc.code == 2
            assert name.replace("_", "-") in capsys.readouterr().err
            verdicts["cli"] = False
    assert verdicts, f"{name} reaches no entry point"
    assert set(verdicts.values()) == {ok}, verdicts


def test_the_table_covers_check_and_radius():
    params = inspect.signature(robustest.check).parameters
    keywords = tuple(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY)
    assert keywords == CHECK_OPTIONS
    for name in CHECK_OPTIONS + MARKER_OWN + RADIUS_OPTIONS:
        assert name in OPTIONS


def test_a_misspelt_keyword_names_the_close_match():
    net, x, y = _tiny()
    with pytest.raises(InvalidArgument, match="unknown argument 'esclate'.*did you mean 'escalate'"):
        robustest.check(net, x, y, eps=0.1, esclate="milp")
    with pytest.raises(InvalidArgument, match="did you mean 'timeout'"):
        robustest.check(net, x, y, eps=0.1, timout=0.001)
    with pytest.raises(InvalidArgument, match="alpha_crown='no'"):
        robustest.check(net, x, y, eps=0.1, alpha_crown="no")
    with pytest.raises(pytest.UsageError, match="did you mean 'escalate'"):
        validate_marker_args({"esclate": "milp"}, where="@robust(...)")
    validate_marker_args({"alpha_crown": True}, where="@robust(...)")  # the marker takes check()'s options
