"""The assessment: the seed's "your log analysis", produced for the user's run.

Per metric: the latest value, its status against the seed's normal ranges and a note. Train vs
eval: loss gap in %, accuracy gap in points, entropy gap in %, each judged. Then an overall
verdict with positive signals and cautions, and the best checkpoint (lowest eval_loss, ties to the
higher eval token accuracy, never the lowest train loss) mapped to its ``checkpoint-N`` directory.

Noisy per-step metrics are judged on the median of the last ``smooth_points`` logged values (the
value shown is still the latest); train values compared with an eval are taken at that eval's step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from . import codes as C
from .checkpoints import best_checkpoint as best_checkpoint  # (report.py takes it from here)
from .checkpoints import best_without_path
from .config import Thresholds
from .diagnose import Diagnoser, Finding, Severity, fmt, json_value, median, title
from .diagnose.episodes import LOWER_LR, RAISE_LR, RULES
from .diagnose.rules.impossible import NEGATIVE as NEGATIVE_LOSS
from .i18n import N_, _
from .metrics import (
    CROSS_ENTROPY_RANGES,
    ENTROPY,
    EVAL_ENTROPY,
    EVAL_LOSS,
    EVAL_TOKEN_ACC,
    GRAD_NORM,
    LOSS,
    LR,
    NORMAL_RANGES,
    TOKEN_ACC,
    label,
)
from .objective import Objective
from .query import best_eval, lr_direction, smoothed_at
from .records import Kind
from .series import RunData

# statuses, best first
GOOD, OK, WATCH, HIGH, LOW, CRITICAL, NA = "good", "ok", "watch", "high", "low", "critical", "n/a"
# ... as a report shows them (the JSON keeps the words above)
STATUS_WORDS = {
    GOOD: N_("good"), OK: N_("ok"), WATCH: N_("watch"), HIGH: N_("high"), LOW: N_("low"),
    CRITICAL: N_("critical"), NA: N_("n/a"),
}
# the compared items in a sentence
_ITEM_WORDS = {"token_accuracy": N_("token accuracy"), "entropy": N_("entropy"), "loss": N_("loss")}


def status_word(status: str) -> str:
    return _(STATUS_WORDS[status]) if status in STATUS_WORDS else status


@dataclass
class MetricRow:
    metric: str
    value: float | None  # latest logged value
    status: str
    note: str

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "value": json_value(self.value), "status": self.status, "note": self.note}


@dataclass
class CompareRow:
    item: str  # "loss", "token_accuracy", "entropy"
    train: float | None
    eval: float | None
    diff: float | None  # % for loss and entropy, points for accuracy
    unit: str  # "%" or "pts"
    status: str
    judgement: str

    @property
    def diff_text(self) -> str:
        if self.diff is None:
            return _("n/a")
        return f"{self.diff:+.1f}%" if self.unit == "%" else _("{diff:+.1f} pts").format(diff=self.diff)

    def to_dict(self) -> dict[str, object]:
        return {
            "item": self.item,
            "train": json_value(self.train),
            "eval": json_value(self.eval),
            "diff": self.diff_text,  # "+80.0%", "-2.8 pts"
            "diff_value": json_value(self.diff),
            "unit": self.unit,
            "status": self.status,
            "judgement": self.judgement,
        }


@dataclass
class Assessment:
    step: int | None
    metrics: list[MetricRow] = field(default_factory=list)
    comparison: list[CompareRow] = field(default_factory=list)
    comparison_step: int | None = None  # the eval the comparison is made at
    status: str = NA  # overall: good, watch or critical
    verdict: str = ""
    positives: list[str] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)
    best_checkpoint: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "metrics": [m.to_dict() for m in self.metrics],
            "comparison_step": self.comparison_step,
            "comparison": [c.to_dict() for c in self.comparison],
            "status": self.status,
            "verdict": self.verdict,
            "positives": list(self.positives),
            "cautions": list(self.cautions),
            "best_checkpoint": self.best_checkpoint,
        }


# ------------------------------------------------------------------------------------------------


def _latest(data: RunData, metric: str) -> tuple[int, float] | None:
    s = data.get(metric)
    if s is None or not len(s):
        return None
    return s.steps[-1], s.values[-1]


def _smoothed(data: RunData, metric: str, n: int, until: int | None = None) -> float | None:
    return smoothed_at(data.get(metric), n, until)


def _range(metric: str) -> tuple[float, float]:
    """The seed's normal range of a metric judged against both its ends."""
    lo, hi = NORMAL_RANGES[metric]
    assert lo is not None and hi is not None
    return lo, hi


