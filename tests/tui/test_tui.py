"""Pilot tests of the live monitor: keys, banners, runs appearing and vanishing, alerts, sizes."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from helpers import LIVE, REAL, assessment_text, screen_lines, wait_for
from sfttop.core.config import Config
from sfttop.tui.app import SfttopApp
from sfttop.tui.keys import BINDING_IDS
from sfttop.tui.widgets.alert_banner import AlertBanner
from sfttop.tui.widgets.help_screen import HelpScreen
from sfttop.tui.widgets.metric_chart import MetricChart
from sfttop.tui.widgets.run_list import RunList
from sfttop.tui.widgets.title_bar import TitleBar
from synth import nan_line, write_log

REAL = REAL / "tf5"
THREE = [str(REAL / n / "train.log") for n in ("healthy", "explode", "overfit")]


def names(app: SfttopApp) -> list[str]:
    return [r.name for r in app.query_one("#runs", RunList).rows]


def selected_name(app: SfttopApp) -> str:
    info = app.query_one("#title", TitleBar).info
    assert info is not None
    return info.run


# ---------------------------------------------------------------------------------- keys
async def test_keys_switch_runs() -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert names(app) == ["healthy", "explode", "overfit"]
        assert selected_name(app) == "healthy"
        await pilot.press("tab")
        assert selected_name(app) == "explode"
        await pilot.press("tab", "tab")
        assert selected_name(app) == "healthy"  # wraps around
        await pilot.press("shift+tab")
        assert selected_name(app) == "overfit"
        await pilot.press("1")
        assert selected_name(app) == "healthy"
        await pilot.press("3")
        assert selected_name(app) == "overfit"
        await pilot.press("9")  # no ninth run: nothing happens
        assert selected_name(app) == "overfit"
        await pilot.press("k", "k")
        assert selected_name(app) == "healthy"
        await pilot.press("j", "down")
        assert selected_name(app) == "overfit"
        await pilot.press("up")
        assert selected_name(app) == "explode"
        assert app.query_one("#runs", RunList).selected == 1


async def test_keymap_remaps_by_binding_id() -> None:
    app = SfttopApp(THREE, Config(keys={"next_run": "n", "quit": "ctrl+q"}), replay=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        assert selected_name(app) == "explode"
        await pilot.press("q")  # q no longer quits
        await pilot.pause()
        assert app.is_running


async def test_help_lists_every_binding_with_its_id() -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = {row[2] for row in app.screen.rows}
        assert {"next_run", "prev_run", "run_down", "run_up", "quit", "help", "dismiss"} <= ids
        assert "run_1 … run_9" in ids and ids - {"run_1 … run_9"} <= BINDING_IDS
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_chart_keys_switch_metric_and_options() -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        chart = app.query_one("#chart", MetricChart)
        assert chart.data is not None and chart.data.title == "loss"
        assert [i.label for i in chart.data.legend] == ["loss", "eval_loss"]
        await pilot.press("m")
        assert chart.data.title == "grad_norm"
        assert [h.y for h in chart.data.hlines] == [10.0, 20.0]  # threshold reference lines
        await pilot.press("M")
        assert chart.data.title == "loss"
        await pilot.press("s", "l", "x", "c")
        opts = chart.data.opts
        assert opts.smooth and opts.log and opts.x_label == "tokens" and not opts.clip
        await pilot.press("o")
        assert [i.label for i in chart.data.legend] == ["healthy", "explode", "overfit"]
        assert len(chart.data.lines) == 6  # each run's train line and eval points
        await pilot.pause()
        assert chart.result is not None and chart.result.plotted


async def test_dismiss_hides_a_banner_until_a_new_episode() -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("2")  # explode
        banner = app.query_one("#banner", AlertBanner)
        assert banner.display and banner.items
        first = banner.items[0]
        assert first.status.word == "CRIT"
        await pilot.press("d")
        assert first not in banner.items and banner.hidden == 1
        # a new episode of the same code is a different key: it would show again
        assert first.key in app.dismissed


# ---------------------------------------------------------------------------------- live
async def test_nan_appended_to_a_tailed_file_raises_a_banner(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        write_log(tmp_path / name / "train.log")
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: names(app) == ["alpha", "beta"] and not app.monitor.loading)
        await pilot.press("tab")
        banner = app.query_one("#banner", AlertBanner)
        assert not banner.items
        with open(tmp_path / "beta" / "train.log", "a") as f:
            f.write(nan_line())
        assert await wait_for(pilot, lambda: any(i.code == "loss_nonfinite" for i in banner.items), 3.0)
        assert banner.display and "nan" in banner.items[0].message
        assert app.query_one("#runs", RunList).rows[1].status.word == "CRIT"
        assert app._bells == 1  # a new critical finding rings the terminal bell


async def test_run_created_later_appears_and_vanished_run_is_marked(tmp_path: Path) -> None:
    write_log(tmp_path / "alpha" / "train.log")
    write_log(tmp_path / "beta" / "train.log")
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: names(app) == ["alpha", "beta"])
        write_log(tmp_path / "gamma" / "train.log", 12)
        assert await wait_for(pilot, lambda: names(app) == ["alpha", "beta", "gamma"])
        os.remove(tmp_path / "beta" / "train.log")
        rows = lambda: app.query_one("#runs", RunList).rows  # noqa: E731
        assert await wait_for(pilot, lambda: rows()[1].status.word == "gone")
        assert names(app) == ["alpha", "beta", "gamma"]  # marked, not dropped


async def test_alert_command_receives_the_finding(tmp_path: Path) -> None:
    write_log(tmp_path / "alpha" / "train.log")
    got = tmp_path / "alert.json"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json, os, sys\n"
        "d = json.load(sys.stdin)\n"
        "d['env'] = [os.environ['SFTTOP_RUN'], os.environ['SFTTOP_CODE'], os.environ['SFTTOP_SEVERITY']]\n"
        f"open({str(got)!r}, 'w').write(json.dumps(d))\n"
    )
    app = SfttopApp(
        [str(tmp_path / "*" / "train.log")], Config(), alert_cmd=f"{sys.executable} {hook}", alert_severity="critical", **LIVE
    )
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: bool(names(app)) and not app.monitor.loading)
        with open(tmp_path / "alpha" / "train.log", "a") as f:
            f.write(nan_line())
        assert await wait_for(pilot, got.exists, 10.0)
        await pilot.pause(0.2)
        d = json.loads(got.read_text())
        assert d["run"] == "alpha" and d["code"] == "loss_nonfinite" and d["severity"] == "critical"
        assert d["env"] == ["alpha", "loss_nonfinite", "critical"]
        assert app.dispatcher is not None and app.dispatcher.sent == 1


async def test_idle_screen_rebuilds_nothing(tmp_path: Path) -> None:
    write_log(tmp_path / "alpha" / "train.log", 200)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: bool(names(app)) and not app.monitor.loading)
        await pilot.pause(0.3)
        chart = app.query_one("#chart", MetricChart)
        builds, polls = chart.builds, app.polls
        await pilot.pause(1.0)
        assert app.polls > polls + 5  # still polling the file...
        assert chart.builds == builds  # ...but nothing changed, so nothing was rebuilt


def test_bad_alert_command_exits_with_a_message() -> None:
    app = SfttopApp(THREE, Config(), alert_cmd="'unbalanced", replay=True)
    app.run(headless=True)
    assert app.return_code == 2 and app.exit_message and "alert-cmd" in app.exit_message


async def test_waiting_for_logs_and_hostile_names(tmp_path: Path) -> None:
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        assert names(app) == []
        chart = app.query_one("#chart", MetricChart)
        await pilot.pause()
        assert chart.result is not None and "waiting for logs" in chart.result.text
        evil = "run\x1b]0;pwned\x07\x1b[31mX"
        write_log(tmp_path / evil / "train.log", 5)
        assert await wait_for(pilot, lambda: len(names(app)) == 1)
        shown = names(app)[0]
        assert "\x1b" not in shown and "\x07" not in shown and shown.startswith("run")
        assert "\x1b" not in selected_name(app)


# ---------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 15), (45, 12), (30, 8)])
async def test_every_view_at_every_size(size: tuple[int, int]) -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for _ in range(5):
            await pilot.press("v")
            await pilot.pause()
        await pilot.press("tab", "m", "o")
        await pilot.pause()
        too_small = app.query_one("#toosmall")
        assert too_small.display == (size[0] < 40 or size[1] < 10)
        if too_small.display:
            assert "needs at least" in str(too_small.render())


async def test_view_key_reaches_every_panel_in_a_small_pane() -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.pause()
        seen = []
        for _ in range(4):
            seen.append(
                (app.view, app.query_one("#chart").display, app.query_one("#side").display, app.query_one("#assessment").display)
            )
            await pilot.press("v")
            await pilot.pause()
        assert [s[0] for s in seen] == ["chart", "metrics", "checklist", "assessment"]
        assert seen[0][1] and not seen[0][2]  # the chart, no side panel
        assert seen[1][2]  # the metrics view shows the run list and cards
        assert seen[3][3] and not seen[3][1]  # the assessment in place of the chart
        assert app.view == "chart" and app.query_one("#chart").display  # and round again


async def test_an_engine_error_is_shown_not_fatal(tmp_path: Path) -> None:
    write_log(tmp_path / "alpha" / "train.log")
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    real_rescan = app.monitor.rescan
    calls = {"n": 0}

    def flaky(force: bool = False) -> list:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return real_rescan(force)

    app.monitor.rescan = flaky  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: calls["n"] > 5 and bool(names(app)))
        info = app.query_one("#title", TitleBar).info
        assert info is not None and "boom" in info.alerts
        assert app.is_running
    assert app.exit_message and "RuntimeError: boom" in app.exit_message


async def test_history_loads_in_batches_with_visible_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sfttop.tui.app as app_module

    write_log(tmp_path / "big" / "train.log", 3000, epoch_scale=0.001, bars=True)
    from sfttop.core.run import Run

    monkeypatch.setattr(app_module, "LOAD_BUDGET", 8 << 10)  # 8 KiB a poll, 20 ms each: a slow disk
    read = Run.read
    monkeypatch.setattr(Run, "read", lambda self, *a: time.sleep(0.02) or read(self, *a))
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    seen_loading = seen_chart_while_loading = False
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await pilot.pause(0.05)
            rows = app.query_one("#runs", RunList).rows
            if not rows:
                continue
            if rows[0].status.word == "load":
                seen_loading = True
                assert rows[0].detail.endswith("%")
                chart = app.query_one("#chart", MetricChart)
                if chart.data is not None and chart.data.lines and chart.data.lines[0].xs:
                    seen_chart_while_loading = True
            elif seen_loading:
                break
        assert seen_loading and seen_chart_while_loading  # usable before the history is read
        assert await wait_for(pilot, lambda: not app.monitor.loading, 30)
        loss = app.monitor.runs[0].data.get("loss")
        assert loss is not None and loss.count == 3000 and loss.steps[-1] == 30000


async def test_alert_for_a_run_already_broken_when_sfttop_starts(tmp_path: Path) -> None:
    write_log(tmp_path / "alpha" / "train.log")
    with open(tmp_path / "alpha" / "train.log", "a") as f:
        f.write(nan_line())
    got = tmp_path / "alert.json"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import sys\nopen({str(got)!r}, 'w').write(sys.stdin.read())\n")
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), alert_cmd=f"{sys.executable} {hook}", **LIVE)
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, got.exists, 10.0)
        await pilot.pause(0.2)
        assert json.loads(got.read_text())["code"] == "loss_nonfinite"
        assert app._bells == 0  # history is not news for the bell


async def test_checklist_and_assessment_are_built_off_the_ui_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from sfttop.tui import panels

    for name, seed in (("alpha", 0), ("beta", 3)):
        write_log(tmp_path / name / "train.log", seed=seed)
    built: list[tuple[str, bool]] = []
    real_checklist, real_assessment = panels.checklist_view, panels.assessment_view

    def checklist_view(run, engine):  # type: ignore[no-untyped-def]
        built.append((run.name, threading.current_thread() is threading.main_thread()))
        return real_checklist(run, engine)

    def assessment_view(run, t):  # type: ignore[no-untyped-def]
        built.append((run.name, threading.current_thread() is threading.main_thread()))
        return real_assessment(run, t)

    monkeypatch.setattr(panels, "checklist_view", checklist_view)
    monkeypatch.setattr(panels, "assessment_view", assessment_view)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: len(names(app)) == 2)

        def shows(name: str) -> bool:
            return app.query_one("#checklist").border_title == f"checklist · {name}"

        assert await wait_for(pilot, lambda: shows(selected_name(app)))
        first = selected_name(app)
        await pilot.press("tab")
        second = selected_name(app)
        assert second != first
        assert await wait_for(pilot, lambda: shows(second))
    assert {n for n, _ in built} == {"alpha", "beta"}
    assert not any(on_ui for _, on_ui in built), built


# ---------------------------------------------------------------------------------- quitting
@pytest.mark.parametrize("help_open", [False, True])
async def test_ctrl_c_quits(help_open: bool) -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        if help_open:
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_a_log_with_no_records_says_so(tmp_path: Path) -> None:
    other = tmp_path / "nginx.log"
    other.write_text('127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 612\n' * 20)
    app = SfttopApp([str(other)], Config(), replay=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        row = app.query_one("#runs", RunList).rows[0]
        assert row.status.word == "wait" and row.detail == "no data"  # never "✔ ok"
        chart = app.query_one("#chart", MetricChart)
        assert chart.data is not None
        assert chart.data.message.startswith(f"no records recognised yet in 20 lines of {other}; formats read:")
        info = app.query_one("#title", TitleBar).info
        assert info is not None and "no records recognised yet" in info.state


@pytest.mark.parametrize("size", [(60, 15), (80, 24), (120, 36)])
async def test_other_runs_trouble_is_visible_at_every_size(size: tuple[int, int]) -> None:
    app = SfttopApp(THREE, Config(), replay=True)  # healthy selected; explode and overfit critical
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        title = app.query_one("#title", TitleBar)
        assert "others ✖2 CRIT" in title.render().plain
        bar = app.query_one("#keybar").render().plain  # type: ignore[attr-defined]
        assert bar.startswith("q/^c quit  ? ")  # how to quit, always


async def test_overlay_auto_log_and_the_log_key_takes_it_back() -> None:
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("2", "o")  # explode beside healthy and overfit: loss 50+ vs ~1
        await pilot.pause()
        chart = app.query_one("#chart", MetricChart)
        assert chart.result is not None and chart.result.auto_log
        await pilot.press("l")
        await pilot.pause()
        assert chart.result is not None and not chart.result.auto_log and not chart.data.opts.log  # type: ignore[union-attr]
        await pilot.press("l")
        await pilot.pause()
        assert chart.data is not None and chart.data.opts.log


async def test_a_light_theme_gets_the_darker_run_colours() -> None:
    from sfttop.tui.palette import RUN_COLORS, RUN_COLORS_LIGHT, run_rgb, use_dark_theme

    app = SfttopApp(THREE, Config(), replay=True)
    app.theme = "textual-light"
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            assert run_rgb(0) == RUN_COLORS_LIGHT[0]
            chart = app.query_one("#chart", MetricChart)
            assert chart.data is not None and chart.data.lines[0].rgb == RUN_COLORS_LIGHT[0]
    finally:
        use_dark_theme(True)
    assert run_rgb(0) == RUN_COLORS[0]


# ---------------------------------------------------------------------------------- busy
async def test_a_background_run_writing_rebuilds_only_its_row(tmp_path: Path) -> None:
    import sfttop.tui.app as app_module

    write_log(tmp_path / "alpha" / "train.log", 40)
    write_log(tmp_path / "beta" / "train.log", 40)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: names(app) == ["alpha", "beta"] and not app.monitor.loading)
        chart = app.query_one("#chart", MetricChart)
        assert await wait_for(pilot, lambda: app.query_one("#checklist").border_title == "checklist · alpha")
        await pilot.pause(0.3)
        builds, views, polls = chart.builds, app.view_builds, app.polls
        beta = app.monitor.runs[1]
        reads = []
        poll = beta.poll
        beta.poll = lambda *a, **k: reads.append(1) or poll(*a, **k)  # type: ignore[method-assign]
        row = app.query_one("#runs", RunList).rows[1]
        t0 = time.monotonic()
        for i in range(41, 61):  # beta (not selected) writes for a second
            with open(tmp_path / "beta" / "train.log", "a") as f:
                f.write(repr({"loss": 0.5, "grad_norm": 1.0, "learning_rate": 2e-5, "epoch": i * 0.01}) + "\n")
            await pilot.pause(0.05)
        assert await wait_for(pilot, lambda: app.query_one("#runs", RunList).rows[1] != row, 3.0)
        assert app.polls > polls + 5  # each write woke the poll thread...
        # ...which read beta in batches, at the background's cadence (not at each of its writes)
        assert len(reads) <= (time.monotonic() - t0) / app_module.BACKGROUND_POLL_GAP + 2
        assert await wait_for(pilot, lambda: (s := beta.data.get("loss")) is not None and s.count == 60, 3.0)
        assert chart.builds == builds  # alpha's chart did not change...
        assert app.view_builds == views  # ...nor its checklist and assessment


async def test_the_selected_runs_row_keeps_up_with_the_title(tmp_path: Path) -> None:
    """The other runs' counters in the list wait for ROWS_GAP; the selected run's row is drawn
    with its cards and title (the demo showed "step 550/4000" above a list row of 510/4000)."""
    import re

    write_log(tmp_path / "alpha" / "train.log", 40)
    write_log(tmp_path / "beta" / "train.log", 40)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: names(app) == ["alpha", "beta"] and not app.monitor.loading)
        await pilot.pause(0.3)

        def steps() -> tuple[str, str, str]:
            lines = screen_lines(app)
            title = re.search(r"step (\d+)", lines[0])
            rows = {m[1]: m[2] for line in lines[1:6] if (m := re.search(r"(alpha|beta)\s+(?:step )?(\d+)", line))}
            assert title is not None and set(rows) == {"alpha", "beta"}, lines[:6]
            return title[1], rows["alpha"], rows["beta"]

        first = steps()
        seen = set()
        for i in range(41, 61):  # both write, for a second (less than ROWS_GAP)
            for run in ("alpha", "beta"):
                with open(tmp_path / run / "train.log", "a") as f:
                    f.write(repr({"loss": 0.5, "grad_norm": 1.0, "learning_rate": 2e-5, "epoch": i * 0.01}) + "\n")
            await pilot.pause(0.05)
            title, alpha, _beta = steps()
            assert title == alpha  # (drawn in the same frame)
            seen.add(title)
        assert len(seen) >= 2 and first[0] not in seen  # the title moved, and the row with it


async def test_the_panels_show_the_history_as_soon_as_it_is_loaded(tmp_path: Path) -> None:
    """While a long history is read the checklist and assessment say "reading history… N%";
    once it is in they show the run at once, not a VIEWS_GAP later (the title and the list
    already say it is loaded)."""
    import sfttop.tui.app as app_module
    from sfttop.tui.widgets.checklist import ChecklistPanel

    write_log(tmp_path / "alpha" / "train.log", 40000)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: bool(names(app)))
        panel = app.query_one("#checklist", ChecklistPanel)
        reading = lambda: "reading history" in panel.view.note  # noqa: E731
        assert await wait_for(pilot, reading, 5.0)  # (the history is read in many polls)
        assert await wait_for(pilot, lambda: app.monitor.runs[0].loaded, 20.0)
        t0 = time.monotonic()
        assert await wait_for(pilot, lambda: not reading() and bool(panel.view.rows), 5.0)
        assert time.monotonic() - t0 < app_module.VIEWS_GAP / 2


async def test_the_end_of_loading_is_drawn_at_once_not_at_the_loading_pace(tmp_path: Path) -> None:
    """While histories load the screen is redrawn at most every LOADING_REFRESH_GAP; the news
    that the last one is in must not wait for the redraw held back at that pace (a 1M-record
    load said "loading" for up to a second after it was done)."""
    from sfttop.tui.app import Polled

    write_log(tmp_path / "alpha" / "train.log", 40)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: bool(names(app)) and not app.monitor.loading)
        await pilot.pause(0.3)
        calls: list[float] = []
        real = app._refresh_all

        def counted(*args: Any, **kwargs: Any) -> None:
            calls.append(time.monotonic())
            real(*args, **kwargs)

        app._refresh_all = counted  # type: ignore[method-assign]
        app._refresh_all()  # a frame just drawn...
        app.on_polled(Polled(0, [], True))  # ...so this one waits for the loading pace
        assert len(calls) == 1
        app.on_polled(Polled(0, [], False))  # loading is over: drawn now
        assert len(calls) == 2
        app.on_polled(Polled(0, [], False))  # (live records keep their own pace)
        assert len(calls) == 2


async def test_a_record_soon_after_another_is_not_held_back_for_a_whole_gap(tmp_path: Path) -> None:
    """Live records are drawn at most one per REFRESH_GAP on average, but two after a quieter
    spell go at once: a run logging every 0.3 s had each second record held up to 0.4 s (the
    append -> screen p95 was 460 ms, bench.py's latency figure)."""
    import sfttop.tui.app as app_module
    from sfttop.tui.app import Polled

    write_log(tmp_path / "alpha" / "train.log", 40)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: bool(names(app)) and not app.monitor.loading)
        calls: list[float] = [time.monotonic()]
        real = app._refresh_all

        def counted(*args: Any, **kwargs: Any) -> None:
            calls.append(time.monotonic())
            real(*args, **kwargs)

        app._refresh_all = counted  # type: ignore[method-assign]
        # a quiet spell: no refresh (the first frames' held chart and views) for long enough to
        # save REFRESH_BURST of them
        spell = app_module.REFRESH_GAP * app_module.REFRESH_BURST + 0.1
        assert await wait_for(pilot, lambda: time.monotonic() - calls[-1] > spell, timeout=10)
        n = len(calls)
        app.on_polled(Polled(0, [], False))
        await pilot.pause(0.1)
        app.on_polled(Polled(0, [], False))  # 0.1 s later: drawn at once too
        assert len(calls) == n + 2
        app.on_polled(Polled(0, [], False))  # the saved refreshes spent: this one waits...
        assert len(calls) == n + 2
        assert await wait_for(pilot, lambda: len(calls) == n + 3)  # ...and is drawn when one is due
        # at a steady pace, no more than a refresh a REFRESH_GAP (and the burst) over 2 s
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            app.on_polled(Polled(0, [], False))
            await pilot.pause(0.05)
        made = len([t for t in calls if t >= t0])
        assert made <= 2.0 / app_module.REFRESH_GAP + app_module.REFRESH_BURST, made


