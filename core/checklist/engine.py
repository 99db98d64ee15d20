"""The checklist engine: cuts a run into windows per cadence, judges each item per window
(``items.py`` says which judge and which findings), caches closed windows.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from sfttop.core.config import Thresholds
from sfttop.core.diagnose import Diagnoser
from sfttop.core.i18n import _
from sfttop.core.metrics import EVAL_LOSS, EVAL_TOKEN_ACC
from sfttop.core.query import logging_interval
from sfttop.core.records import Kind
from sfttop.core.series import RunData

from .context import Context, Evals, WindowData
from .items import BY_CADENCE, CADENCES, CheckItem
from .windows import FAIL, ORDER, PASS, WARN, Cadence, ChecklistState, CheckResult, Verdict, Window

MIN_POINTS = 5  # logged train points a step window should hold
MAX_WINDOWS = 1000  # windows a step cadence should hold at most: a longer run gets wider windows


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


@dataclass(slots=True)
class _Cached:
    window: Window
    # each item's verdict from the data (None: findings only); the whole list None when the
    # items are just that (no finding made one worse): most windows, and a run keeps a thousand
    base: list[Verdict | None] | None

    def verdicts(self, cid: str) -> list[Verdict | None]:
        if self.base is not None:
            return self.base
        return [
            None if item.judge is None else (r.status, r.detail) for item, r in zip(BY_CADENCE[cid], self.window.items)
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
        self._cache: dict[str, dict[int, _Cached]] = {cid: {} for cid in CADENCES}
        self._empty: dict[str, set[int]] = {"100_steps": set(), "1000_steps": set()}  # closed, no data
        self._done: dict[str, int] = {"100_steps": 0, "1000_steps": 0}  # windows before: cached or empty
        self._epochs: list[tuple[int, int, int]] = []  # (epoch number, first step, last step)
        self._epoch_step: int | None = None  # the last train step assigned to an epoch
        self._evals = Evals(EVAL_LOSS)  # kept up to date incrementally
        self._eval_acc = Evals(EVAL_TOKEN_ACC)

    def update(self, data: RunData, diag: Diagnoser) -> ChecklistState:
        ctx, sizes = self._prepare(data, diag)
        last = data.last_step
        cad = []
        for cid, size in (("100_steps", sizes[0]), ("1000_steps", sizes[1])):
            label = _(CADENCES[cid]) if size == (100 if cid == "100_steps" else 1000) else _("every {size} steps").format(size=size)
            windows = self._step_windows(cid, size, ctx, last)
            cad.append(Cadence(cid, label, size, windows))
        cad.append(Cadence("epoch", _(CADENCES["epoch"]), None, self._epoch_windows(ctx, last)))
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
                cache[num] = _judge("epoch", ctx, num, _("epoch {num}").format(num=num), a, b, True, i == 0)

    def _prepare(self, data: RunData, diag: Diagnoser) -> tuple[Context, tuple[int, int]]:
        horizon = max(data.last_step or 0, data.max_steps or 0, diag.max_steps or 0)
        sizes = window_sizes(logging_interval(data), horizon)
        if diag.restarts != self._restarts:
            self._restarts = diag.restarts
            self._sizes = None
            self._cache["epoch"].clear()
            self._epochs = []
            self._epoch_step = None
            self._evals = Evals(EVAL_LOSS)
            self._eval_acc = Evals(EVAL_TOKEN_ACC)
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
        ctx = Context(data, diag, self.t, self._evals, self._eval_acc)
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
                            cache[k] = _cached(
                                w.with_items(_merged(cid, WindowData(ctx, w.start_step, w.end_step, False), base)), base
                            )
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

    def _step_window(self, cid: str, size: int, ctx: Context, k: int, k0: int, now: int) -> Window | None:
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

    def _step_windows(self, cid: str, size: int, ctx: Context, last: int | None) -> list[Window]:
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

    def _epoch_windows(self, ctx: Context, last: int | None) -> list[Window]:
        if last is None:
            return []
        self._scan_epochs(ctx.data)
        cache = self._cache["epoch"]
        if not self._epochs:
            first = ctx.first_step()
            if first is None:
                return []
            return [_judge("epoch", ctx, 0, _("whole run (no epoch info)"), first, last, ctx.diag.finished, True).window]
        out = []
        for i, (num, a, b) in enumerate(self._epochs):
            closed = i < len(self._epochs) - 1 or ctx.diag.finished
            c = cache.get(num)
            if c is None or not closed:
                end = b if closed else max(b, last)
                c = _judge("epoch", ctx, num, _("epoch {num}").format(num=num), a, end, closed, i == 0)
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


def _from_findings(item: CheckItem, w: WindowData) -> Verdict | None:
    """(status, detail) from finding episodes of the item's codes overlapping the window, or None
    when none does."""
    if not item.codes:
        return None
    hits = w.ctx.overlapping(w.a, w.b, item.codes)
    if not hits:
        return None
    worst = max(hits, key=lambda f: (f.code in item.fail, f.severity.rank))
    status = FAIL if worst.code in item.fail else WARN
    more = _(" (+{count} more)").format(count=len(hits) - 1) if len(hits) > 1 else ""
    return status, _("{code}: {message}{more}").format(code=worst.code, message=worst.message, more=more)


def _findings_only(item: CheckItem, w: WindowData) -> Verdict:
    """The verdict of an item judged on the findings alone: the most severe overlapping finding
    of its codes, with its first advice (what to change), else a pass."""
    hits = w.ctx.overlapping(w.a, w.b, item.codes)
    if not hits:
        return PASS, _("no finding calls for a change")
    worst = max(hits, key=lambda f: f.severity.rank)
    status = FAIL if worst.code in item.fail else WARN
    return status, _("{code}: {message}").format(code=worst.code, message=worst.advice[0] if worst.advice else worst.message)


def _merge(base: Verdict, found: Verdict | None) -> Verdict:
    """The worse of the window's own verdict and the findings' (the window's wins a tie)."""
    return found if found is not None and ORDER[found[0]] > ORDER[base[0]] else base


def _judge(cid: str, ctx: Context, index: int, label: str | None, a: int, b: int, closed: bool, first: bool) -> _Cached:
    """Judge window [a, b]: each item's verdict from the data, merged with the findings."""
    w = WindowData(ctx, a, b, first)
    base = [None if item.judge is None else item.judge(w) for item in BY_CADENCE[cid]]
    ctx.window_done()
    return _cached(Window(index, label, a, b, closed, _merged(cid, w, base)), base)


def _merge_windows(cid: str, k: int, a: int, b: int, parts: list[_Cached]) -> _Cached:
    """One window made of closed ones: each item the worst of theirs (the latest of equals; a
    pending part counts least), and the same for the verdicts from the data."""
    window = Window.worst_of(k, a, b, [c.window for c in parts])
    if all(c.base is None for c in parts):
        # (the usual case: each part's verdicts from the data are its items, so the merged
        # window's items are the merged verdicts too, the very same detail strings)
        return _Cached(window, None)
    base: list[Verdict | None] = []
    verdicts = [c.verdicts(cid) for c in parts]
    for j in range(len(BY_CADENCE[cid])):
        vs = [v[j] for v in verdicts]
        if any(v is None for v in vs):
            base.append(None)
        else:
            base.append(max((v for v in reversed(vs) if v is not None), key=lambda v: ORDER[v[0]]))
    return _cached(window, base)


def _cached(w: Window, base: list[Verdict | None]) -> _Cached:
    return _Cached(w, None if w.shows(base) else base)


def _merged(cid: str, w: WindowData, base: list[Verdict | None]) -> list[CheckResult]:
    """Each item's verdict (``base``; None: judge it on the findings now) merged with the findings."""
    out = []
    for item, verdict in zip(BY_CADENCE[cid], base):
        if verdict is None:
            verdict = _findings_only(item, w)
        status, detail = _merge(verdict, _from_findings(item, w))
        out.append(CheckResult(item.id, _(item.label), status, detail))
    return out