def _range_text(metric: str) -> str:
    lo, hi = NORMAL_RANGES.get(metric, (None, None))
    return f"{fmt(lo)}-{fmt(hi)}"


@dataclass(frozen=True)
class _Env:
    """What a judgement reads besides the value: the thresholds, the diagnosis, the data."""

    t: Thresholds
    diag: Diagnoser
    data: RunData

    @property
    def objective(self) -> Objective:
        return self.diag.objective


_Judgement = tuple[str, str]  # (status, note)


def _judge_loss(metric: str, v: float, env: _Env) -> _Judgement:
    lo, hi = _range(LOSS)
    if v == 0.0:
        zero = _zero_loss(env)
        if zero is not None:
            return zero
    if v < NEGATIVE_LOSS:
        return CRITICAL, _("negative: impossible for a cross-entropy loss (see impossible loss)")
    if v < lo:
        return LOW, _("below {lo}: the model may be memorising the training set").format(lo=lo)
    if v <= env.t.loss_good:
        return GOOD, _("a very good level for SFT")
    if v <= hi:
        return OK, _("within the normal {lo}-{hi}").format(lo=lo, hi=hi)
    return HIGH, _("above the usual {lo}-{hi} (normal early in training or on hard data)").format(lo=lo, hi=hi)


def _zero_loss(env: _Env) -> _Judgement | None:
    """A (smoothed) loss of 0 that is no memorising: nothing in the loss from the start, no
    gradient either (no token counts), or the Trainer's NaN printed as 0. None: a loss that came
    down to 0 at the printed precision, with a gradient still flowing (memorising)."""
    diag = env.diag
    if any(f.code == C.NOTHING_TRAINED for f in diag.findings):
        return CRITICAL, _("exactly 0: no token counts in the loss (labels all masked?), nothing is trained")
    if any(f.active and f.code == C.LOSS_NONFINITE and f.metric == LOSS for f in diag.findings):
        return CRITICAL, _("exactly 0: a NaN/inf loss printed as 0 by the Trainer (see NaN/inf in training)")
    grad = _latest(env.data, GRAD_NORM)
    if grad is not None and grad[1] == 0.0:
        return CRITICAL, _("exactly 0 with grad_norm 0: no token counts in the loss (labels all masked?)")
    return None


def _judge_eval_loss(metric: str, v: float, env: _Env) -> _Judgement:
    t, data = env.t, env.data
    tl = _smoothed(data, LOSS, t.smooth_points, _latest_step(data, EVAL_LOSS))
    if tl is None or tl <= 0:
        return OK, _("no train loss to compare with")
    r = v / tl
    if r > t.loss_gap_ratio:
        return HIGH, _("{r:.2g}x the train loss: overfitting").format(r=r)
    if r - 1 > t.loss_gap_warn:
        return WATCH, _("{r:.2g}x the train loss: a large gap").format(r=r)
    return GOOD, _("close to the train loss (usually slightly above it)")


def _judge_grad(metric: str, v: float, env: _Env) -> _Judgement:
    t = env.t
    # (the learning rate is named only when the run's findings point that way: see _judge_lr)
    lower = env.diag.lr_direction < 0
    if v > t.grad_norm_critical:
        return CRITICAL, _("above {grad_norm_critical}: gradient explosion").format(grad_norm_critical=fmt(t.grad_norm_critical))
    if v > t.grad_norm_warn:
        text = _("above {grad_norm_warn}: lower the learning rate?") if lower else _("above {grad_norm_warn}: keep watching it")
        return HIGH, text.format(grad_norm_warn=fmt(t.grad_norm_warn))
    if v >= t.grad_norm_watch * t.grad_norm_warn:
        if not lower:
            return WATCH, _("slightly high: keep watching it")
        return WATCH, _("slightly high: keep watching it; the learning rate may need lowering")
    if v < t.grad_norm_vanishing:
        return LOW, _("below {grad_norm_vanishing}: vanishing gradients?").format(grad_norm_vanishing=fmt(t.grad_norm_vanishing))
    if v < _range(GRAD_NORM)[0]:
        return LOW, _("below the usual {grad_norm} (common with LoRA; fine while the loss falls)").format(
            grad_norm=_range_text(GRAD_NORM)
        )
    return GOOD, _("stable, within {grad_norm}").format(grad_norm=_range_text(GRAD_NORM))


