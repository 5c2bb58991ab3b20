"""Shards merged into one verdict, CI slices merged by `robustest report --merge`, the verdict cache in
the plugin and the regression baseline, on the tiny linear project (see conftest.py: at eps=0.1 samples
1 and 3 are falsified; with escalate='crown' samples 0 and 2 are certified)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from robustest.cli import main

MARKED = '''
import pytest
from robustest import robust

@robust(eps=0.1, escalate="crown", min_pass={min_pass})
def test_lin(model, data):
    pass
'''


def _verdicts(path):
    """{sample testcase: verdict property} of a per-sample JUnit file."""
    out = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        out[tc.get("name")] = props.get("verdict")
    return out


def test_shards_are_judged_together_on_the_last_shard(project):
    project.test_file(MARKED.format(min_pass=0.75))  # 2 of 4 pass: fails over all samples
    result = project.run("--robust-shards=2", "--robust-junit=s.xml", "--robust-cache=off")
    result.assert_outcomes(passed=1, failed=1)  # shard 1 alone (samples 0, 2) would pass
    result.stdout.fnmatch_lines(["*test_lin?shard2of2?*", "*50.0% of 4 samples pass*merged from 2 shards*",
                                 "*sample 1: falsified*", "*sample 3: falsified*"])
    assert _verdicts(project.path / "s.xml") == {
        "test_lin sample 0000": "certified", "test_lin sample 0001": "falsified",
        "test_lin sample 0002": "certified", "test_lin sample 0003": "falsified"}
    project.test_file(MARKED.format(min_pass=0.5))
    project.run("--robust-shards=2", "--robust-cache=off").assert_outcomes(passed=2)


def test_marker_shards_and_bad_values(project):
    project.test_file(MARKED.replace('min_pass={min_pass}', 'min_pass=0.5, shards=3'))
    project.run("--robust-cache=off").assert_outcomes(passed=3)
    project.test_file(MARKED.replace('min_pass={min_pass}', 'shards=0'))
    result = project.run("--robust-cache=off")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*shards=0*an integer >= 1 or 'auto'*"])
    assert project.run("--robust-shard=3/2").ret == 4  # a usage error, naming K/N
    project.run("--robust-shards=many").stderr.fnmatch_lines(["*shards='many'*"])


REORDERED = """
import torch

@pytest.fixture
def data(data):  # samples 0, 1, 3, 2: each interleaved half (positions 0, 2 and 1, 3) holds one falsified
    x, y = data
    order = torch.tensor([0, 1, 3, 2])
    return x[order], y[order]
