"""The TUI's pure renderers: series arithmetic, sparklines, charts, formatting (no app)."""

from __future__ import annotations

import math
import random
from array import array

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpers import REAL
from sfttop.tui.chart_render import ChartLine, ChartOptions, HLine, build_chart, log_ticks
from sfttop.tui.fmt import fmt_change, fmt_count, fmt_duration, fmt_tick, fmt_value
from sfttop.tui.palette import RUN_COLORS, check_status, run_hex, severity_status
from sfttop.tui.plotdata import (
    bucket_series,
    downsample_minmax,
    ema_debiased,
    map_x,
    nice_ticks,
    outlier_bounds,
    sparkline,
    split_finite,
)
from sfttop.tui.widgets.metric_card import CardData, card_columns, card_text, judge

NAN = math.nan
INF = math.inf
BLUE = RUN_COLORS[0]


def test_ema_debiased_matches_tensorboard() -> None:
    # classicSmoothing with w=0.6: the first point is the point itself (debiased)
    ys = [1.0, 2.0, 3.0]
    out = ema_debiased(ys, 0.6)
    assert out[0] == pytest.approx(1.0)
    last = 0.6 * (0.4 * 1.0) + 0.4 * 2.0
    assert out[1] == pytest.approx(last / (1 - 0.6**2))
    assert ema_debiased([5.0] * 10) == pytest.approx([5.0] * 10)  # a constant stays constant


def test_ema_passes_nan_through_unsmoothed() -> None:
    out = ema_debiased([1.0, NAN, 1.0, INF])
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == pytest.approx(1.0) and out[3] == INF


def test_downsample_keeps_a_one_point_spike() -> None:
    xs = list(range(10_000))
    ys = [1.0] * 10_000
    ys[4321] = 99.0
    dx, dy = downsample_minmax(xs, ys, 50)
    assert len(dx) <= 100
    assert 99.0 in dy and 4321 in dx
    assert dx == sorted(dx)


def test_bucket_series_on_arrays_marks_nonfinite() -> None:
    xs = array("q", range(50_000))
    ys = array("d", [0.5] * 50_000)
    ys[100] = 80.0
    ys[30_000] = NAN
    ys[40_000] = INF
    bx, by, bad = bucket_series(xs, ys, 200)
    assert len(bx) <= 400 and max(by) == 80.0
    assert bad == [30_000, 40_000]
    assert all(math.isfinite(y) for y in by)
    # short series: everything kept
    bx, by, bad = bucket_series([1, 2, 3], [1.0, NAN, 2.0], 200)
    assert bx == [1, 3] and bad == [2]


def test_outlier_bounds_clip_a_lone_spike_not_an_explosion() -> None:
    flat = [1.0 + 0.01 * (i % 7) for i in range(200)]
    spike = [*flat[:100], 500.0, *flat[100:]]
    lo, hi = outlier_bounds(spike)
    assert lo is None and hi is not None and hi < 2.0
    # a gradient explosion: 20% of the points climb; that is the story, shown whole
    explosion = flat[:160] + [2.0 * 1.3**k for k in range(40)]
    assert outlier_bounds(explosion) == (None, None)
    assert outlier_bounds([1.0, 2.0]) == (None, None)


def test_nice_ticks_and_log_ticks() -> None:
    assert nice_ticks(0, 1, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3, 3, 4) == [3]
    _ticks, labels = log_ticks(-1.0, 3.0, 5)
    assert labels == ["0.1", "1", "10", "100", "1000"]


def test_map_x_interpolates_tokens() -> None:
    assert map_x([10, 15, 20, 40], [10, 20], [1000.0, 2000.0]) == [1000.0, 1500.0, 2000.0, 2000.0]
    assert all(math.isnan(v) for v in map_x([1, 2], [], []))


def test_sparkline_never_raises_on_nonfinite() -> None:
    s, bad = sparkline([1.0, 2.0, NAN, 3.0, INF], 5)
    assert len(s) == 5 and s[2] == "×" and s[4] == "×" and bad == [2, 4]
    s, bad = sparkline([NAN, NAN], 4)
    assert s == "××"
    assert sparkline([], 5) == ("", [])
    s, _ = sparkline([2.0] * 100, 10)
    assert len(s) == 10 and len(set(s)) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(NAN)), max_size=300), st.integers(0, 40))
