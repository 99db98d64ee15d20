"""``MetricChart``: a plotext chart of one metric (with its eval twin) for one run or several.

The widget is handed plain lists (already bucketed by the app under its lock) and rebuilds the
plotext figure only when the data, the options or its own size changed; ``render`` returns the
cached text otherwise, so a repaint costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from sfttop.tui.chart_render import ChartLine, ChartOptions, ChartResult, HLine, build_chart
from sfttop.tui.palette import run_hex


@dataclass(frozen=True)
class LegendItem:
    label: str
    color_index: int
    eval: bool = False


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


class MetricChart(Widget):
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
        self.result: ChartResult | None = None
        self.builds = 0  # how many times plotext ran (tests check idle screens do not rebuild)

    def set_data(self, data: ChartData) -> None:
        old = self.data
        self.data = data
        if old is not None and old.version == data.version and old.opts == data.opts and old.title == data.title:
            return
        self.result = None
        self._update_titles()
        self.refresh()

    def _update_titles(self) -> None:
        d = self.data
        if d is None:
            return
        title = Text(no_wrap=True)
        if d.legend_prefix:
            title.append(d.legend_prefix + " ")
        for i, item in enumerate(d.legend):
            if i:
                title.append("  ")
            title.append("◆ " if item.eval else "━ ", style=run_hex(item.color_index))
            title.append(item.label)
        if not d.legend:
            title.append(d.title)
        self.border_title = title
        self._set_subtitle()

    def _set_subtitle(self) -> None:
        d = self.data
        if d is None:
            return
        o = d.opts
        parts = [f"x {o.x_label}"]
        if o.smooth:
            parts.append(f"EMA {o.ema_weight:g}")
        if o.log:
            parts.append("log y")
        if not o.clip:
            parts.append("no clip")
        if d.note:
            parts.append(d.note)
        if self.result is not None:
            parts.extend(self.result.notes)
        sub = " · ".join(parts)
        if sub != getattr(self, "_last_sub", None):
            self._last_sub = sub
            self.border_subtitle = Text(sub)

    def render(self) -> Text:
        d = self.data
        size = self.content_size
        if d is None:
            return Text("loading…", style="dim")
        key = (d.version, d.opts, d.title, size.width, size.height)
        if key != self._cache_key:
            self._cache_key = key
            if d.message:
                res = ChartResult(d.message, False)
            else:
                res = build_chart(d.lines, d.opts, size.width, size.height, d.hlines)
            self.builds += 1
            self.result = res
            if res.plotted:
                self._cache = Text.from_ansi(res.text, no_wrap=True, end="")
            else:
                self._cache = Text(res.text, style="dim", justify="center")
            self.call_after_refresh(self._set_subtitle)
        return self._cache