async def test_the_selected_run_writing_rebuilds_its_views_at_a_cadence(tmp_path: Path) -> None:
    import sfttop.tui.app as app_module

    write_log(tmp_path / "alpha" / "train.log", 40)
    app = SfttopApp([str(tmp_path / "*" / "train.log")], Config(), **LIVE)
    async with app.run_test(size=(120, 36)) as pilot:
        assert await wait_for(pilot, lambda: bool(names(app)) and not app.monitor.loading)
        await pilot.pause(0.3)
        views, polls = app.view_builds, app.polls
        t0 = time.monotonic()
        last = 41 + int((app_module.VIEWS_GAP + 1) / 0.05)
        for i in range(41, last):  # a record every ~50 ms for a second longer than VIEWS_GAP
            with open(tmp_path / "alpha" / "train.log", "a") as f:
                f.write(repr({"loss": 0.5, "grad_norm": 1.0, "learning_rate": 2e-5, "epoch": i * 0.01}) + "\n")
            await pilot.pause(0.05)
        elapsed = time.monotonic() - t0
        polled = app.polls - polls
        assert polled >= elapsed / app_module.BUSY_POLL_GAP / 2  # the writes were read at the busy cadence...
        built = app.view_builds - views
        assert 1 <= built <= elapsed / app_module.VIEWS_GAP + 1  # ...but the views were built at a cadence
        loss = lambda: app.monitor.runs[0].data.get("loss")  # noqa: E731
        assert await wait_for(pilot, lambda: (s := loss()) is not None and s.count == last - 1, 3.0)  # every record kept


