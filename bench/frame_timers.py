#!/usr/bin/env python3
"""``sfttop`` with its frames timed: each ``Screen._compositor_refresh`` (a frame), each widget's
``_render_content`` (its ``render()`` and the conversion to strips, by widget id) and each
``SfttopApp._refresh_all``. Every 2 s the totals so far (calls, wall ms, CPU ms of the calling
thread) go to the file named by ``$FRAME_TIMERS``; the difference of two copies is what a stretch
of time cost. The wall time includes waiting for the interpreter while the poll thread holds
it (a switch interval is 5 ms): the CPU column is what the call itself cost.

    FRAME_TIMERS=/tmp/ft.txt python bench/frame_timers.py 'runs/*/train.log'
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from textual.screen import Screen
from textual.widget import Widget

from sfttop.tui import app as sfttop_app

STATS: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])


def _timed(name: Callable[[Any], str], fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        try:
            return fn(self, *args, **kwargs)
        finally:
            s = STATS[name(self)]
            s[0] += 1
            s[1] += time.perf_counter() - t0
            s[2] += time.thread_time() - c0

    return wrapper


def _dump(path: str) -> None:
    while True:
        time.sleep(2)
        rows = sorted(STATS.items(), key=lambda kv: -kv[1][1])
        with open(path + ".tmp", "w") as f:
            for k, (n, t, c) in rows:
                f.write(f"{k:40s} {int(n):6d} {t * 1000:9.1f} ms {c * 1000:9.1f} ms-cpu  {c * 1000 / max(n, 1):6.2f} ms-cpu/call\n")
        os.replace(path + ".tmp", path)


_gc_start = [0.0, 0.0]


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    """The cyclic collector's passes, timed (they run in whichever call allocates)."""
    if phase == "start":
        _gc_start[0], _gc_start[1] = time.perf_counter(), time.thread_time()
        return
    s = STATS[f"gc-gen{info['generation']}"]
    s[0] += 1
    s[1] += time.perf_counter() - _gc_start[0]
    s[2] += time.thread_time() - _gc_start[1]


if __name__ == "__main__":
    gc.callbacks.append(_gc_timer)
    Widget._render_content = _timed(lambda w: f"{type(w).__name__}#{w.id}", Widget._render_content)  # type: ignore[method-assign]
    Screen._compositor_refresh = _timed(lambda _s: "FRAME", Screen._compositor_refresh)  # type: ignore[method-assign]
    sfttop_app.SfttopApp._refresh_all = _timed(lambda _a: "_refresh_all", sfttop_app.SfttopApp._refresh_all)  # type: ignore[method-assign]
    # the refresh's parts: the selected run's panels, each widget's new state
    from sfttop.tui import views
    from sfttop.tui.widgets import assessment, checklist, metric_card, metric_chart, run_list, title_bar

    sfttop_app.SfttopApp._refresh_run = _timed(lambda _a: "refresh: _refresh_run", sfttop_app.SfttopApp._refresh_run)  # type: ignore[method-assign]
    sfttop_app.SfttopApp._title_info = _timed(lambda _a: "refresh: _title_info", sfttop_app.SfttopApp._title_info)  # type: ignore[method-assign]
    timed_chart_data = _timed(lambda _n: "refresh: chart_data", lambda _n, *a, **k: views.chart_data(*a, **k))
    sfttop_app.chart_data = lambda *a, **k: timed_chart_data(None, *a, **k)
    for cls, name in (
        (metric_chart.MetricChart, "set_data"),
        (metric_card.MetricCards, "set_cards"),
        (assessment.AssessmentPanel, "set_view"),
        (checklist.ChecklistPanel, "set_view"),
        (run_list.RunList, "set_rows"),
        (title_bar.TitleBar, "set_info"),
    ):
        setattr(cls, name, _timed(lambda w, n=name: f"refresh: {type(w).__name__}.{n}", getattr(cls, name)))
    # lines drawn again, by widget (a frame renders only its widgets' dirty lines)
    from sfttop.tui.widgets import text_strips

    for cls in (Widget, text_strips.ManyLines, text_strips.OneLine):
        cls.render_line = _timed(lambda w: f"line: {type(w).__name__}#{w.id}", cls.render_line)  # type: ignore[method-assign]
    # the poll thread's parts (the thread's whole CPU is in /proc/PID/task/*/stat)
    from sfttop.core import run as core_run
    from sfttop.core import wake

    core_run.Run.poll = _timed(lambda _r: "poll: Run.poll", core_run.Run.poll)  # type: ignore[method-assign]
    core_run.Monitor.rescan = _timed(lambda _m: "poll: Monitor.rescan", core_run.Monitor.rescan)  # type: ignore[method-assign]
    wake.Waker.wait = _timed(lambda _w: "poll: Waker.wait", wake.Waker.wait)  # type: ignore[method-assign]
    wake.Waker.watch = _timed(lambda _w: "poll: Waker.watch", wake.Waker.watch)  # type: ignore[method-assign]
    sfttop_app.SfttopApp._build_views = _timed(lambda _a: "poll: _build_views", sfttop_app.SfttopApp._build_views)  # type: ignore[method-assign]
    sfttop_app.SfttopApp.post_message = _timed(  # type: ignore[method-assign]
        lambda _a: f"post_message ({threading.current_thread().name})", sfttop_app.SfttopApp.post_message
    )
    threading.Thread(target=_dump, args=(os.environ.get("FRAME_TIMERS", "frame_timers.txt"),), daemon=True).start()
    from sfttop.cli import main

    sys.exit(main())
