"""Random streams per sample: the randomness a sample sees depends on the seed and on that sample alone.

An attack's random starts draw from a :class:`SampleStreams` instead of one generator for the batch, so
the noise a sample gets does not depend on which other samples share its batch. That is what lets a test
run its samples in slices (pytest-xdist shards, CI jobs, Ray tasks) and still reach, sample by sample,
the verdicts of one serial run: a sample is identified by its position in the whole set (``keys``), and
its ``n``-th draw comes from a generator seeded with ``(seed, key, n)``.

    >>> import torch
    >>> whole = SampleStreams(seed=7, keys=[0, 1, 2, 3])
    >>> part = SampleStreams(seed=7, keys=[2, 3])
    >>> a = whole.rand((4, 5), dtype=torch.float32, device=torch.device("cpu"))
    >>> b = part.rand((2, 5), dtype=torch.float32, device=torch.device("cpu"))
    >>> bool(torch.equal(a[2:], b))
    True
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

_MASK = 2**63 - 1
_COPIES = 7919  # a salt: copies' streams differ from the originals'


def stream_seed(seed: int, key: int, draw: int = 0) -> int:
    """The seed of sample ``key``'s ``draw``-th random draw under the run seed ``seed`` (a mix of the
    three that differs for every triple a run uses)."""
    return ((seed * 1_000_003 + key) * 1_000_033 + draw) % _MASK


class SampleStreams:
    """One independent random stream per row of a batch, keyed by each row's sample position.

    :meth:`subset` gives the streams of some rows (the draws they made so far are shared, so a sample
    that is attacked again continues its own stream). Drawing ``rand``/``randn`` of shape ``(n, ...)``
    gives row ``r`` the next draw of stream ``keys[r]``.
    """

    def __init__(self, seed: int, keys: Sequence[int], _draws: Optional[Dict[int, int]] = None) -> None:
        self.seed = int(seed)
        self.keys: List[int] = [int(k) for k in keys]
        self._draws: Dict[int, int] = {} if _draws is None else _draws

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, rows: Union[torch.Tensor, Sequence[int]]) -> "SampleStreams":
        """The streams of ``rows`` (indices into this batch), continuing their draws."""
        picked = rows.tolist() if isinstance(rows, torch.Tensor) else list(rows)
        return SampleStreams(self.seed, [self.keys[int(r)] for r in picked], self._draws)

    def repeat(self, k: int) -> "SampleStreams":
        """Streams for ``k`` copies of every row (row ``i * k + j`` is copy ``j`` of row ``i``, e.g. one
        copy per target class), each its own stream, independent of this one's."""
        keys = [key * k + j for key in self.keys for j in range(k)]
        return SampleStreams(stream_seed(self.seed, k, _COPIES), keys)

    def randint(self, high: int, shape: Tuple[int, ...], *, device: torch.device) -> torch.Tensor:
        """Integers in [0, high), row ``r`` from stream ``keys[r]``, computed for all rows at once by a
        counter-based hash of (seed, key, draw, element): cheap enough for a draw per attack step."""
        draws = []
        for k in self.keys:
            draws.append(self._draws.get(k, 0))
            self._draws[k] = draws[-1] + 1
        n, rest = shape[0], int(torch.Size(shape[1:]).numel())
        key = torch.tensor(self.keys, dtype=torch.int64, device=device).view(n, 1)
        draw = torch.tensor(draws, dtype=torch.int64, device=device).view(n, 1)
        element = torch.arange(rest, dtype=torch.int64, device=device).view(1, rest)
        x = _mix32(key & _M32) ^ _mix32((key >> 32) + 0x51ED27)
        x = _mix32(torch.full_like(key, self.seed % _M32) ^ x)
        x = _mix32(x ^ _mix32(draw + 0x2545F491))
        x = _mix32(x ^ _mix32(element + 0x68E31DA4))
        return ((x * high) >> 32).view(shape)  # the high bits (Lemire): unbiased enough, well mixed

    def _generators(self, device: torch.device) -> List[torch.Generator]:
        out = []
        for key in self.keys:
            draw = self._draws.get(key, 0)
            self._draws[key] = draw + 1
            g = torch.Generator(device=device)
            g.manual_seed(stream_seed(self.seed, key, draw))
            out.append(g)
        return out

    def _draw(self, normal: bool, shape: Tuple[int, ...], dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
        if not shape or shape[0] != len(self.keys):
            raise ValueError(f"a draw of shape {shape} from {len(self.keys)} streams: the first dimension "
                             "must be the number of rows")  # a programming error inside robustest
        fn = torch.randn if normal else torch.rand
        rows = [fn(shape[1:], generator=g, dtype=dtype, device=device) for g in self._generators(device)]
        return torch.stack(rows) if rows else torch.empty(shape, dtype=dtype, device=device)

    def rand(self, shape: Tuple[int, ...], *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Uniform [0, 1) draws, row ``r`` from stream ``keys[r]``."""
        return self._draw(False, tuple(shape), dtype, device)

    def randn(self, shape: Tuple[int, ...], *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Standard normal draws, row ``r`` from stream ``keys[r]``."""
        return self._draw(True, tuple(shape), dtype, device)


_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32) on int64 tensors holding values in [0, 2**32)."""
    x = x & _M32
    x = ((x ^ (x >> 16)) * 0x7FEB352D) & _M32
    x = ((x ^ (x >> 15)) * 0x846CA68B) & _M32
    return x ^ (x >> 16)


#: What the attacks accept as their source of randomness.
RandomSource = Union[torch.Generator, SampleStreams]


def subset(source: Optional[RandomSource], rows: torch.Tensor) -> Optional[RandomSource]:
    """``source`` restricted to ``rows`` when it has one stream per sample; a plain generator as is."""
    return source if source is None or isinstance(source, torch.Generator) else source.subset(rows)


def repeat(source: Optional[RandomSource], k: int) -> Optional[RandomSource]:
    """``source`` for ``k`` copies of every row (see :meth:`SampleStreams.repeat`); a generator as is."""
    return source if source is None or isinstance(source, torch.Generator) else source.repeat(k)


def randint(source: Optional[RandomSource], high: int, shape: Tuple[int, ...], *,
            device: torch.device) -> torch.Tensor:
    """``torch.randint(0, high, shape)`` from a generator or from per-sample streams (row by row)."""
    if source is not None and not isinstance(source, torch.Generator):
        return source.randint(high, tuple(shape), device=device)
    return torch.randint(0, high, tuple(shape), generator=source, device=device)


def rand(source: Optional[RandomSource], shape: Tuple[int, ...], *, like: torch.Tensor) -> torch.Tensor:
    """``torch.rand`` from a generator or from per-sample streams, with ``like``'s dtype and device."""
    # per-sample streams, of whichever import of this module (pytester re-imports modules between runs)
    if source is not None and not isinstance(source, torch.Generator):
        return source.rand(shape, dtype=like.dtype, device=like.device)
    return torch.rand(shape, generator=source, device=like.device, dtype=like.dtype)


def randn(source: Optional[RandomSource], shape: Tuple[int, ...], *, like: torch.Tensor) -> torch.Tensor:
    """``torch.randn`` from a generator or from per-sample streams, with ``like``'s dtype and device."""
    if source is not None and not isinstance(source, torch.Generator):
        return source.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, generator=source, device=like.device, dtype=like.dtype)