def _judge_lr(metric: str, v: float, env: _Env) -> _Judgement:
    """The learning rate's row says the run's one LR direction, which the findings set (the LR
    rules need evidence of instability, know where the schedule is and stay quiet in warmup):
    against a range of its own it told runs at 3e-3 "probably too large" that the rules had
    found stable, and could say "too small" beside a finding's "lower the learning rate"."""
    t, diag = env.t, env.diag
    shape = _lr_shape(env.data, diag)
    direction = diag.lr_direction
    if direction:
        names = _(", ").join(_lr_sayers(diag, direction))
        # high or low when the LR rules found the LR itself wrong; "watch" when another finding's
        # advice (a plateau, a gradient explosion) is what moves it
        said = {f.code for f in diag.findings} & {C.LR_TOO_LARGE, C.LR_TOO_SMALL}
        if direction < 0:
            st = HIGH if said else WATCH
            return st, _("the findings advise lowering it ({names}; {shape})").format(names=names, shape=shape)
        st = LOW if said else WATCH
        return st, _("the findings advise raising it ({names}; {shape})").format(names=names, shape=shape)
    if v > t.lr_max:
        return OK, _("above {lr_max}, but the run shows no instability ({shape})").format(
            lr_max=fmt(t.lr_max), shape=shape
        )
    if v >= t.lr_min:
        return OK, shape
    ms = diag.max_steps
    peak = diag.lr_peak() or 0.0
    if (ms and (env.data.last_step or 0) >= t.lr_end_fraction * ms) or peak >= t.lr_min:
        # (a peak that was a real LR: what is near zero now is the schedule's end, max_steps known or not)
        return OK, _("near zero at the end of the schedule ({shape})").format(shape=shape)
    return OK, _("below {lr_min}, with no finding that points to a change ({shape})").format(lr_min=fmt(t.lr_min), shape=shape)


def _lr_sayers(diag: Diagnoser, direction: int) -> list[str]:
    """The titles of the findings whose advice moves the learning rate in ``direction``."""
    word = LOWER_LR if direction < 0 else RAISE_LR
    return list(dict.fromkeys(title(f.code) for f in diag.findings if word in RULES[f.code][2]))


def _judge_entropy(metric: str, v: float, env: _Env) -> _Judgement:
    lo, hi = _range(metric)
    if v < lo:
        loss = _loss_beside(metric, env)
        if loss is not None and loss > _range(LOSS)[1]:
            # certain of the wrong tokens: a model that collapsed, not one that learnt its data
            return LOW, _("below {lo} with the loss at {loss}: confidently wrong (collapsed predictions?)").format(
                lo=lo, loss=fmt(loss)
            )
        return LOW, _("below {lo}: very confident predictions (memorising?)").format(lo=lo)
    if v > hi:
        return HIGH, _("above {hi}: very uncertain predictions (normal early in training)").format(hi=hi)
    return GOOD, _("moderate prediction uncertainty")


def _loss_beside(metric: str, env: _Env) -> float | None:
    """The loss judged beside an entropy: the latest eval's, or the train loss's recent median."""
    if metric == EVAL_ENTROPY:
        last = _latest(env.data, EVAL_LOSS)
        return last[1] if last is not None else None
    return _smoothed(env.data, LOSS, env.t.smooth_points)


def _judge_token_acc(metric: str, v: float, env: _Env) -> _Judgement:
    t = env.t
    lo, hi = _range(metric)
    if v > hi:
        return WATCH, _("above {hi}: near-perfect, check for memorisation").format(hi=fmt(hi))
    if v >= t.accuracy_excellent:
        return GOOD, _("excellent ({accuracy_excellent:.0%}+)").format(accuracy_excellent=t.accuracy_excellent)
    if v >= t.accuracy_very_good:
        return GOOD, _("very good ({accuracy_very_good:.0%}+)").format(accuracy_very_good=t.accuracy_very_good)
    if v >= lo:
        return OK, _("within the normal {metric}").format(metric=_range_text(metric))
    return LOW, _("below the usual {metric}").format(metric=_range_text(metric))


