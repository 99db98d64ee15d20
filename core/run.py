"""A run (one log, tailed, parsed, stored, diagnosed) and the Monitor that keeps a set of them.

The Monitor is the whole live engine without a screen: the TUI, ``--follow`` and ``--report``
all drive it the same way, by calling ``poll()``; nothing here sleeps or starts a thread.
"""

from __future__ import annotations

import gc
import heapq
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from sfttop import __version__
from sfttop.core.i18n import N_, _

from . import pipe
from .checklist import Checklist
from .checkpoints import checkpoint_lister
from .config import Config
from .diagnose import Diagnoser
from .discover import STORE_FORMATS, RunSpec, expand_arg, has_magic, logging_steps_near, store_kind, unique
from .liveness import Liveness, liveness
from .parse import HF_STDOUT, JSONL, TRAINER_STATE, UNKNOWN, LogParser
from .records import Block, Event, EventKind, Item, Kind, Record
from .series import RunData
from .statefile import StateFile
from .stores import StoreSource
from .tail import FileTail
from .tbsource import EventsSource, is_events_path
from .tensorboard import TENSORBOARD
from .update import RunUpdate

if TYPE_CHECKING:
    from .remote import Host, Remotes, Target

PREVIEW_BYTES = 128 << 10  # how much of a long log's end is read first, for its current values
# A traceback is printed in one go; one still without its error line after this long was cut.
TRACEBACK_GRACE = 5.0
CHECKLIST_STRIDE = 256  # records between closing checklist windows: well inside series.RECENT


@dataclass
class Attempt:
    """What was derived from one attempt's content: everything a new attempt starts without."""

    data: RunData
    diagnoser: Diagnoser
    checklist: Checklist
    events: list[Event]
    finished: bool = False
    crashed: str | None = None
    last_record_time: float | None = None
    unjudged: int = 0


@dataclass
class Handoff:
    """A run as a helper process that loaded it sends it back (``pipe.load_shared``): every
    piece of a run's state that reading changes, named here, never "whatever attributes ``Run``
    has" (a test holds this list against ``Run``'s attributes). The source comes without its
    descriptor (the child's), the parser and the derived state as they are."""

    source: FileTail | StateFile | EventsSource | StoreSource
    parser: LogParser
    current: Attempt
    previous: Attempt | None
    loaded: bool
    generation: int
    preview: RunData | None
    previewed: bool
    attempt: int
    restarted_at: float | None
    restart_reason: str | None


# Set by whoever made the run and the same in every process: never part of a Handoff.
IDENTITY = frozenset(("name", "path", "config", "fmt", "remote", "_interval", "color_index"))
# Memos of the process that holds the run, rebuilt from what it sees: never part of a Handoff.
LOCAL = frozenset(("_partial_judged", "_total_at", "_error_at_last_poll"))


# Why a source starts over that makes its content a new attempt ("vanished" is not one: the run
# keeps what it showed, marked gone, until a file is there again).
_RESTARTS = frozenset(("truncated", "replaced", "reappeared", "rewritten by another run"))
# ... as shown (``_(run.restart_reason)``): tail.py, which sets most of them, also runs on remote
# hosts without the catalog, so they are marked here.
RESET_WORDS = (N_("truncated"), N_("replaced"), N_("reappeared"), N_("vanished"), N_("rewritten by another run"))
# Steps that go back to the run's first logged step, inside one file: a new run
# written after the old one (a notebook calling train() again, nanochat's next phase), not a
# resume from a checkpoint (which goes back to a saved step, after the first).
STARTED_OVER = N_("a new run in the same file")


