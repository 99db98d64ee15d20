"""The live monitor: ``sfttop runs/*/train.log``.

Threads: one poll thread (a Textual thread worker) owns the engine. Every ``interval`` seconds,
or back to back while history is still loading, it re-expands the path arguments (every ~2 s,
so a run started later appears), polls every run for new bytes, hands new finding episodes to
the ``--alert-cmd`` dispatcher, and posts one ``Polled`` message when anything changed. The UI
thread then reads, under the same lock, only what changed (a run's ``generation`` says so) into
plain view data for the widgets. When nothing changes nothing is posted, nothing is rebuilt and
nothing is redrawn: an idle screen costs one ``stat`` per file per interval. A busy one costs
frames, not records: while logs are written the poll runs at most every BUSY_POLL_GAP, and what is
dear to redraw (the chart, the run list's counters, the selected run's checklist and assessment)
at most every 2 s; a run in the background only changes its row. A long history is parsed by
``--report``'s helper process (``core/pipe.py``), any other with the engine lock free.

``replay=True`` (tests, screenshots): every log is read to its end before the first paint and
never polled again, with a fixed clock: the same files give the same screen.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from textual import constants, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.driver import Driver
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from sfttop.core import memory, pipe
from sfttop.core.alert import AlertDispatcher, dispatcher_for
from sfttop.core.alert import news as alert_news
from sfttop.core.config import Config
from sfttop.core.diagnose import Finding, Severity
from sfttop.core.i18n import N_, _
from sfttop.core.run import Monitor, Run
from sfttop.core.tail import FileTail
from sfttop.core.update import RunUpdate
from sfttop.core.wake import Waker, log_dirs
from sfttop.core.webhook import WebhookSender

from . import compositor, panels
from .cells import fit
from .keys import KEYS
from .palette import use_dark_theme
from .views import (
    CARD_METRICS,
    ChartState,
    banner_items,
    cards,
    chart_data,
    finding_key,
    groups_for,
    objective_text,
    others_text,
    progress_short,
    progress_text,
    run_name,
    run_row,
    run_state,
)
from .widgets.alert_banner import AlertBanner
from .widgets.assessment import AssessmentPanel, AssessmentView
from .widgets.checklist import ChecklistPanel, ChecklistView
from .widgets.help_screen import HelpScreen
from .widgets.key_bar import KeyBar, KeyHint
from .widgets.metric_card import MetricCards
from .widgets.metric_chart import MetricChart
from .widgets.run_list import RunList, RunRow
from .widgets.title_bar import TitleBar, TitleInfo

MIN_WIDTH = 40
MIN_HEIGHT = 10
# Bytes per run per poll while history loads. The engine lock is held for one run's poll at a
# time, and a key press waits for at most one (~20 ms for 256 KiB of HF stdout).
LOAD_BUDGET = 256 << 10
# ... and per chunk of a helper reading a long history (``pipe.Feed``): settling one holds the
# lock too (a key press may wait for one), and each chunk has a fixed cost in this process
# (unpickling, settling): 256 KiB chunks cost ~18% more CPU than --report's 4 MiB, 512 KiB ~10%.
FEED_BUDGET = 512 << 10
TRIM_GAP = 5.0  # seconds between heap trims while history loads (a trim walks the heap: ~0.1 s)
POST_GAP = 0.1  # at most this often the UI is told of new records while history loads
BACKGROUND_POST_GAP = 1.0  # ... and of records of runs in the background (see _poll_forever)
# A loaded run in the background is read at most this often: the screen shows its records only
# in its row (its counters redrawn every ROWS_GAP), and an alarm waits at most this long.
# Reading it at each wake-up, for each other run's write, cost a poll of every run per pass:
# cold code and data each time (a poll of an unchanged log ~20 us after a sleep, 5 us in a
# loop), and its records one or two at a time instead of a batch.
BACKGROUND_POLL_GAP = 2.0
WAKE_COALESCE = 0.02  # after an inotify wake-up, let the writer finish its burst
# A screen refresh every this often, on average, while runs write: each is a frame (~4 ms with
# the refresh, bench/README.md), and with a poll every BUSY_POLL_GAP a record is on screen within
# ~0.6 s of its write. The budget is a bucket: up to REFRESH_BURST refreshes saved in a quieter
# spell go at once, so a record that comes soon after another (a run logging every 0.3 s, or
# at uneven times) is not held back for the rest of a gap (a fixed gap held such records up to
# 0.4 s: the append -> screen p95 was 460 ms); at a steady pace the rate is the same.
REFRESH_GAP = 0.4
REFRESH_BURST = 2.0
# Polls at most this often while runs write: the screen shows no more than REFRESH_GAP allows
# anyway (inotify wakes the loop at every write of every run).
BUSY_POLL_GAP = 0.2
# The selected run's checklist and assessment are rebuilt at most this often while it writes
# (judging the open checklist windows and the assessment are the dearest views; their text moves
# slowly, unlike the cards: a window's verdict takes 100 steps). A newly selected run's are built
# at once.
VIEWS_GAP = 3.0
# ... and the chart and the run list's counters at most this often while runs write (redrawing
# them is most of the cost of a busy screen: plotext takes 4-6 ms for a chart and its picture is
# worked out again for each look, the run list ~1 ms); the cards and the title keep REFRESH_GAP
# (the newest value of every record is on the cards), and a run's status word in the list (an
# alarm) goes up at once. The chart's axis spans the run's history: a record moves its line by a
# fraction of a dot, and at 2 s the chart was a third of a busy screen's CPU (16 runs x 2
# records/s: the main thread 100-130 ms in 30 s less with the chart held, bench/README.md).
CHART_GAP = 3.0
ROWS_GAP = 2.0
# What is held back by those gaps is drawn with the next refresh for records when one comes this
# soon after it is due (the selected run writing every second or faster), else on its own.
HELD_SLACK = 0.5
LOADING_REFRESH_GAP = 1.0  # ... and fewer while history streams in (absorbing it needs the GIL)
# After a run change by key the poll thread pauses between two runs until the new run is on
# screen, at most this long: with history loading, parsing would hold the interpreter (the GIL)
# most of the time the UI thread needs to answer.
KEY_HOLD = 0.15
DIRS_GAP = 2.0  # the watched directories are worked out again at least this often
VIEWS = ("chart", "metrics", "checklist", "assessment")


BINDINGS: list[Binding] = [
    Binding(k.keys, k.action, k.description, show=k.show, priority=k.priority, id=k.id, tooltip=k.tooltip)
    for k in KEYS
    if k.id != "close_help"
]


class Polled(Message):
    """The poll thread found something new (runs, records, findings). ``opened``: finding
    episodes that opened on lines written while we watched (not while reading history)."""

    def __init__(self, new_runs: int, opened: list[tuple[str, Finding]], loading: bool = False) -> None:
        self.new_runs = new_runs
        self.opened = opened
        self.loading = loading
        super().__init__()


class ViewsBuilt(Message):
    """The poll thread built the selected run's checklist and assessment views."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ViewsBuilt)