_JUDGES: dict[str, Callable[[str, float, _Env], _Judgement]] = {
    LOSS: _judge_loss,
    EVAL_LOSS: _judge_eval_loss,
    GRAD_NORM: _judge_grad,
    LR: _judge_lr,
    ENTROPY: _judge_entropy,
    EVAL_ENTROPY: _judge_entropy,
    TOKEN_ACC: _judge_token_acc,
    EVAL_TOKEN_ACC: _judge_token_acc,
}

# What the rows judged against the seed's cross-entropy ranges (metrics.CROSS_ENTROPY_RANGES)
# say instead for the other objectives (the per-metric note where one says more).
_RL_ONLY_ROWS = frozenset({EVAL_LOSS})  # (a preference eval loss compares with its train loss)
_NOT_JUDGED: dict[tuple[Objective, str], str] = {
    (Objective.PREFERENCE, LOSS): N_("a preference loss (ln 2 = 0.693 at the start): no cross-entropy range applies"),
    (Objective.RL, LOSS): N_("a policy loss: its level says little, and below 0 is normal"),
}
_NOT_JUDGED_OTHER = N_("not judged: the normal ranges are for SFT (cross-entropy) runs")


def _judge_metric(metric: str, v: float, env: _Env) -> _Judgement:
    """(status, note) for one metric's (smoothed) value."""
    objective = env.objective
    if not objective.cross_entropy and (
        metric in CROSS_ENTROPY_RANGES or (objective is Objective.RL and metric in _RL_ONLY_ROWS)
    ):
        return NA, _(_NOT_JUDGED.get((objective, metric), _NOT_JUDGED_OTHER))
    judge = _JUDGES.get(metric)
    return judge(metric, v, env) if judge is not None else (NA, "")


def _latest_step(data: RunData, metric: str) -> int | None:
    s = data.get(metric)
    return s.steps[-1] if s is not None and len(s) else None


_LR_DECAYED = 0.5  # a flat LR below this share of its peak rests where a decay left it
_LR_SHAPE_POINTS = 6  # what the schedule does now: the first against the last of this many newest LRs


def _lr_shape(data: RunData, diag: Diagnoser) -> str:
    s = data.get(LR)
    if s is None or len(s) < 2:
        return _("too few points to see the schedule")
    vals = [v for v in s.values[-_LR_SHAPE_POINTS:] if math.isfinite(v)]
    peak = diag.lr_peak()
    if len(vals) < 2:
        return _("schedule unknown")
    direction = lr_direction(vals[0], vals[-1])
    if direction > 0:
        return _("warming up")
    if direction < 0:
        if peak and vals[-1] < peak:
            return _("decaying as expected, now {value:.2%} of its peak {peak}").format(value=vals[-1] / peak, peak=fmt(peak))
        return _("decaying")
    if peak and vals[-1] < _LR_DECAYED * peak:
        # flat now, far below where it was: a schedule that decayed to its floor (llm.c and
        # nanoGPT decay to 0 or a tenth and hold), not a constant LR
        return _("decayed from its peak {peak} and holding at {value}").format(peak=fmt(peak), value=fmt(vals[-1]))
    return _("constant")



_ROWS = (LOSS, GRAD_NORM, LR, ENTROPY, TOKEN_ACC, EVAL_LOSS, EVAL_ENTROPY, EVAL_TOKEN_ACC)
_NOISY = (LOSS, GRAD_NORM, ENTROPY, TOKEN_ACC)
# A noisy metric is judged on its recent median; the note shows that median when it differs from
# the latest value (the one shown) by more than this fraction, so the judgement does not look
# wrong beside the value. Presentation only: it changes no status.
_SHOW_MEDIAN = 0.1


