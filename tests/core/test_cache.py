"""The verdict cache (robustest.cache) and per-sample random streams (robustest.streams)."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import warnings

import pytest
import torch

import robustest
from robustest.cache import CachedVerdict, CacheWarning, VerdictCache
from robustest.cache.keys import model_fingerprint
from robustest.errors import InvalidArgument


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()


@pytest.fixture
def case():
    model = _mlp()
    x = torch.rand(24, 4, generator=torch.Generator().manual_seed(1))
    return model, x, model(x).argmax(1).detach()


KW = dict(eps=0.1, escalate="crown", attacks=[("pgd", {"steps": 3})], seed=5)


def test_a_rerun_reuses_every_decided_verdict(case, tmp_path):
    model, x, y = case
    cache = VerdictCache(tmp_path)
    first = robustest.check(model, x, y, cache=cache, **KW)
    again = robustest.check(model, x, y, cache=cache, **KW)
    decided = first.counts()["certified"] + first.counts()["falsified"]
    assert decided > 0 and first.cached == 0 and again.cached == decided + first.counts()["unknown"]
    assert again.verdicts == first.verdicts
    assert f"{again.cached} verdicts reused from the cache" in again.summary()
    for a, b in zip(first.samples, again.samples):  # reused counterexamples were re-checked, not copied blind
        if a.verdict == "falsified":
            assert torch.equal(a.counterexample, b.counterexample) and b.predicted == a.predicted
    (tmp_path / ".gitignore").read_text()  # the cache keeps itself out of git
    changed = _mlp(seed=1)  # another model: nothing is reused
    assert robustest.check(changed, x, y, cache=cache, **KW).cached == 0
    assert robustest.check(model, x, y, cache=cache, **{**KW, "eps": 0.11}).cached == 0


def test_budgets_decide_what_is_reused():
    assert CachedVerdict("certified", "crown", budget=5.0, seconds=0.1).usable(10.0)
    assert not CachedVerdict("certified", "crown", budget=5.0, seconds=0.1).usable(1.0)
    assert CachedVerdict("unknown", "crown", budget=5.0, seconds=5.0).usable(5.0)
    assert not CachedVerdict("unknown", "crown", budget=5.0, seconds=5.0).usable(20.0)  # retried


def test_modes(case, tmp_path):
    model, x, y = case
    robustest.check(model, x, y, cache=VerdictCache(tmp_path, mode="read"), **KW)
    assert not (tmp_path / "verdicts.sqlite").exists()  # read never writes
    robustest.check(model, x, y, cache=VerdictCache(tmp_path, mode="write"), **KW)
    assert robustest.check(model, x, y, cache=VerdictCache(tmp_path, mode="write"), **KW).cached == 0
    assert robustest.check(model, x, y, cache=VerdictCache(tmp_path, mode="read"), **KW).cached > 0
    assert robustest.check(model, x, y, cache=VerdictCache(tmp_path, mode="off"), **KW).cached == 0
    with pytest.raises(InvalidArgument, match="cache mode='sometimes'"):
        VerdictCache(tmp_path, mode="sometimes")
    with pytest.raises(InvalidArgument, match="cache="):
        robustest.check(model, x, y, cache=3, **KW)


def _rows(path):
    with sqlite3.connect(path / "verdicts.sqlite") as conn:
        return conn.execute("SELECT key, payload, ce, checksum FROM verdicts_v1").fetchall()


def test_a_forged_counterexample_is_not_trusted(case, tmp_path):
    """Even with a valid checksum, a stored counterexample that fails the forward pass is dropped."""
    from robustest.cache import _checksum

    model, x, y = case
    first = robustest.check(model, x, y, cache=VerdictCache(tmp_path), **KW)
    assert first.counts()["falsified"] > 0
    with sqlite3.connect(tmp_path / "verdicts.sqlite") as conn:
        for key, payload, blob, _ in _rows(tmp_path):
            if json.loads(payload)["verdict"] == "falsified":
                fake = bytes(len(blob))  # the all-zero input: not in the ball of any of these samples
                conn.execute("UPDATE verdicts_v1 SET ce=?, checksum=? WHERE key=?",
                             (fake, _checksum(key, payload, fake), key))
    again = robustest.check(model, x, y, cache=VerdictCache(tmp_path), **KW)
    assert again.verdicts == first.verdicts  # decided afresh
    assert not any(s.cached for s in again.samples if s.verdict == "falsified")


def test_a_corrupted_cache_is_ignored_with_a_warning(case, tmp_path):
    model, x, y = case
    first = robustest.check(model, x, y, cache=VerdictCache(tmp_path), **KW)
    with sqlite3.connect(tmp_path / "verdicts.sqlite") as conn:  # flip a certified verdict's content
        conn.execute("UPDATE verdicts_v1 SET payload=replace(payload, 'certified', 'falsified')")
    with pytest.warns(CacheWarning, match="fails its checksum"):
        again = robustest.check(model, x, y, cache=VerdictCache(tmp_path), **KW)
    assert again.verdicts == first.verdicts and again.cached == 0
    (tmp_path / "verdicts.sqlite").write_bytes(b"garbage" * 200)
    for extra in ("verdicts.sqlite-wal", "verdicts.sqlite-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    with pytest.warns(CacheWarning, match="ignored"):
        third = robustest.check(model, x, y, cache=VerdictCache(tmp_path), **KW)
    assert third.verdicts == first.verdicts and third.cached == 0


def _writer(path, start):
    cache = VerdictCache(path)
    for k in range(start, start + 60):
        cache.put([(f"key{k}", CachedVerdict("certified", "crown", budget=1.0, seconds=0.0), b"")])


def test_concurrent_writers_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, s)) for s in (0, 60)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(VerdictCache(tmp_path).get([f"key{k}" for k in range(120)])) == 120


def test_fingerprint_sees_parameters_buffers_and_structure():
    a, b = _mlp(), _mlp()
    assert model_fingerprint(a) == model_fingerprint(b)
    bn = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).eval()
    before = model_fingerprint(bn)
    bn[1].running_mean += 1.0
    assert model_fingerprint(bn) != before
    assert model_fingerprint(torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(),
                                                 torch.nn.Linear(16, 3))) != model_fingerprint(a)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_slices_get_the_whole_sets_verdicts(case, norm):
    """Per-sample random streams: a slice checked with its indices decides as the whole set does."""
    model, x, y = case
    kw = dict(eps=0.15, norm=norm, attacks=[("pgd", {"steps": 2, "restarts": 2})], seed=11)
    whole = robustest.check(model, x, y, **kw)
    parts = [robustest.check(model, x[a:b], y[a:b], indices=range(a, b), **kw) for a, b in ((0, 7), (7, 24))]
    assert [s.verdict for p in parts for s in p.samples] == whole.verdicts
    assert 0 < whole.counts()["falsified"] < len(y)  # some samples break, some survive
    with pytest.raises(InvalidArgument, match="indices="):
        robustest.check(model, x, y, indices=range(3), **kw)


@pytest.mark.parametrize("attacks", [[("square", {"queries": 40})], [("fab", {"restarts": 2})], "auto"])
def test_slices_decide_as_the_whole_set_with_every_attack(case, attacks):
    """Square draws per sample too (a counter-based hash per row), and targeted copies get their own."""
    model, x, y = case
    kw = dict(eps=0.15, attacks=attacks, seed=4, suppress_health_check=["masking"])
    whole = robustest.check(model, x, y, **kw)
    parts = [robustest.check(model, x[a:b], y[a:b], indices=range(a, b), **kw) for a, b in ((0, 9), (9, 24))]
    assert [s.verdict for p in parts for s in p.samples] == whole.verdicts
