"""The seed's monitoring checklist at three cadences: every 100 steps, every 1000 steps, every epoch.

Each cadence cuts the run into windows and judges the seed's four items for each window:
``pass``, ``warn``, ``fail`` or ``pending`` (not enough data in that window yet). The latest
window shows the run now; the past windows show when a check turned.

Windows follow the run's own steps. The nominal sizes are 100 and 1000 steps, but a window must
hold at least ``MIN_POINTS`` logged train points to say anything, and a cadence keeps every
window of the run, so it should not have more than ``MAX_WINDOWS`` of them. With a logging
interval L, the "100 steps" window is ``nice(max(100, 5 L))`` steps and the "1000 steps" window
``nice(max(1000, 4 x that))``, where ``nice`` rounds up to 1, 2, 2.5 or 5 x 10^k; a run past
1000 windows (at step S > 1000 x the window) gets windows twice as wide, as often as needed. A
run logged every 5 steps gets windows of 100 and 1000 steps; one logged every 500 steps gets 2500
and 10000; a 3,000,000-step run 3200 and 16000, labelled so. Because a grown window is whole old
ones, their cached verdicts are merged (each item the worst of its parts) rather than judged
again from points the store no longer holds at full resolution. (Each closed window is kept,
judged, for the report and the history: a thousand per cadence is the memory a run's checklist
costs.) When the base sizes change (the logging interval, measured early on, changed), every
window is judged again. Window k of size W holds steps
``k*W+1 .. (k+1)*W`` (step 0, an eval before training, joins the first). Epoch windows hold the
records whose epoch lies in ``(e-1, e]``, so the record that ends epoch 1 at ``epoch == 1.0``
belongs to epoch 1.

Items combine what the window's own values say (medians compared with the previous window, the
latest eval in it) with the diagnoser's finding episodes that overlap the window. Each window
costs its own points plus O(log n) lookups: evals and findings are indexed once per ``update()``
(the previous eval and the best eval so far by bisection, findings by code and step), never
rescanned from the start of the run. Closed windows are cached; only the open one is recomputed,
so calling ``update()`` a few times a second on a growing run costs O(latest windows + new evals
+ findings). A finding that opens later and reaches back into a cached window is merged into its
cached verdicts; the window's data is not read again. The store keeps only the newest points of a
series at full resolution, so a window should be judged soon after it closes: ``advance()`` does
just that, cheaply, for a loader to call every few hundred records.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import Thresholds
from .diagnose import Diagnoser, Finding, fmt, median
from .metrics import ENTROPY, EVAL_LOSS, EVAL_TOKEN_ACC, GRAD_NORM, LOSS, LR
from .query import best_key, logging_interval, lr_direction, smoothed_at, value_at
from .records import Kind
from .series import RunData, Series

PASS, WARN, FAIL, PENDING = "pass", "warn", "fail", "pending"
_ORDER = {PENDING: 0, PASS: 1, WARN: 2, FAIL: 3}

MIN_POINTS = 5  # logged train points a step window should hold
MAX_WINDOWS = 1000  # windows a step cadence should hold at most: a longer run gets wider windows
_MAX_SAMPLE = 4001  # medians over bigger windows use an evenly strided sample

# (cadence id, label, item ids and labels): the seed's checklist, in English
ITEMS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "100_steps": (
        "every 100 steps",
        (
            ("loss_falling", "Is the loss falling normally?"),
            ("grad_norm_in_range", "Is grad_norm in a reasonable range?"),
            ("lr_decaying", "Is the learning rate decaying as planned?"),
            ("no_nonfinite", "No NaN or inf values?"),
        ),
    ),
    "1000_steps": (
        "every 1000 steps",
        (
            ("loss_gap", "Is the train/eval loss gap reasonable?"),
            ("eval_acc_rising", "Is eval accuracy rising steadily?"),
            ("no_overfitting", "No signs of overfitting?"),
            ("entropy_stable", "Is entropy stable?"),
        ),
    ),
    "epoch": (
        "every epoch",
        (
            ("trend_healthy", "Is the overall training trend healthy?"),
            ("hparams_ok", "Can the hyperparameters stay as they are?"),
            ("best_checkpoint", "Which checkpoint is currently best?"),
            ("early_stop", "Is early stopping needed?"),
        ),
    ),
}
LABELS: dict[str, str] = {iid: label for _c, (_l, items) in ITEMS.items() for iid, label in items}
_SHARED_KEYS = {items: items for _c, (_l, items) in ITEMS.items()}  # windows share these tuples
_CODE = {PASS: "p", WARN: "w", FAIL: "f", PENDING: "."}
_STATUS = {c: s for s, c in _CODE.items()}
_RANK = {c: _ORDER[s] for s, c in _CODE.items()}

# findings that speak to each item: (warn codes, fail codes)
_ITEM_CODES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "loss_falling": (frozenset({"loss_oscillation", "loss_plateau"}), frozenset()),
    "grad_norm_in_range": (frozenset({"grad_norm_high", "grad_vanishing"}), frozenset({"grad_explosion"})),
    "lr_decaying": (frozenset({"lr_schedule", "lr_too_small", "lr_too_large"}), frozenset()),
    "no_nonfinite": (frozenset(), frozenset({"loss_nonfinite"})),
    "no_overfitting": (frozenset({"overfitting"}), frozenset({"overfitting_severe"})),
    "entropy_stable": (frozenset({"entropy_gap"}), frozenset()),
    "trend_healthy": (
        frozenset({"loss_oscillation", "loss_plateau", "overfitting", "accuracy_drop", "grad_norm_high"}),
        frozenset({"loss_nonfinite", "grad_explosion", "overfitting_severe", "run_crashed"}),
    ),
    "hparams_ok": (
        frozenset(
            {
                "grad_norm_high",
                "grad_vanishing",
                "overfitting",
                "loss_oscillation",
                "loss_plateau",
                "accuracy_slow",
                "lr_too_small",
                "lr_too_large",
                "lr_schedule",
            }
        ),
        frozenset({"loss_nonfinite", "grad_explosion", "overfitting_severe"}),
    ),
    "early_stop": (frozenset({"overfitting", "accuracy_drop"}), frozenset({"overfitting_severe", "loss_nonfinite"})),
}


@dataclass(slots=True)
class Item:
    id: str
    label: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "label": self.label, "status": self.status, "detail": self.detail}


class Window:
    """One window of a cadence and its items' verdicts.

    A long run keeps a few thousand closed windows, so they are stored compactly: the items'
    statuses as one character each, their details as a tuple, ids and labels shared with
    ``ITEMS``, the label of a step window made on demand. ``items`` builds Item objects when
    read."""

    __slots__ = ("_det", "_keys", "_label", "_st", "closed", "end_step", "index", "start_step")

    def __init__(
        self, index: int, label: str | None, start_step: int, end_step: int, closed: bool, items: Iterable[Item] = ()
    ) -> None:
        self.index = index
        self._label = label  # None: "steps {start_step}-{end_step}"
        self.start_step = start_step
        self.end_step = end_step  # inclusive; for an open window, the last step it can hold
        self.closed = closed
        items = list(items)
        keys = tuple((i.id, i.label) for i in items)
        self._keys = _SHARED_KEYS.get(keys, keys)
        self._st = sys.intern("".join(_CODE[i.status] for i in items))
        self._det = tuple(i.detail for i in items)

    @property
    def label(self) -> str:
        return self._label if self._label is not None else f"steps {self.start_step}-{self.end_step}"

    @property
    def items(self) -> list[Item]:
        return [Item(i, lab, _STATUS[c], d) for (i, lab), c, d in zip(self._keys, self._st, self._det)]

    def with_items(self, items: Iterable[Item]) -> Window:
        return Window(self.index, self._label, self.start_step, self.end_step, self.closed, items)

    @property
    def status(self) -> str:
        """The worst item status (pending counts least)."""
        return _STATUS[max(self._st, key=_RANK.__getitem__)] if self._st else PENDING

    def item(self, item_id: str) -> Item | None:
        for k, (i, lab) in enumerate(self._keys):
            if i == item_id:
                return Item(i, lab, _STATUS[self._st[k]], self._det[k])
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "label": self.label,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "closed": self.closed,
            "status": self.status,
            "items": [i.to_dict() for i in self.items],
        }


@dataclass(slots=True)
class Cadence:
    id: str  # "100_steps", "1000_steps", "epoch"
    label: str
    window_steps: int | None  # None for epochs
    windows: list[Window] = field(default_factory=list)

    @property
    def latest(self) -> Window | None:
        return self.windows[-1] if self.windows else None

    def to_dict(self) -> dict[str, object]:
        latest = self.latest
        return {
            "label": self.label,
            "window_steps": self.window_steps,
            "latest": latest.to_dict() if latest is not None else None,
            "windows": [w.to_dict() for w in self.windows],
        }


@dataclass
class ChecklistState:
    cadences: list[Cadence]

    def cadence(self, cid: str) -> Cadence | None:
        return next((c for c in self.cadences if c.id == cid), None)

    def to_dict(self) -> dict[str, object]:
        return {c.id: c.to_dict() for c in self.cadences}


def nice_ceil(x: float) -> int:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= x (for k >= 0)."""
    if x <= 1:
        return 1
    k = 10 ** math.floor(math.log10(x))
    for m in (10, 20, 25, 50, 100):
        if m * k >= 10 * x - 1e-9:
            return int(m * k) // 10
    return 10 * int(k)  # pragma: no cover


