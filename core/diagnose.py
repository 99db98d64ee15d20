"""The diagnoser: turns a stream of records and events into finding episodes.

A *finding* is one episode of one pathology: it opens on the record where its condition starts,
stays the same finding while the condition holds (brief remissions included), and closes once the
run has been healthy again for a while (``clear_points`` train points or ``clear_evals`` evals).
``observe()`` returns only the findings that opened on that record, so a caller rings the bell,
shows the banner or runs the alert command once per episode, never once per line.

Everything is incremental. Per-metric histories are kept as compact arrays (so a resumed run can
be cut back to the step it restarted from), and each record costs O(window) work: a rolling
median/MAD over the last ``window_points`` values, a running EMA and a few counters. The only
longer computations (the plateau window's end medians) run on a stride that keeps them O(1)
amortised per record.

Noise handling follows the research note (Part B): judge spikes with the Iglewicz-Hoaglin modified
z-score over a trailing window plus a ratio to the rolling median (a per-step loss is an interval
mean and fairly smooth; grad_norm is instantaneous and heavy-tailed, so it gets a much looser
rule); judge trends on medians at both ends of a long window; keep non-finite values out of every
smoother; and do not cry wolf in early training, where the loss is high and falls fast and grad
norms are large.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import total_ordering

from .config import Thresholds
from .metrics import (
    ENTROPY,
    EVAL_ENTROPY,
    EVAL_LOSS,
    EVAL_RUNTIME,
    EVAL_SAMPLES_PER_SECOND,
    EVAL_TOKEN_ACC,
    GRAD_NORM,
    LOSS,
    LR,
    TOKEN_ACC,
)
from .records import Event, EventKind, Kind, Record

# --------------------------------------------------------------------------------------------
# severities, codes and advice


@total_ordering
class Severity(Enum):
    """How bad a finding is; ordered ``INFO < WARNING < CRITICAL``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return _RANK[self.value] < _RANK[other.value]


_RANK = {"info": 0, "warning": 1, "critical": 2}

_LOWER_LR = "lower the learning rate"
_CHECK_DATA = "check data preprocessing (empty or corrupt samples, fully masked labels)"
_CLIP = "add or tighten gradient clipping (max_grad_norm)"

# code -> (severity, short title, advice). Advice is the seed FAQ's adjustment strategies.
RULES: dict[str, tuple[Severity, str, tuple[str, ...]]] = {
    "loss_nonfinite": (
        Severity.CRITICAL,
        "NaN/inf in training",
        (_LOWER_LR, _CHECK_DATA, _CLIP, "in fp16, try bf16 or a higher initial loss scale"),
    ),
    "grad_explosion": (Severity.CRITICAL, "gradient explosion", (_LOWER_LR, _CHECK_DATA, _CLIP)),
    "grad_norm_high": (
        Severity.WARNING,
        "grad_norm high",
        ("keep watching grad_norm", "the learning rate may need lowering", _CLIP),
    ),
    "grad_vanishing": (
        Severity.WARNING,
        "vanishing gradients",
        ("check the model initialisation", "the learning rate may be too small", "check the data labels"),
    ),
    "overfitting": (
        Severity.WARNING,
        "overfitting",
        (
            "increase dropout (e.g. 0.1 -> 0.15)",
            "increase weight decay (e.g. 0.01 -> 0.02)",
            "use early stopping and keep the best checkpoint",
        ),
    ),
    "overfitting_severe": (
        Severity.CRITICAL,
        "severe overfitting",
        (
            "stop and take the best checkpoint (lowest eval_loss)",
            "add training data",
            "reduce model capacity (smaller model, lower LoRA rank)",
            "increase dropout and weight decay",
        ),
    ),
    "accuracy_drop": (
        Severity.WARNING,
        "token accuracy dropping",
        ("check the data and the learning rate", "consider early stopping"),
    ),
    "loss_oscillation": (
        Severity.WARNING,
        "loss unstable",
        (_LOWER_LR, "use more warmup steps", "check the data distribution (shuffling, mixed sources)"),
    ),
    "loss_plateau": (
        Severity.WARNING,
        "loss plateau",
        ("raise the learning rate (e.g. 3e-6 -> 5e-6)", "check data quality", "raise LoRA r or alpha"),
    ),
    "accuracy_slow": (
        Severity.INFO,
        "accuracy rising slowly",
        ("train for more epochs", "adjust the batch size", "check label quality"),
    ),
    "lr_too_small": (
        Severity.WARNING,
        "learning rate too small",
        ("raise the learning rate (typical: 1e-5..5e-5 full fine-tune, 1e-4..3e-4 LoRA)", "fix the LR schedule"),
    ),
    "lr_too_large": (
        Severity.WARNING,
        "learning rate too large",
        (_LOWER_LR, "use warmup"),
    ),
    "lr_schedule": (
        Severity.WARNING,
        "learning-rate schedule",
        ("check the scheduler type and warmup settings", "check max_steps / num_train_epochs against the data size"),
    ),
    "entropy_gap": (
        Severity.WARNING,
        "train/eval entropy gap",
        ("check the eval set matches the training distribution",),
    ),
    "eval_slowdown": (
        Severity.WARNING,
        "evaluation slowing down",
        (
            "look at memory use (a leak or fragmentation slows evaluation)",
            "check the eval batch size",
            "check data loading",
        ),
    ),
    "run_crashed": (
        Severity.CRITICAL,
        "run crashed",
        (
            "read the error line and the traceback above it",
            "out of memory: lower the batch size or max length, or enable gradient checkpointing",
            "resume from the last checkpoint once fixed",
        ),
    ),
    "run_stalled": (
        Severity.WARNING,
        "run stalled",
        (
            "check the process is alive (ps, nvidia-smi)",
            "a long eval, checkpoint save or data load can also pause logging",
        ),
    ),
}

