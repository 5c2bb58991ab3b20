"""Code must run unchanged on CUDA: inside the engine (provers, bound algorithms, attacks, the ladder, the
VNN-LIB stages) no tensor is created without saying where. A torch factory call (``torch.zeros``,
``ones``, ``eye``, ``arange``, ``tensor``, ``full``, ``empty``, ``rand``, ``randn``, ``randint``,
``linspace``, ``as_tensor``, ``randperm``) without ``device=`` makes a CPU tensor whatever the model's
device, and the first operation mixing it with a CUDA tensor fails; ``device="cpu"`` is allowed, as a
deliberate choice (a property parsed from a file, the CPU copies of the branch and bound).

A static scan: there is no GPU on the machines the suite runs on, and the ``meta`` device cannot run the
provers (they read values: ``.item()``, solver calls)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "robustest"
SCANNED = ("provers", "certify", "attacks", "vnnlib", "ladder.py")
FACTORIES = {"zeros", "ones", "eye", "arange", "tensor", "full", "empty", "rand", "randn", "randint",
             "linspace", "as_tensor", "randperm"}


def factory_calls_without_device(source: str) -> list[int]:
    """Line numbers of ``torch.<factory>(...)`` calls with no ``device=`` keyword."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Attribute) and func.attr in FACTORIES and isinstance(func.value, ast.Name) \
                and func.value.id == "torch" and not any(k.arg == "device" for k in node.keywords):
            lines.append(node.lineno)
    return lines


def test_the_scan_finds_what_it_looks_for():
    source = "import torch\nx = torch.zeros(3)\ny = torch.ones(2, device=d)\n"
    assert factory_calls_without_device(source) == [2]
    assert factory_calls_without_device("z = torch.full((2,), 1.0, dtype=t)") == [1]
    assert factory_calls_without_device("w = x.new_zeros(3); v = torch.zeros_like(x)") == []


def test_no_tensor_of_the_engine_is_created_without_a_device():
    files = [f for name in SCANNED
             for f in ((SRC / name).rglob("*.py") if (SRC / name).is_dir() else [SRC / name])]
    assert len(files) > 20
    found = [f"{f.relative_to(SRC)}:{n}" for f in files for n in factory_calls_without_device(f.read_text())]
    assert not found, ("tensors created without device= (pass the model's or the input's device, e.g. "
                       f"device=x.device, or device='cpu' where the CPU is meant): {found}")
