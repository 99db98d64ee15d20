"""Numbers and durations as sfttop writes them in messages and reports.

Neutral ground: the diagnoser, the checklist, the assessment and the report all format values
the same way, and none of them should have to import another just for that.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

from .i18n import _


def fmt(v: float | None) -> str:
    """A number for a message: 4 significant digits, nan/inf spelled out."""
    if v is None:
        return _("n/a")
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.4g}"


def json_value(v: float | None) -> float | str | None:
    """A value for JSON, which has no NaN: ``"nan"``/``"inf"``/``"-inf"`` spelled out."""
    if v is None:
        return None
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h07m``: a wait as a person reads it."""
    s = round(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@lru_cache(maxsize=4096)
def _char_cells(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def cells(text: str) -> int:
    """Terminal cells ``text`` takes: a CJK character is two wide, so ``len`` misaligns a
    Chinese table."""
    if text.isascii():
        return len(text)
    return sum(_char_cells(ch) for ch in text)


def ljust_cells(text: str, width: int) -> str:
    return text + " " * max(0, width - cells(text))


# A line may break between two CJK characters or at a space, but not before closing punctuation.
_PIECES = re.compile(r"\s+|[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef][，。：；、）！？」』]*|[^\s\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+[，。：；、）！？」』]*")


def wrap_cells(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells (a longer unbreakable word gets its own line)."""
    lines: list[str] = []
    cur, used = "", 0
    for piece in _PIECES.findall(" ".join(text.split())):
        if piece.isspace():
            if cur:
                cur, used = cur + " ", used + 1
            continue
        n = cells(piece)
        if cur and used + n > width:
            lines.append(cur.rstrip())
            cur, used = "", 0
        cur, used = cur + piece, used + n
    if cur.strip():
        lines.append(cur.rstrip())
    return lines
