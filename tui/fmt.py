"""Number and time formatting for narrow terminal cells (pure functions, no Textual)."""

from __future__ import annotations

import math

from sfttop.core.metrics import LR, NUM_TOKENS


def fmt_value(v: float | None, metric: str = "") -> str:
    """A metric value in at most 9 characters; NaN and inf spelled out."""
    if v is None:
        return "—"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if metric == NUM_TOKENS or metric.endswith("num_tokens"):
        return fmt_count(v)
    if metric == LR or metric.endswith("learning_rate"):
        return f"{v:.2e}"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e5 or a < 1e-3:
        return f"{v:.2e}"
    if a >= 100:
        return f"{v:.1f}"
    return f"{v:.4g}" if a >= 1 else f"{v:.4f}"


def fmt_count(v: float) -> str:
    """12 → 12, 6448 → 6.4k, 1.2e7 → 12.0M."""
    if not math.isfinite(v):
        return fmt_value(v)
    a = abs(v)
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}"


def fmt_change(now: float | None, before: float | None) -> tuple[str, int]:
    """Relative change as ``▲3.1%`` / ``▼12%`` / ``=``, and its sign (-1, 0, 1)."""
    if now is None or before is None or not (math.isfinite(now) and math.isfinite(before)):
        return "", 0
    if before == now:
        return "=", 0
    sign = 1 if now > before else -1
    arrow = "▲" if sign > 0 else "▼"
    if before == 0:
        return arrow, sign
    pct = round(abs(now - before) / abs(before) * 100, 1)
    if pct >= 999.5:
        return f"{arrow}{pct / 100:.0f}x", sign
    if pct >= 10:
        return f"{arrow}{pct:.0f}%", sign
    return f"{arrow}{pct:.1f}%", sign


def fmt_duration(seconds: float | None) -> str:
    """ETA text: ``42s``, ``7m05s``, ``3h12m``, ``2d04h``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def fmt_step(step: int | None, total: int | None = None) -> str:
    if step is None:
        return "—"
    return f"{step}/{total}" if total else str(step)


def fmt_epoch(epoch: float | None) -> str:
    if epoch is None or not math.isfinite(epoch):
        return ""
    return f"ep {epoch:.2f}"


def fmt_tick(v: float) -> str:
    """Axis tick labels: short, no float noise (``1500``, ``0.25``, ``2e-05``, ``1.2M``)."""
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e4:
        return fmt_count(v).replace(".0", "")
    if a < 1e-3:
        return f"{v:.3g}".replace("e-0", "e-")
    return f"{v:.4g}"
