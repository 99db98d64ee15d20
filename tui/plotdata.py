"""Series arithmetic for charts and sparklines (pure, no Textual, no plotext).

- ``downsample_minmax``: keep each bucket's minimum and maximum, in order, so a one-point spike
  survives downsampling to the chart's width;
- ``ema_debiased``: TensorBoard's smoothing (research note B.11), NaN passed through;
- ``outlier_bounds``: where to clip a few extreme points so they do not flatten the curve;
- ``nice_ticks``: round axis ticks;
- ``map_x``: steps to tokens seen, through the run's ``num_tokens`` series.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

EMA_WEIGHT = 0.6  # TensorBoard's default slider value


def split_finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float], list[float]]:
    """(finite xs, finite ys, xs where y was NaN or inf)."""
    fx: list[float] = []
    fy: list[float] = []
    bad: list[float] = []
    isfinite = math.isfinite
    for x, y in zip(xs, ys):
        if isfinite(y):
            fx.append(x)
            fy.append(y)
        else:
            bad.append(x)
    return fx, fy, bad


def bucket_size(n: int, buckets: int) -> int:
    """Points per bucket when ``n`` points go into at most ``buckets``: the smallest size on a
    fixed ladder (1, 2, ... 8, 10, 12, 15, 18, ...: each step at most a quarter up) that is at
    least ``n / buckets``. Buckets start at multiples of it, so while a live series grows only
    its last bucket changes (and the size itself after a quarter more points): a new record
    leaves the rest of the chart's points where they were, and the chart need not be drawn again
    (see chart_render._picture)."""
    need = -(-n // max(1, buckets))
    size = 1
    while size < need:
        size = max(size + 1, size * 5 // 4)
    return size


def downsample_minmax(xs: Sequence[float], ys: Sequence[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most ``2 * buckets`` points: each bucket's min and max, in x order. Finite input only."""
    n = len(xs)
    if buckets <= 0 or n <= 2 * buckets:
        return list(xs), list(ys)
    ox: list[float] = []
    oy: list[float] = []
    size = bucket_size(n, buckets)
    for lo in range(0, n, size):
        hi = min(n, lo + size)
        seg = ys[lo:hi]
        imin = lo + min(range(hi - lo), key=seg.__getitem__)
        imax = lo + max(range(hi - lo), key=seg.__getitem__)
        for i in sorted({imin, imax}):
            ox.append(xs[i])
            oy.append(ys[i])
    return ox, oy


def ema_debiased(ys: Sequence[float], weight: float = EMA_WEIGHT) -> list[float]:
    """TensorBoard ``classicSmoothing``: debiased EMA; non-finite values pass through unsmoothed."""
    out: list[float] = []
    last = 0.0
    n = 0
    for y in ys:
        if not math.isfinite(y):
            out.append(y)
            continue
        last = last * weight + (1 - weight) * y
        n += 1
        out.append(last / (1 - weight**n) if weight != 1 else last)
    return out