@example([1.7976931348623157e308] * 3, 1)
def test_sparkline_and_split_are_total(values: list[float], width: int) -> None:
    s, _bad = sparkline(values, width)
    assert len(s) <= max(width, 0)
    fx, _fy, nan_x = split_finite(list(range(len(values))), values)
    assert len(fx) + len(nan_x) == len(values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=60), st.integers(1, 60))
@example([1.7976931348623157e308] * 3, 1)  # (a bucket's mean, rounded past the largest float, crashed it)
def test_a_cards_sparkline_is_the_bucket_means_one(values: list[float], width: int) -> None:
    """A card's sparkline (finite values, no more than it has characters) is drawn without
    buckets: the same characters as bucket means of one value each."""
    from sfttop.tui.plotdata import _bucket_sparkline

    assert sparkline(values, width) == _bucket_sparkline(values, width)
    assert sparkline([0.5, 1e308, -1e308], 3) == _bucket_sparkline([0.5, 1e308, -1e308], 3)  # (a span past float)


def _line(ys: list[float], style: str = "line") -> ChartLine:
    return ChartLine("loss", [float(i) for i in range(len(ys))], ys, BLUE, style)  # type: ignore[arg-type]


def test_chart_marks_nan_and_clipped_points() -> None:
    ys = [2.0 * math.exp(-i / 50) + 0.1 for i in range(300)]
    ys[150] = 1e4
    ys[200] = NAN
    res = build_chart([_line(ys)], ChartOptions(metric="loss"), 80, 20)
    assert res.plotted
    assert res.clipped == 1 and res.nonfinite == 1
    assert "✕" in res.text and "▲" in res.text
    assert any("clipped" in n for n in res.notes) and any("NaN" in n for n in res.notes)
    # without clipping the spike sets the scale
    res2 = build_chart([_line(ys)], ChartOptions(metric="loss", clip=False), 80, 20)
    assert res2.clipped == 0 and "10000" in res2.text


def test_chart_with_only_nan_or_nothing_is_a_message() -> None:
    res = build_chart([_line([NAN, NAN])], ChartOptions(metric="loss"), 60, 12)
    assert not res.plotted and "NaN" in res.text
    res = build_chart([], ChartOptions(metric="loss"), 60, 12)
    assert not res.plotted and "no loss values" in res.text


def test_chart_log_scale_hides_nonpositive_values() -> None:
    res = build_chart([_line([0.0, -1.0, 1.0, 10.0, 100.0])], ChartOptions(log=True, metric="grad_norm"), 60, 12)
    assert res.plotted and any("≤0 hidden" in n for n in res.notes)
    res = build_chart([_line([0.0, -1.0])], ChartOptions(log=True, metric="x"), 60, 12)
    assert not res.plotted


def test_chart_threshold_lines_and_smoothing() -> None:
    ys = [1.0 + (i % 5) for i in range(100)]
    h = [HLine(10.0, (230, 180, 40), "warn 10"), HLine(20.0, (235, 70, 70), "critical 20")]
    res = build_chart([_line(ys)], ChartOptions(smooth=True, metric="grad_norm"), 70, 14, h)
    assert "warn 10" in res.notes and "critical 20" not in res.notes  # 20 is far above the data
    assert "─" in res.text


def test_chart_reuses_its_text_only_for_the_same_picture() -> None:
    ys = [2.0 * math.exp(-i / 50) + 0.1 for i in range(300)]
    first = build_chart([_line(ys)], ChartOptions(metric="loss"), 80, 20)
    # a change far below a braille dot: the same picture, plotext is not run again
    nudged = [y + 1e-9 for y in ys]
    again = build_chart([_line(nudged)], ChartOptions(metric="loss"), 80, 20, reuse=first)
    assert again.picture == first.picture and again.text is first.text
    assert build_chart([_line(nudged)], ChartOptions(metric="loss"), 80, 20).text == first.text
    # a point that moves, another size, another colour, other options: drawn again
    moved = list(ys)
    moved[100] += 0.5
    for other in (
        build_chart([_line(moved)], ChartOptions(metric="loss"), 80, 20, reuse=first),
        build_chart([_line(ys)], ChartOptions(metric="loss"), 79, 20, reuse=first),  # (plotext: ≤ the terminal)
        build_chart([ChartLine("loss", _line(ys).xs, ys, RUN_COLORS[1])], ChartOptions(metric="loss"), 80, 20, reuse=first),
        build_chart([_line(ys)], ChartOptions(metric="loss", log=True), 80, 20, reuse=first),
    ):
        assert other.picture != first.picture and other.text != first.text


