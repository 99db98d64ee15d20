"""What a checklist window holds, as its judges read it: the run's series through indexes built
once per ``update()`` (evals by step with running bests, findings by code and step), and one
window's steps.

Each window costs its own points plus O(log n) lookups: evals and findings are indexed once per
update, never rescanned from the start of the run.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from sfttop.core.config import Thresholds
from sfttop.core.diagnose import Diagnoser, Finding, median
from sfttop.core.masking import MASK_WITNESSES, masked_window, nonfinite_steps
from sfttop.core.metrics import EVAL_LOSS, EVAL_TOKEN_ACC
from sfttop.core.query import best_key, smoothed_at, value_at
from sfttop.core.series import RunData, Series

MAX_SAMPLE = 4001  # medians over bigger windows use an evenly strided sample


def _masked_steps(data: RunData, metric: str, from_step: int | None) -> set[int]:
    """Steps from ``from_step`` on where ``metric``'s witnesses were NaN/inf (its value there is
    masked)."""
    if from_step is None:
        return set()
    out: set[int] = set()
    for w in MASK_WITNESSES.get(metric, ()):
        ws = data.get(w)
        if ws is not None:
            out.update(nonfinite_steps(ws.steps, ws.values, from_step=from_step))
    return out


class Evals:
    """The finite points of one eval metric in step order, kept up to date by ``sync()`` (new
    points only), with prefix summaries for eval_loss: which eval ``best_eval`` picks, and which
    is the first lowest, among the first i+1."""

    __slots__ = ("_key", "_upto", "best", "low", "metric", "steps", "values")

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self._reset()

    def _reset(self) -> None:
        # arrays, not lists: a long run has thousands of evals, kept for the whole run
        self.steps: array[int] = array("q")
        self.values: array[float] = array("d")
        self.best: array[int] = array("q")
        self.low: array[int] = array("q")
        self._key: tuple[float, float, int] | None = None  # best_eval's key of ``best[-1]``
        self._upto = 0  # points of the series up to steps[-1] when last synced

    def sync(self, data: RunData) -> None:
        s = data.get(self.metric)
        if s is None:
            self._reset()
            return
        st, sv = s.steps, s.values
        start = 0
        if self.steps:
            last = self.steps[-1]
            i = bisect_left(st, last)
            start = bisect_right(st, last)
            # Start over when the newest eval was dropped or re-logged, or an eval was inserted
            # before it (a resumed run logging its steps again). Fewer points than before means
            # older points were merged by the store's decimation: nothing to redo.
            if i >= len(st) or (st[i] == last and sv[i] != self.values[-1]) or start > self._upto:
                self._reset()
                start = 0
        acc = data.get(EVAL_TOKEN_ACC) if self.metric == EVAL_LOSS else None
        masked = _masked_steps(data, self.metric, st[start] if start < len(st) else None)
        for i in range(start, len(st)):
            v = sv[i]
            if not math.isfinite(v):
                continue
            step = st[i]
            if masked and step in masked:
                continue  # (a 0 standing in for a NaN: not a point)
            self.steps.append(step)
            self.values.append(v)
            if self.metric != EVAL_LOSS:
                continue
            a = value_at(acc, step)
            key = best_key(v, a, step)
            n = len(self.values) - 1
            if self._key is None or key < self._key:
                self._key = key
                self.best.append(n)
            else:
                self.best.append(self.best[-1])
            self.low.append(n if not self.low or v < self.values[self.low[-1]] else self.low[-1])
        if self.steps:
            self._upto = bisect_right(st, self.steps[-1])

    def upto(self, b: int) -> int:
        """How many points lie at or before step ``b``."""
        return bisect_right(self.steps, b)

    def count(self, a: int, b: int) -> int:
        return bisect_right(self.steps, b) - bisect_left(self.steps, a)


class _Found:
    """The finding episodes of one code, by start step, to find those overlapping a window."""

    __slots__ = ("ends", "hits", "reach", "steps")

    def __init__(self, hits: list[tuple[int, Finding]]) -> None:
        hits.sort(key=lambda h: (h[1].step, h[0]))
        self.hits = hits
        self.steps = [f.step for _i, f in hits]
        self.ends = [math.inf if f.end_step is None else f.end_step for _i, f in hits]
        self.reach: list[float] = []  # the latest end among the first i+1 episodes
        r = -math.inf
        for e in self.ends:
            r = max(r, e)
            self.reach.append(r)

    def overlapping(self, a: int, b: int, out: list[tuple[int, Finding]]) -> None:
        i = bisect_right(self.steps, b) - 1
        reach, ends = self.reach, self.ends
        while i >= 0 and reach[i] >= a:
            if ends[i] >= a:
                out.append(self.hits[i])
            i -= 1


class Context:
    """The run as one ``update()`` sees it; shared by every window that update judges."""

    def __init__(self, data: RunData, diag: Diagnoser, t: Thresholds, evals: Evals, eval_acc: Evals) -> None:
        self.data = data
        self.diag = diag
        self.t = t
        self._evals = evals
        self._eval_acc = eval_acc
        self._found: dict[str, _Found] | None = None
        self._raw: dict[tuple[str, int, int], list[float]] = {}  # the current window's values
        self._stats: dict[tuple[str, int, int], tuple[int, float]] = {}

    def first_step(self) -> int | None:
        firsts = [s.steps[0] for s in self.data.index.values() if len(s)]
        return min(firsts) if firsts else None

    def has_data(self, a: int, b: int) -> bool:
        return any(count_between(s, a, b) for s in self.data.index.values())

    def values(self, metric: str, a: int, b: int, finite: bool = True) -> list[float]:
        key = (metric, a, b)
        raw = self._raw.get(key)
        if raw is None:
            s = self.data.get(metric)
            if s is None:
                return []
            lo, hi = bisect_left(s.steps, a), bisect_right(s.steps, b)
            raw = window_values(s, lo, hi, False)
            if metric in MASK_WITNESSES and hi - lo == len(raw):
                # masked values count as the NaNs they stand for (never a loss of 0 that "fell")
                raw = list(masked_window(self.data, metric, s.steps[lo:hi], raw))
            self._raw[key] = raw
        return finite_only(raw) if finite else raw

    def window_done(self) -> None:
        self._raw.clear()

    def stat(self, metric: str, a: int, b: int) -> tuple[int, float]:
        """(how many finite values, their median) over steps [a, b]; remembered, as the next
        window compares itself with this one."""
        key = (metric, a, b)
        st = self._stats.get(key)
        if st is None:
            vals = self.values(metric, a, b)
            st = self._stats[key] = (len(vals), median(vals))
        return st

    def train_at(self, metric: str, step: int) -> float | None:
        """Median of the last ``smooth_points`` finite train values at or before ``step``."""
        return smoothed_at(self.data.get(metric), self.t.smooth_points, step)

    def evals(self) -> Evals:
        """Finite eval_loss points."""
        return self._evals

    def eval_acc(self) -> Evals:
        """Finite eval token accuracy points."""
        return self._eval_acc

    def overlapping(self, a: int, b: int, codes: Iterable[str]) -> list[Finding]:
        """Findings of ``codes`` whose episode overlaps steps [a, b], in the diagnoser's order."""
        if self._found is None:
            by_code: dict[str, list[tuple[int, Finding]]] = {}
            for i, f in enumerate(self.diag.findings):
                by_code.setdefault(f.code, []).append((i, f))
            self._found = {c: _Found(h) for c, h in by_code.items()}
        out: list[tuple[int, Finding]] = []
        for c in codes:
            found = self._found.get(c)
            if found is not None:
                found.overlapping(a, b, out)
        out.sort(key=lambda h: h[0])
        return [f for _i, f in out]