@dataclass(frozen=True)
class RunViews:
    """A run's heavy views, built in the poll thread (checklist windows judged, the assessment
    and the checkpoint directory scan) for the UI thread to assign."""

    generation: int
    checklist: ChecklistView
    assessment: AssessmentView
    built_at: float = 0.0  # time.monotonic() when built
    loaded: bool = True  # False: built while the history was read ("reading history… N%")


class TooSmall(Static):
    DEFAULT_CSS = """
    TooSmall { width: 1fr; height: 1fr; content-align: center middle; text-align: center; display: none; }
    """


class SfttopApp(App[int]):
    TITLE = "sfttop"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #body { height: 1fr; }
    #side { width: 40; height: 1fr; }
    #cards {
        height: auto;
        border: round $primary 40%;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    #main { width: 1fr; height: 1fr; }
    #details { height: 14; }
    #assessment-side { height: 1fr; }
    """
    BINDINGS = BINDINGS  # type: ignore[assignment]

    def __init__(
        self,
        paths: list[str],
        config: Config,
        interval: float = 0.5,
        alert_cmd: str | None = None,
        alert_severity: str | None = None,
        title_suffix: str = "",
        *,
        replay: bool = False,
        clock: Callable[[], float] | None = None,
        rescan_seconds: float = 2.0,
        fmt: str | None = None,
        webhooks: WebhookSender | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.interval = max(0.05, float(interval))
        self.replay = replay
        self.app_title = "sfttop" + title_suffix  # (cli/ translates its " (demo)")
        self.exit_message: str | None = None
        self.lock = threading.RLock()
        if clock is None:
            clock = (lambda: 0.0) if replay else time.time
        self.monitor = Monitor(list(paths), config, fmt=fmt, rescan_seconds=rescan_seconds, clock=clock)
        self._stop = threading.Event()
        self._shown_data = False
        self._polled_loading = False  # the last Polled message said histories were loading
        self.dispatcher: AlertDispatcher | None = None
        self._alert_error: str | None = None
        try:
            self.dispatcher = dispatcher_for(alert_cmd, alert_severity, config)
        except ValueError as e:
            self._alert_error = _("sfttop: --alert-cmd: {error}").format(error=e)
        self.webhooks = webhooks  # --alert-webhook: queues only, its threads do the sending
        # UI state
        self.selected = 0
        self.chart_state = ChartState()
        self.view = "chart"
        self.dismissed: set[tuple[str, str, object]] = set()
        self._shown: dict[str, object] = {}
        self._flush_at = 0.0
        self._refresh_budget = (REFRESH_BURST, 0.0)  # (refreshes in hand, when counted)
        self._flush_pending = False
        self._later_pending = False
        self._chart_at = 0.0
        self._rows_at = 0.0
        self._selected_at = 0.0  # time.monotonic() of the last change of run by the user
        self._bells = 0
        self.engine_error: str | None = None  # the last internal error, shown in the title bar
        self.polls = 0
        self._views: dict[str, RunViews] = {}  # by run name, written by the poll thread
        self.view_builds = 0  # checklist/assessment builds (tests check background runs cost none)
        self._rows: dict[str, tuple[int, RunRow]] = {}  # each run's list row and its generation
        self._waker: Waker | None = None
        self._feeds: dict[int, pipe.Feed] = {}  # helpers reading long histories, by id(run)
        self._fed: set[int] = set()
        self._polled: set[int] = set()  # runs polled at least once, by id
        self._polled_at: dict[int, float] = {}  # when each run was last polled, by id (monotonic)
        self._gc_off = False  # the poll thread turned the cyclic collector off while loading
        self._key_until = 0.0  # time.monotonic() until which the poll thread waits for a key's frame
        if replay:
            self.monitor.load_all()

    # ------------------------------------------------------------------------------ layout
    def get_default_screen(self) -> Screen[Any]:
        screen = super().get_default_screen()
        compositor.install(screen)  # (a live frame renders the changed lines alone: see compositor)
        return screen

    def get_driver_class(self) -> type[Driver]:
        """On a Linux or macOS terminal, Textual's driver with an input thread that sleeps until
        a key comes (``driver.py``); a driver named in ``TEXTUAL_DRIVER`` (``--serve``'s), or
        Windows', as Textual chooses."""
        if constants.DRIVER is not None or sys.platform == "win32":
            return super().get_driver_class()
        from .driver import QuietLinuxDriver  # (imports termios: not on Windows)

        return QuietLinuxDriver

    def compose(self) -> ComposeResult:
        yield TitleBar(id="title")
        with Horizontal(id="body"):
            with Vertical(id="side"):
                yield RunList(id="runs")
                yield MetricCards(((metric, label) for metric, label, _better in CARD_METRICS), id="cards")
                yield AssessmentPanel(id="assessment-side")
            with Vertical(id="main"):
                yield AlertBanner(id="banner")
                yield MetricChart(id="chart")
                with Horizontal(id="details"):
                    yield ChecklistPanel(id="checklist")
                    yield AssessmentPanel(id="assessment")
        yield TooSmall(id="toosmall")
        yield KeyBar(id="keybar")

    def on_mount(self) -> None:
        if self._alert_error:
            self.exit_message = self._alert_error
            self.exit(return_code=2)
            return
        if self.config.keys:
            self.set_keymap(dict(self.config.keys))
        self.query_one(KeyBar).set_hints(self._key_hints())
        use_dark_theme(self.current_theme.dark)
        self.query_one("#cards", MetricCards).border_title = _("metrics")
        if not self.replay:
            self._poll_loop()  # first, so a long log's current values are read during the first paint
        else:
            self._want_views()
        self._apply_layout(self.size.width, self.size.height)
        self._refresh_all(force=True)

    def on_resize(self, event: Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)
        self._refresh_all(force=True)

    def _apply_layout(self, width: int, height: int) -> None:
        """Collapse panels in priority order as the terminal shrinks.

        wide (>= 100x30): run list and cards on the side; chart, checklist and assessment.
        medium (>= 70x20): side panel narrower; the chart alone, ``v`` shows the others.
        small: title, banner and chart; ``v`` cycles metrics / checklist / assessment.
        Below 40x10: a plain message.
        """
        too_small = width < MIN_WIDTH or height < MIN_HEIGHT
        ts = self.query_one("#toosmall", TooSmall)
        body = self.query_one("#body")
        ts.display = too_small
        body.display = not too_small
        self.query_one("#title").display = not too_small
        self.query_one(KeyBar).display = not too_small and height >= 12
        if too_small:
            ts.update(
                _("sfttop needs at least {min_width}x{min_height}\n(this pane is {width}x{height})").format(
                    min_width=MIN_WIDTH, min_height=MIN_HEIGHT, width=width, height=height
                )
            )
            return
        wide = width >= 100 and height >= 30
        medium = not wide and width >= 70 and height >= 20
        size = "wide" if wide else "medium" if medium else "small"
        self.screen.set_class(wide, "-wide")
        self.screen.set_class(medium, "-medium")
        self.screen.set_class(not (wide or medium), "-small")
        view = self.view
        side = self.query_one("#side")
        main = self.query_one("#main")
        chart = self.query_one("#chart")
        details = self.query_one("#details")
        checklist = self.query_one("#checklist")
        assessment = self.query_one("#assessment")
        side_assessment = self.query_one("#assessment-side")
        banner = self.query_one("#banner", AlertBanner)
        banner.max_lines = 3 if wide else 2 if medium else 1
        # the run list gives way to the cards (it says "↓N more"; the cards have no such hint)
        cards_h = 2 + 1 + len(CARD_METRICS)
        runs = self.query_one("#runs")
        runs.styles.max_height = max(3, min(14, height - 2 - cards_h - (6 if wide else 0)))
        runs.display = height - 2 >= cards_h + 3  # else the title names the run and the others' alarms
        if size == "small":
            side.display = view == "metrics"
            side.styles.width = "1fr"
            main.display = view != "metrics"
        else:
            side.display = True
            side.styles.width = 40 if wide else 34
            main.display = True
        side_assessment.display = wide and view != "assessment"
        if view in ("chart", "metrics"):
            chart.display = True
            details.display = wide
            checklist.display = True
            assessment.display = False
            details.styles.height = max(6, min(14, height - 2 - 3 - 12))
        else:
            chart.display = False
            details.display = True
            details.styles.height = "1fr"
            checklist.display = view == "checklist"
            assessment.display = view == "assessment"

    # ------------------------------------------------------------------------------ polling
    @work(thread=True, exclusive=True, name="poll", exit_on_error=True)
    def _poll_loop(self) -> None:
        stop = self._stop
        mon = self.monitor
        waker = self._waker = Waker()
        try:
            self._poll_forever(stop, mon, waker)
        finally:
            self._waker = None
            waker.close()
            for feed in self._feeds.values():
                feed.close()
            if self._gc_off:
                gc.enable()
                self._gc_off = False

    def _poll_forever(self, stop: threading.Event, mon: Monitor, waker: Waker) -> None:
        was_loading = False
        polled_at = -1.0
        watched_key, watched_at = -1, 0.0
        held, held_new, held_live, posted_at, trimmed_at = False, 0, list[tuple[str, Finding]](), 0.0, 0.0
        held_mine = False  # the selected run changed since the last post
        woke, woken_at = False, -1.0  # (whether a write woke this pass; when the last such began)
        while not stop.is_set():
            polled_at = time.monotonic()
            if woke:
                woken_at = polled_at
            try:
                with self.lock:
                    new = mon.rescan()
                    before = {r.name for r in mon.runs if r.loaded}
                    runs = list(mon.runs)
                    now = mon.clock()
                ups = {}
                selected = min(self.selected, len(runs) - 1)  # (as the screen clamps it)
                for i, run in enumerate(runs):
                    if not self._due(run, i == selected, polled_at):
                        continue
                    # A key was pressed: the UI thread has the engine and the interpreter to
                    # itself until its answer is on screen (or KEY_HOLD passed).
                    hold = self._key_until - time.monotonic()
                    if hold > 0:
                        stop.wait(hold)
                    # One run at a time under the lock: the UI thread (a key press, a repaint)
                    # never waits for a whole pass over every run.
                    feed = self._feed(run)
                    msg = None
                    if feed is not None:
                        if not feed.ready():
                            continue  # its helper is still reading: the other runs go on
                        msg = feed.receive()  # (unpickled with the lock free)
                    read: tuple[RunUpdate, bool] | None = None
                    if msg is None and self._reads_unlocked(run):
                        # History: parsed with the lock free (only this thread touches the parser
                        # and the tail; the UI reads counters), settled under it.
                        read_up = RunUpdate()
                        assert isinstance(run.source, FileTail)
                        read = (read_up, run.read(run.source, LOAD_BUDGET, read_up))
                    with self.lock:
                        if feed is not None and msg is not None:
                            up = feed.settle(run, msg, now)
                        elif read is not None:
                            up = read[0]
                            run.settle(up, read[1], now)
                        else:
                            up = run.poll(LOAD_BUDGET, now)
                            self._polled.add(id(run))
                        self._polled_at[id(run)] = polled_at
                        if up.changed or up.opened:
                            ups[run.name] = up
                        if self._build_views():
                            self.post_message(ViewsBuilt())
                    if stop.is_set():
                        return
                for key in [k for k, f in self._feeds.items() if f.done]:
                    del self._feeds[key]
                with self.lock:
                    loading = mon.loading
                    self.polls += 1
                    news = alert_news(mon.runs, ups, before)
                    live = [(n, f) for n, up in ups.items() if n in before for f in up.opened]
                    shown = mon.runs[min(self.selected, len(mon.runs) - 1)].name if mon.runs else None
            except Exception as e:  # keep watching the other runs; say so on screen and at exit
                self._note_error(N_("engine"), e)
                self.post_message(Polled(0, [], False))
                stop.wait(max(1.0, self.interval))
                continue
            if self.dispatcher is not None:
                for name, f in news:
                    self.dispatcher.offer(name, f)
                self.dispatcher.reap()
            if self.webhooks is not None:
                for name, f in news:
                    self.webhooks.offer(name, f)
            # While histories load a pass takes a chunk of each run (a helper's come many times a
            # second): the UI hears of them at most every POST_GAP, when it would redraw no
            # sooner anyway; a finding that opened on a live line, or the end of loading, at once.
            # Live, the selected run's records go at once (each is on screen within a second);
            # a run in the background changes its row only, which the screen redraws every
            # ROWS_GAP: its news waits up to BACKGROUND_POST_GAP (a message and a refresh less
            # per poll while many runs write), unless it opened a finding (an alarm goes at once).
            held_new += len(new)
            held_live.extend(live)
            held = held or bool(new or ups)
            held_mine = held_mine or shown in ups
            urgent = held_live or loading != was_loading or (not loading and (held_new or held_mine))
            gap = POST_GAP if loading else BACKGROUND_POST_GAP
            if held and (urgent or polled_at - posted_at >= gap):
                self.post_message(Polled(held_new, held_live, loading))
                held, held_new, held_live, held_mine, posted_at = False, 0, [], False, polled_at
            if (was_loading and not loading) or (loading and polled_at - trimmed_at >= TRIM_GAP):
                # history loading makes and drops many objects: give the freed heap back
                memory.trim()
                trimmed_at = polled_at
            was_loading = loading
            # As load_all does for --report: what loading builds holds no reference cycles, and
            # the cyclic collector would walk the growing heap again and again (a tenth of a
            # long log's load). On again once every history is in.
            if loading and not self._gc_off and gc.isenabled():
                gc.disable()
                self._gc_off = True
            elif not loading and self._gc_off:
                gc.enable()
                self._gc_off = False
            if loading:
                feeds = list(self._feeds.values())
                if feeds:
                    pipe.wait_any(feeds, 0.01)  # (a helper's next chunk wakes the loop at once)
                elif ups:
                    # A pass that read some history: a moment for the UI thread and on (a key
                    # press pauses this thread by itself, KEY_HOLD; a 10 ms sleep per 256 KiB
                    # chunk was a third of a local load).
                    time.sleep(0)
                else:
                    stop.wait(0.01)  # (nothing arrived: another host's history, a slow disk)
                continue
            # Sleep until the next poll, or until inotify says a log directory changed (then a
            # moment more, so a burst of writes is read in one go). Polling stays the truth.
            # (the directories looked up again when runs come or go, and at the rescan's pace: a
            # stat per run per poll was a tenth of a busy poll's cost)
            dirs_key = len(mon.runs)
            if dirs_key != watched_key or polled_at - watched_at >= DIRS_GAP:
                waker.watch(log_dirs([*mon.args, *(r.path for r in mon.runs)]))
                watched_key, watched_at = dirs_key, polled_at
            # (BUSY_POLL_GAP paces passes that writes woke: a write after a quiet spell is read
            # at once, not up to BUSY_POLL_GAP after the last timed poll)
            woke = waker.wait(self.interval, stop)
            if woke:
                stop.wait(max(WAKE_COALESCE, woken_at + BUSY_POLL_GAP - time.monotonic()))

    def _due(self, run: Run, selected: bool, now: float) -> bool:
        """Whether this pass polls the run: always the selected one, one still loading or
        another host's (its agent paces itself); a loaded run in the background every
        BACKGROUND_POLL_GAP."""
        if selected or not run.loaded or run.remote:
            return True
        last = self._polled_at.get(id(run))
        return last is None or now - last >= BACKGROUND_POLL_GAP

    def _reads_unlocked(self, run: Run) -> bool:
        """The run's history is still being read from a local log, past its first poll (which
        may show the log's end first): a key press need not wait for the parser."""
        return (
            not run.loaded and not run.remote and isinstance(run.source, FileTail) and id(run) in self._polled
        )

    def _feed(self, run: Run) -> pipe.Feed | None:
        """The helper process reading this run's long history, started when the run's end has
        been shown (its first poll read the preview) and at least ``pipe.MIN_BYTES`` are left
        to read: the parsing then runs on another core, as for ``--report``, and this process
        only absorbs (the engine lock is free while a chunk is on its way)."""
        feed = self._feeds.get(id(run))
        if feed is not None:
            return None if feed.done else feed
        if (
            run.loaded
            or run.remote
            or id(run) not in self._polled  # (its first poll shows the log's end first)
            or id(run) in self._fed
            or len([f for f in self._feeds.values() if not f.done]) >= max(1, pipe.jobs() - 1)
            or not pipe.usable()
            or not pipe.worth_it(run, self.monitor.helper_bytes)
        ):
            return None
        self._fed.add(id(run))  # one helper per run: if it fails, this process reads on
        feed = pipe.Feed.start(run, FEED_BUDGET)  # (only this thread changes runs: no lock)
        if feed is not None:
            self._feeds[id(run)] = feed
        return feed

    def _build_views(self) -> bool:
        """Build the selected run's heavy views if they are out of date (the engine lock held:
        the poll thread, between two runs' polls). True when something was built."""
        runs = self.monitor.runs
        if not runs:
            return False
        run = runs[min(self.selected, len(runs) - 1)]
        have = self._views.get(run.name)
        now = time.monotonic()
        # (the first views after the history is in are built at once: the panels would say
        # "reading history… 99%" for up to VIEWS_GAP after the rest of the screen says loaded)
        fresh = have is not None and now - have.built_at < VIEWS_GAP and have.loaded == run.loaded
        if have is not None and (have.generation == run.generation or fresh):
            return False
        self.view_builds += 1
        if not run.loaded:
            # Judging half a history would flash verdicts that the rest of the log overturns.
            pct = _("reading history… {percent}%").format(percent=f"{run.load_fraction * 100:.0f}")
            if run.remote and run.error:  # nothing is being read: say why (an unreachable host)
                pct = run_state(run)
            views = RunViews(run.generation, ChecklistView((), pct), AssessmentView(pct, "muted"), now, loaded=False)
        else:
            try:
                checklist = panels.checklist_view(run, run.checklist)
            except Exception as e:  # a bug in a judge must not take the monitor down with it
                self._note_error(N_("checklist"), e)
                checklist = ChecklistView((), _("checklist unavailable: {error}").format(error=type(e).__name__))
            try:
                assessment = panels.assessment_view(run, self.config.thresholds)
            except Exception as e:
                self._note_error(N_("assessment"), e)
                assessment = AssessmentView(_("assessment unavailable: {error}").format(error=type(e).__name__), "muted")
            views = RunViews(run.generation, checklist, assessment, now)
        self._views[run.name] = views
        return True

    def _want_views(self) -> None:
        """The selection changed: have the poll thread build the new run's views now."""
        waker = self._waker
        if waker is not None:
            waker.poke()
        elif self.replay:
            with self.lock:
                self._build_views()  # no poll thread in replay: build here, deterministically

    def on_views_built(self, _message: ViewsBuilt) -> None:
        if time.monotonic() - self._selected_at < 1.0:
            self._refresh_all()  # the run the user just chose: its panels at once
        else:
            self._later(REFRESH_GAP - (time.monotonic() - self._flush_at))  # with the next frame

    def on_polled(self, message: Polled) -> None:
        if self.config.alert.bell and any(f.severity is Severity.CRITICAL for _n, f in message.opened):
            self._bells += 1
            self.bell()  # tmux flags the window
        now = time.monotonic()
        wait = LOADING_REFRESH_GAP - (now - self._flush_at) if message.loading else self._refresh_wait(now)
        if self._polled_loading and not message.loading:
            # The last history is in: on screen now, not when the refresh held back at the
            # loading pace comes due (up to LOADING_REFRESH_GAP later).
            wait = 0.0
        self._polled_loading = message.loading
        if not self._shown_data:
            # The first values to arrive go on screen at once; the rate limit is for what follows.
            with self.lock:
                self._shown_data = any(r.preview is not None or r.data.last_step is not None for r in self.monitor.runs)
            if self._shown_data:
                wait = 0.0
        if wait <= 0:
            self._refresh_all()
        elif not self._flush_pending:
            self._flush_pending = True
            self.set_timer(wait, self._deferred_refresh)

    def _budget(self, now: float) -> float:
        """Refreshes in hand at ``now`` (REFRESH_GAP's bucket)."""
        have, at = self._refresh_budget
        return min(REFRESH_BURST, have + (now - at) / REFRESH_GAP)

    def _refresh_wait(self, now: float) -> float:
        """Seconds until records may go on screen (0: now)."""
        return max(0.0, (1.0 - self._budget(now)) * REFRESH_GAP)

    def _note_error(self, where: str, e: BaseException) -> None:
        import traceback

        first = self.engine_error is None
        self.engine_error = _("{part}: {error}").format(part=_(where), error=f"{type(e).__name__}: {e}")
        if first:
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            self.exit_message = _("sfttop: internal error (please report it):\n{traceback}").format(traceback=tb)

    def _deferred_refresh(self) -> None:
        self._flush_pending = False
        self._refresh_all()

    def _later(self, wait: float) -> None:
        """Refresh again in ``wait`` seconds, or with the next records' refresh if it comes
        within HELD_SLACK after that (for what was held back by CHART_GAP, ROWS_GAP, VIEWS_GAP:
        a frame of its own costs Textual's fixed part of a frame again)."""
        # (its own timer: the records' refresh must not wait for this one, nor this one for it)
        if not self._later_pending:
            self._later_pending = True
            self.set_timer(max(0.01, wait) + HELD_SLACK, self._later_refresh)

    def _later_refresh(self) -> None:
        self._later_pending = False
        self._refresh_all()

    def _stop_polling(self) -> None:
        self._stop.set()

    async def action_quit(self) -> None:
        self._stop_polling()
        self.exit(return_code=0)

    def on_unmount(self) -> None:
        self._stop_polling()
        if self.dispatcher is not None:
            self.dispatcher.close(wait=1.0)
        if self.webhooks is not None:
            self.webhooks.close(wait=2.0)

    # ------------------------------------------------------------------------------ refresh
    def _refresh_all(self, force: bool = False, draw_chart: bool = True) -> None:
        """Read what changed into the widgets. Cheap when nothing did (each widget compares).
        ``draw_chart=False``: leave the chart for the caller to draw in a next frame."""
        self._flush_at = now = time.monotonic()
        self._refresh_budget = (max(0.0, self._budget(now) - 1.0), now)
        if self.query_one_optional("#runs") is None:  # (by id: cached; a query walks every widget)
            return
        chart = self.query_one("#chart", MetricChart)
        buckets = max(60, chart.content_size.width or 100)
        with self.lock:
            runs = list(self.monitor.runs)
            n = len(runs)
            if n and self.selected >= n:
                self.selected = n - 1
            run_list = self.query_one("#runs", RunList)
            rows = tuple(self._row(r) for r in runs)
            due = self._flush_at - self._rows_at >= ROWS_GAP or any(not r.loaded for r in runs)
            if force or due or _rows_news(run_list.rows, rows):
                run_list.set_rows(rows)
                self._rows_at = self._flush_at
            elif rows != run_list.rows:
                # The other runs' counters wait for ROWS_GAP; the selected run's row goes with
                # its cards and title (one row: the list and the title must not disagree on it).
                sel, listed = self.selected, run_list.rows
                if sel < n and rows[sel] is not listed[sel]:
                    run_list.set_rows((*listed[:sel], rows[sel], *listed[sel + 1 :]))
                if rows != run_list.rows:
                    self._later(ROWS_GAP - (self._flush_at - self._rows_at))
            self.query_one("#runs", RunList).selected = self.selected
            run = runs[self.selected] if runs else None
            self.query_one("#title", TitleBar).set_info(self._title_info(runs, run, rows))
            views = self._views.get(run.name) if run is not None else None
            key = (run.name, run.generation, id(views)) if run is not None else None
            if force or self._shown.get("run") != key:
                self._shown["run"] = key
                self._refresh_run(run)
            if not draw_chart:
                return
            # (only the runs the chart draws: a background run's record changes its row alone)
            drawn = runs if self.chart_state.overlay else runs[self.selected : self.selected + 1]
            what = (self.selected, self.chart_state, buckets, len(runs), tuple(r.loaded for r in drawn))
            ckey = (*what, tuple((r.name, r.generation) for r in drawn))
            shown = self._shown.get("chart")
            wait = CHART_GAP - (self._flush_at - self._chart_at)
            plotted = chart.data is not None and any(line.xs for line in chart.data.lines)
            if not force and plotted and shown != ckey and isinstance(shown, tuple) and shown[:5] == what and wait > 0:
                # Only new records, or more history: drawn at the next chart refresh (the user's
                # own changes, a key or a resize, are drawn at once, and so are the first points
                # and the end of a history's loading). While a long history streams in, plotext
                # at every refresh was most of the screen's time, taken from the thread
                # absorbing the history.
                self._later(wait)
            elif force or shown != ckey:
                self._shown["chart"] = ckey
                self._chart_at = self._flush_at
                if runs:
                    # (a run that may still grow: its x axis ends at a round bound, see chart_render)
                    growing = not self.replay and any(not (r.finished or r.crashed) for r in drawn)
                    data = chart_data(runs, self.selected, self.chart_state, self.config.thresholds, buckets, growing)
                    chart.set_data(data)
                else:
                    chart.set_data(panels.empty_chart(self.monitor.args, self.chart_state))

    def _row(self, run: Run) -> RunRow:
        """The run's list row, made again only when the run changed."""
        have = self._rows.get(run.name)
        if have is not None and have[0] == run.generation:
            return have[1]
        row = run_row(run)
        self._rows[run.name] = (run.generation, row)
        return row

    def _title_info(self, runs: list[Run], run: Run | None, rows: tuple[RunRow, ...]) -> TitleInfo:
        """The title's parts; ``rows``: the runs' list rows (the other runs' states, as listed)."""
        loading = [r for r in runs if not r.loaded and r.exists]
        load_text = ""
        if loading and run is not None and run.loaded:
            frac = sum(r.load_fraction for r in loading) / len(loading)
            load_text = _("loading {count} more {percent}%").format(count=len(loading), percent=f"{frac * 100:.0f}")
        alerts = " │ ".join(x.status() for x in (self.dispatcher, self.webhooks) if x is not None)
        if self.engine_error:
            alerts = fit(f"⚠ {self.engine_error}", 80) + (f" │ {alerts}" if alerts else "")
        if run is None:
            return TitleInfo(self.app_title, "", 0, 0, 0, "", "", "", alerts, load_text)
        now = self.monitor.clock()
        others = [row.status for i, row in enumerate(rows) if i != self.selected]
        return TitleInfo(
            self.app_title,
            run_name(run),
            run.color_index,
            self.selected,
            len(runs),
            progress_text(run, now),
            run_state(run, now),
            others_text(others),
            alerts,
            load_text,
            progress_short(run, now),
            objective_text(run),
            others_text(others, words=False),
        )

    def _refresh_run(self, run: Run | None) -> None:
        t = self.config.thresholds
        banner = self.query_one("#banner", AlertBanner)
        checklist = self.query_one("#checklist", ChecklistPanel)
        assessment = self.query_one("#assessment", AssessmentPanel)
        side_assessment = self.query_one("#assessment-side", AssessmentPanel)
        if run is None:
            banner.set_items(())
            board = self.query_one("#cards", MetricCards)
            board.set_cards([replace(card, value=None, before=None, recent=()) for card in board.cards])
            checklist.set_view(panels.empty_checklist())
            assessment.set_view(panels.empty_assessment(self.monitor.args))
            side_assessment.set_view(assessment.view)
            return
        items, hidden = banner_items(run, self.dismissed)
        banner.set_items(items, hidden)
        self.query_one("#cards", MetricCards).set_cards(cards(run, t))
        name = run_name(run)
        views = self._views.get(run.name)
        if views is None:
            # (the poll thread builds them; until then, say so rather than show another run's)
            checklist.set_view(ChecklistView((), "…"))
            for panel in (assessment, side_assessment):
                panel.set_view(AssessmentView("…", "muted"))
            return
        checklist.set_view(views.checklist)
        title = _("checklist · {run}").format(run=name)
        if checklist.border_title != title:
            checklist.border_title = title
        title = _("assessment · {run}").format(run=name)
        for panel in (assessment, side_assessment):
            panel.set_view(views.assessment)
            if panel.border_title != title:
                panel.border_title = title

    # ------------------------------------------------------------------------------ actions
    def _select(self, index: int) -> None:
        with self.lock:
            n = len(self.monitor.runs)
        if n == 0:
            return
        index %= n
        if index != self.selected:
            self.selected = index
            self._selected_at = time.monotonic()
            self._want_views()
            groups = self._groups()
            if self.chart_state.group >= len(groups):
                self.chart_state = replace(self.chart_state, group=0)
            # The key's answer first: the title, the list and the cards in a frame of their own
            # (a few ms); the new run's chart, plotext's 10-20 ms, in the frame after.
            self._key_until = time.monotonic() + KEY_HOLD
            self._refresh_all(draw_chart=False)
            self.call_after_refresh(self._after_key)

    def _after_key(self) -> None:
        self._refresh_all()
        self._key_until = 0.0  # (the chart is drawn: the poll thread goes on)

    def _groups(self) -> list[tuple[str, str, str | None]]:
        with self.lock:
            runs = self.monitor.runs
            return groups_for(runs[self.selected] if runs else None)

    def action_next_run(self) -> None:
        self._select(self.selected + 1)

    def action_prev_run(self) -> None:
        self._select(self.selected - 1)

    def action_run_down(self) -> None:
        self._select(self.selected + 1)

    def action_run_up(self) -> None:
        self._select(self.selected - 1)

    def action_select_run(self, index: int) -> None:
        with self.lock:
            n = len(self.monitor.runs)
        if 0 <= index < n:
            self._select(index)

    def on_run_list_clicked(self, message: RunList.Clicked) -> None:
        self._select(message.index)

    def on_metric_chart_resized(self, _message: MetricChart.Resized) -> None:
        self._refresh_all(force=True)  # (the chart's data bucketed for its new width)

    def _set_chart(self, **changes: object) -> None:
        self.chart_state = replace(self.chart_state, **changes)  # type: ignore[arg-type]
        self._refresh_all()

    def action_metric(self, delta: int) -> None:
        n = len(self._groups())
        self._set_chart(group=(self.chart_state.group + delta) % max(1, n))

    def action_smooth(self) -> None:
        self._set_chart(smooth=not self.chart_state.smooth)

    def action_log_scale(self) -> None:
        result = self.query_one("#chart", MetricChart).result
        if result is not None and result.auto_log:
            self._set_chart(log_auto=False)  # the overlay went log by itself: back to linear
        else:
            self._set_chart(log=not self.chart_state.log, log_auto=False)

    def action_x_axis(self) -> None:
        self._set_chart(tokens=not self.chart_state.tokens)

    def action_overlay(self) -> None:
        self._set_chart(overlay=not self.chart_state.overlay)

    def action_clip(self) -> None:
        self._set_chart(clip=not self.chart_state.clip)

    def action_view(self) -> None:
        views = list(VIEWS)
        if self.size.width >= 70 and self.size.height >= 20:
            views.remove("metrics")  # the cards are on screen already
        i = views.index(self.view) if self.view in views else -1
        self.view = views[(i + 1) % len(views)]
        self._apply_layout(self.size.width, self.size.height)
        self._refresh_all(force=True)

    def action_dismiss(self) -> None:
        banner = self.query_one("#banner", AlertBanner)
        if banner.items:
            self.dismissed.add(banner.items[0].key)
            self._refresh_all(force=True)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = []
        digits = []
        for b in BINDINGS:
            if b.id is None:
                continue
            keys = self._keymap.get(b.id, b.key)
            shown = ", ".join(self._key_display(k) for k in keys.split(","))
            if b.id.startswith("run_") and b.id[4:].isdigit():
                digits.append((shown, b.id))
                continue
            rows.append((shown, _(b.tooltip or b.description), b.id))
        if digits:
            if all(s == bid[4:] for s, bid in digits):
                rows.append(("1 … 9", _("select run N"), "run_1 … run_9"))
            else:
                rows.extend((s, _("run {number}").format(number=bid[4:]), bid) for s, bid in digits)
        self.push_screen(HelpScreen(rows))

    def _key_hints(self) -> tuple[KeyHint, ...]:
        """The footer's keys as remapped; quit shows every key that quits (q, ^c)."""
        hints = []
        for k in KEYS:
            if not k.show:
                continue
            keys = [x.strip() for x in self._keymap.get(k.id, k.keys).split(",") if x.strip()]
            if k.id == "quit":
                keys += [x.strip() for x in self._keymap.get("interrupt", "ctrl+c").split(",") if x.strip()]
            shown = "/".join(self._key_display(x).replace("ctrl+", "^") for x in keys[:2])
            hints.append(KeyHint(shown, _(k.description), k.rank))
        return tuple(hints)

    def _key_display(self, key: str) -> str:
        key = key.strip()
        return {"question_mark": "?", "shift+tab": "shift+tab", "M": "M (shift+m)"}.get(key, key)

    # ------------------------------------------------------------------------------ tests
    def finding_keys(self) -> list[tuple[str, str, object]]:
        """Keys of every active finding of the selected run (tests)."""
        with self.lock:
            runs = self.monitor.runs
            if not runs:
                return []
            run = runs[self.selected]
            return [finding_key(run, f) for f in run.diagnoser.active()]


def _rows_news(old: tuple[RunRow, ...], new: tuple[RunRow, ...]) -> bool:
    """The run list changed in more than its counters: a run came, or a status changed."""
    return len(old) != len(new) or any(a.name != b.name or a.status != b.status for a, b in zip(old, new))
