"""The seed's monitoring checklist at three cadences: every 100 steps, every 1000 steps, every epoch.

Each cadence cuts the run into windows and judges the seed's four items for each window:
``pass``, ``warn``, ``fail`` or ``pending`` (not enough data in that window yet). The latest
window shows the run now; the past windows show when a check turned.

Windows follow the run's own steps. The nominal sizes are 100 and 1000 steps, but a window must
hold at least ``MIN_POINTS`` logged train points to say anything, so with a logging interval L
the "100 steps" window is ``nice(max(100, 5 L))`` steps and the "1000 steps" window
``nice(max(1000, 4 x that))``, where ``nice`` rounds up to 1, 2, 2.5 or 5 x 10^k. A run logged
every 5 steps gets windows of 100 and 1000 steps; one logged every 500 steps gets 2500 and 10000.
Window k of size W holds steps ``k*W+1 .. (k+1)*W`` (step 0, an eval before training, joins the
first). Epoch windows hold the records whose epoch lies in ``(e-1, e]``, so the record that ends
epoch 1 at ``epoch == 1.0`` belongs to epoch 1.

Items combine what the window's own values say (medians compared with the previous window, the
latest eval in it) with the diagnoser's finding episodes that overlap the window. Closed windows
are cached; only the open one is recomputed, so calling ``update()`` a few times a second on a
growing run costs O(latest window).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import Thresholds
from .diagnose import Diagnoser, Finding, fmt, median
from .metrics import ENTROPY, EVAL_LOSS, EVAL_TOKEN_ACC, GRAD_NORM, LOSS, LR
from .records import Kind
from .series import RunData, Series

PASS, WARN, FAIL, PENDING = "pass", "warn", "fail", "pending"
_ORDER = {PENDING: 0, PASS: 1, WARN: 2, FAIL: 3}

MIN_POINTS = 5  # logged train points a step window should hold
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


@dataclass
class Item:
    id: str
    label: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "label": self.label, "status": self.status, "detail": self.detail}


@dataclass
class Window:
    index: int
    label: str
    start_step: int
    end_step: int  # inclusive; for an open window, the last step it can hold
    closed: bool
    items: list[Item] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The worst item status (pending counts least)."""
        return max((i.status for i in self.items), key=_ORDER.__getitem__, default=PENDING)

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

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


@dataclass
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


def logging_interval(data: RunData) -> int:
    """The run's logging interval in steps (median gap between train records)."""
    steps = data.index[Kind.TRAIN].steps
    n = min(len(steps), 101)
    if n < 2:
        return 1
    gaps = [steps[i + 1] - steps[i] for i in range(n - 1)]
    return max(1, int(median(gaps)))


def window_sizes(interval: int) -> tuple[int, int]:
    small = nice_ceil(max(100, MIN_POINTS * interval))
    big = nice_ceil(max(1000, 4 * small))
    return small, big


# ------------------------------------------------------------------------------------------------
# the engine


