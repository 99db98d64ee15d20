"""What every line format's reader shares: turning parsed lines into Records, Blocks and Events.

A format module only recognises its lines and pulls numbers out of them; this base keeps the
order promises the rest of sfttop relies on (see ``records.Block``): a run of train records with
the same metrics goes out as one Block, and anything else (an eval, an event) closes the run
first, so records and events stay in log order. It also notices a step counter that goes back
(a restart, or a new phase of a multi-phase script) and announces it the way the HF path does,
as a RESUMED event.
"""

from __future__ import annotations

import operator
import re
from array import array
from collections.abc import Callable
from itertools import accumulate, compress, count
from typing import Protocol

import orjson

from sfttop.core.i18n import N_, _
from sfttop.core.metrics import canonical
from sfttop.core.records import Block, Event, EventKind, Item, Kind, Record

MIN_BLOCK = 4  # as in parse.py
ROWS_SLICE = 8192  # lines ``feed_shaped`` matches at a time: shorter runs go out record by record
# Fields a record line may have (Megatron prints about 20): a line of thousands of made-up keys
# would otherwise become thousands of series.
MAX_FIELDS = 64

# Launcher prefixes in front of a line: srun's task label (``55: ``, `` 0: ``) and torchrun's
# tee prefix (``[default0]:``), in that order when both are there.
PREFIX = rb"^\s*(?:\d+:\s?)?\s*(?:\[(?:default|rank)\d+\]:)?\s*"

# A value ``train`` may take as text: a JSON number that orjson reads as float() does (not
# ``-0``, an int to orjson; a leading zero or an overflow fails the run's one orjson call, which
# then converts row by row).
JSON_NUM = rb"(?:-?[1-9]\d*|-?0(?=[.eE])|0)(?:\.\d+)?(?:[eE][-+]?\d+)?"
# ``PREFIX`` for a pattern matched over many lines at once (``re.M``): blanks only, never a
# line break; a line with other white space in front is then read alone.
ROWS_PREFIX = rb"^[ \t]*(?:\d+:[ \t]?)?[ \t]*(?:\[(?:default|rank)\d+\]:)?[ \t]*"

_STACK_DUMP = b"Stack (most recent call first):"  # faulthandler: a watchdog timeout or a hang


def number(raw: bytes) -> float | None:
    """A printed value as a float: thousands separators and a unit (``ms``, ``%``, ``m``, ``s``)
    allowed; None when it is not a number."""
    try:
        return float(raw)
    except ValueError:
        pass
    s = raw.strip()
    if s.startswith(b"tensor("):  # torchtune's grad_norm is a tensor: tensor(0.84, device='cuda:0')
        s = s[7:].split(b",")[0].rstrip(b")")
    s = s.replace(b",", b"").rstrip(b"%msMS")
    try:
        return float(s)
    except ValueError:
        return None


class Stats(Protocol):
    """The parser's counters (``parse.ParseStats``), which a reader adds to."""

    records: int

    def skip(self, line: bytes) -> None: ...