def window_sizes(interval: int, horizon: int | None = None) -> tuple[int, int]:
    """(the "100 steps" window, the "1000 steps" window) for a run logged every ``interval``
    steps that runs to step ``horizon`` (max_steps when known, else the latest step)."""
    small = nice_ceil(max(100, MIN_POINTS * interval))
    big = nice_ceil(max(1000, 4 * small))
    # A long run: wider windows, each size twice the one before, so that when a growing run
    # outgrows its windows each new window is whole old ones (their verdicts merge; the old
    # windows' points are no longer at full resolution to be judged again).
    while small < (horizon or 0) / MAX_WINDOWS:
        small *= 2
    while big < 4 * small:
        big *= 2
    return small, big


# ------------------------------------------------------------------------------------------------
# the engine


@dataclass(slots=True)
class _Cached:
    window: Window
    # each item's verdict from the data (None: findings only); the whole list None when the
    # items are just that (no finding made one worse): most windows, and a run keeps a thousand
    base: list[tuple[str, str] | None] | None

    def verdicts(self, cid: str) -> list[tuple[str, str] | None]:
        if self.base is not None:
            return self.base
        return [
            None if iid in _FINDINGS_ONLY else (it.status, it.detail)
            for (iid, _label), it in zip(ITEMS[cid][1], self.window.items)
        ]


