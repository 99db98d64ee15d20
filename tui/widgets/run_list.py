"""``RunList``: every run, one line each: number, status glyph and word, name, step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.events import Click
from textual.message import Message
from textual.reactive import reactive

from sfttop.core.i18n import _
from sfttop.tui.cells import cell_len, fit, ljust
from sfttop.tui.palette import Status, run_hex
from sfttop.tui.widgets.styles_memo import StylesMemo
from sfttop.tui.widgets.text_strips import ManyLines


@dataclass(frozen=True)
class RunRow:
    name: str  # already cleaned of control characters
    color_index: int
    status: Status
    detail: str  # "900/4000", "◌ 45%", "gone"...


def row_text(
    row: RunRow, index: int, selected: bool, width: int, styles: dict[str, str], show_word: bool = True
) -> Text:
    """One run's line, ``width`` cells wide. ``styles`` maps a status css name to a Rich style."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("▶" if selected else " ", style="bold" if selected else "")
    t.append(str(index + 1) if index < 9 else " ", style="dim")
    t.append(" ")
    st = styles.get(row.status.css, "")
    t.append(row.status.glyph, style=st)
    if show_word:
        t.append(ljust(row.status.shown_word, 4), style=st)
    t.append(" ")
    detail = row.detail
    room = width - t.cell_len - cell_len(detail) - 1
    if room < 4:
        detail = ""
        room = width - t.cell_len
    name = fit(row.name, max(2, room))
    t.append(name, style=f"bold {run_hex(row.color_index)}" if selected else run_hex(row.color_index))
    pad = width - t.cell_len - cell_len(detail)
    if detail and pad >= 1:
        t.append(" " * pad)
        t.append(detail, style="dim" if not selected else "")
    return t


class RunList(ManyLines):
    """The runs being watched. Selection is the app's state; this widget only shows it."""

    DEFAULT_CSS = """
    RunList {
        height: auto;
        max-height: 14;
        border: round $primary 40%;
        border-title-color: $text-muted;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RunList > .run-list--critical { color: $error; text-style: bold; }
    RunList > .run-list--warning { color: $warning; }
    RunList > .run-list--info { color: $primary; }
    RunList > .run-list--ok { color: $success; }
    RunList > .run-list--muted { color: $text-muted; }
    RunList > .run-list--cursor { background: $boost; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-list--critical",
        "run-list--warning",
        "run-list--info",
        "run-list--ok",
        "run-list--muted",
        "run-list--cursor",
    }

    selected: reactive[int] = reactive(0)

    class Clicked(Message):
        """A run's line was clicked (the mouse is optional; keys do everything)."""

        def __init__(self, index: int) -> None:
            self.index = index
            super().__init__()

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: tuple[RunRow, ...] = ()
        self.border_title = _("runs")
        self._top = 0  # first row shown when the list is taller than the widget
        self._more = ""
        self._styles_memo = StylesMemo("run-list", ("critical", "warning", "info", "ok", "muted", "cursor"))
        # ((rows, selection, width, height), the lines shown from row _top)
        self._shown: tuple[tuple[tuple[RunRow, ...], int, int, int] | None, list[Text]] = (None, [])

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles_memo.clear()
        self._shown = (None, [])

    def set_rows(self, rows: tuple[RunRow, ...]) -> None:
        if rows != self.rows:
            grew = len(rows) != len(self.rows)
            lines = self.lines()
            self.rows = rows
            title = _("runs ({count})").format(count=len(rows)) if len(rows) > 1 else _("runs")
            if self.border_title != title:
                self.border_title = title
            if grew:
                self.refresh(layout=True)
            else:
                self.repaint_lines(lines)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.rows))

    def render(self) -> Text:
        if not self.rows:
            return Text(_("waiting for logs…"), style="dim")
        return super().render()

    def lines(self) -> list[Text]:
        """The rows on screen, one Text each, made once per change of rows, selection or size."""
        if not self.rows:
            return []
        width = self.content_size.width
        height = max(1, self.content_size.height)
        key = (self.rows, self.selected, width, height)
        if self._shown[0] == key:
            return self._shown[1]
        styles = self._styles_memo.get(self)
        cursor = styles["cursor"]
        show_word = width >= 26
        # More runs than lines: keep the selected one in view (no scrollbar, keys move it).
        top = was_top = self._top
        if self.selected < top:
            top = self.selected
        elif self.selected >= top + height:
            top = self.selected - height + 1
        top = max(0, min(top, len(self.rows) - height))
        self._top = top
        self._set_more(top, height)
        # (a row that is the same object as in the lines shown, at the same place, keeps its line:
        # between two redraws of the whole list only the selected run's row changes)
        was_key, was_lines = self._shown
        was_rows = was_key[0] if was_key is not None and was_key[1:] == key[1:] and was_top == top else ()
        lines = []
        for i in range(top, min(len(self.rows), top + height)):
            row = self.rows[i]
            if i < len(was_rows) and was_rows[i] is row and i - top < len(was_lines):
                lines.append(was_lines[i - top])
                continue
            line = row_text(row, i, i == self.selected, width, styles, show_word)
            if i == self.selected:
                line.stylize(cursor)
                line.pad_right(max(0, width - line.cell_len))
                line.stylize(cursor)
            lines.append(line)
        self._shown = (key, lines)
        return lines

    def _set_more(self, top: int, height: int) -> None:
        below = len(self.rows) - top - height
        if top > 0 and below > 0:
            sub = _("↑{above} ↓{below} more").format(above=top, below=below)
        elif top > 0:
            sub = _("↑{above} more").format(above=top)
        elif below > 0:
            sub = _("↓{below} more").format(below=below)
        else:
            sub = ""
        if sub != self._more:
            self._more = sub
            # called from render(): a border changed while painting is not repainted, so after it
            self.call_after_refresh(setattr, self, "border_subtitle", sub or None)

    def watch_selected(self) -> None:
        self.refresh()

    def on_click(self, event: Click) -> None:
        y = event.y - self.gutter.top + self._top
        if 0 <= y < len(self.rows):
            self.post_message(self.Clicked(y))