class LineReader:
    """One file's reader for one line format; ``feed`` is its per-line entry point."""

    restart = N_("steps restart at {step}")  # the RESUMED message when the step counter goes back

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.prev_step: int | None = None  # last train step, to notice a restart
        self.total: int | None = None  # step total the log announces (progress)
        self.progress_step: int | None = None
        # A run of train records with the same metrics, waiting to go out as one Block.
        self._names: tuple[str, ...] = ()
        self._steps: list[int] = []
        self._rows: list[tuple[float, ...] | bytes] = []
        self._raw = False  # the rows are text (see ``train``)
        self._offsets: list[int] = []
        self._canon: dict[tuple[bytes, ...], tuple[str, ...]] = {}
        # An eval record held until the next record line: more eval lines of the same step
        # (llm.c's HellaSwag line, nanochat's CORE metric) join it instead of counting twice.
        self._eval: Record | None = None
        self._dumped = False
        self._dumped_at: int | None = None  # the step of the last stack dump
        self.eta_seconds: float | None = None  # time left as the log tells it
        self.last_line = b""  # the newest train line, for ``eta`` (read once a flush, not per line)
        self._eta_of = b""

    # -- for format modules ------------------------------------------------------------------
    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        """Read one text line; True when it was one of this format's lines (taken or skipped)."""
        raise NotImplementedError

    def rows_in_bulk(self) -> bool:
        """Whether ``feed_rows`` may take the next chunk (the parser splits one for it only then)."""
        return False

    def feed_rows(self, lines: list[bytes], base: int, out_records: list[Item], out_events: list[Event]) -> bool:
        """Read a chunk's lines (none empty, none holding a brace, a carriage return or an
        escape: lines ``feed`` alone reads) in one go, when this format can; False: nothing
        done, they are fed one by one."""
        return False

    def feed_redraws(self, line: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> int:
        """Read a whole line of ``\\r``-joined redraws at once, when every piece is one of this
        format's bar lines; the number of pieces read, or 0 to have them fed one by one."""
        return 0

    def feed_shaped(
        self,
        shape: re.Pattern[bytes],
        names: tuple[str, ...],
        lines: list[bytes],
        base: int,
        out_records: list[Item],
        out_events: list[Event],
        own: Callable[[bytes], bool],
    ) -> bool:
        """``feed_rows`` for a format whose train lines share one shape: ``shape`` (``re.M``)
        matches each line once, a train line of ``names`` as the step then its values (JSON
        numbers, see ``JSON_NUM``) and any other line as its last group alone. One C-level
        pass over the chunk and no Python per line: a run of train lines goes to
        ``train_run``, the other lines (validations...) to ``feed``. False (nothing done) when
        an other line is one ``feed`` would not take (``own``: the parser has to see it)."""
        n = len(lines)
        last = len(names) + 1
        step_of = operator.itemgetter(0)
        values_of = operator.itemgetter(*range(1, last))
        # Matched a slice at a time and converted before the next: a match's tuple of bytes
        # costs ~3x the text it holds (a 4 MiB chunk at once: +38 MiB of peak memory).
        todo: list[tuple[int, int, list[int], list[bytes]]] = []  # runs, and other lines as (i, i, [], [])
        for s in range(0, n, ROWS_SLICE):
            part = lines[s : s + ROWS_SLICE]
            rows = shape.findall(b"\n".join(part))
            if len(rows) != len(part) or len(rows[0]) != last + 1:
                return False
            odd = list(compress(count(), map(operator.itemgetter(last), rows)))
            if not all(own(part[i]) for i in odd):
                return False
            a = 0
            for b in [*odd, len(part)]:
                if b > a:
                    run = rows[a:b]
                    steps = list(map(int, map(step_of, run)))
                    if last == 2:
                        values = list(map(values_of, run))
                    else:
                        values = list(map(b",".join, map(values_of, run)))
                    todo.append((s + a, s + b, steps, values))
                if b < len(part):
                    todo.append((s + b, s + b, [], []))
                a = b + 1
        offsets = list(accumulate(map((1).__add__, map(len, lines[:-1])), initial=base))
        for a, b, steps, values in todo:
            if a == b:
                self.feed(lines[a], offsets[a], out_records, out_events)
            elif not self.train_run(names, steps, values, offsets[a:b], out_records):
                for i in range(a, b):  # a step that does not go up: line by line
                    self.feed(lines[i], offsets[i], out_records, out_events)
        return True

    drop: frozenset[bytes] = frozenset()  # keys of a line that are not metrics

    def names(self, keys: tuple[bytes, ...]) -> tuple[str, ...]:
        """The canonical metric names of raw keys (cached per key set: one per line shape); ""
        for a key in ``drop``."""
        got = self._canon.get(keys)
        if got is None:
            drop = self.drop
            got = tuple("" if k.strip() in drop else canonical(k.decode("utf-8", "replace")) for k in keys)
            if len(self._canon) < 256:
                self._canon[keys] = got
        return got

    def train(
        self,
        step: int,
        names: tuple[str, ...],
        values: tuple[float, ...] | bytes,
        offset: int,
        out_records: list[Item],
        out_events: list[Event],
    ) -> None:
        """A train record. ``values`` may still be text, the values joined by commas as JSON
        numbers: they are then converted a run at a time by one orjson call, which costs a
        fraction of a ``float()`` per value (a long pretraining log has millions of them); a
        line whose values turn out not to be numbers is then skipped and counted."""
        if self._eval is not None:
            self._release_eval(out_records)
        prev = self.prev_step
        if prev is not None and step <= prev:
            self.emit_pending(out_records)
            out_events.append(Event(EventKind.RESUMED, _(self.restart).format(step=step), offset, step))
        self.prev_step = step
        self.progress_step = step
        raw = type(values) is bytes
        if names != self._names or raw != self._raw:
            self.emit_pending(out_records)
            self._names = names
            self._raw = raw
        self._steps.append(step)
        self._rows.append(values)
        self._offsets.append(offset)
        self.stats.records += 1

    def train_run(
        self, names: tuple[str, ...], steps: list[int], values: list[bytes], offsets: list[int], out_records: list[Item]
    ) -> bool:
        """Train records of strictly increasing steps after the last one, each value still text
        (as in ``train``), taken in one go; False (nothing taken) when a step does not go up,
        so that the caller feeds them one by one and the restart is noticed where it is."""
        prev = self.prev_step
        if not steps or (prev is not None and steps[0] <= prev) or not all(map(operator.lt, steps, steps[1:])):
            return False
        if self._eval is not None:
            self._release_eval(out_records)
        if names != self._names or not self._raw:
            self.emit_pending(out_records)
            self._names = names
            self._raw = True
        self.prev_step = self.progress_step = steps[-1]
        self._steps += steps
        self._rows += values
        self._offsets += offsets
        self.stats.records += len(steps)
        return True

    def eval(self, step: int, metrics: dict[str, float], offset: int, out_records: list[Item], merge: bool) -> None:
        """An eval record at ``step``; ``merge``: its metrics join an eval of the same step just
        read, if there is one (a line that adds to an evaluation rather than being one)."""
        held = self._eval
        if held is not None:
            if merge and held.step == step:
                for k, v in metrics.items():
                    held.metrics.setdefault(k, v)
                return
            self._release_eval(out_records)
        self.emit_pending(out_records)
        self._eval = Record(Kind.EVAL, step, metrics, None, offset)
        self.stats.records += 1

    def event(self, ev: Event, out_records: list[Item], out_events: list[Event]) -> None:
        """An event, after everything read before it."""
        self.flush(out_records, True)
        out_events.append(ev)

    def text_event(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        """Lines every line format treats alike; True when ``seg`` was one."""
        if _STACK_DUMP in seg:
            if self._dumped and self._dumped_at == self.prev_step:
                return True  # every rank dumps its stack: one event for them all
            self._dumped, self._dumped_at = True, self.prev_step
            msg = "Python stack dump (faulthandler): the run hung or hit a timeout"
            self.event(Event(EventKind.CRASHED, msg, offset, self.prev_step), out_records, out_events)
            return True
        return False

    # -- for the parser ----------------------------------------------------------------------
    def emit_pending(self, out_records: list[Item]) -> None:
        steps = self._steps
        if not steps:
            return
        names = self._names
        rows = self._rows
        offsets = self._offsets
        self._steps = []
        self._rows = []
        self._offsets = []
        if self._raw:
            got = self._convert(names, steps, rows, offsets)  # type: ignore[arg-type]
            if got is None:
                return
            steps, columns, offsets = got
        else:
            columns = [array("d", c) for c in zip(*rows)]
        if "" in names:  # keys that are not metrics
            keep = [j for j, name in enumerate(names) if name]
            names = tuple(names[j] for j in keep)
            columns = [columns[j] for j in keep]
        if len(steps) >= MIN_BLOCK:
            out_records.append(Block(names, array("q", steps), tuple(columns), None, array("q", offsets)))
        else:
            for i, (step, off) in enumerate(zip(steps, offsets)):
                out_records.append(Record(Kind.TRAIN, step, {n: c[i] for n, c in zip(names, columns)}, None, off))

    def _convert(
        self, names: tuple[str, ...], steps: list[int], rows: list[bytes], offsets: list[int]
    ) -> tuple[list[int], list[array[float]], list[int]] | None:
        """Columns from rows of comma-joined values: one orjson call for them all, or, when
        that fails (a ``nan``, a unit, a word), row by row, leaving out unreadable rows."""
        k = len(names)
        try:
            flat = orjson.loads(b"[" + b",".join(rows) + b"]")
            if len(flat) == k * len(rows):
                return steps, [array("d", flat[j::k]) for j in range(k)], offsets
        except (orjson.JSONDecodeError, TypeError):
            pass
        kept_steps: list[int] = []
        kept_offsets: list[int] = []
        values: list[float] = []
        for step, row, off in zip(steps, rows, offsets):
            vals = [number(v) for v in row.split(b",")]
            if len(vals) != k or None in vals:
                self.stats.records -= 1
                self.stats.skip(row)
                continue
            values.extend(vals)  # type: ignore[arg-type]
            kept_steps.append(step)
            kept_offsets.append(off)
        if not kept_steps:
            return None
        return kept_steps, [array("d", values[j::k]) for j in range(k)], kept_offsets

    def _release_eval(self, out_records: list[Item]) -> None:
        if self._eval is not None:
            out_records.append(self._eval)
            self._eval = None

    def flush(self, out_records: list[Item], final: bool) -> None:
        """Hand over what is waiting. A held eval waits for the next line unless ``final`` (the
        end of what there is to read): the line that would join it may be in the next chunk."""
        self.emit_pending(out_records)
        if final:
            self._release_eval(out_records)
        if self.last_line is not self._eta_of:
            self._eta_of = self.last_line
            self.eta_seconds = self.eta(self.last_line)

    def eta(self, line: bytes) -> float | None:
        """Seconds left as ``line`` (the newest train line) tells it; None when it does not."""
        return None


def clock_seconds(text: bytes) -> float | None:
    """``[H:]MM:SS`` (tqdm's remaining time) in seconds."""
    try:
        parts = [int(p) for p in text.split(b":")]
    except ValueError:
        return None
    if not 2 <= len(parts) <= 3:
        return None
    h, m, sec = ([0] if len(parts) == 2 else []) + parts
    return float((h * 60 + m) * 60 + sec)