def _walk(rng: random.Random, n: int) -> list[float]:
    ys, y = [], 2.0
    for _i in range(n):
        y = max(0.01, y * 0.998 + rng.gauss(0, 0.02))
        ys.append(y)
    return ys


def test_same_picture_means_the_same_text() -> None:
    """The picture is what plotext draws from: whenever two charts have the same one, plotext
    itself draws the same text (here for growing live series, where the reuse matters)."""
    rng = random.Random(20)
    same = 0
    for _case in range(30):
        ys = _walk(rng, rng.randrange(100, 3000))
        w, h = rng.randrange(30, 80), rng.randrange(8, 22)
        evals = [(float(i), y + 0.05) for i, y in enumerate(ys) if i % 97 == 0]
        hl = [HLine(1.5, (230, 180, 40), "warn")] if rng.random() < 0.3 else []
        opts = ChartOptions(metric="loss", live=True, smooth=rng.random() < 0.3)
        prev = None
        n = len(ys) - 40
        for _k in range(8):
            n += rng.randrange(1, 6)
            lines = [_line(ys[:n])]
            if rng.random() < 0.5:
                lines.append(ChartLine("eval_loss", [e[0] for e in evals if e[0] < n], [e[1] for e in evals if e[0] < n],
                                       RUN_COLORS[1], "eval"))
            res = build_chart(lines, opts, w, h, hl)
            if prev is not None and res.picture == prev.picture:
                assert res.text == prev.text
                same += 1
            prev = res
    assert same >= 30  # (the property was put to the test)


def test_a_live_run_growing_seldom_needs_plotext() -> None:
    """A new record of a long live run moves no dot of its chart, mostly: the buckets keep their
    edges and the x axis its end, and the last text is taken again."""
    reused = {}
    for live in (True, False):
        ys = _walk(random.Random(2), 2000)
        opts = ChartOptions(metric="loss", live=live)
        prev = build_chart([_line(ys)], opts, 78, 20)
        reused[live] = 0
        for _n in range(40):
            ys.append(ys[-1] * 0.999)
            res = build_chart([_line(ys)], opts, 78, 20, reuse=prev)
            reused[live] += res.text is prev.text
            prev = res
    assert reused[True] >= 30
    # not live (a finished run's chart ends at its last step): nearly every record moves the axis
    assert reused[False] < 10


@pytest.mark.parametrize("w,h", [(10, 4), (20, 5), (200, 60)])
def test_chart_any_size(w: int, h: int) -> None:
    res = build_chart([_line([1.0, 2.0, 3.0]), _line([2.0], "eval")], ChartOptions(), w, h)
    assert res.plotted