def assess(
    data: RunData,
    diagnoser: Diagnoser,
    thresholds: Thresholds | None = None,
    log_path: str | None = None,
) -> Assessment:
    """The seed's log status evaluation for this run as it is now."""
    t = thresholds if thresholds is not None else diagnoser.t
    env = _Env(t, diagnoser, data)
    out = Assessment(step=data.last_step)
    statuses: dict[str, tuple[str, float | None]] = {}
    broken_train = _broken_at(data, (LOSS, GRAD_NORM), diagnoser)
    broken_eval = _broken_at(data, (EVAL_LOSS,), diagnoser)
    for m in _ROWS:
        last = _latest(data, m)
        if last is None:
            continue
        row = _row(m, *last, broken_eval if m.startswith("eval_") else broken_train, env)
        out.metrics.append(row)
        statuses[m] = (row.status, row.value)

    if diagnoser.objective is not Objective.RL:  # (an RL trainer's eval loss is no generalisation test)
        _compare(out, data, t, bool(broken_train))
    if any(f.code in (C.OVERFITTING, C.OVERFITTING_SEVERE) for f in diagnoser.findings):
        # a gap that is small at the latest eval does not mean the run generalises when eval_loss
        # rose from its best: the row must not read as the opposite of the finding
        for c in out.comparison:
            if c.status == GOOD and c.item in ("loss", "token_accuracy"):
                c.status, c.judgement = OK, _("a small gap now, but eval_loss rose from its best (overfitting)")
        for row in out.metrics:
            if row.status == GOOD and row.metric == EVAL_LOSS:
                row.status, row.note = OK, _("a small gap now, but eval_loss rose from its best (overfitting)")
                statuses[EVAL_LOSS] = (OK, row.value)
    _verdict(out, _View.of(out, env, statuses))
    out.best_checkpoint = best_checkpoint(data, log_path) if log_path else best_without_path(data)
    return out


def _row(m: str, step: int, v: float, broken: set[int], env: _Env) -> MetricRow:
    """The row of metric ``m``, whose latest value is ``v`` at ``step``."""
    if not math.isfinite(v):
        return MetricRow(m, v, CRITICAL, _("{v} at step {step}").format(v=fmt(v), step=step))
    if m != LR and step in broken:
        return MetricRow(
            m, v, CRITICAL, _("meaningless: logged at step {step} while the loss is NaN/inf").format(step=step)
        )
    judged = _smoothed(env.data, m, env.t.smooth_points) if m in _NOISY else v
    judged = v if judged is None else judged
    status, note = _judge_metric(m, judged, env)
    if m in _NOISY and status != NA and abs(judged - v) > _SHOW_MEDIAN * abs(v):
        note += _(" (recent median {judged})").format(judged=fmt(judged))
    return MetricRow(m, v, status, note)


def _broken_at(data: RunData, metrics: tuple[str, ...], diag: Diagnoser) -> set[int]:
    """Latest steps at which one of ``metrics`` is non-finite (values logged beside it are junk)."""
    out: set[int] = set()
    for m in metrics:
        last = _latest(data, m)
        if last is not None and not math.isfinite(last[1]):
            out.add(last[0])
    if out or LOSS not in metrics:
        return out
    # logging_nan_inf_filter: a loss of exactly 0 logged with a NaN grad_norm, or (no grad_norm
    # logged) one the diagnoser read as a masked NaN: it holds a NaN/inf episode open
    loss, grad = _latest(data, LOSS), _latest(data, GRAD_NORM)
    if loss is None or loss[1] != 0.0:
        return out
    if grad is not None and loss[0] == grad[0] and not math.isfinite(grad[1]):
        out.add(loss[0])
    elif any(f.active and f.code == C.LOSS_NONFINITE and f.metric == LOSS for f in diag.findings):
        out.add(loss[0])
    return out


def _compare(out: Assessment, data: RunData, t: Thresholds, broken: bool) -> None:
    ev = _latest(data, EVAL_LOSS)
    if ev is None:
        return
    step = ev[0]
    out.comparison_step = step
    if not math.isfinite(ev[1]) or broken:
        last_train = _latest(data, LOSS)
        out.comparison.append(
            CompareRow(
                "loss",
                last_train[1] if last_train else None,
                ev[1],
                None,
                "%",
                CRITICAL,
                _("no comparison: training is NaN/inf") if broken else _("no comparison: eval_loss is NaN/inf"),
            )
        )
        return
    for compare in (_compare_loss, _compare_accuracy, _compare_entropy):
        row = compare(data, step, ev[1], t)
        if row is not None:
            out.comparison.append(row)


def _compare_loss(data: RunData, step: int, el: float, t: Thresholds) -> CompareRow | None:
    tl = _smoothed(data, LOSS, t.smooth_points, step)
    if tl is None or tl <= 0 or not math.isfinite(el):
        return None
    d = (el - tl) / tl * 100
    if d > (t.loss_gap_ratio - 1) * 100:
        st, j = HIGH, _("overfitting")
    elif d > t.loss_gap_warn * 100:
        st, j = WATCH, _("mild overfitting")
    elif d > t.loss_gap_close * 100:
        st, j = OK, _("a normal gap")
    elif d >= -t.loss_gap_close * 100:
        st, j = GOOD, _("generalising well")
    else:
        st, j = OK, _("eval below train (normal early on, or with dropout)")
    return CompareRow("loss", tl, el, d, "%", st, j)