# ---------------------------------------------------------------------------------- lines
def _strips_as_textuals(w: Any, lines: list[Any], whole: list[Any]) -> dict[int, Any]:
    """Each of ``w``'s lines as text_strips draws it, checked segment for segment against
    Textual's rendering of the whole widget (``whole``); the lines drawn that way, by y."""
    width = w.content_size.width
    drawn = {}
    for y, line in enumerate(lines):
        ours = w._strips.strip(w, line, width, y)
        if ours is None:
            assert line.cell_len > width  # (only a line that does not fit goes Textual's way)
            continue
        assert [(s.text, s.style) for s in ours] == [(s.text, s.style) for s in whole[y]]
        assert ours.cell_length == whole[y].cell_length
        drawn[y] = ours
    return drawn


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 15)])
async def test_card_title_and_run_list_lines_are_textuals_own(size: tuple[int, int]) -> None:
    """The cards, the title and the run list make their lines without Textual's Content pass
    (text_strips): the same segments, styles and mouse offsets as Textual's own rendering."""
    from textual.visual import Visual, visualize

    from sfttop.tui.widgets.metric_card import MetricCards

    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=size) as pilot:
        for key in ("", "2", "3"):
            if key:
                await pilot.press(key)
            await pilot.pause()
            fast = 0
            title = app.query_one("#title", TitleBar)
            text = title.render()
            ours = title._strips.strip(title, text, title.content_size.width)
            theirs = Visual.to_strips(title, visualize(title, text), title.content_size.width, 1, title.visual_style)[0]
            assert ours is not None
            assert [(s.text, s.style) for s in ours] == [(s.text, s.style) for s in theirs]
            assert ours.cell_length == theirs.cell_length
            fast += 1
            for w in (app.query_one("#cards", MetricCards), app.query_one("#runs", RunList)):
                if not (w.display and w.content_size.width):
                    continue
                width, height = w.content_size
                whole = Visual.to_strips(w, visualize(w, w.render()), width, height, w.visual_style)
                lines = w.lines()
                assert len(lines) == len(whole)
                fast += len(_strips_as_textuals(w, lines, whole))
            assert fast >= (4 if size[0] >= 70 else 1)  # (60x15: the cards are folded away)


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 15)])
async def test_chart_rows_are_textuals_own(size: tuple[int, int]) -> None:
    """A plotted chart is drawn a row at a time (text_strips.ManyLines): each row the segments,
    styles and mouse offsets Textual makes of the whole chart's text, with the legend in the
    border or on rows above the plot, smoothed, on a log scale, for other metrics."""
    from textual.visual import Visual, visualize

    app = SfttopApp(THREE, Config(), replay=True)
    checked = 0
    async with app.run_test(size=size) as pilot:
        for key in ("", "m", "o", "s", "l", "2", "v"):
            if key:
                await pilot.press(key)
            await pilot.pause()
            chart = app.query_one("#chart", MetricChart)
            width, height = chart.content_size
            if not (chart.display and width and height):
                continue
            rows = chart.lines()
            assert len(rows) == height  # (a plotted chart fills its widget)
            whole = Visual.to_strips(chart, visualize(chart, chart.render()), width, height, chart.visual_style)
            assert len(whole) == height
            checked += len(_strips_as_textuals(chart, rows, whole))
    assert checked >= 3 * size[1] // 2


