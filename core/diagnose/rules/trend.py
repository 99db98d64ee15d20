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

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.stats import diffs, median, robust_noise, sample
from sfttop.core.i18n import _
from sfttop.core.metrics import LOSS, TOKEN_ACC
from sfttop.core.textfmt import fmt

from .base import _SAMPLE, Context, LossLevel, LrLevel, Point, Trend, acc_span

isfinite = math.isfinite
_LR_RISE = 1.01  # an LR this many times its value a window ago is rising (float noise aside)


class Plateau(Trend):
    """loss_plateau: flat (not rising: that is loss_oscillation's business), not just noise
    hiding a real improvement, near its best level, above ``plateau_min_loss``, with an LR not
    far below its peak and not rising (a warmup), and not still falling over
    ``plateau_trend_windows`` windows (a pretraining loss, a flat epoch of a multi-epoch run)."""

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

    def _check(self, step: int, early: bool, ep: Episodes) -> None:
        t = self.t
        h = self.h
        vals = h.values
        n = len(vals)
        w = self._due(1)
        if not w:
            return
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
        # (asked only when it can change what opens or closes: a vote between the two matters
        # only to an open episode)
        if (hot or (not clear and self.code in ep.open)) and (self._warming_up(w) or self._still_falling(w)):
            hot, clear = False, True
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

    def _warming_up(self, w: int) -> bool:
        """The LR rose over the last ``w`` records: a warmup (or a cycle's restart) is raising it
        anyway, and a loss that has not moved yet in it is no plateau to raise the LR for."""
        lr = self.tl.lr.values
        return len(lr) > w and lr[-1] > _LR_RISE * lr[-1 - w]

    def _still_falling(self, w: int) -> bool:
        """Whether the loss still trends down over ``plateau_trend_windows`` windows of ``w``
        points: by ``plateau_min_improvement`` at least, and by three standard errors of its
        noise there. A pretraining loss falls as a power of the step, a little in every
        doubling of it: over a window a fifth of the run long it moves less than its noise, over
        the last half it still falls 2-4%; a stalled one does not."""
        vals = self.h.values
        n = len(vals)
        L = min(n, round(self.t.plateau_trend_windows * w))
        if L <= w:
            return False
        k = max(3, L // 3)
        head = sample(vals, n - L, n - L + k, _SAMPLE)
        first = median(head)
        if first <= 0:
            return False
        fall = (first - median(sample(vals, n - k, n, _SAMPLE))) / first
        sigma = robust_noise(diffs(vals, n - L, n, 2 * _SAMPLE))
        se = math.sqrt(2) * 1.2533 * sigma / math.sqrt(len(head)) / first
        if not fall > 3 * se:
            return False
        # per doubling of the steps: past the history cap the window stops growing and spans
        # less of the run (its last 30% at step 15000 of a 21000-step pretraining)
        a, b = self.h.step(n - L), self.h.step(n - 1)
        per_doubling = fall * math.log(2) / math.log(b / a) if 0 < a < b else fall
        return per_doubling >= self.t.plateau_min_improvement


class AccuracySlow(Trend):
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
        w = self._due(2)
        if not w:
            return
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