def test_formatting() -> None:
    assert fmt_value(None) == "—" and fmt_value(NAN) == "NaN" and fmt_value(-INF) == "-inf"
    # a learning rate in short scientific notation, zero as 0 (never "0.00e+00")
    assert fmt_value(2.92e-06, "learning_rate") == "2.9e-6" and fmt_value(2e-4, "learning_rate") == "2.0e-4"
    assert fmt_value(0.0, "learning_rate") == "0" and fmt_value(9.96e-5, "learning_rate") == "1.0e-4"
    # significant digits, trailing zeros kept: one metric's values line up
    assert fmt_value(3.0, "eval_entropy") == "3.000" and fmt_value(0.43, "eval_mean_token_accuracy") == "0.4300"
    assert fmt_value(-1e-4, "loss") == "-1.0e-4" and fmt_value(2e13, "loss") == "2.0e13"  # no SI on a loss
    values = (1e-300, -1e300, 123456.7, -0.00099, 9999.9, -9999.96, 0.00099999)
    texts = [fmt_value(v, m) for v in values for m in ("loss", "learning_rate", "num_tokens", "")]
    assert all(len(t) <= 9 and "+" not in t and t != "-0" for t in texts), texts
    assert fmt_value(7233941.0, "num_tokens") == "7.2M"
    assert fmt_value(0.1435, "loss") == "0.1435" and fmt_value(12.345) == "12.35"
    assert fmt_count(999) == "999" and fmt_count(6448) == "6.4k"
    assert fmt_change(0.9, 1.0) == ("▼10%", -1)
    assert fmt_change(1.0, 1.0) == ("=", 0)
    assert fmt_change(NAN, 1.0) == ("", 0)
    assert fmt_duration(42) == "42s" and fmt_duration(425) == "7m05s" and fmt_duration(None) == "?"
    assert fmt_tick(1.5e-05) == "1.5e-5" and fmt_tick(1500000, count=True) == "1.5M"
    assert fmt_tick(2e13) == "2e13" and fmt_tick(6e8) == "6e8"  # a loss axis is never "20T"


def test_status_words_for_monochrome() -> None:
    # every status has a glyph and a word: colour never carries meaning alone
    for sev in ("critical", "warning", "info"):
        s = severity_status(sev)
        assert s.glyph and s.word
    assert check_status("fail").word == "FAIL" and check_status("bogus").word == "pend"
    assert run_hex(0) == run_hex(len(RUN_COLORS))


def test_metric_card_marks_out_of_range_without_colour() -> None:
    styles: dict[str, str] = {}
    hi = CardData("grad_norm", "grad_norm", 15.0, 12.0, (1.0, 15.0), 0.1, 10.0, 20.0)
    assert judge(hi) == ("warning", "↑")
    crit = CardData("grad_norm", "grad_norm", 25.0, 12.0, (), 0.1, 10.0, 20.0)
    assert judge(crit) == ("critical", "✖")
    nan = CardData("loss", "loss", NAN, 1.0, (1.0, NAN), 0.01, 1.0)
    text = card_text(nan, 40, styles).plain
    assert "NaN✖" in text and "×" in text
    assert card_columns(36) == (10, True, 9)
    assert card_columns(30)[1] is False  # the change column goes before the sparkline


# ---------------------------------------------------------------------------------- masked NaN
def test_mask_values_by_witness_and_by_zero_after_a_real_loss() -> None:
    from sfttop.core.masking import mask_values, nonfinite_steps

    steps = [10, 20, 30, 40]
    bad = nonfinite_steps(steps, array("d", [1.0, 1.1, NAN, NAN]))
    assert bad == [30, 40] and nonfinite_steps(steps, [1.0, 2.0, 3.0, 4.0]) == []
    assert nonfinite_steps(steps, [NAN, 1.0, NAN, 1.0], from_step=20) == [30]
    vals, masked = mask_values(steps, [2.0, 1.5, 0.0, 0.0], bad)
    assert masked == {2, 3} and list(vals[:2]) == [2.0, 1.5] and all(math.isnan(v) for v in vals[2:])
    many = list(range(100))
    vals, masked = mask_values(many, [1.0] * 100, many[50:])  # many bad steps: the one-pass path
    assert masked == set(range(50, 100))
    vals, masked = mask_values(steps, [2.0, 0.0, 1.0, 0.0], [], zero_after=0.01)
    assert masked == {1, 3}
    healthy = array("d", [2.0, 1.0, 0.5, 0.4])
    vals, masked = mask_values(steps, healthy, [], zero_after=0.01)
    assert vals is healthy and not masked  # nothing to mask: no copy
    _vals, masked = mask_values(steps, [0.0, 0.0, 0.0, 0.0], [], zero_after=0.01)
    assert masked == set()  # zero from the start (labels all masked) is a real, different problem
    _vals, masked = mask_values(steps, [0.0, 0.0, 0.0, 0.0], [], zero_after=0.01, high_before=True)
    assert masked == {0, 1, 2, 3}  # ... but not after real losses logged before these points


