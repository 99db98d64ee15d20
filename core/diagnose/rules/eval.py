"""Eval rules: overfitting and overfitting_severe, accuracy_drop on evals, entropy_gap,
eval_slowdown, and loss_nonfinite on eval_loss.

Overfitting has three ways in, all one episode (one finding per event):

- **patience**, as transformers' ``EarlyStoppingCallback`` counts it: the ``overfit_patience``-th
  eval (default 3, like its ``early_stopping_patience``) without a new lowest raw eval_loss, if
  the train loss fell *clearly* since that lowest eval. Judged at the very eval where the
  callback would stop, so never later than it. "Clearly" is what keeps healthy runs quiet, and
  it is measured: a converged run, or one evaluated on a small set, ties its lowest eval for
  eval after eval. The callback would stop it, but nothing there is overfitting: on a
  300k-record healthy run with 1% eval noise the count alone opened an episode a dozen times,
  each time on a train loss that had "fallen" 2-3% only by its own noise. The fall (median of
  the train points since the lowest eval, at most a window, against the median of those logged
  just before it) must exceed ``_FALL_K`` times the train loss's per-point robust noise, and
  ``_FALL_SE`` standard errors of the two medians' difference (which binds when they are
  short), be ``_MIN_FALL`` of the level, and exceed the eval loss's own noise (had the
  train/eval gap held, eval_loss would then have gone below its lowest: one lucky low eval
  does not explain the misses). Measured: on the real overfitting runs (tests/fixtures/real/
  */overfit) the fall is 3.8 and 4.7 times the per-point noise at the callback's eval; on the
  healthy 300k-record run it is at most 1.6 over its 626 such evals (2.5 when every later eval
  was judged again, which is why only that one eval is). The per-point test gives way when the
  evals since the lowest stand clearly above it (``_rose_clearly``): then the misses are no tie,
  and a fall beyond the medians' standard errors is enough. Measured on the public LLaMA-Factory
  run (xueh-llamafactory-qwen25-7b-medical-overfit): a small-batch train loss (per-point sigma
  0.06) whose level fell 0.13 (2.1 sigmas) into the third epoch, beside an eval_loss that
  stepped up 1.4% and stayed, 3.3 eval noises above the evals that ended at its lowest. The
  per-point noise is the smaller of the first- and second-difference estimates
  (``_point_noise``): an epoch-mean train loss (Keras, one row per epoch) falls on a curve that
  first differences alone read as noise. One episode per lowest eval: it holds until a new
  lowest eval_loss closes it.
- **a rise**: the median of the last three evals ``overfit_min_rise`` above its best such
  median, beyond the eval noise, for ``overfit_patience`` evals (a slow drift that a lucky low
  eval would hide from the count);
- **a ratio**: eval_loss more than ``loss_gap_ratio`` times the train loss on two evals; or on the
  one train/eval pair of a run's first eval before the train loss has a trend (all a tracker's
  summary file holds), worded as what one pair can say.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.history import Eval, EvalLog, Hist
from sfttop.core.diagnose.stats import median, robust_noise
from sfttop.core.i18n import _
from sfttop.core.metrics import (
    EVAL_ENTROPY,
    EVAL_LOSS,
    EVAL_RUNTIME,
    EVAL_SAMPLES_PER_SECOND,
    EVAL_TOKEN_ACC,
)
from sfttop.core.records import Record
from sfttop.core.series import post_training
from sfttop.core.textfmt import fmt

from .base import Context

_SMOOTH = 3  # evals in the median that the overfitting trend is judged on
_NOISE_SPAN = 40  # evals whose successive differences estimate the eval noise
_ACC_FALL = 0.01  # eval accuracy "falls" when it lost at least one point over the evals judged
_SLOW_EVALS = 3  # slow evals in a row that are eval_slowdown (a busy machine slows one or two)
_MIN_RUNTIME = 1.0  # seconds: a shorter eval's throughput is not judged
_ACC_KEY = "accuracy_drop:eval"  # train and eval accuracy drops are separate episodes
# Findings of a run that swings or blew up: an eval accuracy that falls meanwhile is one of its
# swings (the LR-0.5 run: 0.26 -> 0.10 -> 0.26 -> 0.12 under lr_too_large), not a finding
_UNSTABLE = (
    Code.TRAINING_UNSTABLE,
    Code.LOSS_OSCILLATION,
    Code.LR_TOO_LARGE,
    Code.GRAD_EXPLOSION,
    Code.DIVERGENCE,
)
# ... and once the run has been named for one of these causes, which outlast their episode (the
# learning rate that swung it is still the learning rate)
_UNSTABLE_CAUSE = frozenset({Code.TRAINING_UNSTABLE, Code.LR_TOO_LARGE, Code.DIVERGENCE})
_GAP_EVALS = 2  # evals in a row, the same way past the limit, that are an entropy_gap (one is one sample)
# Findings that move the entropies themselves, so that a train/eval entropy gap after one of them
# is its consequence, not a sign of an eval set from another distribution (what entropy_gap
# advises checking). Memorising drives the train entropy down on the seen samples only; a
# diverged or swinging model's entropies are whatever the broken weights give. Measured: on the
# real TRL runs driven into overfitting, divergence and instability (tests/fixtures/real) every
# entropy_gap came after one of these (12 of 12), on the public logs none came alone.
_ENTROPY_EXPLAINED = frozenset(
    {
        Code.OVERFITTING,
        Code.OVERFITTING_SEVERE,
        Code.DIVERGENCE,
        Code.GRAD_EXPLOSION,
        Code.LOSS_NONFINITE,
        Code.TRAINING_UNSTABLE,
        Code.LOSS_OSCILLATION,
        Code.LR_TOO_LARGE,
    }
)
_OVER, _SEVERE = Code.OVERFITTING, Code.OVERFITTING_SEVERE
# the patience rule's "the train loss fell clearly" (see the module's docstring)
_FALL_K = 2.5  # the train loss's per-point noise (robust sigma over 4 windows of points)
_FALL_SE = 3.0  # standard errors of the difference of its two medians (more when they are short)
_MEDIAN_SE = 1.2533  # a median's standard error in sigma / sqrt(n), for normal noise
_MIN_FALL = 0.01  # and at least this fraction of its level (noise-free data "falls" by any amount)
_ROSE_K = 3.0  # eval noises that the evals since the lowest stand above it when the fall is judged by its SE alone
# eval task metrics where higher is better: when one still improves while eval_loss stalls, the
# overfitting message says both (the checkpoint to keep depends on which the user needs)
_KEY_SETS = 64  # distinct eval key sets remembered
_TASK = re.compile(r"^eval_.*(rouge|bleu|accuracy|exact_match|f1|chrf|meteor|bertscore)", re.IGNORECASE)


def eval_cap(ctx: Context, cap: int) -> int:
    """Evals kept: never so few that the rules' own spans do not fit twice."""
    t = ctx.t
    return max(cap, 4 * max(_NOISE_SPAN, t.window_points, t.overfit_patience) + 4)