CODES: tuple[str, ...] = tuple(RULES)


def title(code: str) -> str:
    return RULES[code][1] if code in RULES else code


# --------------------------------------------------------------------------------------------
# findings


@dataclass
class Finding:
    """One episode of one pathology."""

    code: str
    severity: Severity
    step: int  # where the episode began
    metric: str  # "" for run events
    value: float | None  # the value that opened it; None for run events
    message: str  # one plain-English line with the numbers
    advice: list[str] = field(default_factory=list)
    active: bool = True  # still holding at the last record
    end_step: int | None = None  # where it closed (None while active)

    @property
    def title(self) -> str:
        return title(self.code)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready. ``value`` is a number, ``null`` for run events, or the string
        ``"nan"``/``"inf"``/``"-inf"`` when non-finite (JSON has no NaN)."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "step": self.step,
            "metric": self.metric,
            "value": json_value(self.value),
            "message": self.message,
            "advice": list(self.advice),
            "active": self.active,
            "end_step": self.end_step,
        }


def json_value(v: float | None) -> float | str | None:
    if v is None:
        return None
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def fmt(v: float | None) -> str:
    """A number for a message: 4 significant digits, nan/inf spelled out."""
    if v is None:
        return "n/a"
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.4g}"


# --------------------------------------------------------------------------------------------
# robust statistics


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return math.nan
    h = n // 2
    return s[h] if n % 2 else 0.5 * (s[h - 1] + s[h])


def modified_z(x: float, xs: Sequence[float], med: float) -> float:
    """Iglewicz-Hoaglin modified z-score of ``x`` against ``xs`` (MAD floored at 1% of |median|)."""
    mad = median([abs(v - med) for v in xs])
    floor = max(0.01 * abs(med), 1e-12)
    return 0.6745 * (x - med) / max(mad, floor)


class _Hist:
    """Steps and finite values of one train metric on the current timeline (cut back on resume)."""

    __slots__ = ("steps", "values")

    def __init__(self) -> None:
        self.steps: array[int] = array("q")
        self.values: array[float] = array("d")

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, value: float) -> None:
        self.steps.append(step)
        self.values.append(value)

    def cut(self, step: int) -> None:
        """Forget every value at ``step`` or later."""
        steps, values = self.steps, self.values
        while steps and steps[-1] >= step:
            steps.pop()
            values.pop()

    def tail(self, n: int) -> list[float]:
        return self.values[-n:].tolist() if n > 0 else []

    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass
class _Eval:
    step: int
    loss: float
    acc: float | None
    entropy: float | None
    speed: float | None  # eval samples/s (or 1/runtime)
    train_loss: float | None  # smoothed train loss when this eval was logged (None in early training)
    train_raw: float | None  # the same, early training included (for the train trend)
    train_entropy: float | None
    ratio: float | None  # eval_loss / train_loss
    smooth: float = math.nan  # median of the last _EVAL_SMOOTH eval losses, this one included


@dataclass
class _Open:
    finding: Finding
    cool: int = 0  # consecutive healthy observations since it last held


_EMA_W = 0.6  # TensorBoard's default smoothing, debiased (research B.11)
_ZERO_LOSS_PRIOR = 0.01  # a logged loss of exactly 0 after losses above this is a masked NaN
_PLATEAU_CONFIRM = 2  # consecutive plateau checks that must agree before it opens...
_EVAL_SMOOTH = 3  # evals in the median that the overfitting trend is judged on
_EVAL_NOISE_SPAN = 10  # evals whose successive differences estimate the eval noise
_ACC_FALL = 0.01  # eval accuracy "falls" when it lost at least one point over the evals judged


