"""Robust statistics and the rolling structures the rules keep up to date.

Everything here is incremental: a record never rescans the history. Each rolling structure has a
``push`` (one value, the record path) and an ``extend`` (a stretch of values, the bulk path) that
leave it in exactly the same state; ``tests/core/test_stats.py`` holds the two against each other.
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence

# --------------------------------------------------------------------------------------------
# order statistics


def median(xs: Iterable[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return math.nan
    h = n // 2
    return s[h] if n % 2 else 0.5 * (s[h - 1] + s[h])


def sorted_median(s: Sequence[float]) -> float:
    """``median`` of an already sorted sequence, in O(1)."""
    n = len(s)
    if n == 0:
        return math.nan
    h = n // 2
    return s[h] if n % 2 else 0.5 * (s[h - 1] + s[h])


def modified_z(x: float, xs: Sequence[float], med: float) -> float:
    """Iglewicz-Hoaglin modified z-score of ``x`` against ``xs`` (MAD floored at 1% of |median|)."""
    mad = median([abs(v - med) for v in xs])
    floor = max(0.01 * abs(med), 1e-12)
    return 0.6745 * (x - med) / max(mad, floor)


def tail_median(vals: array[float], k: int) -> float:
    """``median(vals[-k:])``; the last three without sorting (the usual ``smooth_points``)."""
    if k == 3 and len(vals) >= 3:
        a, b, c = vals[-3], vals[-2], vals[-1]
        if a > b:
            a, b = b, a
        return b if c >= b else (a if c <= a else c)
    return median(vals[-k:])


def lowest_block_median(vals: array[float], start: int, w: int) -> float:
    """The lowest median of the whole blocks of ``w`` values in ``vals``, whose first value is
    value number ``start`` of the run: blocks are aligned on multiples of ``w`` of that count."""
    best = math.inf
    j = -start % w  # the first block boundary inside vals
    n = len(vals)
    while j + w <= n:
        m = median(vals[j : j + w])
        if m < best:
            best = m
        j += w
    return best


def lowest_median(vals: Sequence[float], k: int) -> float:
    """The lowest median of ``k`` consecutive values (inf when there are fewer than ``k``)."""
    n = len(vals)
    if n < k:
        return math.inf
    if k != 3:
        return min(median(vals[j - k : j]) for j in range(k, n + 1))
    best = math.inf
    a, b = vals[0], vals[1]
    for j in range(2, n):
        c = vals[j]
        lo, hi = (a, b) if a <= b else (b, a)
        m = hi if c >= hi else (lo if c <= lo else c)
        if m < best:
            best = m
        a, b = b, c
    return best


def sample(vals: array[float], a: int, b: int, cap: int) -> array[float]:
    """``vals[a:b]``, or when that holds more than ``cap`` values an evenly strided sample of
    at most ``cap`` of them that ends at ``b - 1`` (the newest value always counts)."""
    n = b - a
    if n <= cap:
        return vals[a:b]
    st = -(-n // cap)
    m = (n - 1) // st + 1
    return vals[b - 1 - (m - 1) * st : b : st]


def diffs(vals: array[float], a: int, b: int, cap: int) -> list[float]:
    """Successive differences ``vals[j+1] - vals[j]`` for j in [a, b-1), at most ``cap`` of them
    (evenly strided when there are more: each is still a difference of neighbours)."""
    n = b - 1 - a
    if n <= 0:
        return []
    st = 1 if n <= cap else -(-n // cap)
    return list(map(operator.sub, vals[a + 1 : b : st], vals[a : b - 1 : st]))


def robust_noise(d: Sequence[float]) -> float:
    """Robust sigma of a series from its successive differences ``d`` (a steady trend adds none)."""
    md = median(d)
    return 1.4826 * median(map(abs, map(operator.sub, d, itertools.repeat(md, len(d))))) / math.sqrt(2)


# --------------------------------------------------------------------------------------------
# rolling structures


class RollingMedian:
    """The last ``size`` values of a series, sorted: its rolling median in O(1), kept up to date
    with one insort and one delete per value. The series itself lives in the caller's array (the
    value that leaves the window is read from it)."""

    __slots__ = ("size", "win")

    def __init__(self, size: int) -> None:
        self.size = size
        self.win: list[float] = []

    def median(self) -> float:
        return sorted_median(self.win)

    def push(self, vals: array[float]) -> None:
        """``vals`` just had one value appended."""
        win = self.win
        insort(win, vals[-1])
        if len(win) > self.size:
            del win[bisect_left(win, vals[-1 - self.size])]

    def extend(self, vals: array[float]) -> None:
        """``vals`` just had any number of values appended (or was cut or trimmed)."""
        self.win = sorted(vals[-self.size :])


class BlockMin:
    """The minimum of the current block of ``w`` values and of the block before it (blocks
    counted from the first value): together they cover a rolling window of ``w``, so their
    minimum is a lower bound of the window's median that costs one comparison a value."""

    __slots__ = ("cur", "n", "prev", "w")

    def __init__(self, w: int) -> None:
        self.w = w
        self.prev = math.inf  # minimum of the previous block
        self.cur = math.inf  # minimum of the current block ...
        self.n = 0  # ... and its size

    def bound(self) -> float:
        return self.prev if self.prev < self.cur else self.cur

    def push(self, x: float) -> None:
        if x < self.cur:
            self.cur = x
        self.n += 1
        if self.n == self.w:
            self.prev, self.cur, self.n = self.cur, math.inf, 0

    def extend(self, seg: Sequence[float]) -> None:
        m = len(seg)
        pos = 0
        while pos < m:
            take = min(self.w - self.n, m - pos)
            lo = min(seg[pos : pos + take])
            if lo < self.cur:
                self.cur = lo
            self.n += take
            pos += take
            if self.n == self.w:
                self.prev, self.cur, self.n = self.cur, math.inf, 0

    def reset(self, vals: array[float]) -> None:
        """The blocks of ``vals``, counted from its first value."""
        w = self.w
        n = len(vals)
        c0 = n - n % w
        self.prev = min(vals[c0 - w : c0]) if c0 else math.inf
        self.cur = min(vals[c0:n]) if n > c0 else math.inf
        self.n = n - c0


