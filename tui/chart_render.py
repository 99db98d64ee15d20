"""Build a chart as text with plotext, from plain lists (no Textual).

Every call uses its own plotext figure (``plotext._figure._figure_class``): plotext's module API
is one global figure, which two charts, or a chart and a test, would trample.
"""

from __future__ import annotations

import functools
import math
import shutil
from dataclasses import dataclass, field
from typing import Literal

from plotext._figure import _figure_class  # type: ignore[import-untyped]

from sfttop.core.i18n import N_, _
from sfttop.core.numfmt import is_count

from .fmt import fmt_tick, fmt_value
from .palette import GREY, NAN_RGB, RGB, WARN_RGB, mix
from .plotdata import downsample_minmax, ema_debiased, nice_step, nice_ticks, outlier_bounds, split_finite

Style = Literal["line", "eval"]


@dataclass
class ChartLine:
    label: str
    xs: list[float]
    ys: list[float]  # may hold NaN/inf: they are marked, never plotted
    rgb: RGB
    style: Style = "line"
    glyph: str = ""  # overlay: the run's glyph, drawn along its line (tells runs apart without colour)
    masked: int = 0  # of the NaN in ys, how many the log wrote as a number (the Trainer's NaN filter)


@dataclass
class HLine:
    y: float
    rgb: RGB
    label: str


@dataclass
class ChartOptions:
    smooth: bool = False
    log: bool = False
    clip: bool = True
    x_label: str = "step"  # "step" or "tokens": a key, shown through X_LABELS
    metric: str = ""
    ema_weight: float = 0.6
    auto_log: bool = False  # overlay: switch to a log y axis when the lines are orders of magnitude apart
    live: bool = False  # the runs drawn are being written: the x axis ends at a round bound ahead


@dataclass
class ChartResult:
    text: str  # ANSI text from plotext, or a plain message when there is nothing to plot
    plotted: bool
    notes: list[str] = field(default_factory=list)  # "2 clipped ▲", "NaN ×3 at step 900", ...
    # each note's rank, for a narrow border that cannot show them all: what the data says (NaN,
    # clipped points) outlasts how it is drawn (log y); kept apart as the words are translated
    note_ranks: list[int] = field(default_factory=list)
    clipped: int = 0
    nonfinite: int = 0
    first_nonfinite_x: float | None = None
    auto_log: bool = False  # the y axis went logarithmic by itself (ChartOptions.auto_log)
    picture: tuple[object, ...] = ()  # what plotext was asked to draw, at sub-dot resolution


# Overlay: when one line's median is this many times another's (an exploded run beside healthy
# ones), a linear axis squashes every other run into its bottom row; a log axis shows them all.
AUTO_LOG_RATIO = 30.0
GLYPH_MARKS = 6  # a run's glyph is drawn this many times along its line, and at its last point


