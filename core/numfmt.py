"""The one way sfttop writes a number for a person to read (cards, chart axes, run list, panels).

- a metric value: four significant digits, trailing zeros kept so values of one metric line up
  (``0.4300``, ``3.000``, ``12.35``, ``1235``); below 1e-3 or from 1e4 on, short scientific
  (``-1.0e-4``, ``2.0e13``): a loss of 2e13 is an explosion, not "20T";
- a learning rate: short scientific (``2.0e-4``, ``3.6e-5``), ``0`` for zero;
- a count (tokens, FLOPs): SI suffixes (``6.4k``, ``7.2M``), the only place they are used;
- NaN and inf spelled out (``NaN``, ``inf``, ``-inf``); no value: ``—``.

Every result fits in 9 cells. Pure functions, no Textual (core/ and tui/ share them).
"""

from __future__ import annotations

import math

from .metrics import LR, NUM_TOKENS


def is_count(metric: str) -> bool:
    return metric == NUM_TOKENS or metric.endswith("tokens") or metric == "total_flos"


def is_lr(metric: str) -> bool:
    return metric == LR or metric.endswith("learning_rate") or metric == "lr"


def fmt_value(v: float | None, metric: str = "") -> str:
    """A metric value in at most 9 characters, as the module docstring says."""
    if v is None:
        return "—"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if is_count(metric):
        return fmt_count(v)
    if v == 0:
        return "0"
    if is_lr(metric):
        return fmt_sci(v)
    a = abs(v)
    if 1e-3 <= a < 1e4:
        text = f"{v:#.4g}"
        if "e" in text:  # 9999.9 rounds up to 1.000e+04
            return fmt_sci(v)
        return text[:-1] if text.endswith(".") else text
    return fmt_sci(v)


def fmt_sci(v: float, digits: int = 1) -> str:
    """``2.0e-4``, ``-1.0e-4``, ``2.0e13``: mantissa with ``digits`` decimals, bare exponent."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else fmt_value(v)
    e = math.floor(math.log10(abs(v)))
    m = round(v / 10.0**e, digits)
    if abs(m) >= 10:  # 9.96e-5 rounds to 10.0e-5
        e += 1
        m = round(v / 10.0**e, digits)
    return f"{m:.{digits}f}e{e}"


def fmt_count(v: float) -> str:
    """12 → 12, 6448 → 6.4k, 1.2e7 → 12.0M."""
    if not math.isfinite(v):
        return fmt_value(v)
    a = abs(v)
    if a >= 1e15:
        return fmt_sci(v)
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.1f}{unit}"
    text = f"{v:.0f}"
    return "0" if text == "-0" else text


def fmt_tick(v: float, count: bool = False) -> str:
    """Axis tick labels: short, no float noise. SI suffixes on a count axis only (``1.2M``
    tokens); elsewhere ``1500``, ``0.25``, ``2e-5``, ``2e13``."""
    a = abs(v)
    if a == 0:
        return "0"
    if count and a >= 1e4:
        return fmt_count(v).replace(".0", "")
    if a >= 1e5 or a < 1e-3:
        text = f"{v:.2g}"
        if "e" in text:
            mant, exp = text.split("e")
            return f"{mant}e{int(exp)}"
        return text
    return f"{v:.6g}"  # ticks are round numbers: this only drops float noise


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