class Run:
    def __init__(
        self,
        name: str,
        path: str,
        config: Config,
        fmt: str | None = None,
        source: FileTail | StateFile | None = None,
        interval: int | None = None,
    ) -> None:
        """``source``: a tail other than the local file (a remote one), with ``interval``, the
        ``logging_steps`` found beside it, in place of looking beside ``path`` here."""
        self.name = name
        self.path = path
        self.config = config
        self.fmt = fmt
        self.remote = source is not None
        self._interval = interval
        is_state = os.path.basename(path) == "trainer_state.json" or fmt == TRAINER_STATE
        is_tb = not is_state and source is None and (fmt == TENSORBOARD or is_events_path(path))
        store = None if is_state or is_tb or source is not None else (fmt if fmt in STORE_FORMATS else store_kind(path))
        self.source: FileTail | StateFile | EventsSource | StoreSource
        if source is not None:
            self.source = source
        else:
            self.source = (
                StateFile(path) if is_state else EventsSource(path) if is_tb
                else StoreSource(path, store) if store else FileTail(path)
            )
        self.parser = self._new_parser()
        self._begin(None)
        self.loaded = False  # history read to the end once
        self.generation = 0  # bumped on every change, for renderers' caches
        self._error_at_last_poll: str | None = None
        self.preview: RunData | None = None  # the end of a long log, while its history loads
        self._previewed = False
        self.color_index = 0
        self.attempt = 1  # the file started over attempt - 1 times while watched
        self.restarted_at: float | None = None  # when the current attempt began (file time)
        self.restart_reason: str | None = None
        self._previous: Attempt | None = None  # the last attempt, until the new one proves new
        self._partial_judged = 0.0  # the file time its unterminated last line was judged at
        self._total_at: tuple[int, int] | None = None  # the last max_steps announced, at which train count

    def _new_parser(self) -> LogParser:
        if isinstance(self.source, StateFile):
            return LogParser(TRAINER_STATE)
        if isinstance(self.source, EventsSource):
            return LogParser(TENSORBOARD)
        if isinstance(self.source, StoreSource):
            return LogParser(self.source.kind)
        parser = LogParser(self.fmt)
        parser.interval = self._interval if self.remote else logging_steps_near(self.path)
        return parser

    def _begin(self, previous: Attempt | None) -> None:
        """Derived state from nothing (``previous`` None) or back to ``previous``."""
        t = self.config.thresholds
        if previous is None:
            diag = Diagnoser(t)
            if not self.remote:  # (another host's checkpoints are listed for the report only)
                diag.checkpoints = checkpoint_lister(self.path)
            previous = Attempt(RunData(), diag, Checklist(t), [])
        a = previous
        self.data = a.data
        self.diagnoser = a.diagnoser
        # Past checklist windows are judged as they close, while their points are still at
        # full resolution in the store (older history is kept decimated).
        self.checklist = a.checklist
        self.events = a.events  # crashes, finishes, resumes, source changes (not progress)
        self.finished = a.finished
        self.crashed = a.crashed
        self.last_record_time = a.last_record_time
        self._unjudged = a.unjudged

    def handoff(self) -> Handoff:
        return Handoff(
            self.source, self.parser, self._attempt(), self._previous, self.loaded, self.generation,
            self.preview, self._previewed, self.attempt, self.restarted_at, self.restart_reason,
        )

    def take_handoff(self, h: Handoff) -> None:
        self.source, self.parser = h.source, h.parser
        self._begin(h.current)
        self._previous = h.previous
        self.loaded, self.generation, self.preview, self._previewed = h.loaded, h.generation, h.preview, h.previewed
        self.attempt, self.restarted_at, self.restart_reason = h.attempt, h.restarted_at, h.restart_reason

    def _attempt(self) -> Attempt:
        return Attempt(
            self.data, self.diagnoser, self.checklist, self.events,
            self.finished, self.crashed, self.last_record_time, self._unjudged,
        )

    def _restart(self, reason: str, now: float) -> None:
        """The file started over: drop everything derived from its old content (kept aside
        until the first record shows whether the new content continues the old, as a rotated
        or copy-truncated log does)."""
        had = self.data.last_step is not None or bool(self.events) or self.finished or self.crashed is not None
        self._previous = self._attempt() if had else None
        self._begin(None)
        if had:
            self.attempt += 1
            self.restarted_at = self.source.mtime or now
            self.restart_reason = reason
        self.preview = None

    def _settle_attempt(self, first_step: int) -> None:
        """The new content's first record: a step past the old content's last one continues it
        (rotation, copytruncate); anything else starts over, and the old attempt is dropped."""
        prev = self._previous
        self._previous = None
        if prev is None or prev.data.last_step is None or first_step <= prev.data.last_step:
            return
        # Continued: the old state takes the new records, as if the file had never changed.
        prev.events.extend(self.events)
        self._begin(prev)
        self.attempt -= 1
        self.restarted_at = None
        self.restart_reason = None

    # -- state for renderers ----------------------------------------------------------------
    @property
    def format(self) -> str:
        fmt = self.parser.format
        if fmt == UNKNOWN and self.data.count(Kind.TRAIN) + self.data.count(Kind.EVAL) > 0:
            return HF_STDOUT
        return fmt

    @property
    def error(self) -> str | None:
        return self.source.error

    @property
    def exists(self) -> bool:
        return self.source.exists

    @property
    def load_fraction(self) -> float:
        size = self.source.size
        return 1.0 if size <= 0 else min(1.0, self.source.offset / size)

    @property
    def skipped(self) -> int:
        oversized = self.source.oversized if isinstance(self.source, FileTail) else 0
        return self.parser.stats.skipped + self.parser.stats.oversized + oversized

    # -- work -------------------------------------------------------------------------------
    def _read_preview(self, src: FileTail) -> None:
        """Parse the last few hundred KiB of a long log with a throwaway parser: the run's
        current values, to show while its history loads from the start (which, for a week-long
        log, takes a while). Never fed to the diagnoser; dropped once history is loaded."""
        try:
            with open(self.path, "rb") as f:
                f.seek(max(0, src.size - PREVIEW_BYTES))
                raw = f.read(PREVIEW_BYTES)
        except OSError:
            return
        start = raw.find(b"\n") + 1 if src.size > PREVIEW_BYTES else 0
        end = raw.rfind(b"\n") + 1
        if end <= start:
            return
        parser = LogParser(self.parser.format if self.parser.format != UNKNOWN else None)
        parser.interval = self.parser.interval
        recs: list[Item] = []
        parser.feed_chunk(raw[start:end], 0, recs, [])
        parser.flush(recs)
        if not recs:
            return
        data = RunData()
        for rec in recs:
            data.add(rec)
        self.preview = data

    def poll(self, budget: int = 4 << 20, now: float | None = None) -> RunUpdate:
        now = time.time() if now is None else now
        up = RunUpdate()
        src = self.source
        if isinstance(src, (EventsSource, StoreSource)):
            up.changed = src.poll(self.parser, up.records, up.events, budget)
            eof = src.caught_up
        elif isinstance(src, StateFile):
            self._read_state(src, up)
            eof = src.ready
        else:
            if not self._previewed and not self.loaded and not self.remote:
                self._previewed = True
                try:
                    size = os.stat(self.path).st_size
                except OSError:
                    size = 0
                if size > 4 * budget:
                    # A long log: its current values first (this poll), its history after.
                    src.size = size
                    src.exists = True
                    self._read_preview(src)
                    if self.preview is not None:
                        up.changed = True
                        self.generation += 1
                        return up
            eof = self.read(src, budget, up)
        self.settle(up, eof, now)
        return up

    def _read_state(self, src: StateFile, up: RunUpdate) -> None:
        got = src.poll()
        if got is None:
            return
        entries, first, reset = got
        up.changed = True
        if reset is not None:
            up.reset = reset
            up.events.append(Event(EventKind.SOURCE, reset))
            self.parser = self._new_parser()
        parser = self.parser
        if src.max_steps:
            parser.progress_total = src.max_steps
            up.events.append(Event(EventKind.MAX_STEPS, "", 0, None, src.max_steps))
        if src.global_step is not None:
            parser.progress_step = src.global_step
        for i, entry in enumerate(entries, first):
            parser.feed_object(entry, i, up.records, up.events)
        if src.should_stop and not parser.finished:
            # Saved as training ended: at max_steps, or stopped early by a callback.
            parser.finished = True
            if src.max_steps and (src.global_step or 0) >= src.max_steps:
                said = _("training stopped at max_steps")
            else:
                said = _("training stopped early")
            up.events.append(Event(EventKind.FINISHED, said, first + len(entries), src.global_step))

    def read(self, src: FileTail, budget: int, up: RunUpdate) -> bool:
        """Read and parse up to ``budget`` more bytes into ``up``; True at the end of the file.
        Touches only the source and the parser (``pipe`` runs it in a helper process)."""
        recs = up.records
        chunk = src.poll(budget)
        if chunk.reset is not None:
            up.events.append(Event(EventKind.SOURCE, chunk.reset))
            up.changed = True
            if chunk.reset in _RESTARTS:
                # The new content is read from its start as a log of its own: no step, epoch or
                # format carried over from the old one.
                up.reset = chunk.reset
                self.parser = self._new_parser()
        if chunk.data:
            self.parser.feed_chunk(chunk.data, chunk.base, recs, up.events)
        eof = chunk.eof
        if eof and src.partial:
            self.parser.see_bars_after(src.partial)  # (a lone dict's redraw, not yet a line)
        self.parser.flush(recs, final=eof)
        if eof and src.partial:
            self.parser.peek_partial(src.partial)
        up.changed = up.changed or chunk.grew
        if self.parser.format == UNKNOWN and recs:
            self.parser.format = JSONL if _looks_json(recs, src.path) else HF_STDOUT
        return eof

    def settle(self, up: RunUpdate, eof: bool, now: float) -> None:
        """The rest of a poll, after reading: store, diagnose and judge what was read."""
        if up.reset is not None:
            self._restart(up.reset, now)
            up.changed = True
        if eof and not self.loaded:
            self.loaded = True
            self.preview = None
            up.changed = True
        if self._previous is not None and up.records:
            first = up.records[0]
            self._settle_attempt(first.steps[0] if isinstance(first, Block) else first.step)
        self._absorb(up, now)
        if self.loaded and eof:  # (not while bytes are still unread: they are not silence)
            self._cut_traceback(up, now)
            self._stall(up, now)
        if self.error != self._error_at_last_poll:
            # A host going down (or a file turning unreadable) changes what the run's row says
            # with no byte read: renderers keyed on the generation must see it.
            self._error_at_last_poll = self.error
            up.changed = True
        if up.changed:
            self.generation += 1

    def _absorb(self, up: RunUpdate, now: float) -> None:
        # What was read was written by the time the file was last modified: records arrive at
        # the file's mtime, so a log silent for hours is judged stalled from the first look, not
        # from when sfttop started (and a poll's own delay adds nothing). A clock ahead of ours
        # (a file server's) cannot put an arrival in the future.
        mtime = self.source.mtime
        t = min(now, mtime) if mtime else now
        if self.parser.progress_total and not self.data.max_steps:
            self.data.max_steps = self.parser.progress_total
        if self.data.max_steps and self.diagnoser.max_steps is None:
            # The LR check needs to know where the schedule ends (an LR near 0 there is fine).
            self.diagnoser.max_steps = self.data.max_steps
        evs = up.events
        if not evs:
            for rec in up.records:
                self._record(rec, up, t)
        else:
            # Records and events in log order: a crash followed by a restart is not a crash.
            for _off, _rank, item in heapq.merge(
                ((e.offset, 0, e) for e in evs), ((r.offset, 1, r) for r in up.records), key=lambda x: (x[0], x[1])
            ):
                if isinstance(item, (Record, Block)):
                    self._record(item, up, t)
                elif isinstance(item, Event):
                    self._event(item, up, t)
        if up.records:
            self.last_record_time = t
            up.changed = True

    def _record(self, rec: Item, up: RunUpdate, t: float) -> None:
        if isinstance(rec, Block):
            # The checklist judges the windows that closed every CHECKLIST_STRIDE records,
            # while their points are still at full resolution in the store: a long block
            # goes in pieces.
            n = len(rec)
            a = 0
            while a < n:
                b = min(n, a + CHECKLIST_STRIDE - self._unjudged)
                part = rec if (a == 0 and b == n) else rec.slice(a, b)
                self.data.add_block(part)
                up.opened.extend(self.diagnoser.observe_block(part, t))
                self._judged(b - a)
                a = b
            self.crashed = None
            self.finished = False
            return
        self.data.add(rec)
        up.opened.extend(self.diagnoser.observe(rec, t))
        self._judged(1)
        if rec.kind is Kind.SUMMARY:
            self.finished = True
        else:
            self.crashed = None
            if rec.kind is Kind.TRAIN:
                self.finished = False

    def _judged(self, n: int) -> None:
        """``n`` more records are about to be stored: judge the windows closed so far first
        when a stride is complete."""
        self._unjudged += n
        if self._unjudged >= CHECKLIST_STRIDE:
            self._unjudged = 0
            self.checklist.advance(self.data, self.diagnoser)

    def _event(self, ev: Event, up: RunUpdate, t: float) -> None:
        if ev.kind is EventKind.MAX_STEPS:
            if ev.total:
                self.data.max_steps = ev.total
                self._total_at = (ev.total, self.data.count(Kind.TRAIN))
            return
        if ev.kind is EventKind.RESUMED and ev.step is not None and self._starts_over(ev.step):
            self._new_run_in_file(t)
        self.events.append(ev)
        if len(self.events) > 200:
            del self.events[:100]
        if ev.kind is EventKind.CRASHED:
            self.crashed = ev.message or "crashed"
        elif ev.kind is EventKind.FINISHED:
            self.finished = True
        up.opened.extend(self.diagnoser.observe_event(ev, t))
        up.changed = True

    def _starts_over(self, step: int) -> bool:
        """Back to the run's first logged step (or to 1 where the old counter began at 0): no
        checkpoint lies before that, so no resume goes there."""
        first = self.data.first_step(Kind.TRAIN)
        return first is not None and step <= max(first, 1)

    def _new_run_in_file(self, t: float) -> None:
        """The steps went back to the start: what the file says from here on is a run of its own,
        shown and judged without the old one (whose steps past this one's would otherwise stay
        in the charts and the counts as if this run had made them)."""
        total = self._total_at
        # (a max_steps announced after the old run's last record is the new run's: TensorBoard's
        # args text comes before its first step)
        carried = total[0] if total is not None and total[1] == self.data.count(Kind.TRAIN) else None
        self._previous = None
        self._begin(None)
        self._total_at = None
        if carried:
            self.data.max_steps = self.diagnoser.max_steps = carried
        self.attempt += 1
        self.restarted_at = t
        self.restart_reason = STARTED_OVER

    def _cut_traceback(self, up: RunUpdate, now: float) -> None:
        """A traceback with no error line after it, in a file quiet for TRACEBACK_GRACE seconds,
        is a crash whose last lines were never written."""
        mtime = self.source.mtime
        if not mtime or now - mtime < TRACEBACK_GRACE:
            return
        evs: list[Event] = []
        if self.parser.in_traceback:
            self.parser.close_traceback(evs)
        elif isinstance(self.source, FileTail) and self.source.partial and not self.crashed:
            if self._partial_judged != mtime:  # (once per write: a grown file says more)
                self._partial_judged = mtime
                self.parser.close_partial(self.source.partial, self.source.carry_offset, evs)
        for ev in evs:
            self._event(ev, up, min(now, mtime))
            up.events.append(ev)

    def _stall(self, up: RunUpdate, now: float) -> None:
        if self.finished or self.crashed:
            return
        opened = self.diagnoser.check_stall(now)
        if opened:
            up.opened.extend(opened)
            up.changed = True

    # -- summaries --------------------------------------------------------------------------
    def progress(self, now: float | None = None) -> tuple[int | None, int | None, float | None]:
        """(step, total, eta seconds) as the log tells them; no ETA for a run that is not
        moving (finished, crashed, stalled, stopped: judged at ``now`` when given)."""
        p = self.parser
        step = p.progress_step if p.progress_step is not None else self.data.last_step
        total = p.progress_total or self.data.max_steps
        eta = p.eta_seconds
        if eta is not None and (
            self.finished
            or self.crashed is not None
            or (total and (step or 0) >= total)
            or self.diagnoser.stalled
            or (now is not None and not liveness(self, now).moving)
        ):
            eta = None
        return step, total, eta

    def liveness(self, now: float) -> Liveness:
        return liveness(self, now)