def _compare_accuracy(data: RunData, step: int, el: float, t: Thresholds) -> CompareRow | None:
    ea = _value_at_or_none(data, EVAL_TOKEN_ACC, step)
    ta = _smoothed(data, TOKEN_ACC, t.smooth_points, step)
    if ea is None or ta is None:
        return None
    d = (ea - ta) * 100
    if d >= -t.accuracy_gap_warn * 100:
        st, j = GOOD, _("generalising well")
    elif d >= -t.accuracy_drop * 100:
        st, j = WATCH, _("eval accuracy lags train: early sign of overfitting")
    else:
        st, j = HIGH, _("a large accuracy gap: overfitting")
    return CompareRow("token_accuracy", ta, ea, d, "pts", st, j)


def _compare_entropy(data: RunData, step: int, el: float, t: Thresholds) -> CompareRow | None:
    ee = _value_at_or_none(data, EVAL_ENTROPY, step)
    te = _smoothed(data, ENTROPY, t.smooth_points, step)
    if ee is None or te is None or te <= 0:
        return None
    d = (ee - te) / te * 100
    if abs(d) <= t.entropy_gap_close * 100:
        st, j = GOOD, _("very consistent")
    elif abs(d) <= t.entropy_gap * 100:
        st, j = OK, _("consistent")
    else:
        st, j = WATCH, _("eval entropy far from train: check the eval set's distribution")
    return CompareRow("entropy", te, ee, d, "%", st, j)


def _value_at_or_none(data: RunData, metric: str, step: int) -> float | None:
    s = data.get(metric)
    if s is None:
        return None
    v = s.at_or_before(step)
    return v if v is not None and math.isfinite(v) else None



# ------------------------------------------------------------------------------------------------
# the verdict: positives (the seed's "积极信号"), cautions ("需要注意") and one line overall


@dataclass(frozen=True)
class _View:
    """What the verdict reads: the rows judged, and the findings by code (open now, and any)."""

    env: _Env
    statuses: dict[str, tuple[str, float | None]]
    comp: dict[str, CompareRow]
    rows: dict[str, MetricRow]
    active: list[Finding]
    codes: frozenset[str]  # codes of the open findings
    seen: frozenset[str]  # codes of every finding, open or closed

    @classmethod
    def of(cls, out: Assessment, env: _Env, statuses: dict[str, tuple[str, float | None]]) -> _View:
        active = env.diag.active()
        return cls(
            env,
            statuses,
            {c.item: c for c in out.comparison},
            {r.metric: r for r in out.metrics},
            active,
            frozenset(f.code for f in active),
            frozenset(f.code for f in env.diag.findings),
        )

    def status(self, metric: str) -> str:
        return self.statuses.get(metric, (NA, None))[0]

    def good(self, item: str) -> bool:
        c = self.comp.get(item)
        return c is not None and c.status == GOOD

    @property
    def overfit(self) -> bool:
        return bool(self.seen & _OVERFIT)


_OVERFIT = frozenset({C.OVERFITTING, C.OVERFITTING_SEVERE})
# A positive is about the whole run as the report shows it, and the report lists closed findings
# too: none may stand beside a finding, open or closed, on the same metric.
_LOSS_BAD = frozenset({C.LOSS_PLATEAU, C.LOSS_NONFINITE, C.NOTHING_TRAINED, C.IMPOSSIBLE_LOSS})
# a loss that swings or swung: no positive while an episode is open, and never "stable" after one
_LOSS_SWINGS = frozenset({C.LOSS_OSCILLATION, C.TRAINING_UNSTABLE, C.DIVERGENCE})
_GRAD_BAD = frozenset({C.GRAD_EXPLOSION, C.GRAD_NORM_HIGH, C.GRAD_VANISHING})
_ACC_BAD = frozenset({C.OVERFITTING_SEVERE, C.ACCURACY_DROP})


def _pos_loss(v: _View) -> str | None:
    if v.env.objective is Objective.RL:
        return None  # a policy loss neither falls nor settles when RL goes well
    if v.codes & _LOSS_SWINGS or v.seen & _LOSS_BAD:
        return None
    st = "" if v.seen & _LOSS_SWINGS else v.status(LOSS)
    if st == GOOD:
        return _("train loss is low and stable")
    if st == OK:
        return _("train loss is in the normal range and stable")
    return _("train loss is still falling") if _loss_falling(v.env.data) else None


