"""Text measured in terminal cells, not characters (pure, no Textual).

A CJK character takes two cells, so ``len()`` and ``str.ljust``/``f"{s:<8}"`` misplace every
column that follows Chinese text. Every width the TUI computes goes through these.
"""

from __future__ import annotations

from rich.cells import cell_len

__all__ = ["cell_len", "crop", "fit", "ljust", "rjust"]

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