def _looks_json(recs: list[Item], path: str) -> bool:
    return path.endswith((".jsonl", ".json")) or not any(r.step_inferred for r in recs)


class Monitor:
    """A set of runs from path arguments, re-expanded so runs started later appear."""

    def __init__(
        self,
        args: list[str],
        config: Config,
        fmt: str | None = None,
        rescan_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
        remote_wait: float = 0.0,
    ) -> None:
        """``remote_wait``: how long the first scan waits for remote hosts to list their runs
        (``--report`` and ``--follow`` wait; the TUI shows them when they answer)."""
        self.args = list(args)
        self.config = config
        self.fmt = fmt
        self.rescan_seconds = rescan_seconds
        self.clock = clock
        self.runs: list[Run] = []
        self._by_path: dict[str, Run] = {}
        self._last_scan = -math.inf
        self.helper_bytes = pipe.MIN_BYTES  # logs this long get a helper in load_all(helper=True)
        self.missing: list[str] = []  # plain paths that do not exist (yet)
        self._remotes: Remotes | None = None
        self._remote_src: dict[str, tuple[Host, str, int | None]] = {}  # shown path -> host, path there
        self._standins: dict[str, str] = {}  # key of a run standing for an unreachable host's argument
        self.remote_wait = remote_wait
        self.rescan(force=True)
        self.remote_wait = 0.0

    def specs(self) -> list[RunSpec]:
        pairs: list[tuple[str, str]] = []
        hosts: list[str] = []  # each pair's host label ("": local)
        missing = []
        from .remote import parse_remote  # (the ssh machinery, ~15 ms to import, only when needed)

        for arg in self.args:
            target = parse_remote(arg)
            if target is not None:
                found = self._remote_pairs(arg, target)
                pairs.extend(found)
                hosts.extend([target.label] * len(found))
                continue
            found = expand_arg(arg)
            if not found and not has_magic(arg) and not os.path.exists(arg):
                missing.append(arg)
                # A log that will appear later: follow the path itself.
                pairs.append((_pending_name(arg), arg))
                hosts.append("")
                continue
            pairs.extend(found)
            hosts.extend([""] * len(found))
        self.missing = missing
        # The host is part of a name only where it tells runs apart (more than one host).
        if len(set(hosts)) > 1:
            pairs = [(f"{h}:{n}" if h else n, p) for (n, p), h in zip(pairs, hosts)]
        names = unique([n for n, _ in pairs])
        return [RunSpec(n, p) for n, (_, p) in zip(names, pairs)]

    def _remote_pairs(self, arg: str, target: Target) -> list[tuple[str, str]]:
        if self._remotes is None:
            from .remote import Remotes

            self._remotes = Remotes(__version__)
        host = self._remotes.host(target)
        res = host.expansion(target.path, self.remote_wait)
        if res is None:
            if host.problem is None:
                return []  # still connecting: its runs appear when it answers
            # Never reached: one run stands for the argument, to show why.
            shown = target.display(target.path)
            self._remote_src[shown] = (host, target.path, None)
            self._standins[shown] = arg
            return [(_pending_name(target.path), shown)]
        out = []
        for name, path, interval in res["pairs"]:
            shown = target.display(path)
            self._remote_src[shown] = (host, path, interval)
            out.append((name, shown))
        if not out and not res["magic"] and not res["exists"]:
            shown = target.display(res["path"])
            self._remote_src[shown] = (host, res["path"], None)
            out.append((_pending_name(res["path"]), shown))
        return out

    def rescan(self, force: bool = False) -> list[Run]:
        """Add runs for paths that appeared; return the new ones."""
        now = self.clock()
        if self._remotes is not None:
            self._remotes.pump()
            force = self._remotes.fresh() or force
        if not force and now - self._last_scan < self.rescan_seconds:
            return []
        self._last_scan = now
        new = []
        specs = self.specs()
        self._drop_standins({s.path for s in specs})
        for spec in specs:
            remote = self._remote_src.get(spec.path)
            key = spec.path if remote is not None else os.path.abspath(spec.path)
            if key in self._by_path:
                continue
            name = spec.name
            taken = {r.name for r in self.runs}
            k = 2
            while name in taken:
                name = f"{spec.name}#{k}"
                k += 1
            if remote is not None:
                host, rpath, interval = remote
                from .remote import RemoteStateFile, RemoteTail

                whole = os.path.basename(rpath) == "trainer_state.json" or self.fmt == TRAINER_STATE
                src = RemoteStateFile(host, rpath) if whole else RemoteTail(host, rpath)
                run = Run(name, spec.path, self.config, self.fmt, source=src, interval=interval)
            else:
                run = Run(name, spec.path, self.config, self.fmt)
            run.color_index = len(self.runs)
            self.runs.append(run)
            self._by_path[key] = run
            new.append(run)
        return new

    def _drop_standins(self, current: set[str]) -> None:
        """A host that answered lists its runs: the run that stood for its argument goes."""
        for key in [k for k in self._standins if k not in current]:
            del self._standins[key]
            run = self._by_path.pop(key, None)
            if run is not None:
                run.source.close()
                self.runs.remove(run)

    def close(self) -> None:
        """Let go of remote connections (local files hold nothing that needs it)."""
        if self._remotes is not None:
            self._remotes.close()
            self._remotes = None

    def poll(self, budget: int = 4 << 20) -> dict[str, RunUpdate]:
        """One pass over every run; a run still loading history gets at most ``budget`` bytes."""
        now = self.clock()
        out = {}
        for run in self.runs:
            up = run.poll(budget, now)
            if up.changed or up.opened:
                out[run.name] = up
        return out

    def load_all(self, budget: int = 4 << 20, helper: bool = False) -> None:
        """Read every run to its end (for --report), a few MiB at a time so that memory holds
        one chunk's records, not the file's. ``helper``: use the machine's other cores (``pipe``:
        runs shared out to forked processes, or one long log parsed in a helper while this
        process absorbs it; only where no other thread runs, as it forks)."""
        # What loading builds holds no reference cycles; the cyclic collector would only walk
        # the growing heap again and again (about a tenth of the time of a long log).
        enabled = gc.isenabled()
        gc.disable()
        try:
            runs = [r for r in self.runs if not r.loaded]
            # (forked helpers must not share a host's ssh pipes: remote runs load here)
            jobs = pipe.jobs() if helper and pipe.usable() and not any(r.remote for r in runs) else 1
            pipelined = jobs > 1
            if jobs > 1 and pipe.share_out(runs, self.helper_bytes):
                runs = pipe.load_shared(runs, jobs, lambda run: self._load(run, budget, False))
                pipelined = False  # (what is left: runs whose process failed)
            for run in runs:
                self._load(run, budget, pipelined)
        finally:
            if enabled:
                gc.enable()

    def _load(self, run: Run, budget: int, helper: bool) -> None:
        run._previewed = True  # nothing is shown before the end: no preview to read
        taken = 0
        if helper and pipe.worth_it(run, self.helper_bytes):
            taken = pipe.load(run, budget, self.clock)
        if not taken:
            run.poll(budget, self.clock())
        while not run.loaded and run.error is None:
            run.poll(budget, self.clock())

    @property
    def loading(self) -> bool:
        return any(not r.loaded and r.exists for r in self.runs)


def _pending_name(path: str) -> str:
    from .discover import distinguishing_names

    return distinguishing_names([path])[0]


def record_json(run: str, rec: Record) -> bytes:
    """One record as a JSON line (for --follow --format jsonl)."""
    metrics = {k: (v if math.isfinite(v) else str(v)) for k, v in rec.metrics.items()}
    return orjson.dumps(
        {"run": run, "kind": rec.kind.value, "step": rec.step, "epoch": rec.epoch, "metrics": metrics}
    )