def _pos_accuracy(v: _View) -> str | None:
    acc = v.statuses.get(TOKEN_ACC)
    if acc is None or acc[1] is None or not math.isfinite(acc[1]) or v.seen & _ACC_BAD:
        return None
    t = v.env.t
    # (not WATCH: near-perfect is a memorisation caution, not praise; n/a: not token accuracy)
    if acc[0] not in (GOOD, OK) or acc[1] < t.accuracy_very_good:
        return None
    text = _("token accuracy {acc:.1f}%: excellent") if acc[1] >= t.accuracy_excellent else _(
        "token accuracy {acc:.1f}%: very good"
    )
    return text.format(acc=acc[1] * 100)


def _pos_eval_accuracy(v: _View) -> str | None:
    c = v.comp.get("token_accuracy")
    if c is None or c.status != GOOD or c.diff is None or v.overfit or C.ACCURACY_DROP in v.seen:
        return None
    text = (
        _("eval accuracy only {diff:.1f} points below train: generalising well")
        if c.diff < 0
        else _("eval accuracy only {diff:.1f} points above train: generalising well")
    )
    return text.format(diff=abs(c.diff))


def _pos_entropy(v: _View) -> str | None:
    return _("train and eval entropy agree") if v.good("entropy") and C.ENTROPY_GAP not in v.seen else None


def _pos_eval_loss(v: _View) -> str | None:
    return _("eval loss close to train loss") if v.good("loss") and not v.overfit else None


def _pos_finite(v: _View) -> str | None:
    return _("no NaN/inf values") if C.LOSS_NONFINITE not in v.seen and v.env.data.get(LOSS) is not None else None


def _pos_grad(v: _View) -> str | None:
    return _("grad_norm stable and in range") if v.status(GRAD_NORM) == GOOD and not v.seen & _GRAD_BAD else None


def _pos_eval_improving(v: _View) -> str | None:
    data = v.env.data
    best = best_eval(data)
    ev = _latest(data, EVAL_LOSS)
    if best is None or ev is None or best[0] != ev[0] or data.count(Kind.EVAL) <= 1:
        return None
    return _("eval_loss still improving (the latest eval is the best)")


_POSITIVES: tuple[Callable[[_View], str | None], ...] = (
    _pos_loss,
    _pos_accuracy,
    _pos_eval_accuracy,
    _pos_entropy,
    _pos_eval_loss,
    _pos_finite,
    _pos_grad,
    _pos_eval_improving,
)

# a metric row whose caution a finding on the same metric already says
_SAID_BY: dict[str, frozenset[str]] = {
    GRAD_NORM: frozenset({C.GRAD_NORM_HIGH, C.GRAD_EXPLOSION}),
}


def _cautions(v: _View) -> list[str]:
    by_severity = sorted(v.active, key=lambda f: -f.severity.rank)  # (stable: log order within one)
    out = [_("{title}: {message}").format(title=f.title, message=f.message) for f in by_severity if f.severity is not Severity.INFO]
    out += [_("{title} (info): {message}").format(title=f.title, message=f.message) for f in by_severity if f.severity is Severity.INFO]
    for c in v.comp.values():
        if c.status in (WATCH, HIGH, CRITICAL) and not (c.item == "loss" and v.codes & _OVERFIT):
            item = _(_ITEM_WORDS.get(c.item, c.item))
            if c.diff is None:  # (no gap to show: "gap n/a" read as a value of nothing)
                out.append(_("train/eval {item}: {judgement}").format(item=item, judgement=c.judgement))
            else:
                out.append(_("train/eval {item} gap {diff}: {judgement}").format(item=item, diff=c.diff_text, judgement=c.judgement))
    # (the learning rate's row is the findings' direction, which they say with their advice)
    for m, (s, value) in v.statuses.items():
        if s in (WATCH, HIGH, LOW) and m not in (EVAL_LOSS, LR) and not v.codes & _SAID_BY.get(m, frozenset()):
            out.append(_("{metric} {value}: {note}").format(metric=label(m), value=fmt(value), note=v.rows[m].note))
    return out


