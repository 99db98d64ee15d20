"""``sfttop --report``: what the logs hold now, as JSON, text tables or Markdown.

The JSON form is the stable interface (documented in the README); text and Markdown are built
from the same dict, so the three never disagree. Everything that came from a log (run names,
paths, error lines) passes through ``clean_text`` before it is printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import orjson

from sfttop import __version__

from . import memory
from . import metrics as M
from .assess import assess, best_checkpoint, status_word
from .config import Config
from .diagnose import Severity, json_value
from .i18n import N_, _, pgettext
from .liveness import state_word
from .parse import UNKNOWN
from .records import Kind
from .run import Monitor, Run
from .sanitize import clean_text
from .textfmt import cells, fmt_metric, ljust_cells
from .unread import has_records, unread_reason

# The objective as the text report names it (JSON keeps the code).
_OBJECTIVE_WORDS = (N_("sft"), N_("preference"), N_("rl"))

# The train metrics shown first, in this order; other metrics follow alphabetically.
# How long a report waits for a remote host to list its runs (ssh's own ConnectTimeout ends a
# dead host's attempt sooner).
REMOTE_WAIT = 30.0
_MAIN = (M.LOSS, M.GRAD_NORM, M.LR, M.ENTROPY, M.TOKEN_ACC, M.NUM_TOKENS)


def report_status(run: Run, now: float) -> tuple[str, str]:
    """The run's status word in a report and its detail (``stopped: last write 3h05m ago ...``);
    the TUI's ``snapshot.run_status`` is its glyph-and-word twin."""
    if not run.exists:
        return "missing", state_word("missing")
    if run.error is not None and run.data.count(Kind.TRAIN) == 0:
        return "unreadable", state_word("unreadable")
    life = run.liveness(now)
    return life.state.value, life.describe()


