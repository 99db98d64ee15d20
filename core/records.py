"""The values that flow from parsers to the store, the diagnoser and the renderers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Kind(str, Enum):
    TRAIN = "train"
    EVAL = "eval"
    SUMMARY = "summary"


@dataclass(slots=True)
class Record:
    """One logged metrics dict.

    ``step`` is the optimiser step the record belongs to; when the log does not say (HF stdout
    captures carry no step) it is inferred and ``step_inferred`` is set. ``offset`` is the byte
    offset of the line in its file, so a record can always be traced back to its source.
    """

    kind: Kind
    step: int
    metrics: dict[str, float]
    epoch: float | None = None
    offset: int = -1
    step_inferred: bool = False


class EventKind(str, Enum):
    CRASHED = "crashed"  # a traceback, out-of-memory, NCCL error: message holds the error line
    FINISHED = "finished"  # the final train_runtime summary, or a framework's final object
    PROGRESS = "progress"  # step/total and ETA from a progress bar or framework fields
    MAX_STEPS = "max_steps"  # total optimisation steps announced by a banner
    RESUMED = "resumed"  # steps went backwards: the run was restarted from a checkpoint
    SOURCE = "source"  # the file vanished, reappeared, was truncated or rotated, or is unreadable


@dataclass(slots=True)
class Event:
    kind: EventKind
    message: str = ""
    offset: int = -1
    step: int | None = None
    total: int | None = None
    eta_seconds: float | None = None
    extra: dict[str, str] = field(default_factory=dict)