async def test_a_moved_dot_repaints_only_its_chart_rows() -> None:
    """A new point that changes a row or two of the plot repaints those rows; the screen is
    then what a whole repaint of the chart draws."""
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        chart = app.query_one("#chart", MetricChart)
        assert chart.data is not None and chart.lines()
        painted: list[int] = []
        render_line = chart.render_line
        chart.render_line = lambda y: painted.append(y) or render_line(y)  # type: ignore[method-assign]
        d = chart.data
        line = d.lines[0]
        moved = replace(line, ys=[*line.ys[:-1], line.ys[-1] * 0.97])  # the newest point a little lower
        before = [r.plain for r in chart.lines()]
        chart.set_data(replace(d, lines=[moved, *d.lines[1:]], version=(*d.version, "moved")))
        await pilot.pause()
        after = [r.plain for r in chart.lines()]
        changed = [y for y, (a, b) in enumerate(zip(before, after)) if a != b]
        assert changed and len(changed) < len(after) - 4
        assert sorted(set(painted)) == changed
        seen = screen_lines(app)
        chart.refresh()
        await pilot.pause()
        assert screen_lines(app) == seen
        # a message instead of a plot (no rows of its own) is drawn whole
        chart.set_data(replace(d, lines=[], message="no loss values yet", version=(*d.version, "none")))
        await pilot.pause()
        assert chart.lines() == [] and any("no loss values yet" in row for row in screen_lines(app))


