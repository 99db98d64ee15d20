"""``AlertBanner``: the selected run's active critical and warning findings, worst first.

Each line: glyph and word (so it reads without colour), the finding's message and its first
piece of advice. ``d`` dismisses the top one; it comes back when a new episode opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from sfttop.core.i18n import _
from sfttop.tui.cells import fit_text
from sfttop.tui.palette import Status
from sfttop.tui.widgets.styles_memo import component_style


@dataclass(frozen=True)
class BannerItem:
    key: tuple[str, str, object]  # (run, code, episode): what dismissing remembers
    status: Status
    code: str
    message: str
    advice: str


def banner_text(items: tuple[BannerItem, ...], width: int, max_lines: int, styles: dict[str, str], hidden: int = 0) -> Text:
    """One line per finding, at most ``max_lines``; the last line ends with how many more there
    are (and how many are dismissed), and that count is never the part cut off."""
    out = Text(no_wrap=True, overflow="ellipsis")
    shown = items[:max_lines]
    more = len(items) - len(shown)
    for i, item in enumerate(shown):
        if i:
            out.append("\n")
        st = styles.get(item.status.css, "")
        line = Text(no_wrap=True)
        line.append(f" {item.status.glyph} {item.status.shown_word} ", style=st + " reverse")
        line.append(" ")
        line.append(item.message, style=st)
        if item.advice:
            line.append("  → ", style=styles.get("muted", ""))
            line.append(item.advice)
        tail = None
        if i == len(shown) - 1 and (more or hidden):
            if more and hidden:
                count = _("(+{more} more, {hidden} dismissed)").format(more=more, hidden=hidden)
            elif more:
                count = _("(+{more} more)").format(more=more)
            else:
                count = _("({hidden} dismissed)").format(hidden=hidden)
            tail = Text("  " + count, style=styles.get("muted", ""))
        if width > 0 and line.cell_len + (tail.cell_len if tail else 0) > width:
            fit_text(line, max(1, width - (tail.cell_len if tail else 0)))
        if tail is not None:
            line.append_text(tail)
        out.append_text(line)
    return out


class AlertBanner(Widget):
    DEFAULT_CSS = """
    AlertBanner {
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $error 12%;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    AlertBanner.-warning-only { background: $warning 10%; }
    AlertBanner > .alert-banner--critical { color: $error; text-style: bold; }
    AlertBanner > .alert-banner--warning { color: $warning; }
    AlertBanner > .alert-banner--info { color: $primary; }
    AlertBanner > .alert-banner--muted { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"alert-banner--critical", "alert-banner--warning", "alert-banner--info", "alert-banner--muted"}

    max_lines: reactive[int] = reactive(3, layout=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: tuple[BannerItem, ...] = ()
        self.hidden = 0
        self.display = False

    def set_items(self, items: tuple[BannerItem, ...], hidden: int = 0) -> None:
        if items == self.items and hidden == self.hidden:
            return
        self.items = items
        self.hidden = hidden
        self.display = bool(items)
        self.set_class(bool(items) and all(i.status.css != "critical" for i in items), "-warning-only")
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, min(len(self.items), self.max_lines))

    def render(self) -> Text:
        styles = {
            n: component_style(self, f"alert-banner--{n}")
            for n in ("critical", "warning", "info", "muted")
        }
        return banner_text(self.items, self.content_size.width, self.max_lines, styles, self.hidden)
