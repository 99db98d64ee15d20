"""Gradient rules: grad_explosion and grad_norm_high (a value above a threshold or a spike
against the rolling median), and grad_vanishing (the smoothed grad_norm below a floor while the
loss is stuck).

grad_norm is instantaneous and heavy-tailed, so a spike needs both a ratio to the rolling median
and a modified z-score, and a norm of at least ``grad_spike_min`` (HF's default clipping norm, 1.0):
a jump from 0.05 to 0.17 is many times the median yet makes an update no larger than any clipped
step. In early training large norms are normal, and only a jump above the early level or a level
that stays high without settling counts.

A norm above ``grad_norm_critical`` is a critical grad_explosion only when the loss is not
falling with it: the loss logged with the norm below the median of the few before it means the
large step went where it should (a model far from its optimum at init or in warmup, the first
steps on a new task) and, with the default clipping, made an update of the clipped size. Such a
norm is a grad_norm_high warning. Measured on the public logs: a from-scratch pretrain at ~20 from
its first step and 44 in warmup (loss 12.6 -> 6.2), an SFT adapting from a loss of 11 through a
norm of 23.4, one-step spikes of 22-112 while the loss and eval_loss improve throughout: all
healthy or, by the numbers, warnings; every real explosion there came with the loss rising.

Nor is a norm above either threshold at the level the run has had from its start (within
``grad_spike_ratio`` of its lowest first values and of its rolling median, the loss not rising): a
model trained from scratch logs ~20 from its first step, steadily, while the loss falls. A loss
"rising with" a one-step spike must rise by ``oscillation_min_jump`` too: a converged loss going
0.001 -> 0.005 is five times up and no harm.

Small gradients are expected once the loss has converged: grad_vanishing needs a loss above
``plateau_min_loss`` (a flat loss below it is converged, not stuck). Episodes of both warnings that
come back within a window of closing continue (debounced).
"""

from __future__ import annotations

import math

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import NEVER, Mark, RuleState
from sfttop.core.diagnose.stats import RollingMedian, diffs, modified_z, robust_noise, tail_median
from sfttop.core.i18n import _
from sfttop.core.metrics import GRAD_NORM
from sfttop.core.textfmt import fmt

from .base import Cols, Context, LossTrend, Point, TrainRule

_EXPLOSION, _HIGH, _VANISHING = Code.GRAD_EXPLOSION, Code.GRAD_NORM_HIGH, Code.GRAD_VANISHING
_FALL_K = 2.5  # the loss's per-point noise that a fall must exceed to excuse a norm above critical


