"""Eval rules: overfitting and overfitting_severe, accuracy_drop on evals, entropy_gap,
eval_slowdown, and loss_nonfinite on eval_loss.

Overfitting is judged on the median of the last few evals against the best such median, and
only when the rise is larger than the eval loss's own noise: a small eval set makes eval_loss
jitter, and one lucky eval must not make every later one look like a rise.
"""

from __future__ import annotations

import itertools
import math

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Eval, EvalLog, Hist
from sfttop.core.diagnose.stats import median, robust_noise
from sfttop.core.metrics import (
    EVAL_ENTROPY,
    EVAL_LOSS,
    EVAL_RUNTIME,
    EVAL_SAMPLES_PER_SECOND,
    EVAL_TOKEN_ACC,
)
from sfttop.core.records import Record
from sfttop.core.textfmt import fmt

from .base import Context

_SMOOTH = 3  # evals in the median that the overfitting trend is judged on
_NOISE_SPAN = 40  # evals whose successive differences estimate the eval noise
_ACC_FALL = 0.01  # eval accuracy "falls" when it lost at least one point over the evals judged
_ACC_KEY = "accuracy_drop:eval"  # train and eval accuracy drops are separate episodes
_OVER, _SEVERE = Code.OVERFITTING, Code.OVERFITTING_SEVERE


def eval_cap(ctx: Context, cap: int) -> int:
    """Evals kept: never so few that the rules' own spans do not fit twice."""
    t = ctx.t
    return max(cap, 4 * max(_NOISE_SPAN, t.window_points, t.overfit_patience) + 4)


