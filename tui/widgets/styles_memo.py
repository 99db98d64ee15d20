"""Component styles looked up once per stylesheet change, not once per render.

Textual clears a widget's component style cache at every ``refresh()``, so a widget that asks
for its component styles in ``render()`` rebuilds Rich styles from CSS at each repaint: about a
millisecond for a metric card, several times a second on a busy screen. The styles only change
when the stylesheet is applied to the widget again (a theme change), which Textual announces by
``notify_style_update``: the widgets below forget their styles there.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.style import Style
from textual.widget import Widget


def component_style(widget: Widget, name: str) -> str:
    """The component class ``name``'s style as a Rich style string, to put on a span of the
    widget's text: its attributes and its colour, without a background of its own (the span
    keeps whatever is under it, a selected row's highlight). The colour is blended against the
    widget's background: a partial style alone gives ``$text-muted`` (``auto 60%``) as the
    opaque colour, white on a dark theme, brighter than the text it is meant to mute."""
    partial = widget.get_component_rich_style(name, partial=True)
    if partial.color is None:
        return str(partial)
    full = widget.get_component_rich_style(name, partial=False)
    return str(partial + Style(color=full.color))


class StylesMemo:
    """The partial Rich styles (as strings) of ``prefix--NAME`` for each name, kept until
    ``clear()``."""

    def __init__(self, prefix: str, names: Iterable[str]) -> None:
        self.prefix = prefix
        self.names = tuple(names)
        self._styles: dict[str, str] | None = None

    def get(self, widget: Widget) -> dict[str, str]:
        if self._styles is None:
            self._styles = {
                n: component_style(widget, f"{self.prefix}--{n}") for n in self.names
            }
        return self._styles

    def clear(self) -> None:
        self._styles = None