def outlier_bounds(
    ys: Sequence[float], max_fraction: float = 0.02, k: float = 6.0, half_window: int = 5, keep_last: int = 3
) -> tuple[float | None, float | None]:
    """(lower, upper) y limits that leave out a *few* spikes, or None for a side to keep.

    A spike is a point far from the median of its neighbours (``half_window`` on each side):
    more than ``k`` robust standard deviations (1.4826 x MAD) and more than half the median's
    size away. A curve that starts high and falls fast, or a gradient explosion that climbs
    point after point, has no spikes by this rule (each point sits near its neighbours): it is
    the story and is shown whole. Only when spikes are rare (at most ``max_fraction`` of the
    points) is a side clipped. The last ``keep_last`` points are never clipped: the newest
    value is what the user is looking at.
    """
    n = len(ys)
    if n < 8:
        return None, None
    hi_spikes: list[int] = []
    lo_spikes: list[int] = []
    for i in range(n - keep_last):
        neigh = [*ys[max(0, i - half_window) : i], *ys[i + 1 : i + 1 + half_window]]
        med = _median(neigh)
        mad = _median([abs(v - med) for v in neigh]) * 1.4826
        gap = ys[i] - med
        limit = max(k * mad, 0.5 * abs(med), 1e-12)
        if gap > limit:
            hi_spikes.append(i)
        elif -gap > limit:
            lo_spikes.append(i)
    allowed = max(1, int(max_fraction * n))
    upper = lower = None
    if hi_spikes and len(hi_spikes) <= allowed:
        skip = set(hi_spikes)
        rest = [y for i, y in enumerate(ys) if i not in skip]
        top, bottom = max(rest), min(rest)
        upper = top + 0.1 * max(top - bottom, abs(top) * 0.05, 1e-12)
    if lo_spikes and len(lo_spikes) <= allowed:
        skip = set(lo_spikes)
        rest = [y for i, y in enumerate(ys) if i not in skip]
        top, bottom = max(rest), min(rest)
        lower = bottom - 0.1 * max(top - bottom, abs(bottom) * 0.05, 1e-12)
    return lower, upper


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def nice_step(span: float, target: int) -> float:
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(1, target)
    mag: float = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def nice_ticks(lo: float, hi: float, target: int) -> list[float]:
    """Round ticks inside [lo, hi], about ``target`` of them (at least the two ends)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [lo]
    ticks: list[float] = []
    for extra in range(4):  # a range that straddles one round number gets a finer step
        step = nice_step(hi - lo, target + extra)
        start = math.ceil(lo / step - 1e-9) * step
        ticks = []
        t = start
        while t <= hi + step * 1e-9 and len(ticks) < 50:
            ticks.append(0.0 if abs(t) < step * 1e-9 else round(t, 12))
            t += step
        if len(ticks) >= 2:
            break
    return ticks


def map_x(steps: Sequence[float], ref_steps: Sequence[float], ref_values: Sequence[float]) -> list[float]:
    """Each step's value in a reference series (tokens seen), interpolated linearly, extrapolated
    flat at the ends; NaN where the reference is empty."""
    pairs = [(s, v) for s, v in zip(ref_steps, ref_values) if math.isfinite(v)]
    if not pairs:
        return [math.nan] * len(steps)
    rs = [p[0] for p in pairs]
    rv = [p[1] for p in pairs]
    out = []
    for s in steps:
        i = bisect_right(rs, s)
        if i == 0:
            # before the first reference point: scale proportionally from 0
            out.append(rv[0] * s / rs[0] if rs[0] else rv[0])
        elif i >= len(rs):
            out.append(rv[-1])
        else:
            s0, s1 = rs[i - 1], rs[i]
            v0, v1 = rv[i - 1], rv[i]
            out.append(v0 + (v1 - v0) * (s - s0) / (s1 - s0) if s1 != s0 else v0)
    return out


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> tuple[str, list[int]]:
    """A ``width``-character sparkline (bucket means) of ``values``, and the character positions
    whose bucket held a NaN/inf (drawn there as ``×``). Never raises on non-finite input."""
    n = len(values)
    if width <= 0 or n == 0:
        return "", []
    if n <= width and math.isfinite(sum(values)):
        # (a card's: one value per character, none NaN/inf; each is its bucket's mean)
        lo, hi = min(values), max(values)
        span = hi - lo
        if span <= 0:
            return SPARK[3] * n, []
        if math.isfinite(span):
            return "".join([_spark_char((v - lo) / span) for v in values]), []
    return _bucket_sparkline(values, width)


def _spark_char(frac: float) -> str:
    """The bar for a value ``frac`` of the way from the lowest to the highest."""
    return SPARK[max(0, min(7, int(frac * 7.999)))]


def _bucket_sparkline(values: Sequence[float], width: int) -> tuple[str, list[int]]:
    """``sparkline`` by buckets of values, NaN/inf among them."""
    n = len(values)
    if n <= width:
        buckets = [[v] for v in values]
    else:
        size = n / width
        buckets = [list(values[int(i * size) : int((i + 1) * size) or 1]) for i in range(width)]
    means: list[float | None] = []
    bad: list[int] = []
    for i, b in enumerate(buckets):
        fin = [v for v in b if math.isfinite(v)]
        if len(fin) < len(b):
            bad.append(i)
        # (each term divided first: no overflow near 1e308; the rounding of a sum of such terms
        # can still pass the largest float, and a mean lies between its values)
        means.append(min(max(fin), max(min(fin), sum(v / len(fin) for v in fin))) if fin else None)
    fin_means = [m for m in means if m is not None]
    if not fin_means:
        return "×" * len(means), list(range(len(means)))
    lo, hi = min(fin_means), max(fin_means)
    span = hi - lo
    chars = []
    for i, m in enumerate(means):
        if i in bad:
            chars.append("×")
        elif m is None:
            chars.append(" ")
        elif span <= 0:
            chars.append(SPARK[3])
        else:
            frac = (m - lo) / span if math.isfinite(span) else (m / 2 - lo / 2) / (hi / 2 - lo / 2)
            chars.append(_spark_char(frac))
    return "".join(chars), bad


def bucket_series(
    xs: Sequence[float], ys: Sequence[float], buckets: int
) -> tuple[list[float], list[float], list[float]]:
    """Reduce a long stored series to at most ``2 * buckets`` finite points (each bucket's min and
    max) plus the xs of every non-finite value. Fast on ``array('d')``: a bucket without NaN/inf
    costs three C-level passes (``sum``, ``min``, ``max``)."""
    n = len(xs)
    if n <= 2 * buckets:
        return split_finite(xs, ys)
    ox: list[float] = []
    oy: list[float] = []
    bad: list[float] = []
    size = bucket_size(n, buckets)
    isfinite = math.isfinite
    for lo in range(0, n, size):
        hi = min(n, lo + size)
        seg = ys[lo:hi]
        if isfinite(sum(seg)):
            mn = min(seg)
            mx = max(seg)
            imn = seg.index(mn)
            imx = seg.index(mx)
        else:
            fin = [(i, y) for i, y in enumerate(seg) if isfinite(y)]
            bad.extend(xs[lo + i] for i, y in enumerate(seg) if not isfinite(y))
            if not fin:
                continue
            imn = min(fin, key=lambda p: p[1])[0]
            imx = max(fin, key=lambda p: p[1])[0]
        for i in (imn, imx) if imn < imx else (imx, imn) if imx < imn else (imn,):
            ox.append(xs[lo + i])
            oy.append(seg[i])
    return ox, oy, bad
