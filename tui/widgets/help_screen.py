"""``HelpScreen``: every key binding (with the id to remap it in the config's ``[keys]`` table)
and what the glyphs mean."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from sfttop.core.i18n import N_, _
from sfttop.tui.cells import WrappedText

# (mark, what it means): both shown through _(), the marks hold the status words
LEGEND: tuple[tuple[str, str], ...] = (
    (N_("✖ CRIT"), N_("a critical finding is active (NaN, explosion, crash, severe overfitting)")),
    (N_("▲ WARN"), N_("a warning is active")),
    (N_("● info"), N_("only informational findings")),
    (N_("✔ ok / ■ done"), N_("healthy / finished cleanly")),
    (N_("◌ load"), N_("history still being read (the percentage shows how far)")),
    (N_("? gone"), N_("the log file vanished")),
    (N_("… wait"), N_("nothing to show yet: no file, or no line in it that sfttop recognises (the chart says why)")),
    (N_("! err"), N_("the log cannot be read (the title bar says why)")),
    (N_("↑ ↓ (cards)"), N_("value above / below the metric's normal range (loss 0.01-1, grad_norm 0.1-10, ...)")),
    (N_("NaN (masked)"), N_("the Trainer logged a number (0) where the loss was NaN (logging_nan_inf_filter; "
                           "grad_norm shows nan): drawn ✕, counted as 'masked' under the chart")),
    (N_("Δ (cards)"), N_("change over the last 5 logged points (last eval for eval metrics)")),
    (N_("━ ·◆ (chart)"), N_("train line / eval line, dotted with ◆ on evals and in another colour")),
    (N_("● ■ ★ ... (overlay)"), N_("each run's glyph along its line and in the legend (readable without colour)")),
    (N_("▲ ✕ (chart)"), N_("a clipped spike (press c to show it whole) / a NaN or inf value")),
    (N_("checklist"), N_("✔ pass ▲ warn ✖ FAIL · pend (not enough data yet); the row of glyphs is each past window")),
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "close", id="close_help", show=False),
        Binding("j,down", "scroll_down", show=False),
        Binding("k,up", "scroll_up", show=False),
    ]

    def __init__(self, bindings: list[tuple[str, str, str]]) -> None:
        """``bindings``: (keys as shown, description, binding id)."""
        super().__init__()
        self.rows = bindings

    def compose(self) -> ComposeResult:
        keys = Table(box=None, expand=True, show_edge=False, pad_edge=False)
        keys.add_column(Text(_("key")), style="bold", no_wrap=True)
        keys.add_column(Text(_("does")), ratio=1)
        keys.add_column(Text(_("id")), style="dim", no_wrap=True)
        for shown, desc, bid in self.rows:
            keys.add_row(Text(shown), WrappedText(Text(desc, overflow="fold")), Text(bid))
        legend = Table(box=None, expand=True, show_edge=False, pad_edge=False)
        legend.add_column(Text(_("mark")), style="bold", no_wrap=True)
        legend.add_column(Text(_("means")), ratio=1)
        for mark, means in LEGEND:
            legend.add_row(Text(_(mark)), WrappedText(Text(_(means), overflow="fold")))
        with VerticalScroll():
            head = Text(_("Keys"), style="bold")
            head.append("  " + _("(q, ctrl+c quit sfttop; esc or ? closes this screen; remap a key by its id in the config "
                                 "file's [keys] table)"), style="dim")
            yield Static(head)
            yield Static(keys)
            yield Static(Text("\n" + _("What the marks mean"), style="bold"))
            yield Static(legend)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll_down(self) -> None:
        self.query_one(VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one(VerticalScroll).scroll_up()
