"""Scale-out benchmark: one @robust test on the examples' digits MLP, run serially, as shards under
pytest-xdist (-n 2), as two CI slices merged by `robustest report --merge`, as Ray tasks on a local Ray
with 2 CPUs (`robustest check --executor ray`), and again with the verdict cache warm; in two
configurations: 2,000 samples (the issue's) and 10,000 (the same test on five times the samples, the
issue's "10,000-sample certification test"), and where a pytest process's fixed time goes.

    python benchmarks/scale.py            # ~8-10 minutes on 2 idle cores; prints the markdown for scale.md
    python benchmarks/scale.py 2000       # one configuration only

Every run must reach the same per-sample verdicts (checked here, the script fails otherwise). The samples
are the 1,797 scikit-learn digits plus 203 of them with Gaussian noise (sigma 0.02, clipped to [0, 1]), so
that there are 2,000 (10,000: 8,203 noisy copies, the digits over and over); eps=0.08 linf with
escalate="lp": CROWN certifies about 45%, the attacks falsify about 40%, and about one sample in five
goes on to the LP (certified there or left unknown). Each process uses one torch thread, so two workers
can use the machine's two cores.

Besides wall time it reports each run's CPU time (user + system of the processes it started: the Ray
workers are the raylet's children, so Ray's own row undercounts), because on a shared machine the wall
time says more about the other users' load than about the code; and, in one process, the CPU time of
robustest.check itself with the cache cold and warm (2,000 samples).

Where the fixed time goes: every pytest run loads :mod:`_phases` (``-p _phases``), which stamps CPU and
wall time at pytest's phase boundaries in each process; a "floor" run (the same conftest and fixtures, a
test without ``@robust``) gives what Python, pytest, its plugins, torch and the fixtures cost without any
robustest work. The conftest imports torch inside its fixtures, so that pytest-xdist's controller, which
runs no test, does not import it (robustest's plugin does not either).
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
from typing import Any, Dict, List, Optional, Sequence, Tuple

from _common import ROOT, machine, table

EPS, RUNG = 0.08, "lp"
SIZES = (2000, 10000)
PHASES = ("before plugins", "configure", "collection", "fixtures", "test", "reports", "summary")

# torch is imported in the fixtures, not at the top: pytest-xdist's controller loads the conftest but runs
# no test, so it need not pay torch's import (~1.3 s of CPU) before starting the workers
CONFTEST = '''
import pytest

@pytest.fixture(scope="session")
def digits():
    import torch

    torch.set_num_threads(1)
    data = torch.load("samples.pt")
    return data["inputs"], data["labels"]

@pytest.fixture(scope="session")
def model():
    import torch
    from digits import mlp

    torch.set_num_threads(1)
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

FLOOR = '''
def test_floor(model, digits):  # the same fixtures, no @robust: what a pytest process costs without robustest
    assert len(digits[1]) > 0
'''


def _samples(folder: Path, n: int) -> None:
    import torch
    from digits import load_model, load_split

    from robustest.io import save_data

    (xa, ya), (xb, yb) = load_split()
    digits_x, digits_y = torch.cat([xa, xb]), torch.cat([ya, yb])
    g = torch.Generator().manual_seed(0)
    x, y = digits_x[:n], digits_y[:n]
    while len(y) < n:  # noisy copies of the digits, in order, until there are n samples
        k = min(n - len(y), len(digits_y))
        extra = (digits_x[:k] + 0.02 * torch.randn(digits_x[:k].shape, generator=g)).clamp(0, 1)
        x, y = torch.cat([x, extra]), torch.cat([y, digits_y[:k]])
    torch.save({"inputs": x, "labels": y}, folder / "samples.pt")
    save_data(folder / "samples.npz", x, y)
    torch.save(load_model("mlp").state_dict(), folder / "mlp.pt")
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_bench.py").write_text(TEST)
    (folder / "test_floor.py").write_text(FLOOR)


def _env(phases: Optional[Path] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), str(ROOT / "benchmarks"),
                                         env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    if phases is not None:
        env["ROBUSTEST_PHASES"] = str(phases)
    return env


def _pytest(*args: str, test: str = "test_bench.py") -> List[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "_phases", "-q", test, *args]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _in_process(folder: Path) -> "Tuple[float, float]":
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


def _timed(folder: Path, *commands: Sequence[str], phases: Optional[Path] = None) -> float:
    """Wall seconds to run ``commands`` side by side (all started together, waited for together)."""
    start = time.perf_counter()
    procs = [subprocess.Popen(list(c), cwd=folder, env=_env(phases), stdout=subprocess.PIPE,
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


def _phase_rows(path: Path, cpu_total: float) -> Dict[str, Dict[str, float]]:
    """{process: {phase: CPU s}} from one run's _phases lines; the main process also gets "exit" (its
    total CPU, from the operating system, minus the stamped phases: shutdown), when it was alone."""
    out: Dict[str, Dict[str, float]] = {}
    for line in path.read_text().splitlines():
        data = json.loads(line)
        out[data["process"]] = {k: v["cpu"] for k, v in data["phases"].items()}
        out[data["process"]]["torch imported"] = float(data["torch imported"])
    if set(out) == {"main"}:
        out["main"]["exit"] = cpu_total - sum(v for k, v in out["main"].items() if k in PHASES)
    return out


def _configuration(n: int) -> Dict[str, Any]:
    """Every run of one configuration (n samples) in a fresh folder; the figures and the checks."""
    folder = Path(tempfile.mkdtemp(prefix=f"robustest-scale-{n}-"))
    _samples(folder, n)
    print(f"\n## {n} samples (in {folder}); {machine()}", flush=True)
    loads: Dict[str, float] = {}
    times: Dict[str, float] = {}
    cpu: Dict[str, float] = {}
    phases: Dict[str, Dict[str, Dict[str, float]]] = {}

    def run(name: str, *commands: Sequence[str]) -> None:
        loads[name] = os.getloadavg()[0]
        stamps = folder / f"phases-{len(times)}.jsonl"
        before = _cpu()
        times[name] = _timed(folder, *commands, phases=stamps)
        cpu[name] = _cpu() - before
        if stamps.exists():
            phases[name] = _phase_rows(stamps, cpu[name])
        print(f"{name}: {times[name]:.1f} s, CPU {cpu[name]:.1f} s (1-min load {loads[name]:.2f} before)",
              flush=True)

    run("floor (no @robust)", _pytest(test="test_floor.py"))
    run("serial", _pytest("--robust-junit=serial.xml", "--robust-cache=readwrite"))
    run("cached re-run", _pytest("--robust-junit=cached.xml", "--robust-cache=readwrite"))
    run("-n 2, 2 shards", _pytest("-n", "2", "--robust-shards=2", "--robust-junit=xdist.xml",
                                  "--robust-cache=off"))
    run("--robust-shard 1/2 + 2/2", *(_pytest(f"--robust-shard={k}/2", f"--robust-json=s{k}.json",
                                              "--robust-cache=off") for k in (1, 2)))
    merge_start = time.perf_counter()
    cli = str(Path(sys.executable).with_name("robustest"))
    subprocess.run([cli, "report", "--merge", "s1.json", "s2.json", "--junit", "merged.xml"], cwd=folder,
                   env=_env(), capture_output=True, check=False)
    times["merge"] = time.perf_counter() - merge_start
    times["--robust-shard 1/2 + 2/2"] += times["merge"]
    from robustest.plugin.hooks import derive_seed

    seed = str(derive_seed(0, "test_bench.py::test_digits_mlp"))  # the @robust test's own seed
    check = [cli, "check", "mlp.pt", "samples.npz", "--model-class", "digits:mlp", "--eps", str(EPS),
             "--escalate", RUNG, "--timeout", "30", "--min-pass", "0", "--batch", str(n // 8), "--seed", seed]
    run("CLI, one process", [*check, "--json", "local.json"])
    run("CLI, Ray with 2 CPUs", [*check, "--json", "ray.json", "--executor", "ray", "--workers", "2"])

    serial = _junit_verdicts(folder / "serial.xml")
    assert len(serial) == n, len(serial)
    same = {"cached re-run": _junit_verdicts(folder / "cached.xml") == serial,
            "-n 2, 2 shards": _junit_verdicts(folder / "xdist.xml") == serial,
            "--robust-shard 1/2 + 2/2": _junit_verdicts(folder / "merged.xml") == serial,
            "CLI, one process": _json_verdicts(folder / "local.json") == serial,
            "CLI, Ray with 2 CPUs": (_json_verdicts(folder / "ray.json")
                                     == _json_verdicts(folder / "local.json") == serial)}
    counts: Dict[str, int] = {}
    for v in serial.values():
        counts[v] = counts.get(v, 0) + 1
    return {"n": n, "times": times, "cpu": cpu, "loads": loads, "phases": phases, "same": same,
            "counts": counts, "folder": folder}


def _report(res: Dict[str, Any]) -> None:
    times, cpu, loads, same = res["times"], res["cpu"], res["loads"], res["same"]
    rows = []
    for name, t in times.items():
        if name in ("merge", "floor (no @robust)"):
            continue
        base = times["CLI, one process"] if name.startswith("CLI") else times["serial"]
        rows.append((name, f"{t:.1f}", f"{base / t:.2f}x", f"{t / times['serial']:.1%}", f"{cpu[name]:.1f}",
                     f"{loads[name]:.2f}", "yes" if name == "serial" or same[name] else "NO"))
    print(f"\n### {res['n']} samples: verdicts of the serial run {res['counts']}\n")
    print(table(("run", "wall s", "speed-up vs its serial", "wall, share of serial pytest", "CPU s",
                 "load before", "same verdicts"), rows))
    print(f"\nfloor (same conftest and fixtures, no @robust): {times['floor (no @robust)']:.1f} s wall, "
          f"{cpu['floor (no @robust)']:.1f} s CPU; `robustest report --merge` of the two slices: "
          f"{times['merge']:.1f} s wall")
    columns = [("floor (no @robust)", "main"), ("serial", "main"), ("cached re-run", "main"),
               ("-n 2, 2 shards", "main"), ("-n 2, 2 shards", "gw0"), ("-n 2, 2 shards", "gw1")]
    columns = [(r, p) for r, p in columns if p in res["phases"].get(r, {})]
    def title(run: str, process: str) -> str:
        if process != "main":
            return f"{run} {process}"
        return f"{run} (controller)" if run.startswith("-n") else run

    head = ["phase, CPU s"] + [title(r, p) for r, p in columns]
    body = []
    for phase in (*PHASES, "exit", "torch imported"):
        cells = [res["phases"][r][p].get(phase) for r, p in columns]
        if phase == "torch imported":
            body.append([phase] + ["yes" if c else "no" for c in cells])
        else:
            body.append([phase] + ["" if c is None else f"{c:.2f}" for c in cells])
    print("\n" + table(head, body))


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    results = [_configuration(n) for n in sizes]
    for res in results:
        _report(res)
    if 2000 in sizes:
        cold, warm = _in_process(next(r["folder"] for r in results if r["n"] == 2000))
        print(f"\nrobustest.check in one process, 2,000 samples, CPU: cache cold {cold:.2f} s, warm "
              f"{warm:.3f} s ({warm / cold:.1%} of cold)")
    bad = {r["n"]: r["same"] for r in results if not all(r["same"].values())}
    if bad:
        raise SystemExit(f"verdicts differ: {bad}")


if __name__ == "__main__":
    main()
