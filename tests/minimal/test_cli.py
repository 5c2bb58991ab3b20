"""``robustest radius``: runs end to end on files and writes a JSON report; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from robustest.cli import main
from robustest.io import save_data


def test_radius_command_writes_json(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)).eval()
    x = torch.rand(3, 3, generator=torch.Generator().manual_seed(0))
    y = net(x).argmax(1)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    save_data(str(tmp_path / "d.npz"), x, y)
    (tmp_path / "tinynet.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Sequential):\n"
        "    def __init__(self):\n"
        "        super().__init__(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        status = main(["radius", str(tmp_path / "w.pt"), str(tmp_path / "d.npz"), "--module", "tinynet:Net",
                       "--norm", "linf", "--certifier", "none", "--json", str(tmp_path / "r.json")])
    finally:
        sys.path.remove(str(tmp_path))
    assert status == 0
    out = json.loads((tmp_path / "r.json").read_text())
    assert out["norm"] == "linf" and len(out["samples"]) == 3
    for s in out["samples"]:
        assert s["upper"] is None or s["lower"] <= s["upper"]
    assert "radius (linf)" in capsys.readouterr().out
    assert main(["radius", str(tmp_path / "w.pt"), str(tmp_path / "d.npz"), "--module", "tinynet:Net",
                 "--norm", "l7"]) == 2
