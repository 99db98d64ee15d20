"""``KeyBar``: the bottom line of keys, shortened by priority rather than cut mid-word.

Textual's ``Footer`` lays every shown binding out in order and crops the line at the pane's
edge (``… x x axi`` at 60 columns). Here each key has a rank: the least needed ones go first
as the pane narrows, the rest keep their order, and ``?`` (every key) then says "more".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from sfttop.core.i18n import _
from sfttop.tui.cells import cell_len
from sfttop.tui.widgets.styles_memo import component_style


@dataclass(frozen=True)
class KeyHint:
    key: str  # as shown: "q", "?", "tab"
    label: str  # "quit", in the user's language
    rank: int  # 0 is kept longest


def key_bar_text(hints: tuple[KeyHint, ...], width: int, styles: dict[str, str], more_rank: int = 1) -> Text:
    """The hints that fit in ``width`` cells, in their given order. When any is left out, the
    hint of rank ``more_rank`` (the help key) is labelled "more"."""

    more = _("more")

    def size(h: KeyHint, label: str) -> int:
        return cell_len(h.key) + 1 + cell_len(label) + 2  # the 2 cells between hints

    width += 2  # the first hint has none before it

    by_rank = sorted(range(len(hints)), key=lambda i: hints[i].rank)
    total = sum(size(h, h.label) for h in hints)
    keep: set[int] = set(range(len(hints)))
    if total > width:
        keep = set()
        used = 0
        for i in by_rank:
            h = hints[i]
            label = more if h.rank == more_rank else h.label
            if used + size(h, label) > width:
                break
            keep.add(i)
            used += size(h, label)
    cut = len(keep) < len(hints)
    t = Text(no_wrap=True, overflow="crop")
    for i, h in enumerate(hints):
        if i not in keep:
            continue
        if t.cell_len:
            t.append("  ")
        t.append(h.key, style=styles.get("key", ""))
        t.append(" ")
        t.append(more if cut and h.rank == more_rank else h.label, style=styles.get("label", ""))
    return t


class KeyBar(Widget):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; padding: 0 1; background: $panel; text-wrap: nowrap; }
    KeyBar > .key-bar--key { color: $accent; text-style: bold; }
    KeyBar > .key-bar--label { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-bar--key", "key-bar--label"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.hints: tuple[KeyHint, ...] = ()

    def set_hints(self, hints: tuple[KeyHint, ...]) -> None:
        if hints != self.hints:
            self.hints = hints
            self.refresh()

    def render(self) -> Text:
        styles = {n: component_style(self, f"key-bar--{n}") for n in ("key", "label")}
        return key_bar_text(self.hints, self.content_size.width, styles)