class Checklist:
    """Keeps the checklist of one run; call ``update()`` whenever you want a fresh state."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.t = thresholds if thresholds is not None else Thresholds()
        self._sizes: tuple[int, int] | None = None
        self._restarts = -1
        self._nfindings = 0
        self._cache: dict[str, dict[int, Window]] = {"100_steps": {}, "1000_steps": {}, "epoch": {}}
        self._epochs: list[tuple[int, int, int]] = []  # (epoch number, first step, last step)
        self._epoch_pos = 0  # train index entries already assigned to epochs

    def update(self, data: RunData, diag: Diagnoser) -> ChecklistState:
        sizes = window_sizes(logging_interval(data))
        if sizes != self._sizes or diag.restarts != self._restarts:
            self._sizes = sizes
            self._restarts = diag.restarts
            for c in self._cache.values():
                c.clear()
            self._epochs = []
            self._epoch_pos = 0
        # A finding that opened since the last call may reach back into closed windows (a plateau
        # begins where its window began): forget the cached windows it touches.
        if len(diag.findings) != self._nfindings:
            first = min((f.step for f in diag.findings[self._nfindings :]), default=None)
            self._nfindings = len(diag.findings)
            if first is not None:
                for c in self._cache.values():
                    for k in [k for k, w in c.items() if w.end_step >= first]:
                        del c[k]
        ctx = _Ctx(data, diag, self.t)
        last = data.last_step
        cad = []
        for cid, size in (("100_steps", sizes[0]), ("1000_steps", sizes[1])):
            label = ITEMS[cid][0] if size == (100 if cid == "100_steps" else 1000) else f"every {size} steps"
            windows = self._step_windows(cid, size, ctx, last)
            cad.append(Cadence(cid, label, size, windows))
        cad.append(Cadence("epoch", ITEMS["epoch"][0], None, self._epoch_windows(ctx, last)))
        return ChecklistState(cad)

    def _step_windows(self, cid: str, size: int, ctx: _Ctx, last: int | None) -> list[Window]:
        if last is None:
            return []
        cache = self._cache[cid]
        first_step = ctx.first_step()
        if first_step is None:
            return []
        k0 = _wnum(first_step, size)
        k1 = _wnum(last, size)
        out: list[Window] = []
        for k in range(k0, k1 + 1):
            w = cache.get(k)
            if w is None:
                a, b = k * size + 1, (k + 1) * size
                if k == 0:
                    a = 0
                if not ctx.has_data(a, b):
                    continue
                closed = last > b or ctx.diag.finished
                w = Window(k, f"steps {a}-{b}", a, b, closed, _items(cid, ctx, a, b, k0 == k))
                if closed:
                    cache[k] = w
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
            return [
                Window(
                    0,
                    "whole run (no epoch info)",
                    first,
                    last,
                    ctx.diag.finished,
                    _items("epoch", ctx, first, last, True),
                )
            ]
        out = []
        for i, (num, a, b) in enumerate(self._epochs):
            closed = i < len(self._epochs) - 1 or ctx.diag.finished
            w = cache.get(num)
            if w is None or not closed:
                end = b if closed else max(b, last)
                w = Window(num, f"epoch {num}", a, end, closed, _items("epoch", ctx, a, end, i == 0))
                if closed:
                    cache[num] = w
            out.append(w)
        return out

    def _scan_epochs(self, data: RunData) -> None:
        idx = data.index[Kind.TRAIN]
        steps, epochs = idx.steps, idx.values
        for i in range(self._epoch_pos, len(steps)):
            e = epochs[i]
            if not math.isfinite(e):
                continue
            num = max(1, math.ceil(e - 1e-9))
            s = steps[i]
            if self._epochs and self._epochs[-1][0] == num:
                n0, a, _b = self._epochs[-1]
                self._epochs[-1] = (n0, a, s)
            elif not self._epochs or num > self._epochs[-1][0]:
                start = self._epochs[-1][2] + 1 if self._epochs else 0
                self._epochs.append((num, start, s))
        self._epoch_pos = len(steps)


def checklist(data: RunData, diag: Diagnoser, thresholds: Thresholds | None = None) -> ChecklistState:
    """One-shot checklist (for reports)."""
    return Checklist(thresholds if thresholds is not None else diag.t).update(data, diag)


def _wnum(step: int, size: int) -> int:
    return max(0, (step - 1) // size)


# ------------------------------------------------------------------------------------------------
# what a window holds


class _Ctx:
    def __init__(self, data: RunData, diag: Diagnoser, t: Thresholds) -> None:
        self.data = data
        self.diag = diag
        self.t = t

    def first_step(self) -> int | None:
        firsts = [s.steps[0] for s in self.data.index.values() if len(s)]
        return min(firsts) if firsts else None

    def has_data(self, a: int, b: int) -> bool:
        return any(_count(s, a, b) for s in self.data.index.values())

    def values(self, metric: str, a: int, b: int, finite: bool = True) -> list[float]:
        s = self.data.get(metric)
        if s is None:
            return []
        i, j = bisect_left(s.steps, a), bisect_right(s.steps, b)
        vals = s.values[i:j].tolist()
        if len(vals) > _MAX_SAMPLE:
            stride = math.ceil(len(vals) / _MAX_SAMPLE)
            vals = vals[::stride] + vals[-1:]
        return [v for v in vals if math.isfinite(v)] if finite else vals

    def points(self, metric: str, a: int, b: int) -> list[tuple[int, float]]:
        s = self.data.get(metric)
        if s is None:
            return []
        i, j = bisect_left(s.steps, a), bisect_right(s.steps, b)
        return list(zip(s.steps[i:j], s.values[i:j]))

    def train_at(self, metric: str, step: int) -> float | None:
        """Median of the last ``smooth_points`` finite train values at or before ``step``."""
        s = self.data.get(metric)
        if s is None:
            return None
        j = bisect_right(s.steps, step)
        vals = [v for v in s.values[max(0, j - 3 * self.t.smooth_points) : j] if math.isfinite(v)]
        vals = vals[-self.t.smooth_points :]
        return median(vals) if vals else None

    def overlapping(self, a: int, b: int, codes: Iterable[str]) -> list[Finding]:
        cs = set(codes)
        return [
            f for f in self.diag.findings if f.code in cs and f.step <= b and (f.end_step is None or f.end_step >= a)
        ]


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


def _items(cid: str, ctx: _Ctx, a: int, b: int, first: bool) -> list[Item]:
    out = []
    for iid, label in ITEMS[cid][1]:
        status, detail = _merge(_JUDGES[iid](ctx, a, b, first), _from_findings(iid, ctx, a, b))
        out.append(Item(iid, label, status, detail))
    return out


# -- every 100 steps ---------------------------------------------------------------------------


def _loss_falling(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    raw = ctx.values(LOSS, a, b, finite=False)
    vals = [v for v in raw if math.isfinite(v)]
    if len(raw) > len(vals):
        return FAIL, f"{len(raw) - len(vals)} non-finite loss values"
    if len(vals) < 2:
        return PENDING, "not enough loss points yet"
    prev = _prev_window_values(ctx, LOSS, a, b)
    if len(prev) >= 2:
        m0, m1 = median(prev), median(vals)
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


def _prev_window_values(ctx: _Ctx, metric: str, a: int, b: int) -> list[float]:
    size = b - a + 1
    return ctx.values(metric, max(0, a - size), a - 1)


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
    if v1 > v0 * (1 + 1e-6):
        shape = "warming up" if first or ctx.diag.lr_peak() is None or v1 <= (ctx.diag.lr_peak() or 0) else "rising"
        return PASS, f"{shape}: {fmt(v0)} -> {fmt(v1)}"
    if v1 < v0 * (1 - 1e-6):
        return PASS, f"decaying: {fmt(v0)} -> {fmt(v1)}"
    return PASS, f"constant at {fmt(v1)}"


def _no_nonfinite(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    seen = 0
    bad: list[str] = []
    for m in (LOSS, GRAD_NORM, EVAL_LOSS):
        raw = ctx.values(m, a, b, finite=False)
        seen += len(raw)
        nb = sum(1 for v in raw if not math.isfinite(v))
        if nb:
            bad.append(f"{m} x{nb}")
    if bad:
        return FAIL, "non-finite: " + ", ".join(bad)
    if not seen:
        return PENDING, "no loss or grad_norm in this window"
    return PASS, "all loss and grad_norm values finite"


# -- every 1000 steps --------------------------------------------------------------------------


def _evals(ctx: _Ctx, a: int, b: int) -> list[tuple[int, float]]:
    return [(s, v) for s, v in ctx.points(EVAL_LOSS, a, b) if math.isfinite(v)]


def _loss_gap(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    t = ctx.t
    ev = _evals(ctx, a, b)
    if not ev:
        return PENDING, "no eval in this window"
    step, el = ev[-1]
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
    pts = [(s, v) for s, v in ctx.points(EVAL_TOKEN_ACC, 0, b) if math.isfinite(v)]
    inside = [p for p in pts if p[0] >= a]
    if not inside:
        return PENDING, "no eval accuracy in this window"
    if len(pts) < 2:
        return PENDING, f"one eval so far ({fmt(inside[-1][1])})"
    (s1, v1) = inside[-1]
    (s0, v0) = pts[pts.index((s1, v1)) - 1]
    detail = f"{fmt(v0)} (step {s0}) -> {fmt(v1)} (step {s1})"
    if v1 < v0 - ctx.t.accuracy_drop:
        return FAIL, "falling: " + detail
    if v1 < v0 - 0.005:
        return WARN, "falling: " + detail
    return PASS, detail


def _no_overfitting(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    if not _evals(ctx, 0, b):
        return PENDING, "no eval yet"
    if not _evals(ctx, a, b):
        return PENDING, "no eval in this window"
    return PASS, "eval_loss not rising against train loss"


def _entropy_stable(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    vals = ctx.values(ENTROPY, a, b)
    if len(vals) < 2:
        return PENDING, "not enough entropy points in this window"
    m1 = median(vals)
    if m1 < 0.05:
        return FAIL, f"entropy collapsed to {fmt(m1)} nats"
    prev = _prev_window_values(ctx, ENTROPY, a, b)
    if len(prev) < 2:
        return PASS, f"median {fmt(m1)}"
    m0 = median(prev)
    change = (m1 - m0) / m0 if m0 else 0.0
    detail = f"median {fmt(m1)} vs {fmt(m0)} in the previous window ({change * 100:+.0f}%)"
    if abs(change) > 0.5:
        return WARN, detail
    return PASS, detail


# -- every epoch -------------------------------------------------------------------------------


def _trend_healthy(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    vals = ctx.values(LOSS, a, b)
    if len(vals) < 2:
        return PENDING, "not enough loss points yet"
    m1 = median(vals)
    prev = ctx.values(LOSS, 0, a - 1) if a > 0 else []
    if prev:
        m0 = median(prev[-len(vals) :])
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
    best = best_eval(ctx.data, b)
    if best is None:
        return PENDING, "no eval yet"
    step, loss, acc = best
    acc_txt = f", eval accuracy {fmt(acc)}" if acc is not None else ""
    detail = f"step {step} (eval_loss {fmt(loss)}{acc_txt})"
    if step < a and _evals(ctx, a, b):
        return WARN, detail + ": no better eval in this epoch"
    return PASS, detail


def _early_stop(ctx: _Ctx, a: int, b: int, first: bool) -> tuple[str, str]:
    ev = _evals(ctx, 0, b)
    if not ev:
        return PENDING, "no eval yet"
    best_i = min(range(len(ev)), key=lambda i: (ev[i][1], i))
    since = len(ev) - 1 - best_i
    if since >= ctx.t.overfit_patience:
        return WARN, f"eval_loss has not improved for {since} evals (best {fmt(ev[best_i][1])} at step {ev[best_i][0]})"
    return (
        PASS,
        "not needed: eval_loss still improving" if since == 0 else f"not yet: {since} eval(s) without a new best",
    )


def best_eval(data: RunData, until: int | None = None) -> tuple[int, float, float | None] | None:
    """(step, eval_loss, eval accuracy) of the lowest finite eval_loss up to ``until``; ties go to
    the higher eval token accuracy, then to the earlier step."""
    s = data.get(EVAL_LOSS)
    if s is None:
        return None
    acc = data.get(EVAL_TOKEN_ACC)
    best: tuple[float, float, int] | None = None  # (loss, -accuracy, step): smallest wins
    best_acc: float | None = None
    for step, v in s.points():
        if until is not None and step > until:
            break
        if not math.isfinite(v):
            continue
        a = value_at(acc, step)
        key = (v, -a if a is not None else math.inf, step)
        if best is None or key < best:
            best, best_acc = key, a
    if best is None:
        return None
    return best[2], best[0], best_acc


def value_at(s: Series | None, step: int) -> float | None:
    """The finite value logged at exactly ``step``, else None."""
    if s is None:
        return None
    i = bisect_left(s.steps, step)
    if i < len(s.steps) and s.steps[i] == step and math.isfinite(s.values[i]):
        return s.values[i]
    return None


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