def test_a_long_masked_stretch_is_masked_on_the_cards_too() -> None:
    from sfttop.core.masking import shown_series
    from sfttop.core.records import Kind, Record
    from sfttop.core.series import RunData
    from sfttop.tui.views import SPARK_POINTS

    data = RunData()
    for i in range(1, 301):  # 200 zeros after 100 real losses, no grad_norm to tell
        data.add(Record(Kind.TRAIN, i, {"loss": 2.0 if i <= 100 else 0.0}))
    tail = shown_series(data, "loss", last=SPARK_POINTS)
    assert tail is not None and tail.masked == frozenset(range(SPARK_POINTS))


@pytest.mark.parametrize("tf", ["tf4", "tf5"])
def test_a_nan_the_trainer_logged_as_0_is_never_shown_as_0(tf: str) -> None:

    from sfttop.core.config import Config
    from sfttop.core.run import Monitor
    from sfttop.tui.panels import assessment_view
    from sfttop.tui.views import ChartState, cards, chart_data

    log = REAL / tf / "nan_filtered" / "train.log"
    mon = Monitor([str(log)], Config())
    mon.load_all()
    run = mon.runs[0]
    assert run.data.get("loss") is not None and run.data.get("loss").values[-1] == 0.0  # type: ignore[union-attr]
    by_metric = {c.metric: c for c in cards(run, Config().thresholds)}
    loss = by_metric["loss"]
    assert loss.masked and math.isnan(loss.value or 0.0)
    text = card_text(loss, 36, {}).plain
    assert "NaN (masked)" in text and "✖" in text and " 0 " not in text
    assert "×" in text  # the sparkline marks the masked points too
    assert by_metric["mean_token_accuracy"].masked and by_metric["eval_mean_token_accuracy"].masked
    assert not by_metric["learning_rate"].masked
    data = chart_data(mon.runs, 0, ChartState(), Config().thresholds, 80)
    train = data.lines[0]
    assert train.masked >= 15 and min(y for y in train.ys if math.isfinite(y)) > 1.0  # no point at 0
    res = build_chart(data.lines, data.opts, 80, 20)
    assert "✕" in res.text and any(n.endswith(f"{train.masked} masked") for n in res.notes)
    view = assessment_view(run, Config().thresholds)
    assert dict((m[0], m[1]) for m in view.metrics)["loss"] == "NaN (masked)"


# ---------------------------------------------------------------------------------- small panes
def test_title_keeps_the_other_runs_alarms_at_every_width() -> None:
    from sfttop.tui.widgets.title_bar import TitleInfo, title_text

    info = TitleInfo("sfttop (demo)", "a-rather-long-run-name", 0, 0, 4, "step 900/4000 22% · ep 0.83 · ETA 9m40s",
                     "finished", "others ✖2 CRIT ▲1 WARN", "", "", "900/4000 ep 0.83", "others ✖2 ▲1")
    for width in range(40, 130):
        text = title_text(info, width, {}).plain
        assert len(text) <= width, (width, text)
        assert "others ✖2" in text and "▲1" in text, (width, text)
    assert "✖2 CRIT ▲1 WARN" in title_text(info, 100, {}).plain  # words kept while they fit


def test_banner_never_cuts_its_more_count() -> None:
    from sfttop.tui.palette import CRITICAL
    from sfttop.tui.widgets.alert_banner import BannerItem, banner_text

    items = tuple(BannerItem(("r", "c", i), CRITICAL, "c", "grad_norm 62.38 at step 4 is above the critical threshold",
                             "lower the learning rate") for i in range(4))
    for width in (40, 60, 80, 200):
        lines = banner_text(items, width, 1, {}, hidden=1).plain.split("\n")
        assert len(lines) == 1 and lines[0].endswith("(+3 more, 1 dismissed)") and len(lines[0]) <= max(width, 24)


def test_key_bar_shortens_by_priority() -> None:
    from sfttop.tui.widgets.key_bar import KeyHint, key_bar_text

    hints = (KeyHint("q/^c", "quit", 0), KeyHint("?", "keys", 1), KeyHint("tab", "next run", 2),
             KeyHint("s", "smooth", 7), KeyHint("v", "view", 3))
    assert key_bar_text(hints, 200, {}).plain == "q/^c quit  ? keys  tab next run  s smooth  v view"
    assert key_bar_text(hints, 40, {}).plain == "q/^c quit  ? more  tab next run  v view"
    assert key_bar_text(hints, 12, {}).plain == "q/^c quit"