class Gradients(TrainRule):
    """grad_explosion and grad_norm_high."""

    __slots__ = ("g0", "gw_first", "gw_streak", "gx_first", "gx_streak", "spiked", "win")
    codes = (_EXPLOSION, _HIGH)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.grad
        self.win = RollingMedian(ctx.t.window_points)  # the last window_points grad norms
        self.gx_streak = 0  # consecutive points above grad_norm_critical ...
        self.gx_first = 0.0  # ... and the first of them
        self.gw_streak = 0  # the same for grad_norm_warn
        self.gw_first = 0.0
        self.spiked = False  # the previous point was above grad_norm_warn or a spike
        self.g0 = math.inf  # the norm's level at the start: the lowest of its first smooth_points

    def observe(self, p: Point, ep: Episodes) -> None:
        grad = p.grad
        h = self.h
        if grad is None:
            h.gaps.append(p.row)
            return
        t = self.t
        if h.total < t.smooth_points and grad < self.g0:
            self.g0 = grad
        win = self.win.win  # the window before this value, sorted
        nprev = len(win)
        if nprev:
            k = nprev >> 1
            med = win[k] if nprev & 1 else 0.5 * (win[k - 1] + win[k])
            ratio = grad / med if med > 0 else math.inf if grad > 0 else 0.0
        else:
            med, ratio = math.nan, 0.0
        open_ = ep.open
        if (
            grad > t.grad_norm_warn
            or grad > t.grad_norm_critical
            or (ratio >= t.grad_spike_ratio and grad >= t.grad_spike_min and not p.early)
            or _EXPLOSION in open_
            or _HIGH in open_
        ):
            self._judge(p.step, grad, p.early, med, ratio, ep, p.loss)
        else:
            self.gx_streak = self.gw_streak = 0  # nothing above a threshold, no spike
            self.spiked = False
        h.values.append(grad)
        self.win.push(h.values)

    def _streaks(self, g: float) -> None:
        """Streaks above each threshold, for early training (where a single value proves little)."""
        t = self.t
        if g > t.grad_norm_critical:
            if self.gx_streak == 0:
                self.gx_first = g
            self.gx_streak += 1
        else:
            self.gx_streak = 0
        if g > t.grad_norm_warn:
            if self.gw_streak == 0:
                self.gw_first = g
            self.gw_streak += 1
        else:
            self.gw_streak = 0

    def _early(self, g: float, ratio: float, nprev: int) -> tuple[bool, bool, bool]:
        """(explode, high, spike) in early training. Large early grad norms are normal; a jump
        above the early level is not, nor is a level that stays high without settling."""
        t = self.t
        jump = nprev >= 2 and ratio >= t.grad_spike_ratio
        explode = g > t.grad_norm_critical and (jump or (self.gx_streak >= 3 and g >= self.gx_first))
        high = g > t.grad_norm_warn and (jump or (self.gw_streak >= 3 and g >= self.gw_first))
        return explode, high, False

    def _late(self, g: float, med: float, ratio: float, nprev: int) -> tuple[bool, bool, bool]:
        """(explode, high, spike) past early training: the thresholds, or a spike by both its ratio
        to the rolling median and its modified z-score."""
        t = self.t
        spike = (
            nprev >= t.min_window_points
            and ratio >= t.grad_spike_ratio
            and g >= t.grad_spike_min
            and modified_z(g, self.win.win, med) > t.grad_spike_z
        )
        return g > t.grad_norm_critical, g > t.grad_norm_warn, spike

    def _loss_falling(self, loss: float | None) -> tuple[float, float] | None:
        """(the loss's recent level, the loss now) when the loss logged with this norm is clearly
        below the median of the ``smooth_points`` before it (None: not falling, or no loss to tell)."""
        got = None if loss is None else self._loss_level()
        if loss is None or got is None:
            return None
        level, sigma = got
        # below the level by more than the loss's own per-point noise: on a flat noisy loss half
        # of all points are "below the median", and an explosion there must stay critical (at
        # _FALL_K sigmas about 2% of them pass; the public runs' falls are 2.7-12 sigmas)
        return (level, loss) if level - loss > _FALL_K * sigma else None

    def _loss_rising(self, loss: float | None) -> bool:
        """The loss logged with this norm clearly above the median of the few before it: beyond
        its noise and by ``oscillation_min_jump`` (a converged loss going 0.001 -> 0.005 with a
        one-step spike of the norm is five times up and harmless)."""
        got = None if loss is None else self._loss_level()
        if loss is None or got is None:
            return False
        level, sigma = got
        rise = loss - level
        return rise > _FALL_K * sigma and rise >= self.t.oscillation_min_jump

    def _loss_level(self) -> tuple[float, float] | None:
        """(the median of the last ``smooth_points`` losses, the loss's per-point noise over the
        last window): what the loss logged with a norm is judged against; None without history."""
        lv = self.tl.loss.values
        n = min(self.t.smooth_points, len(lv))
        if n == 0:
            return None
        m = len(lv)
        a = max(0, m - self.t.window_points)
        sigma = robust_noise(diffs(lv, a, m, m - a)) if m - a >= 4 else 0.0
        return tail_median(lv, n), sigma

    def _steady(self, g: float, ratio: float, nprev: int, loss: float | None) -> bool:
        """A norm above a threshold at the level the run has had from its start: within
        ``grad_spike_ratio`` of its starting level and of its rolling median, with the loss not
        rising. A model trained from scratch starts far from any optimum with norms of 20 and
        more, steady for the first hundred steps while the loss falls (and with clipping every
        update has the clipped size): that is where it starts, not where it went wrong."""
        t = self.t
        r = t.grad_spike_ratio
        return nprev > 0 and g < r * self.g0 and ratio < r and not self._loss_rising(loss)

    def _judge(
        self, step: int, g: float, early: bool, med: float, ratio: float, ep: Episodes, loss: float | None = None
    ) -> None:
        """``med`` and ``ratio`` are against the rolling median of the window before ``g``."""
        t = self.t
        nprev = len(self.win.win)
        self._streaks(g)
        explode, high, spike = self._early(g, ratio, nprev) if early else self._late(g, med, ratio, nprev)
        explode, high, falling = self._excused(g, ratio, nprev, loss, explode, high)
        if explode:
            self._explode(step, g, med, ratio, nprev, ep)
            return
        if _EXPLOSION in ep.open and (high or spike or g > t.grad_norm_warn):
            ep.hold(_EXPLOSION)  # still elevated: the same episode
            return
        ep.cool(_EXPLOSION, step, t.clear_points)
        spiked, self.spiked = self.spiked, high or spike
        if (high or spike) and falling is None and not early and _HIGH not in ep.open:
            # one point above the warning level, back the next: a batch, not a trend. It counts
            # from its second point in a row, or at once when the loss rises with it
            if not spiked and not self._loss_rising(loss):
                return
        if high or spike:
            msg = self._high_message(step, g, med, ratio, nprev, high, falling)
            ep.hot(_HIGH, step, GRAD_NORM, g, msg, merge=self.ctx.recent(t.window_points))
        else:
            ep.cool(_HIGH, step, t.clear_points)

    def _excused(
        self, g: float, ratio: float, nprev: int, loss: float | None, explode: bool, high: bool
    ) -> tuple[bool, bool, tuple[float, float] | None]:
        """(explode, high, the loss's fall) once a norm at the run's starting level is excused
        (``_steady``) and an explosion with the loss falling is a warning (``_loss_falling``)."""
        if (explode or high) and self._steady(g, ratio, nprev, loss):
            return False, False, None
        falling = self._loss_falling(loss) if explode else None
        if falling is not None:
            return False, True, falling
        return explode, high, None

    def _explode(self, step: int, g: float, med: float, ratio: float, nprev: int, ep: Episodes) -> None:
        t = self.t
        why = _(" ({ratio:.1f}x the recent median {med})").format(ratio=ratio, med=fmt(med)) if nprev and ratio >= t.grad_spike_ratio else ""
        ep.hot(
            _EXPLOSION,
            step,
            GRAD_NORM,
            g,
            _("grad_norm {g} at step {step} is above the critical threshold {grad_norm_critical}{why}").format(g=fmt(g), step=step, grad_norm_critical=fmt(t.grad_norm_critical), why=why),
        )
        if _HIGH in ep.open:
            ep.hold(_HIGH)

    def _high_message(
        self, step: int, g: float, med: float, ratio: float, nprev: int, high: bool, falling: tuple[float, float] | None
    ) -> str:
        t = self.t
        if falling is not None:
            return _(
                "grad_norm {g} at step {step} is above the critical threshold {grad_norm_critical} while the loss "
                "still falls ({before} -> {now}): a large step, not an explosion yet"
            ).format(g=fmt(g), step=step, grad_norm_critical=fmt(t.grad_norm_critical), before=fmt(falling[0]), now=fmt(falling[1]))
        if high:
            return _("grad_norm {g} at step {step} is above the warning threshold {grad_norm_warn}").format(g=fmt(g), step=step, grad_norm_warn=fmt(t.grad_norm_warn))
        return _("grad_norm spike at step {step}: {g} is {ratio:.1f}x the median {med} of the last {nprev} points").format(step=step, g=fmt(g), ratio=ratio, med=fmt(med), nprev=nprev)

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        if c.grad is None:
            return j - i
        t = self.t
        if len(self.h.values) < t.window_points:
            return 0  # the window is not full yet
        seg = c.grad[i:j]
        hi = max(seg)
        if hi > t.grad_norm_warn or hi > t.grad_norm_critical:
            return 0
        # a spike is >= grad_spike_ratio x its window's median, which is at least the (W/2)-th
        # smallest of the last W values before the stretch and the stretch together
        W = t.window_points
        if hi >= t.grad_spike_min and hi >= t.grad_spike_ratio * sorted(self.h.values[-W:] + seg)[max(0, W // 2 - 1)]:
            return 0
        return j - i

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        h = self.h
        if c.grad is None:
            n = len(self.tl.steps)
            h.gaps.extend(range(n - (j - i), n))
            return
        h.values.extend(c.grad[i:j])
        self.win.extend(h.values)
        self.gx_streak = self.gw_streak = 0
        for key in (_EXPLOSION, _HIGH):
            if key in ep.open:
                ep.cool_run(key, c.steps[i:j], self.t.clear_points)

    def restore(self, state: RuleState, mark: Mark) -> None:
        self.win.extend(self.h.values)
        self.gx_streak = self.gw_streak = 0
        self.spiked = False
        h = self.h
        if h.off == 0:  # (cut back into the first values: the starting level is theirs)
            self.g0 = min(h.values[: self.t.smooth_points], default=math.inf)

    def trimmed(self, dropped: tuple[int, ...]) -> None:
        # (the same values, unless grad_norm is so sparse that fewer than a window are kept)
        self.win.extend(self.h.values)


class Vanishing(TrainRule):
    """grad_vanishing: the median of the last smooth_points grad norms below grad_norm_vanishing
    while the loss is stuck (the plateau rule's latest improvement is small) above
    ``plateau_min_loss`` (below it the run has converged). It runs last among the train rules: it
    reads this record's plateau check."""

    __slots__ = ("below", "flowed", "trend", "zeros")
    links = ("trend",)
    codes = (_VANISHING,)
    cools_only = True

    def __init__(self, ctx: Context, trend: LossTrend) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.grad
        self.trend = trend
        self.below = NEVER  # index in the grad history of the latest value below grad_norm_vanishing
        self.zeros = 0  # grad norms of exactly 0 in a row ...
        self.flowed = False  # ... after the run has logged a nonzero one (its reporting works)

    def observe(self, p: Point, ep: Episodes) -> None:
        grad = p.grad
        if grad is None:
            return
        t = self.t
        n = len(self.h.values)
        if grad == 0.0:
            self.zeros += 1
        else:
            self.zeros = 0
            self.flowed = True
        if grad < t.grad_norm_vanishing:
            self.below = n - 1
        # (none of the last smooth_points values below the threshold: neither is their median)
        if not p.early and (n - 1 - self.below < t.smooth_points or _VANISHING in ep.open):
            self._judge(p.step, ep)

    def _judge(self, step: int, ep: Episodes) -> None:
        t = self.t
        vals = self.h.values
        n = len(vals)
        if n < t.smooth_points:
            return
        if n - 1 - self.below >= t.smooth_points:
            ep.cool(_VANISHING, step, t.clear_points)
            return
        med = tail_median(vals, t.smooth_points)
        if self.flowed and self.zeros >= t.smooth_points:
            # Exactly 0 is no small gradient of a converged run (a real one is never exactly 0):
            # nothing flows back, as in a GRPO group whose completions all got the same reward.
            # After nonzero values, so not a tracker that reports 0 for every step.
            ep.hot(
                _VANISHING,
                step,
                GRAD_NORM,
                0.0,
                _("grad_norm is exactly 0 for {count} points in a row at step {step}, after nonzero values: no gradient flows").format(
                    count=self.zeros, step=step
                ),
                merge=self.ctx.recent(t.window_points),
            )
            return
        imp = self.trend.improvement
        stuck = imp is not None and imp < t.plateau_min_improvement
        lv = self.tl.loss.values
        if med < t.grad_norm_vanishing and (stuck or not self.tl.loss.total):
            level = tail_median(lv, t.smooth_points) if lv else math.inf
            if level <= t.plateau_min_loss:  # converged: small gradients are what a low flat loss has
                ep.cool(_VANISHING, step, t.clear_points)
                return
            tail = (
                ""
                if imp is None
                else _(" while the loss stays at {level} ({change:+.2g}% over the last window)").format(
                    level=fmt(level), change=imp * 100
                )
            )
            ep.hot(
                _VANISHING,
                step,
                GRAD_NORM,
                med,
                _("grad_norm median {med} at step {step} is below {grad_norm_vanishing}{tail}").format(
                    med=fmt(med), step=step, grad_norm_vanishing=fmt(t.grad_norm_vanishing), tail=tail
                ),
                merge=self.ctx.recent(t.window_points),
            )
        else:
            ep.cool(_VANISHING, step, t.clear_points)

    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        if c.grad is None:
            return j - i
        if len(self.h.values) - self.below < self.t.smooth_points:
            return 0  # a value below the floor among the last few: the check runs
        return 0 if min(c.grad[i:j]) < self.t.grad_norm_vanishing else j - i

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        # (cools an open episode even in early training, where observe does not look: kept as
        # the diagnoser has always done it, pending the diagnosis issue)
        if c.grad is not None:
            # (a quiet stretch has no value below grad_norm_vanishing: none is 0)
            self.zeros = 0
            self.flowed = True
            if _VANISHING in ep.open:
                ep.cool_run(_VANISHING, c.steps[i:j], self.t.clear_points)

    def restore(self, state: RuleState, mark: Mark) -> None:
        t = self.t
        g = self.h.values
        self.zeros = 0
        for v in reversed(g):
            if v != 0.0:
                break
            self.zeros += 1
        self.flowed = self.flowed or any(v != 0.0 for v in g)
        self.below = NEVER
        for j in range(len(g) - 1, max(-1, len(g) - 1 - t.smooth_points), -1):
            if g[j] < t.grad_norm_vanishing:
                self.below = j
                break

    def trimmed(self, dropped: tuple[int, ...]) -> None:
        if self.below != NEVER:
            self.below -= dropped[1]
