"""Colours and glyphs: one colour per run everywhere, and a glyph and a word for every status.

Colour never carries meaning alone (``NO_COLOR`` and monochrome terminals): every status has a
glyph and a short word. Run colours avoid pure red and green, which mean "critical" and "ok".
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]

RUN_COLORS: tuple[RGB, ...] = (
    (88, 166, 255),  # blue
    (255, 159, 67),  # orange
    (190, 130, 255),  # violet
    (64, 200, 200),  # teal
    (255, 110, 180),  # pink
    (205, 190, 80),  # olive
    (150, 160, 255),  # periwinkle
    (190, 150, 110),  # tan
)


def run_rgb(index: int) -> RGB:
    return RUN_COLORS[index % len(RUN_COLORS)]


def run_hex(index: int) -> str:
    r, g, b = run_rgb(index)
    return f"#{r:02x}{g:02x}{b:02x}"


def mix(rgb: RGB, other: RGB, t: float) -> RGB:
    """``rgb`` moved ``t`` of the way towards ``other``."""
    return (
        round(rgb[0] + (other[0] - rgb[0]) * t),
        round(rgb[1] + (other[1] - rgb[1]) * t),
        round(rgb[2] + (other[2] - rgb[2]) * t),
    )


GREY: RGB = (128, 128, 128)
NAN_RGB: RGB = (255, 70, 70)
WARN_RGB: RGB = (230, 180, 40)
CRIT_RGB: RGB = (235, 70, 70)


@dataclass(frozen=True)
class Status:
    """How a state is shown: glyph, word, and the component class that colours it."""

    glyph: str
    word: str
    css: str  # suffix of the widget's component class, e.g. "critical" → "run-list--critical"


CRITICAL = Status("✖", "CRIT", "critical")
WARNING = Status("▲", "WARN", "warning")
INFO = Status("●", "info", "info")
OK = Status("✔", "ok", "ok")
LOADING = Status("◌", "load", "muted")
MISSING = Status("?", "gone", "warning")
DONE = Status("■", "done", "ok")
WAITING = Status("…", "wait", "muted")
ERROR = Status("!", "err", "warning")

SEVERITY_STATUS = {"critical": CRITICAL, "warning": WARNING, "info": INFO}


def severity_status(sev: object) -> Status:
    name = getattr(sev, "value", sev)
    return SEVERITY_STATUS.get(str(name).lower(), INFO)


# Checklist states (core/checklist/windows.py): pass / warn / fail / pending.
CHECK_STATUS = {
    "pass": Status("✔", "pass", "ok"),
    "warn": Status("▲", "warn", "warning"),
    "fail": Status("✖", "FAIL", "critical"),
    "pending": Status("·", "wait", "muted"),
}


def check_status(state: object) -> Status:
    name = str(getattr(state, "value", state)).lower()
    return CHECK_STATUS.get(name, CHECK_STATUS["pending"])
