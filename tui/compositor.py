"""A partial screen update that renders each widget's lines only where the screen changed.

While runs write, a frame repaints a few lines: the title, a card or two, a run's row, a
checklist line. Textual's compositor takes the box around every changed region (here nearly the
whole screen, from the title to the checklist) and has each widget under that box render all
its lines (from its cache, each line through the line filters) and cut them at the widget
edges, then writes out only the changed spans: a third of a live frame's cost went to lines it
then dropped (a frame 3.0 -> 1.9-2.2 ms of CPU at 16 runs x 2 records/s, bench/frame_timers.py).

``SpanCompositor`` gives ``_render_chops`` only what the update writes: each widget under a
changed span renders the rows from its first to its last changed row that it shows, and a
widget no changed span crosses is skipped. A widget shows a changed cell when no widget in front
of it covers it: the screen, the body and a column of panels are mostly covered by their
children, and rendering their blank rows was most of a busy frame's widget lines (the screen
alone 23 rows a frame at 16 runs x 2 records/s). The spans and the chops are Textual's own; only
the widgets' renders are cut down (the output can lack an empty cursor move Textual writes where
a cut-off strip ends at a span's edge). Its test compares the cells each update writes with
those of Textual's own compositor on the same changes. It rests on the compositor's private
parts (``_get_renders``, ``_dirty_regions``, ``_regions_to_spans``, ``visible_widgets`` in front to
back order), the same in Textual 8.0.0 and 8.2.8 (``textual<9`` is required); where they are
missing, ``install`` leaves the screen's own compositor in place.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip

# (y: the x ranges changed on that row)
_Rows = dict[int, list[tuple[int, int]]]


class SpanCompositor(Compositor):
    _update_rows: _Rows | None = None

    def render_partial_update(self) -> ChopsUpdate | None:
        # (Textual's method works the spans out again: a handful of regions a frame, cheaper
        # than keeping a copy of its method here that could drift from the original)
        rows: _Rows = {}
        for y, x1, x2 in self._regions_to_spans(self._dirty_regions):
            rows.setdefault(y, []).append((x1, x2))
        self._update_rows = rows
        try:
            return super().render_partial_update()
        finally:
            self._update_rows = None

    def _get_renders(self, crop: Region | None = None) -> Iterable[tuple[Region, Region, list[Strip]]]:
        rows = self._update_rows
        if rows is None or crop is None:  # a full update, a screenshot: Textual's own way
            yield from super()._get_renders(crop)
            return
        changed = sorted(rows)
        # What the widgets before this one show on each changed row: the widgets come front to
        # back and _render_chops keeps the first strip for each cut, so a container (the screen,
        # a column of panels) needs no line where its children cover every changed cell.
        covered: dict[int, list[tuple[int, int]]] = {}
        for widget, (region, clip) in self.visible_widgets.items():
            shown = region.intersection(clip)
            left, right = shown.x, shown.right
            top = bottom = -1
            for y in changed[bisect_left(changed, shown.y) : bisect_left(changed, shown.bottom)]:
                above = covered.setdefault(y, [])
                for x1, x2 in rows[y]:
                    a = x1 if x1 > left else left
                    b = x2 if x2 < right else right
                    if a < b and not _covers(above, a, b):
                        if top < 0:
                            top = y
                        bottom = y + 1
                        break
                above.append((left, right))
            if top < 0:
                continue  # nothing of it is written out
            band = Region(left, top, shown.width, bottom - top)
            # (the band as both region and clip: _render_chops places the strips from its top)
            yield band, band, widget.render_lines(band.translate((-region.x, -region.y)))


def _covers(spans: list[tuple[int, int]], a: int, b: int) -> bool:
    """Whether the x ranges ``spans`` cover every cell from ``a`` to ``b``."""
    reach = a
    for x1, x2 in sorted(spans):
        if x1 > reach:
            return False
        if x2 > reach:
            reach = x2
            if reach >= b:
                return True
    return reach >= b


def usable() -> bool:
    """Whether this Textual has the compositor parts ``SpanCompositor`` builds on."""
    return all(
        callable(getattr(Compositor, name, None))
        for name in ("_get_renders", "render_partial_update", "_regions_to_spans", "_render_chops")
    )


def install(screen: Screen[Any]) -> None:
    """Give ``screen`` a ``SpanCompositor`` (before it is first laid out)."""
    compositor = getattr(screen, "_compositor", None)
    if usable() and type(compositor) is Compositor and hasattr(compositor, "_dirty_regions"):
        screen._compositor = SpanCompositor()