def window_values(s: Series, i: int, j: int, finite: bool) -> list[float]:
    """``s.values[i:j]`` (an evenly strided sample of at most ``MAX_SAMPLE`` + 1 of them when
    there are more), non-finite values dropped when ``finite``."""
    n = j - i
    if n > MAX_SAMPLE:
        vals = s.values[i : j : math.ceil(n / MAX_SAMPLE)].tolist()
        vals.append(s.values[j - 1])
    else:
        vals = s.values[i:j].tolist()
    return finite_only(vals) if finite else vals


def last_finite(s: Series, i: int, need: int) -> list[float]:
    """The last ``need`` finite values before index ``i`` (fewer when there are not as many)."""
    out: list[float] = []
    while i > 0 and len(out) < need:
        lo = max(0, i - (need - len(out)))
        out = finite_only(s.values[lo:i].tolist()) + out
        i = lo
    return out


def finite_only(vals: list[float]) -> list[float]:
    """The finite values (a finite sum, the common case, means there is nothing to drop)."""
    return vals if math.isfinite(sum(vals)) else [v for v in vals if math.isfinite(v)]


def count_between(s: Series, a: int, b: int) -> int:
    return bisect_right(s.steps, b) - bisect_left(s.steps, a)


class WindowData:
    """What a judge reads: the update's view of the run, and one window, steps ``a..b``.

    ``first``: the window is the first of its cadence that holds data (a rising LR there is a
    warm-up, not a schedule gone wrong)."""

    __slots__ = ("a", "b", "ctx", "data", "diag", "first", "t")

    def __init__(self, ctx: Context, a: int, b: int, first: bool) -> None:
        self.ctx = ctx
        self.data = ctx.data
        self.diag = ctx.diag
        self.t = ctx.t
        self.a = a
        self.b = b
        self.first = first
