"""Hand-built Reports for the reporting tests (no attack needed)."""

from __future__ import annotations

import pytest
import torch

from robustest.results import Report, SampleResult
from robustest.spec import LpBall


def build_report(verdicts, eps=0.05, norm="linf"):
    """A Report with one sample per verdict string; label 3, falsified ones flip to 5 by apgd."""
    samples = []
    for i, v in enumerate(verdicts):
        if v == "falsified":
            extra = dict(counterexample=torch.zeros(4), predicted=5, distance=0.049, figure=-0.3)
        elif v == "certified":
            extra = dict(figure=0.21)
        elif v == "misclassified":
            extra = dict(predicted=1)
        else:
            extra = dict(reason="budget ran out")
        samples.append(SampleResult(index=i, verdict=v, method="apgd" if v == "falsified" else "pgd",
                                    label=3, seconds=0.01 * (i + 1), **extra))
    return Report(samples=tuple(samples), ball=LpBall(eps, norm), escalate="attack", seed=7, seconds=1.5)


@pytest.fixture(scope="session")
def make_report():
    return build_report
