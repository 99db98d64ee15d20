"""torchtune: the recipes' stdout and their DiskLogger file.

On stdout the training bar's description is ``{epoch}|{global_step}|Loss: {loss}``, and tqdm
redraws it (``\\r``) two or three times a step: each step is read once, the first time it shows.
``DiskLogger`` writes ``log_<unix time>.txt`` with a line per logged step,
``Step 33 | loss:1.54 lr:9.9e-05 tokens_per_second_per_gpu:101.2 `` (``grad_norm:tensor(...)``
when it is a tensor).
"""

from __future__ import annotations

import re

from sfttop.core.records import Event, EventKind, Item

from .base import JSON_NUM, MAX_FIELDS, PREFIX, ROWS_PREFIX, LineReader, Stats, clock_seconds, number

NAME = "torchtune"
DESCRIPTION = (
    "stdout bar descriptions `E|S|Loss: X:` (train: loss at step S, each step once however often "
    "tqdm redraws it; the bar's `n/total` gives max_steps) and DiskLogger `log_<ts>.txt` lines "
    "`Step N | loss:X lr:Y tokens_per_second_per_gpu:Z ...` (train: loss, learning_rate, "
    "tokens_per_second_per_gpu, grad_norm, peak_memory_*)"
)

_BAR = re.compile(PREFIX + rb"(\d+)\|(\d+)\|Loss: ([^:\s]+):")
_BAR_TOTAL = re.compile(rb"\| *(\d+)/(\d+) \[")
_BAR_ETA = re.compile(rb"\| *\d+/\d+ \[[\d:]+<([\d:]+)")
_DISK = re.compile(PREFIX + rb"Step (\d+) \| (\w+:\S.*)$")
_PAIR = re.compile(rb"([\w/]+):(tensor\([^)]*\)|\S+)")
# A line of redraws read whole: every piece a bar description whose loss is a JSON number (so
# that the values convert in one orjson call) and at most 4 kB (a bar description is ~100 bytes;
# parse.py skips a piece over MAX_RECORD_LINE), counted by ``_PIECE``; ``_STEP`` takes the first
# piece of each step with the redraws of that step that follow it.
_NUM = rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_PIECE = re.compile(rb"(?:^|\r)\d+\|\d+\|Loss: " + _NUM + rb":[^\r]{0,4096}(?=\r|$)")
_STEP = re.compile(rb"\d+\|(\d+)\|Loss: (" + _NUM + rb"):[^\r]*(?:\r\d+\|\1\|[^\r]*)*")
# A DiskLogger line of the shape read last, every value a number float() reads as number()
# does: one match of a regex made for that shape (its keys in order) gives the step and values.
_JSON_NUM = re.compile(_NUM)
_DETECT = re.compile(PREFIX + rb"(?:\d+\|\d+\|Loss: |Step \d+ \| \w+:\S)")
_LOSS = (b"loss",)


def _own(seg: bytes) -> bool:
    """A line ``feed`` takes (and not a stack dump, which the parser may want to see first)."""
    return _BAR.match(seg) is not None or _DISK.match(seg) is not None


def detect(seg: bytes) -> bool:
    return _DETECT.match(seg) is not None