# ---------------------------------------------------------------------------------- overlay
def test_overlay_goes_log_when_one_run_explodes() -> None:
    xs = [float(i) for i in range(1, 101)]
    healthy = [ChartLine(f"r{i}", xs, [1.0 + 0.5 * math.exp(-x / 30) + 0.01 * i for x in xs], BLUE) for i in range(7)]
    exploded = ChartLine("boom", xs, [1.0 * 10 ** (x / 8) for x in xs], BLUE)
    res = build_chart([*healthy, exploded], ChartOptions(metric="loss", auto_log=True), 100, 30)
    assert res.auto_log and "log y (auto)" in res.notes
    assert "T" not in res.text.replace("┬", "")  # never a "20T" loss axis
    # the healthy runs are spread over rows, not squashed into the bottom one
    rows_with_braille = [r for r in res.text.split("\n") if any("⠀" <= c <= "⣿" for c in r)]
    assert len(rows_with_braille) > 10
    # without the option (a single run) or with the user's choice, no auto log
    assert not build_chart([*healthy, exploded], ChartOptions(metric="loss"), 100, 30).auto_log


def test_overlay_runs_differ_without_colour() -> None:
    from sfttop.tui.palette import RUN_GLYPHS

    xs = [float(i) for i in range(1, 61)]
    lines = [ChartLine(f"r{i}", xs, [2.0 - i * 0.1 + math.sin(x / 5) * 0.05 for x in xs], BLUE, glyph=RUN_GLYPHS[i])
             for i in range(8)]
    res = build_chart(lines, ChartOptions(metric="loss", auto_log=True), 100, 30)
    assert all(g in res.text for g in RUN_GLYPHS[:8])
    assert len(set(RUN_GLYPHS)) == len(RUN_GLYPHS) and not set(RUN_GLYPHS) & set("◆▲▼✕×━·")


def test_legend_wraps_with_every_run_name() -> None:
    from rich.text import Text

    from sfttop.tui.widgets.metric_chart import legend_lines

    items = [Text(f"● run-{i:02d}-lr{i}e-5") for i in range(10)]
    lines = legend_lines(items, 60)
    assert all(line.cell_len <= 60 for line in lines) and len(lines) >= 3
    joined = " ".join(line.plain for line in lines)
    assert all(f"run-{i:02d}-lr{i}e-5" in joined for i in range(10))


@pytest.mark.parametrize("evals", [5, 40, 200])
def test_eval_is_marked_at_any_eval_count(evals: int) -> None:
    from sfttop.tui.palette import eval_rgb, run_rgb

    xs = [float(i) for i in range(1, 1001)]
    train = ChartLine("loss", xs, [1 + 1 / x for x in xs], run_rgb(0))
    ex = [1000 * (i + 1) / evals for i in range(evals)]
    ev = ChartLine("eval_loss", ex, [1.2 + 1 / x for x in ex], eval_rgb(0), "eval")
    res = build_chart([train, ev], ChartOptions(metric="loss"), 80, 20)
    assert res.text.count("◆") >= min(evals, 5) and "·" in res.text


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def lum(c: tuple[int, int, int]) -> float:
        ch = [v / 255 for v in c]
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in ch]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("dark", [True, False], ids=["dark", "light"])
def test_run_colours_read_on_the_theme_and_eval_differs_from_train(dark: bool) -> None:
    from sfttop.tui.palette import eval_rgb, run_rgb, use_dark_theme

    # Textual's backgrounds: textual-dark paints #121212, textual-light #E0E0E0
    background, floor = ((18, 18, 18), 4.5) if dark else ((224, 224, 224), 3.0)
    use_dark_theme(dark)
    try:
        for i in range(len(RUN_COLORS)):
            assert _contrast(run_rgb(i), background) >= floor, (i, run_rgb(i))
            train, ev = run_rgb(i), eval_rgb(i)
            assert sum((a - b) ** 2 for a, b in zip(train, ev)) ** 0.5 >= 80  # not 215 vs 216
    finally:
        use_dark_theme(True)
