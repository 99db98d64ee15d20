"""Whether a run is still alive, from its log's content and its age together.

Content says finished (the summary line, ``should_training_stop``, 100% progress, "Training
completed") or crashed (a traceback, out of memory). Age says the rest: a run whose records stop
coming for well past its own pace is stalled, and one whose file has not been written at all for
much longer is stopped. Both count from the file's modification time, so a log copied from
another box, or a run that died before sfttop started, is judged from the first look.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from .i18n import N_, _
from .numfmt import fmt_duration

if TYPE_CHECKING:
    from .run import Run


class State(str, Enum):
    WAITING = "waiting"  # the file is there, but no record yet (loading a model, tokenizing)
    RUNNING = "running"
    FINISHED = "finished"
    CRASHED = "crashed"
    STALLED = "stalled"  # no new record for well past the run's usual interval
    STOPPED = "stopped"  # the file not written at all for a long time: the process is gone


# The state words as a person reads them (the JSON keeps State's values).
STATE_WORDS: dict[str, str] = {
    "waiting": N_("waiting"),
    "running": N_("running"),
    "finished": N_("finished"),
    "crashed": N_("crashed"),
    "stalled": N_("stalled"),
    "stopped": N_("stopped"),
    "missing": N_("missing"),
    "unreadable": N_("unreadable"),
}


def state_word(state: str) -> str:
    """``running`` -> the chosen language's word for a run's state (unknown states unchanged)."""
    return _(STATE_WORDS[state]) if state in STATE_WORDS else state


@dataclass(frozen=True)
class Liveness:
    state: State
    silent: float  # seconds since the log was last written (0 when unknown)
    step: int | None
    total: int | None

    @property
    def moving(self) -> bool:
        """Worth an ETA: the run is going and its progress means something."""
        return self.state in (State.RUNNING, State.WAITING)

    def describe(self) -> str:
        """``stopped: last write 3h05m ago at step 202 of 5100``; just the state when running."""
        word = state_word(self.state.value)
        if self.state in (State.RUNNING, State.WAITING, State.FINISHED, State.CRASHED):
            return word
        ago = fmt_duration(self.silent)
        if self.step is None:
            return _("{state}: last write {ago} ago").format(state=word, ago=ago)
        if self.total:
            return _("{state}: last write {ago} ago at step {step} of {total}").format(
                state=word, ago=ago, step=self.step, total=self.total
            )
        return _("{state}: last write {ago} ago at step {step}").format(state=word, ago=ago, step=self.step)


def liveness(run: Run, now: float) -> Liveness:
    step, total, _eta = run.progress()
    mtime = run.source.mtime
    silent = max(0.0, now - mtime) if mtime else 0.0
    if run.crashed:
        return Liveness(State.CRASHED, silent, step, total)
    if run.finished:
        return Liveness(State.FINISHED, silent, step, total)
    diag = run.diagnoser
    stalled = diag.stalled
    if stalled or (mtime and silent > diag.stall_limit()):
        t = run.config.thresholds
        state = State.STOPPED if silent > max(t.stopped_seconds, diag.stall_limit()) else State.STALLED
        return Liveness(state, silent, step, total)
    if run.data.last_step is None:
        return Liveness(State.WAITING, silent, step, total)
    return Liveness(State.RUNNING, silent, step, total)