EMA_W = 0.6  # TensorBoard's default smoothing, debiased (research B.11)
_EMA_1 = 1 - EMA_W
EMA_EXACT = 100  # past this many values 1 - EMA_W**n is exactly 1.0: the debiasing is a no-op


class DebiasedEma:
    """A debiased exponential moving average and its current run of rises: how many values in a
    row raised it (``rise``) and the level that run started from (``rise_from``)."""

    __slots__ = ("count", "last", "raw", "rise", "rise_from")

    def __init__(self) -> None:
        self.raw = 0.0  # the EMA before debiasing
        self.last = math.nan  # the newest debiased EMA (nan before the first value)
        self.count = 0  # values taken, the trimmed ones included (the debiasing's exponent)
        self.rise = 0
        self.rise_from = 0.0

    @property
    def exact(self) -> bool:
        """Past the point where the debiasing changes nothing (so a stretch is a plain EMA)."""
        return self.count >= EMA_EXACT

    def push(self, x: float) -> float:
        self.raw = raw = self.raw * EMA_W + _EMA_1 * x
        n = self.count = self.count + 1
        ema = raw if n > EMA_EXACT else raw / (1 - EMA_W**n)
        if ema > self.last:  # (nan before the first value)
            if self.rise == 0:
                self.rise_from = self.last
            self.rise += 1
        else:
            self.rise = 0
        self.last = ema
        return ema

    def preview(self, seg: Sequence[float]) -> tuple[list[float], bytes]:
        """For an ``exact`` EMA: the EMA before ``seg`` and after each of its values, and for
        each value whether it raised the EMA (a byte 1 or 0). Nothing changes."""
        w, w1 = EMA_W, _EMA_1
        emas = list(itertools.accumulate(seg, lambda a, x: a * w + w1 * x, initial=self.raw))
        emas[0] = self.last
        return emas, bytes(map(operator.gt, emas[1:], emas[:-1]))

    def extend(self, seg: Sequence[float], pre: tuple[list[float], bytes] | None = None) -> None:
        """``push`` each of ``seg`` (an ``exact`` EMA; ``pre`` is ``preview(seg)`` if known)."""
        emas, rises = pre if pre is not None else self.preview(seg)
        m = len(seg)
        self.raw = self.last = emas[-1]
        self.count += m
        rise0 = self.rise
        z = rises.rfind(b"\x00")
        self.rise = rise0 + m if z < 0 else m - 1 - z
        # where the newest run of rises began: the value before it is what it rose from
        last_one = rises.rfind(b"\x01")
        if last_one >= 0:
            k = rises.rfind(b"\x00", 0, last_one) + 1  # the run's first rise
            if k > 0 or rise0 == 0:
                self.rise_from = emas[k]

    def reset(self, raw: float, count: int, vals: Iterable[float]) -> None:
        """The EMA ``raw`` after ``count`` values, then ``vals`` (a resume); the run of rises
        starts again (``rise_from`` stays: it is only read during a run)."""
        for v in vals:
            raw = raw * EMA_W + _EMA_1 * v
            count += 1
        self.raw = raw
        self.count = count
        self.last = raw / (1 - EMA_W**count) if count else math.nan
        self.rise = 0