class Checklist:
    """Keeps the checklist of one run; call ``update()`` whenever you want a fresh state.

    A closed window is judged once, from the data it holds then, and cached; a finding that
    opens later and reaches back into it only re-merges the findings into the cached verdicts.
    ``advance()`` judges the windows that closed since the last call and builds nothing else:
    a loader calls it every few hundred records, so windows are judged while their points are
    still at full resolution in the (memory-bounded) store.
    """

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.t = thresholds if thresholds is not None else Thresholds()
        self._sizes: tuple[int, int] | None = None
        self._restarts = -1
        self._nfindings = 0
        self._cache: dict[str, dict[int, _Cached]] = {"100_steps": {}, "1000_steps": {}, "epoch": {}}
        self._empty: dict[str, set[int]] = {"100_steps": set(), "1000_steps": set()}  # closed, no data
        self._done: dict[str, int] = {"100_steps": 0, "1000_steps": 0}  # windows before: cached or empty
        self._epochs: list[tuple[int, int, int]] = []  # (epoch number, first step, last step)
        self._epoch_step: int | None = None  # the last train step assigned to an epoch
        self._evals = _Evals(EVAL_LOSS)  # kept up to date incrementally
        self._eval_acc = _Evals(EVAL_TOKEN_ACC)

    def update(self, data: RunData, diag: Diagnoser) -> ChecklistState:
        ctx, sizes = self._prepare(data, diag)
        last = data.last_step
        cad = []
        for cid, size in (("100_steps", sizes[0]), ("1000_steps", sizes[1])):
            label = ITEMS[cid][0] if size == (100 if cid == "100_steps" else 1000) else f"every {size} steps"
            windows = self._step_windows(cid, size, ctx, last)
            cad.append(Cadence(cid, label, size, windows))
        cad.append(Cadence("epoch", ITEMS["epoch"][0], None, self._epoch_windows(ctx, last)))
        return ChecklistState(cad)

    def advance(self, data: RunData, diag: Diagnoser) -> None:
        """Judge and cache the windows that closed since the last call; O(those windows)."""
        ctx, sizes = self._prepare(data, diag)
        last = data.last_step
        first = ctx.first_step()
        if last is None or first is None:
            return
        now = _now(data, diag)
        for cid, size in (("100_steps", sizes[0]), ("1000_steps", sizes[1])):
            k0 = _wnum(first, size)
            k1 = _wnum(now, size) - 1  # the last window that cannot take more records
            for k in range(max(k0, self._done[cid]), k1 + 1):
                if k not in self._cache[cid] and k not in self._empty[cid]:
                    self._step_window(cid, size, ctx, k, k0, now)
            self._done[cid] = max(self._done[cid], k1 + 1)
        self._scan_epochs(data)
        cache = self._cache["epoch"]
        for i, (num, a, b) in enumerate(self._epochs[:-1]):
            if num not in cache:
                cache[num] = _judge("epoch", ctx, num, f"epoch {num}", a, b, True, i == 0)

    def _prepare(self, data: RunData, diag: Diagnoser) -> tuple[_Ctx, tuple[int, int]]:
        horizon = max(data.last_step or 0, data.max_steps or 0, diag.max_steps or 0)
        sizes = window_sizes(logging_interval(data), horizon)
        if diag.restarts != self._restarts:
            self._restarts = diag.restarts
            self._sizes = None
            self._cache["epoch"].clear()
            self._epochs = []
            self._epoch_step = None
            self._evals = _Evals(EVAL_LOSS)
            self._eval_acc = _Evals(EVAL_TOKEN_ACC)
        if sizes != self._sizes:
            old = self._sizes
            self._sizes = sizes
            for j, cid in enumerate(self._empty):
                if old is not None and sizes[j] % old[j] == 0:
                    if sizes[j] != old[j]:
                        self._regroup(cid, old[j], sizes[j])
                    continue
                self._cache[cid].clear()
                self._empty[cid].clear()
                self._done[cid] = 0
        self._evals.sync(data)
        self._eval_acc.sync(data)
        ctx = _Ctx(data, diag, self.t, self._evals, self._eval_acc)
        # A finding that opened since the last call may reach back into closed windows (a plateau
        # begins where its window began): merge the findings again into the verdicts they touch.
        if len(diag.findings) != self._nfindings:
            first = min((f.step for f in diag.findings[self._nfindings :]), default=None)
            self._nfindings = len(diag.findings)
            if first is not None:
                for cid, cache in self._cache.items():
                    for k, c in cache.items():
                        w = c.window
                        if w.end_step >= first:
                            base = c.verdicts(cid)
                            cache[k] = _cached(w.with_items(_merged(cid, ctx, w.start_step, w.end_step, base)), base)
        return ctx, sizes

    def _regroup(self, cid: str, old: int, new: int) -> None:
        """The windows grew from ``old`` to ``new`` steps (a multiple): each new window is
        ``new // old`` old ones, judged when they closed; merge their verdicts rather than
        judge again from points the store has since decimated."""
        f = new // old
        cache, done = self._cache[cid], self._done[cid]
        merged: dict[int, _Cached] = {}
        gone: set[int] = set()
        for k in range(done // f):  # new windows made only of judged (or empty) old ones
            parts = [cache[i] for i in range(k * f, (k + 1) * f) if i in cache]
            if parts:
                a, b = k * new + 1, (k + 1) * new
                merged[k] = _merge_windows(cid, k, 0 if k == 0 else a, b, parts)
            else:
                gone.add(k)
        self._cache[cid] = merged
        self._empty[cid] = gone
        self._done[cid] = done // f

    def _step_window(self, cid: str, size: int, ctx: _Ctx, k: int, k0: int, now: int) -> Window | None:
        """Window ``k`` (judged, and cached once closed), or None when it holds no record."""
        a, b = k * size + 1, (k + 1) * size
        if k == 0:
            a = 0
        if not ctx.has_data(a, b):
            if now > b:
                self._empty[cid].add(k)
            return None
        closed = now > b or ctx.diag.finished
        c = _judge(cid, ctx, k, None, a, b, closed, k == k0)
        if closed:
            self._cache[cid][k] = c
        return c.window

    def _step_windows(self, cid: str, size: int, ctx: _Ctx, last: int | None) -> list[Window]:
        if last is None:
            return []
        cache = self._cache[cid]
        empty = self._empty[cid]
        first_step = ctx.first_step()
        if first_step is None:
            return []
        k0 = _wnum(first_step, size)
        k1 = _wnum(last, size)
        now = _now(ctx.data, ctx.diag)
        out: list[Window] = []
        for k in range(k0, k1 + 1):
            c = cache.get(k)
            if c is not None:
                out.append(c.window)
            elif k not in empty:
                w = self._step_window(cid, size, ctx, k, k0, now)
                if w is not None:
                    out.append(w)
        return out

    def _epoch_windows(self, ctx: _Ctx, last: int | None) -> list[Window]:
        if last is None:
            return []
        self._scan_epochs(ctx.data)
        cache = self._cache["epoch"]
        if not self._epochs:
            first = ctx.first_step()
            if first is None:
                return []
            return [_judge("epoch", ctx, 0, "whole run (no epoch info)", first, last, ctx.diag.finished, True).window]
        out = []
        for i, (num, a, b) in enumerate(self._epochs):
            closed = i < len(self._epochs) - 1 or ctx.diag.finished
            c = cache.get(num)
            if c is None or not closed:
                end = b if closed else max(b, last)
                c = _judge("epoch", ctx, num, f"epoch {num}", a, end, closed, i == 0)
                if closed:
                    cache[num] = c
            out.append(c.window)
        return out

    def _scan_epochs(self, data: RunData) -> None:
        """Extend ``_epochs`` with the train records not seen yet (incremental, O(new records))."""
        idx = data.index[Kind.TRAIN]
        steps, epochs = idx.steps, idx.values
        n = len(steps)
        # by step, not by position: older points of a series may be merged (decimated) later
        pos = 0 if self._epoch_step is None else bisect_right(steps, self._epoch_step)
        if pos >= n:
            return
        eps = self._epochs
        num0, a0, b0 = eps[-1] if eps else (0, 0, 0)  # the latest epoch (num0 0: none yet)
        new = epochs[pos:n]
        last = epochs[n - 1]
        if eps and math.isfinite(sum(new)) and max(new) <= num0 + 1e-9 and max(1, math.ceil(last - 1e-9)) == num0:
            # (the usual case, in C: every new record is in the latest epoch or an older one,
            # and the newest is in the latest)
            eps[-1] = (num0, a0, steps[n - 1])
            self._epoch_step = steps[n - 1]
            return
        last_e, last_num = math.nan, 0  # consecutive records mostly share their epoch value
        for s, e in zip(steps[pos:n], epochs[pos:n]):
            if e == last_e:
                num = last_num
            else:
                if not math.isfinite(e):
                    continue
                num = max(1, math.ceil(e - 1e-9))
                last_e, last_num = e, num
            if num == num0:
                b0 = s
            elif num > num0:  # a new epoch; an epoch number going back (a resume) is ignored
                if eps:
                    eps[-1] = (num0, a0, b0)
                num0, a0, b0 = num, (b0 + 1 if eps else 0), s
                eps.append((num0, a0, b0))
        if eps:
            eps[-1] = (num0, a0, b0)
        self._epoch_step = steps[n - 1]


def checklist(data: RunData, diag: Diagnoser, thresholds: Thresholds | None = None) -> ChecklistState:
    """One-shot checklist (for reports)."""
    return Checklist(thresholds if thresholds is not None else diag.t).update(data, diag)


def _now(data: RunData, diag: Diagnoser) -> int:
    """Where the run is: its latest train step (after a resume, the steps it logs again; the
    store still holds the old values past it until they are logged again), else its last step."""
    if diag.last_train_step is not None:
        return diag.last_train_step
    return data.last_step or 0


def _wnum(step: int, size: int) -> int:
    return max(0, (step - 1) // size)


# ------------------------------------------------------------------------------------------------
# what a window holds


class _Evals:
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
        for i in range(start, len(st)):
            v = sv[i]
            if not math.isfinite(v):
                continue
            step = st[i]
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


class _Ctx:
    def __init__(self, data: RunData, diag: Diagnoser, t: Thresholds, evals: _Evals, eval_acc: _Evals) -> None:
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
        return any(_count(s, a, b) for s in self.data.index.values())

    def values(self, metric: str, a: int, b: int, finite: bool = True) -> list[float]:
        key = (metric, a, b)
        raw = self._raw.get(key)
        if raw is None:
            s = self.data.get(metric)
            if s is None:
                return []
            raw = self._raw[key] = _values(s, bisect_left(s.steps, a), bisect_right(s.steps, b), False)
        return _finite(raw) if finite else raw

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

    def evals(self) -> _Evals:
        """Finite eval_loss points."""
        return self._evals

    def eval_acc(self) -> _Evals:
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


def _values(s: Series, i: int, j: int, finite: bool) -> list[float]:
    """``s.values[i:j]`` (an evenly strided sample of at most ``_MAX_SAMPLE`` + 1 of them when
    there are more), non-finite values dropped when ``finite``."""
    n = j - i
    if n > _MAX_SAMPLE:
        vals = s.values[i : j : math.ceil(n / _MAX_SAMPLE)].tolist()
        vals.append(s.values[j - 1])
    else:
        vals = s.values[i:j].tolist()
    return _finite(vals) if finite else vals


def _last_finite(s: Series, i: int, need: int) -> list[float]:
    """The last ``need`` finite values before index ``i`` (fewer when there are not as many)."""
    out: list[float] = []
    while i > 0 and len(out) < need:
        lo = max(0, i - (need - len(out)))
        out = _finite(s.values[lo:i].tolist()) + out
        i = lo
    return out


def _finite(vals: list[float]) -> list[float]:
    """The finite values (a finite sum, the common case, means there is nothing to drop)."""
    return vals if math.isfinite(sum(vals)) else [v for v in vals if math.isfinite(v)]


def _count(s: Series, a: int, b: int) -> int:
    return bisect_right(s.steps, b) - bisect_left(s.steps, a)


def _from_findings(item: str, ctx: _Ctx, a: int, b: int) -> tuple[str, str] | None:
    """(status, detail) from finding episodes overlapping [a, b], or None when none does."""
    codes = _ITEM_CODES.get(item)
    if codes is None:
        return None
    warn, fail = codes
    hits = ctx.overlapping(a, b, warn | fail)
    if not hits:
        return None
    worst = max(hits, key=lambda f: (f.code in fail, f.severity.rank))
    status = FAIL if worst.code in fail else WARN
    more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
    return status, f"{worst.code}: {worst.message}{more}"


def _merge(base: tuple[str, str], found: tuple[str, str] | None) -> tuple[str, str]:
    """The worse of the window's own verdict and the findings' (the window's wins a tie)."""
    return found if found is not None and _ORDER[found[0]] > _ORDER[base[0]] else base


def _judge(cid: str, ctx: _Ctx, index: int, label: str | None, a: int, b: int, closed: bool, first: bool) -> _Cached:
    """Judge window [a, b]: each item's verdict from the data, merged with the findings."""
    base = [None if iid in _FINDINGS_ONLY else _JUDGES[iid](ctx, a, b, first) for iid, _label in ITEMS[cid][1]]
    ctx.window_done()
    return _cached(Window(index, label, a, b, closed, _merged(cid, ctx, a, b, base)), base)


def _merge_windows(cid: str, k: int, a: int, b: int, parts: list[_Cached]) -> _Cached:
    """One window made of closed ones: each item the worst of theirs (the latest of equals; a
    pending part counts least), and the same for the verdicts from the data."""
    items: list[Item] = []
    base: list[tuple[str, str] | None] = []
    verdicts = [c.verdicts(cid) for c in parts]
    for j, (iid, label) in enumerate(ITEMS[cid][1]):
        st, det = max(((c.window._st[j], c.window._det[j]) for c in reversed(parts)), key=lambda sd: _RANK[sd[0]])
        items.append(Item(iid, label, _STATUS[st], det))
        vs = [v[j] for v in verdicts]
        if any(v is None for v in vs):
            base.append(None)
        else:
            base.append(max((v for v in reversed(vs) if v is not None), key=lambda v: _ORDER[v[0]]))
    return _cached(Window(k, None, a, b, True, items), base)


def _cached(w: Window, base: list[tuple[str, str] | None]) -> _Cached:
    same = all(v is None or (_CODE[v[0]] == c and v[1] is d) for v, c, d in zip(base, w._st, w._det))
    return _Cached(w, None if same else base)


def _merged(cid: str, ctx: _Ctx, a: int, b: int, base: list[tuple[str, str] | None]) -> list[Item]:
    out = []
    for (iid, label), verdict in zip(ITEMS[cid][1], base):
        if verdict is None:
            verdict = _JUDGES[iid](ctx, a, b, False)
        status, detail = _merge(verdict, _from_findings(iid, ctx, a, b))
        out.append(Item(iid, label, status, detail))
    return out


# -- every 100 steps ---------------------------------------------------------------------------


def _loss_falling(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    raw = ctx.values(LOSS, a, b, finite=False)
    vals = _finite(raw)
    if len(raw) > len(vals):
        return FAIL, f"{len(raw) - len(vals)} non-finite loss values"
    if len(vals) < 2:
        return PENDING, "not enough loss points yet"
    size = b - a + 1
    nprev, m0 = ctx.stat(LOSS, max(0, a - size), a - 1)
    if nprev >= 2:
        m1 = ctx.stat(LOSS, a, b)[1]
        what = "previous window"
    else:
        half = len(vals) // 2
        m0, m1 = median(vals[:half]), median(vals[half:])
        what = "first half"
    change = (m1 - m0) / abs(m0) if m0 else 0.0
    detail = f"median {fmt(m1)} vs {fmt(m0)} in the {what} ({change * 100:+.1f}%)"
    if change > 0.5:
        return FAIL, "loss rising: " + detail
    if change > 0.1:
        return WARN, "loss rising: " + detail
    return PASS, detail


def _grad_in_range(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    t = ctx.t
    vals = ctx.values(GRAD_NORM, a, b)
    if not vals:
        return PENDING, "no grad_norm logged in this window"
    med, hi = median(vals), max(vals)
    detail = f"median {fmt(med)}, max {fmt(hi)} (range 0.1-{fmt(t.grad_norm_warn)})"
    if med > t.grad_norm_critical:
        return FAIL, detail
    if med > t.grad_norm_warn or med < t.grad_norm_vanishing:
        return WARN, detail
    return PASS, detail


def _lr_decaying(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    vals = ctx.values(LR, a, b)
    if not vals:
        return PENDING, "no learning rate logged in this window"
    v0, v1 = vals[0], vals[-1]
    direction = lr_direction(v0, v1)
    if direction > 0:
        shape = "warming up" if first or ctx.diag.lr_peak() is None or v1 <= (ctx.diag.lr_peak() or 0) else "rising"
        return PASS, f"{shape}: {fmt(v0)} -> {fmt(v1)}"
    if direction < 0:
        return PASS, f"decaying: {fmt(v0)} -> {fmt(v1)}"
    return PASS, f"constant at {fmt(v1)}"


def _no_nonfinite(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    seen = 0
    bad: list[str] = []
    for m in (LOSS, GRAD_NORM, EVAL_LOSS):
        raw = ctx.values(m, a, b, finite=False)
        seen += len(raw)
        nb = len(raw) - len(_finite(raw))
        if nb:
            bad.append(f"{m} x{nb}")
    if bad:
        return FAIL, "non-finite: " + ", ".join(bad)
    if not seen:
        return PENDING, "no loss or grad_norm in this window"
    return PASS, "all loss and grad_norm values finite"


# -- every 1000 steps --------------------------------------------------------------------------


def _loss_gap(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    t = ctx.t
    ev = ctx.evals()
    if not ev.count(a, b):
        return PENDING, "no eval in this window"
    j = ev.upto(b) - 1
    step, el = ev.steps[j], ev.values[j]
    tl = ctx.train_at(LOSS, step)
    if tl is None or tl <= 0:
        return PENDING, "no train loss to compare with"
    gap = (el - tl) / tl
    detail = f"eval {fmt(el)} vs train {fmt(tl)} at step {step} ({gap * 100:+.0f}%)"
    if el / tl > t.loss_gap_ratio and el - tl >= t.loss_gap_min:
        return FAIL, detail
    if gap > t.loss_gap_warn:
        return WARN, detail
    return PASS, detail


def _eval_acc_rising(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    ev = ctx.eval_acc()
    if not ev.count(a, b):
        return PENDING, "no eval accuracy in this window"
    j = ev.upto(b) - 1  # the window's latest eval accuracy, and the one before it
    s1, v1 = ev.steps[j], ev.values[j]
    if j < 1:
        return PENDING, f"one eval so far ({fmt(v1)})"
    s0, v0 = ev.steps[j - 1], ev.values[j - 1]
    detail = f"{fmt(v0)} (step {s0}) -> {fmt(v1)} (step {s1})"
    if v1 < v0 - ctx.t.accuracy_drop:
        return FAIL, "falling: " + detail
    if v1 < v0 - 0.005:
        return WARN, "falling: " + detail
    return PASS, detail


def _no_overfitting(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    ev = ctx.evals()
    if not ev.upto(b):
        return PENDING, "no eval yet"
    if not ev.count(a, b):
        return PENDING, "no eval in this window"
    return PASS, "eval_loss not rising against train loss"


def _entropy_stable(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    n, m1 = ctx.stat(ENTROPY, a, b)
    if n < 2:
        return PENDING, "not enough entropy points in this window"
    if m1 < 0.05:
        return FAIL, f"entropy collapsed to {fmt(m1)} nats"
    size = b - a + 1
    nprev, m0 = ctx.stat(ENTROPY, max(0, a - size), a - 1)
    if nprev < 2:
        return PASS, f"median {fmt(m1)}"
    change = (m1 - m0) / m0 if m0 else 0.0
    detail = f"median {fmt(m1)} vs {fmt(m0)} in the previous window ({change * 100:+.0f}%)"
    if abs(change) > 0.5:
        return WARN, detail
    return PASS, detail


# -- every epoch -------------------------------------------------------------------------------


def _trend_healthy(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    s = ctx.data.get(LOSS)
    if s is None:
        return PENDING, "not enough loss points yet"
    i, j = bisect_left(s.steps, a), bisect_right(s.steps, b)
    vals = _values(s, i, j, True)
    if len(vals) < 2:
        return PENDING, "not enough loss points yet"
    m1 = median(vals)
    # the previous epoch: as many values as this one's, just before it (a sampled window: the
    # same number of points before it, sampled alike)
    prev = _last_finite(s, i, len(vals)) if j - i <= _MAX_SAMPLE else _values(s, max(0, i - (j - i)), i, True)
    if prev:
        m0 = median(prev)
        change = (m1 - m0) / m0 if m0 else 0.0
        detail = f"loss median {fmt(m1)} vs {fmt(m0)} in the previous epoch ({change * 100:+.0f}%)"
        if change > 0.1:
            return WARN, detail
        return PASS, detail
    half = len(vals) // 2
    m0 = median(vals[:half])
    return (PASS if m1 <= m0 else WARN), f"loss median {fmt(m0)} -> {fmt(m1)} within the epoch"


def _hparams_ok(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    codes = _ITEM_CODES["hparams_ok"]
    hits = ctx.overlapping(a, b, codes[0] | codes[1])
    if not hits:
        return PASS, "no finding calls for a change"
    worst = max(hits, key=lambda f: f.severity.rank)
    status = FAIL if worst.code in codes[1] else WARN
    return status, f"{worst.code}: {worst.advice[0] if worst.advice else worst.message}"


def _best_checkpoint(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    ev = ctx.evals()
    n = ev.upto(b)
    if not n:
        return PENDING, "no eval yet"
    i = ev.best[n - 1]
    step, loss, acc = ev.steps[i], ev.values[i], value_at(ctx.data.get(EVAL_TOKEN_ACC), ev.steps[i])
    acc_txt = f", eval accuracy {fmt(acc)}" if acc is not None else ""
    detail = f"step {step} (eval_loss {fmt(loss)}{acc_txt})"
    if step < a and ev.count(a, b):
        return WARN, detail + ": no better eval in this epoch"
    return PASS, detail


def _early_stop(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    ev = ctx.evals()
    n = ev.upto(b)
    if not n:
        return PENDING, "no eval yet"
    best_i = ev.low[n - 1]
    since = n - 1 - best_i
    if since >= ctx.t.overfit_patience:
        return (
            WARN,
            f"eval_loss has not improved for {since} evals (best {fmt(ev.values[best_i])} at step {ev.steps[best_i]})",
        )
    return (
        PASS,
        "not needed: eval_loss still improving" if since == 0 else f"not yet: {since} eval(s) without a new best",
    )


_FINDINGS_ONLY = frozenset({"hparams_ok"})  # items judged on the findings alone

_JUDGES = {
    "loss_falling": _loss_falling,
    "grad_norm_in_range": _grad_in_range,
    "lr_decaying": _lr_decaying,
    "no_nonfinite": _no_nonfinite,
    "loss_gap": _loss_gap,
    "eval_acc_rising": _eval_acc_rising,
    "no_overfitting": _no_overfitting,
    "entropy_stable": _entropy_stable,
    "trend_healthy": _trend_healthy,
    "hparams_ok": _hparams_ok,
    "best_checkpoint": _best_checkpoint,
    "early_stop": _early_stop,
}
