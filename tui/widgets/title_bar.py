"""``TitleBar``: one line on top: the selected run, its progress and ETA, what the others are up to.

It is the only place the selected run's name shows when the run list is collapsed (small panes),
so it is built to shed parts from the right as the width shrinks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text

from sfttop.core.i18n import _
from sfttop.tui.cells import cell_len, fit
from sfttop.tui.palette import run_hex
from sfttop.tui.widgets.styles_memo import StylesMemo
from sfttop.tui.widgets.text_strips import OneLine


@dataclass(frozen=True)
class TitleInfo:
    app: str  # "sfttop", "sfttop (demo)"
    run: str  # selected run name ("" when none)
    color_index: int
    index: int
    count: int
    progress: str  # "step 900/4000 22% · ep 0.83 · ETA 9m40s"
    state: str  # "finished", "crashed", "loading 45%", ...
    others: str  # "others ✖1 CRIT"
    alerts: str  # "alerts 2 sent"
    loading: str = ""  # overall history loading, "loading 3 runs 45%"
    progress_short: str = ""  # "90/90 · ep 30" for narrow panes
    objective: str = ""  # "objective: preference"; "" for SFT (what every other run is)
    others_short: str = ""  # "others ✖1": the alarms' glyphs and counts without their words


def title_text(info: TitleInfo, width: int, styles: dict[str, str]) -> Text:
    """The title line; in a narrow pane the run's position ``[2/3]`` and the app's suffix go
    before its progress does. The other runs' alarms are never dropped: in a small pane the
    title is the only place they show."""
    t, complete = _title(info, width, styles, compact=False)
    if not complete:
        t, complete = _title(info, width, styles, compact=True)
    if not complete:
        t, _done = _title(info, width, styles, compact=True, words=False)
    return t


def _title(
    info: TitleInfo, width: int, styles: dict[str, str], compact: bool, words: bool = True
) -> tuple[Text, bool]:
    """The line, and whether the progress and the other runs' alarms both made it."""
    t = Text(no_wrap=True, overflow="ellipsis")
    # compact: the app's name without its suffix ("sfttop (demo)", "sfttop（演示）")
    app = re.split(r"[ (（]", info.app, maxsplit=1)[0] if compact else info.app
    others = info.others if words or not info.others_short else info.others_short
    # room kept at the end for the other runs' alarms, whatever else has to go
    reserve = cell_len(others) + 3 if others else 0
    t.append(f" {app} ", style=styles.get("app", ""))
    if info.run:
        t.append(" ▸ ")
        name = fit(info.run, max(2, width - t.cell_len - reserve))
        t.append(name, style=f"bold {run_hex(info.color_index)}")
        if info.count > 1 and not compact:
            t.append(f" [{info.index + 1}/{info.count}]", style=styles.get("muted", ""))
    elif info.count == 0:
        t.append("  " + _("waiting for logs…"), style=styles.get("muted", ""))
    optional = [
        (info.state, styles.get("state", "")),
        (info.progress, ""),
        (info.objective, styles.get("muted", "")),
        (info.loading, styles.get("muted", "")),
        (info.alerts, styles.get("muted", "")),
    ]
    dropped = False
    for i, (text, style) in enumerate(optional):
        if not text:
            continue
        if t.cell_len + 3 + cell_len(text) + reserve > width and i == 1 and info.progress_short:
            text = info.progress_short
        if t.cell_len + 3 + cell_len(text) + reserve > width:
            dropped = dropped or i <= 1
            continue  # drop what does not fit rather than cut it mid-word
        t.append(" │ ", style=styles.get("muted", ""))
        t.append(text, style=style)
    if others:
        t.append(" │ ", style=styles.get("muted", ""))
        t.append(others, style=styles.get("alert", ""))
    return t, not dropped


class TitleBar(OneLine):
    DEFAULT_CSS = """
    TitleBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TitleBar > .title-bar--app { background: $primary; color: $text; text-style: bold; }
    TitleBar > .title-bar--muted { color: $text-muted; }
    TitleBar > .title-bar--state { color: $warning; text-style: bold; }
    TitleBar > .title-bar--alert { color: $error; text-style: bold; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"title-bar--app", "title-bar--muted", "title-bar--state", "title-bar--alert"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: TitleInfo | None = None
        self._styles_memo = StylesMemo("title-bar", ("app", "muted", "state", "alert"))
        self._line: tuple[int, Text] | None = None  # (width, the line) for the info shown

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles_memo.clear()
        self._line = None

    def set_info(self, info: TitleInfo) -> None:
        if info != self.info:
            self.info = info
            self._line = None
            self.refresh()

    def render(self) -> Text:
        width = self.content_size.width
        if self._line is None or self._line[0] != width:
            text = Text(" sfttop") if self.info is None else title_text(self.info, width, self._styles_memo.get(self))
            self._line = (width, text)
        return self._line[1]
