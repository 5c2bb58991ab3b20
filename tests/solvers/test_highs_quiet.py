"""HiGHS prints nothing: no banner on stdout (a CLI's output and pytest's stay clean)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = '''
import torch, robustest
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
x = torch.rand(3, 4)
y = net(x).argmax(1)
r = robustest.check(net, x, y, eps=0.05, escalate="milp", timeout=2)
print("verdicts", r.verdicts)
'''


def test_no_highs_banner_on_stdout():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("verdicts [") and "HiGHS" not in out.stdout + out.stderr
