"""A one-line Rich ``Text`` made into a Textual ``Strip`` without Textual's ``Content`` pass.

While runs write, the title and the cards are repainted with every record of the selected run:
each repaint converted the widget's Rich ``Text`` to Textual ``Content``, wrapped it, resolved
every span's style and built a new Rich style for every segment (one carrying its offset, for
the mouse: a pickle each). For a line that fits its widget that conversion reduces to cutting
the text at its span edges, and the styles repeat from one record to the next (a card's value is
always at the same offset, in one of a few colours): here they are resolved once per widget and
kept until the widget's style changes. The segments are the ones ``Content.render`` and
``_FormattedLine.to_strip`` make (the widget's visual style under the spans, combined in span
order, each segment's style with its offset); tests compare the two. Whatever is not such a line
(too wide, several lines, a style on the whole text, a selection on screen, aligned content)
goes through Textual's own path: ``strip`` returns None.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget

_Key = tuple[object, ...]


class TextStrips:
    """One widget's resolved styles; ``clear()`` when its style changes."""

    def __init__(self) -> None:
        self._base: Style | None = None
        self._span_styles: dict[object, Style] = {}
        self._rich: dict[tuple[_Key, int, int], RichStyle] = {}

    def clear(self) -> None:
        self._base = None
        self._span_styles.clear()
        self._rich.clear()

    def strip(self, widget: Widget, text: Text, width: int, y: int = 0) -> Strip | None:
        """``text`` as line ``y`` of ``widget``'s content, or None when Textual must render it."""
        if (
            text.style
            or text.cell_len > width
            or "\n" in text.plain
            or widget.text_selection is not None
            or widget.styles.content_align != ("left", "top")
        ):
            return None
        base = widget.visual_style
        if base is not self._base:
            self.clear()
            self._base = base
        plain = text.plain
        spans = text._spans
        # (offset, leaving, span index): entering before leaving at one offset, as Content sorts
        edges = [(0, False, 0), (len(plain), True, 0)]
        for i, span in enumerate(spans, 1):
            edges.append((span.start, False, i))
            edges.append((span.end, True, i))
        edges.sort(key=lambda e: (e[0], e[1]))
        segments: list[Segment] = []
        stack: list[int] = []
        x = 0
        for (offset, leaving, index), (next_offset, _leaving, _index) in pairwise(edges):
            if leaving:
                stack.remove(index)
            else:
                stack.append(index)
            if next_offset > offset:
                piece = plain[offset:next_offset]
                key = tuple(spans[k - 1].style if k else None for k in sorted(stack))
                segments.append(Segment(piece, self._rich_style(widget, base, key, x, y)))
                x += len(piece)
        return Strip(segments, text.cell_len)

    def _rich_style(self, widget: Widget, base: Style, key: _Key, x: int, y: int) -> RichStyle:
        got = self._rich.get((key, x, y))
        if got is None:
            current = Style.combine([base if s is None else self._span_style(widget, s) for s in key])
            got = self._rich[(key, x, y)] = (base + current).rich_style_with_offset(x, y)
        return got

    def _span_style(self, widget: Widget, style: object) -> Style:
        got = self._span_styles.get(style)
        if got is None:
            app = widget.app
            rich = app.console.get_style(style) if isinstance(style, str) else style
            assert isinstance(rich, RichStyle)
            got = self._span_styles[style] = Style.from_rich_style(rich, app.ansi_theme)
        return got


class StripsWidget(Widget):
    """A widget that draws its lines through a ``TextStrips`` of its own, cleared when the
    widget's style changes (the styles it resolved are the old ones)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._strips = TextStrips()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()


class ManyLines(StripsWidget):
    """A widget whose content is a list of one-line Rich ``Text`` (``lines()``, made once per
    change by the subclass), each drawn through ``TextStrips`` when a line is repainted. Its
    ``render()``, Textual's own path, is those lines joined, for what ``TextStrips`` leaves."""

    def lines(self) -> list[Text]:
        raise NotImplementedError

    def render(self) -> Text:
        return Text("\n", no_wrap=True).join(self.lines())

    def repaint_lines(self, before: list[Text]) -> None:
        """Repaint the lines that differ from ``before``, what ``lines()`` gave before this
        change (a live run's checklist changes a line or two at a time; the run list a row per
        run that wrote): all of them when their number changed or the widget is scrolled. Lines
        marked and not yet drawn stay marked, so a change undone by the next is still drawn."""
        after = self.lines()
        width, height = self.content_size
        if not width or len(after) != len(before) or self.scroll_offset != (0, 0):
            self.refresh()
            return
        for y, (old, new) in enumerate(zip(before[:height], after[:height])):
            if old != new:
                self.refresh(Region(0, y, width, 1))

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if width:
            lines = self.lines()
            if y < len(lines):
                strip = self._strips.strip(self, lines[y], width, y)
                if strip is not None:
                    return strip
        return super().render_line(y)


class OneLine(StripsWidget):
    """A widget whose ``render()`` is one line of Rich ``Text`` (a card, the title), drawn
    through ``TextStrips``."""

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if y == 0 and width:
            text = self.render()
            if isinstance(text, Text):
                strip = self._strips.strip(self, text, width)
                if strip is not None:
                    return strip
        return super().render_line(y)
