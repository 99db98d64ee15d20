"""Component styles looked up once per stylesheet change, not once per render.

Textual clears a widget's component style cache at every ``refresh()``, so a widget that asks
for its component styles in ``render()`` rebuilds Rich styles from CSS at each repaint: about a
millisecond for a metric card, several times a second on a busy screen. The styles only change
when the stylesheet is applied to the widget again (a theme change), which Textual announces by
``notify_style_update``: the widgets below forget their styles there.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget


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
                n: str(widget.get_component_rich_style(f"{self.prefix}--{n}", partial=True)) for n in self.names
            }
        return self._styles

    def clear(self) -> None:
        self._styles = None
