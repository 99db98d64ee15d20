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
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from . import codes as C
from .config import Thresholds
from .diagnose import Diagnoser, Severity, fmt, json_value, median, title
from .discover import CHECKPOINT_DIR, checkpoint_dirs
from .i18n import N_, _
from .metrics import (
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
from .query import best_eval, logging_interval, lr_direction, smoothed_at
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


def _judge_metric(metric: str, v: float, t: Thresholds, diag: Diagnoser, data: RunData) -> tuple[str, str]:
    """(status, note) for one metric's (smoothed) value."""
    if metric == LOSS:
        lo, hi = _range(LOSS)
        if v == 0.0:
            # never memorising: a loss of exactly 0 is no token in the loss, or a NaN printed as 0
            if any(f.code == C.LOSS_NONFINITE for f in diag.findings):
                return CRITICAL, _("exactly 0: a NaN/inf loss printed as 0 by the Trainer (see NaN/inf in training)")
            return CRITICAL, _("exactly 0: no token counts in the loss (labels all masked?), nothing is trained")
        if v < lo:
            return LOW, _("below {lo}: the model may be memorising the training set").format(lo=lo)
        if v <= t.loss_good:
            return GOOD, _("a very good level for SFT")
        if v <= hi:
            return OK, _("within the normal {lo}-{hi}").format(lo=lo, hi=hi)
        return HIGH, _("above the usual {lo}-{hi} (normal early in training or on hard data)").format(lo=lo, hi=hi)
    if metric == EVAL_LOSS:
        tl = _smoothed(data, LOSS, t.smooth_points, _latest_step(data, EVAL_LOSS))
        if tl is None or tl <= 0:
            return OK, _("no train loss to compare with")
        r = v / tl
        if r > t.loss_gap_ratio:
            return HIGH, _("{r:.2g}x the train loss: overfitting").format(r=r)
        if r - 1 > t.loss_gap_warn:
            return WATCH, _("{r:.2g}x the train loss: a large gap").format(r=r)
        return GOOD, _("close to the train loss (usually slightly above it)")
    if metric == GRAD_NORM:
        if v > t.grad_norm_critical:
            return CRITICAL, _("above {grad_norm_critical}: gradient explosion").format(grad_norm_critical=fmt(t.grad_norm_critical))
        if v > t.grad_norm_warn:
            return HIGH, _("above {grad_norm_warn}: lower the learning rate?").format(grad_norm_warn=fmt(t.grad_norm_warn))
        if v >= t.grad_norm_watch * t.grad_norm_warn:
            return WATCH, _("slightly high: keep watching it; the learning rate may need lowering")
        if v < t.grad_norm_vanishing:
            return LOW, _("below {grad_norm_vanishing}: vanishing gradients?").format(grad_norm_vanishing=fmt(t.grad_norm_vanishing))
        if v < _range(GRAD_NORM)[0]:
            return LOW, _("below the usual {grad_norm} (common with LoRA; fine while the loss falls)").format(grad_norm=_range_text(GRAD_NORM))
        return GOOD, _("stable, within {grad_norm}").format(grad_norm=_range_text(GRAD_NORM))
    if metric == LR:
        shape = _lr_shape(data, diag)
        if v > t.lr_max:
            return HIGH, _("above {lr_max}: probably too large ({shape})").format(lr_max=fmt(t.lr_max), shape=shape)
        if v < t.lr_min:
            ms = diag.max_steps
            last = data.last_step or 0
            peak = diag.lr_peak() or 0.0
            if peak < t.lr_min:
                return LOW, _("below {lr_min} and never higher than {peak}: far too small to learn").format(lr_min=fmt(t.lr_min), peak=fmt(peak))
            if ms and last >= t.lr_end_fraction * ms:
                return OK, _("near zero at the end of the schedule ({shape})").format(shape=shape)
            return LOW, _("below {lr_min}: probably too small ({shape})").format(lr_min=fmt(t.lr_min), shape=shape)
        return OK, shape
    if metric in (ENTROPY, EVAL_ENTROPY):
        lo, hi = _range(metric)
        if v < lo:
            return LOW, _("below {lo}: very confident predictions (memorising?)").format(lo=lo)
        if v > hi:
            return HIGH, _("above {hi}: very uncertain predictions (normal early in training)").format(hi=hi)
        return GOOD, _("moderate prediction uncertainty")
    if metric in (TOKEN_ACC, EVAL_TOKEN_ACC):
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
    return NA, ""


def _latest_step(data: RunData, metric: str) -> int | None:
    s = data.get(metric)
    return s.steps[-1] if s is not None and len(s) else None


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
    out = Assessment(step=data.last_step)
    statuses: dict[str, tuple[str, float | None]] = {}
    broken_train = _broken_at(data, (LOSS, GRAD_NORM))
    broken_eval = _broken_at(data, (EVAL_LOSS,))
    for m in _ROWS:
        last = _latest(data, m)
        if last is None:
            continue
        step, v = last
        broken = broken_eval if m.startswith("eval_") else broken_train
        if not math.isfinite(v):
            row = MetricRow(m, v, CRITICAL, _("{v} at step {step}").format(v=fmt(v), step=step))
        elif m != LR and step in broken:
            row = MetricRow(m, v, CRITICAL, _("meaningless: logged at step {step} while the loss is NaN/inf").format(step=step))
        else:
            judged = _smoothed(data, m, t.smooth_points) if m in _NOISY else v
            judged = v if judged is None else judged
            status, note = _judge_metric(m, judged, t, diagnoser, data)
            if m in _NOISY and abs(judged - v) > _SHOW_MEDIAN * abs(v):
                note += _(" (recent median {judged})").format(judged=fmt(judged))
            row = MetricRow(m, v, status, note)
        out.metrics.append(row)
        statuses[m] = (row.status, row.value)

    _compare(out, data, t)
    if any(f.code in (C.OVERFITTING, C.OVERFITTING_SEVERE) for f in diagnoser.findings):
        # a gap that is small at the latest eval does not mean the run generalises when eval_loss
        # rose from its best: the row must not read as the opposite of the finding
        for c in out.comparison:
            if c.status == GOOD and c.item in ("loss", "token_accuracy"):
                c.status, c.judgement = OK, _("a small gap now, but eval_loss rose from its best (overfitting)")
    _verdict(out, data, diagnoser, statuses, t)
    out.best_checkpoint = best_checkpoint(data, log_path) if log_path else _best_without_path(data)
    return out


def _broken_at(data: RunData, metrics: tuple[str, ...]) -> set[int]:
    """Latest steps at which one of ``metrics`` is non-finite (values logged beside it are junk)."""
    out: set[int] = set()
    for m in metrics:
        last = _latest(data, m)
        if last is not None and not math.isfinite(last[1]):
            out.add(last[0])
    if not out:
        # logging_nan_inf_filter: a loss of exactly 0 logged with a NaN grad_norm
        loss, grad = _latest(data, LOSS), _latest(data, GRAD_NORM)
        if loss is not None and grad is not None and loss[0] == grad[0] and not math.isfinite(grad[1]):
            out.add(loss[0])
    return out


def _compare(out: Assessment, data: RunData, t: Thresholds) -> None:
    ev = _latest(data, EVAL_LOSS)
    if ev is None:
        return
    step = ev[0]
    out.comparison_step = step
    if not math.isfinite(ev[1]) or _broken_at(data, (LOSS, GRAD_NORM)):
        last_train = _latest(data, LOSS)
        out.comparison.append(
            CompareRow(
                "loss",
                last_train[1] if last_train else None,
                ev[1],
                None,
                "%",
                CRITICAL,
                _("no comparison: training is NaN/inf"),
            )
        )
        return
    # loss
    el = ev[1]
    tl = _smoothed(data, LOSS, t.smooth_points, step)
    if tl is not None and tl > 0 and math.isfinite(el):
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
        out.comparison.append(CompareRow("loss", tl, el, d, "%", st, j))
    # token accuracy
    ea = _value_at_or_none(data, EVAL_TOKEN_ACC, step)
    ta = _smoothed(data, TOKEN_ACC, t.smooth_points, step)
    if ea is not None and ta is not None:
        d = (ea - ta) * 100
        if d >= -t.accuracy_gap_warn * 100:
            st, j = GOOD, _("generalising well")
        elif d >= -t.accuracy_drop * 100:
            st, j = WATCH, _("eval accuracy lags train: early sign of overfitting")
        else:
            st, j = HIGH, _("a large accuracy gap: overfitting")
        out.comparison.append(CompareRow("token_accuracy", ta, ea, d, "pts", st, j))
    # entropy
    ee = _value_at_or_none(data, EVAL_ENTROPY, step)
    te = _smoothed(data, ENTROPY, t.smooth_points, step)
    if ee is not None and te is not None and te > 0:
        d = (ee - te) / te * 100
        if abs(d) <= t.entropy_gap_close * 100:
            st, j = GOOD, _("very consistent")
        elif abs(d) <= t.entropy_gap * 100:
            st, j = OK, _("consistent")
        else:
            st, j = WATCH, _("eval entropy far from train: check the eval set's distribution")
        out.comparison.append(CompareRow("entropy", te, ee, d, "%", st, j))


def _value_at_or_none(data: RunData, metric: str, step: int) -> float | None:
    s = data.get(metric)
    if s is None:
        return None
    v = s.at_or_before(step)
    return v if v is not None and math.isfinite(v) else None


def _verdict(
    out: Assessment, data: RunData, diag: Diagnoser, statuses: dict[str, tuple[str, float | None]], t: Thresholds
) -> None:
    active = diag.active()
    crit = [f for f in active if f.severity is Severity.CRITICAL]
    warn = [f for f in active if f.severity is Severity.WARNING]
    info = [f for f in active if f.severity is Severity.INFO]
    comp = {c.item: c for c in out.comparison}

    # positives (the seed's "积极信号"). A positive is about the whole run as the report shows
    # it, and the report lists closed findings too: none may contradict a finding, open or
    # closed, on the same metric.
    pos = out.positives
    st, _v = statuses.get(LOSS, (NA, None))
    codes = {f.code for f in active}
    seen = {f.code for f in diag.findings}
    overfit = bool(seen & {C.OVERFITTING, C.OVERFITTING_SEVERE})
    if st in (GOOD, OK) and not codes & {C.LOSS_OSCILLATION} and not seen & {C.LOSS_PLATEAU, C.LOSS_NONFINITE}:
        pos.append(_("train loss is low and stable") if st == GOOD else _("train loss is in the normal range and stable"))
    elif not codes & {C.LOSS_OSCILLATION} and not seen & {C.LOSS_PLATEAU, C.LOSS_NONFINITE} and _loss_falling(data):
        pos.append(_("train loss is still falling"))
    acc = statuses.get(TOKEN_ACC)
    if (
        acc is not None
        and acc[0] in (GOOD, OK)  # (not WATCH: near-perfect is a memorisation caution, not praise)
        and acc[1] is not None
        and math.isfinite(acc[1])
        and acc[1] >= t.accuracy_very_good
        and C.OVERFITTING_SEVERE not in seen
    ):
        pos.append(
            (_("token accuracy {acc:.1f}%: excellent") if acc[1] >= t.accuracy_excellent
             else _("token accuracy {acc:.1f}%: very good")).format(acc=acc[1] * 100)
        )
    c = comp.get("token_accuracy")
    if c is not None and c.status == GOOD and c.diff is not None and not overfit:
        pos.append(
            (_("eval accuracy only {diff:.1f} points below train: generalising well") if c.diff < 0
             else _("eval accuracy only {diff:.1f} points above train: generalising well")).format(diff=abs(c.diff))
        )
    c = comp.get("entropy")
    if c is not None and c.status == GOOD and C.ENTROPY_GAP not in seen:
        pos.append(_("train and eval entropy agree"))
    c = comp.get("loss")
    if c is not None and c.status == GOOD and not overfit:
        pos.append(_("eval loss close to train loss"))
    if C.LOSS_NONFINITE not in seen and data.get(LOSS) is not None:
        pos.append(_("no NaN/inf values"))
    gst = statuses.get(GRAD_NORM, (NA, None))[0]
    if gst == GOOD and not seen & {C.GRAD_EXPLOSION, C.GRAD_NORM_HIGH, C.GRAD_VANISHING}:
        pos.append(_("grad_norm stable and in range"))
    best = best_eval(data)
    ev = _latest(data, EVAL_LOSS)
    if best is not None and ev is not None and best[0] == ev[0] and data.count(Kind.EVAL) > 1:
        pos.append(_("eval_loss still improving (the latest eval is the best)"))

    # cautions (the seed's "需要注意")
    cau = out.cautions
    for f in crit + warn:
        cau.append(_("{title}: {message}").format(title=f.title, message=f.message))
    for f in info:
        cau.append(_("{title} (info): {message}").format(title=f.title, message=f.message))
    for c in out.comparison:
        if c.status in (WATCH, HIGH, CRITICAL) and not (
            c.item == "loss" and codes & {C.OVERFITTING, C.OVERFITTING_SEVERE}
        ):
            cau.append(_("train/eval {item} gap {diff}: {judgement}").format(item=_(_ITEM_WORDS.get(c.item, c.item)), diff=c.diff_text, judgement=c.judgement))
    for m, (s, v) in statuses.items():
        if s in (WATCH, HIGH, LOW) and m not in (EVAL_LOSS,):
            if m == GRAD_NORM and codes & {C.GRAD_NORM_HIGH, C.GRAD_EXPLOSION}:
                continue
            if m == LR and codes & {C.LR_TOO_LARGE, C.LR_TOO_SMALL}:
                continue
            row = next(r for r in out.metrics if r.metric == m)
            cau.append(_("{metric} {value}: {note}").format(metric=label(m), value=fmt(v), note=row.note))

    # verdict
    loss_c = comp.get("loss")
    if crit:
        out.status = CRITICAL
        names = _(", ").join(dict.fromkeys(f.title for f in crit))
        out.verdict = _("Critical: {names}. Act now.").format(names=names)
    elif codes & {C.OVERFITTING}:
        out.status = WATCH
        out.verdict = _("Overfitting: eval loss is pulling away from train loss; take the best checkpoint or stop early.")
    elif warn:
        out.status = WATCH
        names = _(", ").join(dict.fromkeys(f.title for f in warn))
        if loss_c is None or loss_c.status != WATCH:
            out.verdict = _("Training runs, with warnings to watch: {names}.").format(names=names)
        else:
            out.verdict = _("Training runs, with warnings to watch: {names} and a mild overfitting tendency.").format(
                names=names
            )
    elif loss_c is not None and loss_c.status in (WATCH, HIGH):
        out.status = WATCH
        out.verdict = _("Slight overfitting tendency, but healthy overall.")
    elif data.get(LOSS) is None and data.get(EVAL_LOSS) is None:
        out.status = NA
        out.verdict = _("No metrics yet.")
    else:
        out.status = GOOD
        out.verdict = _("Healthy: nothing to act on.")
    # A critical episode that closed still makes the report exit 1: the verdict says what the
    # run recovered from, and is never "Healthy".
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


# ------------------------------------------------------------------------------------------------
# best checkpoint



def _best_without_path(data: RunData) -> dict[str, object] | None:
    best = best_eval(data)
    if best is None:
        return None
    step, loss, acc = best
    return {"step": step, "eval_loss": loss, "eval_token_accuracy": acc, "path": None, "note": None}


def best_checkpoint(
    data: RunData, log_path: str, list_dirs: Callable[[str], dict[int, str]] = checkpoint_dirs
) -> dict[str, object] | None:
    """The best eval (lowest eval_loss, ties to the higher eval token accuracy) and its
    ``checkpoint-N`` directory beside the log, with a note when it is missing. ``list_dirs``
    lists a directory's checkpoints (another host's, for a remote log).

    Keys: step, eval_loss, eval_token_accuracy, path (None when no such directory exists),
    note (None when nothing needs saying).
    """
    best = best_eval(data)
    if best is None:
        return None
    step, loss, acc = best
    # Relative to the log path as the user gave it, so the report reads the same anywhere.
    base = os.path.dirname(os.path.normpath(log_path)) or "."
    if CHECKPOINT_DIR.match(os.path.basename(base)):  # a checkpoint's own trainer_state.json
        base = os.path.dirname(base) or "."
    if os.path.basename(log_path).startswith("events.out.tfevents."):
        base = os.path.dirname(base) or "."  # a TensorBoard run is its directory, not the file
    if os.path.basename(base) == "runs":  # HF TensorBoard: <output_dir>/runs/<date>_<host>
        base = os.path.dirname(base) or "."
    dirs = list_dirs(base)
    path = dirs.get(step)
    note: str | None = None
    if path is None and dirs:
        # HF stdout logs carry no step: an eval's step is inferred from the last train record
        # and may sit up to one logging interval before the checkpoint saved with it.
        interval = logging_interval(data)
        near = [s for s in dirs if step < s < step + interval]
        if near:
            path = dirs[min(near)]
    if path is None:
        have = sorted(dirs)
        if not have:
            note = _("no checkpoint-N directories beside the log; the best eval is at step {step}").format(step=step)
        else:
            listed = ", ".join(f"checkpoint-{s}" for s in have[:8]) + (" ..." if len(have) > 8 else "")
            spacing = _gcd_all(have)
            if spacing and step % spacing == 0 and step < have[-1]:
                note = _("checkpoint-{step} no longer exists (deleted by save_total_limit?); present: {listed}").format(step=step, listed=listed)
            else:
                note = _("no checkpoint was saved at step {step}; present: {listed}").format(step=step, listed=listed)
    return {"step": step, "eval_loss": loss, "eval_token_accuracy": acc, "path": path, "note": note}


def _gcd_all(xs: list[int]) -> int:
    g = 0
    for x in xs:
        g = math.gcd(g, x)
    return g