class Diagnoser:
    """Feed it records and events in log order; read ``findings``/``active()``."""

    def __init__(self, thresholds: Thresholds | None = None, *, max_steps: int | None = None) -> None:
        self.t = thresholds if thresholds is not None else Thresholds()
        self.findings: list[Finding] = []
        self.max_steps: int | None = max_steps  # set it when the caller learns it (banner, bar)
        self.finished = False
        self.crashed = False
        self.restarts = 0
        self.records = 0
        self.last_step: int | None = None
        self.last_train_step: int | None = None
        self.generation = 0  # bumped whenever a finding opens or closes
        self._open: dict[str, _Open] = {}
        self._new: list[Finding] = []
        # train timeline
        self._tsteps: array[int] = array("q")  # every train step, NaN records included
        self._loss = _Hist()
        self._grad = _Hist()
        self._lr = _Hist()
        self._acc = _Hist()
        self._ent = _Hist()
        self._ema_raw: array[float] = array("d")  # parallel to _loss
        self._ema: array[float] = array("d")
        self._ema_rise = 0
        self._ema_rise_from = 0.0
        self._loss_best = math.inf  # lowest smoothed loss so far
        self._rebound_prev = False
        self._rebounds: deque[int] = deque()  # indexes in _loss of rebound onsets
        self._gx_streak = 0  # consecutive points above grad_norm_critical ...
        self._gx_first = 0.0  # ... and the first of them
        self._gw_streak = 0
        self._gw_first = 0.0
        self._lr_peak = 0.0
        self._lr_low = math.inf  # lowest LR since the peak
        self._lr_zero_run = 0
        self._acc_best = -math.inf  # best smoothed train accuracy
        self._plateau_next = 0
        self._plateau_votes = 0  # >0: consecutive hot checks; <0: consecutive clear checks
        self._plateau_since = 0  # points logged when the current run of hot checks began
        self._loss_improvement: float | None = None  # relative, over the last plateau window
        self._accslow_next = 0
        self._accslow_votes = 0
        self._accslow_since = 0
        # evals
        self._evals: list[_Eval] = []
        self._best_eval = -1  # index in _evals of the lowest smoothed eval_loss
        self._eval_acc_best = -math.inf
        self._eval_slow = False
        self._overfit_onset: int | None = None  # index in _evals where the overfitting episode began
        # arrival times for the stall check
        self._last_arrival: float | None = None
        self._intervals: deque[float] = deque(maxlen=64)

    # ---------------------------------------------------------------------------- public
    def observe(self, rec: Record, now: float | None = None) -> list[Finding]:
        """Take one record; return the findings that opened on it."""
        self._new = []
        self.records += 1
        self._arrived(now)
        if self.last_step is None or rec.step > self.last_step:
            self.last_step = rec.step
        if "run_stalled" in self._open:
            self._close("run_stalled", rec.step)
        if rec.kind is Kind.SUMMARY:
            if "train_runtime" in rec.metrics or "train_loss" in rec.metrics:
                self.finished = True
            return self._new
        if rec.kind is Kind.TRAIN:
            if "run_crashed" in self._open:
                self._close("run_crashed", rec.step)  # a restart after the crash
            self.crashed = False
            self.finished = False
            self._train(rec)
        if rec.kind is Kind.EVAL or EVAL_LOSS in rec.metrics:
            self._eval(rec)
        return self._new

    def observe_event(self, ev: Event, now: float | None = None) -> list[Finding]:
        """Take a tailer/parser event (crash, finish, max_steps...); return findings it opened."""
        self._new = []
        step = ev.step if ev.step is not None else (self.last_step if self.last_step is not None else 0)
        if ev.kind is EventKind.CRASHED:
            self.crashed = True
            msg = ev.message.strip() or "the run crashed"
            self._hot("run_crashed", step, "", None, f"crashed after step {step}: {msg}"[:400])
        elif ev.kind is EventKind.FINISHED:
            self.finished = True
            if "run_stalled" in self._open:
                self._close("run_stalled", step)
        elif ev.kind is EventKind.MAX_STEPS:
            if ev.total and ev.total > 0:
                self.max_steps = ev.total
        elif ev.kind is EventKind.PROGRESS:
            if ev.total and ev.total > 0 and self.max_steps is None and ev.total >= (self.last_train_step or 0):
                self.max_steps = ev.total
        return self._new

    def check_stall(self, now: float) -> list[Finding]:
        """Open ``run_stalled`` when nothing arrived for max(stall_factor x the median interval
        between records, stall_min_seconds). Not for finished or crashed runs."""
        self._new = []
        if self.finished or self.crashed or self._last_arrival is None or "run_stalled" in self._open:
            return self._new
        limit = self.stall_limit()
        silent = now - self._last_arrival
        if silent > limit:
            step = self.last_step if self.last_step is not None else 0
            usual = self._median_interval()
            why = f"the usual interval is {_duration(usual)}" if usual > 0 else "no usual interval seen yet"
            self._hot(
                "run_stalled",
                step,
                "",
                None,
                f"no new metrics for {_duration(silent)} after step {step} ({why}; limit {_duration(limit)})",
            )
        return self._new

    def stall_limit(self) -> float:
        return max(self.t.stall_factor * self._median_interval(), self.t.stall_min_seconds)

    def active(self) -> list[Finding]:
        return [f for f in self.findings if f.active]

    def worst_active(self) -> Severity | None:
        worst: Severity | None = None
        for f in self.findings:
            if f.active and (worst is None or f.severity > worst):
                worst = f.severity
        return worst

    def worst(self) -> Severity | None:
        """The worst severity of any finding, closed ones included (the report's exit status)."""
        return max((f.severity for f in self.findings), default=None)

    # ---------------------------------------------------------------------------- episodes
    def _hot(self, key: str, step: int, metric: str, value: float | None, message: str) -> None:
        """The condition behind ``key`` (a code, or ``code:qualifier``) holds at ``step``."""
        op = self._open.get(key)
        if op is not None:
            op.cool = 0
            return
        code = key.split(":", 1)[0]
        sev, _title, advice = RULES[code]
        f = Finding(code, sev, step, metric, value, message, list(advice))
        self._open[key] = _Open(f)
        self.findings.append(f)
        self._new.append(f)
        self.generation += 1

    def _cool(self, key: str, step: int, needed: int) -> None:
        """The condition does not hold at ``step``; close after ``needed`` such observations."""
        op = self._open.get(key)
        if op is None:
            return
        op.cool += 1
        if op.cool >= needed:
            self._close(key, step)

    def _close(self, key: str, step: int) -> None:
        op = self._open.pop(key, None)
        if op is not None:
            op.finding.active = False
            op.finding.end_step = step
            self.generation += 1

    def _is_open(self, key: str) -> bool:
        return key in self._open

    # ---------------------------------------------------------------------------- timing
    def _arrived(self, now: float | None) -> None:
        if now is None:
            return
        last = self._last_arrival
        if last is not None and now > last:
            self._intervals.append(now - last)
        if last is None or now >= last:
            self._last_arrival = now

    def _median_interval(self) -> float:
        return median(list(self._intervals)) if self._intervals else 0.0

    # ---------------------------------------------------------------------------- train
    def _early(self, step: int) -> bool:
        t = self.t
        if len(self._tsteps) <= t.early_points:
            return True
        return bool(self.max_steps) and step <= t.early_fraction * (self.max_steps or 0)

    def _restart(self, step: int) -> None:
        """Steps went backwards: the run resumed from a checkpoint. Cut the timeline back."""
        self.restarts += 1
        while self._tsteps and self._tsteps[-1] >= step:
            self._tsteps.pop()
        for h in (self._loss, self._grad, self._lr, self._acc, self._ent):
            h.cut(step)
        n = len(self._loss)
        del self._ema_raw[n:]
        del self._ema[n:]
        while self._rebounds and self._rebounds[-1] >= n:
            self._rebounds.pop()
        self._ema_rise = 0
        self._rebound_prev = False
        self._loss_best = math.inf
        for j in range(self.t.smooth_points, len(self._loss) + 1):
            self._loss_best = min(self._loss_best, median(self._loss.values[j - self.t.smooth_points : j].tolist()))
        self._gx_streak = self._gw_streak = 0
        self._plateau_next = self._accslow_next = 0
        # LR state from what is left (O(n), once per restart)
        self._lr_peak = 0.0
        self._lr_low = math.inf
        self._lr_zero_run = 0
        for v in self._lr.values:
            self._lr_track(v)
        while self._evals and self._evals[-1].step >= step:
            self._evals.pop()
        self._best_eval = self._find_best_eval()
        if self._overfit_onset is not None and self._overfit_onset >= len(self._evals):
            self._overfit_onset = None

    def _train(self, rec: Record) -> None:
        t = self.t
        step = rec.step
        m = rec.metrics
        if self.last_train_step is not None and step <= self.last_train_step:
            self._restart(step)
        self.last_train_step = step
        self._tsteps.append(step)
        early = self._early(step)

        loss = m.get(LOSS)
        grad = m.get(GRAD_NORM)
        # --- non-finite values, including a NaN hidden by logging_nan_inf_filter ---------------
        bad: tuple[str, float] | None = None
        for name in (LOSS, GRAD_NORM):
            v = m.get(name)
            if v is not None and not math.isfinite(v):
                bad = (name, v)
                break
        masked = False
        if bad is None and loss == 0.0 and grad is None:
            prior = self._loss.tail(t.smooth_points)
            masked = bool(prior) and median(prior) > _ZERO_LOSS_PRIOR
        if bad is not None or masked:
            name, v = bad if bad is not None else (LOSS, 0.0)
            if name == GRAD_NORM and loss is not None and math.isfinite(loss):
                hint = (
                    f"grad_norm is {fmt(v)} at step {step} while the logged loss is {fmt(loss)}: "
                    "the loss is NaN/inf but hidden by the Trainer's logging_nan_inf_filter"
                )
            elif masked:
                hint = (
                    f"loss is exactly 0 at step {step} after {fmt(median(self._loss.tail(t.smooth_points)))}: "
                    "a NaN loss hidden by the Trainer's logging_nan_inf_filter"
                )
            else:
                hint = f"{name} is {fmt(v)} at step {step}"
            self._hot("loss_nonfinite", step, name, v, hint)
            return  # a broken record feeds no smoother and no other rule
        if (loss is not None or grad is not None) and self._is_open("loss_nonfinite"):
            self._cool("loss_nonfinite", step, t.clear_points)

        if grad is not None:
            self._grad.add(step, grad)
            self._grad_rules(step, grad, early)
        if loss is not None:
            self._loss.add(step, loss)
            self._loss_rules(step, loss, early)
        lr = m.get(LR)
        if lr is not None and math.isfinite(lr):
            self._lr.add(step, lr)
            self._lr_rules(step, lr)
        acc = m.get(TOKEN_ACC)
        if acc is not None and math.isfinite(acc):
            self._acc.add(step, acc)
            self._acc_rules(step, early)
        ent = m.get(ENTROPY)
        if ent is not None and math.isfinite(ent):
            self._ent.add(step, ent)
        if grad is not None:
            self._vanishing(step, early)

    # -- gradients ------------------------------------------------------------------------
    def _grad_rules(self, step: int, g: float, early: bool) -> None:
        t = self.t
        vals = self._grad.values
        n = len(vals)
        prev = vals[max(0, n - 1 - t.window_points) : n - 1].tolist()
        med = median(prev) if prev else math.nan
        ratio = g / med if prev and med > 0 else math.inf if prev and g > 0 else 0.0
        # streaks above each threshold, for early training (where a single value proves little)
        if g > t.grad_norm_critical:
            if self._gx_streak == 0:
                self._gx_first = g
            self._gx_streak += 1
        else:
            self._gx_streak = 0
        if g > t.grad_norm_warn:
            if self._gw_streak == 0:
                self._gw_first = g
            self._gw_streak += 1
        else:
            self._gw_streak = 0

        if early:
            # Large early grad norms are normal; a jump above the early level is not, nor is a
            # level that stays high without settling.
            jump = len(prev) >= 2 and ratio >= t.grad_spike_ratio
            explode = g > t.grad_norm_critical and (jump or (self._gx_streak >= 3 and g >= self._gx_first))
            high = g > t.grad_norm_warn and (jump or (self._gw_streak >= 3 and g >= self._gw_first))
            spike = False
        else:
            explode = g > t.grad_norm_critical
            high = g > t.grad_norm_warn
            spike = (
                len(prev) >= t.min_window_points
                and ratio >= t.grad_spike_ratio
                and modified_z(g, prev, med) > t.grad_spike_z
            )
        if explode:
            why = f" ({ratio:.1f}x the recent median {fmt(med)})" if prev and ratio >= t.grad_spike_ratio else ""
            self._hot(
                "grad_explosion",
                step,
                GRAD_NORM,
                g,
                f"grad_norm {fmt(g)} at step {step} is above the critical threshold {fmt(t.grad_norm_critical)}{why}",
            )
            if self._is_open("grad_norm_high"):
                self._hot("grad_norm_high", step, GRAD_NORM, g, "")
            return
        if self._is_open("grad_explosion") and (high or spike or g > t.grad_norm_warn):
            self._hot("grad_explosion", step, GRAD_NORM, g, "")  # still elevated: the same episode
            return
        self._cool("grad_explosion", step, t.clear_points)
        if high or spike:
            if high:
                msg = f"grad_norm {fmt(g)} at step {step} is above the warning threshold {fmt(t.grad_norm_warn)}"
            else:
                msg = (
                    f"grad_norm spike at step {step}: {fmt(g)} is {ratio:.1f}x the median {fmt(med)} "
                    f"of the last {len(prev)} points"
                )
            self._hot("grad_norm_high", step, GRAD_NORM, g, msg)
        else:
            self._cool("grad_norm_high", step, t.clear_points)

    def _vanishing(self, step: int, early: bool) -> None:
        t = self.t
        recent = self._grad.tail(t.smooth_points)
        if len(recent) < t.smooth_points or early:
            return
        med = median(recent)
        stuck = self._loss_improvement is not None and self._loss_improvement < t.plateau_min_improvement
        if med < t.grad_norm_vanishing and (stuck or not self._loss):
            imp = self._loss_improvement
            tail = "" if imp is None else f" while the loss improved only {imp * 100:.2g}% over the last window"
            self._hot(
                "grad_vanishing",
                step,
                GRAD_NORM,
                med,
                f"grad_norm median {fmt(med)} at step {step} is below {fmt(t.grad_norm_vanishing)}{tail}",
            )
        else:
            self._cool("grad_vanishing", step, t.clear_points)

    # -- loss -----------------------------------------------------------------------------
    def _loss_rules(self, step: int, x: float, early: bool) -> None:
        t = self.t
        vals = self._loss.values
        n = len(vals)
        i = n - 1
        # debiased EMA, for the divergence trend
        raw = (self._ema_raw[-1] if self._ema_raw else 0.0) * _EMA_W + (1 - _EMA_W) * x
        self._ema_raw.append(raw)
        ema = raw / (1 - _EMA_W**n)
        prev_ema = self._ema[-1] if self._ema else None
        self._ema.append(ema)
        if prev_ema is not None and ema > prev_ema:
            if self._ema_rise == 0:
                self._ema_rise_from = prev_ema
            self._ema_rise += 1
        else:
            self._ema_rise = 0

        prev = vals[max(0, i - t.window_points) : i].tolist()
        spike = False
        med = math.nan
        if len(prev) >= t.min_window_points:
            med = median(prev)
            spike = (
                x >= t.loss_spike_ratio * med
                and x - med >= t.oscillation_min_jump
                and modified_z(x, prev, med) > t.loss_spike_z
            )
        # a rebound: a jump well above the recent low (the seed's 0.3 -> 0.8 -> 0.2)
        low = min(prev[-3:]) if prev else math.nan
        rebound = bool(prev) and x >= t.oscillation_ratio * low and x - low >= t.oscillation_min_jump
        if rebound and not self._rebound_prev:
            self._rebounds.append(i)
        # before the window fills there are no robust statistics: a rebound must hold two points
        early_rise = rebound and self._rebound_prev
        self._rebound_prev = rebound
        while self._rebounds and self._rebounds[0] <= i - t.window_points:
            self._rebounds.popleft()
        diverging = self._ema_rise >= t.divergence_points and ema >= (1 + t.divergence_min_rise) * self._ema_rise_from
        few = len(prev) < t.min_window_points
        # the loss climbed back well above its best and stays there
        now = median(vals[-t.smooth_points :].tolist())
        best = self._loss_best
        elevated = n >= t.smooth_points and now >= t.oscillation_ratio * best and now - best >= t.oscillation_min_jump
        if n >= t.smooth_points and now < best:
            self._loss_best = now

        msg = ""
        if spike:
            msg = f"loss spike at step {step}: {fmt(x)} is {x / med:.2g}x the median {fmt(med)} of the last {len(prev)} points"
        elif early_rise and few:
            msg = f"loss climbed to {fmt(x)} at step {step} from {fmt(low)} instead of falling"
        elif len(self._rebounds) >= t.oscillation_rebounds:
            msg = (
                f"loss rebounded sharply {len(self._rebounds)} times in the last {min(n, t.window_points)} points "
                f"(latest {fmt(low)} -> {fmt(x)} at step {step})"
            )
        elif elevated:
            msg = (
                f"loss {fmt(now)} (median of the last {t.smooth_points}) at step {step} is "
                f"{now / best:.2g}x its best {fmt(best)}: it rebounded instead of trending down"
            )
        elif diverging:
            msg = (
                f"loss is diverging: smoothed loss rose {fmt(self._ema_rise_from)} -> {fmt(ema)} "
                f"over {self._ema_rise} points to step {step}"
            )
        if msg:
            self._hot("loss_oscillation", step, LOSS, x, msg)
        elif self._is_open("loss_oscillation") and (rebound or len(self._rebounds) >= 2 or elevated):
            self._hot("loss_oscillation", step, LOSS, x, "")  # still bouncing: the same episode
        else:
            self._cool("loss_oscillation", step, t.clear_points)
        self._plateau(step, early)

    def _lr_ok_for_plateau(self) -> bool:
        lr = self._lr.last()
        return lr is None or self._lr_peak <= 0 or lr >= self.t.plateau_lr_fraction * self._lr_peak

    def _window(self, n: int) -> int:
        t = self.t
        return max(t.plateau_points, math.ceil(t.plateau_fraction * n))

    def _plateau(self, step: int, early: bool) -> None:
        t = self.t
        vals = self._loss.values
        n = len(vals)
        w = self._window(n)
        if n < w or n < self._plateau_next:
            return
        self._plateau_next = n + max(1, w // 10)
        k = max(3, w // 3)
        win = vals[n - w : n].tolist()
        first = median(win[:k])
        last = median(win[-k:])
        imp = (first - last) / abs(first) if first != 0 else 0.0
        self._loss_improvement = imp
        # standard error of `imp` from the point-to-point noise (successive differences ignore
        # the trend): the plateau closes only on an improvement clearly beyond the noise
        d = [b - a for a, b in itertools.pairwise(win)]
        md = median(d)
        sigma = 1.4826 * median([abs(x - md) for x in d]) / math.sqrt(2)
        se = math.sqrt(2) * 1.2533 * sigma / math.sqrt(k) / abs(first) if first else 0.0
        lr_ok = self._lr_ok_for_plateau()
        # Flat, not rising: a rising loss is an instability (loss_oscillation), not a plateau.
        # ...and not just noise hiding a real improvement: its upper 2-sigma bound stays small too
        flat = -10 * t.plateau_min_improvement < imp < t.plateau_min_improvement
        flat = flat and imp + 2 * se < 3 * t.plateau_min_improvement
        # ...and at (or near) its best level: a loss stuck far above its best is unstable, not flat
        near_best = last < t.oscillation_ratio * self._loss_best
        hot = flat and last > t.plateau_min_loss and lr_ok and near_best and not early
        clear = not near_best or not (-10 * t.plateau_min_improvement < imp < 2 * t.plateau_min_improvement + 2 * se)
        clear = clear or last <= t.plateau_min_loss or not lr_ok
        self._plateau_votes = _vote(self._plateau_votes, hot, clear)
        if self._plateau_votes == 1:
            self._plateau_since = n
        # ...while the window slid by half its length: two checks a point apart are one sample
        if self._plateau_votes >= _PLATEAU_CONFIRM and n - self._plateau_since >= w // 2:
            self._hot(
                "loss_plateau",
                int(self._loss.steps[n - w]),
                LOSS,
                last,
                f"loss barely moved over the last {w} points (steps {self._loss.steps[n - w]}-{step}): "
                f"{fmt(first)} -> {fmt(last)} ({-imp * 100:+.2g}%)",
            )
        elif self._plateau_votes <= -t.clear_points:
            self._close("loss_plateau", step)

    # -- accuracy -------------------------------------------------------------------------
    def _acc_rules(self, step: int, early: bool) -> None:
        t = self.t
        span = max(t.smooth_points, t.window_points // 2)
        recent = self._acc.tail(span)
        if len(recent) < span:
            return
        now = median(recent)
        if not early and now > self._acc_best:
            self._acc_best = now
        if not early and self._acc_best - now > t.accuracy_drop:
            self._hot(
                "accuracy_drop:train",
                step,
                TOKEN_ACC,
                now,
                f"token accuracy {fmt(now)} at step {step} is {fmt(self._acc_best - now)} below its best {fmt(self._acc_best)}",
            )
        else:
            self._cool("accuracy_drop:train", step, t.clear_points)
        # slow accuracy gain, judged like the loss plateau
        vals = self._acc.values
        n = len(vals)
        w = 2 * self._window(n)
        if n < w or n < self._accslow_next:
            return
        self._accslow_next = n + max(1, w // 10)
        k = max(5, w // 4)
        first = median(vals[n - w : n - w + k].tolist())
        last = median(vals[n - k : n].tolist())
        gain = last - first
        lr_ok = self._lr_ok_for_plateau()
        # A slow gain, not a fall: a falling accuracy is accuracy_drop's business.
        flat = -t.accuracy_drop / 2 < gain < t.accuracy_slow_gain
        hot = flat and last < t.accuracy_slow_ceiling and lr_ok and not early
        clear = gain >= 2 * t.accuracy_slow_gain or gain <= -t.accuracy_drop / 2
        clear = clear or last >= t.accuracy_slow_ceiling or not lr_ok
        self._accslow_votes = _vote(self._accslow_votes, hot, clear)
        if self._accslow_votes == 1:
            self._accslow_since = n
        if self._accslow_votes >= _PLATEAU_CONFIRM and n - self._accslow_since >= w // 2:
            self._hot(
                "accuracy_slow",
                int(self._acc.steps[n - w]),
                TOKEN_ACC,
                last,
                f"token accuracy rose only {fmt(first)} -> {fmt(last)} over the last {w} points (to step {step})",
            )
        elif self._accslow_votes <= -t.clear_points:
            self._close("accuracy_slow", step)

    # -- learning rate --------------------------------------------------------------------
    def _lr_track(self, lr: float) -> None:
        if lr > self._lr_peak:
            self._lr_peak = lr
            self._lr_low = lr
        elif lr < self._lr_low:
            self._lr_low = lr
        if self._lr_peak > 0 and lr <= self.t.lr_zero_fraction * self._lr_peak:
            self._lr_zero_run += 1
        else:
            self._lr_zero_run = 0

    def _lr_rules(self, step: int, lr: float) -> None:
        t = self.t
        vals = self._lr.values
        n = len(vals)
        prev = vals[-2] if n >= 2 else None
        low_before = self._lr_low
        peak_before = self._lr_peak
        self._lr_track(lr)
        peak = self._lr_peak
        rising = prev is not None and lr > prev * (1 + 1e-6)
        ms = self.max_steps
        before_end = bool(ms) and step < t.lr_end_fraction * (ms or 0)
        sat_at_zero = self._lr_zero_run >= max(5, math.ceil(0.1 * n))  # long after the LR hit 0

        if lr > t.lr_max:
            self._hot("lr_too_large", step, LR, lr, f"learning_rate {fmt(lr)} at step {step} is above {fmt(t.lr_max)}")
        else:
            self._cool("lr_too_large", step, t.clear_points)

        small = False
        why = ""
        if lr < t.lr_min and prev is not None and not rising:
            if peak < t.lr_min:
                small, why = True, f" and never was higher than {fmt(peak)}: the model can barely learn"
            elif ms:
                small, why = before_end, f", long before the schedule's end (max_steps {ms})"
            else:
                small, why = sat_at_zero, f" and has stayed there for {self._lr_zero_run} points while training goes on"
        if small:
            self._hot(
                "lr_too_small", step, LR, lr, f"learning_rate {fmt(lr)} at step {step} is below {fmt(t.lr_min)}{why}"
            )
        else:
            self._cool("lr_too_small", step, t.clear_points)

        sched = ""
        if peak_before > 0 and rising and low_before < 0.99 * peak_before and lr > 1.1 * low_before:
            sched = (
                f"learning_rate rose again at step {step} ({fmt(low_before)} -> {fmt(lr)}) after decaying "
                f"from its peak {fmt(peak_before)}"
            )
        elif (
            peak >= t.lr_min
            and lr <= t.lr_zero_fraction * peak
            and not rising
            and (before_end or (not ms and sat_at_zero))
        ):
            where = f"at step {step} of {ms}" if ms else f"for {self._lr_zero_run} points up to step {step}"
            sched = f"learning_rate reached ~0 ({fmt(lr)}, peak {fmt(peak)}) {where}: the schedule ended early"
        if sched:
            self._hot("lr_schedule", step, LR, lr, sched)
        else:
            self._cool("lr_schedule", step, t.clear_points)

    # ---------------------------------------------------------------------------- eval
    def _train_now(self, h: _Hist) -> float | None:
        recent = h.tail(self.t.smooth_points)
        return median(recent) if recent else None

    def _find_best_eval(self) -> int:
        best = -1
        for i, e in enumerate(self._evals):
            if best < 0 or e.smooth < self._evals[best].smooth:
                best = i
        return best

    def _eval_noise(self) -> float:
        """Robust sigma of the eval loss from successive differences (a steady trend adds none)."""
        ev = self._evals[-_EVAL_NOISE_SPAN:]
        if len(ev) < 4:
            return 0.0
        d = [b.loss - a.loss for a, b in itertools.pairwise(ev)]
        md = median(d)
        return 1.4826 * median([abs(x - md) for x in d]) / math.sqrt(2)

    def _eval(self, rec: Record) -> None:
        t = self.t
        step = rec.step
        m = rec.metrics
        el = m.get(EVAL_LOSS)
        while self._evals and self._evals[-1].step >= step:
            self._evals.pop()  # re-logged after a resume: the newest value wins
            self._best_eval = -2
            if self._overfit_onset is not None and self._overfit_onset >= len(self._evals):
                self._overfit_onset = None
        if self._best_eval == -2:
            self._best_eval = self._find_best_eval()
        if el is None:
            return
        if not math.isfinite(el):
            self._hot("loss_nonfinite", step, EVAL_LOSS, el, f"eval_loss is {fmt(el)} at step {step}")
            return
        acc = _finite(m.get(EVAL_TOKEN_ACC))
        ent = _finite(m.get(EVAL_ENTROPY))
        sps = _finite(m.get(EVAL_SAMPLES_PER_SECOND))
        rt = _finite(m.get(EVAL_RUNTIME))
        speed = sps if sps is not None and sps > 0 else (1.0 / rt if rt else None)
        # train loss "now": only once it is past early training and has a few points
        raw = self._train_now(self._loss)
        tl = raw if len(self._loss) >= t.smooth_points else None
        if tl is not None and self.last_train_step is not None and self._early(self.last_train_step):
            tl = None
        ratio = el / tl if tl is not None and tl > 0 else None
        e = _Eval(step, el, acc, ent, speed, tl, raw, self._train_now(self._ent), ratio)
        prev = self._evals[-1] if self._evals else None
        self._evals.append(e)
        e.smooth = median([x.loss for x in self._evals[-_EVAL_SMOOTH:]])
        i = len(self._evals) - 1
        new_best = self._best_eval < 0 or e.smooth < self._evals[self._best_eval].smooth
        if new_best:
            self._best_eval = i
        self._overfitting(e, prev, new_best)
        self._eval_accuracy(e)
        self._entropy_gap(e)
        self._eval_speed(e)

    def _overfitting(self, e: _Eval, prev: _Eval | None, new_best: bool) -> None:
        t = self.t
        step = e.step
        if new_best:
            self._close("overfitting", step)
            self._close("overfitting_severe", step)
            self._overfit_onset = None
            return
        # Judged on the median of the last few evals, against the best such median, and only when
        # the rise is larger than the eval loss's own noise: a small eval set makes eval_loss
        # jitter, and one lucky eval must not make every later one look like a rise.
        best = self._evals[self._best_eval]
        since = len(self._evals) - 1 - self._best_eval
        rise = (e.smooth - best.smooth) / best.smooth if best.smooth > 0 else 0.0
        # train loss falling (or at least not rising: a noisy median must not veto the rule)
        train_falling = e.train_raw is not None and best.train_raw is not None and e.train_raw <= 1.02 * best.train_raw
        rising = (
            since >= t.overfit_patience
            and rise >= t.overfit_min_rise
            and e.smooth - best.smooth > 3 * self._eval_noise()
            and all(x.loss > best.smooth for x in self._evals[-t.overfit_patience :])
            and prev is not None
            and e.loss >= prev.loss
            and train_falling
        )
        # The ratio alone must hold on two consecutive evals: the first eval(s) come while the
        # train loss is still high and noisy, and one eval is one sample.
        gap_ok = e.train_loss is not None and e.loss - e.train_loss >= t.loss_gap_min
        ratio_hot = (
            e.ratio is not None
            and e.ratio > t.loss_gap_ratio
            and gap_ok
            and prev is not None
            and prev.ratio is not None
            and prev.ratio > t.loss_gap_ratio
        )
        was_open = self._is_open("overfitting")
        if rising:
            self._hot(
                "overfitting",
                step,
                EVAL_LOSS,
                e.loss,
                f"eval_loss rose for {since} evals: {fmt(e.loss)} at step {step}, {rise * 100:.2g}% above its best "
                f"level {fmt(best.smooth)} (step {best.step}), while train loss "
                f"{'fell' if (e.train_raw or 0.0) < (best.train_raw or 0.0) else 'held'} "
                f"{fmt(best.train_raw)} -> {fmt(e.train_raw)}",
            )
        elif ratio_hot:
            self._hot(
                "overfitting",
                step,
                EVAL_LOSS,
                e.loss,
                f"eval_loss {fmt(e.loss)} is {e.ratio or 0:.2g}x the train loss {fmt(e.train_loss)} at step {step} "
                f"(limit {fmt(t.loss_gap_ratio)}x)",
            )
        else:
            self._cool("overfitting", step, t.clear_evals)
        if not self._is_open("overfitting"):
            self._overfit_onset = None
        elif not was_open:
            self._overfit_onset = len(self._evals) - 1

        severe = ""
        if e.train_loss is not None and e.train_loss <= t.severe_train_loss and e.loss >= t.severe_eval_loss:
            severe = (
                f"train loss {fmt(e.train_loss)} is tiny while eval_loss is {fmt(e.loss)} at step {step}: "
                "the model memorises the training set"
            )
        elif (rising or ratio_hot) and (fall := self._gap_widening_acc_falling()) is not None:
            o = self._evals[self._overfit_onset or 0]
            severe = (
                f"the train/eval loss gap keeps widening ({fmt(_gap(o))} at step {o.step} -> {fmt(_gap(e))} at "
                f"step {step}) while eval accuracy falls ({fmt(fall[0])} -> {fmt(fall[1])})"
            )
        if severe:
            self._hot("overfitting_severe", step, EVAL_LOSS, e.loss, severe)
        else:
            self._cool("overfitting_severe", step, t.clear_evals)

    def _gap_widening_acc_falling(self) -> tuple[float, float] | None:
        """Since the overfitting episode began: the train/eval gap kept widening over the last
        ``overfit_patience`` evals and the eval accuracy (median of 3 evals, now vs at the onset)
        fell by at least a point. Returns (accuracy then, accuracy now)."""
        k = self.t.overfit_patience
        ev = self._evals
        o = self._overfit_onset
        if o is None or len(ev) - 1 - o < k:
            return None
        gaps = [_gap(x) for x in ev[-(k + 1) :]]
        onset_gap = _gap(ev[o])
        if onset_gap is None or any(g is None for g in gaps):
            return None
        widening = all((b or 0.0) > (a or 0.0) for a, b in itertools.pairwise(gaps)) and (gaps[-1] or 0.0) > onset_gap
        then = [x.acc for x in ev[max(0, o - 2) : o + 1] if x.acc is not None]
        now = [x.acc for x in ev[-3:] if x.acc is not None]
        if not widening or len(then) < 2 or len(now) < 2:
            return None
        a0, a1 = median(then), median(now)
        return (a0, a1) if a0 - a1 >= _ACC_FALL else None

    def _eval_accuracy(self, e: _Eval) -> None:
        t = self.t
        if e.acc is None:
            return
        if e.acc > self._eval_acc_best:
            self._eval_acc_best = e.acc
        drop = self._eval_acc_best - e.acc
        if drop > t.accuracy_drop:
            self._hot(
                "accuracy_drop:eval",
                e.step,
                EVAL_TOKEN_ACC,
                e.acc,
                f"eval token accuracy {fmt(e.acc)} at step {e.step} is {fmt(drop)} below its best {fmt(self._eval_acc_best)}",
            )
        else:
            self._cool("accuracy_drop:eval", e.step, t.clear_evals)

    def _entropy_gap(self, e: _Eval) -> None:
        t = self.t
        if e.entropy is None or e.train_entropy is None or e.train_entropy <= 0:
            return
        if self._early(self.last_train_step or 0):
            return
        gap = (e.entropy - e.train_entropy) / e.train_entropy
        if abs(gap) > t.entropy_gap:
            self._hot(
                "entropy_gap",
                e.step,
                EVAL_ENTROPY,
                e.entropy,
                f"eval entropy {fmt(e.entropy)} differs from train entropy {fmt(e.train_entropy)} by {gap * 100:+.0f}% "
                f"at step {e.step} (limit {t.entropy_gap * 100:.0f}%)",
            )
        else:
            self._cool("entropy_gap", e.step, t.clear_evals)

    def _eval_speed(self, e: _Eval) -> None:
        t = self.t
        if e.speed is None:
            return
        speeds = [x.speed for x in self._evals[-(t.window_points + 1) : -1] if x.speed is not None]
        if len(speeds) < 3:
            return
        med = median(speeds)
        slow = e.speed < t.eval_slowdown_ratio * med
        was_slow, self._eval_slow = self._eval_slow, slow
        if slow and was_slow:
            self._hot(
                "eval_slowdown",
                e.step,
                EVAL_SAMPLES_PER_SECOND,
                e.speed,
                f"evaluation throughput {fmt(e.speed)} samples/s at step {e.step} is below "
                f"{t.eval_slowdown_ratio:.0%} of its usual {fmt(med)} for 2 evals in a row",
            )
        elif not slow:
            self._cool("eval_slowdown", e.step, t.clear_evals)

    # ---------------------------------------------------------------------------- views
    def train_loss_now(self) -> float | None:
        """The smoothed current train loss (median of the last ``smooth_points``)."""
        return self._train_now(self._loss)

    def loss_improvement(self) -> float | None:
        """Relative loss improvement over the latest plateau window (None before one fits)."""
        return self._loss_improvement

    def lr_peak(self) -> float | None:
        return self._lr_peak if self._lr_peak > 0 else None


def _vote(votes: int, hot: bool, clear: bool) -> int:
    if hot:
        return votes + 1 if votes > 0 else 1
    if clear:
        return votes - 1 if votes < 0 else -1
    return 0


def _gap(e: _Eval) -> float | None:
    return None if e.train_loss is None else e.loss - e.train_loss


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
