"""Counterexample-guided repair (robustest.repair with test=): the rounds make a failing test pass, held-out
accuracy is a constraint, and every outcome is honest about what it did. The problem (``gap``, see
conftest.py) has a known fix: move a linear boundary into the gap between the classes."""

from __future__ import annotations

import warnings

import pytest
import torch

import robustest
from robustest.errors import InvalidArgument
from robustest.repair.guided import RepairWarning, _status
from robustest.repair.guided_settings import FITS_TEST_ONLY, FIXED, NOT_PASSING, UNMEASURED, GuidedSettings
from robustest.repair.guided_types import HoldoutFigures, RepairTest


def gate(gap) -> RepairTest:
    return RepairTest(gap.x, gap.y, check={"eps": 0.08, "seed": 0})


def test_guided_repair_makes_the_failing_test_pass_and_keeps_held_out_accuracy(gap):
    model = gap.model()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    before = gate(gap).run(model)
    assert before.counts()["falsified"] == 2 and not gate(gap).passes(before)
    res = robustest.repair(model, train=gap.data(200, 0), test=gate(gap))
    assert res.status == FIXED and res.accepted and res.passed, res.summary()
    assert gate(gap).passes(gate(gap).run(res.model))  # an independent re-check, not the result's own report
    assert res.after.counts()["falsified"] == 0 and res.remaining == ()
    assert res.holdout_after.clean >= res.holdout_before.clean - 0.01
    assert res.holdout_after.robust >= res.holdout_before.robust
    assert res.rounds and res.rounds[-1].failing == 0 and res.distance > 0
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())  # original untouched
    text = res.summary()
    assert "fixed" in text and "falsified 2 -> 0" in text and "held-out" in text and "|w-w0|" in text


def test_the_rounds_reuse_the_pool_and_stop_at_the_round_budget_with_the_remaining_failures(gap):
    # a class-1 sample at x0 = 0.45 sits among class-0 training points: not fixable within the loss cut
    x = torch.cat([gap.x, torch.tensor([[0.45, 0.5]])])
    y = torch.cat([gap.y, torch.tensor([1])])
    test = RepairTest(x, y, check={"eps": 0.08, "seed": 0})
    # plain cuts: the robust ones move the boundary far enough to cost held-out accuracy (the tolerance
    # stops them, which the next test covers)
    res = robustest.repair(gap.model(), train=gap.data(200, 0), test=test, method="guided",
                           guided=GuidedSettings(rounds=3, robust_linearisation=False))
    assert res.status == NOT_PASSING and not res.accepted and not res.passed
    assert res.stop_reason == "round budget reached" and len(res.rounds) == 3
    pools = [r.pool for r in res.rounds]
    assert pools == sorted(pools) and pools[0] < pools[-1]  # earlier counterexamples are kept
    assert 8 in res.remaining and "still failing" in res.summary()


def test_a_round_that_drops_held_out_accuracy_beyond_the_tolerance_is_rejected_with_the_figures(gap):
    # held-out class-0 points at x0 = 0.52..0.55 that the test's class-1 samples at 0.6 cannot spare
    hold_x = torch.tensor([[0.52, 0.2], [0.53, 0.5], [0.55, 0.7], [0.2, 0.5], [0.8, 0.5], [0.9, 0.1]])
    hold_y = torch.tensor([0, 0, 0, 0, 1, 1])
    test = RepairTest(torch.tensor([[0.6, 0.5], [0.61, 0.2], [0.3, 0.3]]), torch.tensor([1, 1, 0]),
                      check={"eps": 0.08, "seed": 0})
    res = robustest.repair(gap.model(0.65), train=gap.data(200, 0), holdout=(hold_x, hold_y), test=test,
                           method="guided", guided=GuidedSettings(accuracy_tolerance=0.01))
    assert res.status == NOT_PASSING and not res.accepted
    assert res.stop_reason == "held-out accuracy tolerance reached"
    assert not res.rounds[-1].kept
    assert any("rejected: held-out clean accuracy 100.0% ->" in n for n in res.notes)
    assert res.holdout_after.clean == res.holdout_before.clean == 1.0  # the kept model is the last good one


def test_without_training_data_it_warns_that_accuracy_cannot_be_protected(gap):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = robustest.repair(gap.model(), test=gate(gap))
    assert any(issubclass(w.category, RepairWarning) and "repair_data" in str(w.message) for w in caught)
    assert res.status == UNMEASURED and res.holdout_before is None


def test_adversarial_finetune_and_one_shot_are_modes_of_the_same_rounds(gap):
    res = robustest.repair(gap.model(), train=gap.data(200, 0), test=gate(gap), method="adversarial-finetune",
                           guided=GuidedSettings(finetune_lr=1e-2))
    assert res.method == "adversarial-finetune" and res.passed
    one = robustest.repair(gap.model(), train=gap.data(200, 0), test=gate(gap), until="fixed")
    assert one.method == "one-shot" and len(one.rounds) == 1