async def test_the_chart_is_bucketed_for_its_width_after_a_resize() -> None:
    """The chart's data is bucketed for the chart's width, which the layout after a resize sets:
    at start, and after a resize to one column less and back, the chart is the same."""
    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        chart = app.query_one("#chart", MetricChart)
        assert await wait_for(pilot, lambda: chart.data is not None and chart.data.version[-1] == max(60, chart.content_size.width))
        before = [row.plain for row in chart.lines()]
        await pilot.resize_terminal(119, 36)
        await pilot.pause()
        assert await wait_for(pilot, lambda: chart.data is not None and chart.data.version[-1] == max(60, chart.content_size.width))
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert await wait_for(pilot, lambda: [row.plain for row in chart.lines()] == before)


async def test_a_new_value_repaints_its_card_alone() -> None:
    """The cards are one widget: a record that changes one card's line repaints that line, and a
    line that reads the same is not repainted."""
    from sfttop.tui.widgets.metric_card import MetricCards

    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        board = app.query_one("#cards", MetricCards)
        painted: list[int] = []
        render_line = board.render_line
        board.render_line = lambda y: painted.append(y) or render_line(y)  # type: ignore[method-assign]
        loss = board.card("loss")
        assert loss.value is not None
        cards = [replace(c, value=loss.value * 2) if c.metric == "loss" else c for c in board.cards]
        board.set_cards(cards)
        await pilot.pause()
        assert painted == [1 + [c.metric for c in board.cards].index("loss")]
        assert "2.446" in board.lines()[painted[0]].plain
        painted.clear()
        board.set_cards([replace(c, recent=c.recent) for c in cards])  # (equal data: nothing to do)
        lr = board.card("learning_rate")
        board.set_cards([replace(c, value=c.value * 1.0001) if c is lr else c for c in board.cards])  # (same line)
        await pilot.pause()
        assert painted == []


