"""Where the CLI's independent pieces of work run: in this process, a local process pool, or Ray.

``robustest check --executor ...`` sends slices of the samples (each checked with its ``indices``, so the
verdicts are those of one serial run), ``robustest vnnlib --instances`` sends instances. Each piece
carries its own budget (the per-sample ``timeout`` of :func:`robustest.check`, the instance's timeout).

- ``local`` (the default): one after the other in this process;
- ``pool``: a local process pool of ``workers`` processes;
- ``ray`` / ``ray=ADDRESS``: Ray tasks of one CPU each, on the cluster at ADDRESS, or on a local Ray that
  the command starts with ``workers`` CPUs and stops again (``pip install 'robustest[ray]'``).

    >>> parse_executor("ray=ray://head:10001")
    Executor(kind='ray', address='ray://head:10001', workers=2)
    >>> Executor().map(pow, [(2, 3), (3, 2)])
    [8, 9]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .errors import invalid_argument

__all__ = ["Executor", "parse_executor", "EXECUTORS"]

EXECUTORS: Tuple[str, ...] = ("local", "pool", "ray")
_log = logging.getLogger("robustest.executors")

Done = Optional[Callable[[int, Any], None]]


def parse_executor(text: str, *, workers: int = 2) -> "Executor":
    """``local``, ``pool`` or ``ray[=ADDRESS]`` as an :class:`Executor`."""
    kind, _, address = str(text).partition("=")
    if kind not in EXECUTORS or (address and kind != "ray") or (kind == "ray" and _ and not address):
        raise invalid_argument("--executor", text, "local, pool, ray or ray=ADDRESS",
                               "pass --executor ray for a local Ray, or --executor ray=ray://HOST:10001")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise invalid_argument("--workers", workers, "an integer >= 1", "pass --workers 2")
    return Executor(kind, address or None, workers)


def _one_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in a worker process with one torch thread (the workers share the machine's cores)."""
    import torch

    torch.set_num_threads(1)
    return fn(*args)


@dataclass(frozen=True)
class Executor:
    """Runs ``fn(*args)`` for each argument tuple and returns the results in order (see the module doc)."""

    kind: str = "local"
    address: Optional[str] = None
    workers: int = 2

    def map(self, fn: Callable[..., Any], calls: Sequence[Tuple[Any, ...]], *, shared: Tuple[Any, ...] = (),
            done: Done = None) -> List[Any]:
        """``[fn(*shared, *c) for c in calls]``; ``shared`` (e.g. the model) is sent to each worker once
        where the executor can; ``done(i, result)`` is called as each finishes (in any order)."""
        runner = {"local": self._local, "pool": self._pool, "ray": self._ray}[self.kind]
        return runner(fn, list(calls), shared, done)

    def _local(self, fn: Callable[..., Any], calls: List[Tuple[Any, ...]], shared: Tuple[Any, ...],
               done: Done) -> List[Any]:
        out = []
        for i, c in enumerate(calls):
            out.append(fn(*shared, *c))
            if done:
                done(i, out[-1])
        return out

    def _pool(self, fn: Callable[..., Any], calls: List[Tuple[Any, ...]], shared: Tuple[Any, ...],
              done: Done) -> List[Any]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        out: List[Any] = [None] * len(calls)
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_one_thread, fn, *shared, *c): i for i, c in enumerate(calls)}
            for fut in as_completed(futures):
                out[futures[fut]] = fut.result()
                if done:
                    done(futures[fut], out[futures[fut]])
        return out

    def _ray(self, fn: Callable[..., Any], calls: List[Tuple[Any, ...]], shared: Tuple[Any, ...],
             done: Done) -> List[Any]:
        try:
            import ray
        except ImportError:
            raise invalid_argument("--executor", "ray", "Ray installed",
                                   "pip install 'robustest[ray]'") from None
        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:  # a local Ray of its own, gone again when the command ends
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
            _log.info("Ray started: %s", ray.cluster_resources())
        try:
            task = ray.remote(num_cpus=1)(_one_thread)
            refs = [ray.put(s) for s in shared]  # sent once, resolved in each task
            pending = {task.remote(fn, *refs, *c): i for i, c in enumerate(calls)}
            out: List[Any] = [None] * len(calls)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(ready[0])
                out[i] = ray.get(ready[0])
                if done:
                    done(i, out[i])
            return out
        finally:
            if started:
                ray.shutdown()
