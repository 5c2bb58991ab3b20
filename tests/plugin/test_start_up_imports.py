"""Loading the plugin stays light: no torch and no Hypothesis at pytest start-up."""

from __future__ import annotations

import subprocess
import sys


def test_the_plugin_imports_neither_torch_nor_hypothesis():
    code = ("import sys, robustest.plugin, robustest.settings, robustest.reporting.junit; "
            "print(sorted(m for m in ('torch', 'hypothesis', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
