"""Learning-rate rules: lr_too_large, lr_too_small (below the floor and never higher, well below
where a linear or cosine decay would be, or at ~0 for long) and lr_schedule (back up after
decaying, or at ~0 early).

An LR above ``lr_max`` is no finding by itself: small models and LoRA train well at peaks of
1e-3..3e-3. It is ``lr_too_large`` only with evidence that the run is unstable (an episode of
divergence, instability, loss oscillation or gradient trouble open on the same record). A small
LR late in a decaying schedule is the schedule doing its job. Episodes that come back within a
window of closing continue (debounced).

The rule keeps the LR's peak (and its step), its lowest value since the peak, how many points it
has sat at ~0 and whether it rose (a warmup, and whether it is still in it: warmup advice reads
them); one ``fold`` rebuilds the numbers after a resume.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Mark, RuleState
from sfttop.core.i18n import _
from sfttop.core.metrics import LR, LR_TOLERANCE
from sfttop.core.textfmt import fmt

from .base import Cols, Context, Point, TrainRule

_LARGE, _SMALL, _SCHEDULE = Code.LR_TOO_LARGE, Code.LR_TOO_SMALL, Code.LR_SCHEDULE
# the episodes that are evidence of an LR too large (open on the record, from the rules before this one)
_EVIDENCE = (Code.DIVERGENCE, Code.LOSS_OSCILLATION, Code.GRAD_EXPLOSION, Code.GRAD_NORM_HIGH)
_RISE = 1 + LR_TOLERANCE  # an LR above the previous one by more than float noise is rising
isfinite = math.isfinite


class LearningRate(TrainRule):
    __slots__ = ("low", "peak", "peak_step", "pending", "rising", "rose", "zero_run")
    links = ("pending",)  # pending: what quiet learnt of a stretch's rises, for absorb (not state)
    codes = (_LARGE, _SMALL, _SCHEDULE)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.lr
        self.peak = 0.0
        self.peak_step = 0  # where the peak was logged
        self.low = math.inf  # lowest LR since the peak
        self.zero_run = 0  # points at ~0 (a zero_fraction of the peak) in a row
        self.rose = False  # the LR rose at some point (a warmup)
        self.rising = False  # ... on the latest LR (still warming up)
        self.pending: tuple[int, int, int, bool] | None = None

    def ok_for_plateau(self) -> bool:
        """The LR is not so far below its peak that a flat loss is the schedule's doing."""
        lr = self.h.last()
        return lr is None or self.peak <= 0 or lr >= self.t.plateau_lr_fraction * self.peak

    def observe(self, p: Point, ep: Episodes) -> None:
        lr = p.lr
        h = self.h
        if lr is None or not isfinite(lr):
            h.gaps.append(p.row)
            return
        t = self.t
        lrv = h.values
        prev = lrv[-1] if lrv else None
        lrv.append(lr)
        low_before, peak_before = self.low, self.peak
        peak = self._track(lr, prev, p.step)
        zero = peak > 0 and lr <= t.lr_zero_fraction * peak
        self.zero_run = self.zero_run + 1 if zero else 0
        rising = self.rising
        back_up = rising and peak_before > 0 and low_before < 0.99 * peak_before and lr > 1.1 * low_before
        if t.lr_min <= lr <= t.lr_max and not zero and not back_up:
            # an LR in range that is neither back up after decaying nor at ~0: nothing holds
            self._all_clear(p.step, ep)
            return
        self._large(p.step, lr, ep)
        self._small(p.step, lr, prev is not None and not rising, peak, ep)
        if back_up:
            sched = (
                _("learning_rate rose again at step {step} ({low_before} -> {lr}) after decaying from its peak {peak_before}").format(step=p.step, low_before=fmt(low_before), lr=fmt(lr), peak_before=fmt(peak_before))
            )
        else:
            sched = self._ended_early(p.step, lr, rising, peak)
        self._schedule(p.step, lr, sched, ep)

    def _track(self, lr: float, prev: float | None, step: int) -> float:
        """The peak, the low since it and the direction, with ``lr``; the peak now."""
        if lr > self.peak:
            self.peak = lr
            self.peak_step = step
            self.low = lr
        elif lr < self.low:
            self.low = lr
        self.rising = prev is not None and lr > prev * _RISE
        if self.rising:
            self.rose = True
        return self.peak

    def _all_clear(self, step: int, ep: Episodes) -> None:
        open_ = ep.open
        if open_:
            for key in self.codes:
                if key in open_:
                    ep.cool(key, step, self.t.clear_points)

    def _schedule(self, step: int, lr: float, sched: str, ep: Episodes) -> None:
        if sched:
            ep.hot(_SCHEDULE, step, LR, lr, sched, merge=self.ctx.recent(self.t.window_points))
        else:
            ep.cool(_SCHEDULE, step, self.t.clear_points)

    def _before_end(self, step: int) -> bool:
        ms = self.ctx.max_steps
        return bool(ms) and step < self.t.lr_end_fraction * (ms or 0)

    def _sat_at_zero(self) -> bool:
        """Long after the LR hit 0 (a share of the LRs logged)."""
        return self.zero_run >= max(5, math.ceil(0.1 * self.h.total))

    def _large(self, step: int, lr: float, ep: Episodes) -> None:
        t = self.t
        # (training_unstable names the LR itself and advises lowering it: not said twice)
        if lr > t.lr_max and ep.open and Code.TRAINING_UNSTABLE not in ep.open:
            for code in _EVIDENCE:
                op = ep.open.get(code)
                if op is not None:
                    ep.hot(
                        _LARGE,
                        step,
                        LR,
                        lr,
                        _(
                            "learning_rate {lr} at step {step} is above {lr_max} while the run is unstable ({code} "
                            "since step {since})"
                        ).format(lr=fmt(lr), step=step, lr_max=fmt(t.lr_max), code=code, since=op.finding.step),
                        merge=self.ctx.recent(t.window_points),
                    )
                    return
        ep.cool(_LARGE, step, t.clear_points)

    def _behind(self, step: int, lr: float, peak: float) -> float:
        """Where a decay from ``peak`` would still be at ``step`` (the lower of linear and cosine to
        0 at max_steps) when ``lr`` is less than half of it before the schedule's end; else 0."""
        ms = self.ctx.max_steps
        if not ms or step >= self.t.lr_end_fraction * ms:
            return 0.0
        f = step / ms
        expected = peak * min(1 - f, 0.5 * (1 + math.cos(math.pi * f)))
        return expected if lr < 0.5 * expected else 0.0

    def _small(self, step: int, lr: float, settled: bool, peak: float, ep: Episodes) -> None:
        """Below lr_min (``settled``: not the first LR and not rising) with a peak that never
        was higher, or long before the schedule's end, or sat at ~0 for long with no known end."""
        t = self.t
        ms = self.ctx.max_steps
        small = lr < t.lr_min and settled
        behind = 0.0
        if small and peak >= t.lr_min:
            # (a decaying schedule gets there near its end: only well below where it would be)
            behind = self._behind(step, lr, peak) if ms else 0.0
            small = behind > 0 if ms else self._sat_at_zero()
        if small and _SMALL not in ep.open:
            if peak < t.lr_min:
                why = _(" and never was higher than {peak}: the model can barely learn").format(peak=fmt(peak))
            elif ms:
                why = _(
                    " at {share:.0f}% of max_steps {ms}, where a linear or cosine decay from its peak {peak} would "
                    "still be at {expected}"
                ).format(share=100 * step / ms, ms=ms, peak=fmt(peak), expected=fmt(behind))
            else:
                why = _(" and has stayed there for {zero_run} points while training goes on").format(
                    zero_run=self.zero_run
                )
            ep.hot(
                _SMALL,
                step,
                LR,
                lr,
                _("learning_rate {lr} at step {step} is below {lr_min}{why}").format(
                    lr=fmt(lr), step=step, lr_min=fmt(t.lr_min), why=why
                ),
                merge=self.ctx.recent(t.window_points),
            )
        elif small:
            ep.hold(_SMALL)  # still holding: the same episode
        else:
            ep.cool(_SMALL, step, t.clear_points)

    def _ended_early(self, step: int, lr: float, rising: bool, peak: float) -> str:
        """The message when the LR reached ~0 before the schedule's end ("" when not)."""
        t = self.t
        ms = self.ctx.max_steps
        if (
            peak >= t.lr_min
            and lr <= t.lr_zero_fraction * peak
            and not rising
            and (self._before_end(step) or (not ms and self._sat_at_zero()))
        ):
            where = _("at step {step} of {ms}").format(step=step, ms=ms) if ms else _("for {zero_run} points up to step {step}").format(zero_run=self.zero_run, step=step)
            return _("learning_rate reached ~0 ({lr}, peak {peak}) {where}: the schedule ended early").format(lr=fmt(lr), peak=fmt(peak), where=where)
        return ""

    # ---------------------------------------------------------------------------- bulk
    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        if c.lr is None:
            return j - i
        t = self.t
        seg = c.lr[i:j]
        lo, hi = min(seg), max(seg)
        if hi > t.lr_max and ep.open and any(code in ep.open for code in _EVIDENCE):
            return 0  # (with no evidence open none can open inside a stretch every rule proved quiet)
        peak = hi if hi > self.peak else self.peak
        if (lo < t.lr_min or (peak > 0 and lo <= t.lr_zero_fraction * peak)) and not self._quiet_low(c, i, j, hi):
            return 0
        lrv = self.h.values
        prevs = lrv[-1:] + seg[:-1]
        first = seg if lrv else seg[1:]
        rises = any(map(operator.gt, first, map(operator.mul, prevs, itertools.repeat(_RISE))))
        if rises:
            # rising (a warmup): fine only while the LR never decayed, so it stays at its peak
            if self.low != self.peak and self.peak > 0:
                return 0
            if any(map(operator.lt, first, prevs)):
                return 0
        self.pending = (i, j, len(lrv), rises)
        return j - i

    def _quiet_low(self, c: Cols, i: int, j: int, hi: float) -> bool:
        """Below the minimum or at ~0 says nothing only after a real peak (``absorb`` counts the
        run at ~0 against a peak that stays put), at the schedule's end or, with no known end,
        before the LR has sat at ~0 for long."""
        t = self.t
        if self.peak < t.lr_min or hi > self.peak:
            return False
        if self.ctx.max_steps:
            return not c.steps[i] < t.lr_end_fraction * self.ctx.max_steps
        return self.zero_run + (j - i) < max(5, math.ceil(0.1 * (self.h.total + 1)))

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        h = self.h
        if c.lr is None:
            n = len(self.tl.steps)
            h.gaps.extend(range(n - (j - i), n))
            return
        t = self.t
        m = j - i
        seg = c.lr[i:j]
        lrv = h.values
        pend, self.pending = self.pending, None
        if not self.rose:
            if pend is not None and pend[:3] == (i, j, len(lrv)):
                self.rose = pend[3]
            else:
                first = seg if lrv else seg[1:]
                self.rose = any(
                    map(operator.gt, first, map(operator.mul, lrv[-1:] + seg[:-1], itertools.repeat(_RISE)))
                )
        before = seg[-2] if m > 1 else (lrv[-1] if lrv else None)
        self.rising = before is not None and seg[-1] > before * _RISE
        lrv.extend(seg)
        hi = max(seg)
        if hi > self.peak:
            k = seg.index(hi)
            self.peak = hi
            self.peak_step = c.steps[i + k]
            self.low = min(seg[k:])
        else:
            lo = min(seg)
            if lo < self.low:
                self.low = lo
        # the run of LRs at ~0 (quiet: any of them are against a peak that did not move)
        zf = t.lr_zero_fraction * self.peak
        if self.peak > 0 and min(seg) <= zf:
            zero = bytes(map(operator.le, seg, itertools.repeat(zf)))
            z = zero.rfind(b"\x00")
            self.zero_run = self.zero_run + m if z < 0 else m - 1 - z
        else:
            self.zero_run = 0
        for key in self.codes:
            if key in ep.open:
                ep.cool_run(key, c.steps[i:j], t.clear_points)

    # ---------------------------------------------------------------------------- resumes
    def restore(self, state: RuleState, mark: Mark) -> None:
        h = self.h
        peak = state.num("peak")
        self.peak, self.low, self.zero_run = fold(
            (peak, state.num("low"), state.integer("zero_run")), h.values, self.t.lr_zero_fraction
        )
        if self.peak != peak:  # (the peak is among the kept LRs: its first occurrence)
            self.peak_step = h.step(h.values.index(self.peak))
        v = h.values
        self.rose = bool(state.get("rose")) or any(b > a * _RISE for a, b in itertools.pairwise(v))
        self.rising = False  # (the next LR tells)


def fold(state: tuple[float, float, int], lrs: Iterable[float], zero_fraction: float) -> tuple[float, float, int]:
    """(peak, lowest since the peak, points at ~0) after ``lrs``, from ``state``: what
    ``observe`` keeps up to date one LR at a time, replayed after a resume."""
    peak, low, zero_run = state
    for lr in lrs:
        if lr > peak:
            peak = low = lr
        elif lr < low:
            low = lr
        zero_run = zero_run + 1 if peak > 0 and lr <= zero_fraction * peak else 0
    return peak, low, zero_run