class EvalRules:
    """The eval family. Evals come one at a time (never in bulk): one ``observe`` each."""

    __slots__ = (
        "acc_best",
        "ctx",
        "ent_over",
        "found",
        "found_n",
        "log",
        "low",
        "low_i",
        "low_tail",
        "low_tasks",
        "low_total",
        "named",
        "onset",
        "onset_evs",
        "saved",
        "seen",
        "slow",
        "summary_at",
        "task_keys",
        "task_max",
    )

    def __init__(self, ctx: Context, cap: int) -> None:
        self.ctx = ctx
        self.log = EvalLog(eval_cap(ctx, cap))
        self.acc_best = -math.inf
        self.slow = 0  # slow evals in a row
        self.ent_over = 0  # evals in a row past the entropy limit, signed by the gap's direction
        self.found: set[str] = set()  # the codes of every finding the run opened so far ...
        self.found_n = 0  # ... read from this many of its findings
        self.onset: int | None = None  # index of the eval where the overfitting episode began ...
        self.onset_evs: list[Eval] = []  # ... and the evals up to it (at most 3: its accuracy)
        # the patience count: the lowest raw eval_loss (what EarlyStoppingCallback compares
        # with) and its eval index, the train losses logged up to it and how many there were in
        # all, the task metrics logged with it, and each task metric's highest value so far
        self.low: Eval | None = None
        self.low_i = -1
        self.low_tail: list[float] = []
        self.low_total = 0
        self.low_tasks: dict[str, float] = {}
        self.task_max: dict[str, tuple[float, int]] = {}  # (highest value, its step)
        self.task_keys: dict[tuple[str, ...], tuple[str, ...]] = {}  # an eval's keys -> its task metrics
        self.named = -1  # the lowest eval whose patience episode was opened (one per lowest eval)
        # lists the run's checkpoint-N directories (step -> path), when the caller knows where
        # the run is: the overfitting message then names the one to keep
        self.saved: Callable[[], dict[int, str]] | None = None
        self.seen = 0  # train losses logged by the previous eval
        # (the last train step, the epoch) when the training summary came: an eval after it with
        # no train record since may be a post-training evaluate() (``series.post_training``)
        self.summary_at: tuple[int | None, float] | None = None

    def summary(self, last_train_step: int | None, epoch: float | None) -> None:
        """The training summary came."""
        self.summary_at = (last_train_step, epoch if epoch is not None else math.nan)

    def cut(self, step: int) -> None:
        """Forget the evals at ``step`` or later (a resume)."""
        if not self.log.cut(step):
            return
        if self.onset is not None and self.onset >= self.log.total:
            self.onset = None
            self.onset_evs = []
        if self.low is not None and self.low.step >= step:
            # the lowest among the kept evals; the train losses before it are gone, so the
            # count waits for a new lowest eval (later, never a false finding)
            self.low, self.low_i = None, -1
            for k, x in enumerate(self.log.evals):
                if self.low is None or x.loss < self.low.loss:
                    self.low, self.low_i = x, self.log.off + k
            self.low_tail, self.low_total, self.low_tasks, self.task_max = [], 0, {}, {}
        self.seen = min(self.seen, self.ctx.tl.loss.total)

    def _eval(
        self, step: int, el: float, m: dict[str, float], last_train_step: int | None
    ) -> tuple[Eval, float | None, bool]:
        """The eval as the rules judge it, its runtime, and whether training is still early."""
        t = self.ctx.t
        sps = _finite(m.get(EVAL_SAMPLES_PER_SECOND))
        rt = _finite(m.get(EVAL_RUNTIME))
        speed = sps if sps is not None and sps > 0 else (1.0 / rt if rt else None)
        # train loss "now": only once it is past early training and has a few points
        tl = self.ctx.tl
        early = self.ctx.early(last_train_step or 0)
        n = t.smooth_points
        recent = tl.loss.tail(n)
        raw = median(recent) if recent else None
        train = raw if len(recent) >= n and not (early and last_train_step is not None) else None
        ratio = el / train if train is not None and train > 0 else None
        acc, ent = _finite(m.get(EVAL_TOKEN_ACC)), _finite(m.get(EVAL_ENTROPY))
        train_ent = None  # (only the entropy gap reads it)
        if ent is not None and (recent := tl.ent.tail(n)):
            train_ent = median(recent)
        return Eval(step, el, acc, ent, speed, train, raw, train_ent, ratio), rt, early

    def observe(self, rec: Record, ep: Episodes, last_train_step: int | None) -> None:
        step = rec.step
        m = rec.metrics
        el = m.get(EVAL_LOSS)
        at = self.summary_at
        if at is not None and at[0] == last_train_step:
            evals = self.log.evals
            if post_training(step, rec.epoch, evals[-1].step if evals else None, at[1]):
                return
        if self.log.stale(step):
            self.cut(step)  # re-logged after a resume: the newest value wins
        if el is None:
            return
        if not math.isfinite(el):
            ep.hot(Code.LOSS_NONFINITE, step, EVAL_LOSS, el, _("eval_loss is {el} at step {step}").format(el=fmt(el), step=step))
            return
        e, rt, early = self._eval(step, el, m, last_train_step)
        found = ep.findings
        if len(found) > self.found_n:
            self.found.update(f.code for f in found[self.found_n :])
            self.found_n = len(found)
        evals = self.log.evals
        prev = evals[-1] if evals else None
        new_best = self.log.append(e, _SMOOTH)
        patience = self._patience(e, m)
        self._overfitting(e, prev, new_best, patience, ep)
        self._accuracy(e, ep)
        self._entropy_gap(e, ep, early)
        self._speed(e, ep, rt)

    # ---------------------------------------------------------------------------- overfitting
    def _noise(self) -> float:
        """Robust sigma of the eval loss from successive differences (a steady trend adds none)."""
        ev = self.log.evals[-_NOISE_SPAN:]
        if len(ev) < 4:
            return 0.0
        return robust_noise([b.loss - a.loss for a, b in itertools.pairwise(ev)])

    def _patience(self, e: Eval, m: dict[str, float]) -> str:
        """The message when eval_loss has not reached a new low for ``overfit_patience`` evals
        while the train loss fell clearly since that low ("" when not). Raw values and a
        threshold of 0, as EarlyStoppingCallback compares, so sfttop never names it later."""
        t = self.ctx.t
        tasks = self._tasks(e, m)
        loss = self.ctx.tl.loss
        low = self.low
        total = loss.total
        seen, self.seen = self.seen, total
        if low is None or e.loss < low.loss:
            # the train level at this eval: the points since the previous eval (at least
            # smooth_points, at most a window), not a window that reaches back to an older level
            keep = min(t.window_points, max(t.smooth_points, total - seen))
            self.low, self.low_i, self.low_tasks = e, self.log.total - 1, tasks
            self.low_tail, self.low_total = loss.tail(keep), total
            return ""
        since = self.log.total - 1 - self.low_i
        if since != t.overfit_patience:
            # judged once per lowest eval, where the callback stops: judging every later eval
            # again would give chance a new try each time (on a long flat run, hundreds)
            return ""
        fell = self._train_fell(loss)
        if fell is None:
            return ""
        before, after = fell
        rise = (e.loss - low.loss) / low.loss * 100 if low.loss > 0 else 0.0
        msg = _(
            "eval_loss has not improved for {since} evals: {loss} at step {step}, {rise:+.2g}% from its lowest "
            "{low} at step {low_step}, while train loss fell {before} -> {after}; {keep}"
        ).format(
            since=since, loss=fmt(e.loss), step=e.step, rise=rise, low=fmt(low.loss), low_step=low.step,
            before=fmt(before), after=fmt(after), keep=self._keep(low.step),
        )
        msg += self._task_note(tasks, low, e)
        return msg

    def _tasks(self, e: Eval, m: dict[str, float]) -> dict[str, float]:
        """This eval's task metrics (rouge, bleu, accuracy, ...), each one's best kept."""
        names = tuple(m)
        keys = self.task_keys.get(names)
        if keys is None:  # (a run logs the same keys on every eval: matched once per key set)
            if len(self.task_keys) >= _KEY_SETS:
                self.task_keys.clear()
            keys = self.task_keys[names] = tuple(k for k in names if _TASK.match(k))
        if not keys:
            return {}
        tasks = {k: v for k in keys if math.isfinite(v := m[k])}
        task_max = self.task_max
        for k, v in tasks.items():
            if v > task_max.get(k, (-math.inf, 0))[0]:
                task_max[k] = (v, e.step)
        return tasks

    def _train_fell(self, loss: Hist) -> tuple[float, float] | None:
        """(train level at the lowest eval, now) when it fell beyond its noise since (None: not)."""
        t = self.ctx.t
        # the train level now: the median of the points logged since the lowest eval (at most a
        # window), none of them shared with the level then
        n = min(t.window_points, loss.total - self.low_total)
        nb = len(self.low_tail)
        if min(n, nb) < t.smooth_points:
            return None
        before, after = median(self.low_tail), median(loss.tail(n))
        fall = before - after
        sigma = _point_noise(loss.tail(4 * t.window_points))
        eval_noise = self._noise()
        if (
            fall <= _MIN_FALL * abs(before)
            or fall <= _FALL_SE * _MEDIAN_SE * sigma * math.sqrt(1 / nb + 1 / n)
            or fall <= eval_noise
            or (fall <= _FALL_K * sigma and not self._rose_clearly(eval_noise))
        ):
            return None
        return before, after

    def _rose_clearly(self, noise: float) -> bool:
        """The evals since the lowest stand clearly above it: their median more than
        ``_ROSE_K`` eval noises above the median of the evals that ended at it (``low.smooth``,
        never the lucky low itself). A run whose eval_loss only ties its lowest eval stays
        under this; one that stepped up and stayed there (the third epoch memorising) is over."""
        low = self.low
        since = self.log.evals[-self.ctx.t.overfit_patience :]
        if low is None or not since or noise <= 0.0 or math.isnan(low.smooth):
            return False
        return median([x.loss for x in since]) - low.smooth > _ROSE_K * noise

    def _task_note(self, tasks: dict[str, float], low: Eval, e: Eval) -> str:
        """A task metric higher now than at the lowest eval: the two disagree on what to keep."""
        better = [(k, self.low_tasks[k], v) for k, v in tasks.items() if k in self.low_tasks and v > self.low_tasks[k]]
        if better:
            k, then, now = better[0]
            top, top_step = self.task_max[k]
            return _(
                "; but {metric} still improves ({then} at step {then_step} -> {now} at step {step}): "
                "if {metric} is what counts, keep checkpoint-{top_step} (its highest, {top})"
            ).format(
                metric=k, then=fmt(then), then_step=low.step, now=fmt(now), step=e.step, top_step=top_step, top=fmt(top)
            )
        return ""

    def _keep(self, step: int) -> str:
        """Which checkpoint to keep for the lowest eval at ``step``."""
        dirs = self.saved() if self.saved is not None else {}
        if dirs:
            # an eval's step in a stdout log is the last train step before it, and its
            # checkpoint may be saved a few steps on: any before the next eval is its own
            k = self.low_i + 1 - self.log.off
            evals = self.log.evals
            nxt = evals[k].step if 0 <= k < len(evals) else step + 1
            own = [s for s in dirs if step <= s < nxt]
            if own:
                return _("keep {path} (the lowest eval_loss)").format(path=dirs[min(own)])
            return _(
                "checkpoint-{step} (the lowest eval_loss) was not saved: see the best checkpoint among those saved"
            ).format(step=step)
        return _("keep checkpoint-{step} (the lowest eval_loss) if it was saved").format(step=step)

    def _one_pair(self, e: Eval, ep: Episodes) -> bool:
        """The run's first eval with fewer train losses than a trend needs: all a tracker's
        summary holds (W&B's wandb-summary.json: the last value of every key). One pair says
        nothing of a trend or of when it began, but a gap past ``loss_gap_ratio`` is a gap
        whatever came before: said as such, from the one pair. Returns whether it was said."""
        t = self.ctx.t
        raw = e.train_raw
        if self.log.total != 1 or raw is None or raw <= 0 or len(self.ctx.tl.loss) >= t.smooth_points:
            return False
        ratio = e.loss / raw
        if ratio <= t.loss_gap_ratio or e.loss - raw < t.loss_gap_min:
            return False
        ep.hot(
            _OVER,
            e.step,
            EVAL_LOSS,
            e.loss,
            _(
                "eval_loss {loss} is {ratio:.2g}x the train loss {train_loss} at step {step} (limit "
                "{loss_gap_ratio}x) in the only train/eval pair logged: the model fits its training data "
                "far better than unseen data; one pair cannot tell when that began or which checkpoint to keep"
            ).format(
                loss=fmt(e.loss), ratio=ratio, train_loss=fmt(raw), step=e.step, loss_gap_ratio=fmt(t.loss_gap_ratio)
            ),
        )
        return True

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

    def _overfitting(self, e: Eval, prev: Eval | None, new_best: bool, patience: str, ep: Episodes) -> None:
        t = self.ctx.t
        step = e.step
        if self.log.total == 1 and self._one_pair(e, ep):
            return
        if new_best and not patience:
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
        self._over_episode(e, best, since, rise, patience, rising, ratio_hot, ep)
        self._track_onset(_OVER in ep.open, was_open)
        severe = self._severe(e, prev, ratio_hot, bool(patience) or rising or ratio_hot)
        if severe:
            ep.hot(_SEVERE, step, EVAL_LOSS, e.loss, severe)
        else:
            ep.cool(_SEVERE, step, t.clear_evals)

    def _over_episode(
        self, e: Eval, best: Eval, since: int, rise: float, patience: str, rising: bool, ratio_hot: bool, ep: Episodes
    ) -> None:
        """The overfitting episode at this eval, by the first of patience, a rise, the ratio."""
        t = self.ctx.t
        step = e.step
        was_open = _OVER in ep.open
        if patience:
            if ep.hot(_OVER, step, EVAL_LOSS, e.loss, patience) is not None:
                self.named = self.low_i
        elif was_open and self.named == self.low_i and self.low is not e:
            ep.hold(_OVER)  # (the callback, once stopped, stays stopped until a new lowest eval)
        elif rising:
            ep.hot(
                _OVER,
                step,
                EVAL_LOSS,
                e.loss,
                (
                    _("eval_loss rose for {since} evals: {loss} at step {step}, {rise:.2g}% above its best level {best} (step {best_step}), while train loss fell {train_before} -> {train_now}")
                    if (e.train_raw or 0.0) < (best.train_raw or 0.0)
                    else _("eval_loss rose for {since} evals: {loss} at step {step}, {rise:.2g}% above its best level {best} (step {best_step}), while train loss held {train_before} -> {train_now}")
                ).format(since=since, loss=fmt(e.loss), step=step, rise=rise * 100, best=fmt(best.smooth), best_step=best.step, train_before=fmt(best.train_raw), train_now=fmt(e.train_raw)),
            )
        elif ratio_hot:
            ep.hot(
                _OVER,
                step,
                EVAL_LOSS,
                e.loss,
                _("eval_loss {loss} is {ratio:.2g}x the train loss {train_loss} at step {step} (limit {loss_gap_ratio}x)").format(loss=fmt(e.loss), ratio=e.ratio or 0, train_loss=fmt(e.train_loss), step=step, loss_gap_ratio=fmt(t.loss_gap_ratio)),
            )
        elif self.low is e and self.named >= 0:
            ep.close(_OVER, step)  # a new lowest eval_loss ends the patience episode
        else:
            ep.cool(_OVER, step, t.clear_evals)

    def _track_onset(self, is_open: bool, was_open: bool) -> None:
        if not is_open:
            self.onset = None
            self.onset_evs = []
        elif not was_open:
            self.onset = self.log.total - 1
            self.onset_evs = self.log.evals[-3:]

    def _severe(self, e: Eval, prev: Eval | None, ratio_hot: bool, over: bool) -> str:
        """The message when overfitting is severe ("" when not)."""
        t = self.ctx.t
        step = e.step
        if e.train_loss is not None and e.train_loss <= t.severe_train_loss and e.loss >= t.severe_eval_loss:
            return (
                _("train loss {train_loss} is tiny while eval_loss is {loss} at step {step}: the model memorises the training set").format(train_loss=fmt(e.train_loss), loss=fmt(e.loss), step=step)
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
                _("eval_loss {loss} is {ratio:.3g}x the train loss {train_loss} at step {step} (limit {severe_gap_ratio}x): the model memorises the training set").format(loss=fmt(e.loss), ratio=e.ratio, train_loss=fmt(e.train_loss), step=step, severe_gap_ratio=fmt(t.severe_gap_ratio))
            )
        if over and (fall := self._gap_widening_acc_falling()) is not None:
            o = self.onset_evs[-1]
            return (
                _("the train/eval loss gap keeps widening ({gap_before} at step {step_before} -> {gap_now} at step {step}) while eval accuracy falls ({acc_before} -> {acc_now})").format(gap_before=fmt(_gap(o)), step_before=o.step, gap_now=fmt(_gap(e)), step=step, acc_before=fmt(fall[0]), acc_now=fmt(fall[1]))
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
        # (while the run is unstable, its finding explains the eval swings: not one more finding)
        if drop > t.accuracy_drop and not self._unstable(ep):
            ep.hot(
                Code.ACCURACY_DROP,
                e.step,
                EVAL_TOKEN_ACC,
                e.acc,
                _("eval token accuracy {acc} at step {step} is {drop} below its best {acc_best}").format(acc=fmt(e.acc), step=e.step, drop=fmt(drop), acc_best=fmt(self.acc_best)),
                _ACC_KEY,
            )
        else:
            ep.cool(_ACC_KEY, e.step, t.clear_evals)

    def _unstable(self, ep: Episodes) -> bool:
        return any(c in ep.open for c in _UNSTABLE) or not self.found.isdisjoint(_UNSTABLE_CAUSE)

    def _entropy_gap(self, e: Eval, ep: Episodes, early: bool) -> None:
        t = self.ctx.t
        if e.entropy is None or e.train_entropy is None or e.train_entropy <= 0 or early:
            return
        gap = (e.entropy - e.train_entropy) / e.train_entropy
        if abs(gap) > t.entropy_gap and self.found.isdisjoint(_ENTROPY_EXPLAINED):
            way = 1 if gap > 0 else -1
            self.ent_over = self.ent_over + way if self.ent_over * way > 0 else way
        else:
            self.ent_over = 0
        if abs(self.ent_over) >= _GAP_EVALS:
            ep.hot(
                Code.ENTROPY_GAP,
                e.step,
                EVAL_ENTROPY,
                e.entropy,
                _("eval entropy {entropy} differs from train entropy {train_entropy} by {gap:+.0f}% at step {step} (limit {limit:.0f}%)").format(entropy=fmt(e.entropy), train_entropy=fmt(e.train_entropy), gap=gap * 100, step=e.step, limit=t.entropy_gap * 100),
            )
        else:
            ep.cool(Code.ENTROPY_GAP, e.step, t.clear_evals)

    def _speed(self, e: Eval, ep: Episodes, runtime: float | None) -> None:
        """eval_slowdown: ``_SLOW_EVALS`` evals in a row below ``eval_slowdown_ratio`` of the usual
        throughput; the first eval back at it closes the episode. A leak or fragmentation slows
        every eval from some point on; a busy machine slows one or two. An eval shorter than
        ``_MIN_RUNTIME`` is not judged: its throughput is start-up and scheduling noise."""
        t = self.ctx.t
        if e.speed is None or (runtime is not None and runtime < _MIN_RUNTIME):
            return
        speeds = [x.speed for x in self.log.evals[-(t.window_points + 1) : -1] if x.speed is not None]
        if len(speeds) < 3:
            return
        med = median(speeds)
        if e.speed >= t.eval_slowdown_ratio * med:
            self.slow = 0
            ep.close(Code.EVAL_SLOWDOWN, e.step)
            return
        self.slow += 1
        if self.slow >= _SLOW_EVALS:
            ep.hot(
                Code.EVAL_SLOWDOWN,
                e.step,
                EVAL_SAMPLES_PER_SECOND,
                e.speed,
                _(
                    "evaluation throughput {speed} samples/s at step {step} is below {eval_slowdown_ratio:.0%} of "
                    "its usual {med} for {count} evals in a row"
                ).format(
                    speed=fmt(e.speed), step=e.step, eval_slowdown_ratio=t.eval_slowdown_ratio, med=fmt(med),
                    count=self.slow,
                ),
            )


def _gap(e: Eval) -> float | None:
    return None if e.train_loss is None else e.loss - e.train_loss


def _point_noise(xs: list[float]) -> float:
    """Robust per-point sigma of a loss: the smaller of the estimates from its first and its
    second differences. Each overstates the noise in one case and neither understates white
    noise: a loss falling on a curve (an epoch-mean loss, nearly noise-free) has first
    differences that change along the curve, which their spread counts as noise; on a short
    stretch of a few points the second differences' spread is the wider of the two."""
    if len(xs) < 4:
        return 0.0
    first = robust_noise([b - a for a, b in itertools.pairwise(xs)])
    if len(xs) < 5:
        return first
    d2 = [c - 2.0 * b + a for a, b, c in zip(xs, xs[1:], xs[2:])]
    md = median(d2)  # (a loss on a parabola has constant second differences: no noise)
    return min(first, 1.4826 * median([abs(x - md) for x in d2]) / math.sqrt(6.0))


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None
