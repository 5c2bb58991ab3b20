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


#: What the attacks accept as their source of randomness.
RandomSource = Union[torch.Generator, SampleStreams]


def subset(source: Optional[RandomSource], rows: torch.Tensor) -> Optional[RandomSource]:
    """``source`` restricted to ``rows`` when it has one stream per sample; a plain generator as is."""
    return source if source is None or isinstance(source, torch.Generator) else source.subset(rows)


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


_M31 = 2**31 - 1


def _hash31(x: torch.Tensor) -> torch.Tensor:
    """A bijective integer hash of int64 values in [0, 2^31) (xorshift-multiply rounds whose products stay
    below 2^62, so no step overflows)."""
    for _ in range(2):
        x = (((x >> 15) ^ x) * 0x2C1B3C6D) & _M31
        x = (((x >> 12) ^ x) * 0x297A2D39) & _M31
        x = (x >> 15) ^ x
    return x


class CounterStream:
    """Cheap per-sample random numbers for attacks that draw at every step (Square): row ``r``'s draws are
    a hash of (its key, the draw's count, the position), computed for the whole batch in one go, so a
    sample's numbers depend on its own stream alone and no generator is made per draw.

        >>> s = CounterStream(torch.tensor([5, 9]))
        >>> u = s.rand((2, 3)); bool(((u >= 0) & (u < 1)).all())
        True
        >>> bool(torch.equal(CounterStream(torch.tensor([9])).rand((1, 3)), u[1:]))
        True
    """

    def __init__(self, keys: torch.Tensor, _count: Optional[List[int]] = None) -> None:
        self.keys = keys.long() & _M31
        self._count = [0] if _count is None else _count

    @staticmethod
    def of(source: Optional[RandomSource], n: int, device: torch.device) -> "CounterStream":
        """One key per row: the next draw of each sample's stream, or of the batch's generator."""
        if source is not None and not isinstance(source, torch.Generator):
            keys = [stream_seed(source.seed, k, source._draws.get(k, 0)) & _M31 for k in source.keys]
            for k in source.keys:
                source._draws[k] = source._draws.get(k, 0) + 1
            return CounterStream(torch.tensor(keys, dtype=torch.long, device=device))
        return CounterStream(torch.randint(0, _M31, (n,), generator=source, device=device))

    def take(self, rows: torch.Tensor) -> "CounterStream":
        """The streams of ``rows``, continuing the same count of draws."""
        return CounterStream(self.keys[rows], self._count)

    def rand(self, shape: Tuple[int, ...]) -> torch.Tensor:
        """(n, ...) float64 uniforms in [0, 1), row ``r`` from key ``r``."""
        step = self._count[0]
        self._count[0] += 1
        m = 1
        for d in shape[1:]:
            m *= int(d)
        pos = torch.arange(m, device=self.keys.device)
        x = (((self.keys[:, None] * 0x3C6EF372) & _M31) + ((step * 0x1B873593) & _M31)
             + ((pos[None, :] * 0x2545F491) & _M31)) & _M31
        return (_hash31(_hash31(x) ^ self.keys[:, None]).double() / 2**31).reshape(tuple(shape))

    def randint(self, low: int, high: int, shape: Tuple[int, ...]) -> torch.Tensor:
        """(n, ...) integers in [low, high)."""
        return (low + (self.rand(shape) * (high - low)).floor().long()).clamp(max=high - 1)