def test_status_fits_the_test_only_when_held_out_robustness_drops():
    s = GuidedSettings()
    before = HoldoutFigures(samples=100, clean=0.98, robust=0.72)
    assert _status(True, before, HoldoutFigures(100, 0.975, 0.72), s) == FIXED
    assert _status(True, before, HoldoutFigures(100, 0.98, 0.68), s) == FITS_TEST_ONLY
    assert _status(True, before, HoldoutFigures(100, 0.96, 0.80), s) == FITS_TEST_ONLY  # 2 points of clean lost
    assert _status(False, before, HoldoutFigures(100, 0.98, 0.80), s) == NOT_PASSING
    assert _status(True, None, None, s) == UNMEASURED
    assert not GuidedSettings(save_anyway=False).save_anyway


@pytest.mark.parametrize("kwargs, name", [({"method": "magic"}, "method"), ({"until": "forever"}, "until"),
                                          ({"guided": {"rounds": 3}}, "guided")])
def test_bad_options_name_the_argument(gap, kwargs, name):
    with pytest.raises(InvalidArgument, match=name):
        robustest.repair(gap.model(), train=gap.data(20, 0), test=gate(gap), **kwargs)


def test_bad_test_and_settings_are_refused_clearly(gap):
    with pytest.raises(InvalidArgument, match="eps"):
        RepairTest(gap.x, gap.y, check={"norm": "linf"})
    with pytest.raises(InvalidArgument, match="bogus"):
        RepairTest(gap.x, gap.y, check={"eps": 0.1, "bogus": 1})
    with pytest.raises(InvalidArgument, match="time_budget"):
        GuidedSettings(time_budget=0)
    with pytest.raises(InvalidArgument, match="test"):
        robustest.repair(gap.model(), train=gap.data(20, 0), method="adversarial-finetune")


def test_the_final_model_is_rechecked_with_the_full_ladder_and_certificates_are_counted(gap):
    test = RepairTest(gap.x, gap.y, check={"eps": 0.08, "seed": 0, "escalate": "crown"})
    res = robustest.repair(gap.model(), train=gap.data(200, 0), test=test)
    assert res.after.escalate == "crown" and res.before.escalate == "crown"
    # a linear model: CROWN is exact, so every sample that survives the attacks is certified
    assert res.after.counts()["certified"] == len(gap.y) and res.lost_certificates == 0
    assert res.before.counts()["certified"] == len(gap.y) - 2 and res.status == FIXED


def test_a_one_shot_option_given_with_a_test_is_refused_not_ignored(gap):
    with pytest.raises(InvalidArgument, match="margin=0.5 .*GuidedSettings"):
        robustest.repair(gap.model(), train=gap.data(20, 0), test=gate(gap), margin=0.5)


# --- method="auto" (the default) and the time budget ------------------------------------------------------
CHEAP = {"adversarial_loss_cut": False, "robust_guard": False, "protect": 0, "least_step": False,
         "neighbours": 0, "finetune_lr": 1e-2, "holdout_limit": 20}


def test_auto_keeps_the_guided_model_when_it_is_a_fix_and_runs_no_fallback(gap):
    res = robustest.repair(gap.model(), train=gap.data(200, 0), test=gate(gap), guided=GuidedSettings(**CHEAP))
    assert res.method == "auto: guided" and res.status == FIXED and res.accepted
    assert [s.method for s in res.details["stages"]] == ["guided"]
    assert res.model is res.details["stages"][0].model


def test_auto_falls_back_to_fine_tuning_from_the_original_on_the_same_held_out_split(gap):
    # one plain-cut QP in one round: the re-attack finds new counterexamples, so the guided stage fails
    settings = GuidedSettings(rounds=1, iterations=1, margin=0.0, robust_linearisation=False, **CHEAP)
    model = gap.model()
    res = robustest.repair(model, train=gap.data(200, 0), test=gate(gap), guided=settings)
    guided, tuned = res.details["stages"]
    assert (guided.method, guided.status) == ("guided", NOT_PASSING)
    assert (tuned.method, tuned.status) == ("adversarial-finetune", FIXED)
    assert res.method == "auto: adversarial-finetune" and res.accepted and res.model is tuned.model
    assert tuned.holdout_before == guided.holdout_before  # one judge for both stages
    with torch.no_grad():  # the fine-tuning started from the original, not from the guided model
        moved = float(torch.cat([(p - q).flatten() for p, q in zip(tuned.model.parameters(),
                                                                   model.parameters())]).norm())
    assert tuned.distance == pytest.approx(moved, rel=1e-5)
    assert len(tuned.rounds) <= settings.fallback_rounds and res.seconds >= guided.seconds + tuned.seconds - 1e-6
    assert gate(gap).passes(gate(gap).run(res.model))
    assert any("kept the adversarial-finetune model" in n for n in res.notes)


