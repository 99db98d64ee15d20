"""``MetricCards``: one metric on one line: name, current value, recent change, sparkline.

The value is coloured by the metric's normal range (core.metrics.NORMAL_RANGES) and carries an arrow when outside
it, so the meaning survives ``NO_COLOR``: ``↑`` above range, ``↓`` below, ``✖`` NaN/inf or past
the critical threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text

from sfttop.core.i18n import _
from sfttop.tui.cells import crop, fit, ljust, rjust
from sfttop.tui.fmt import fmt_change, fmt_value
from sfttop.tui.plotdata import sparkline
from sfttop.tui.widgets.styles_memo import StylesMemo
from sfttop.tui.widgets.text_strips import ManyLines


@dataclass(frozen=True)
class CardData:
    metric: str
    label: str
    value: float | None
    before: float | None  # the value the change is measured from
    recent: tuple[float, ...]  # the last points, for the sparkline
    low: float | None = None  # normal range
    high: float | None = None
    critical: float | None = None  # above this the value is critical (grad_norm 20)
    higher_is_better: bool | None = None  # colours the change arrow, None: neutral
    masked: bool = False  # the logged value stands in for a NaN (the Trainer's NaN filter)


def judge(card: CardData) -> tuple[str, str]:
    """(css state, mark): ``ok``/``warning``/``critical``/``muted`` and ``''``/``↑``/``↓``/``✖``."""
    v = card.value
    if v is None:
        return "muted", ""
    if not math.isfinite(v):
        return "critical", "✖"
    if card.critical is not None and v > card.critical:
        return "critical", "✖"
    if card.high is not None and v > card.high:
        return "warning", "↑"
    if card.low is not None and v < card.low:
        return "warning", "↓"
    if card.low is None and card.high is None:
        return "neutral", ""
    return "ok", ""


def card_columns(width: int) -> tuple[int, bool, int]:
    """(label width, show the change column, sparkline width) for a card ``width`` cells wide.
    The change column goes first when the sparkline would be too short to read."""
    label_w = 10 if width < 44 else 14
    fixed = label_w + 8 + 1  # label, value, range mark
    spark = width - fixed - 7 - 1
    if spark >= 6:
        return label_w, True, spark
    spark = width - fixed - 1
    return label_w, False, spark if spark >= 4 else 0


def card_text(card: CardData, width: int, styles: dict[str, str]) -> Text:
    label_w, show_change, spark_w = card_columns(width)
    state, mark = judge(card)
    t = Text(no_wrap=True, overflow="crop")
    t.append(ljust(fit(card.label, label_w), label_w), style=styles.get("label", ""))
    value = fmt_value(card.value, card.metric)
    if card.masked:
        # wider than a number: it takes the change column (no change is measured on a NaN), or
        # a few cells of the sparkline when there is no change column
        width_v = 15 if show_change else 12
        spark_w = spark_w if show_change else max(0, spark_w - 4)
        t.append(rjust(fit(_("NaN (masked)"), width_v), width_v), style=styles.get(state, ""))
        t.append(mark or " ", style=styles.get(state, ""))
    else:
        t.append(f"{value:>8}", style=styles.get(state, ""))
        t.append(mark or " ", style=styles.get(state, ""))
    if show_change and not card.masked:
        change, sign = fmt_change(card.value, card.before)
        cstyle = styles.get("muted", "")
        if card.higher_is_better is not None and sign:
            good = (sign > 0) == card.higher_is_better
            cstyle = styles.get("ok" if good else "warning", "")
        t.append(f" {change:<6}", style=cstyle)
    if spark_w and card.recent:
        spark, bad = sparkline(card.recent, spark_w)
        t.append(" ")
        line = Text(spark, style=styles.get("spark", ""))
        for i in bad:
            line.stylize(styles.get("critical", ""), i, i + 1)
        t.append_text(line)
    return t


class MetricCards(ManyLines):
    """The cards, one line each, under a line of column heads (now, Δ: the change over the last
    points, recent). One widget, not one per card: a frame costs Textual a pass over every
    widget in the repainted area (its background, its styles, each line's filters) and a message
    per repainted widget, and a record of the selected run changes several cards at once. A card
    whose line reads differently is repainted alone."""

    DEFAULT_CSS = """
    MetricCards { height: auto; width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    MetricCards > .metric-card--label { color: $text-muted; }
    MetricCards > .metric-card--ok { color: $success; }
    MetricCards > .metric-card--neutral { color: $text; }
    MetricCards > .metric-card--warning { color: $warning; text-style: bold; }
    MetricCards > .metric-card--critical { color: $error; text-style: bold; }
    MetricCards > .metric-card--muted { color: $text-muted; }
    MetricCards > .metric-card--spark { color: $accent; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "metric-card--label",
        "metric-card--ok",
        "metric-card--neutral",
        "metric-card--warning",
        "metric-card--critical",
        "metric-card--muted",
        "metric-card--spark",
    }

    def __init__(self, metrics: Iterable[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cards = tuple(CardData(metric, label, None, None, ()) for metric, label in metrics)
        self._styles_memo = StylesMemo("metric-card", ("label", "ok", "neutral", "warning", "critical", "muted", "spark"))
        self._shown: tuple[int, list[Text]] = (-1, [])  # (width, lines) last made

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles_memo.clear()
        self._shown = (-1, [])

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return 1 + len(self.cards)

    def card(self, metric: str) -> CardData:
        return next(c for c in self.cards if c.metric == metric)

    def set_cards(self, cards: Sequence[CardData]) -> None:
        """New data for the cards (in the order they were made): repaint the lines that changed
        (a new record often leaves a line as it was: a constant learning rate, a sparkline whose
        buckets keep their level)."""
        cards = tuple(cards)
        if cards == self.cards:
            return
        old, self.cards = self.cards, cards
        width, lines = self._shown
        if width != self.content_size.width or len(lines) != 1 + len(cards) or len(old) != len(cards):
            self._shown = (-1, [])
            self.refresh()
            return
        styles = self._styles_memo.get(self)
        new = list(lines)
        for i, (was, card) in enumerate(zip(old, cards, strict=True)):
            if was != card:
                new[1 + i] = card_text(card, width, styles)
        self._shown = (width, new)
        self.repaint_lines(lines)

    def lines(self) -> list[Text]:
        width = self.content_size.width
        if self._shown[0] != width:
            styles = self._styles_memo.get(self)
            self._shown = (width, [header_text(width, styles), *(card_text(c, width, styles) for c in self.cards)])
        return self._shown[1]


def header_text(width: int, styles: dict[str, str]) -> Text:
    """The column heads over the cards."""
    lw, show_change, spark = card_columns(width)
    change = f" {'Δ':<6}" if show_change else ""
    recent = crop(" " + _("recent"), spark + 1) if spark else ""
    return Text(no_wrap=True, overflow="crop").append(" " * lw + rjust(_("now"), 8) + " " + change + recent, style=styles.get("muted", ""))
