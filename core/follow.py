"""``sfttop --follow``: the live engine printed as lines, for scripts and pipes."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import orjson

from sfttop.core.i18n import _

from .alert import AlertDispatcher, news
from .config import Config
from .diagnose import Finding
from .oserrors import reason
from .records import Event, EventKind, Record, expand
from .run import Monitor, record_json
from .sanitize import clean_text
from .textfmt import fmt_metric
from .wake import Waker, log_dirs
from .webhook import WebhookSender


def record_text(run: str, rec: Record) -> str:
    vals = " ".join(f"{k}={fmt_metric(v)}" for k, v in rec.metrics.items())
    ep = f" epoch={rec.epoch:.4g}" if rec.epoch is not None else ""
    return f"{run} {rec.kind.value} step={rec.step}{ep} {vals}"


def finding_text(run: str, f: Finding) -> str:
    return f"{run} FINDING {f.severity.value} {f.code} step={f.step}: {f.message}"


def event_line(run: str, ev: Event, fmt: str) -> str | None:
    if ev.kind not in (EventKind.CRASHED, EventKind.FINISHED, EventKind.RESUMED, EventKind.SOURCE):
        return None
    # A source event's message is a reader's word (core/tail.py keeps it English: RESET_WORDS).
    message = _(ev.message) if ev.kind is EventKind.SOURCE else ev.message
    if fmt == "jsonl":
        return orjson.dumps({"run": run, "kind": "event", "event": ev.kind.value, "message": message}).decode()
    return f"{run} EVENT {ev.kind.value}: {clean_text(message)}"


def follow(
    paths: list[str],
    config: Config,
    fmt: str,
    out: TextIO,
    interval: float = 0.5,
    stop: threading.Event | None = None,
    dispatcher: AlertDispatcher | None = None,
    err: TextIO | None = None,
    log_format: str | None = None,
    webhooks: WebhookSender | None = None,
) -> int:
    """Print every record and finding as it arrives, until ``stop`` is set or interrupted.

    The records already in the files are printed first, so a pipe sees the whole run;
    everything is printed once, in log order per run. ``dispatcher`` (``--alert-cmd``) is
    offered the same finding episodes as in the TUI: those news to this session, and so is
    ``webhooks`` (``--alert-webhook``), which only queues them. Their failures go to ``err``
    (stderr), never into the record stream.
    """
    stop = stop or threading.Event()
    err = err or sys.stderr
    # (remote runs join when their host answers: a slow host does not hold back local records)
    mon = Monitor(paths, config, fmt=log_format)
    waker = Waker()
    try:
        return _follow(mon, fmt, out, interval, stop, waker, dispatcher, err, webhooks)
    finally:
        mon.close()
        waker.close()
        if dispatcher is not None:
            dispatcher.close()
        if webhooks is not None:
            webhooks.close(wait=3.0)  # what was found just before the end still goes out
            _report(webhooks, err)


def _follow(
    mon: Monitor,
    fmt: str,
    out: TextIO,
    interval: float,
    stop: threading.Event,
    waker: Waker,
    dispatcher: AlertDispatcher | None,
    err: TextIO,
    webhooks: WebhookSender | None = None,
) -> int:
    announced: set[str] = set()
    while not stop.is_set():
        mon.rescan()
        before = {r.name for r in mon.runs if r.loaded}
        updates = mon.poll(16 << 20)
        if dispatcher is not None or webhooks is not None:
            found = news(mon.runs, updates, before)
            if dispatcher is not None:
                _alert(dispatcher, found, err)
            if webhooks is not None:
                for name, f in found:
                    webhooks.offer(name, f)
                _report(webhooks, err)
        for run in mon.runs:
            if run.error and run.name not in announced and not run.exists:
                announced.add(run.name)
                if fmt == "jsonl":
                    line = orjson.dumps({"run": run.name, "kind": "status", "message": reason(run.error)}).decode()
                else:
                    line = f"{run.name} STATUS {reason(run.error)}: {clean_text(run.path)}"
                out.write(line + "\n")
            elif run.exists:
                announced.discard(run.name)
        for name, up in updates.items():
            lines: list[str] = []
            for rec in expand(up.records):
                lines.append(record_json(name, rec).decode() if fmt == "jsonl" else record_text(name, rec))
            for ev in up.events:
                ln = event_line(name, ev, fmt)
                if ln is not None:
                    lines.append(ln)
            for f in up.opened:
                if fmt == "jsonl":
                    lines.append(orjson.dumps({"run": name, "kind": "finding", "finding": f.to_dict()}).decode())
                else:
                    lines.append(finding_text(name, f))
            if lines:
                out.write("\n".join(lines) + "\n")
        if updates:
            out.flush()
        if mon.loading:
            continue
        waker.watch(log_dirs([*mon.args, *(r.path for r in mon.runs)]))
        if waker.wait(interval, stop):
            stop.wait(0.02)  # let the writer finish its burst
    out.flush()
    return 0


def _alert(dispatcher: AlertDispatcher, found: list[tuple[str, Finding]], err: TextIO) -> None:
    for name, f in found:
        outcome = dispatcher.offer(name, f)
        if outcome.status == "failed":
            err.write(_("sfttop: --alert-cmd failed for {run} {code}: {error}").format(
                run=outcome.run, code=outcome.code, error=outcome.error) + "\n")
        elif outcome.status == "suppressed":
            err.write(_("sfttop: --alert-cmd rate-limited: {run} {code} not sent").format(
                run=outcome.run, code=outcome.code) + "\n")
    dispatcher.reap()
    err.flush()


def _report(webhooks: WebhookSender, err: TextIO) -> None:
    lines = webhooks.drain_errors()
    if lines:
        err.write("".join(line + "\n" for line in lines))
        err.flush()
