"""A table of bad inputs walked through the library API, the ``@robust`` marker and the CLI.

Each entry asserts the error class (API), the exit status (CLI: 2, one line, no traceback) or a failed
pytest run without INTERNALERROR (marker), and that the message names the argument and gives a fix.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import robustest
from robustest.errors import HealthCheckError, InvalidArgument, ModelError, ShapeError


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()


NET = _net()
X = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    Y = NET(X).argmax(1)


def _nan_net():
    net = _net()
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    return net


def _train_bn():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)).eval()
    net[1].train()
    return net


def check(**kw):
    args = {"model": NET, "inputs": X, "labels": Y, "eps": 0.01}
    args.update(kw)
    return lambda: robustest.check(args.pop("model"), args.pop("inputs"), args.pop("labels"), **args)


def attack(**kw):
    args = {"model": NET, "inputs": X, "labels": Y, "eps": 0.01}
    args.update(kw)
    return lambda: robustest.attack(args.pop("model"), args.pop("inputs"), args.pop("labels"), **args)


def bounds(**kw):
    args = {"eps": 0.01}
    args.update(kw)
    return lambda: robustest.bounds(NET, X, **args)


def radius(**kw):
    return lambda: robustest.radius(NET, X[:1], Y[:1], **kw)


def load(path_text, **kw):
    def run(tmp_path):
        path = tmp_path / path_text[0]
        if path_text[1] is not None:
            path.write_bytes(path_text[1])
        return robustest.load_model(path, **kw)
    return run


def data(name, content):
    def run(tmp_path):
        path = tmp_path / name
        path.write_bytes(content)
        return robustest.load_data(path)
    return run


API = [  # (id, call, error class, text the message must contain)
    ("eps-negative", check(eps=-1.0), InvalidArgument, "eps="),
    ("eps-nan", check(eps=float("nan")), InvalidArgument, "eps="),
    ("eps-inf", check(eps=float("inf")), InvalidArgument, "eps="),
    ("eps-string", check(eps="0.1"), InvalidArgument, "eps="),
    ("eps-bool", check(eps=True), InvalidArgument, "eps="),
    ("norm-l3", check(norm="l3"), InvalidArgument, "norm="),
    ("norm-int", check(norm=3), InvalidArgument, "norm="),
    ("escalate-typo", check(escalate="crwn"), InvalidArgument, "escalate="),
    ("timeout-zero", check(timeout=0), InvalidArgument, "timeout="),
    ("timeout-string", check(timeout="10"), InvalidArgument, "timeout="),
    ("seed-negative", check(seed=-1), InvalidArgument, "seed="),
    ("seed-float", check(seed=1.5), InvalidArgument, "seed="),
    ("solver-cplex", check(solver="cplex"), InvalidArgument, "solver="),
    ("attacks-empty", check(attacks=[]), InvalidArgument, "attacks="),
    ("attacks-unknown", check(attacks=["nosuch"]), InvalidArgument, "nosuch"),
    ("suppress-string", check(suppress_health_check="probabilities"), InvalidArgument, "suppress_health_check="),
    ("suppress-unknown", check(suppress_health_check=["nosuch"]), InvalidArgument, "suppress_health_check="),
    ("keyword-typo", check(esclate="crown"), InvalidArgument, "escalate"),
    ("domain-reversed", check(domain=(1.0, 0.0)), InvalidArgument, "domain="),
    ("domain-strings", check(domain=("0", "1")), InvalidArgument, "domain="),
    ("domain-nan", check(domain=(float("nan"), 1.0)), InvalidArgument, "domain="),
    ("domain-nan-tensor", check(domain=(torch.zeros(4), torch.tensor([1.0, float("nan"), 1.0, 1.0]))),
     InvalidArgument, "domain="),
    ("domain-wrong-shape", check(domain=(torch.zeros(5), torch.ones(5))), ShapeError, "domain="),
    ("domain-one-value", check(domain=(0.0,)), InvalidArgument, "domain="),
    ("inputs-outside-domain", check(inputs=X + 2), InvalidArgument, "inputs="),
    ("inputs-nan", check(inputs=torch.full((4, 4), float("nan"))), InvalidArgument, "inputs="),
    ("inputs-1d", check(inputs=X[0], labels=Y[:1]), ShapeError, "inputs="),
    ("inputs-empty", check(inputs=X[:0], labels=Y[:0]), ShapeError, "inputs="),
    ("inputs-wrong-width", check(inputs=torch.rand(4, 7)), ShapeError, "inputs="),
    ("inputs-list-of-str", check(inputs=[["a"]]), InvalidArgument, "inputs="),
    ("labels-bool", check(labels=Y == 1), InvalidArgument, "labels="),
    ("labels-float", check(labels=Y.float() + 0.5), InvalidArgument, "labels="),
    ("labels-one-hot", check(labels=torch.nn.functional.one_hot(Y, 3)), ShapeError, "labels="),
    ("labels-too-few", check(labels=Y[:2]), ShapeError, "labels="),
    ("labels-out-of-range", check(labels=torch.tensor([0, 1, 2, 9])), InvalidArgument, "labels="),
    ("labels-negative", check(labels=torch.tensor([0, -1, 2, 1])), InvalidArgument, "labels="),
    ("model-state-dict", check(model=NET.state_dict()), ModelError, "model="),
    ("model-nan-weight", check(model=_nan_net()), ModelError, "0.weight"),
    ("model-train-submodule", check(model=_train_bn()), HealthCheckError, "model.eval()"),
    ("model-one-output", check(model=nn.Sequential(nn.Linear(4, 1)).eval(), labels=torch.zeros(4, dtype=torch.long)),
     ModelError, "model output="),
    ("attack-method-unknown", attack(method="nosuch"), InvalidArgument, "nosuch"),
    ("attack-targets-range", attack(targets=torch.tensor([0, 1, 5, 0])), InvalidArgument, "targets="),
    ("attack-targets-shape", attack(targets=torch.tensor([0, 1])), ShapeError, "labels="),
    ("attack-timeout", attack(timeout=-1), InvalidArgument, "timeout="),
    ("attack-train-mode", attack(model=_train_bn()), HealthCheckError, "model.eval()"),
    ("bounds-method", bounds(method="nosuch"), InvalidArgument, "method="),
    ("bounds-eps", bounds(eps=-0.1), InvalidArgument, "eps="),
    ("radius-method", radius(method="nosuch"), InvalidArgument, "method="),
    ("radius-certifier", radius(certifier="nosuch"), InvalidArgument, "certifier="),
    ("radius-lower-steps", radius(lower_steps=-1), InvalidArgument, "lower_steps="),
]

FILES = [  # (id, call taking tmp_path, error class, text)
    ("model-missing", load(("none.onnx", None)), InvalidArgument, "model="),
    ("model-empty", load(("m.pt", b"")), InvalidArgument, "model="),
    ("model-truncated-zip", load(("m.pt", b"PK\x03\x04" + b"\0" * 40)), InvalidArgument, "model="),
    ("model-pt2-not-zip", load(("m.pt2", b"not a zip")), ModelError, "model="),
    ("model-class-spelling", load(("m.pt", b"\x80\x02}q\x00."), model_class="digits.mlp"), InvalidArgument,
     "model_class="),
    ("data-not-a-file", data("d.npz", b"garbage"), InvalidArgument, "data"),
    ("data-wrong-suffix", data("d.csv", b"1,2"), InvalidArgument, "data"),
]


@pytest.mark.parametrize("name,call,cls,text", API, ids=[c[0] for c in API])
def test_api(name, call, cls, text):
    with pytest.raises(cls) as info:
        call()
    message = str(info.value)
    assert text in message and "Fix" in message, message


@pytest.mark.parametrize("name,call,cls,text", FILES, ids=[c[0] for c in FILES])
def test_files(name, call, cls, text, tmp_path):
    with pytest.raises(cls) as info:
        call(tmp_path)
    message = str(info.value)
    assert text in message and "Fix" in message, message


CLI = [  # (id, argv with {model} {data} {tmp}, text in the one-line error)
    ("check-missing-model", ["check", "{tmp}/none.onnx", "{data}", "--eps", "0.1"], "model="),
    ("check-missing-data", ["check", "{model}", "{tmp}/none.npz", "--eps", "0.1"], "data"),
    ("check-eps-negative", ["check", "{model}", "{data}", "--eps", "-1"], "--eps"),
    ("check-eps-text", ["check", "{model}", "{data}", "--eps", "abc"], "--eps"),
    ("check-eps-twice", ["check", "{model}", "{data}", "--eps", "0.1", "--eps", "0.1"], "--eps"),
    ("check-min-pass", ["check", "{model}", "{data}", "--eps", "0.1", "--min-pass", "2"], "--min-pass"),
    ("check-escalate", ["check", "{model}", "{data}", "--eps", "0.1", "--escalate", "nosuch"], "escalate"),
    ("check-norm", ["check", "{model}", "{data}", "--eps", "0.1", "--norm", "l7"], "norm"),
    ("check-batch", ["check", "{model}", "{data}", "--eps", "0.1", "--batch", "0"], "--batch"),
    ("check-junit-is-model", ["check", "{model}", "{data}", "--eps", "0.1", "--junit", "{model}"], "--junit"),
    ("check-html-is-data", ["check", "{model}", "{data}", "--eps", "0.1", "--html", "{data}"], "--html"),
    ("check-json-dir", ["check", "{model}", "{data}", "--eps", "0.1", "--json", "{tmp}"], "--json"),
    ("check-junit-under-file", ["check", "{model}", "{data}", "--eps", "0.1", "--junit", "{data}/x.xml"],
     "--junit"),
    ("check-no-class", ["check", "{model}", "{data}", "--eps", "0.1", "--model-class", ""], "model"),
    ("attack-out-is-data", ["attack", "{model}", "{data}", "--eps", "0.1", "--out", "{data}"], "--out"),
    ("attack-steps-auto", ["attack", "{model}", "{data}", "--eps", "0.1", "--steps", "3"], "--method"),
    ("radius-json-is-model", ["radius", "{model}", "{data}", "--json", "{model}"], "--json"),
    ("report-needs-output", ["report", "{data}"], "outputs"),
    ("report-binary", ["report", "{data}", "--html", "{tmp}/r.html"], "results="),
    ("report-html-is-results", ["report", "{data}", "--html", "{data}"], "--html"),
    ("vnnlib-state-dict", ["vnnlib", "{model}", "{tmp}/none.vnnlib", "--timeout", "5"], "model="),
    ("vnnlib-out-is-model", ["vnnlib", "{model}", "{data}", "--timeout", "5", "--out", "{model}"], "--out"),
    ("vnnlib-timeout", ["vnnlib", "{model}", "{tmp}/none.vnnlib", "--timeout", "0"], "--timeout"),
]


@pytest.mark.parametrize("name,argv,text", CLI, ids=[c[0] for c in CLI])
def test_cli(name, argv, text, digits_files, tmp_path, capsys):
    from robustest.cli import main

    model, data = digits_files
    argv = [a.format(model=model, data=data, tmp=tmp_path) for a in argv]
    if argv[0] in ("check", "attack", "radius") and "--model-class" not in argv:
        argv += ["--model-class", "digits:mlp"]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert text in err and ("Fix" in err or "--help" in err), err


MARKER = [  # (id, decorator arguments, text)
    ("eps-negative", "eps=-1.0", "eps="),
    ("eps-missing", "", "eps"),
    ("norm", "eps=0.1, norm='l7'", "norm="),
    ("escalate", "eps=0.1, escalate='nosuch'", "escalate="),
    ("min-pass", "eps=0.1, min_pass=1.5", "min_pass="),
    ("require", "eps=0.1, require='always'", "require="),
    ("keyword-typo", "eps=0.1, esclate='crown'", "escalate"),
    ("timeout", "eps=0.1, timeout=-1", "timeout="),
    ("suppress-string", "eps=0.1, suppress_health_check='probabilities'", "suppress_health_check="),
]

CONFTEST = '''
import pytest, torch

@pytest.fixture
def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()

@pytest.fixture
def data():
    return torch.rand(3, 4), torch.zeros(3, dtype=torch.long)
'''


@pytest.mark.parametrize("name,marker,text", MARKER, ids=[c[0] for c in MARKER])
def test_marker(name, marker, text, pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(f'''
from robustest import robust

@robust({marker})
def test_it(model, data):
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0 and "INTERNALERROR" not in out, out[-2000:]
    assert text in out and "Fix" in out, out[-2000:]


def test_the_table_is_large_enough():
    assert len(API) + len(FILES) + len(CLI) + len(MARKER) >= 60
    assert np.unique([c[0] for c in API + FILES]).size == len(API + FILES)
