"""``MetricChart``: a plotext chart of one metric (with its eval twin) for one run or several.

The widget is handed plain lists (already bucketed by the app under its lock) and rebuilds the
plotext figure only when the data, the options or its own size changed; ``render`` returns the
cached text otherwise, so a repaint costs nothing. A plotted chart is drawn a row at a time
(``ManyLines``), and a new drawing repaints only the rows that changed: a live run's record that
moves a dot changes a row or two of the plot, and repainting the whole chart (Textual turning
all of its text into strips again, every row through the compositor) was most of what a busy
screen spent on it after plotext.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.message import Message

from sfttop.core.i18n import _
from sfttop.tui.cells import cell_len, fit_text, wrap_text
from sfttop.tui.chart_render import X_LABELS, ChartLine, ChartOptions, ChartResult, HLine, build_chart
from sfttop.tui.palette import run_hex
from sfttop.tui.widgets.text_strips import ManyLines


@dataclass(frozen=True)
class LegendItem:
    label: str
    color_index: int
    eval: bool = False
    glyph: str = ""  # overlay: the run's glyph on the chart
    rgb: tuple[int, int, int] | None = None  # the line's colour (default: the run's)


def legend_items(d: ChartData) -> list[Text]:
    out = []
    for item in d.legend:
        t = Text(no_wrap=True)
        mark = item.glyph or ("·◆" if item.eval else "━")
        style = "#{:02x}{:02x}{:02x}".format(*item.rgb) if item.rgb else run_hex(item.color_index)
        t.append(mark + " ", style=f"bold {style}")
        t.append(item.label)
        out.append(t)
    return out


def legend_lines(items: list[Text], width: int) -> list[Text]:
    """The legend wrapped to ``width``, whole items per line (a run's name is never cut unless
    it alone is wider than the chart)."""
    lines: list[Text] = []
    cur = Text(no_wrap=True)
    for it in items:
        if cur.cell_len and cur.cell_len + 2 + it.cell_len > width:
            lines.append(cur)
            cur = Text(no_wrap=True)
        if cur.cell_len:
            cur.append("  ")
        cur.append_text(it)
    if cur.cell_len:
        lines.append(cur)
    for line in lines:
        fit_text(line, max(1, width))
    return lines


@dataclass
class ChartData:
    title: str  # "loss" / "grad_norm"...
    lines: list[ChartLine]
    legend: list[LegendItem]
    hlines: list[HLine]
    opts: ChartOptions
    note: str = ""  # e.g. "x = step: no num_tokens in this log"
    version: tuple[object, ...] = ()  # changes whenever the data does (run generations...)
    message: str = ""  # shown instead of a chart (no run yet)
    legend_prefix: str = ""  # overlay: "loss ◆ eval_loss │" before the run names


class MetricChart(ManyLines):
    DEFAULT_CSS = """
    MetricChart {
        height: 1fr;
        min-height: 5;
        border: round $primary 40%;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: ChartData | None = None
        self._cache_key: tuple[object, ...] | None = None
        self._cache: Text = Text()
        self._rows: list[Text] = []  # the plotted chart's rows (none: only ``render`` draws it)
        self.result: ChartResult | None = None
        self._shown: tuple[object, ...] = ()  # the text, and the legend lines, last drawn
        self._title: Text | None = None
        self.builds = 0  # how many times plotext ran (tests check idle screens do not rebuild)

    def set_data(self, data: ChartData) -> None:
        old = self.data
        self.data = data
        if old is not None and old.version == data.version and old.opts == data.opts and old.title == data.title:
            return
        self._update_titles()
        size = self.content_size
        if not (size.width and size.height):
            self.refresh()  # drawn when it has a size
            return
        before = self._rows
        if self._draw():
            if before and self._rows:
                self.repaint_lines(before)
            else:
                self.refresh()
        self._set_subtitle()  # (what the data says, a NaN count, can change with the same dots)

    def _legend_in_border(self) -> bool:
        """The legend goes in the border when it fits there, else on lines above the plot."""
        d = self.data
        if d is None or not d.legend:
            return True
        prefix = cell_len(d.legend_prefix) + 1 if d.legend_prefix else 0
        need = prefix + sum(t.cell_len + 2 for t in legend_items(d))
        return need <= max(0, self.size.width - 6)

    def _update_titles(self) -> None:
        d = self.data
        if d is None:
            return
        title = Text(no_wrap=True)
        in_border = self._legend_in_border()
        if d.legend_prefix:
            title.append(d.legend_prefix + " " if in_border else d.legend_prefix.rstrip(" │"))
        if d.legend and in_border:
            for i, item in enumerate(legend_items(d)):
                if i:
                    title.append("  ")
                title.append_text(item)
        elif not d.legend_prefix:
            title.append(d.title)
        if title != self._title:  # (setting a border title repaints the whole chart)
            self._title = title
            self.border_title = title
        self._set_subtitle()

    class Resized(Message):
        """The chart has a new size: its data, bucketed for its width, is to be made again (the
        app's own resize event comes before the layout gives the chart its size)."""

    def on_resize(self) -> None:
        self._update_titles()  # the legend's place and the subtitle's parts depend on the width
        self.post_message(self.Resized())

    def _set_subtitle(self) -> None:
        d = self.data
        if d is None:
            return
        o = d.opts
        # (text, rank): what the data says (NaN, clipped points) outlasts how it is drawn
        parts = [(_(X_LABELS.get(o.x_label, o.x_label)), 5)]
        if o.smooth:
            parts.append((f"EMA {o.ema_weight:g}", 3))
        if o.log:
            parts.append((_("log y"), 2))
        if not o.clip:
            parts.append((_("no clip"), 4))
        if d.note:
            parts.append((d.note, 1))
        if self.result is not None:
            parts.extend(zip(self.result.notes, self.result.note_ranks))
        room = self.size.width - 6
        while len(parts) > 1 and cell_len(" · ".join(p for p, _r in parts)) > room:
            parts.remove(max(parts, key=lambda p: p[1]))
        sub = " · ".join(p for p, _r in parts)
        if sub != getattr(self, "_last_sub", None):
            self._last_sub = sub
            self.border_subtitle = Text(sub)

    def _draw(self) -> bool:
        """Build the chart for the current data and size if not done yet; True when what it
        shows changed (a new record of a long run often moves no dot: nothing to repaint)."""
        d = self.data
        size = self.content_size
        if d is None:
            return False
        key = (d.version, d.opts, d.title, size.width, size.height)
        if key == self._cache_key:
            return False
        self._cache_key = key
        legend = [] if self._legend_in_border() else legend_lines(legend_items(d), size.width)
        legend = legend[: max(0, size.height - 6)]  # the plot keeps at least 6 rows
        if d.message:
            res = ChartResult(d.message, False)
        else:
            res = build_chart(d.lines, d.opts, size.width, size.height - len(legend), d.hlines, reuse=self.result)
        self.builds += 1
        self.result = res
        shown = (res.text, res.plotted, tuple(legend))
        if shown == self._shown:
            return False
        self._shown = shown
        if res.plotted:
            body = Text.from_ansi(res.text, no_wrap=True, end="")
        else:
            body = wrap_text(Text(res.text, style="dim", justify="center"), size.width)
        if legend:
            head = Text("\n", no_wrap=True).join(legend)
            head.append("\n")
            head.append_text(body)
            body = head
        self._cache = body
        rows: list[Text] = list(body.split("\n", allow_blank=True)) if res.plotted else []
        if rows and not rows[-1].plain:
            rows.pop()  # (plotext ends its last row with a newline: no row of its own on screen)
        # (drawn a row at a time only when the rows fill the widget: a row past them would have
        # Textual render the whole text again for it)
        self._rows = rows if len(rows) == size.height else []
        return True

    def _drawn(self) -> None:
        """Drawn for the current data and size, when a repaint asks before ``set_data`` could
        (a new size): its subtitle set after the frame."""
        if self._draw():
            self.call_after_refresh(self._set_subtitle)

    def render(self) -> Text:
        if self.data is None:
            return Text(_("loading…"), style="dim")
        self._drawn()
        return self._cache

    def lines(self) -> list[Text]:
        if self.data is None:
            return []
        self._drawn()
        return self._rows
