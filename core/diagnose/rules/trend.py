"""Long-window trend rules: loss_plateau (the loss barely moved over a long window) and
accuracy_slow (token accuracy rose only a little).

Both judge medians at both ends of a window that is ``plateau_fraction`` of the points logged so
far (up to the history cap, past which it stops growing), on a stride of a tenth of that window,
and their medians look at an evenly strided sample of at most ``_SAMPLE`` points per segment
(exact up to that size): a check costs O(1) however long the run, O(1) amortised with the stride.
A finding opens once ``_CONFIRM`` checks in a row were hot and the window slid by half its length
since the first of them; ``clear_points`` clear checks in a row close it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Hist, Mark, RuleState
from sfttop.core.diagnose.stats import diffs, median, robust_noise, sample
from sfttop.core.i18n import _
from sfttop.core.metrics import LOSS, TOKEN_ACC
from sfttop.core.textfmt import fmt

from .base import Cols, Context, LossLevel, LrLevel, Point, TrainRule, acc_span

_CONFIRM = 2  # consecutive hot checks before it opens
# Values one trend median (or noise estimate) looks at. Up to this many points the statistics
# are exact; past it they use an evenly strided sample, so a check costs O(1) and not O(run
# length) (the medians of 500 noisy points are as good as of 50000).
_SAMPLE = 500
isfinite = math.isfinite


class _Trend(TrainRule):
    """A check on a stride over one metric's history, with the votes of the last checks."""

    __slots__ = ("next", "since", "votes")
    quiet_by_reach = True
    still_in_bulk = True
    code: Code
    metric = ""
    _which = 0  # the history this rule reads, in Timeline.hists order

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.next = 0  # values of the metric at which the next check is due
        self.votes = 0  # >0: consecutive hot checks; <0: consecutive clear checks
        self.since = 0  # values logged when the current run of hot checks began

    def _window(self, n: int) -> int:
        t = self.t
        return max(t.plateau_points, math.ceil(t.plateau_fraction * n))

    def _span(self, h: Hist, mult: int) -> int:
        """The window (points of ``h``) of a check: ``mult`` x ``_window`` of the points logged so
        far, counted up to the cap only (past it the window stops growing), and never more than
        the points kept. 0 while it does not fit."""
        n = len(h.values)
        total = h.off + n
        cap = self.tl.cap
        w = mult * self._window(total if total < cap else cap)
        if w > n:
            if not h.off or n < mult * self.t.plateau_points:
                return 0
            w = n  # a metric on only some records: fewer than a window of it kept
        return w

    def _verdict(
        self, ep: Episodes, hot: bool, clear: bool, w: int, step: int, value: float, message: Callable[[], str]
    ) -> None:
        """The check's verdict on a window of ``w`` points; the finding opens at its start."""
        h = self.h
        n = len(h.values)
        if hot:
            self.votes = self.votes + 1 if self.votes > 0 else 1
        elif clear:
            self.votes = self.votes - 1 if self.votes < 0 else -1
        else:
            self.votes = 0
        if self.votes == 1:
            self.since = n
        if self.votes >= _CONFIRM and n - self.since >= w // 2:
            ep.hot(self.code, h.step(n - w), self.metric, value, message())
        elif self.votes <= -self.t.clear_points:
            ep.close(self.code, step)

    # no check falls due inside a stretch: nothing in it can open or close this rule
    def reach(self, c: Cols, i: int, j: int) -> int:
        if c[self._which + 1] is None:  # (Cols lists the steps, then the histories' columns)
            return j - i
        k = self.next - len(self.h.values) - 1
        return k if k < j - i else j - i

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        return j - i

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        """(the stretch ends before the next check: the history moved, this rule did not)"""

    def restore(self, state: RuleState, mark: Mark) -> None:
        self.next = 0  # check again at once

    def trimmed(self, dropped: tuple[int, ...]) -> None:
        k = dropped[self._which]
        self.next -= k
        self.since -= k


