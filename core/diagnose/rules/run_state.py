"""Run-state rules: run_crashed (the tailer or parser saw the run die), run_stalled (nothing
arrived for much longer than the usual interval), and what finishes a run."""

from __future__ import annotations

from collections import deque

from sfttop.core.diagnose.episodes import Code, Episodes
from sfttop.core.diagnose.stats import median
from sfttop.core.i18n import _
from sfttop.core.records import Event, EventKind
from sfttop.core.textfmt import duration

from .base import Context

_CRASHED, _STALLED = Code.RUN_CRASHED, Code.RUN_STALLED


class RunState:
    __slots__ = ("crashed", "ctx", "finished", "intervals", "last_arrival")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.finished = False
        self.crashed = False
        self.last_arrival: float | None = None
        self.intervals: deque[float] = deque(maxlen=64)  # the last gaps between arrivals

    def arrived(self, now: float) -> None:
        """A record arrived at ``now``: the gap since the last one, for the stall check (a clock
        that went back is ignored)."""
        last = self.last_arrival
        if last is None or now >= last:
            if last is not None and now > last:
                self.intervals.append(now - last)
            self.last_arrival = now

    def train(self, step: int, ep: Episodes) -> None:
        """A train record at ``step``: the run is going (again, after a crash: a restart)."""
        if ep.open and _CRASHED in ep.open:
            ep.close(_CRASHED, step)
        self.crashed = False
        self.finished = False

    def event(self, ev: Event, step: int, last_train_step: int | None, ep: Episodes) -> None:
        """A tailer/parser event; ``step`` is where it happened."""
        if ev.kind is EventKind.CRASHED:
            self.crashed = True
            msg = ev.message.strip() or _("the run crashed")
            ep.hot(_CRASHED, step, "", None, _("crashed after step {step}: {msg}").format(step=step, msg=msg)[:400])
        elif ev.kind is EventKind.FINISHED:
            self.finished = True
            if _STALLED in ep.open:
                ep.close(_STALLED, step)
        elif ev.kind is EventKind.MAX_STEPS:
            if ev.total and ev.total > 0:
                self.ctx.max_steps = ev.total
        elif ev.kind is EventKind.PROGRESS:
            if ev.total and ev.total > 0 and self.ctx.max_steps is None and ev.total >= (last_train_step or 0):
                self.ctx.max_steps = ev.total

    def median_interval(self) -> float:
        return median(list(self.intervals)) if self.intervals else 0.0

    def stall_limit(self) -> float:
        t = self.ctx.t
        return max(t.stall_factor * self.median_interval(), t.stall_min_seconds)

    def stall(self, now: float, step: int, ep: Episodes) -> None:
        """Open run_stalled when nothing arrived for max(stall_factor x the median interval
        between records, stall_min_seconds). Not for finished or crashed runs."""
        if self.finished or self.crashed or self.last_arrival is None or _STALLED in ep.open:
            return
        limit = self.stall_limit()
        silent = now - self.last_arrival
        if silent > limit:
            usual = self.median_interval()
            why = _("the usual interval is {usual}").format(usual=duration(usual)) if usual > 0 else _("no usual interval seen yet")
            ep.hot(
                _STALLED,
                step,
                "",
                None,
                _("no new metrics for {silent} after step {step} ({why}; limit {limit})").format(silent=duration(silent), step=step, why=why, limit=duration(limit)),
            )
