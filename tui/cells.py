"""Text measured in terminal cells, not characters (pure, no Textual).

A CJK character takes two cells, so ``len()`` and ``str.ljust``/``f"{s:<8}"`` misplace every
column that follows Chinese text. Every width the TUI computes goes through these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rich.cells import cell_len, chop_cells
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.text import Text

__all__ = ["WrappedText", "cell_len", "crop", "fit", "fit_text", "ljust", "rjust", "wrap_text"]

ELLIPSIS = "…"


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: whole when it fits, else cut at a character boundary
    and ended with ``…`` (a wide character that would straddle the edge goes whole, so the
    result may be one cell short: pad it with :func:`ljust`)."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        w = cell_len(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + ELLIPSIS


def fit_text(text: Text, width: int) -> None:
    """:func:`fit` for styled text, in place. (Rich's own ``truncate`` pads a wide character that
    straddles the edge with a space, which leaves ``学 …``.)"""
    if text.cell_len <= width:
        return
    # (as Rich does: the … takes the style of what it stands for)
    text.plain = fit(text.plain, width)


def crop(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` cells without a mark (a column head that runs out of
    room), never through a wide character."""
    out: list[str] = []
    used = 0
    for ch in text:
        w = cell_len(ch)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out)


def ljust(text: str, width: int) -> str:
    """``text`` padded with spaces on the right to ``width`` cells (never cut)."""
    return text + " " * max(0, width - cell_len(text))


def rjust(text: str, width: int) -> str:
    """``text`` padded with spaces on the left to ``width`` cells (never cut)."""
    return " " * max(0, width - cell_len(text)) + text


# Punctuation that must not begin a line (it closes what precedes it) or end one (it opens
# what follows): it is kept with its neighbour.
_CLOSING = "，。：；、！？）」』》〉】”’…,.:;!?)]}%/"
_OPENING = "（「『《〈【“‘([{"
_WIDE = r"\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
# A breakable unit: opening marks, then one wide character or a run of narrow ones, then the
# closing marks and spaces that follow it.
_NOT_NARROW = rf"\s{_WIDE}{re.escape(_OPENING)}"
_UNIT = re.compile(
    rf"\s+|[{re.escape(_OPENING)}]*(?:[{_WIDE}]|[^{_NOT_NARROW}]+)[{re.escape(_CLOSING)}]*\s*"
)


def _units(text: str) -> Iterator[tuple[int, str]]:
    pos = 0
    while pos < len(text):
        m = _UNIT.match(text, pos)
        end = m.end() if m is not None and m.end() > pos else pos + 1
        yield pos, text[pos:end]
        pos = end


def break_offsets(text: str, width: int) -> list[int]:
    """Where to break ``text`` (one line) so that no line is wider than ``width`` cells: Rich's
    greedy rule, with CJK characters as breakable units."""
    breaks: list[int] = []
    used = 0
    for start, unit in _units(text):
        used = _place(breaks, used, start, unit, width)
    return breaks


_MARKS = re.compile(rf"([{re.escape(_OPENING)}]*)(.*?)([{re.escape(_CLOSING)}]*\s*)$", re.S)


def _place(breaks: list[int], used: int, start: int, unit: str, width: int, whole: bool = True) -> int:
    """Put one unit on the line (``used`` cells taken), breaking before it if it does not fit;
    the cells taken after it. A unit wider than a line sheds its punctuation first, and only
    then is folded where the width runs out."""
    need = cell_len(unit.rstrip())
    if used + need <= width:
        return used + cell_len(unit)
    if need > width:
        m = _MARKS.match(unit)
        parts = [p for p in (m.groups() if m else ()) if p]
        if whole and len(parts) > 1:
            at = start
            for part in parts:
                used = _place(breaks, used, at, part, width, whole=False)
                at += len(part)
            return used
        if used and start:
            breaks.append(start)
        pieces = chop_cells(unit, width)
        at = start
        for piece in pieces[:-1]:
            at += len(piece)
            breaks.append(at)
        return cell_len(pieces[-1])
    if used and start:
        breaks.append(start)
    return cell_len(unit)


def wrap_text(text: Text, width: int) -> Text:
    """``text`` with its lines broken to ``width`` cells where Chinese may break. Lines without
    a wide character are left to Rich/Textual, which break them at spaces alike."""
    if width <= 0:
        return text
    out: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        plain = line.plain
        if cell_len(plain) <= width or cell_len(plain) == len(plain):
            out.append(line)
            continue
        for piece in line.divide(break_offsets(plain, width)):
            piece.rstrip()
            out.append(piece)
    return Text("\n", end=text.end, no_wrap=text.no_wrap, overflow=text.overflow, justify=text.justify).join(out)


class WrappedText:
    """A Rich renderable of ``text`` broken by :func:`wrap_text` (for table cells): as narrow as
    its widest unbreakable unit, as wide as its longest line."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        plain = self.text.plain
        widest = max((cell_len(u.rstrip()) for _s, u in _units(plain)), default=0)
        longest = max((cell_len(line) for line in plain.split("\n")), default=0)
        return Measurement(min(widest, options.max_width), min(longest, options.max_width))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        yield wrap_text(self.text, options.max_width)