def run_dict(run: Run, config: Config, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    data = run.data
    diag = run.diagnoser
    latest_train = {k: json_value(v) for k, v in sorted(data.latest(Kind.TRAIN).items(), key=_metric_order)}
    latest_eval = {k: json_value(v) for k, v in sorted(data.latest(Kind.EVAL).items(), key=_metric_order)}
    _step, total, eta = run.progress(now)
    state, status = report_status(run, now)
    return {
        "name": clean_text(run.name),
        "path": clean_text(run.path),
        "format": run.format,
        "objective": str(diag.objective),
        "status": state,
        "status_detail": status,
        "last_write_seconds_ago": round(max(0.0, now - run.source.mtime), 1) if run.source.mtime else None,
        "attempt": run.attempt,
        "error": run.error if (run.error and not run.exists) or state == "unreadable" else None,
        "records": {"train": data.count(Kind.TRAIN), "eval": data.count(Kind.EVAL)},
        "skipped_lines": run.skipped,
        # (a progress-only log has no record step: how far its progress went is the answer)
        "last_step": data.last_step if data.last_step is not None else _step,
        "epoch": json_value(data.epoch),
        "max_steps": total,
        "eta_seconds": None if eta is None else round(eta, 1),
        "crash": run.crashed,
        "latest": {"train": latest_train, "eval": latest_eval},
        "summary": {k: json_value(v) for k, v in sorted(data.summary.items())},
        "findings": [f.to_dict() for f in diag.findings],
        "checklist": run.checklist.update(data, diag).to_dict(),
        "assessment": assess(data, diag, config.thresholds).to_dict(),
        "best_checkpoint": best_checkpoint(data, run.path, *_lister(run)),
    }


def _lister(run: Run) -> tuple[Callable[[str], dict[int, str]], ...]:
    """How ``best_checkpoint`` lists a run's checkpoint directories: on its host, for a remote run."""
    from .remote import RemoteStateFile, RemoteTail

    src = run.source
    return (src.list_checkpoints,) if isinstance(src, (RemoteTail, RemoteStateFile)) else ()


def _metric_order(item: tuple[str, float]) -> tuple[int, str]:
    name = item[0]
    base = name[5:] if name.startswith("eval_") else name
    return (_MAIN.index(base) if base in _MAIN else len(_MAIN), name)


def build(
    paths: Sequence[str],
    config: Config,
    clock: Callable[[], float] | None = None,
    *,
    unread: list[str] | None = None,
    log_format: str | None = None,
) -> tuple[dict[str, Any], int]:
    """The report dict and the exit status it implies. ``clock`` fixes "now" (tests).
    ``unread``: leave out the runs that hold no record and add why to this list.
    ``log_format`` reads every log as that input format (no detection)."""
    if clock is not None:
        mon = Monitor(list(paths), config, fmt=log_format, clock=clock, remote_wait=REMOTE_WAIT)
    else:
        mon = Monitor(list(paths), config, fmt=log_format, remote_wait=REMOTE_WAIT)
    try:
        mon.load_all(helper=True)
        if unread is not None:  # a log nobody could read must not come out as a clean report
            unread.extend(why for r in mon.runs if (why := unread_reason(r)) is not None)
            mon.runs = [r for r in mon.runs if has_records(r)]
        now = mon.clock()
        runs = [run_dict(r, config, now) for r in mon.runs]  # (a remote run lists its checkpoints)
    finally:
        mon.close()
    code = 0
    if any(r.diagnoser.worst() is Severity.CRITICAL for r in mon.runs):
        code = 1
    unreadable = [r for r in runs if r["status"] in ("missing", "unreadable")]
    if not mon.runs or unreadable:
        code = 2
    report = {"sfttop_version": __version__, "runs": runs}
    if not mon.runs:
        report["error"] = _("no log found in: {paths}").format(paths=", ".join(clean_text(p) for p in paths))
    return report, code


def run_report(paths: Sequence[str], config: Config, fmt: str, out: TextIO, log_format: str | None = None) -> int:
    """Print the report of every run that holds records; a run that does not (missing,
    unreadable, or no line sfttop recognises) is one line on stderr, never a clean report, and
    the exit status is then 2. Each error is said once, on stderr only."""
    memory.hold_freed()  # one load and exit (the helpers forked for it inherit this)
    errors: list[str] = []
    report, code = build(paths, config, unread=errors, log_format=log_format)
    if report["runs"]:
        if fmt == "json":
            out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        elif fmt == "md":
            out.write(render_md(report))
        else:
            out.write(render_text(report))
        out.flush()
    elif not errors:
        errors.append(str(report.get("error") or _("no log found")))
    if errors:
        import sys

        for e in errors:
            print(_("sfttop: {error}").format(error=e), file=sys.stderr)
        code = 2
    return code


# ------------------------------------------------------------------------------------------------
# text and markdown


def num(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_metric(v)
    return str(v)


# Verdict and severity words, short, for the report's status columns.
_BADGE = {
    "pass": N_("PASS"),
    "warn": N_("WARN"),
    "fail": N_("FAIL"),
    "pending": "....",
    "critical": N_("CRIT"),
    "warning": N_("WARN"),
    "info": N_("INFO"),
}


def _badge(word: str) -> str:
    return _(_BADGE[word]) if word in _BADGE else word


def _table(rows: list[list[str]], header: list[str], md: bool) -> list[str]:
    if md:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return out
    # widths in terminal cells: a Chinese word is two cells per character
    widths = [max(cells(h), *(cells(r[i]) for r in rows)) if rows else cells(h) for i, h in enumerate(header)]
    line = "  ".join(ljust_cells(h, w) for h, w in zip(header, widths))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(ljust_cells(c, w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return out


def _run_lines(r: dict[str, Any], md: bool) -> list[str]:
    L: list[str] = []
    h = "## " if md else "== "
    L.append(f"{h}{r['name']}")
    L.append("")
    rec = r["records"]
    step = num(r["last_step"]) + (f"/{r['max_steps']}" if r["max_steps"] else "")
    bits = [
        _("status: {status}").format(status=r["status_detail"]),
        _("format: {format}").format(format=pgettext("input format", "unknown") if r["format"] == UNKNOWN else r["format"]),
        _("objective: {objective}").format(objective=_(r["objective"])),
        _("step {step}").format(step=step),
        _("epoch {epoch}").format(epoch=num(r["epoch"])),
        _("records: {train} train, {eval} eval").format(train=rec["train"], eval=rec["eval"]),
    ]
    if r["skipped_lines"]:
        bits.append(_("{count} unreadable lines skipped").format(count=r["skipped_lines"]))
    L.append(("`" + r["path"] + "`  \n" if md else r["path"] + "\n") + " · ".join(bits))
    if r["error"]:
        L.append(_("error: {error}").format(error=_(r["error"])))
    if r["crash"]:
        L.append(_("crashed: {crash}").format(crash=r["crash"]))
    L.append("")

    findings = r["findings"]
    L.append(("### " if md else "") + _("Findings"))
    L.append("")
    if not findings:
        L.append(_("none: nothing alarming in this run"))
    else:
        rows = []
        for f in findings:
            state = _("active") if f["active"] else _("ended at step {step}").format(step=f["end_step"])
            rows.append([_badge(f["severity"]), f["code"], str(f["step"]), state, f["message"]])
        L += _table(rows, [_("severity"), _("code"), _("step"), _("state"), _("message")], md)
        advice = [(f["code"], a) for f in findings if f["active"] for a in f["advice"][:3]]
        if advice:
            L.append("")
            L.append(_("Advice:"))
            seen = set()
            for code, a in advice:
                if a not in seen:
                    seen.add(a)
                    L.append(_("- {advice} ({code})").format(advice=a, code=code))
    L.append("")
    L += _assessment_lines(r["assessment"], md)
    L += _checklist_lines(r["checklist"], md)
    bc = r["best_checkpoint"]
    L.append(("### " if md else "") + _("Best checkpoint"))
    L.append("")
    if bc is None:
        L.append(_("none yet: the run has logged no eval_loss (best is chosen by eval loss, never train loss)"))
    else:
        where = bc.get("path") or _("no checkpoint directory found")
        acc = bc.get("eval_token_accuracy")
        if acc is None:
            line = _("step {step}: eval_loss {loss} -> {where}")
        else:
            line = _("step {step}: eval_loss {loss}, eval token accuracy {acc} -> {where}")
        L.append(line.format(step=bc["step"], loss=num(bc["eval_loss"]), acc=num(acc), where=where))
        if bc.get("note"):
            L.append(str(bc["note"]))
    L.append("")
    return L


def _assessment_lines(a: dict[str, Any], md: bool) -> list[str]:
    L: list[str] = []
    L.append(("### " if md else "") + _("Assessment"))
    L.append("")
    rows = [[m["metric"], num(m["value"]), status_word(m["status"]), m.get("note", "")] for m in a.get("metrics", [])]
    if rows:
        L += _table(rows, [_("metric"), _("value"), _("status"), _("note")], md)
        L.append("")
    comp = a.get("comparison", [])
    if comp:
        rows = [[c["item"], num(c["train"]), num(c["eval"]), c["diff"], c["judgement"]] for c in comp]
        L += _table(rows, [_("train vs eval"), _("train"), _("eval"), _("difference"), _("judgement")], md)
        L.append("")
    if md:
        # Two real lists, each after a blank line: "  ! x" under "  + y" would be a lazy
        # continuation of the last "+" item in CommonMark, one run-on bullet.
        L.append(_("**Overall:** {verdict}").format(verdict=a.get("verdict", "")))
        for title, items in ((_("Going well:"), a.get("positives", [])), (_("Cautions:"), a.get("cautions", []))):
            if items:
                L += ["", title, ""]
                L += [f"- {x}" for x in items]
    else:
        L.append(_("Overall: {verdict}").format(verdict=a.get("verdict", "")))
        for p in a.get("positives", []):
            L.append(f"  + {p}")
        for c in a.get("cautions", []):
            L.append(f"  ! {c}")
    L.append("")
    return L


def _checklist_lines(c: dict[str, Any], md: bool) -> list[str]:
    L: list[str] = [("### " if md else "") + _("Checklist"), ""]
    for cad in c.values():
        latest = cad.get("latest")
        if latest is None:
            L.append(_("{cadence}: pending (no data yet)").format(cadence=cad["label"]))
            continue
        hist = "".join(_HIST.get(w["status"], "?") for w in cad["windows"][-30:])
        L.append(_("{cadence} — {window}  history (oldest→newest): {history}").format(
            cadence=cad["label"], window=latest["label"], history=hist))
        rows = []
        for it in latest["items"]:
            trail = "".join(
                _HIST.get(_item_status(w, it["id"]), "?") for w in cad["windows"][-12:]
            )
            rows.append([_badge(it["status"]), it["label"], it["detail"], trail])
        L += _table(rows, [_("status"), _("check"), _("detail"), _("history")], md)
        L.append("")
    return L


_HIST = {"pass": "+", "warn": "~", "fail": "x", "pending": "."}


def _item_status(window: dict[str, Any], item_id: str) -> str:
    for it in window["items"]:
        if it["id"] == item_id:
            return str(it["status"])
    return "pending"


def render_text(report: dict[str, Any]) -> str:
    L: list[str] = []
    if "error" in report:
        L.append(_("sfttop: {error}").format(error=report["error"]))
    for r in report["runs"]:
        L += _run_lines(r, md=False)
    return "\n".join(clean_text_keep_newlines(x) for x in L) + "\n"


def render_md(report: dict[str, Any]) -> str:
    L = [_("# sfttop report"), ""]
    if "error" in report:
        L.append(f"**{report['error']}**")
    for r in report["runs"]:
        L += _run_lines(r, md=True)
    return "\n".join(clean_text_keep_newlines(x) for x in L) + "\n"


def clean_text_keep_newlines(s: str) -> str:
    return "\n".join(clean_text(part) for part in s.split("\n"))