def _wants_log(lines: list[ChartLine]) -> bool:
    medians = []
    for line in lines:
        fin = sorted(y for y in line.ys if math.isfinite(y))
        if not fin:
            continue
        if fin[0] <= 0:
            return False  # a log axis would hide these points
        medians.append(fin[len(fin) // 2])
    return len(medians) >= 2 and max(medians) >= AUTO_LOG_RATIO * min(medians)


def _spread(xs: list[float], ys: list[float], n: int) -> tuple[list[float], list[float]]:
    """About ``n`` points evenly spread along a line, always with its last one (not its first:
    runs often start together, and their marks would cover each other there)."""
    if len(xs) <= n:
        return xs, ys
    idx = sorted({round((i + 1) * (len(xs) - 1) / n) for i in range(n)})
    return [xs[i] for i in idx], [ys[i] for i in idx]


def log_ticks(lo: float, hi: float, target: int, count: bool = False) -> tuple[list[float], list[str]]:
    """Ticks for a log10-space axis from ``lo`` to ``hi`` (both log10 values): decades, or
    1-2-5 steps inside a narrow range."""
    ticks: list[float] = []
    for k in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5):
            t = k + math.log10(m)
            if lo <= t <= hi:
                ticks.append(t)
    decades = [t for t in ticks if abs(t - round(t)) < 1e-9]
    if len(decades) >= 2:
        ticks = decades
    if len(ticks) > target + 1:
        stride = math.ceil(len(ticks) / (target + 1))
        ticks = ticks[::stride]
    if not ticks:
        ticks = [t for t in nice_ticks(lo, hi, target)]
    return ticks, [fmt_tick(10**t, count) for t in ticks]


def _clip_bounds(series: list[list[float]], all_y: list[float]) -> tuple[float | None, float | None]:
    """Clip limits over several lines: each line's spikes judged against its own neighbours."""
    if not series:
        return None, None
    uppers = []
    lowers = []
    for ys in series:
        lo, hi = outlier_bounds(ys)
        uppers.append(hi if hi is not None else max(ys))
        lowers.append(lo if lo is not None else min(ys))
    upper: float | None = max(uppers)
    lower: float | None = min(lowers)
    if upper is not None and upper >= max(all_y):
        upper = None
    if lower is not None and lower <= min(all_y):
        lower = None
    return lower, upper


# What the x axis counts, as shown: "x step" under the chart, "from step 900" in its notes.
X_LABELS = {"step": N_("x step"), "tokens": N_("x tokens")}
_NONFINITE_NOTES = {
    (None, False): N_("✕ NaN/inf ×{count}"),
    (None, True): N_("✕ NaN/inf ×{count}, {masked} masked"),
    ("step", False): N_("✕ NaN/inf ×{count} from step {x}"),
    ("step", True): N_("✕ NaN/inf ×{count} from step {x}, {masked} masked"),
    ("tokens", False): N_("✕ NaN/inf ×{count} from tokens {x}"),
    ("tokens", True): N_("✕ NaN/inf ×{count} from tokens {x}, {masked} masked"),
}


def _note(result: ChartResult, text: str, rank: int) -> None:
    result.notes.append(text)
    result.note_ranks.append(rank)


# One plotext call: (kind, xs, ys, marker, colour); kind is plot, scatter or hline (ys = [y]).
_Op = tuple[str, list[float], list[float], str, RGB]


def _cells(values: list[float], lo: float, hi: float, bins: int) -> tuple[int, ...]:
    """Where plotext puts each value on an axis of ``bins`` dots from ``lo`` to ``hi``: its own
    arithmetic (``plotext._utility.get_matrix_data``), to the last rounding."""
    if hi == lo:
        return tuple(0 for _v in values)
    return tuple(math.floor(round(0.5 + (bins - 1) * (v - lo) / (hi - lo), 8)) for v in values)


@functools.lru_cache(maxsize=64)
def _plot_size(width: int, height: int, _terminal: tuple[int, ...]) -> tuple[int, int]:
    """The size plotext draws a ``width`` x ``height`` plot at: no larger than the terminal it
    sees (the terminal's size only keys the cache)."""
    f = _figure_class()
    f.plot_size(width, height)
    return int(f._width), int(f._height)


def _picture(
    ops: list[_Op],
    lims: tuple[float, float, float, float],
    ticks: tuple[list[float], list[str], list[float], list[str]],
    width: int,
    height: int,
) -> tuple[object, ...]:
    """What a chart looks like, cheaply: every point and tick on the dots plotext draws it on.
    plotext draws from these integers alone (the lines between points, the braille cells, the
    ticks), so two charts with the same picture are the same text; a live run's new record
    mostly moves no dot of a long chart (its last bucket's point by a fraction of one)."""
    xmin, xmax, ylo, yhi = lims
    xt, xlabels, yt, ylabels = ticks
    if not xt or not yt:
        return ()  # plotext picks the ticks itself: nothing to compare (drawn every time)
    # plotext's canvas: the size it draws at less the frame (2 x 2) and the y labels' column on
    # the left, less a row of x labels; braille packs 2 x 4 dots in a cell, any other marker 1
    width, height = _plot_size(max(10, width), max(4, height), tuple(shutil.get_terminal_size()))
    cols = width - 2 - max(len(str(label)) for label in ylabels)
    rows = height - 3
    drawn: list[tuple[object, ...]] = []
    for kind, xs, ys, marker, rgb in ops:
        fx, fy = (2, 4) if marker == "braille" else (1, 1)
        if kind == "hline":
            drawn.append((kind, rgb, _cells(ys, ylo, yhi, rows)))
            continue
        drawn.append(
            (kind, marker, rgb, _cells(xs, xmin, xmax, cols * fx), _cells(ys, ylo, yhi, rows * fy))
        )
    return (
        width,
        height,
        tuple(drawn),
        _cells(xt, xmin, xmax, cols),
        tuple(xlabels),
        _cells(yt, ylo, yhi, rows),
        tuple(ylabels),
    )


def _draw(
    ops: list[_Op],
    lims: tuple[float, float, float, float],
    ticks: tuple[list[float], list[str], list[float], list[str]],
    width: int,
    height: int,
) -> str:
    f = _figure_class()
    f.plot_size(max(10, width), max(4, height))
    f.theme("clear")
    f.frame(True)
    for kind, xs, ys, marker, rgb in ops:
        if kind == "plot":
            f.plot(xs, ys, marker=marker, color=rgb)
        elif kind == "scatter":
            f.scatter(xs, ys, marker=marker, color=rgb)
        else:
            f.horizontal_line(ys[0], color=rgb)
    xmin, xmax, ylo, yhi = lims
    f.xlim(xmin, xmax)
    f.ylim(ylo, yhi)
    xt, xlabels, yt, ylabels = ticks
    if yt:
        f.yticks(yt, ylabels)
    if xt:
        f.xticks(xt, xlabels)
    text: str = f.build()
    return text


def _fmt_x(x: float, x_label: str) -> str:
    return fmt_tick(x, count=True) if x_label != "step" or abs(x) >= 1e5 else str(int(x))


def build_chart(
    lines: list[ChartLine],
    opts: ChartOptions,
    width: int,
    height: int,
    hlines: list[HLine] | None = None,
    reuse: ChartResult | None = None,
) -> ChartResult:
    """Plot ``lines`` into a ``width`` x ``height`` block of text. ``reuse``: an earlier result
    whose text is taken as it is when the new chart would draw the same picture."""
    auto_log = not opts.log and opts.auto_log and _wants_log(lines)
    log = opts.log or auto_log
    hlines = [HLine(math.log10(h.y), h.rgb, h.label) if log else h for h in (hlines or []) if h.y > 0 or not log]
    prepared: list[tuple[ChartLine, list[float], list[float]]] = []
    nan_points: list[float] = []
    dropped_nonpos = 0
    for line in lines:
        fx, fy, bad = split_finite(line.xs, line.ys)
        if line.style == "line":
            nan_points.extend(bad)
        else:
            nan_points.extend(bad)
        if log:
            keep = [(x, y) for x, y in zip(fx, fy) if y > 0]
            dropped_nonpos += len(fx) - len(keep)
            fx = [p[0] for p in keep]
            fy = [math.log10(p[1]) for p in keep]  # plotted in log space, ticks labelled back
        # x must be finite too (tokens may be unknown for some steps)
        if any(not math.isfinite(x) for x in fx):
            pairs = [(x, y) for x, y in zip(fx, fy) if math.isfinite(x)]
            fx = [p[0] for p in pairs]
            fy = [p[1] for p in pairs]
        prepared.append((line, fx, fy))
    result = ChartResult("", False)
    result.auto_log = auto_log
    result.nonfinite = len(nan_points)
    if nan_points:
        result.first_nonfinite_x = min(nan_points)
    all_y = [y for _l, _x, fy in prepared for y in fy]
    all_x = [x for _l, fx, _y in prepared for x in fx] + [x for x in nan_points if math.isfinite(x)]
    if not all_y:
        what = opts.metric or _("this metric")
        if nan_points:
            msg = _("every {metric} value so far is NaN/inf ({count})").format(metric=what, count=len(nan_points))
        elif dropped_nonpos:
            msg = _("no positive {metric} values: log scale shows nothing (press the log key again)").format(metric=what)
        else:
            msg = _("no {metric} values yet").format(metric=what)
        result.text = msg
        return result

    # y range: clip a few extreme points (never in log scale: the log is the remedy there)
    lower = upper = None
    if opts.clip and not log:
        lower, upper = _clip_bounds([fy for (_line, _, fy) in prepared if fy], all_y)
    lo = min(all_y) if lower is None else max(min(all_y), lower)
    hi = max(all_y) if upper is None else min(max(all_y), upper)
    shown_h: list[HLine] = []
    data_hi = hi
    for h in hlines:
        if data_hi >= 0.5 * h.y and (upper is None or h.y <= upper * 1.5):
            shown_h.append(h)
            hi = max(hi, h.y)
            lo = min(lo, h.y)
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
    else:
        pad = (hi - lo) * 0.06
    ylo, yhi = lo - pad, hi + pad
    if lo >= 0 and ylo < 0 and not log:
        ylo = 0.0 if lo - 0 < (hi - lo) * 0.5 else lo - pad / 2

    xmin, xmax = min(all_x), max(all_x)
    if xmax == xmin:
        xmin, xmax = xmin - 1, xmax + 1
    elif opts.live:
        # A live run's last step grows with each record, and with the axis every point would
        # move: the axis ends at the next multiple of a 50th of its span, a cell or two ahead.
        q = nice_step(xmax - xmin, 50)
        xmax = xmin + math.ceil((xmax - xmin) / q - 1e-9) * q

    # The drawing calls are recorded first: plotext is most of a chart's cost (10-20 ms), and a
    # live run's new record seldom moves a single dot of a chart of thousands (see _picture).
    ops: list[_Op] = []
    buckets = max(8, width - 8)
    clipped_x: list[float] = []
    clipped_y: list[float] = []
    for line, fx, fy in prepared:
        if not fx:
            continue
        ys = fy
        if upper is not None or lower is not None:
            ys = []
            for x, y in zip(fx, fy):
                if upper is not None and y > upper:
                    clipped_x.append(x)
                    clipped_y.append(upper)
                    y = upper
                elif lower is not None and y < lower:
                    clipped_x.append(x)
                    clipped_y.append(lower)
                    y = lower
                ys.append(y)
        if line.style == "eval":
            # another shape than the train line at any eval count: a dotted line, and ◆ on the
            # evals (spread out when there are more than fit)
            dx, dy = downsample_minmax(fx, ys, buckets)
            ops.append(("plot", dx, dy, "·", line.rgb))
            mx, my = _spread(fx, ys, max(2, width // 4))
            ops.append(("scatter", mx, my, "◆", line.rgb))
            continue
        if opts.smooth:
            raw_x, raw_y = downsample_minmax(fx, ys, buckets)
            ops.append(("plot", raw_x, raw_y, "braille", mix(line.rgb, GREY, 0.6)))
            sm = ema_debiased(ys, opts.ema_weight)
            sx, sy = downsample_minmax(fx, sm, buckets)
            ops.append(("plot", sx, sy, "braille", line.rgb))
        else:
            dx, dy = downsample_minmax(fx, ys, buckets)
            ops.append(("plot", dx, dy, "braille", line.rgb))
        if line.glyph:
            gx, gy = _spread(fx, ema_debiased(ys, opts.ema_weight) if opts.smooth else ys, GLYPH_MARKS)
            ops.append(("scatter", gx, gy, line.glyph, line.rgb))
    for h in shown_h:
        ops.append(("hline", [], [h.y], "", h.rgb))
    if clipped_x:
        ops.append(("scatter", clipped_x, clipped_y, "▲" if upper is not None else "▼", WARN_RGB))
        result.clipped = len(clipped_x)
    if nan_points:
        finite_nan = [x for x in nan_points if math.isfinite(x)]
        if finite_nan:
            ops.append(("scatter", finite_nan, [yhi] * len(finite_nan), "✕", NAN_RGB))
    count = is_count(opts.metric)
    if log:
        ticks, labels = log_ticks(ylo, yhi, max(2, height // 3), count)
    else:
        ticks = nice_ticks(ylo, yhi, max(2, height // 3))
        labels = [fmt_tick(t, count) for t in ticks]
    xt = nice_ticks(xmin, xmax, max(2, width // 14))
    xlabels = [_fmt_x(t, opts.x_label) for t in xt]
    result.picture = _picture(ops, (xmin, xmax, ylo, yhi), (xt, xlabels, ticks, labels), width, height)
    if reuse is not None and reuse.plotted and result.picture and reuse.picture == result.picture:
        result.text = reuse.text
    else:
        try:
            result.text = _draw(ops, (xmin, xmax, ylo, yhi), (xt, xlabels, ticks, labels), width, height)
        except (ValueError, ZeroDivisionError, OverflowError, IndexError) as e:  # plotext edge cases
            result.text = _("chart unavailable: {error}").format(error=e)
            return result
    result.plotted = True
    if result.clipped:
        template = _("{count} clipped above {value}") if upper is not None else _("{count} clipped below {value}")
        value = fmt_value(upper if upper is not None else lower, opts.metric)
        _note(result, template.format(count=result.clipped, value=value), 0)
    if result.nonfinite:
        first = result.first_nonfinite_x
        where = opts.x_label if first is not None and math.isfinite(first) and opts.x_label in X_LABELS else None
        masked = sum(line.masked for line in lines)  # "NaN (masked)": the help screen says what it is
        text = _(_NONFINITE_NOTES[(where, masked > 0)]).format(
            count=result.nonfinite, x=_fmt_x(first, opts.x_label) if where and first is not None else "", masked=masked
        )
        _note(result, text, 0)
    if auto_log:
        _note(result, _("log y (auto)"), 2)
    if dropped_nonpos:
        _note(result, _("{count} ≤0 hidden (log)").format(count=dropped_nonpos), 0)
    for h in shown_h:
        _note(result, h.label, 1)
    return result