def _headline(v: _View) -> tuple[str, str]:
    """(status, verdict) from the open findings and the train/eval gap."""
    crit = [f for f in v.active if f.severity is Severity.CRITICAL]
    warn = [f for f in v.active if f.severity is Severity.WARNING]
    loss_c = v.comp.get("loss")
    if crit:
        return CRITICAL, _("Critical: {names}. Act now.").format(names=_(", ").join(dict.fromkeys(f.title for f in crit)))
    if C.OVERFITTING in v.codes:
        return WATCH, _("Overfitting: eval loss is pulling away from train loss; take the best checkpoint or stop early.")
    if warn:
        names = _(", ").join(dict.fromkeys(f.title for f in warn))
        if loss_c is None or loss_c.status != WATCH:
            return WATCH, _("Training runs, with warnings to watch: {names}.").format(names=names)
        return WATCH, _("Training runs, with warnings to watch: {names} and a mild overfitting tendency.").format(
            names=names
        )
    if loss_c is not None and loss_c.status in (WATCH, HIGH):
        return WATCH, _("Slight overfitting tendency, but healthy overall.")
    data = v.env.data
    if data.get(LOSS) is None and data.get(EVAL_LOSS) is None:
        return NA, _("No metrics yet.")
    return GOOD, _("Healthy: nothing to act on.")


def _verdict(out: Assessment, v: _View) -> None:
    out.positives.extend(p for p in (pos(v) for pos in _POSITIVES) if p is not None)
    out.cautions.extend(_cautions(v))
    out.status, out.verdict = _headline(v)
    # A critical episode that closed still makes the report exit 1: the verdict says what the
    # run recovered from, and is never "Healthy".
    diag = v.env.diag
    recovered = _recovered(diag)
    if recovered and out.status != CRITICAL:
        if out.status in (GOOD, NA):
            out.status = WATCH
            out.verdict = _("Recovered from {recovered}: check the run before trusting it.").format(recovered=recovered)
        else:
            out.verdict += _(" Earlier it recovered from {recovered}.").format(recovered=recovered)
    if diag.finished and out.status != CRITICAL:
        out.verdict += _(" The run has finished.")


# a closed critical episode in the verdict: (one, several) of them
_RECOVERED_NOUN: dict[str, tuple[str, str]] = {
    C.GRAD_EXPLOSION: (N_("a gradient spike of {listed}"), N_("gradient spikes of {listed}")),
    C.LOSS_NONFINITE: (N_("a NaN/inf value {listed}"), N_("NaN/inf values {listed}")),
    C.OVERFITTING_SEVERE: (N_("severe overfitting {listed}"), N_("severe overfitting {listed}")),
    C.RUN_CRASHED: (N_("a crash {listed}"), N_("crashes {listed}")),
}
_RECOVERED_LISTED = 3  # episodes of one code named in the verdict; the rest are counted


def _recovered(diag: Diagnoser) -> str:
    """The closed critical episodes, per code: "gradient spikes of 26.4 at step 4 and 71.9 at
    step 22" ("" when there are none)."""
    by_code: dict[str, list[str]] = {}
    for f in diag.findings:
        if f.severity is Severity.CRITICAL and not f.active:
            if f.value is not None and f.code == C.GRAD_EXPLOSION:
                where = _("{value} at step {step}").format(value=fmt(f.value), step=f.step)
            else:
                where = _("at step {step}").format(step=f.step)
            by_code.setdefault(f.code, []).append(where)
    parts = []
    for code, eps in by_code.items():
        one, many = _RECOVERED_NOUN.get(code, (N_("{title} {listed}"), N_("{title} {listed}")))
        shown = eps[:_RECOVERED_LISTED]
        if len(eps) > len(shown):
            shown.append(_("{count} more").format(count=len(eps) - len(shown)))
        if len(shown) == 1:
            listed = shown[0]
        else:
            listed = _("{items} and {last}").format(items=_(", ").join(shown[:-1]), last=shown[-1])
        parts.append(_(one if len(eps) == 1 else many).format(title=title(code), listed=listed))
    return _("; ").join(parts)


_FALLING_POINTS = 20  # "still falling": the newer half of this many points has the lower median


def _loss_falling(data: RunData) -> bool:
    s = data.get(LOSS)
    if s is None or len(s) < 6:
        return False
    vals = [v for v in s.values[-_FALLING_POINTS:] if math.isfinite(v)]
    half = len(vals) // 2
    return half >= 2 and median(vals[half:]) < median(vals[:half])