class EvalRules:
    """The eval family. Evals come one at a time (never in bulk): one ``observe`` each."""

    __slots__ = ("acc_best", "ctx", "log", "onset", "onset_evs", "slow")

    def __init__(self, ctx: Context, cap: int) -> None:
        self.ctx = ctx
        self.log = EvalLog(eval_cap(ctx, cap))
        self.acc_best = -math.inf
        self.slow = False  # the last eval was slow
        self.onset: int | None = None  # index of the eval where the overfitting episode began ...
        self.onset_evs: list[Eval] = []  # ... and the evals up to it (at most 3: its accuracy)

    def cut(self, step: int) -> None:
        """Forget the evals at ``step`` or later (a resume)."""
        if self.log.cut(step) and self.onset is not None and self.onset >= self.log.total:
            self.onset = None
            self.onset_evs = []

    def _train_now(self, h: Hist) -> float | None:
        recent = h.tail(self.ctx.t.smooth_points)
        return median(recent) if recent else None

    def observe(self, rec: Record, ep: Episodes, last_train_step: int | None) -> None:
        t = self.ctx.t
        step = rec.step
        m = rec.metrics
        el = m.get(EVAL_LOSS)
        if self.log.stale(step):
            self.cut(step)  # re-logged after a resume: the newest value wins
        if el is None:
            return
        if not math.isfinite(el):
            ep.hot(Code.LOSS_NONFINITE, step, EVAL_LOSS, el, f"eval_loss is {fmt(el)} at step {step}")
            return
        sps = _finite(m.get(EVAL_SAMPLES_PER_SECOND))
        rt = _finite(m.get(EVAL_RUNTIME))
        speed = sps if sps is not None and sps > 0 else (1.0 / rt if rt else None)
        # train loss "now": only once it is past early training and has a few points
        tl = self.ctx.tl
        raw = self._train_now(tl.loss)
        train = raw if len(tl.loss) >= t.smooth_points else None
        if train is not None and last_train_step is not None and self.ctx.early(last_train_step):
            train = None
        ratio = el / train if train is not None and train > 0 else None
        acc, ent = _finite(m.get(EVAL_TOKEN_ACC)), _finite(m.get(EVAL_ENTROPY))
        e = Eval(step, el, acc, ent, speed, train, raw, self._train_now(tl.ent), ratio)
        evals = self.log.evals
        prev = evals[-1] if evals else None
        new_best = self.log.append(e, _SMOOTH)
        self._overfitting(e, prev, new_best, ep)
        self._accuracy(e, ep)
        self._entropy_gap(e, ep, last_train_step)
        self._speed(e, ep)

    # ---------------------------------------------------------------------------- overfitting
    def _noise(self) -> float:
        """Robust sigma of the eval loss from successive differences (a steady trend adds none)."""
        ev = self.log.evals[-_NOISE_SPAN:]
        if len(ev) < 4:
            return 0.0
        return robust_noise([b.loss - a.loss for a, b in itertools.pairwise(ev)])

    def _rising(self, e: Eval, prev: Eval | None, best: Eval, since: int, rise: float) -> bool:
        """The smoothed eval loss rose clearly above its best for ``overfit_patience`` evals while
        the train loss kept falling (or at least did not rise: a noisy median must not veto)."""
        t = self.ctx.t
        train_falling = e.train_raw is not None and best.train_raw is not None and e.train_raw <= 1.02 * best.train_raw
        return (
            since >= t.overfit_patience
            and rise >= t.overfit_min_rise
            and e.smooth - best.smooth > 3 * self._noise()
            and all(x.loss > best.smooth for x in self.log.evals[-t.overfit_patience :])
            and prev is not None
            and e.loss >= prev.loss
            and train_falling
        )

    def _ratio_hot(self, e: Eval, prev: Eval | None) -> bool:
        """eval_loss / train loss above the limit on two consecutive evals: the first eval(s) come
        while the train loss is still high and noisy, and one eval is one sample."""
        t = self.ctx.t
        gap_ok = e.train_loss is not None and e.loss - e.train_loss >= t.loss_gap_min
        return (
            e.ratio is not None
            and e.ratio > t.loss_gap_ratio
            and gap_ok
            and prev is not None
            and prev.ratio is not None
            and prev.ratio > t.loss_gap_ratio
        )

    def _overfitting(self, e: Eval, prev: Eval | None, new_best: bool, ep: Episodes) -> None:
        t = self.ctx.t
        step = e.step
        if new_best:
            ep.close(_OVER, step)
            ep.close(_SEVERE, step)
            self.onset = None
            return
        best = self.log.best_e
        assert best is not None  # (not a new best: there is an older one)
        since = self.log.total - 1 - self.log.best
        rise = (e.smooth - best.smooth) / best.smooth if best.smooth > 0 else 0.0
        rising = self._rising(e, prev, best, since, rise)
        ratio_hot = self._ratio_hot(e, prev)
        was_open = _OVER in ep.open
        if rising:
            ep.hot(
                _OVER,
                step,
                EVAL_LOSS,
                e.loss,
                f"eval_loss rose for {since} evals: {fmt(e.loss)} at step {step}, {rise * 100:.2g}% above its best "
                f"level {fmt(best.smooth)} (step {best.step}), while train loss "
                f"{'fell' if (e.train_raw or 0.0) < (best.train_raw or 0.0) else 'held'} "
                f"{fmt(best.train_raw)} -> {fmt(e.train_raw)}",
            )
        elif ratio_hot:
            ep.hot(
                _OVER,
                step,
                EVAL_LOSS,
                e.loss,
                f"eval_loss {fmt(e.loss)} is {e.ratio or 0:.2g}x the train loss {fmt(e.train_loss)} at step {step} "
                f"(limit {fmt(t.loss_gap_ratio)}x)",
            )
        else:
            ep.cool(_OVER, step, t.clear_evals)
        if _OVER not in ep.open:
            self.onset = None
            self.onset_evs = []
        elif not was_open:
            self.onset = self.log.total - 1
            self.onset_evs = self.log.evals[-3:]
        severe = self._severe(e, prev, ratio_hot, rising or ratio_hot)
        if severe:
            ep.hot(_SEVERE, step, EVAL_LOSS, e.loss, severe)
        else:
            ep.cool(_SEVERE, step, t.clear_evals)

    def _severe(self, e: Eval, prev: Eval | None, ratio_hot: bool, over: bool) -> str:
        """The message when overfitting is severe ("" when not)."""
        t = self.ctx.t
        step = e.step
        if e.train_loss is not None and e.train_loss <= t.severe_train_loss and e.loss >= t.severe_eval_loss:
            return (
                f"train loss {fmt(e.train_loss)} is tiny while eval_loss is {fmt(e.loss)} at step {step}: "
                "the model memorises the training set"
            )
        if (
            ratio_hot
            and e.loss >= t.severe_eval_loss
            and e.ratio is not None
            and e.ratio >= t.severe_gap_ratio
            and prev is not None
            and prev.ratio is not None
            and prev.ratio >= t.severe_gap_ratio
        ):
            # The seed's "gap is huge" (train 0.01 vs eval 1.5+ is 150x): eval many times the train
            # loss, on two evals in a row, whatever the train loss's own level.
            return (
                f"eval_loss {fmt(e.loss)} is {e.ratio:.3g}x the train loss {fmt(e.train_loss)} at step {step} "
                f"(limit {fmt(t.severe_gap_ratio)}x): the model memorises the training set"
            )
        if over and (fall := self._gap_widening_acc_falling()) is not None:
            o = self.onset_evs[-1]
            return (
                f"the train/eval loss gap keeps widening ({fmt(_gap(o))} at step {o.step} -> {fmt(_gap(e))} at "
                f"step {step}) while eval accuracy falls ({fmt(fall[0])} -> {fmt(fall[1])})"
            )
        return ""

    def _gap_widening_acc_falling(self) -> tuple[float, float] | None:
        """Since the overfitting episode began: the train/eval gap kept widening over the last
        ``overfit_patience`` evals and the eval accuracy (median of 3 evals, now vs at the onset)
        fell by at least a point. Returns (accuracy then, accuracy now)."""
        k = self.ctx.t.overfit_patience
        ev = self.log.evals
        o = self.onset
        if o is None or self.log.total - 1 - o < k:
            return None
        gaps = [_gap(x) for x in ev[-(k + 1) :]]
        onset_gap = _gap(self.onset_evs[-1])
        if onset_gap is None or any(g is None for g in gaps):
            return None
        widening = all((b or 0.0) > (a or 0.0) for a, b in itertools.pairwise(gaps)) and (gaps[-1] or 0.0) > onset_gap
        then = [x.acc for x in self.onset_evs if x.acc is not None]
        now = [x.acc for x in ev[-3:] if x.acc is not None]
        if not widening or len(then) < 2 or len(now) < 2:
            return None
        a0, a1 = median(then), median(now)
        return (a0, a1) if a0 - a1 >= _ACC_FALL else None

    # ---------------------------------------------------------------------------- the others
    def _accuracy(self, e: Eval, ep: Episodes) -> None:
        t = self.ctx.t
        if e.acc is None:
            return
        if e.acc > self.acc_best:
            self.acc_best = e.acc
        drop = self.acc_best - e.acc
        # (while training_unstable is open its message names the eval swings: not one more finding)
        if drop > t.accuracy_drop and Code.TRAINING_UNSTABLE not in ep.open:
            ep.hot(
                Code.ACCURACY_DROP,
                e.step,
                EVAL_TOKEN_ACC,
                e.acc,
                f"eval token accuracy {fmt(e.acc)} at step {e.step} is {fmt(drop)} below its best {fmt(self.acc_best)}",
                _ACC_KEY,
            )
        else:
            ep.cool(_ACC_KEY, e.step, t.clear_evals)

    def _entropy_gap(self, e: Eval, ep: Episodes, last_train_step: int | None) -> None:
        t = self.ctx.t
        if e.entropy is None or e.train_entropy is None or e.train_entropy <= 0:
            return
        if self.ctx.early(last_train_step or 0):
            return
        gap = (e.entropy - e.train_entropy) / e.train_entropy
        if abs(gap) > t.entropy_gap:
            ep.hot(
                Code.ENTROPY_GAP,
                e.step,
                EVAL_ENTROPY,
                e.entropy,
                f"eval entropy {fmt(e.entropy)} differs from train entropy {fmt(e.train_entropy)} by {gap * 100:+.0f}% "
                f"at step {e.step} (limit {t.entropy_gap * 100:.0f}%)",
            )
        else:
            ep.cool(Code.ENTROPY_GAP, e.step, t.clear_evals)

    def _speed(self, e: Eval, ep: Episodes) -> None:
        t = self.ctx.t
        if e.speed is None:
            return
        speeds = [x.speed for x in self.log.evals[-(t.window_points + 1) : -1] if x.speed is not None]
        if len(speeds) < 3:
            return
        med = median(speeds)
        slow = e.speed < t.eval_slowdown_ratio * med
        was_slow, self.slow = self.slow, slow
        if slow and was_slow:
            ep.hot(
                Code.EVAL_SLOWDOWN,
                e.step,
                EVAL_SAMPLES_PER_SECOND,
                e.speed,
                f"evaluation throughput {fmt(e.speed)} samples/s at step {e.step} is below "
                f"{t.eval_slowdown_ratio:.0%} of its usual {fmt(med)} for 2 evals in a row",
            )
        elif not slow:
            ep.cool(Code.EVAL_SLOWDOWN, e.step, t.clear_evals)


def _gap(e: Eval) -> float | None:
    return None if e.train_loss is None else e.loss - e.train_loss


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None
