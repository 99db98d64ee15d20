"""Numbers and durations as sfttop writes them in messages and reports.

Neutral ground: the diagnoser, the checklist, the assessment and the report all format values
the same way, and none of them should have to import another just for that.
"""

from __future__ import annotations

import math


def fmt(v: float | None) -> str:
    """A number for a message: 4 significant digits, nan/inf spelled out."""
    if v is None:
        return "n/a"
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.4g}"


def fmt_metric(v: float) -> str:
    """A metric value in a report table or a followed record: 4 significant digits, scientific when tiny or huge."""
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e6):
        return f"{v:.3e}"
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
