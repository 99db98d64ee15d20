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

from .records import Block, Item, Kind

RECENT = 768  # newest points kept at full resolution (a wide chart shows ~2x its width)
HISTORY = 768  # at most this many points (min/max of buckets) for everything older
HIGH_WATER = RECENT + HISTORY + 768  # compaction runs when a series grows past this


class Series:
    __slots__ = ("count", "raw_from", "steps", "values", "width")

    def __init__(self) -> None:
        self.steps: array[int] = array("q")
        self.values: array[float] = array("d")
        self.count = 0  # distinct steps ever stored (exact; len() is the points kept)
        self.raw_from = 0  # points before this index are decimated history
        self.width = 0  # steps per history bucket (0: no history yet)

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

    def extend(self, steps: array[int], values: array[float]) -> None:
        """``add`` for each point; ``steps`` rise strictly."""
        if not self.steps or steps[0] > self.steps[-1]:
            # compaction at the same points as one add() at a time, so history is the same
            a, n = 0, len(steps)
            while a < n:
                st = self.steps
                b = min(n, a + HIGH_WATER + 1 - len(st))
                st.extend(steps[a:b])
                self.values.extend(values[a:b])
                if len(st) > HIGH_WATER:
                    self.compact()
                a = b
            self.count += n
            return
        for step, value in zip(steps, values):
            self.add(step, value)

    def compact(self) -> None:
        """Fold everything but the newest ``RECENT`` points into history buckets.

        History buckets have a fixed width in steps (a power of two): only the points leaving
        the recent part are folded, into the last bucket or new ones, so what was folded before
        stays as it was. When there are too many buckets, the width doubles and neighbours merge
        (minimum of minima, maximum of maxima).
        """
        steps, values = self.steps, self.values
        cut = len(steps) - RECENT
        if cut <= self.raw_from:
            return
        if self.width == 0:
            span = steps[cut - 1] - steps[0] + 1
            self.width = 1 << max(0, math.ceil(math.log2(max(1.0, span / (HISTORY // 2)))))
        width = self.width
        h = self.raw_from
        first = steps[h] // width
        while h > 0 and steps[h - 1] // width == first:  # the last bucket takes more points
            h -= 1
        fs, fv = _fold(steps[h:cut], values[h:cut], width)
        hs = steps[:h]
        hv = values[:h]
        hs.extend(fs)
        hv.extend(fv)
        while len(hs) > HISTORY:
            self.width *= 2
            hs, hv = _fold(hs, hv, self.width)
        self.raw_from = len(hs)
        hs.extend(steps[cut:])
        hv.extend(values[cut:])
        self.steps, self.values = hs, hv

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


def _fold(steps: array[int], values: array[float], width: int) -> tuple[array[int], array[float]]:
    """Per bucket of ``width`` steps: its minimum, its maximum and its first non-finite value,
    in step order (points already folded at this width come out unchanged). The work per bucket
    is a few C-level calls (bisect, sum, min, max, index), not a Python loop over its points."""
    ns: array[int] = array("q")
    nv: array[float] = array("d")
    n = len(steps)
    i = 0
    isfinite = math.isfinite
    while i < n:
        j = bisect_left(steps, (steps[i] // width + 1) * width, i, n)
        if j - i <= 2:
            ns.extend(steps[i:j])
            nv.extend(values[i:j])
            i = j
            continue
        seg = values[i:j].tolist()  # (sum, min, max and index then box no float again)
        if isfinite(sum(seg)):
            lo = seg.index(min(seg))
            hi = seg.index(max(seg))
            for k in (lo, hi) if lo < hi else (hi, lo) if hi < lo else (lo,):
                ns.append(steps[i + k])
                nv.append(seg[k])
        else:  # a NaN or an infinity in the bucket: keep it visible, and the finite extremes
            keep = {next(k for k, v in enumerate(seg) if not isfinite(v))}
            fin = [(v, k) for k, v in enumerate(seg) if isfinite(v)]
            if fin:
                keep.add(min(fin)[1])
                keep.add(max(fin)[1])
            for k in sorted(keep):
                ns.append(steps[i + k])
                nv.append(seg[k])
        i = j
    return ns, nv


POST_EVALS = 8  # post-training evals kept (a log could go on evaluating after its summary)


def post_training(step: int, epoch: float | None, last_eval: int | None, summary_epoch: float) -> bool:
    """An eval after the training summary (``summary_epoch``: its epoch, NaN when it had none) is
    a post-training evaluate(), not the run's own eval, when it would overwrite an eval already
    logged at its step or later, or its epoch is missing or earlier (counters reset)."""
    if last_eval is not None and last_eval >= step:
        return True
    if epoch is None:
        return True
    return epoch < summary_epoch - 1e-9


class RunData:
    """Everything read from one run's log so far."""

    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        # One entry per distinct step of each kind; the value is the epoch (NaN when unknown).
        self.index: dict[Kind, Series] = {Kind.TRAIN: Series(), Kind.EVAL: Series()}
        self.summary: dict[str, float] = {}
        # evals after the training summary and before any further train record that repeat a
        # step already evaluated or carry no or an earlier epoch: a post-training evaluate()
        # (of the best model loaded back, on a test set, from a fresh Trainer), kept apart so
        # that it never overwrites the eval logged at that step during training. One at a new
        # step with the run's epoch is the final model's eval, and stays one.
        self.post_evals: list[dict[str, float]] = []
        self._after_summary: float | None = None  # the summary's epoch (NaN: none), None: no summary
        self.epoch: float | None = None
        self.max_steps: int | None = None
        self._plans: dict[tuple[str, ...], tuple[Series, ...]] = {}

    def _series(self, name: str) -> Series:
        s = self.series.get(name)
        if s is None:
            s = self.series[name] = Series()
        return s

    def add_block(self, block: Block) -> None:
        """``add`` for each of the block's records, a column at a time."""
        steps = block.steps
        self._after_summary = None
        epochs = block.epochs if block.epochs is not None else array("d", [math.nan]) * len(steps)
        self.index[Kind.TRAIN].extend(steps, epochs)
        for name, col in zip(block.names, block.columns):
            self._series(name).extend(steps, col)
        if block.epochs is not None:
            self.epoch = block.epochs[-1]

    def add(self, rec: Item) -> bool:
        """Store a record; return True when its step is new for its kind."""
        if isinstance(rec, Block):
            self.add_block(rec)
            return True
        kind = rec.kind
        if kind is Kind.SUMMARY:
            self.summary.update(rec.metrics)
            self._after_summary = rec.epoch if rec.epoch is not None else math.nan
            if rec.epoch is not None:
                self.epoch = rec.epoch
            return True
        if kind is Kind.TRAIN:
            self._after_summary = None
        elif self._after_summary is not None and post_training(
            rec.step, rec.epoch, self.index[Kind.EVAL].last_step(), self._after_summary
        ):
            self.post_evals = [*self.post_evals[-(POST_EVALS - 1) :], dict(rec.metrics)]
            return False
        epoch = rec.epoch if rec.epoch is not None else math.nan
        step = rec.step
        new = self.index[rec.kind].add(step, epoch)
        metrics = rec.metrics
        # A run logs the same metrics on every line: look their series up once per key set.
        names = tuple(metrics)
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plans[names] = tuple(self._series(n) for n in names)
        for s, value in zip(plan, metrics.values()):
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

    def first_step(self, kind: Kind) -> int | None:
        steps = self.index[kind].steps
        return steps[0] if steps else None

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