class Reader(LineReader):
    def eta(self, line: bytes) -> float | None:
        m = _BAR_ETA.search(line)
        return clock_seconds(m.group(1)) if m is not None else None

    def feed_redraws(self, line: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> int:
        # A tenth of the per-piece cost: one C-level pass to check the pieces, one to find each
        # step's first description, and the losses converted with the rest of the run.
        pieces = line.count(b"\r") + 1
        start = 1 if line[:1] == b"\r" else 0
        if len(_PIECE.findall(line)) != pieces - start:
            return 0
        last = line[line.rfind(b"\r") + 1 :]
        t = _BAR_TOTAL.search(last)
        if t is None or int(t.group(2)) != self.total or line.count(b"/%s [" % t.group(2)) != pieces - start:
            return 0  # a new total is an event, in its place among the records: piece by piece
        steps: list[int] = []
        values: list[bytes] = []
        offsets: list[int] = []
        prev = self.prev_step
        for m in _STEP.finditer(line, start):
            step = int(m.group(1))
            if step == prev:
                continue  # the redraws of the step read last, at the start of this line
            prev = step
            steps.append(step)
            values.append(m.group(2))
            offsets.append(offset + m.start())
        if steps and not self.train_run(self.names(_LOSS), steps, values, offsets, out_records):
            return 0
        self.last_line = last
        return pieces - start

    def __init__(self, stats: Stats) -> None:
        super().__init__(stats)
        self._shape: re.Pattern[bytes] | None = None  # the last DiskLogger line's shape
        self._shape_names: tuple[str, ...] = ()
        self._bulk: re.Pattern[bytes] | None = None  # that shape over a chunk (``feed_rows``)

    def rows_in_bulk(self) -> bool:
        return self._bulk is not None

    def feed_rows(self, lines: list[bytes], base: int, out_records: list[Item], out_events: list[Event]) -> bool:
        shape = self._bulk
        if shape is None:
            return False
        return self.feed_shaped(shape, self._shape_names, lines, base, out_records, out_events, _own)

    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        shape = self._shape
        if shape is not None:
            m = shape.match(seg)
            if m is not None:
                g = m.groups()
                self.train(int(g[0]), self._shape_names, tuple(map(float, g[1:])), offset, out_records, out_events)
                return True
        m = _BAR.match(seg)
        if m is not None:
            step = int(m.group(2))
            t = _BAR_TOTAL.search(seg, m.end())
            if t is not None:
                total = int(t.group(2))
                if total != self.total and total > 0:
                    self.total = total
                    self.event(Event(EventKind.MAX_STEPS, "", offset, None, total), out_records, out_events)
            self.last_line = seg
            if step == self.prev_step:
                return True  # a redraw of the step already read
            loss = number(m.group(3))
            if loss is None:
                self.stats.skip(seg)
                return True
            self.train(step, self.names(_LOSS), (loss,), offset, out_records, out_events)
            return True
        m = _DISK.match(seg)
        if m is not None:
            keys: list[bytes] = []
            vals: list[float] = []
            pairs = _PAIR.findall(m.group(2))
            if len(pairs) > MAX_FIELDS:
                self.stats.skip(seg)
                return True
            for k, v in pairs:
                x = number(v)
                if x is None:
                    continue  # a value that is not a number (a string the recipe logged)
                keys.append(k)
                vals.append(x)
            if not keys:
                self.stats.skip(seg)
                return True
            names = self.names(tuple(keys))
            if len(keys) == len(pairs) and all(_JSON_NUM.fullmatch(v) for _, v in pairs):
                self._learn(keys, names)
            self.train(int(m.group(1)), names, tuple(vals), offset, out_records, out_events)
            return True
        return self.text_event(seg, offset, out_records, out_events)

    def _learn(self, keys: list[bytes], names: tuple[str, ...]) -> None:
        """The regex of this line's shape: the same keys in the same order, space-separated. A
        line it matches splits into exactly these pairs, so both paths read it alike."""
        fields = rb" +".join(re.escape(k) + rb":(" + _NUM + rb")" for k in keys)
        self._shape = re.compile(PREFIX + rb"Step (\d+) \| " + fields + rb" *$")
        self._shape_names = names
        # Over a chunk: JSON numbers only (orjson converts them, see ``JSON_NUM``), blanks
        # only in front, any other line the last group.
        fields = rb" +".join(re.escape(k) + rb":(" + JSON_NUM + rb")" for k in keys)
        self._bulk = re.compile(ROWS_PREFIX + rb"(?:Step (\d+) \| " + fields + rb" *|(.+))$", re.M)
