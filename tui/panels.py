"""Core's checklist and assessment read into the panels' view data (called under the lock)."""

from __future__ import annotations

import os

from sfttop.core.assess import assess
from sfttop.core.checklist import ITEM_BY_ID, Checklist
from sfttop.core.config import Thresholds
from sfttop.core.i18n import N_, _
from sfttop.core.masking import shown_series
from sfttop.core.metrics import label
from sfttop.core.run import Run
from sfttop.core.sanitize import clean_text

from .chart_render import ChartOptions
from .fmt import fmt_count, fmt_value
from .views import ChartState, finding_order
from .widgets.assessment import AssessmentView
from .widgets.checklist import ChecklistView, CheckRow
from .widgets.metric_chart import ChartData


def empty_chart(args: list[str], state: ChartState) -> ChartData:
    pattern = ", ".join(clean_text(a) for a in args)
    opts = ChartOptions(smooth=state.smooth, log=state.log, clip=state.clip)
    msg = _("waiting for logs: nothing matches {pattern} yet").format(pattern=pattern)
    return ChartData(_("waiting"), [], [], [], opts, "", ("empty", pattern), message=msg)


def empty_checklist() -> ChecklistView:
    return ChecklistView((), _("no run yet"))


def empty_assessment(args: list[str]) -> AssessmentView:
    pattern = ", ".join(clean_text(a) for a in args)
    return AssessmentView(_("waiting for logs"), "muted", _("nothing matches {pattern} yet").format(pattern=pattern))


HISTORY_WINDOWS = 24  # past windows shown per check (the widget shows as many as fit)
STEP_CADENCES = ("100_steps", "1000_steps")


def cadence_short(cadence_id: str, window_steps: int | None, label: str) -> str:
    """The cadence in the checklist's narrow column: ``100 steps``, ``250 steps``, ``epoch``."""
    if cadence_id == "epoch":
        return _("epoch")
    if cadence_id in STEP_CADENCES:
        size = window_steps or (100 if cadence_id == "100_steps" else 1000)
        return _("{count} steps").format(count=size)
    return clean_text(label)


def window_label(label: str, start: int, end: int, steps: bool = True) -> str:
    """A step window ``steps 1001-1100`` → ``1001-1100``; long step numbers → ``→2.0M``; another
    window (``epoch 2``) as core words it."""
    if not steps:
        return clean_text(label)
    text = f"{start}-{end}"
    return text if len(text) <= 10 else f"→{fmt_count(end)}"


def _short_label(item_id: str, label: str) -> str:
    """The item's few words from core's checklist table (its full question when it has none)."""
    item = ITEM_BY_ID.get(item_id)
    return _(item.short) if item is not None else clean_text(label)


def checklist_view(run: Run, engine: Checklist) -> ChecklistView:
    state = engine.update(run.data, run.diagnoser)
    rows: list[CheckRow] = []
    for cad in state.cadences:
        latest = cad.latest
        if latest is None:
            continue
        short = cadence_short(cad.id, cad.window_steps, cad.label)
        recent = cad.windows[-HISTORY_WINDOWS:]
        for item in latest.items:
            history = []
            for w in recent:
                it = w.item(item.id)
                history.append(it.status if it is not None else "pending")
            rows.append(
                CheckRow(
                    short,
                    _short_label(item.id, item.label),
                    item.status,
                    clean_text(item.detail),
                    tuple(history),
                    window=window_label(latest.label, latest.start_step, latest.end_step, cad.id in STEP_CADENCES),
                )
            )
    return ChecklistView(tuple(rows), "" if rows else _("no checklist yet: waiting for records"))


# The assessment's train/eval comparisons (core/assess.py names them by metric)
# (a metric name stays as it is; words are translated)
_GAP_ITEMS = {"token_accuracy": N_("token accuracy")}
_VERDICT_STATE = {"good": "ok", "ok": "ok", "watch": "warning", "critical": "critical"}
_METRIC_STATE = {"good": "ok", "ok": "ok", "watch": "warning", "high": "warning", "low": "warning", "critical": "critical"}


def _best_text(best: dict[str, object] | None) -> str:
    if not best:
        return ""
    parts = [_("step {step}").format(step=best.get("step"))]
    loss = best.get("eval_loss")
    if isinstance(loss, float):
        parts.append(f"eval_loss {fmt_value(loss)}")
    acc = best.get("eval_token_accuracy")
    if isinstance(acc, float):
        parts.append(_("eval acc {value}").format(value=fmt_value(acc)))
    path = best.get("path")
    if isinstance(path, str) and path:
        parts.append(os.path.basename(path.rstrip(os.sep)))
    note = best.get("note")
    text = " · ".join(parts)
    if isinstance(note, str) and note and not path:
        text = _("{best} ({note})").format(best=text, note=note)
    return clean_text(text)


def _value_text(run: Run, metric: str, value: float | None) -> str:
    shown = shown_series(run.data, metric, last=1)
    if shown is not None and len(shown.values) - 1 in shown.masked:
        return _("NaN (masked)")
    return fmt_value(value, metric)


def _gap_item(item: str) -> str:
    words = _GAP_ITEMS.get(item)
    return _(words) if words is not None else item.replace("_", " ")


def assessment_view(run: Run, t: Thresholds) -> AssessmentView:
    a = assess(run.data, run.diagnoser, t, log_path=run.path)
    advice: list[str] = []
    active = sorted(run.diagnoser.active(), key=finding_order)
    for f in active:
        for line in f.advice[:2]:
            if line not in advice:
                advice.append(line)
    metrics = tuple(
        (label(m.metric), _value_text(run, m.metric, m.value), _METRIC_STATE.get(m.status, "muted"), clean_text(m.note))
        for m in a.metrics
    )
    compare = tuple(
        (_("gap {item}").format(item=_gap_item(c.item)), c.diff_text, _METRIC_STATE.get(c.status, "muted"),
         clean_text(c.judgement))
        for c in a.comparison
    )
    return AssessmentView(
        verdict=clean_text(a.verdict) or _("no verdict yet"),
        verdict_state=_VERDICT_STATE.get(a.status, "muted"),
        positives=tuple(clean_text(p) for p in a.positives),
        cautions=tuple(clean_text(c) for c in a.cautions),
        advice=tuple(clean_text(x) for x in advice[:6]),
        best=_best_text(a.best_checkpoint),
        metrics=metrics + compare,
    )
