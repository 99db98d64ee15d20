"""A TensorBoard run as a source of records: its event files, tailed while they are written.

A run is one ``events.out.tfevents.*`` file, or a directory of them: the HF Trainer writes one
per process under ``<output_dir>/runs/<date>_<host>/``, so the run of an output_dir is its
``runs/`` (a flat ``logging_dir`` collects the files of every restart in one directory). Files
are read in the order they were created (the unix time in their name) and their scalars go
through the same ``LogParser`` as a log dict would, so a step that goes back (a resumed run, or
a notebook calling ``train()`` again on the same writer) is a ``RESUMED`` event, and the
end-of-training summary finishes the run.

Like ``StateFile`` it is polled by ``Run``; unlike a text log there are no lines: the byte
offset after the last complete record is kept per file and a record cut at the end of the file
is read again once it is whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import add

from sfttop.core.i18n import N_, _

from .discover import event_files, is_events_file
from .parse import Closed, Columns, LogParser
from .records import Event, EventKind, Item, Kind, Record
from .sanitize import clean_text
from .tbscan import Stretch, _Layout, scan_records
from .tensorboard import (
    CyclePlan,
    Grouper,
    Malformed,
    TrainArgs,
    decode_event,
    plan_cycle,
    read_args,
    simple_scalar,
    tag_key,
)
from .tfrecord import FOOTER, HEADER, MAX_RECORD

FILE_SHIFT = 40  # a record's offset is (file number << FILE_SHIFT) + its offset in that file


def is_events_path(path: str) -> bool:
    """An event file, or a directory holding some (directly or one level down)."""
    return is_events_file(path) or (os.path.isdir(path) and bool(event_files(path)))


@dataclass
class _File:
    path: str
    number: int
    offset: int = 0  # after the last complete record
    size: int = 0
    ident: tuple[int, int] | None = None
    need: int = 0  # bytes the record cut at ``offset`` needs
    grouper: Grouper = field(default_factory=Grouper)
    held: bool = False  # its last dict was held back at the end of the previous poll
    reached: bool = False  # its end was reached once: from then on a held dict is live, not history


class EventsSource:
    """The event files of one TensorBoard run (``path``: a file, or a directory of them)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.files: list[_File] = []
        self.error: str | None = None
        self.exists = False
        self.size = 0
        self.offset = 0
        self.mtime = 0.0
        self.caught_up = True  # everything on disk was read and handed on
        self.corrupt = 0  # records whose checksum did not match
        self.malformed = 0  # records that are not Event protos
        self.args = TrainArgs()
        self._closed: list[Closed] = []  # dicts (or runs of them, as columns) to hand on at the poll's end
        self._tags: dict[bytes, tuple[str, str] | tuple[()]] = {}  # (): a tag that is not read
        self._cycle_tags: dict[_Layout, list[tuple[str, str] | tuple[()]]] = {}
        self._plans: dict[_Layout, CyclePlan] = {}

    @property
    def pending_bytes(self) -> int:
        return max(0, self.size - self.offset)

    def close(self) -> None:
        """Nothing to let go: event files are opened for each read, never held between polls."""

    def _paths(self) -> list[str] | None:
        if os.path.isdir(self.path):
            return event_files(self.path)
        return [self.path] if os.path.exists(self.path) else None

    def poll(
        self, parser: LogParser, out_records: list[Item], out_events: list[Event], budget: int = 4 << 20
    ) -> bool:
        """Read what was written since the last poll (up to about ``budget`` bytes); True when
        something changed. ``caught_up`` says whether more is waiting."""
        paths = self._paths()
        if paths is None:
            self.exists = False
            self.error = N_("file not found")
            return False
        self.exists = True
        known = {f.path for f in self.files}
        for p in paths:
            if p not in known:
                self.files.append(_File(p, len(self.files)))
        changed = False
        caught_up = True
        size = offset = 0
        for i, f in enumerate(self.files):
            if budget > 0:
                got, done, budget = self._poll_file(f, parser, out_records, out_events, budget, self.files[:i])
                changed = changed or got
                caught_up = caught_up and done
            else:
                caught_up = False
            size += f.size
            offset += f.offset
        self._flush(parser, out_records, out_events)
        self.size, self.offset, self.caught_up = size, offset, caught_up
        if paths or not os.path.isdir(self.path):
            self.error = None
        else:
            self.error = N_("no event files yet")
        return changed

    def _poll_file(
        self,
        f: _File,
        parser: LogParser,
        out_records: list[Item],
        out_events: list[Event],
        budget: int,
        earlier: list[_File],
    ) -> tuple[bool, bool, int]:
        """(changed, read to its end, budget left). Read to its end: every byte on disk read, and
        the dict held at the end handed on, or held while the file is being written (once its end
        was reached, so that a live run counts as loaded while the writer keeps writing)."""
        try:
            st = os.stat(f.path)
        except OSError:
            return self._release(f, f.size), self._done(f, True), budget
        self.mtime = max(self.mtime, st.st_mtime)
        ident = (st.st_dev, st.st_ino)
        if f.ident is not None and (ident != f.ident or st.st_size < f.offset):
            # Written again from its start: read it again (the store keeps one value a step).
            name = clean_text(os.path.basename(f.path)[:80])
            why = _("{name} replaced: read again") if ident != f.ident else _("{name} truncated: read again")
            out_events.append(Event(EventKind.SOURCE, why.format(name=name)))
            f.offset = f.need = 0
            f.grouper = Grouper()
            f.held = False
        f.ident = ident
        last_size, f.size = f.size, st.st_size
        if f.need > MAX_RECORD + HEADER + FOOTER:
            # An image or a graph, not a scalar: passed over unread once it is whole.
            if st.st_size - f.offset < f.need:
                return self._release(f, last_size), self._done(f, True), budget
            f.offset += f.need
            f.need = 0
            parser.stats.oversized += 1
        if st.st_size - f.offset < max(f.need, 1):
            return self._release(f, last_size), self._done(f, True), budget
        want = min(st.st_size - f.offset, max(budget, f.need))
        try:
            with open(f.path, "rb") as fh:
                fh.seek(f.offset)
                buf = fh.read(want)
        except OSError as e:
            self.error = e.strerror or str(e)
            return False, True, budget
        framed = scan_records(buf, f.offset, at_eof=f.offset + len(buf) >= st.st_size)
        f.offset = framed.end
        f.need = framed.need
        if framed.corrupt:
            self.corrupt += framed.corrupt
            parser.stats.skipped += framed.corrupt
            if len(parser.stats.skipped_examples) < 3:
                name = clean_text(os.path.basename(f.path)[:80])
                parser.stats.skipped_examples.append(f"{framed.corrupt} corrupt record(s) in {name}")
        parser.stats.oversized += framed.oversized
        if framed.items:
            for older in earlier:  # a later file was written to: what the earlier ones hold is complete
                self._emit(older.grouper.close())
                older.held = False
        base = f.number << FILE_SHIFT
        parser.stats.lines += framed.count
        # The common event (one simple_value) inline, names bound once: the hot loop of a load.
        fast, tags, closed = simple_scalar, self._tags, self._closed
        for item in framed.items:
            if isinstance(item, Stretch):
                self._stretch(f, base, item)
                continue
            off, data = item
            got = fast(data)
            if got is None:
                self._record(f, base + off, data, parser, out_events)
                continue
            tk = tags.get(got[1])
            if tk is None:
                tk = self._tag(got[1])
            if tk:
                done = f.grouper.add(got[0], tk[0], tk[1], got[2], base + off)
                if done is not None:
                    closed.append(done)
        if framed.items:
            f.held = f.grouper.pending
        else:
            self._release(f, last_size)
        at_end = f.offset >= st.st_size or f.offset + framed.need > st.st_size
        return True, self._done(f, at_end), budget - len(buf)

    def _tag(self, raw: bytes) -> tuple[str, str] | tuple[()]:
        tk = tag_key(raw.decode("utf-8", "replace")) or ()
        if len(self._tags) < 4096:
            self._tags[raw] = tk
        return tk

    def _stretch(self, f: _File, base: int, st: Stretch) -> None:
        """A stretch's records into dicts, as ``Grouper`` would make them one by one: a cycle
        is one step's records and steps rise, so every cycle starts afresh and splits the same
        way (``plan_cycle``); the last cycle's last dict stays open in the grouper."""
        lay = st.layout
        tks = self._cycle_tags.get(lay)
        if tks is None:
            tks = [self._tags[t] if t in self._tags else self._tag(t) for t in lay.tags]
            if len(self._cycle_tags) < 256:
                self._cycle_tags[lay] = tks
        plan = self._plans.get(lay)
        if plan is None:
            plan = plan_cycle(tks)
            if len(self._plans) < 256:
                self._plans[lay] = plan
        if not plan.pieces:
            return
        g = f.grouper
        steps, values = st.steps, st.values
        n = len(steps)
        at = base + st.offset
        lo = 0
        if g.pending and g.step == steps[0]:
            # Records before the stretch at its first step: its first cycle goes on from them.
            for j, tk in enumerate(tks):
                if tk:
                    self._emit(g.add(steps[0], tk[0], tk[1], values[j][0], at + lay.starts[j]))
            lo = 1
            if n == 1:
                return
        self._emit(g.close())
        size = lay.size
        if len(plan.pieces) == 1:
            # A dict a cycle (the common case): cycles lo .. n - 2 as columns, no dict each.
            keys, idx = plan.pieces[0]
            first = at + lay.starts[idx[0]]
            if n - 1 > lo:
                cols: list[Sequence[object]] = [values[j][lo : n - 1] for j in idx]
                cols.append(steps[lo : n - 1])
                self._closed.append(Columns((*keys, "step"), cols, range(first + lo * size, first + (n - 1) * size, size)))
            g.reopen(steps[-1], {k: values[j][n - 1] for k, j in zip(keys, idx)}, plan.family, plan.last, first + (n - 1) * size)
            return
        lists = []
        for keys, idx in plan.pieces:
            vals = zip(*(values[j][lo:] for j in idx))  # each cycle's values of the piece
            # (values..., step) of each cycle, zipped with the keys: the dicts Grouper.close makes
            dicts = list(map(dict, map(zip, repeat((*keys, "step")), map(add, vals, zip(steps[lo:])))))
            first = at + lay.starts[idx[0]]
            lists.append(list(zip(dicts, range(first + lo * size, first + n * size, size))))
        *done, last = lists
        closed = self._closed
        closed.extend(chain.from_iterable(zip(*done, last[:-1])))  # every piece of cycles lo .. n - 2
        closed.extend(piece[-1] for piece in done)  # the last cycle's, but its last
        obj, off = last[-1]
        del obj["step"]
        g.reopen(steps[-1], obj, plan.family, plan.last, off)

    @staticmethod
    def _done(f: _File, at_end: bool) -> bool:
        done = at_end and (not f.held or f.reached)
        f.reached = f.reached or at_end
        return done

    def _record(self, f: _File, offset: int, data: bytes, parser: LogParser, out_events: list[Event]) -> None:
        """An event other than one simple_value: text summaries, tensor scalars, several values."""
        try:
            ev = decode_event(data)
        except (Malformed, ValueError):
            self.malformed += 1
            parser.stats.skipped += 1
            return
        for tag_text, text in ev.texts:
            if read_args(tag_text, text, self.args):
                # A train() call begins: what the previous one logged is complete.
                self._emit(f.grouper.close())
                self._apply_args(parser, out_events, offset)
            elif tag_text in _ARG_TAGS:
                self._apply_args(parser, out_events, offset, tag_text == "train_iters/text_summary")
        for tag_text, value in ev.scalars:
            tk = tag_key(tag_text)
            if tk is not None:
                self._emit(f.grouper.add(ev.step, tk[0], tk[1], value, offset))

    def _emit(self, closed: tuple[dict[str, object], int] | None) -> None:
        if closed is not None:
            self._closed.append(closed)

    def _flush(self, parser: LogParser, out_records: list[Item], out_events: list[Event]) -> None:
        """Hand the dicts closed in this poll to the parser, all at once: runs of train dicts
        with the same keys become Blocks, as JSON lines do (stretches' cycles as columns)."""
        closed, self._closed = self._closed, []
        if not closed:
            return
        # The parser places a summary at the last train step (a stdout summary has no step);
        # here the step is known: the final global step.
        summary_steps: list[object] = []
        for e in closed:
            if isinstance(e, Columns):
                if "train_runtime" in e.keys and "loss" not in e.keys:
                    summary_steps.extend(e.cols[-1])
            elif "train_runtime" in e[0] and "loss" not in e[0]:
                summary_steps.append(e[0]["step"])
        tail = closed[-1]
        last = tail.cols[-1][-1] if isinstance(tail, Columns) else tail[0]["step"]
        n, m = len(out_records), len(out_events)
        parser.feed_closed(closed, out_records, out_events)
        if isinstance(last, int):
            parser.progress_step = last
        if summary_steps:
            recs = [r for r in out_records[n:] if isinstance(r, Record) and r.kind is Kind.SUMMARY]
            evs = [e for e in out_events[m:] if e.kind is EventKind.FINISHED]
            for rec, step in zip(recs, summary_steps):
                if isinstance(step, int):
                    rec.step = step
            for ev, step in zip(evs, summary_steps):
                if isinstance(step, int):
                    ev.step = step

    def _apply_args(self, parser: LogParser, out_events: list[Event], offset: int, announce: bool = True) -> None:
        a = self.args
        if a.logging_steps:
            parser.interval = a.logging_steps
        if a.max_steps and announce:
            parser.progress_total = a.max_steps
            out_events.append(Event(EventKind.MAX_STEPS, "", offset, None, a.max_steps))

    def _release(self, f: _File, last_size: int) -> bool:
        """Hand on the dict still being built at the end of a file once a poll finds the file as
        it was: the writer flushes after each call, so it is complete. (Handing it on at once
        would split a dict the reader caught half-flushed into two records.)"""
        if not f.grouper.pending:
            f.held = False
            return False
        if not f.held or f.size != last_size:
            f.held = True
            return False
        f.held = False
        self._emit(f.grouper.close())
        return True


_ARG_TAGS = frozenset(("train_iters/text_summary", "log_interval/text_summary", "eval_interval/text_summary"))

