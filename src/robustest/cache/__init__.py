"""The verdict cache: decided verdicts stored under ``.robustest_cache/`` and reused when nothing changed.

A re-run of a check whose model, samples, threat model, ladder, options, seed and robustest code are all
unchanged (see :mod:`robustest.cache.keys` for the key) takes each decided verdict from the cache instead
of recomputing it. The rules for reuse:

- a **falsified** verdict is reused only after its stored counterexample passes the same forward-pass
  re-check as a fresh one (it must change the label and lie in the ball and the domain), so the cache can
  never be the sole source of a counterexample;
- a **certified** verdict is trusted as stored: the key pins the model's parameters and structure, the
  sample's bytes, the threat model and the certifier settings, so the proof that was found is a proof of
  exactly this question. (Edit the model's code outside its modules' ``forward`` methods, or hand-edit
  the cache file, and this no longer holds: delete ``.robustest_cache/`` or run with ``cache="off"``);
- a decided verdict is reused when it was reached within a budget no larger than the current one; an
  **unknown** is reused only while the budget is no larger than the one it ran out of, so a larger budget
  retries it;
- misclassified samples are never stored (the clean forward pass decides them anyway).

The store is one SQLite file in WAL mode (many readers, one writer at a time, waiting for each other),
so pytest-xdist workers and concurrent CI jobs on one machine can share it. Every row carries a checksum
of its content; a file SQLite cannot read or a row whose checksum fails is ignored with a
:class:`CacheWarning`, never trusted.

    >>> import tempfile, torch, robustest
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    >>> x, y = torch.rand(5, 4), torch.zeros(5, dtype=torch.long)
    >>> cache = VerdictCache(tempfile.mkdtemp())
    >>> first = robustest.check(model, x, y, eps=0.01, escalate="crown", cache=cache)
    >>> again = robustest.check(model, x, y, eps=0.01, escalate="crown", cache=cache)
    >>> decided = first.counts()["certified"] + first.counts()["falsified"]
    >>> again.verdicts == first.verdicts, again.cached == decided
    (True, True)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import caller_stacklevel, invalid_argument

__all__ = ["VerdictCache", "CachedVerdict", "CacheWarning", "CACHE_MODES", "DEFAULT_DIR", "as_cache"]

CACHE_MODES: Tuple[str, ...] = ("off", "read", "write", "readwrite")
DEFAULT_DIR = ".robustest_cache"
DB_FILE = "verdicts.sqlite"
#: seconds a writer waits for another process's transaction (xdist workers, concurrent jobs)
BUSY_TIMEOUT_S = 60.0
_TABLE = "verdicts_v1"
_log = logging.getLogger("robustest.cache")


class CacheWarning(UserWarning):
    """The cache could not be used (unreadable file, failed checksum); the check ran without it."""


@dataclass(frozen=True)
class CachedVerdict:
    """One stored verdict: what :class:`~robustest.SampleResult` needs, the budget it was reached in and,
    for a falsified sample, the counterexample (raw bytes with dtype and shape)."""

    verdict: str
    method: str
    budget: float
    seconds: float
    figure: Optional[float] = None
    predicted: Optional[int] = None
    distance: Optional[float] = None
    reason: str = ""
    ce_dtype: str = ""
    ce_shape: Tuple[int, ...] = ()

    def usable(self, budget: float) -> bool:
        """Whether this verdict answers a check with ``budget`` seconds per sample (see the module doc)."""
        if self.verdict == "unknown":
            return budget <= self.budget * (1 + 1e-9)
        return self.budget <= budget * (1 + 1e-9)


def _checksum(key: str, payload: str, blob: bytes) -> str:
    return hashlib.sha256(b"\0".join((key.encode(), payload.encode(), blob))).hexdigest()


class VerdictCache:
    """The verdict store in ``directory`` (created on first write), used as ``mode`` says:
    "off", "read" (reuse only), "write" (store only) or "readwrite" (the default).

    Pass it to :func:`robustest.check` as ``cache=``; the pytest plugin makes one per run from
    ``--robust-cache`` / ``cache =`` in the config.
    """

    def __init__(self, directory: Union[str, "os.PathLike[str]"] = DEFAULT_DIR, *,
                 mode: str = "readwrite") -> None:
        if mode not in CACHE_MODES:
            raise invalid_argument("cache mode", mode, "one of " + ", ".join(map(repr, CACHE_MODES)),
                                   "pass mode='readwrite' (or 'off' to disable the cache)")
        self.directory = Path(directory)
        self.mode = mode
        self._conn: Optional[sqlite3.Connection] = None
        self._broken = False

    @property
    def reads(self) -> bool:
        return self.mode in ("read", "readwrite") and not self._broken

    @property
    def writes(self) -> bool:
        return self.mode in ("write", "readwrite") and not self._broken

    @property
    def path(self) -> Path:
        return self.directory / DB_FILE

    def _disable(self, why: str) -> None:
        self._broken = True
        self.close()
        msg = (f"robustest verdict cache {self.path} ignored for the rest of this run: {why}. "
               f"Fix: delete {self.directory} (it is rebuilt on the next run) or pass cache 'off'")
        _log.warning(msg)
        warnings.warn(msg, CacheWarning, stacklevel=caller_stacklevel())

    def _connect(self, create: bool) -> Optional[sqlite3.Connection]:
        if self._conn is not None:
            return self._conn
        if not create and not self.path.is_file():
            return None
        try:
            if create:
                self.directory.mkdir(parents=True, exist_ok=True)
                ignore = self.directory / ".gitignore"
                if not ignore.exists():
                    ignore.write_text("# created by robustest: the verdict cache is never committed\n*\n")
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} "
                         "(key TEXT PRIMARY KEY, payload TEXT NOT NULL, ce BLOB NOT NULL, "
                         "checksum TEXT NOT NULL)")
            conn.commit()
        except sqlite3.DatabaseError as exc:
            self._disable(f"SQLite cannot use it ({exc})")
            return None
        except OSError as exc:
            self._disable(f"it cannot be created ({exc})")
            return None
        self._conn = conn
        return conn

    def get(self, keys: Sequence[str]) -> Dict[str, Tuple[CachedVerdict, bytes]]:
        """The stored verdicts (with counterexample bytes) of those ``keys`` that have one."""
        if not self.reads or not keys:
            return {}
        conn = self._connect(create=False)
        if conn is None:
            return {}
        found: Dict[str, Tuple[CachedVerdict, bytes]] = {}
        try:
            for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(f"SELECT key, payload, ce, checksum FROM {_TABLE} WHERE key IN ({marks})",
                                    chunk).fetchall()
                for key, payload, blob, checksum in rows:
                    blob = bytes(blob)
                    if _checksum(key, payload, blob) != checksum:
                        self._disable(f"the entry {key[:12]}... fails its checksum (the file is corrupted)")
                        return {}
                    data = json.loads(payload)
                    data["ce_shape"] = tuple(data.get("ce_shape", ()))
                    found[key] = (CachedVerdict(**data), blob)
        except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
            self._disable(f"it cannot be read ({type(exc).__name__}: {exc})")
            return {}
        return found

    def put(self, items: Sequence[Tuple[str, CachedVerdict, bytes]]) -> None:
        """Store (key, verdict, counterexample bytes) triples in one transaction."""
        if not self.writes or not items:
            return
        conn = self._connect(create=True)
        if conn is None:
            return
        rows: List[Tuple[str, str, bytes, str]] = []
        for key, verdict, blob in items:
            payload = json.dumps(asdict(verdict), sort_keys=True)
            rows.append((key, payload, blob, _checksum(key, payload, blob)))
        try:
            with conn:
                conn.executemany(f"INSERT OR REPLACE INTO {_TABLE} VALUES (?, ?, ?, ?)", rows)
        except sqlite3.DatabaseError as exc:
            self._disable(f"it cannot be written ({exc})")

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __repr__(self) -> str:
        return f"VerdictCache({str(self.directory)!r}, mode={self.mode!r})"


def as_cache(value: Union[None, str, "os.PathLike[str]", VerdictCache]) -> Optional[VerdictCache]:
    """The ``cache=`` argument of :func:`robustest.check` (and ``cache`` in the config): None or "off" (no
    cache), a mode ("read", "write", "readwrite": in ``.robustest_cache/`` of the current directory), a
    directory (read and written), or a :class:`VerdictCache`.

        >>> as_cache("read")
        VerdictCache('.robustest_cache', mode='read')
    """
    if value is None or value == "off":
        return None
    if hasattr(value, "get") and hasattr(value, "put"):  # a VerdictCache (of any import of this module)
        return value  # type: ignore[return-value]
    if value in CACHE_MODES:
        return VerdictCache(DEFAULT_DIR, mode=str(value))
    if isinstance(value, (str, os.PathLike)):
        return VerdictCache(value)
    raise invalid_argument("cache", value, "None, a directory path or a robustest.cache.VerdictCache",
                           "pass cache='.robustest_cache' or leave it out")