def test_auto_keeps_the_better_outcome_honestly_when_neither_stage_is_a_fix(gap, monkeypatch):
    from robustest.repair import auto

    real = auto.guided_repair

    def worse(*args, **kwargs):  # the fine-tuning stage cannot move: lr so small nothing changes
        if kwargs["method"] == "adversarial-finetune":
            kwargs["settings"] = GuidedSettings(**{**CHEAP, "finetune_lr": 1e-12, "fallback_rounds": 1})
            kwargs["settings"] = auto.stage_settings(kwargs["settings"], "adversarial-finetune", left=30.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(auto, "guided_repair", worse)
    settings = GuidedSettings(rounds=1, iterations=1, margin=0.0, robust_linearisation=False, **CHEAP)
    res = robustest.repair(gap.model(), train=gap.data(200, 0), test=gate(gap), guided=settings)
    assert [s.status for s in res.details["stages"]] == [NOT_PASSING, NOT_PASSING]
    assert res.method == "auto: guided" and not res.accepted and res.status == NOT_PASSING and res.remaining
    assert any("neither is accepted as a fix" in n for n in res.notes)


def test_auto_starts_no_fallback_without_time_left(gap):
    settings = GuidedSettings(rounds=1, iterations=1, margin=0.0, robust_linearisation=False,
                              time_budget=2.0, auto_guided_share=1.0, **CHEAP)
    res = robustest.repair(gap.model(), train=gap.data(200, 0), test=gate(gap), guided=settings)
    # a 2 s budget leaves under the 5 s a fallback needs
    assert [s.method for s in res.details["stages"]] == ["guided"] and res.method == "auto: guided"
    assert any("no adversarial-finetune fallback" in n for n in res.notes)


def test_the_rounds_leave_the_budget_room_for_the_final_recheck_and_held_out_figures(gap):
    from robustest.repair.guided import guided_repair

    test = gate(gap)
    first = guided_repair(gap.model(), test, train=gap.data(200, 0), holdout=None, method="guided", seed=0,
                          settings=GuidedSettings(rounds=1, **CHEAP))
    # the held-out figures "took" 100 s of a 60 s budget: no round may start, the original is kept
    res = guided_repair(gap.model(), test, train=gap.data(200, 0), holdout=None, method="guided", seed=0,
                        settings=GuidedSettings(time_budget=60.0, **CHEAP),
                        baseline=(first.holdout_before, 100.0))
    assert res.rounds == () and res.stop_reason == "time budget of 60 s reached" and res.status == NOT_PASSING
    assert any("100 s of the budget left for the final re-check" in n for n in res.notes)
    assert res.details["reserve_seconds"] == 100.0 and res.distance == 0.0
    assert res.holdout_before == first.holdout_before


def test_auto_settings_are_validated():
    with pytest.raises(InvalidArgument, match="auto_guided_share"):
        GuidedSettings(auto_guided_share=0)
    with pytest.raises(InvalidArgument, match="fallback_rounds"):
        GuidedSettings(fallback_rounds=0)


def test_fine_tuning_that_fits_the_test_only_goes_on_until_the_held_out_judge_accepts_it(gap):
    import dataclasses

    from robustest.repair.auto import keep_training

    settings = GuidedSettings(fallback_rounds=6, **CHEAP)
    tuned = robustest.repair(gap.model(), train=gap.data(200, 0), test=gate(gap), method="adversarial-finetune",
                             guided=settings)
    assert tuned.passed
    # a judge the fine-tuned model just misses (its own held-out robust accuracy plus a little)
    strict = dataclasses.replace(tuned.holdout_after, robust=tuned.holdout_after.robust - 1e-9)
    missed = dataclasses.replace(tuned, status=FITS_TEST_ONLY, accepted=False, holdout_before=strict)
    more, tried = keep_training(gap.model(), missed, gate(gap), train=gap.data(200, 0), holdout=None,
                                settings=settings, seed=0, deadline=float("inf"))
    assert more.status == FIXED and more.accepted and tried >= 1 and len(more.rounds) == len(tuned.rounds) + tried
    assert more.model is not tuned.model and more.holdout_after.robust >= strict.robust
    assert gate(gap).passes(gate(gap).run(more.model))
    # a judge no model can pass: the rounds run out and the fine-tuned model comes back as it was
    impossible = dataclasses.replace(missed, holdout_before=dataclasses.replace(strict, robust=2.0))
    same, tried = keep_training(gap.model(), impossible, gate(gap), train=gap.data(200, 0), holdout=None,
                                settings=settings, seed=0, deadline=float("inf"))
    assert same is impossible and same.status == FITS_TEST_ONLY and tried == 6 - len(tuned.rounds) > 0