class Plateau(_Trend):
    """loss_plateau: flat (not rising: that is loss_oscillation's business), not just noise
    hiding a real improvement, near its best level, above ``plateau_min_loss``, with an LR not
    far below its peak."""

    __slots__ = ("improvement", "level", "lr")
    links = ("level", "lr")
    code = Code.LOSS_PLATEAU
    codes = (Code.LOSS_PLATEAU,)
    metric = LOSS
    _which = 0

    def __init__(self, ctx: Context, level: LossLevel, lr: LrLevel) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.loss
        self.level = level
        self.lr = lr
        self.improvement: float | None = None  # relative, over the last window

    def observe(self, p: Point, ep: Episodes) -> None:
        if p.loss is not None and len(self.h.values) >= self.next:
            self._check(p.step, p.early, ep)

    def _check(self, step: int, early: bool, ep: Episodes) -> None:
        t = self.t
        h = self.h
        vals = h.values
        n = len(vals)
        w = self._span(h, 1)
        if not w or n < self.next:
            return
        # checks on a stride of a tenth of the window the run's whole length would give (the same
        # before the cap; past it the window stops growing but the checks do not get denser)
        self.next = n + max(1, self._window(h.total) // 10)
        k = max(3, w // 3)
        a = n - w
        head = sample(vals, a, a + k, _SAMPLE)
        first = median(head)
        last = median(sample(vals, n - k, n, _SAMPLE))
        imp = (first - last) / abs(first) if first != 0 else 0.0
        self.improvement = imp
        # standard error of `imp` from the point-to-point noise (successive differences ignore
        # the trend): the plateau closes only on an improvement clearly beyond the noise. With
        # sampled medians the standard error is the sample's, not the whole window's.
        sigma = robust_noise(diffs(vals, a, n, 2 * _SAMPLE))
        se = math.sqrt(2) * 1.2533 * sigma / math.sqrt(len(head)) / abs(first) if first else 0.0
        lr_ok = self.lr.ok_for_plateau()
        lo = -10 * t.plateau_min_improvement
        # ...and not just noise hiding a real improvement: its upper 2-sigma bound stays small too
        flat = lo < imp < t.plateau_min_improvement and imp + 2 * se < 3 * t.plateau_min_improvement
        # ...and at (or near) its best level: a loss stuck far above its best is unstable, not flat
        near_best = last < t.oscillation_ratio * self.level.loss_best
        hot = flat and last > t.plateau_min_loss and lr_ok and near_best and not early
        clear = not near_best or not (lo < imp < 2 * t.plateau_min_improvement + 2 * se)
        clear = clear or last <= t.plateau_min_loss or not lr_ok
        self._verdict(
            ep,
            hot,
            clear,
            w,
            step,
            last,
            lambda: (
                _("loss barely moved over the last {w} points (steps {first_step}-{step}): {first} -> {last} ({change:+.2g}%)").format(w=w, first_step=h.step(n - w), step=step, first=fmt(first), last=fmt(last), change=-imp * 100)
            ),
        )


class AccuracySlow(_Trend):
    """accuracy_slow: token accuracy gained less than ``accuracy_slow_gain`` over a window twice
    the plateau's (a fall is accuracy_drop's business), below ``accuracy_slow_ceiling``."""

    __slots__ = ("lr",)
    links = ("lr",)
    code = Code.ACCURACY_SLOW
    codes = (Code.ACCURACY_SLOW,)
    metric = TOKEN_ACC
    _which = 3

    def __init__(self, ctx: Context, lr: LrLevel) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.acc
        self.lr = lr

    def observe(self, p: Point, ep: Episodes) -> None:
        acc = p.acc
        if acc is None or not isfinite(acc):
            return
        na = len(self.h.values)
        if na >= acc_span(self.t) and na >= self.next:
            self._check(p.step, p.early, ep)

    def _check(self, step: int, early: bool, ep: Episodes) -> None:
        t = self.t
        h = self.h
        vals = h.values
        n = len(vals)
        w = self._span(h, 2)
        if not w or n < self.next:
            return
        self.next = n + max(1, 2 * self._window(h.total) // 10)
        k = max(5, w // 4)
        first = median(sample(vals, n - w, n - w + k, _SAMPLE))
        last = median(sample(vals, n - k, n, _SAMPLE))
        gain = last - first
        lr_ok = self.lr.ok_for_plateau()
        # A slow gain, not a fall: a falling accuracy is accuracy_drop's business.
        flat = -t.accuracy_drop / 2 < gain < t.accuracy_slow_gain
        hot = flat and last < t.accuracy_slow_ceiling and lr_ok and not early
        clear = gain >= 2 * t.accuracy_slow_gain or gain <= -t.accuracy_drop / 2
        clear = clear or last >= t.accuracy_slow_ceiling or not lr_ok
        self._verdict(
            ep,
            hot,
            clear,
            w,
            step,
            last,
            lambda: (
                (
                    _("token accuracy rose only {first} -> {last} over the last {w} points (to step {step})")
                    if last >= first
                    else _("token accuracy fell {first} -> {last} over the last {w} points (to step {step})")
                ).format(first=fmt(first), last=fmt(last), w=w, step=step)
            ),
        )
