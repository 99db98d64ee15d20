"""Per-run metric storage: one sorted (step, value) series per metric.

Values live in ``array('d')``: 16 bytes a point, not a Python float object and a list slot. A
resumed run re-logs steps it already logged: each step is kept once and the newest value wins,
which is what the user's run now is.

Memory is bounded whatever the run's length: the newest ``RECENT`` points of a series are kept at
full resolution; everything older is decimated into at most ``HISTORY`` points, the minimum and
the maximum of each bucket in step order (so a spike or a dip survives, and a NaN stays marked).
The arrays stay sorted by step, so every reader (charts, checklist windows, bisect look-ups)
works on them unchanged, only coarser in the far past; ``count`` stays exact.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterator

from .records import Kind, Record


RECENT = 1024  # newest points kept at full resolution
HISTORY = 1024  # at most this many points (min/max of buckets) for everything older
HIGH_WATER = RECENT + HISTORY + 1024  # compaction runs when a series grows past this


class Series:
    __slots__ = ("compactions", "count", "raw_from", "steps", "values")

    def __init__(self) -> None:
        self.steps: array[int] = array("q")
        self.values: array[float] = array("d")
        self.count = 0  # distinct steps ever stored (exact; len() is the points kept)
        self.raw_from = 0  # points before this index are decimated history
        self.compactions = 0  # bumped whenever positions in the arrays change

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, value: float) -> bool:
        """Store ``value`` at ``step``; return False when it replaced an earlier value."""
        steps = self.steps
        if not steps or step > steps[-1]:
            steps.append(step)
            self.values.append(value)
            self.count += 1
            if len(steps) > HIGH_WATER:
                self.compact()
            return True
        i = bisect_left(steps, step)
        if i < len(steps) and steps[i] == step:
            self.values[i] = value
            return False
        if i < self.raw_from or (i == self.raw_from and self.raw_from and i < len(steps)):
            return False  # inside decimated history: that step was stored before, merged away
        steps.insert(i, step)
        self.values.insert(i, value)
        self.count += 1
        return True

    def compact(self) -> None:
        """Decimate everything but the newest ``RECENT`` points into ``HISTORY`` points."""
        steps, values = self.steps, self.values
        cut = len(steps) - RECENT
        if cut <= HISTORY:
            return
        buckets = HISTORY // 2
        size = -(-cut // buckets)
        ns: array[int] = array("q")
        nv: array[float] = array("d")
        isfinite = math.isfinite
        for b in range(0, cut, size):
            e = min(b + size, cut)
            seg = values[b:e]
            lo_i = hi_i = bad_i = -1
            lo = math.inf
            hi = -math.inf
            for k, v in enumerate(seg):
                if isfinite(v):
                    if v < lo:
                        lo, lo_i = v, k
                    if v > hi:
                        hi, hi_i = v, k
                elif bad_i < 0:
                    bad_i = k
            for k in sorted({i for i in (lo_i, hi_i, bad_i) if i >= 0}):
                ns.append(steps[b + k])
                nv.append(seg[k])
        self.raw_from = len(ns)
        ns.extend(steps[cut:])
        nv.extend(values[cut:])
        self.steps, self.values = ns, nv
        self.compactions += 1

    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def last_step(self) -> int | None:
        return self.steps[-1] if self.steps else None

    def last_finite(self) -> float | None:
        for v in reversed(self.values):
            if math.isfinite(v):
                return v
        return None

    def at_or_before(self, step: int) -> float | None:
        i = bisect_left(self.steps, step + 1) - 1
        return self.values[i] if i >= 0 else None

    def points(self) -> Iterator[tuple[int, float]]:
        return zip(self.steps, self.values)

    def tail(self, n: int) -> tuple[list[int], list[float]]:
        return list(self.steps[-n:]), list(self.values[-n:])


class RunData:
    """Everything read from one run's log so far."""

    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        # One entry per distinct step of each kind; the value is the epoch (NaN when unknown).
        self.index: dict[Kind, Series] = {Kind.TRAIN: Series(), Kind.EVAL: Series()}
        self.summary: dict[str, float] = {}
        self.epoch: float | None = None
        self.max_steps: int | None = None

    def add(self, rec: Record) -> bool:
        """Store a record; return True when its step is new for its kind."""
        if rec.kind is Kind.SUMMARY:
            self.summary.update(rec.metrics)
            if rec.epoch is not None:
                self.epoch = rec.epoch
            return True
        epoch = rec.epoch if rec.epoch is not None else math.nan
        step = rec.step
        new = self.index[rec.kind].add(step, epoch)
        series = self.series
        for name, value in rec.metrics.items():
            s = series.get(name)
            if s is None:
                s = series[name] = Series()
            st = s.steps
            if st and step > st[-1] and len(st) < HIGH_WATER:  # the common case, inlined
                st.append(step)
                s.values.append(value)
                s.count += 1
            else:
                s.add(step, value)
        if rec.epoch is not None and (self.epoch is None or new or rec.kind is Kind.TRAIN):
            self.epoch = rec.epoch
        return new

    def count(self, kind: Kind) -> int:
        return self.index[kind].count

    @property
    def last_step(self) -> int | None:
        steps = [s for s in (self.index[Kind.TRAIN].last_step(), self.index[Kind.EVAL].last_step()) if s is not None]
        return max(steps) if steps else None

    def get(self, name: str) -> Series | None:
        return self.series.get(name)

    def latest(self, kind: Kind) -> dict[str, float]:
        """The newest value of every metric seen in records of ``kind``."""
        out: dict[str, float] = {}
        for name, s in self.series.items():
            if (name.startswith("eval_")) == (kind is Kind.EVAL) and s.values:
                out[name] = s.values[-1]
        return out
