"""Colours and glyphs: one colour per run everywhere, and a glyph and a word for every status.

Colour never carries meaning alone (``NO_COLOR`` and monochrome terminals): every status has a
glyph and a short word. Run colours avoid pure red and green, which mean "critical" and "ok".
"""

from __future__ import annotations

from dataclasses import dataclass

from sfttop.core.i18n import N_, _

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


# Each run's glyph, drawn along its line in the overlay and shown in the legend: without colour
# (NO_COLOR, a monochrome terminal) runs are told apart by these. None of them is a mark with
# another meaning on the chart (◆ eval, ▲▼ clipped, ✕ NaN).
RUN_GLYPHS: tuple[str, ...] = ("●", "■", "★", "✚", "○", "□", "◇", "✦", "◎", "✱", "♣", "♠", "▣", "✿", "❖", "⬢")


# The same hues darkened for a light theme (TEXTUAL_THEME=textual-light): the colours above are
# for Textual's dark background and fall to about 1.5:1 contrast on a light one; these keep 3:1
# or more on #E0E0E0 (tests/tui/test_tui_render.py measures both).
RUN_COLORS_LIGHT: tuple[RGB, ...] = (
    (66, 124, 191),
    (173, 108, 46),
    (148, 101, 199),
    (43, 134, 134),
    (194, 84, 137),
    (133, 123, 52),
    (109, 117, 186),
    (148, 117, 86),
)
_palette: list[tuple[RGB, ...]] = [RUN_COLORS]


def use_dark_theme(dark: bool) -> None:
    """Pick the run colours for the app's theme (called once the app knows its theme)."""
    _palette[0] = RUN_COLORS if dark else RUN_COLORS_LIGHT


def run_rgb(index: int) -> RGB:
    colors = _palette[0]
    return colors[index % len(colors)]


def run_glyph(index: int) -> str:
    return RUN_GLYPHS[index % len(RUN_GLYPHS)]


def eval_rgb(index: int) -> RGB:
    """The colour of a run's eval line when it is charted alone: a far hue from its train line
    (blue train, orange eval), so the two differ in colour as well as in shape."""
    return run_rgb(index + 1)


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
    word: str  # English, marked for the catalog: shown through ``shown_word``
    css: str  # suffix of the widget's component class, e.g. "critical" → "run-list--critical"

    @property
    def shown_word(self) -> str:
        """The word in the user's language (every status word is 4 cells in both)."""
        return _(self.word)


CRITICAL = Status("✖", N_("CRIT"), "critical")
WARNING = Status("▲", N_("WARN"), "warning")
INFO = Status("●", N_("info"), "info")
OK = Status("✔", N_("ok"), "ok")
LOADING = Status("◌", N_("load"), "muted")
MISSING = Status("?", N_("gone"), "warning")
DONE = Status("■", N_("done"), "ok")
WAITING = Status("…", N_("wait"), "muted")  # no file yet, or no record in it yet
ERROR = Status("!", N_("err"), "warning")

SEVERITY_STATUS = {"critical": CRITICAL, "warning": WARNING, "info": INFO}


def severity_status(sev: object) -> Status:
    name = getattr(sev, "value", sev)
    return SEVERITY_STATUS.get(str(name).lower(), INFO)


# Checklist states (core/checklist/windows.py): pass / warn / fail / pending.
CHECK_STATUS = {
    "pass": Status("✔", N_("pass"), "ok"),
    "warn": Status("▲", N_("warn"), "warning"),
    "fail": Status("✖", N_("FAIL"), "critical"),
    "pending": Status("·", N_("pend"), "muted"),
}


def check_status(state: object) -> Status:
    name = str(getattr(state, "value", state)).lower()
    return CHECK_STATUS.get(name, CHECK_STATUS["pending"])
