"""``AssessmentPanel``: the "log status evaluation": a verdict, the positive signals,
the cautions, the advice to act on and the best checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text

from sfttop.core.i18n import _
from sfttop.tui.cells import cell_len, ljust, rjust, wrap_text

from .checklist import set_more_hint
from .styles_memo import StylesMemo
from .text_strips import ManyLines


@dataclass(frozen=True)
class AssessmentView:
    verdict: str  # "healthy", "watch", "unhealthy"... as core words it
    verdict_state: str  # ok / warning / critical / muted
    summary: str = ""
    positives: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    best: str = ""  # "step 700 · eval_loss 1.02 · checkpoint-700"
    metrics: tuple[tuple[str, str, str, str], ...] = ()  # (label, value, state, note)


_GLYPH = {"ok": "✔", "warning": "▲", "critical": "✖"}


def assessment_lines(view: AssessmentView, styles: dict[str, str]) -> list[Text]:
    """Verdict first, then what to act on (best checkpoint, cautions, advice), then the good
    signs and the per-metric table: the most useful lines survive a short panel. One Text per
    logical line, not yet wrapped."""

    def line(mark: str = "", style: str = "") -> Text:
        t = Text(overflow="fold")
        if mark:
            t.append(mark, style=style)
        out.append(t)
        return t

    out: list[Text] = []
    head = line(f"{_GLYPH.get(view.verdict_state, '·')} ", styles.get(view.verdict_state, ""))
    head.append(view.verdict, style=styles.get(view.verdict_state, "") + " bold")
    if view.summary:
        head.append("  " + view.summary)
    if view.best:
        line(_("★ best checkpoint: "), styles.get("heading", "")).append(view.best)
    for items, heading, mark, st in (
        (view.cautions, _("cautions"), "▲", "warning"),
        (view.advice, _("advice"), "→", "heading"),
        (view.positives, _("good signs"), "✔", "ok"),
    ):
        if not items:
            continue
        line(heading, styles.get("heading", ""))
        for item in items:
            line(f" {mark} ", styles.get(st, "")).append(item)
    if view.metrics:
        line(_("metrics"), styles.get("heading", ""))
        lw = max(cell_len(m[0]) for m in view.metrics)
        for name, value, state, note in view.metrics:
            row = line(f" {_GLYPH.get(state, '·')} ", styles.get(state, ""))
            row.append(f"{ljust(name, lw)} {rjust(value, 9)}")
            if note:
                row.append(f"  {note}", style=styles.get("muted", ""))
    return out


class AssessmentPanel(ManyLines):
    DEFAULT_CSS = """
    AssessmentPanel {
        height: 1fr;
        width: 1fr;
        border: round $primary 40%;
        border-title-color: $text;
        padding: 0 1;
        overflow-y: auto;
    }
    AssessmentPanel > .assessment--ok { color: $success; }
    AssessmentPanel > .assessment--warning { color: $warning; }
    AssessmentPanel > .assessment--critical { color: $error; }
    AssessmentPanel > .assessment--muted { color: $text-muted; }
    AssessmentPanel > .assessment--heading { color: $accent; text-style: bold; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "assessment--ok",
        "assessment--warning",
        "assessment--critical",
        "assessment--muted",
        "assessment--heading",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = AssessmentView(_("no data yet"), "muted")
        self.border_title = _("assessment")
        self._wrapped: tuple[object, list[Text]] = (None, [])  # ((view, width), lines)
        self._wrapped_lines: dict[tuple[object, ...], list[Text]] = {}  # a logical line's, at a width
        self._hint: tuple[int, int] = (-1, -1)  # (lines, height) the "more" hint was set for
        self._styles_memo = StylesMemo("assessment", ("ok", "warning", "critical", "muted", "heading"))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles_memo.clear()
        self._wrapped = (None, [])
        self._wrapped_lines = {}

    def set_view(self, view: AssessmentView) -> None:
        if view != self.view:
            # A layout pass redraws the whole screen: only when the panel's height can change.
            width = self.content_size.width
            before = self.get_content_height(None, None, width) if width else -1
            lines = self.lines() if width else []
            self.view = view
            # (hidden, it has no width: showing it again lays the screen out anyway)
            if width and self.get_content_height(None, None, width) != before:
                self.refresh(layout=True)
            else:
                self.repaint_lines(lines)

    def _styles(self) -> dict[str, str]:
        return self._styles_memo.get(self)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return len(self._wrap(width))

    def _wrap(self, width: int) -> list[Text]:
        """The view's lines at ``width``, wrapped (asked by layout, by set_view twice and by each
        repainted line: wrapping is most of this panel's cost, so once per view and width, and a
        logical line again only when it changed: a live run changes a metric row or two)."""
        key = (self.view, width)
        if self._wrapped[0] != key:
            width = max(1, width)
            known, self._wrapped_lines = self._wrapped_lines, {}
            lines: list[Text] = []
            for logical in assessment_lines(self.view, self._styles()):
                plain = logical.plain
                line_key = (plain, tuple(logical.spans), width)
                wrapped = known.get(line_key)
                if wrapped is None:
                    if cell_len(plain) <= width:  # what Rich's wrap makes of a line that fits
                        logical.rstrip()
                        wrapped = [logical]
                    else:
                        wrapped = list(wrap_text(logical, width).wrap(self.app.console, width))
                        for piece in wrapped:
                            piece.rstrip()  # (the space a line was broken at: Textual's own wrap drops it)
                self._wrapped_lines[line_key] = wrapped
                lines.extend(wrapped)
            self._wrapped = (key, lines)
        return self._wrapped[1]

    def on_resize(self) -> None:
        self.refresh()  # the "more" hint in the border depends on the height: render again

    def lines(self) -> list[Text]:
        lines = self._wrap(max(1, self.content_size.width))
        hint = (len(lines), self.content_size.height)
        if hint != self._hint:
            self._hint = hint
            set_more_hint(self, *hint)
        return lines
