"""Scale-out benchmark: one 2,000-sample @robust test on the examples' digits MLP, run serially, as shards
under pytest-xdist (-n 2), as two CI slices merged by `robustest report --merge`, as Ray tasks on a local Ray
with 2 CPUs (`robustest check --executor ray`), and again with the verdict cache warm.

    python benchmarks/scale.py            # ~3-5 minutes on 2 cores; prints the markdown for scale.md

Every run must reach the same per-sample verdicts (checked here, the script fails otherwise). The samples
are the 1,797 scikit-learn digits plus 203 of them with Gaussian noise (sigma 0.02, clipped to [0, 1]), so
that there are 2,000; eps=0.08 linf with escalate="lp": CROWN certifies about 45%, the attacks falsify
about 40%, and about one sample in five goes on to the LP (certified there or left unknown). Each process
uses one torch thread, so two workers can use the machine's two cores.

Besides wall time it reports each run's CPU time (user + system of the processes it started: the Ray
workers are the raylet's children, so Ray's own row undercounts), because on a shared machine the wall
time says more about the other users' load than about the code; and, in one process, the CPU time of
robustest.check itself with the cache cold and warm.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Sequence

from _common import ROOT, machine, table

EPS, RUNG, N = 0.08, "lp", 2000

CONFTEST = '''
import pytest
import torch

torch.set_num_threads(1)

@pytest.fixture(scope="session")
def digits():
    data = torch.load("samples.pt")
    return data["inputs"], data["labels"]

@pytest.fixture(scope="session")
def model():
    from digits import mlp
    net = mlp()
    net.load_state_dict(torch.load("mlp.pt"))
    return net.eval()
'''

TEST = f'''
from robustest import robust

@robust(eps={EPS}, escalate="{RUNG}", timeout=30.0, min_pass=0.0, data="digits")
def test_digits_mlp(model, digits):
    pass
'''


def _samples(folder: Path) -> None:
    import torch
    from digits import load_model, load_split

    from robustest.io import save_data

    (xa, ya), (xb, yb) = load_split()
    x, y = torch.cat([xa, xb]), torch.cat([ya, yb])
    g = torch.Generator().manual_seed(0)
    extra = (x[: N - len(y)] + 0.02 * torch.randn(x[: N - len(y)].shape, generator=g)).clamp(0, 1)
    x, y = torch.cat([x, extra]), torch.cat([y, y[: N - len(y)]])
    torch.save({"inputs": x, "labels": y}, folder / "samples.pt")
    save_data(folder / "samples.npz", x, y)
    torch.save(load_model("mlp").state_dict(), folder / "mlp.pt")
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_bench.py").write_text(TEST)


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _pytest(folder: Path, *args: str) -> List[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_bench.py", *args]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _in_process(folder: Path) -> "tuple[float, float]":
    """CPU seconds of robustest.check on the 2,000 samples with the cache cold, then warm (this process)."""
    import torch
    from digits import mlp

    import robustest
    from robustest.cache import VerdictCache

    torch.set_num_threads(1)
    data = torch.load(folder / "samples.pt")
    net = mlp()
    net.load_state_dict(torch.load(folder / "mlp.pt"))
    cache = VerdictCache(folder / "in-process-cache")
    out = []
    for _ in range(2):
        start = time.process_time()
        robustest.check(net.eval(), data["inputs"], data["labels"], eps=EPS, escalate=RUNG, timeout=30.0,
                        cache=cache)
        out.append(time.process_time() - start)
    return out[0], out[1]


def _timed(folder: Path, *commands: Sequence[str]) -> float:
    """Wall seconds to run ``commands`` side by side (all started together, waited for together)."""
    start = time.perf_counter()
    procs = [subprocess.Popen(list(c), cwd=folder, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for c in commands]
    for c, p in zip(commands, procs):
        out, _ = p.communicate()
        if p.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(c)} failed ({p.returncode}):\n{out[-3000:]}")
    return time.perf_counter() - start


def _junit_verdicts(path: Path) -> Dict[int, str]:
    out = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        if "verdict" in props:
            out[int(tc.get("name", "").rsplit(" ", 1)[-1])] = str(props["verdict"])
    return out


def _json_verdicts(path: Path) -> Dict[int, str]:
    (test,) = json.loads(path.read_text())["tests"]
    return {int(s["index"]): s["verdict"] for s in test["record"]["samples"]}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="robustest-scale-"))
    _samples(folder)
    print(f"machine: {machine()}; samples in {folder}", flush=True)
    loads, times, cpu = {}, {}, {}

    def run(name: str, *commands: Sequence[str]) -> None:
        loads[name] = os.getloadavg()[0]
        before = _cpu()
        times[name] = _timed(folder, *commands)
        cpu[name] = _cpu() - before
        print(f"{name}: {times[name]:.1f} s, CPU {cpu[name]:.1f} s (1-min load {loads[name]:.2f} before)",
              flush=True)

    run("serial", _pytest(folder, "--robust-junit=serial.xml", "--robust-cache=readwrite"))
    run("cached re-run", _pytest(folder, "--robust-junit=cached.xml", "--robust-cache=readwrite"))
    run("-n 2, 2 shards", _pytest(folder, "-n", "2", "--robust-shards=2", "--robust-junit=xdist.xml",
                                  "--robust-cache=off"))
    run("--robust-shard 1/2 + 2/2", *(_pytest(folder, f"--robust-shard={k}/2", f"--robust-json=s{k}.json",
                                              "--robust-cache=off") for k in (1, 2)))
    merge_start = time.perf_counter()
    cli = str(Path(sys.executable).with_name("robustest"))
    subprocess.run([cli, "report", "--merge", "s1.json", "s2.json", "--junit", "merged.xml"], cwd=folder,
                   env=_env(), capture_output=True, check=False)
    times["--robust-shard 1/2 + 2/2"] += time.perf_counter() - merge_start
    from robustest.plugin.hooks import derive_seed

    seed = str(derive_seed(0, "test_bench.py::test_digits_mlp"))  # the @robust test's own seed
    check = [cli, "check", "mlp.pt", "samples.npz", "--model-class", "digits:mlp", "--eps", str(EPS),
             "--escalate", RUNG, "--timeout", "30", "--min-pass", "0", "--batch", "250", "--seed", seed]
    run("CLI, one process", [*check, "--json", "local.json"])
    run("CLI, Ray with 2 CPUs", [*check, "--json", "ray.json", "--executor", "ray", "--workers", "2"])

    serial = _junit_verdicts(folder / "serial.xml")
    assert len(serial) == N, len(serial)
    same = {"cached re-run": _junit_verdicts(folder / "cached.xml") == serial,
            "-n 2, 2 shards": _junit_verdicts(folder / "xdist.xml") == serial,
            "--robust-shard 1/2 + 2/2": _junit_verdicts(folder / "merged.xml") == serial,
            "CLI, one process": _json_verdicts(folder / "local.json") == serial,
            "CLI, Ray with 2 CPUs": (_json_verdicts(folder / "ray.json")
                                     == _json_verdicts(folder / "local.json") == serial)}
    counts: Dict[str, int] = {}
    for v in serial.values():
        counts[v] = counts.get(v, 0) + 1
    rows = []
    for name, t in times.items():
        base = times["CLI, one process"] if name.startswith("CLI") else times["serial"]
        rows.append((name, f"{t:.1f}", f"{base / t:.2f}x", f"{t / times['serial']:.1%}", f"{cpu[name]:.1f}",
                     f"{loads[name]:.2f}", "yes" if name == "serial" or same[name] else "NO"))
    cold, warm = _in_process(folder)
    print(f"\nverdicts of the serial run: {counts}\n")
    print(table(("run", "wall s", "speed-up vs its serial", "wall, share of serial pytest", "CPU s",
                 "load before", "same verdicts"), rows))
    print(f"\nrobustest.check in one process, CPU: cache cold {cold:.2f} s, warm {warm:.3f} s "
          f"({warm / cold:.1%} of cold)")
    if not all(same.values()):
        raise SystemExit(f"verdicts differ: {same}")


if __name__ == "__main__":
    main()
