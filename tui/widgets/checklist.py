"""``ChecklistPanel``: the monitoring checklist at three cadences, colour-coded, with each
check's state in every past window so the user sees when it turned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from sfttop.core.i18n import _
from sfttop.tui.cells import cell_len, crop, fit, ljust
from sfttop.tui.palette import check_status
from sfttop.tui.widgets.styles_memo import StylesMemo
from sfttop.tui.widgets.text_strips import ManyLines


@dataclass(frozen=True)
class CheckRow:
    cadence: str  # "100 steps"
    label: str  # "loss falling"
    state: str  # pass / warn / fail / pending
    detail: str  # "median 0.64 vs 0.66 in the previous window (-1.9%)"
    history: tuple[str, ...]  # the state in every window so far, oldest first, current last
    window: str = ""  # the current window, "steps 1001-1100", "epoch 2"


@dataclass(frozen=True)
class ChecklistView:
    rows: tuple[CheckRow, ...]
    note: str = ""


def checklist_lines(view: ChecklistView, width: int, styles: dict[str, str]) -> list[Text]:
    """One line per check: cadence (and its current window below), state, label, the state in
    every past window (so the user sees when it turned), and what the latest window measured."""
    if not view.rows:
        return [_styled(view.note or _("no checklist yet"), styles.get("muted", ""))]
    cad_w = _cadence_width(view.rows) if width >= 60 else 0
    label_w = 18
    hist_w = max(4, min(20, (width - cad_w - 7 - label_w - 1) // (3 if width >= 70 else 1)))
    lines: list[Text] = []
    cadence = None
    line_in_cadence = 0
    for row in view.rows:
        if row.cadence != cadence:
            cadence = row.cadence
            line_in_cadence = 0
            if not cad_w:  # narrow: a heading line per cadence instead of a column
                head = f"{row.cadence} · {row.window}" if row.window else row.cadence
                lines.append(_styled(head, styles.get("heading", "")))
        else:
            line_in_cadence += 1
        line = Text(no_wrap=True)
        if cad_w:
            if line_in_cadence == 0:
                line.append(ljust(fit(row.cadence, cad_w), cad_w), style=styles.get("heading", ""))
            elif line_in_cadence == 1 and row.window:
                line.append(ljust(crop(" " + row.window, cad_w), cad_w), style=styles.get("muted", ""))
            else:
                line.append(" " * cad_w)
        st = check_status(row.state)
        style = styles.get(st.css, "")
        line.append(f"{st.glyph} {ljust(st.shown_word, 4)} ", style=style)
        line.append(ljust(fit(row.label, label_w), label_w) + " ")
        hist = row.history[-hist_w:]
        line.append(" " * (hist_w - len(hist)))
        for h in hist:
            hs = check_status(h)
            line.append(hs.glyph, style=styles.get(hs.css, ""))
        if row.detail and width - line.cell_len > 10:
            line.append("  " + fit(row.detail, width - line.cell_len - 2), style=styles.get("muted", ""))
        lines.append(line)
    if view.note:
        lines.append(_styled(view.note, styles.get("muted", "")))
    return lines


def _styled(text: str, style: str) -> Text:
    """A line in one style, as a span (a line with a style of its own takes Textual's slower
    path, see text_strips)."""
    return Text(no_wrap=True).append(text, style=style)


def _cadence_width(rows: tuple[CheckRow, ...]) -> int:
    """The cadence column: 11 cells, wider (up to 16) when a cadence or window label needs it
    (Chinese "第 12 个 epoch" is 14 cells); a longer label is cut rather than widen it more."""
    need = max((max(cell_len(r.cadence), 1 + cell_len(r.window)) + 1 for r in rows), default=0)
    return need if 11 < need <= 16 else 11


class ChecklistPanel(ManyLines):
    DEFAULT_CSS = """
    ChecklistPanel {
        height: 1fr;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        border: round $primary 40%;
        border-title-color: $text;
        padding: 0 1;
        overflow-y: auto;
    }
    ChecklistPanel > .checklist--ok { color: $success; }
    ChecklistPanel > .checklist--warning { color: $warning; text-style: bold; }
    ChecklistPanel > .checklist--critical { color: $error; text-style: bold; }
    ChecklistPanel > .checklist--muted { color: $text-muted; }
    ChecklistPanel > .checklist--heading { color: $accent; text-style: bold; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"checklist--ok", "checklist--warning", "checklist--critical", "checklist--muted", "checklist--heading"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = ChecklistView(())
        self.border_title = _("checklist")
        self._styles_memo = StylesMemo("checklist", ("ok", "warning", "critical", "muted", "heading"))
        self._shown: tuple[object, list[Text]] = (None, [])  # ((view, width, height), lines)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles_memo.clear()
        self._shown = (None, [])

    def set_view(self, view: ChecklistView) -> None:
        if view != self.view:
            # A layout pass redraws the whole screen: only when the panel's height can change.
            width = max(1, self.content_size.width)
            height = self.get_content_height(None, None, width)
            lines = self.lines()
            self.view = view
            if self.get_content_height(None, None, width) != height:
                self.refresh(layout=True)
            else:
                self.repaint_lines(lines)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        heads = len({r.cadence for r in self.view.rows}) if width < 60 else 0
        return max(1, len(self.view.rows) + heads + (1 if self.view.note else 0))

    def on_resize(self) -> None:
        self.refresh()  # the "more" hint in the border depends on the height: render again

    def render(self) -> Text:
        return Text("\n", no_wrap=True, overflow="ellipsis").join(self.lines())

    def lines(self) -> list[Text]:
        """The lines, made once per view and size (a repaint asks for each line)."""
        width, height = self.content_size
        key = (self.view, width, height)
        if self._shown[0] != key:
            lines = checklist_lines(self.view, width, self._styles_memo.get(self))
            set_more_hint(self, len(lines), height)
            self._shown = (key, lines)
        return self._shown[1]


def set_more_hint(widget: Widget, lines: int, height: int) -> None:
    """Say in the border how many lines a panel could not show, and where to see them all:
    nothing is cut without a hint."""
    hidden = lines - height if height > 0 else 0
    sub = _("↓{hidden} more · v: full view").format(hidden=hidden) if hidden > 0 else ""
    if str(widget.border_subtitle or "") != sub:
        # called from render(): a border changed while painting is not repainted, so after it
        widget.call_after_refresh(setattr, widget, "border_subtitle", sub or None)
