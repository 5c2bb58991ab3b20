"""The CLI's status line: on a terminal only, with the library's steps and the time left."""

from __future__ import annotations

import io
import sys

import torch

import robustest
from robustest.cli import progress as cli_progress
from robustest.progress import Progress, tell


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_shows_the_steps_of_radius_on_a_terminal(monkeypatch):
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setattr(cli_progress, "TICK", 0.01)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).eval()
    x = torch.rand(3, 3, generator=torch.Generator().manual_seed(0))
    with cli_progress.status("robustest radius", budget=60):
        robustest.radius(net, x, net(x).argmax(1), norm="linf", exact=True, timeout=5, certifier="ibp")
    shown = term.getvalue()
    for step in ("radius: deepfool", "radius: rLR-QP", "radius: certified lower bound (ibp)",
                 "radius: exact minimum, 0/", "s left"):
        assert step in shown, step


def test_status_is_silent_in_a_log(capsys):
    with cli_progress.status("robustest vnnlib", budget=5):
        tell(Progress("check", "attack", 0, 1))
    assert capsys.readouterr().err == ""
