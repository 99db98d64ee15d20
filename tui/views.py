"""The view model: core state read into plain, frozen view data for the widgets.

Every function here is called by the app with the monitor lock held (the poll thread mutates
runs), and returns immutable values the widgets keep; widgets never touch a ``Run``.
Text from logs is already cleaned by core; run names come from file paths and are cleaned here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sfttop.core import metrics as M
from sfttop.core.config import Thresholds
from sfttop.core.diagnose import CODES, Finding, Severity
from sfttop.core.i18n import N_, _
from sfttop.core.liveness import State
from sfttop.core.masking import shown_series
from sfttop.core.objective import Objective
from sfttop.core.oserrors import reason
from sfttop.core.records import EventKind, Kind
from sfttop.core.run import Run
from sfttop.core.sanitize import clean_text
from sfttop.core.unread import has_records, unread_reason

from .cells import fit
from .chart_render import ChartLine, ChartOptions, HLine
from .fmt import fmt_duration, fmt_epoch, fmt_step
from .palette import (
    CRIT_RGB,
    CRITICAL,
    DONE,
    ERROR,
    LOADING,
    MISSING,
    OK,
    WAITING,
    WARN_RGB,
    WARNING,
    Status,
    eval_rgb,
    run_glyph,
    run_rgb,
    severity_status,
)
from .plotdata import bucket_series, map_x
from .widgets.alert_banner import BannerItem
from .widgets.metric_card import CardData
from .widgets.metric_chart import ChartData, LegendItem
from .widgets.run_list import RunRow

# Metric cards, in order: (metric, label, higher is better)
CARD_METRICS: tuple[tuple[str, str, bool | None], ...] = (
    (M.LOSS, "loss", False),
    (M.GRAD_NORM, "grad_norm", None),
    (M.LR, "lr", None),
    (M.ENTROPY, "entropy", None),
    (M.TOKEN_ACC, "token_acc", True),
    (M.NUM_TOKENS, "tokens", None),
    (M.EVAL_LOSS, "eval_loss", False),
    (M.EVAL_TOKEN_ACC, "eval_acc", True),
    (M.EVAL_ENTROPY, "eval_ent", None),
)
SPARK_POINTS = 48

# Chart groups: (title, train metric, eval twin or None); a title is shown through _(): the
# metric names stay as the log spells them, "token accuracy" is words
CHART_GROUPS: tuple[tuple[str, str, str | None], ...] = (
    ("loss", M.LOSS, M.EVAL_LOSS),
    ("grad_norm", M.GRAD_NORM, None),
    ("learning_rate", M.LR, None),
    ("entropy", M.ENTROPY, M.EVAL_ENTROPY),
    (N_("token accuracy"), M.TOKEN_ACC, M.EVAL_TOKEN_ACC),
    ("num_tokens", M.NUM_TOKENS, None),
)
_IN_GROUPS = {m for _t, a, b in CHART_GROUPS for m in (a, b) if m}
_NOT_CHARTED = {"eval_num_tokens", "eval_steps_per_second", "total_flos"}


def run_name(run: Run) -> str:
    return clean_text(run.name)


# -------------------------------------------------------------------------------- run list
def run_status(run: Run) -> Status:
    """The glyph and word a run is listed with: its worst active finding, else its state."""
    worst = run.diagnoser.worst_active()
    if worst is not None and worst is not Severity.INFO:
        return severity_status(worst)
    if not run.exists:
        if _unopened(run):
            return LOADING
        if run.remote and run.error:  # no file because its host cannot be reached: not a wait
            return ERROR
        return MISSING if _had_data(run) else WAITING
    if run.error and not run.loaded:
        return ERROR
    if not run.loaded:
        return LOADING
    if not has_records(run):
        return ERROR if run.error else WAITING
    if run.finished:
        return DONE
    if worst is Severity.INFO:
        return severity_status(worst)
    return OK


def _unopened(run: Run) -> bool:
    """Not looked at yet: the first frame comes before the first poll."""
    return run.error is None and not _had_data(run)


def _had_data(run: Run) -> bool:
    return run.data.count(Kind.TRAIN) + run.data.count(Kind.EVAL) > 0 or any(
        e.kind is EventKind.SOURCE for e in run.events
    )


def run_detail(run: Run) -> str:
    if not run.exists:
        if _unopened(run):
            return "…"
        if run.remote and run.error:
            return _("unreachable")
        return _("gone") if _had_data(run) else _("no file")
    if run.error and not run.loaded:
        return _("unreadable")
    if not run.loaded:
        return f"{run.load_fraction * 100:.0f}%"
    step, total, _eta = run.progress()
    if step is None:
        return _("no data")
    if total:
        return f"{step}/{total}"
    return _("step {step}").format(step=step)


def run_row(run: Run) -> RunRow:
    return RunRow(run_name(run), run.color_index, run_status(run), run_detail(run))


# -------------------------------------------------------------------------------- title bar
def progress_text(run: Run, now: float | None = None) -> str:
    step, total, eta = run.progress(now)
    parts = []
    if step is not None:
        if total:
            pct = f"{min(100.0, 100 * step / total):.0f}"
            parts.append(_("step {step} {percent}%").format(step=fmt_step(step, total), percent=pct))
        else:
            parts.append(_("step {step}").format(step=fmt_step(step, total)))
    ep = fmt_epoch(run.data.epoch)
    if ep:
        parts.append(ep)
    if eta is not None:
        parts.append(_("ETA {duration}").format(duration=fmt_duration(eta)))
    return " · ".join(parts)


def progress_short(run: Run, now: float | None = None) -> str:
    step, total, eta = run.progress(now)
    parts = []
    if step is not None:
        parts.append(fmt_step(step, total))
    if run.data.epoch is not None and math.isfinite(run.data.epoch):
        parts.append(_("ep {epoch}").format(epoch=f"{run.data.epoch:.3g}"))
    if eta is not None:
        parts.append(_("ETA {duration}").format(duration=fmt_duration(eta)))
    return " ".join(parts)


def run_state(run: Run, now: float | None = None) -> str:
    if run.remote and run.error:  # before "waiting for the file": an unreachable host has no file either
        return fit(clean_text(reason(run.error)), 60)  # (the readers' and the system's words: core/oserrors.py)
    if not run.exists:
        if _unopened(run):
            return _("opening")
        return _("file gone") if _had_data(run) else _("waiting for the file")
    if run.error:
        return fit(clean_text(reason(run.error)), 60)
    if not run.loaded:
        return _("loading {percent}%").format(percent=f"{run.load_fraction * 100:.0f}")
    restarted = ""
    if run.restarted_at is not None:
        when = time.strftime("%H:%M", time.localtime(run.restarted_at))
        # (core marks its reset words, core/run.py RESET_WORDS: shown translated)
        restarted = _("restarted {time} ({reason})").format(time=when, reason=_(run.restart_reason or ""))
    if not has_records(run):
        waiting = _("no records recognised yet ({lines} lines read)").format(lines=run.parser.stats.lines)
        return " · ".join(p for p in (waiting, restarted) if p)
    life = run.liveness(now) if now is not None else None
    state = ""
    if run.crashed:
        state = _("crashed")
    elif run.finished:
        state = _("finished")
    elif life is not None and life.state in (State.STALLED, State.STOPPED):
        state = life.describe()
    return " · ".join(p for p in (state, restarted) if p)


def others_text(statuses: Iterable[Status], words: bool = True) -> str:
    """The other runs' worst states (``statuses``: theirs, as their rows show them), worst first
    (``others ✖2 CRIT ▲1 WARN ?1 gone``): in a small pane, where the run list is folded away, this
    is how trouble elsewhere shows. ``words=False``: the glyphs and counts alone (``others ✖2
    ▲1``), for the narrowest title."""
    counts: dict[Status, int] = {}
    for st in statuses:
        if st.css in ("critical", "warning"):
            counts[st] = counts.get(st, 0) + 1
    if not counts:
        return ""
    order = (CRITICAL, WARNING, ERROR, MISSING)
    worst_first = sorted(counts, key=lambda s: order.index(s) if s in order else 9)
    parts = [f"{st.glyph}{counts[st]} {st.shown_word}" if words else f"{st.glyph}{counts[st]}" for st in worst_first]
    return _("others {states}").format(states=" ".join(parts))


# -------------------------------------------------------------------------------- cards
def _critical_for(metric: str, t: Thresholds) -> float | None:
    return t.grad_norm_critical if metric == M.GRAD_NORM else None


def cards(run: Run, t: Thresholds) -> tuple[CardData, ...]:
    out = []
    # While a long log's history loads from the top, its current values come from its end.
    data = run.preview if run.preview is not None and not run.loaded else run.data
    cross_entropy = run.diagnoser.objective.cross_entropy
    for metric, label, better in CARD_METRICS:
        s = shown_series(data, metric, last=SPARK_POINTS)
        low, high = M.NORMAL_RANGES.get(metric, (None, None))
        if not cross_entropy and metric in M.CROSS_ENTROPY_RANGES:
            low = high = None  # (a GRPO loss of -0.01 is no "low" value)
        if metric == M.GRAD_NORM:
            high = t.grad_norm_warn
        if metric == M.LR:
            low, high = t.lr_min, t.lr_max
        if s is None:
            out.append(CardData(metric, label, None, None, (), low, high, _critical_for(metric, t), better))
            continue
        vals = s.values
        n = len(vals)
        back = 1 if metric.startswith("eval_") else min(5, n - 1)
        before = vals[n - 1 - back] if n > 1 and back > 0 else None
        recent = tuple(vals[-SPARK_POINTS:])
        out.append(CardData(metric, label, vals[-1], before, recent, low, high, _critical_for(metric, t), better,
                            masked=(n - 1) in s.masked))
    return tuple(out)


# -------------------------------------------------------------------------------- banner
_PRIORITY = {code: i for i, code in enumerate(("run_crashed", *CODES))}


def finding_order(f: Finding) -> tuple[int, int, int]:
    """Worst first; within a severity, the more actionable code (the diagnoser's rule order),
    then the newest."""
    return (-f.severity.rank, _PRIORITY.get(f.code, len(_PRIORITY)), -f.step)


def finding_key(run: Run, f: Finding) -> tuple[str, str, object]:
    return (run.name, f.code, (f.step, f.metric))


def banner_items(run: Run, dismissed: set[tuple[str, str, object]]) -> tuple[tuple[BannerItem, ...], int]:
    """Active critical and warning findings, worst and newest first; and how many are dismissed."""
    active = [f for f in run.diagnoser.active() if f.severity is not Severity.INFO]
    active.sort(key=finding_order)
    items = []
    hidden = 0
    for f in active:
        key = finding_key(run, f)
        if key in dismissed:
            hidden += 1
            continue
        advice = f.advice[0] if f.advice else ""
        items.append(BannerItem(key, severity_status(f.severity), f.code, clean_text(f.message), clean_text(advice)))
    return tuple(items), hidden


# -------------------------------------------------------------------------------- chart
@dataclass(frozen=True)
class ChartState:
    group: int = 0  # index into groups_for(run)
    smooth: bool = False
    log: bool = False
    tokens: bool = False  # x by num_tokens instead of step
    overlay: bool = False
    clip: bool = True
    log_auto: bool = True  # overlay: log y by itself when runs are orders of magnitude apart


def groups_for(run: Run | None) -> list[tuple[str, str, str | None]]:
    """The chart groups worth cycling through for this run: the fixed ones that have data (loss
    always), then any other metric the log carries."""
    if run is None:
        return [CHART_GROUPS[0]]
    series = run.data.series
    out = [g for g in CHART_GROUPS if g[1] == M.LOSS or g[1] in series or (g[2] and g[2] in series)]
    extra = sorted(k for k in series if k not in _IN_GROUPS and k not in _NOT_CHARTED)
    out.extend((k, k, None) for k in extra)
    return out


def _xs_for(run: Run, steps: list[float], tokens: bool) -> tuple[list[float], bool]:
    if not tokens:
        return steps, True
    ns = run.data.get(M.NUM_TOKENS)
    if ns is None or not len(ns):
        return steps, False
    return map_x(steps, ns.steps, ns.values), True


def chart_data(
    runs: list[Run], selected: int, state: ChartState, t: Thresholds, buckets: int, live: bool = False
) -> ChartData:
    """The chart's data; ``live``: the runs are being written (ChartOptions.live)."""
    run = runs[selected] if runs else None
    groups = groups_for(run)
    title, metric, twin = groups[state.group % len(groups)]
    shown = list(runs) if state.overlay else ([run] if run is not None else [])
    lines: list[ChartLine] = []
    legend: list[LegendItem] = []
    missing_tokens = False
    for r in shown:
        name = run_name(r)
        for m, style in ((metric, "line"), (twin, "eval")):
            if m is None:
                continue
            s = shown_series(r.data, m)
            if s is None:
                continue
            xs, ys, bad = bucket_series(s.steps, s.values, buckets)
            # non-finite points go back in as NaN so the renderer marks them
            if bad:
                pairs = sorted([*zip(xs, ys), *((b, math.nan) for b in bad)])
                xs = [p[0] for p in pairs]
                ys = [p[1] for p in pairs]
            xs_f = [float(x) for x in xs]
            xs_m, ok = _xs_for(r, xs_f, state.tokens)
            missing_tokens = missing_tokens or not ok
            label = f"{name} {M.label(m)}" if state.overlay else M.label(m)
            is_eval = style == "eval"
            # alone, eval differs from train in colour and shape; in the overlay colour and glyph
            # name the run, and the eval line's shape (dotted, ◆) tells it from the train line
            rgb = eval_rgb(r.color_index) if is_eval and not state.overlay else run_rgb(r.color_index)
            glyph = run_glyph(r.color_index) if state.overlay and not is_eval else ""
            lines.append(ChartLine(label, xs_m, list(ys), rgb, "eval" if is_eval else "line", glyph=glyph,
                                   masked=len(s.masked)))
            if not state.overlay:
                legend.append(LegendItem(label, r.color_index, is_eval, rgb=rgb))
            elif not is_eval or not any(i.label == name for i in legend):
                legend.append(LegendItem(name, r.color_index, glyph=run_glyph(r.color_index), rgb=rgb))
    hlines: list[HLine] = []
    if metric == M.GRAD_NORM:
        hlines = [
            HLine(t.grad_norm_warn, WARN_RGB, _("── warn {value}").format(value=f"{t.grad_norm_warn:g}")),
            HLine(t.grad_norm_critical, CRIT_RGB, _("── critical {value}").format(value=f"{t.grad_norm_critical:g}")),
        ]
    opts = ChartOptions(
        smooth=state.smooth,
        log=state.log,
        clip=state.clip,
        x_label="tokens" if state.tokens and not missing_tokens else "step",
        metric=metric,
        auto_log=state.overlay and state.log_auto,
        live=live,
    )
    note = _("no num_tokens: x is step") if state.tokens and missing_tokens else ""
    prefix = ""
    if state.overlay:
        prefix = "━ " + M.label(metric) + (f" ·◆ {M.label(twin)}" if twin else "") + " │"
    version = (*((r.name, r.generation) for r in shown), title, buckets)
    message = ""
    if run is not None and not lines and run.loaded and not state.overlay:
        # say why the chart is empty: a log sfttop cannot read must not look like a quiet one
        message = unread_reason(run, final=False) or ""
    return ChartData(_(title), lines, legend, hlines, opts, note, version, message=message, legend_prefix=prefix)


# -------------------------------------------------------------------------------- misc
def run_header(run: Run) -> str:
    """A one-line description of a run for panels: name, format and file state."""
    bits = [run_name(run), run.format]
    if run.error:
        bits.append(clean_text(reason(run.error)))
    if run.skipped:
        bits.append(_("{count} lines skipped").format(count=run.skipped))
    return " · ".join(bits)


# what the title says of a run that is not SFT (the seed's ranges are off for it)
_OBJECTIVE_TEXT = {Objective.PREFERENCE: N_("objective: preference"), Objective.RL: N_("objective: RL")}


def objective_text(run: Run) -> str:
    """The run's objective for the title bar, when it is not SFT."""
    text = _OBJECTIVE_TEXT.get(run.diagnoser.objective)
    return _(text) if text else ""


def is_critical(f: Finding) -> bool:
    return f.severity is Severity.CRITICAL