"""


def test_ci_slices_merge_into_one_judgement(project):
    project.test_file(MARKED.format(min_pass=0.75) + REORDERED)
    for k in (1, 2):  # each job: its slice, its own JUnit and results file; neither fails alone
        project.run(f"--robust-shard={k}/2", f"--robust-json=r{k}.json", f"--robust-junit=j{k}.xml",
                    "--robust-cache=off").assert_outcomes(passed=1)
        assert len(_verdicts(project.path / f"j{k}.xml")) == 2
    r1, r2, out = (str(project.path / n) for n in ("r1.json", "r2.json", "all.xml"))
    assert main(["report", "--merge", r1, r2, "--junit", out, "--html", str(project.path / "all.html")]) == 1
    assert sorted(_verdicts(out).values()) == ["certified", "certified", "falsified", "falsified"]
    assert main(["report", "--merge", r1, "--junit", out]) == 2  # a missing slice is refused, not judged
    assert main(["report", "--merge", r1, r1, r2, "--junit", out]) == 2  # so is a repeated one


def test_a_slice_fails_when_it_alone_breaks_min_pass(project):
    project.test_file(MARKED.format(min_pass=1.0))
    result = project.run("--robust-shard=2/2", "--robust-cache=off")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*slice 2/2 alone has 2 failing samples; min_pass=1 allows 0 of all 4*"])


def test_slices_interleave_the_samples(project):
    """Slice K of N checks samples K-1, K-1+N, ...: slow samples that cluster (sorted data, appended
    variants) are spread over the jobs. Here slice 1/2 gets samples 0 and 2, the two that survive."""
    project.test_file(MARKED.format(min_pass=1.0))
    project.run("--robust-shard=1/2", "--robust-junit=j1.xml", "--robust-cache=off").assert_outcomes(passed=1)
    assert _verdicts(project.path / "j1.xml") == {"test_lin sample 0000": "certified",
                                                  "test_lin sample 0002": "certified"}


def test_cache_reuses_verdicts_and_ignores_a_corrupted_file(project):
    project.test_file(MARKED.format(min_pass=0.5))
    first = project.run("--robust-junit=a.xml")
    first.stdout.fnmatch_lines(["robustest cache: 0 of 4 sample verdicts reused from *.robustest_cache "
                                "(readwrite)"])
    again = project.run("--robust-junit=b.xml")
    again.stdout.fnmatch_lines(["robustest cache: 4 of 4 sample verdicts reused*"])
    assert _verdicts(project.path / "a.xml") == _verdicts(project.path / "b.xml")
    assert 'name="cached" value="true"' in (project.path / "b.xml").read_text()
    assert "reused" not in project.run("--robust-cache=off").stdout.str()
    (project.path / ".robustest_cache" / "verdicts.sqlite").write_bytes(b"not a database " * 100)
    for name in ("verdicts.sqlite-wal", "verdicts.sqlite-shm"):
        (project.path / ".robustest_cache" / name).unlink(missing_ok=True)
    broken = project.run("--robust-junit=c.xml")
    broken.assert_outcomes(passed=1)
    broken.stdout.fnmatch_lines(["*CacheWarning*verdict cache*ignored*", "robustest cache: 0 of 4*"])
    assert _verdicts(project.path / "c.xml") == _verdicts(project.path / "a.xml")


BASELINED = '''
import json, pathlib
import pytest, torch
from robustest import robust

@pytest.fixture
def model():
    p = json.loads(pathlib.Path(__file__).with_name("params.json").read_text())
    m = torch.nn.Linear(4, 2)
    with torch.no_grad():
        m.weight.copy_(p["scale"] * torch.tensor([[1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]]))
        m.bias.copy_(torch.tensor([p["bias"], -p["bias"]]))
    return torch.nn.Sequential(m).eval()

@robust(eps=0.1, escalate="crown", min_pass=0.0)
def test_lin(model, data):
    pass
'''


def test_baseline_fails_a_regressed_sample_whatever_min_pass_says(project):
    project.test_file(BASELINED)
    params = project.path / "params.json"
    params.write_text(json.dumps({"scale": 1.0, "bias": 0.0}))
    project.run("--robust-baseline=base.json", "--robust-save-baseline").assert_outcomes(passed=1)
    assert json.loads((project.path / "base.json").read_text())["format"] == "robustest-baseline/1"
    project.run("--robust-baseline=base.json").assert_outcomes(passed=1)  # nothing changed
    params.write_text(json.dumps({"scale": 1.0, "bias": 0.5}))  # sample 2 now breaks at eps=0.1
    result = project.run("--robust-baseline=base.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*robustness FAILED*1 samples regressed against the baseline*",
                                 "*regression against the baseline*",
                                 "*sample 2: certified (margin >= 0.8) in the baseline, now falsified*"])
    params.write_text(json.dumps({"scale": 0.5, "bias": 0.0}))  # margins halve: more than 10% lost
    result = project.run("--robust-baseline=base.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*sample 0: certified (margin >= 1.2) in the baseline, now certified "
                                 "(margin >= 0.6): the certified margin dropped*"])
    project.run("--robust-baseline=base.json", "--robust-baseline-tolerance=0.6").assert_outcomes(passed=1)
    missing = project.run("--robust-baseline=missing.json")
    missing.stderr.fnmatch_lines(["*--robust-baseline=*expected a readable file*--robust-save-baseline*"])
