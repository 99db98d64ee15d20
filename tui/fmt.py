"""Number and time formatting for narrow terminal cells (pure functions, no Textual).

Numbers are written by ``sfttop.core.numfmt`` (its docstring is the rule); this module adds
changes, durations, steps and epochs.
"""

from __future__ import annotations

import math

from sfttop.core.i18n import _
from sfttop.core.numfmt import fmt_count, fmt_duration, fmt_sci, fmt_tick, fmt_value

__all__ = ["fmt_change", "fmt_count", "fmt_duration", "fmt_epoch", "fmt_sci", "fmt_step", "fmt_tick", "fmt_value"]


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


def fmt_step(step: int | None, total: int | None = None) -> str:
    if step is None:
        return "—"
    return f"{step}/{total}" if total else str(step)


def fmt_epoch(epoch: float | None) -> str:
    if epoch is None or not math.isfinite(epoch):
        return ""
    return _("ep {epoch}").format(epoch=f"{epoch:.2f}")
