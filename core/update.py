"""What one poll of one run produced: the message between a run's reading and its watchers."""

from __future__ import annotations

from dataclasses import dataclass, field

from .diagnose import Finding
from .records import Event, Item


@dataclass
class RunUpdate:
    """What one poll of one run produced."""

    records: list[Item] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    opened: list[Finding] = field(default_factory=list)  # finding episodes that began now
    changed: bool = False
    reset: str | None = None  # the source started over (a new attempt, unless it continues)
