"""Per-run metric storage: one sorted (step, value) series per metric.

Values live in ``array('d')`` so a run with hundreds of thousands of records costs 16 bytes a
point, not a Python float object and a list slot. A resumed run re-logs steps it already logged:
each step is kept once and the newest value wins, which is what the user's run now is.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Iterator

from .records import Kind, Record


class Series:
    __slots__ = ("steps", "values")

    def __init__(self) -> None:
        self.steps: array[int] = array("q")
        self.values: array[float] = array("d")

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, value: float) -> bool:
        """Store ``value`` at ``step``; return False when it replaced an earlier value."""
        steps = self.steps
        if not steps or step > steps[-1]:
            steps.append(step)
            self.values.append(value)
            return True
        i = bisect_left(steps, step)
        if i < len(steps) and steps[i] == step:
            self.values[i] = value
            return False
        steps.insert(i, step)
        self.values.insert(i, value)
        return True

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
            if st and step > st[-1]:  # the common case, inlined: this runs for every value
                st.append(step)
                s.values.append(value)
            else:
                s.add(step, value)
        if rec.epoch is not None and (self.epoch is None or new or rec.kind is Kind.TRAIN):
            self.epoch = rec.epoch
        return new

    def count(self, kind: Kind) -> int:
        return len(self.index[kind])

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
