"""loss_oscillation: a spike, a climb before the window fills, repeated rebounds, a loss stuck
well above its best, or a diverging trend; and divergence, a jump of orders of magnitude.

A jump to ``divergence_ratio`` (100x: two orders of magnitude) the median of the window before it
is no spike a run recovers from: a cross-entropy 100x its recent level is far beyond chance over
any vocabulary (ln of 250k tokens is 12.4 nats), so the weights have left the region training was
in. It is critical at the first such record, and the climb it starts is that one episode, not a
loss_oscillation warning besides.

A per-step loss is an interval mean and fairly smooth, so a spike is judged by a ratio to the
rolling median plus the Iglewicz-Hoaglin modified z-score. The rolling median is computed only
when a cheap lower bound of it (the minima of the last two blocks of ``window_points`` losses)
says the value could be a spike; the smoothed "current" loss is the median of the last three
values without sorting; the EMA and the best levels are running values.

The best level a rebound must rise from is the lowest median of a block of ``window_points``
losses (blocks aligned on the run's loss count): the lowest 3-point median of a long noisy run is
an outlier of its noise, so a loss back at its usual level would look elevated against it; a
block median is not. An open episode stays open while the loss is elevated against its best
3-point median: a run that blew up within its first block has that block's median up in the
blow-up.
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from collections import deque
from typing import NamedTuple

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Mark, RuleState
from sfttop.core.diagnose.stats import (
    EMA_EXACT,
    BlockMin,
    DebiasedEma,
    diffs,
    lowest_block_median,
    lowest_median,
    median,
    modified_z,
    robust_noise,
    sorted_median,
    tail_median,
)
from sfttop.core.i18n import _
from sfttop.core.metrics import LOSS
from sfttop.core.textfmt import fmt

from .base import Cols, Context, Point, TrainRule

_KEY = Code.LOSS_OSCILLATION
_DIV = Code.DIVERGENCE
_INF = math.inf
# Windows of losses the noise level of a jump is measured over: long enough that one window's
# luck (a 20-point MAD is +-30%) does not decide, short enough to follow a run whose noise changes.
_NOISE_WINDOWS = 5


class _Why(NamedTuple):
    """What made a record hot, for the message of the episode it opens."""

    spike: bool
    early_rise: bool
    elevated: bool
    med: float
    nprev: int
    low: float
    now: float
    best: float


class LossRule(TrainRule):
    __slots__ = (
        "block_best",
        "div_ref",
        "ema",
        "l1",
        "l2",
        "l3",
        "lb",
        "loss_best",
        "pending",
        "pre",
        "rebound_prev",
        "rebounds",
    )
    links = ("pending",)  # pending: quiet's EMA preview for absorb, not state
    codes = (_KEY, _DIV)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.h = ctx.tl.loss
        self.lb = BlockMin(ctx.t.window_points)  # the spike rule's lower bound of the rolling median
        self.l1 = self.l2 = self.l3 = _INF  # the last three losses, newest first (inf: none)
        self.ema = DebiasedEma()  # for the divergence trend
        self.loss_best = _INF  # lowest smoothed loss so far
        self.block_best = _INF  # lowest median of a whole block of window_points losses
        self.div_ref = 0.0  # the median the open divergence jumped from
        self.pre: array[float] = array("d")  # losses before the kept ones (after a deep resume)
        self.rebound_prev = False
        self.rebounds: deque[int] = deque()  # indexes in the loss history of rebound onsets
        self.pending: tuple[int, int, int, tuple[list[float], bytes]] | None = None

    def observe(self, p: Point, ep: Episodes) -> None:
        x = p.loss
        h = self.h
        if x is None:
            h.gaps.append(p.row)
            return
        t = self.t
        lv = h.values
        i = len(lv)  # this value's index
        n = i + 1
        W = t.window_points
        nprev = i if i < W else W  # values in the window before this one
        p1, p2 = self.l1, self.l2
        spike, rebound, strong, med, low = self._jump(x, lv, i, nprev)
        diverged = nprev > 0 and self._diverged(p.step, x, lv, i, nprev, med, ep)
        lv.append(x)
        self.lb.push(x)
        self.l1, self.l2, self.l3 = x, p1, p2
        self.ema.push(x)
        early_rise = False
        if rebound or self.rebounds or self.rebound_prev:
            # (an early rise: too few points for a window, and a rebound that held two points)
            early_rise = self._rebound(rebound, i, W) and strong and nprev < t.min_window_points
        now, best, elevated = self._level(x, p1, p2, n)
        hot = spike or early_rise or elevated or self._trending()
        if _KEY in ep.open:
            self._hold(p.step, hot, rebound, n >= t.smooth_points and self._held(now), ep)
        elif hot and not diverged and _DIV not in ep.open:  # (a divergence is not also an oscillation)
            why = _Why(spike, early_rise, elevated, med, nprev, low, now, best)
            ep.hot(_KEY, p.step, LOSS, x, self._message(p.step, x, why))

    def _diverged(self, step: int, x: float, lv: array[float], i: int, nprev: int, med: float, ep: Episodes) -> bool:
        """Whether ``x`` opens or holds a divergence: ``divergence_ratio`` x the median ``med`` of
        the ``nprev`` losses before it (nan: not computed yet) and ``oscillation_min_jump``
        above it. The median is only computed when the cheap lower bound says it may be."""
        t = self.t
        if _DIV in ep.open:
            # held while the loss stays an order of magnitude up (the square root of the ratio)
            if x >= math.sqrt(t.divergence_ratio) * self.div_ref:
                ep.hold(_DIV)
                return True
            ep.cool(_DIV, step, t.clear_points)
            return False
        lb = self.lb
        bound = lb.prev if lb.prev < lb.cur else lb.cur
        if x < t.divergence_ratio * bound:  # (the bound is at most the median; x <= 0 stops here too)
            return False
        if med != med:
            med = median(lv[i - nprev : i])
        if not (med > 0 and x >= t.divergence_ratio * med and x - med >= t.oscillation_min_jump):
            return False
        self.div_ref = med
        ep.hot(
            _DIV,
            step,
            LOSS,
            x,
            _(
                "loss {loss} at step {step} is {times} the median {median} of the last {count} points "
                "({orders:.1f} orders of magnitude): the loss diverged"
            ).format(
                loss=fmt(x), step=step, times=_times(x, med), median=fmt(med), count=nprev, orders=math.log10(x / med)
            ),
        )
        return True

    def _level(self, x: float, p1: float, p2: float, n: int) -> tuple[float, float, bool]:
        """(the smoothed loss now, the best level, whether the loss climbed back well above it)
        after ``x``, the ``n``-th loss (``p1``, ``p2``: the two before it); keeps the best
        3-point median and the best block median up to date."""
        t = self.t
        lv = self.h.values
        S = t.smooth_points
        if S == 3 and n >= 3:  # the median of the last three, without sorting
            a, b = (p1, p2) if p1 <= p2 else (p2, p1)
            now = b if x >= b else (a if x <= a else x)
        else:
            now = tail_median(lv, S)
        if n >= S and now < self.loss_best:
            self.loss_best = now
        W = t.window_points
        if (n + self.h.off) % W == 0:  # a block of W losses is complete
            self._block(lv, n, W)
        # (before the first block: the best 3-point median, over a few points not yet an outlier)
        best = self.block_best if self.block_best < _INF else self.loss_best
        elevated = n >= S and now >= t.oscillation_ratio * best and now - best >= t.oscillation_min_jump
        if elevated:  # (a climb, like a jump, must stand out of the loss's own noise)
            elevated = self._beyond_noise(now, best, n - 1, 1.0)
        return now, best, elevated

    def _jump(self, x: float, lv: array[float], i: int, nprev: int) -> tuple[bool, bool, bool, float, float]:
        """(a spike, a rebound, a rebound beyond the whole noise cut-off, the window's median if
        it was needed (else nan), the low of the three values before ``x``) for ``x``, the loss
        after ``lv[:i]``."""
        t = self.t
        spike = False
        med = math.nan
        full = nprev >= t.min_window_points
        if full:
            # a spike is >= loss_spike_ratio x the median and oscillation_min_jump above it;
            # the median is >= the bound, so test the bound first
            lb = self.lb
            bound = lb.prev if lb.prev < lb.cur else lb.cur
            if x >= t.loss_spike_ratio * bound and x - bound >= t.oscillation_min_jump:
                spike, med = self._spike(x, lv, i - nprev)
        # a rebound: a jump well above the recent low (the seed's 0.3 -> 0.8 -> 0.2)
        p1, p2, p3 = self.l1, self.l2, self.l3  # (inf: no such value)
        low = p1 if p1 < p2 else p2
        if p3 < low:
            low = p3
        # (no value before this one: low is inf; after a resume past the kept history the
        # dropped losses before it count)
        rebound = x >= t.oscillation_ratio * low and x - low >= t.oscillation_min_jump
        if rebound and full:
            # ...and well above the window's middle too: against the low of three points
            # alone, the noise of a long run makes a few such jumps in every few thousand
            if med != med:
                med = median(lv[i - nprev :])
            rebound = x >= t.oscillation_ratio * med
        # ...and far above the loss's own noise: a small-batch SFT loss swings 25% from step to
        # step, so 1.5x its median is two of its sigmas and happens every few dozen steps. A
        # rebound counts towards the repeated ones at half the cut-off (three in one window of
        # noise beyond 3 sigmas: about one in 10^6 windows); alone, as a climb before the window
        # fills, it needs the whole of it, as a spike does.
        strong = False
        if spike:
            spike = self._beyond_noise(x, med, i, 1.0)
        if rebound:
            ref = med if full else low
            rebound = self._beyond_noise(x, ref, i, 0.5)
            strong = rebound and self._beyond_noise(x, ref, i, 1.0)
        return spike, rebound, strong, med, low

    def _beyond_noise(self, x: float, ref: float, i: int, share: float) -> bool:
        """Whether ``x`` stands ``share`` x ``loss_noise_z`` robust sigmas of the loss's own
        per-point noise above ``ref``, the noise measured on the successive differences (a trend adds none) of
        the last ``_NOISE_WINDOWS`` windows before value ``i``. On a log scale when the losses are
        positive: a batch's loss varies by a factor (a log-normal's right tail is long, and 2.5x
        its median comes once in a few thousand steps of 25% noise), and a ratio is what the rules'
        thresholds speak of. Fewer than four values before: no noise to tell a jump from, so only
        a jump to twice ``oscillation_ratio`` times ``ref`` counts (a run that explodes at once
        quadruples its loss; the first points of a new phase or data mix move it by less than
        2x, on nanochat's midtraining from 1.08 to 2.01). Only computed for a candidate jump."""
        a = max(0, i - _NOISE_WINDOWS * self.t.window_points)
        if i - a < 4:
            return ref <= 0 or x >= 2 * self.t.oscillation_ratio * ref
        z = share * self.t.loss_noise_z
        vals = self.h.values
        if ref > 0 and min(vals[a:i]) > 0:
            logs = list(map(math.log, vals[a:i]))
            return math.log(x / ref) >= z * robust_noise(list(map(operator.sub, logs[1:], logs[:-1])))
        return x - ref >= z * robust_noise(diffs(vals, a, i, i - a))

    def _trending(self) -> bool:
        """Repeated rebounds, or a smoothed loss rising for divergence_points in a row."""
        t = self.t
        e = self.ema
        if len(self.rebounds) >= t.oscillation_rebounds:
            return True
        return (
            e.rise >= t.divergence_points
            and e.last >= (1 + t.divergence_min_rise) * e.rise_from
            and self._climbing(t.divergence_points // 2)
        )

    def _climbing(self, back: int) -> bool:
        """The loss (its median of smooth_points) rose over the last ``back`` points at half the
        pace, at least, its EMA rose at over its run of rises. The EMA lags: after a loss that
        stepped up once and then held (the first points of a new phase or data mix), it keeps
        rising for a dozen points while the loss does not; a diverging loss leads its EMA."""
        lv = self.h.values
        S = self.t.smooth_points
        if len(lv) < back + S:
            return True
        e = self.ema
        pace = (e.last - e.rise_from) / e.rise
        return tail_median(lv, S) - median(lv[-back - S : -back]) >= 0.5 * back * pace

    def _spike(self, x: float, lv: array[float], a: int) -> tuple[bool, float]:
        """(whether ``x`` is a spike against the window ``lv[a:]``, the window's median)."""
        t = self.t
        win = sorted(lv[a:])
        med = sorted_median(win)
        if x >= t.loss_spike_ratio * med and x - med >= t.oscillation_min_jump:
            return modified_z(x, win, med) > t.loss_spike_z, med
        return False, med

    def _rebound(self, rebound: bool, i: int, W: int) -> bool:
        """Count a rebound onset at value ``i``; whether it held two points (an early rise:
        before the window fills there are no robust statistics)."""
        rebounds = self.rebounds
        if rebound and not self.rebound_prev:
            rebounds.append(i)
        early_rise = rebound and self.rebound_prev
        self.rebound_prev = rebound
        while rebounds and rebounds[0] <= i - W:
            rebounds.popleft()
        return early_rise

    def _block(self, lv: array[float], n: int, W: int) -> None:
        blk = lv[-W:] if n >= W else (self.pre + lv)[-W:]
        bm = median(blk)
        if bm < self.block_best:
            self.block_best = bm

    def _held(self, now: float) -> bool:
        """Elevated against the best 3-point median: an open episode stays open."""
        t = self.t
        lb = self.loss_best
        return now >= t.oscillation_ratio * lb and now - lb >= t.oscillation_min_jump

    def _hold(self, step: int, hot: bool, rebound: bool, held: bool, ep: Episodes) -> None:
        if hot or rebound or len(self.rebounds) >= 2 or held:
            ep.hold(_KEY)  # still bouncing: the same episode
        else:
            ep.cool(_KEY, step, self.t.clear_points)

    def _message(self, step: int, x: float, why: _Why) -> str:
        t = self.t
        nreb = len(self.rebounds)
        if why.spike:
            return (
                _("loss spike at step {step}: {x} is {times} the median {med} of the last {nprev} points").format(step=step, x=fmt(x), times=_times(x, why.med), med=fmt(why.med), nprev=why.nprev)
            )
        if why.early_rise:
            return _("loss climbed to {x} at step {step} from {low} instead of falling").format(x=fmt(x), step=step, low=fmt(why.low))
        if nreb >= t.oscillation_rebounds:
            n = len(self.h)
            return (
                _("loss rebounded sharply {nreb} times in the last {n} points (latest {low} -> {x} at step {step})").format(nreb=nreb, n=min(n, t.window_points), low=fmt(why.low), x=fmt(x), step=step)
            )
        if why.elevated:
            return (
                _("loss {now} (median of the last {smooth_points}) at step {step} is {times} its best {best}: it rebounded instead of trending down").format(now=fmt(why.now), smooth_points=t.smooth_points, step=step, times=_times(why.now, why.best), best=fmt(why.best))
            )
        e = self.ema
        return (
            _("loss is diverging: smoothed loss rose {rise_from} -> {last} over {rise} points to step {step}").format(rise_from=fmt(e.rise_from), last=fmt(e.last), rise=e.rise, step=step)
        )

    # ---------------------------------------------------------------------------- bulk
    def quiet(self, c: Cols, i: int, j: int, ep: Episodes) -> int:
        if c.loss is None:
            return j - i
        t = self.t
        lv = self.h.values
        if self.rebounds or self.rebound_prev or self.ema.count < EMA_EXACT or len(lv) < t.window_points:
            return 0  # rebounds being counted, a debiased EMA or a window not yet full
        if _DIV in ep.open:
            return 0  # a divergence held or cooling: record by record
        seg = c.loss[i:j]
        W = t.window_points
        kth = W // 2 - 1 if W > 1 else 0
        # A window's median inside the stretch is at least the (W/2)-th smallest value of the
        # last W values before it and the stretch together (a subset's order statistic is no
        # lower than the set's).
        prev = lv[-W:]
        u = sorted(prev + seg)
        # a spike or a counted rebound is >= its ratio x the window's median (and so is a
        # divergence: divergence_ratio x its window's median, oscillation_min_jump above it, is
        # both >= the spike ratio x that median and that far above the low of the windows)
        ratio = t.loss_spike_ratio if t.loss_spike_ratio < t.oscillation_ratio else t.oscillation_ratio
        if max(seg) >= ratio * u[kth] and self._spiky(seg, prev, ratio * u[kth], u[0], lv):
            return 0
        # an elevated 3-point median (none is above the second largest value of the triples)
        # against the best level (no new one is below the blocks' lower bound or a 3-point
        # median's second smallest value)
        ext = lv[-2:] + seg
        s = sorted(ext)
        top = s[-2]
        if self.block_best < _INF:  # (then the best stays a block median)
            best = min(self.block_best, u[kth])
        else:
            best = min(self.loss_best, u[kth], s[1])
        if top >= t.oscillation_ratio * best and top - best >= t.oscillation_min_jump:
            return 0
        if _KEY in ep.open:  # ...and, to stay open, against the best 3-point median
            best = min(self.loss_best, s[1])
            if top >= t.oscillation_ratio * best and top - best >= t.oscillation_min_jump:
                return 0
        # a smoothed loss rising for divergence_points in a row is checked record by record
        return j - i if self._ema_quiet(seg, i, j) else 0

    def _spiky(self, seg: array[float], prev: array[float], lim: float, lowest: float, lv: array[float]) -> bool:
        """Whether a value of ``seg`` at least ``lim`` (the least a spike or a counted rebound can
        be: its ratio x the lowest its window's median can be) may be one: ``oscillation_min_jump``
        above the low of three before it (at least the lowest of ``lowest`` and the last two
        windows), and its ratio x its own window's median."""
        t = self.t
        W = t.window_points
        ratio = min(t.loss_spike_ratio, t.oscillation_ratio)
        if max(seg) - min(lowest, min(lv[-2 * W :])) < t.oscillation_min_jump:
            return False
        # the few values above the bound: against their own window's median
        ext = prev + seg
        for k in itertools.compress(range(len(seg)), map(operator.ge, seg, itertools.repeat(lim))):
            if seg[k] >= ratio * median(ext[k : k + W]):
                return True
        return False

    def _ema_quiet(self, seg: array[float], i: int, j: int) -> bool:
        """No run of divergence_points rises of the loss EMA within ``seg`` (continuing the
        current run). Keeps the EMAs for ``absorb``."""
        emas, rises = self.ema.preview(seg)
        d = self.t.divergence_points
        lead = len(rises) - len(rises.lstrip(b"\x01"))
        if self.ema.rise + lead >= d:
            return False
        self.pending = (i, j, self.ema.count, (emas, rises))
        return b"\x01" * d not in rises

    def absorb(self, c: Cols, i: int, j: int, ep: Episodes) -> None:
        h = self.h
        if c.loss is None:
            n = len(self.tl.steps)
            h.gaps.extend(range(n - (j - i), n))
            return
        W = self.t.window_points
        seg = c.loss[i:j]
        lv = h.values
        n0 = len(lv)
        ext = array("d", (self.l3, self.l2, self.l1)) + seg
        lv.extend(seg)
        self.lb.extend(seg)
        self.l1, self.l2, self.l3 = ext[-1], ext[-2], ext[-3]
        pend = self.pending
        self.pending = None
        ok = pend is not None and pend[0] == i and pend[1] == j and pend[2] == self.ema.count
        self.ema.extend(seg, pend[3] if pend is not None and ok else None)
        # the best 3-point median, when a value is below it
        if min(seg) < self.loss_best or ext[1] < self.loss_best or ext[2] < self.loss_best:
            self.loss_best = min(self.loss_best, lowest_median(ext[1:], 3))
        # block medians completed inside the stretch (blocks end at multiples of W values)
        off = h.off
        for e in range(((off + n0) // W + 1) * W - off, n0 + (j - i) + 1, W):
            bm = median(lv[e - W : e])
            if bm < self.block_best:
                self.block_best = bm
        if _KEY in ep.open:
            ep.cool_run(_KEY, c.steps[i:j], self.t.clear_points)

    # ---------------------------------------------------------------------------- resumes
    def restore(self, state: RuleState, mark: Mark) -> None:
        t = self.t
        h = self.h
        lv = h.values
        n = len(lv)
        ext = array("d", mark.loss_tail) + lv  # the losses before the kept ones count for windows
        ne = len(ext)
        self.l1, self.l2, self.l3 = (ext[ne - 1 - j] if ne > j else _INF for j in range(3))
        self.ema.reset(state.num("ema.raw"), h.off, lv)
        while self.rebounds and self.rebounds[-1] >= n:
            self.rebounds.pop()
        self.rebound_prev = False
        self.loss_best = min(state.num("loss_best"), lowest_median(ext, t.smooth_points))
        W = t.window_points
        self.block_best = min(state.num("block_best"), lowest_block_median(ext, h.off - len(mark.loss_tail), W))
        self.pre = array("d", mark.loss_tail) if n < W else array("d")
        self.lb.reset(lv)
        self.pending = None

    def trimmed(self, dropped: tuple[int, ...]) -> None:
        kl = dropped[0]
        self.rebounds = deque(j - kl for j in self.rebounds)


def _times(a: float, b: float) -> str:
    """``a / b`` as "1.5x" (a loss of exactly 0 can be a median or a best: no ZeroDivisionError)."""
    return _("{ratio:.2g}x").format(ratio=a / b) if b else _("inf x")