async def test_a_changed_check_or_run_repaints_its_line_alone() -> None:
    """The checklist, the assessment and the run list repaint the lines that changed (a live
    run's checklist changes a line or two at a time, the list a row per run that wrote), and
    draw the same lines as a whole repaint would."""
    from sfttop.tui.widgets.assessment import AssessmentPanel
    from sfttop.tui.widgets.checklist import ChecklistPanel

    app = SfttopApp(THREE, Config(), replay=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        panel = app.query_one("#checklist", ChecklistPanel)
        runs = app.query_one("#runs", RunList)
        assert len(panel.view.rows) > 3 and len(runs.rows) == 3
        side = app.query_one("#assessment-side", AssessmentPanel)
        assert await wait_for(pilot, lambda: bool(side.view.best) and side.lines()[-1].plain != "")
        await pilot.pause()
        assert side.display and side.content_size.width
        painted: list[tuple[str, int]] = []
        for w in (panel, runs, side):
            w.render_line = (  # type: ignore[method-assign]
                lambda y, w=w, render_line=w.render_line: painted.append((w.id or "", y)) or render_line(y)
            )
        rows = list(panel.view.rows)
        rows[2] = replace(rows[2], detail="a detail no check wrote")
        panel.set_view(replace(panel.view, rows=tuple(rows)))
        runs.set_rows((runs.rows[0], replace(runs.rows[1], detail="123/456"), runs.rows[2]))
        best_text = side.view.best[:-1] + ("x" if side.view.best[-1] != "x" else "y")  # (as long: as many lines)
        side.set_view(replace(side.view, best=best_text))
        await pilot.pause()
        changed = [y for y, line in enumerate(panel.lines()) if "a detail no check wrote" in line.plain]
        best = [y for y, line in enumerate(side.lines()) if best_text[-12:] in line.plain]
        assert sorted(painted) == sorted([("checklist", changed[0]), ("runs", 1), ("assessment-side", best[0])])
        assert "123/456" in runs.lines()[1].plain
        seen = screen_lines(app)  # (the lines not repainted come from Textual's line cache)
        assert any("a detail no check wrote" in line for line in seen)
        for w in (panel, runs, side):
            w.refresh()
        await pilot.pause()
        assert screen_lines(app) == seen


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 15)])
async def test_checklist_and_assessment_lines_are_textuals_own(size: tuple[int, int]) -> None:
    """The checklist and assessment panels draw a repainted line straight into a strip
    (text_strips.ManyLines): the segments Textual makes of the whole panel's text, the
    assessment wrapped where Textual's own wrap breaks it."""
    from textual.visual import Visual, visualize

    from sfttop.tui.widgets.assessment import AssessmentPanel
    from sfttop.tui.widgets.checklist import ChecklistPanel

    app = SfttopApp(THREE, Config(), replay=True)
    checked = 0
    async with app.run_test(size=size) as pilot:
        for key in ("", "2", "v", "v", "3", "v", "v"):  # (v: the chart, metrics, checklist, assessment views)
            if key:
                await pilot.press(key)
            await pilot.pause()
            for w in [*app.query(ChecklistPanel), *app.query(AssessmentPanel)]:
                width, height = w.content_size
                if not (w.display and width and height):
                    continue
                whole = Visual.to_strips(w, visualize(w, w.render()), width, None, w.visual_style)
                # the assessment as it was drawn before: its text wrapped by Textual (the mouse
                # offsets differ: a wrapped line's count from the start of its logical line)
                text = assessment_text(w.view, width, w._styles()) if isinstance(w, AssessmentPanel) else w.render()
                textual = Visual.to_strips(w, visualize(w, text), width, None, w.visual_style)
                lines = w.lines()
                assert len(lines) == len(whole) == len(textual)
                for y, ours in _strips_as_textuals(w, lines[:height], whole).items():
                    checked += 1
                    seen = [(s.text, s.style and s.style.clear_meta_and_links()) for s in ours]
                    assert seen == [(s.text, s.style and s.style.clear_meta_and_links()) for s in textual[y]]
    assert checked >= 20
